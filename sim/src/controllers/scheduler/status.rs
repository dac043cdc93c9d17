//! What the scheduler writes: a pod's `PodScheduled` condition (`False`,
//! reason `Unschedulable`, with the `FitError` message; `True` once bound),
//! its binding to a node, and its Events (`FailedScheduling`, `Scheduled`)
//! through the `events.k8s.io` recorder, as `default-scheduler`.

use std::sync::Arc;

use serde_json::{Value, json};

use super::SCHEDULER_NAME;
use crate::controllers::events::{EventNote, Recorder, record};
use crate::error::GroupResource;
use crate::placement::qos_class;
use crate::state::SimState;
use crate::store::StoreInner;
use crate::util::{metadata_str, now_rfc3339};
use crate::write::{self, WriteOptions};

/// The field manager of the scheduler's writes.
const MANAGER: &str = "kube-scheduler";

fn recorder() -> Recorder<'static> {
    Recorder::EventsApi {
        controller: SCHEDULER_NAME,
        instance: "default-scheduler-sim-control-plane",
        action: "Scheduling",
    }
}

/// The stored pod of `pod` (by namespace and name).
fn stored(store: &StoreInner, pod: &Value) -> Option<Arc<Value>> {
    store.get(
        &GroupResource::new("", "pods"),
        metadata_str(pod, "namespace").unwrap_or(""),
        metadata_str(pod, "name").unwrap_or(""),
    )
}

/// The pod's conditions with `PodScheduled` replaced by `condition` (its
/// transition time kept while its status stays).
fn with_scheduled(pod: &Value, mut condition: Value) -> Vec<Value> {
    let mut conditions: Vec<Value> =
        pod.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(old) = conditions.iter().find(|old| old["type"] == "PodScheduled")
        && old["status"] == condition["status"]
    {
        condition["lastTransitionTime"] = old["lastTransitionTime"].clone();
    }
    conditions.retain(|old| old["type"] != "PodScheduled");
    conditions.push(condition);
    conditions
}

fn write_status(store: &mut StoreInner, pod: &Arc<Value>, status: Value) {
    let Some(def) = store.registry.get("", "v1", "pods") else {
        return;
    };
    let options = WriteOptions { subresource: Some("status"), ..WriteOptions::internal(MANAGER) };
    if let Err(error) = write::update(store, &def, pod, json!({"status": status}), &options) {
        tracing::debug!(error = %error, "writing a pod's scheduling status failed");
    }
}

/// Marks a pod no node takes: `PodScheduled=False`/`Unschedulable` with
/// `message`, and a `FailedScheduling` Event when the message is new.
pub fn unschedulable(sim: &SimState, store: &mut StoreInner, pod: &Value, message: &str) {
    let Some(current) = stored(store, pod) else {
        return;
    };
    let unchanged =
        current.pointer("/status/conditions").and_then(Value::as_array).into_iter().flatten().any(
            |condition| {
                condition["type"] == "PodScheduled"
                    && condition["status"] == "False"
                    && condition["message"] == message
            },
        );
    if unchanged {
        return;
    }
    let condition = json!({
        "type": "PodScheduled",
        "status": "False",
        "lastProbeTime": null,
        "lastTransitionTime": now_rfc3339(),
        "reason": "Unschedulable",
        "message": message,
    });
    let containers: Vec<Value> =
        current.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut status =
        current.get("status").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    status["phase"] = json!("Pending");
    status["conditions"] = json!(with_scheduled(&current, condition));
    status["qosClass"] = json!(qos_class(&containers));
    write_status(store, &current, status);
    let note = EventNote { kind: "Warning", reason: "FailedScheduling", message };
    let about = stored(store, pod).unwrap_or(current);
    record(sim, store, &about, &recorder(), &note);
}

/// Binds a waiting pod to `node`: its `spec.nodeName`, then
/// `PodScheduled=True`, and the `Scheduled` Event.
pub fn bind(sim: &SimState, store: &mut StoreInner, pod: &Arc<Value>, node: &str) {
    let Some(def) = store.registry.get("", "v1", "pods") else {
        return;
    };
    let mut bound = (**pod).clone();
    if let Some(spec) = bound.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("nodeName".into(), json!(node));
    }
    let bound = match write::update(store, &def, pod, bound, &WriteOptions::internal(MANAGER)) {
        Ok(bound) => Arc::new(bound),
        Err(error) => {
            tracing::debug!(error = %error, "binding a pod failed");
            return;
        }
    };
    let condition = json!({
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": now_rfc3339(),
    });
    let mut status =
        bound.get("status").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    status["conditions"] = json!(with_scheduled(&bound, condition));
    write_status(store, &bound, status);
    let message = format!(
        "Successfully assigned {}/{} to {node}",
        metadata_str(&bound, "namespace").unwrap_or(""),
        metadata_str(&bound, "name").unwrap_or("")
    );
    let note = EventNote { kind: "Normal", reason: "Scheduled", message: &message };
    let about = stored(store, &bound).unwrap_or(bound);
    record(sim, store, &about, &recorder(), &note);
}
