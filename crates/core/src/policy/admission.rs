//! Cluster-wide run slots: at most `limit` ServiceRefreshes run at once; the others queue
//! and are admitted in the order they started waiting. The reflector cache may lag behind
//! this process's own status writes, so a resource admitted here counts as holding its slot
//! until the cache shows its run (or shows it deleted).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use super::lock;
use crate::engine::{ObjectKey, SlotHolder};

/// A cached ServiceRefresh as admission sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedRefresh {
    pub key: ObjectKey,
    /// Its status shows an active run.
    pub holds_slot: bool,
    pub suspended: bool,
}

#[derive(Default)]
struct SlotState {
    /// Admitted by this process; the cache does not show their runs yet.
    admitted: BTreeSet<ObjectKey>,
    /// Resources waiting for a slot, in the order they first asked.
    queue: Vec<ObjectKey>,
}

/// The run slots of one operator process (the leader's, when several replicas run).
pub struct RunSlots {
    limit: usize,
    state: Mutex<SlotState>,
}

impl RunSlots {
    pub fn new(limit: usize) -> Self {
        Self { limit: limit.max(1), state: Mutex::new(SlotState::default()) }
    }

    /// Admits `me` if a slot is free and no resource that waited longer is still waiting;
    /// otherwise queues it and returns who holds the slots.
    pub fn try_admit(
        &self,
        me: &ObjectKey,
        cached: &[CachedRefresh],
    ) -> Result<(), Vec<SlotHolder>> {
        let mut state = lock(&self.state);
        let present: HashMap<&ObjectKey, &CachedRefresh> =
            cached.iter().map(|refresh| (&refresh.key, refresh)).collect();
        // An admission matters only until the cache shows the run it started; one whose
        // resource is gone from the cache was deleted and must not keep its slot.
        state.admitted.retain(|key| present.get(key).is_some_and(|refresh| !refresh.holds_slot));
        state.queue.retain(|key| present.get(key).is_some_and(|refresh| !refresh.holds_slot));

        if state.admitted.contains(me) {
            return Ok(());
        }
        let holders = holders(&state, cached, me);
        let free = self.limit.saturating_sub(holders.len());
        if !state.queue.contains(me) {
            state.queue.push(me.clone());
        }
        let position = state.queue.iter().position(|key| key == me).unwrap_or(0);
        if position < free {
            state.queue.retain(|key| key != me);
            state.admitted.insert(me.clone());
            Ok(())
        } else {
            Err(holders)
        }
    }

    /// Who holds the slots, as `me` would be told while it waits.
    pub fn holders(&self, me: &ObjectKey, cached: &[CachedRefresh]) -> Vec<SlotHolder> {
        holders(&lock(&self.state), cached, me)
    }

    /// How many resources wait for a slot.
    pub fn queued(&self) -> usize {
        lock(&self.state).queue.len()
    }

    /// Forgets every admission and the queue: a new leadership term starts from what the
    /// cluster says, and queued resources ask again when they are reconciled.
    pub fn reset(&self) {
        *lock(&self.state) = SlotState::default();
    }

    /// `me` neither runs nor waits any longer (its run ended, it wants none, or it was
    /// deleted). Returns the resources still queued, which a freed slot should wake.
    pub fn release(&self, me: &ObjectKey) -> Vec<ObjectKey> {
        let mut state = lock(&self.state);
        state.admitted.remove(me);
        state.queue.retain(|key| key != me);
        state.queue.clone()
    }
}

