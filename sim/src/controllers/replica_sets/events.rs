//! The Deployment controller's Events about its ReplicaSets
//! (`ScalingReplicaSet`).

use serde_json::Value;

use crate::controllers::events::{EventNote, Recorder, record};
use crate::state::SimState;
use crate::store::StoreInner;

/// Records the Deployment controller's `ScalingReplicaSet` Event.
pub fn record_scaling(
    sim: &SimState,
    store: &mut StoreInner,
    deployment: &Value,
    replica_set: &str,
    from: u64,
    to: u64,
) {
    let direction = if from < to { "up" } else { "down" };
    let message = format!("Scaled {direction} replica set {replica_set} from {from} to {to}");
    let note = EventNote { kind: "Normal", reason: "ScalingReplicaSet", message: &message };
    record(sim, store, deployment, &Recorder::Legacy { component: "deployment-controller" }, &note);
}
