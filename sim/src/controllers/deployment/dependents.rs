//! How the Deployment controller follows the objects it derives: someone
//! else removing (or starting to remove) a ReplicaSet or Pod of a rolling
//! Deployment, the scheduler binding one of its waiting pods, or a pod that
//! runs for real getting ready or unready makes it bring that Deployment's
//! objects (and its plan: rebased with nodes, or following the pods) in
//! line.

use serde_json::Value;

use super::{Controller, deployments};
use crate::controllers::owners::{is_deleting, owner_refs};
use crate::controllers::replica_sets::{self, Defs, is_bound, is_pod_ready};
use crate::error::GroupResource;
use crate::store::{EventType, StoredEvent};
use crate::util::now_ms;

impl Controller {
    /// Reacts to a change of a ReplicaSet or Pod.
    pub(super) fn on_dependent_event(&mut self, event: &StoredEvent) {
        // Someone else removed (or started removing) a ReplicaSet or Pod of
        // a rolling Deployment: bring its objects back in line. The
        // scheduler binding a waiting pod moves its rollout on.
        let replaced = event.etype == EventType::Deleted
            || (is_deleting(&event.object)
                && event.prev.as_deref().is_some_and(|prev| !is_deleting(prev)));
        let is_pod = event.gr == GroupResource::new("", "pods");
        let bound = is_pod
            && event.prev.as_deref().is_some_and(|prev| !is_bound(prev))
            && is_bound(&event.object);
        // A pod that runs for real became ready or unready: its Deployment's
        // rollout follows.
        let readiness_changed = is_pod
            && event.etype == EventType::Modified
            && event
                .prev
                .as_deref()
                .is_some_and(|prev| is_pod_ready(prev) != is_pod_ready(&event.object));
        if !replaced && !bound && !readiness_changed {
            return;
        }
        let owner = if event.gr == GroupResource::new("apps", "replicasets") {
            controller_name(&event.object, "Deployment")
        } else if event.gr == GroupResource::new("", "pods") {
            controller_name(&event.object, "ReplicaSet").and_then(|replica_set| {
                let store = self.sim.store.lock();
                let rs = store.get(
                    &GroupResource::new("apps", "replicasets"),
                    &event.namespace,
                    &replica_set,
                )?;
                controller_name(&rs, "Deployment")
            })
        } else {
            None
        };
        let Some(name) = owner else {
            return;
        };
        let key = (event.namespace.clone(), name);
        let Some(known) = self.tracked.get_mut(&key) else {
            return;
        };
        if !replaced && !bound && known.plan.observed.is_none() {
            return;
        }
        let now = now_ms();
        if known.workload.is_none() && self.sim.config.workload_objects {
            // A Deployment found settled (the generated fleet): its objects
            // are its plan's final state.
            let mut store = self.sim.store.lock();
            if let (Some(defs), Some(deployment)) =
                (Defs::lookup(&store), store.get(&deployments(), &key.0, &key.1))
            {
                let workload = replica_sets::begin(
                    &self.sim,
                    &mut store,
                    &defs,
                    &deployment,
                    &known.plan,
                    None,
                );
                known.workload = Some(workload);
                known.applied = Some(known.plan.counts_at(now));
            }
        }
        if known.workload.is_some() {
            known.stale = true;
            self.schedule(&key, Some(now));
        }
    }
}

/// The name of an object's controller of `kind`, from its owner references.
fn controller_name(object: &Value, kind: &str) -> Option<String> {
    owner_refs(object)
        .into_iter()
        .find(|reference| reference.controller && reference.kind == kind)
        .map(|reference| reference.name)
}
