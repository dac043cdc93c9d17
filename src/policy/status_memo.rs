//! Read-your-writes for status: the status this process last wrote per resource, with the
//! status it replaced. Until the cache catches up with a write, a pass must see the written
//! status, or a Deployment event racing ahead of our own write's watch event would make the
//! engine repeat work it has already done (and recorded).

use std::collections::HashMap;
use std::sync::Mutex;

use super::lock;
use crate::crd::{ServiceRefresh, ServiceRefreshStatus};

#[derive(Default)]
pub struct StatusMemo {
    by_uid: Mutex<HashMap<String, Written>>,
}

struct Written {
    replaced: Option<ServiceRefreshStatus>,
    written: ServiceRefreshStatus,
}

impl StatusMemo {
    /// The status a pass should work from: the one we wrote, while the cache still shows
    /// the one it replaced; otherwise the cached one (and the memo entry is dropped, since
    /// the cache has caught up or someone else wrote since).
    pub fn freshest(&self, cached: &ServiceRefresh) -> Option<ServiceRefreshStatus> {
        let uid = cached.metadata.uid.as_ref()?;
        let mut memo = lock(&self.by_uid);
        match memo.get(uid) {
            Some(entry) if entry.replaced == cached.status => Some(entry.written.clone()),
            Some(_) => {
                memo.remove(uid);
                None
            }
            None => None,
        }
    }

    /// Records a successful write of `written` over `replaced` (what the pass started from).
    pub fn remember(
        &self,
        refresh: &ServiceRefresh,
        replaced: Option<ServiceRefreshStatus>,
        written: ServiceRefreshStatus,
    ) {
        if let Some(uid) = refresh.metadata.uid.clone() {
            lock(&self.by_uid).insert(uid, Written { replaced, written });
        }
    }

    /// Drops what is known of a deleted resource.
    pub fn forget(&self, refresh: &ServiceRefresh) {
        if let Some(uid) = &refresh.metadata.uid {
            lock(&self.by_uid).remove(uid);
        }
    }

    /// Drops every entry: a new leadership term starts from what the cluster says, since
    /// another replica may have written since this one last did.
    pub fn clear(&self) {
        lock(&self.by_uid).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Phase;

    fn refresh(status: Option<ServiceRefreshStatus>) -> ServiceRefresh {
        let mut refresh = ServiceRefresh::new(
            "r",
            serde_json::from_value(serde_json::json!({"selector": {}})).expect("spec"),
        );
        refresh.metadata.uid = Some("uid-1".to_owned());
        refresh.status = status;
        refresh
    }

    fn phase(phase: Phase) -> ServiceRefreshStatus {
        ServiceRefreshStatus { phase: Some(phase), ..Default::default() }
    }

    #[test]
    fn a_lagging_cache_is_overlaid_with_the_written_status() {
        let memo = StatusMemo::default();
        let before = refresh(Some(phase(Phase::Pending)));
        memo.remember(&before, before.status.clone(), phase(Phase::Running));
        assert_eq!(memo.freshest(&before), Some(phase(Phase::Running)));
        // Asking again does not consume the entry while the cache still lags.
        assert_eq!(memo.freshest(&before), Some(phase(Phase::Running)));
    }

    #[test]
    fn a_new_term_starts_without_overlays() {
        // Fixed hazard: a replica leading again must not lay a status it wrote in an earlier
        // term over a cache that still shows the status that write replaced.
        let memo = StatusMemo::default();
        let before = refresh(Some(phase(Phase::Pending)));
        memo.remember(&before, before.status.clone(), phase(Phase::Running));
        memo.clear();
        assert_eq!(memo.freshest(&before), None);
    }

    #[test]
    fn a_cache_that_caught_up_or_moved_on_wins() {
        let memo = StatusMemo::default();
        let before = refresh(None);
        memo.remember(&before, None, phase(Phase::Running));
        let caught_up = refresh(Some(phase(Phase::Running)));
        assert_eq!(memo.freshest(&caught_up), None);
        // The entry is gone: an older cached copy no longer gets the overlay.
        assert_eq!(memo.freshest(&before), None);

        memo.remember(&before, None, phase(Phase::Running));
        let someone_else_wrote = refresh(Some(phase(Phase::Failed)));
        assert_eq!(memo.freshest(&someone_else_wrote), None);
    }

    #[test]
    fn a_deleted_resource_is_forgotten_and_uidless_objects_are_ignored() {
        let memo = StatusMemo::default();
        let before = refresh(None);
        memo.remember(&before, None, phase(Phase::Running));
        memo.forget(&before);
        assert_eq!(memo.freshest(&before), None);
        let mut no_uid = refresh(None);
        no_uid.metadata.uid = None;
        memo.remember(&no_uid, None, phase(Phase::Running));
        assert_eq!(memo.freshest(&no_uid), None);
    }
}
