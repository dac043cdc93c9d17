//! Read-your-writes for status: the status this process last wrote per resource, with the
//! status it replaced. Until the cache catches up with a write, a pass must see the written
//! status, or a Deployment event racing ahead of our own write's watch event would make the
//! engine repeat work it has already done (and recorded). Writes made back to back while
//! the cache lags form a chain: the latest one is overlaid for as long as the cache shows
//! any status the chain replaced.

use std::collections::HashMap;
use std::sync::Mutex;

use super::lock;
use crate::crd::{ServiceRefresh, ServiceRefreshStatus};

#[derive(Default)]
pub struct StatusMemo {
    by_uid: Mutex<HashMap<String, Written>>,
}

/// Most statuses one chain remembers as replaced; a cache that far behind is re-read.
const MAX_CHAIN: usize = 16;

struct Written {
    /// Every status this chain of writes replaced, oldest first.
    replaced: Vec<Option<ServiceRefreshStatus>>,
    written: ServiceRefreshStatus,
}

impl Written {
    fn overlays(&self, cached: &Option<ServiceRefreshStatus>) -> bool {
        self.replaced.contains(cached)
    }
}

impl StatusMemo {
    /// The status a pass should work from: the one we wrote last, while the cache still
    /// shows one it replaced; otherwise the cached one (and the memo entry is dropped, since
    /// the cache has caught up or someone else wrote since).
    pub fn freshest(&self, cached: &ServiceRefresh) -> Option<ServiceRefreshStatus> {
        let uid = cached.metadata.uid.as_ref()?;
        let mut memo = lock(&self.by_uid);
        match memo.get(uid) {
            Some(entry) if entry.overlays(&cached.status) => Some(entry.written.clone()),
            Some(_) => {
                memo.remove(uid);
                None
            }
            None => None,
        }
    }

    /// What [`Self::freshest`] would say, without dropping an entry the cache caught up
    /// with: for readers (metrics) that must not change what the next pass sees.
    pub fn peek(&self, cached: &ServiceRefresh) -> Option<ServiceRefreshStatus> {
        let uid = cached.metadata.uid.as_ref()?;
        lock(&self.by_uid)
            .get(uid)
            .filter(|entry| entry.overlays(&cached.status))
            .map(|entry| entry.written.clone())
    }

    /// Records a successful write of `written` over `replaced` (what the pass started from).
    /// A pass that started from our previous write extends that chain.
    pub fn remember(
        &self,
        refresh: &ServiceRefresh,
        replaced: Option<ServiceRefreshStatus>,
        written: ServiceRefreshStatus,
    ) {
        let Some(uid) = refresh.metadata.uid.clone() else {
            return;
        };
        let mut memo = lock(&self.by_uid);
        match memo.get_mut(&uid) {
            Some(entry) if replaced.as_ref() == Some(&entry.written) => {
                if entry.replaced.len() == MAX_CHAIN {
                    entry.replaced.remove(0);
                }
                entry.replaced.push(replaced);
                entry.written = written;
            }
            _ => {
                memo.insert(uid, Written { replaced: vec![replaced], written });
            }
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
    fn back_to_back_writes_stay_overlaid_while_the_cache_shows_any_status_they_replaced() {
        // Fixed bug: a third pass over a cache two writes behind saw the cached status, since
        // the memo only remembered what the last write replaced, and the run started again.
        let memo = StatusMemo::default();
        let empty = refresh(None);
        memo.remember(&empty, None, phase(Phase::Pending));
        memo.remember(&empty, Some(phase(Phase::Pending)), phase(Phase::Running));
        assert_eq!(memo.freshest(&empty), Some(phase(Phase::Running)), "cache before both");
        let first_seen = refresh(Some(phase(Phase::Pending)));
        assert_eq!(memo.freshest(&first_seen), Some(phase(Phase::Running)), "cache after one");
        let caught_up = refresh(Some(phase(Phase::Running)));
        assert_eq!(memo.freshest(&caught_up), None);
        assert_eq!(memo.freshest(&empty), None, "the chain is gone once the cache caught up");
    }

    #[test]
    fn a_write_from_the_cache_rather_than_the_overlay_starts_a_new_chain() {
        let memo = StatusMemo::default();
        let empty = refresh(None);
        memo.remember(&empty, None, phase(Phase::Pending));
        let other = refresh(Some(phase(Phase::Failed)));
        memo.remember(&other, Some(phase(Phase::Failed)), phase(Phase::Running));
        assert_eq!(memo.freshest(&empty), None, "the older chain was replaced");
    }

    #[test]
    fn peeking_leaves_the_entry_for_the_pass_that_still_holds_the_older_copy() {
        let memo = StatusMemo::default();
        let before = refresh(Some(phase(Phase::Pending)));
        memo.remember(&before, before.status.clone(), phase(Phase::Running));
        let caught_up = refresh(Some(phase(Phase::Running)));
        assert_eq!(memo.peek(&caught_up), None);
        assert_eq!(memo.peek(&before), Some(phase(Phase::Running)));
        assert_eq!(memo.freshest(&before), Some(phase(Phase::Running)), "peek dropped nothing");
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
