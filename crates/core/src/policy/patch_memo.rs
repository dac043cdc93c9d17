//! Read-your-writes for restart patches: the Deployment as this process's last restart patch
//! left it, laid over the cache while the cache still shows the version the patch was sent
//! against. A status write that fails after its patches went through must not make the next
//! pass believe those Deployments untouched: it would count their rollouts out of the
//! in-flight budget and could start another batch beside them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::lock;
use crate::engine::{DeploymentSnapshot, ObjectKey};

#[derive(Default)]
pub struct PatchMemo {
    by_deployment: Mutex<HashMap<ObjectKey, Patched>>,
}

struct Patched {
    /// The resourceVersion the patch was sent against (its precondition).
    replaced: String,
    written: Arc<DeploymentSnapshot>,
}

impl PatchMemo {
    /// Remembers a patch the API server accepted. Only patches with a resourceVersion
    /// precondition are remembered: without one, a cached copy cannot be told stale.
    pub fn remember(
        &self,
        key: ObjectKey,
        sent_against: Option<&str>,
        written: DeploymentSnapshot,
    ) {
        let Some(replaced) = sent_against else { return };
        lock(&self.by_deployment)
            .insert(key, Patched { replaced: replaced.to_owned(), written: Arc::new(written) });
    }

    /// The Deployment a pass should see: the patched one while the cache still shows the
    /// version the patch replaced; otherwise the cached one, and the entry is dropped (the
    /// cache caught up, moved on, or saw the Deployment deleted).
    pub fn overlay(
        &self,
        key: &ObjectKey,
        cached: Option<Arc<DeploymentSnapshot>>,
    ) -> Option<Arc<DeploymentSnapshot>> {
        let mut memo = lock(&self.by_deployment);
        let Some(patched) = memo.get(key) else { return cached };
        let stale = cached.as_ref().is_some_and(|cached| {
            cached.metadata.resource_version.as_deref() == Some(patched.replaced.as_str())
        });
        if stale {
            return Some(patched.written.clone());
        }
        memo.remove(key);
        cached
    }

    pub fn len(&self) -> usize {
        lock(&self.by_deployment).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(resource_version: &str, restarted_by: Option<&str>) -> DeploymentSnapshot {
        let mut snapshot = DeploymentSnapshot::default();
        snapshot.metadata.resource_version = Some(resource_version.to_owned());
        snapshot.restarted_by = restarted_by.map(str::to_owned);
        snapshot
    }

    fn key() -> ObjectKey {
        ObjectKey::new("arcgis", "svc-0")
    }

    #[test]
    fn a_cache_still_showing_the_patched_version_is_overlaid() {
        let memo = PatchMemo::default();
        memo.remember(key(), Some("7"), snapshot("8", Some("run-1")));
        let seen = memo.overlay(&key(), Some(Arc::new(snapshot("7", None)))).unwrap();
        assert_eq!(seen.restarted_by.as_deref(), Some("run-1"));
        // Still lagging on the next pass: still overlaid.
        let seen = memo.overlay(&key(), Some(Arc::new(snapshot("7", None)))).unwrap();
        assert_eq!(seen.metadata.resource_version.as_deref(), Some("8"));
    }

    #[test]
    fn a_cache_that_caught_up_or_moved_on_wins_and_the_entry_is_dropped() {
        let memo = PatchMemo::default();
        memo.remember(key(), Some("7"), snapshot("8", Some("run-1")));
        assert_eq!(
            (memo.len(), memo.is_empty()),
            (1, false),
            "an entry until the cache catches up"
        );
        let seen = memo.overlay(&key(), Some(Arc::new(snapshot("9", None)))).unwrap();
        assert_eq!(seen.metadata.resource_version.as_deref(), Some("9"));
        assert!(memo.is_empty());
        // Once dropped, even the old version shows as cached (a cache never goes back).
        let seen = memo.overlay(&key(), Some(Arc::new(snapshot("7", None)))).unwrap();
        assert_eq!(seen.restarted_by, None);
    }

    #[test]
    fn a_deleted_deployment_stays_deleted() {
        let memo = PatchMemo::default();
        memo.remember(key(), Some("7"), snapshot("8", Some("run-1")));
        assert!(memo.overlay(&key(), None).is_none());
        assert!(memo.is_empty());
    }

    #[test]
    fn a_patch_without_a_precondition_is_not_remembered() {
        let memo = PatchMemo::default();
        memo.remember(key(), None, snapshot("8", Some("run-1")));
        assert!(memo.is_empty());
        let seen = memo.overlay(&key(), Some(Arc::new(snapshot("7", None)))).unwrap();
        assert_eq!(seen.restarted_by, None);
    }
}
