//! Reading the target ServiceRefresh from the operator's reflector cache: no request to the
//! API server per HTTP request. Waits (briefly, with a deadline) for the cache to be filled
//! at start-up, and after a write for the cache to show it, so a client that submits a job
//! and asks for it at once finds it (read-your-writes).

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::{ObjectRef, Store};
use thiserror::Error;
use tokio::time::Instant;

use super::config::TargetRef;
use servicerefresh_core::crd::ServiceRefresh;
use servicerefresh_operator::controller::RefreshCache;

/// How long a request waits for the cache to be filled at start-up.
pub const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a write waits for the cache to show it.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the cache is looked at while waiting for it to catch up.
const CATCH_UP_POLL: Duration = Duration::from_millis(10);

/// Why the target cannot be read.
#[derive(Debug, Error)]
pub enum CacheError {
    #[error("the operator's ServiceRefresh cache is not filled yet (waited {0:?})")]
    NotReady(Duration),
    #[error("the ServiceRefresh {target} that this job API runs does not exist")]
    TargetMissing { target: TargetRef },
}

/// The target ServiceRefresh as the operator's cache holds it.
#[derive(Clone, Debug)]
pub struct CachedTarget {
    cache: RefreshCache,
    target: TargetRef,
}

impl CachedTarget {
    pub fn new(cache: RefreshCache, target: TargetRef) -> Self {
        Self { cache, target }
    }

    pub fn target(&self) -> &TargetRef {
        &self.target
    }

    fn key(&self) -> ObjectRef<ServiceRefresh> {
        ObjectRef::new(&self.target.name).within(&self.target.namespace)
    }

    async fn ready_store(&self) -> Result<Store<ServiceRefresh>, CacheError> {
        let ready = async {
            let store = self.cache.published().await;
            // An error means the operator stopped before its first list: never ready.
            if store.wait_until_ready().await.is_err() {
                std::future::pending::<()>().await;
            }
            store
        };
        tokio::time::timeout(READY_TIMEOUT, ready)
            .await
            .map_err(|_| CacheError::NotReady(READY_TIMEOUT))
    }

    /// The target, once the cache is filled.
    pub async fn current(&self) -> Result<Arc<ServiceRefresh>, CacheError> {
        let store = self.ready_store().await?;
        store
            .get(&self.key())
            .ok_or_else(|| CacheError::TargetMissing { target: self.target.clone() })
    }

    /// Waits until the cached target's resourceVersion differs from `seen` (a write
    /// conditional on `seen` changed it, so any other version includes that write), or until
    /// the deadline. Returns the newest cached object.
    pub async fn wait_past(&self, seen: Option<&str>) -> Result<Arc<ServiceRefresh>, CacheError> {
        self.wait_until(|refresh| refresh.metadata.resource_version.as_deref() != seen).await
    }

    /// Waits until the cached target is gone or `shows` takes it, or until the deadline.
    /// Returns the newest cached object.
    pub async fn wait_until(
        &self,
        shows: impl Fn(&ServiceRefresh) -> bool,
    ) -> Result<Arc<ServiceRefresh>, CacheError> {
        let store = self.ready_store().await?;
        let deadline = Instant::now() + CATCH_UP_TIMEOUT;
        loop {
            let current = store.get(&self.key());
            let moved = current.as_deref().is_none_or(&shows);
            if moved || Instant::now() >= deadline {
                return current
                    .ok_or_else(|| CacheError::TargetMissing { target: self.target.clone() });
            }
            tokio::time::sleep(CATCH_UP_POLL).await;
        }
    }
}