fn holders(state: &SlotState, cached: &[CachedRefresh], me: &ObjectKey) -> Vec<SlotHolder> {
    let mut holders: Vec<SlotHolder> = cached
        .iter()
        .filter(|refresh| refresh.holds_slot && refresh.key != *me)
        .map(|refresh| SlotHolder { key: refresh.key.clone(), suspended: refresh.suspended })
        .collect();
    for key in state.admitted.iter().filter(|key| *key != me) {
        if !holders.iter().any(|holder| holder.key == *key) {
            holders.push(SlotHolder { key: key.clone(), suspended: false });
        }
    }
    holders.sort_by(|a, b| a.key.cmp(&b.key));
    holders
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new("arcgis", name)
    }

    fn idle(name: &str) -> CachedRefresh {
        CachedRefresh { key: key(name), holds_slot: false, suspended: false }
    }

    fn running(name: &str) -> CachedRefresh {
        CachedRefresh { key: key(name), holds_slot: true, suspended: false }
    }

    #[test]
    fn one_slot_admits_one_run_and_names_the_holder() {
        let slots = RunSlots::new(1);
        let cache = [idle("a"), idle("b")];
        assert_eq!(slots.try_admit(&key("a"), &cache), Ok(()));
        // The cache has not seen a's run yet; the admission still holds the slot.
        let refused = slots.try_admit(&key("b"), &cache).unwrap_err();
        assert_eq!(refused, vec![SlotHolder { key: key("a"), suspended: false }]);
        // Once the cache shows the run, the slot is held through the cache.
        let cache = [CachedRefresh { key: key("a"), holds_slot: true, suspended: true }, idle("b")];
        assert_eq!(
            slots.try_admit(&key("b"), &cache).unwrap_err(),
            vec![SlotHolder { key: key("a"), suspended: true }]
        );
        // When a's run ends and a wants another, b waited longer and goes first.
        assert!(slots.try_admit(&key("a"), &[idle("a"), idle("b")]).is_err());
        assert_eq!(slots.try_admit(&key("b"), &[idle("a"), idle("b")]), Ok(()));
    }

    #[test]
    fn asking_again_before_the_cache_shows_the_run_is_no_conflict() {
        let slots = RunSlots::new(1);
        assert_eq!(slots.try_admit(&key("a"), &[idle("a")]), Ok(()));
        assert_eq!(slots.try_admit(&key("a"), &[idle("a")]), Ok(()));
    }

    #[test]
    fn a_deleted_admitted_resource_frees_its_slot() {
        // Fixed bug: an admitted resource deleted before the cache showed its run kept the
        // slot for ever, because nothing released it.
        let slots = RunSlots::new(1);
        assert_eq!(slots.try_admit(&key("a"), &[idle("a"), idle("b")]), Ok(()));
        assert!(slots.try_admit(&key("b"), &[idle("a"), idle("b")]).is_err());
        assert_eq!(slots.try_admit(&key("b"), &[idle("b")]), Ok(()));
    }

    #[test]
    fn releasing_frees_the_slot_and_names_who_to_wake() {
        // Fixed bug: an idle resource that took a slot only to find nothing to run turned
        // others away; the shell releases a slot whenever a pass starts no run.
        let slots = RunSlots::new(1);
        assert_eq!(slots.try_admit(&key("a"), &[idle("a"), idle("b"), idle("c")]), Ok(()));
        assert!(slots.try_admit(&key("b"), &[idle("a"), idle("b"), idle("c")]).is_err());
        assert!(slots.try_admit(&key("c"), &[idle("a"), idle("b"), idle("c")]).is_err());
        assert_eq!(slots.release(&key("a")), vec![key("b"), key("c")]);
        // b waited longer than c: c is turned away while b has not taken the slot.
        assert!(slots.try_admit(&key("c"), &[idle("a"), idle("b"), idle("c")]).is_err());
        assert_eq!(slots.try_admit(&key("b"), &[idle("a"), idle("b"), idle("c")]), Ok(()));
    }

    #[test]
    fn a_queued_resource_that_stops_waiting_does_not_block_the_queue() {
        let slots = RunSlots::new(1);
        let cache = [running("x"), idle("b"), idle("c")];
        assert!(slots.try_admit(&key("b"), &cache).is_err());
        assert!(slots.try_admit(&key("c"), &cache).is_err());
        slots.release(&key("b"));
        let cache = [idle("x"), idle("b"), idle("c")];
        assert_eq!(slots.try_admit(&key("c"), &cache), Ok(()));
    }

    #[test]
    fn a_queued_resource_that_was_deleted_leaves_the_queue() {
        let slots = RunSlots::new(1);
        assert!(slots.try_admit(&key("b"), &[running("x"), idle("b"), idle("c")]).is_err());
        assert!(slots.try_admit(&key("c"), &[running("x"), idle("b"), idle("c")]).is_err());
        assert_eq!(slots.try_admit(&key("c"), &[idle("x"), idle("c")]), Ok(()));
    }

    #[test]
    fn more_slots_admit_in_queue_order() {
        let slots = RunSlots::new(2);
        let cache = [running("x"), running("y"), idle("a"), idle("b"), idle("c")];
        for name in ["a", "b", "c"] {
            assert!(slots.try_admit(&key(name), &cache).is_err());
        }
        let cache = [idle("x"), idle("y"), idle("a"), idle("b"), idle("c")];
        assert!(slots.try_admit(&key("c"), &cache).is_err(), "a and b waited longer");
        assert_eq!(slots.try_admit(&key("b"), &cache), Ok(()));
        assert_eq!(slots.try_admit(&key("a"), &cache), Ok(()));
        assert!(slots.try_admit(&key("c"), &cache).is_err(), "both slots are taken");
    }

    #[test]
    fn a_reset_forgets_admissions_and_the_queue() {
        let slots = RunSlots::new(1);
        assert_eq!(slots.try_admit(&key("a"), &[idle("a"), idle("b")]), Ok(()));
        assert!(slots.try_admit(&key("b"), &[idle("a"), idle("b")]).is_err());
        assert_eq!(slots.queued(), 1);
        slots.reset();
        assert_eq!(slots.queued(), 0);
        assert_eq!(
            slots.try_admit(&key("b"), &[idle("a"), idle("b")]),
            Ok(()),
            "a's admission is gone"
        );
    }

    #[test]
    fn a_poisoned_lock_does_not_refuse_admission() {
        let slots = std::sync::Arc::new(RunSlots::new(1));
        let poisoner = slots.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.state.lock();
            panic!("poison the lock");
        })
        .join();
        assert!(slots.state.is_poisoned());
        assert_eq!(slots.try_admit(&key("a"), &[idle("a")]), Ok(()));
    }

    #[test]
    fn holders_names_cached_runs_and_unseen_admissions_but_not_the_asker() {
        // A waiting resource's status names who holds the slots; it must list both the runs
        // the cache shows and the admissions the cache has not caught up with yet.
        let slots = RunSlots::new(2);
        let cache = [running("x"), idle("a"), idle("b")];
        assert_eq!(slots.try_admit(&key("a"), &cache), Ok(()));
        let expected = vec![
            SlotHolder { key: key("a"), suspended: false },
            SlotHolder { key: key("x"), suspended: false },
        ];
        assert_eq!(slots.holders(&key("b"), &cache), expected);
        assert_eq!(
            slots.holders(&key("a"), &cache),
            vec![SlotHolder { key: key("x"), suspended: false }],
            "a resource does not wait for itself"
        );
    }
}
