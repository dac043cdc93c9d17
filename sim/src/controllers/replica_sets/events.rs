//! The Deployment controller's Events about its ReplicaSets
//! (`ScalingReplicaSet`).

use serde_json::Value;

use super::Defs;
use crate::controllers::events::Recorder;
use crate::state::SimState;
use crate::store::StoreInner;

/// Records the Deployment controller's `ScalingReplicaSet` Event.
pub fn record_scaling(
    sim: &SimState,
    store: &mut StoreInner,
    defs: &Defs,
    deployment: &Value,
    replica_set: &str,
    from: u64,
    to: u64,
) {
    let direction = if from < to { "up" } else { "down" };
    let message = format!("Scaled {direction} replica set {replica_set} from {from} to {to}");
    let recorder = Recorder {
        events: &defs.events,
        component: "deployment-controller",
        api_version: "apps/v1",
        kind: "Deployment",
    };
    recorder.normal(sim, store, deployment, "ScalingReplicaSet", &message);
}
