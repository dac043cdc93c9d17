//! The Deployment controller's Events about its ReplicaSets
//! (`ScalingReplicaSet`), written as the controller manager's event recorder
//! writes core/v1 Events.

use serde_json::{Value, json};

use super::{Defs, create_object, name_of, namespace_of};
use crate::state::SimState;
use crate::store::StoreInner;
use crate::util::{metadata_str, now_rfc3339};

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
    record_event(sim, store, defs, deployment, "ScalingReplicaSet", &message);
}

/// Records a Normal core/v1 Event about a Deployment, as the controller
/// manager's event recorder writes it.
fn record_event(
    sim: &SimState,
    store: &mut StoreInner,
    defs: &Defs,
    deployment: &Value,
    reason: &str,
    message: &str,
) {
    let namespace = namespace_of(deployment);
    let nanos = jiff::Timestamp::now().as_nanosecond();
    let mut name = format!("{}.{:x}", name_of(deployment), nanos);
    let mut bump = 0u32;
    while store.get(&defs.events.storage_gr(), namespace, &name).is_some() && bump < 1000 {
        bump += 1;
        name = format!("{}.{:x}", name_of(deployment), nanos + i128::from(bump));
    }
    let now = now_rfc3339();
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name_of(deployment),
            "namespace": namespace,
            "uid": metadata_str(deployment, "uid").unwrap_or(""),
            "resourceVersion": metadata_str(deployment, "resourceVersion").unwrap_or(""),
        },
        "reason": reason,
        "message": message,
        "source": {"component": "deployment-controller"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": "Normal",
        "eventTime": null,
        "reportingComponent": "deployment-controller",
        "reportingInstance": "",
    });
    if let Err(error) = create_object(sim, store, &defs.events, event) {
        tracing::debug!(error = %error, "recording an Event failed");
    }
}
