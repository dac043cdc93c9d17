//! The plan of each resource's current run, joined once from its plan objects and kept
//! while the run's status refers to it: a plan of thousands of services is read for every
//! pass, so joining its parts each time would cost more than the pass. It also gives
//! read-your-writes: a plan this process wrote is known before the cache shows its objects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::lock;
use crate::crd::{PlanRef, ServiceRefreshPlan};
use crate::engine::Plan;

/// The latest plan of each ServiceRefresh, by its uid.
#[derive(Default)]
pub struct PlanMemo {
    by_refresh: Mutex<HashMap<String, Arc<Plan>>>,
}

impl PlanMemo {
    /// Remembers the plan this process just wrote for the resource with `uid`.
    pub fn remember(&self, uid: &str, plan: Plan) {
        lock(&self.by_refresh).insert(uid.to_owned(), Arc::new(plan));
    }

    /// The plan `reference` names for the resource with `uid`, if it is the one remembered.
    pub fn get(&self, uid: &str, reference: &PlanRef) -> Option<Arc<Plan>> {
        lock(&self.by_refresh).get(uid).filter(|plan| plan.digest() == reference.digest).cloned()
    }

    /// The plan `reference` names, joined from `objects` and remembered from then on. `None`
    /// while the objects do not add up to it.
    pub fn join<'a>(
        &self,
        uid: &str,
        reference: &PlanRef,
        objects: impl IntoIterator<Item = &'a ServiceRefreshPlan>,
    ) -> Option<Arc<Plan>> {
        let plan = Arc::new(Plan::from_objects(reference, objects).ok()?);
        lock(&self.by_refresh).insert(uid.to_owned(), plan.clone());
        Some(plan)
    }

    /// Forgets the plan of a deleted resource.
    pub fn forget(&self, uid: &str) {
        lock(&self.by_refresh).remove(uid);
    }

    /// Forgets everything: a new leadership term reads the cluster afresh.
    pub fn clear(&self) {
        lock(&self.by_refresh).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ServiceRefresh;
    use crate::engine::{ObjectKey, PlanEntry};

    fn plan(names: &[&str]) -> Plan {
        let entries = names
            .iter()
            .map(|name| PlanEntry { key: ObjectKey::new("arcgis", *name), wave: 0 })
            .collect();
        Plan::new("run", entries)
    }

    #[test]
    fn a_written_plan_is_known_before_the_cache_shows_it_and_joined_once() {
        let refresh = ServiceRefresh::fixture("refresh").build();
        let memo = PlanMemo::default();
        let written = plan(&["a", "b"]);
        let reference = written.reference(&refresh, 1);
        memo.remember("uid", written.clone());
        assert_eq!(memo.get("uid", &reference).as_deref(), Some(&written));

        // Another run's plan is joined from the objects, then remembered.
        let next = plan(&["a", "b", "c"]);
        let next_reference = next.reference(&refresh, 2);
        assert_eq!(memo.get("uid", &next_reference), None, "another run's plan");
        let objects = next.objects(&refresh, 2);
        assert_eq!(memo.join("uid", &next_reference, &objects).as_deref(), Some(&next));
        assert_eq!(memo.get("uid", &next_reference).as_deref(), Some(&next));
    }

    #[test]
    fn objects_that_do_not_add_up_give_no_plan() {
        let refresh = ServiceRefresh::fixture("refresh").build();
        let memo = PlanMemo::default();
        let written = plan(&["a"]);
        let reference = written.reference(&refresh, 1);
        assert_eq!(memo.join("uid", &reference, Vec::<&ServiceRefreshPlan>::new()), None);
        memo.remember("uid", written);
        memo.forget("uid");
        assert_eq!(memo.get("uid", &reference), None);
    }

    #[test]
    fn clearing_forgets_every_remembered_plan() {
        // A new leadership term must read plans from the cluster, not trust what this
        // replica wrote in an earlier term.
        let refresh = ServiceRefresh::fixture("refresh").build();
        let memo = PlanMemo::default();
        let first = plan(&["a"]);
        let second = plan(&["a", "b"]);
        let first_reference = first.reference(&refresh, 1);
        let second_reference = second.reference(&refresh, 1);
        memo.remember("uid-1", first);
        memo.remember("uid-2", second);
        memo.clear();
        assert_eq!(memo.get("uid-1", &first_reference), None);
        assert_eq!(memo.get("uid-2", &second_reference), None);
    }
}
