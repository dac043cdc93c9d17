//! Handing the operator's ServiceRefresh cache to the rest of the process. The reflector
//! exists only once the operator has started watching; other parts of the process (the admin
//! job API) hold a [`RefreshCache`] from the start and wait on it, so they read the same
//! warm cache as the reconciler instead of keeping a second watch or sending GETs.

use std::sync::Arc;

use kube::runtime::reflector::Store;
use tokio::sync::watch;

use servicerefresh_core::crd::ServiceRefresh;

/// A handle on the operator's ServiceRefresh reflector store, published when the operator
/// starts watching. Clones share the same store.
#[derive(Clone, Debug)]
pub struct RefreshCache(Arc<watch::Sender<Option<Store<ServiceRefresh>>>>);

impl Default for RefreshCache {
    fn default() -> Self {
        Self(Arc::new(watch::channel(None).0))
    }
}

impl RefreshCache {
    /// Makes `store` the cache every holder reads.
    pub fn publish(&self, store: Store<ServiceRefresh>) {
        self.0.send_replace(Some(store));
    }

    /// The store, once published.
    pub fn get(&self) -> Option<Store<ServiceRefresh>> {
        self.0.borrow().clone()
    }

    /// Waits until a store is published. Never resolves if the operator never starts.
    pub async fn published(&self) -> Store<ServiceRefresh> {
        let mut receiver = self.0.subscribe();
        loop {
            if let Some(store) = receiver.borrow_and_update().clone() {
                return store;
            }
            // The sender lives in `self`, so `changed` cannot fail while we wait.
            if receiver.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector;

    #[tokio::test]
    async fn holders_get_the_store_once_published() {
        let cache = RefreshCache::default();
        assert!(cache.get().is_none());
        let waiting = tokio::spawn({
            let cache = cache.clone();
            async move { cache.published().await.len() }
        });
        let (store, _writer) = reflector::store::<ServiceRefresh>();
        cache.publish(store);
        assert_eq!(waiting.await.unwrap(), 0);
        assert!(cache.get().is_some());
    }
}
