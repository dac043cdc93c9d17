//! The simulated kube-scheduler (with `SimConfig::nodes`): places pods on
//! nodes by their requests (`placement` decides, this module writes).
//!
//! A controller that creates a pod asks [`place`] first: a pod a node takes
//! is created bound to it (`spec.nodeName`), as if the scheduler had bound
//! it at once; a pod none takes is created unbound and [`created`] writes
//! what the scheduler writes: `PodScheduled=False`, reason `Unschedulable`,
//! with the `FailedScheduling` message, and the `FailedScheduling` Warning
//! Event (`default-scheduler`). A pod that already names its node is left
//! as it is; a DaemonSet's pod names it in its node affinity, which
//! `placement` honours. Whoever creates pods (ReplicaSets, StatefulSets and
//! DaemonSets) goes through these two calls.
//!
//! The pods waiting for a node (any pod without `spec.nodeName` for
//! `default-scheduler`, pods created through the API included) are tried
//! again in the queue's order, highest priority and oldest first, whenever
//! room may have appeared (a bound pod deleted or finished, a node added or
//! changed, a reservation released): by [`run`], the queue's task, after
//! each such change, and by [`place`] before it places a new pod, so that
//! no new pod takes the room an older one waits for. A pod that now fits
//! is bound (`spec.nodeName`, then `PodScheduled=True`) with a `Scheduled`
//! Event; one that still does not fit keeps its condition, which (with a
//! new Event) changes only when the message does.

mod queue;
mod status;

use serde_json::Value;

use crate::error::GroupResource;
use crate::placement::{self, FitError};
use crate::state::SimState;
use crate::store::StoreInner;

pub use placement::SCHEDULER_NAME;
pub use queue::run;

/// Where a pod about to be created goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// The cluster models no nodes: the caller binds the pod as it likes.
    Unlimited,
    /// The pod names its node already, or is not for this scheduler.
    Untouched,
    /// A node takes it; `spec.nodeName` is set.
    Bound(String),
    /// No node takes it; it is created unbound.
    Unschedulable(FitError),
}

/// The node that takes `pod` now, or why none does.
fn fit(sim: &SimState, store: &StoreInner, pod: &Value) -> Result<String, FitError> {
    let mut cache = sim.node_cache();
    cache.sync(store);
    placement::place(&cache, &placement::Needs::of(pod))
}

/// Places a pod about to be created, setting its `spec.nodeName` when a
/// node takes it. Pods waiting longer are tried first (and bound, when room
/// appeared since they were last tried): a new pod never takes the room an
/// older one waits for. The store must be locked by the caller, which
/// creates the pod next.
pub fn place(sim: &SimState, store: &mut StoreInner, pod: &mut Value) -> Placement {
    if !sim.has_nodes() {
        return Placement::Unlimited;
    }
    if !placement::is_waiting(pod) {
        return Placement::Untouched;
    }
    schedule_waiting(sim, store);
    match fit(sim, store, pod) {
        Ok(node) => {
            if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("nodeName".into(), Value::String(node.clone()));
            }
            Placement::Bound(node)
        }
        Err(error) => Placement::Unschedulable(error),
    }
}

/// What the scheduler writes after the creation of a pod no node took: its
/// `Unschedulable` condition and the `FailedScheduling` Event.
pub fn created(sim: &SimState, store: &mut StoreInner, pod: &Value, placement: &Placement) {
    if let Placement::Unschedulable(error) = placement {
        status::unschedulable(sim, store, pod, &error.to_string());
    }
}

/// Tries the waiting pods that are due (all of them once room may have
/// appeared, else those never tried), in queue order: binds those a node
/// takes now and keeps the others' `Unschedulable` message current.
pub fn schedule_waiting(sim: &SimState, store: &mut StoreInner) {
    let due = {
        let mut cache = sim.node_cache();
        cache.sync(store);
        cache.due_waiting()
    };
    let pods = GroupResource::new("", "pods");
    for (namespace, name) in due {
        let Some(pod) =
            store.get(&pods, &namespace, &name).filter(|pod| placement::is_waiting(pod))
        else {
            continue;
        };
        match fit(sim, store, &pod) {
            Ok(node) => status::bind(sim, store, &pod, &node),
            Err(error) => status::unschedulable(sim, store, &pod, &error.to_string()),
        }
    }
}
