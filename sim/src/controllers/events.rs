//! Events the simulated controllers record, as their event recorders write
//! them: the controller manager's `record` recorder (`firstTimestamp`,
//! `lastTimestamp`, `count`, `source`) and the `events.k8s.io` recorder the
//! scheduler uses (`eventTime`, `action`, `reportingController` and
//! `reportingInstance`, no `source`), both stored as core/v1 Events named
//! `<object>.<hex nanoseconds>`.

use serde_json::{Value, json};

use crate::state::SimState;
use crate::store::StoreInner;
use crate::util::{metadata_str, now_rfc3339};
use crate::write::{self, WriteOptions};

/// What an Event says about an object.
pub struct EventNote<'a> {
    /// `Normal` or `Warning`.
    pub kind: &'a str,
    pub reason: &'a str,
    pub message: &'a str,
}

/// Who records an Event, and through which recorder.
pub enum Recorder<'a> {
    /// The controller manager's recorder, as `component` (`deployment-controller`).
    Legacy { component: &'a str },
    /// The `events.k8s.io` recorder of `controller` (`default-scheduler`).
    EventsApi { controller: &'a str, instance: &'a str, action: &'a str },
}

/// The object reference an Event names.
fn reference(object: &Value) -> Value {
    json!({
        "apiVersion": object.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": object.get("kind").cloned().unwrap_or(Value::Null),
        "name": metadata_str(object, "name").unwrap_or(""),
        "namespace": metadata_str(object, "namespace").unwrap_or(""),
        "uid": metadata_str(object, "uid").unwrap_or(""),
        "resourceVersion": metadata_str(object, "resourceVersion").unwrap_or(""),
    })
}

/// Records an Event about `object` in its namespace (`default` for
/// cluster-scoped objects, as the recorders do).
pub fn record(
    sim: &SimState,
    store: &mut StoreInner,
    object: &Value,
    recorder: &Recorder<'_>,
    note: &EventNote<'_>,
) {
    let Some(def) = store.registry.get("", "v1", "events") else {
        return;
    };
    let namespace = match metadata_str(object, "namespace").unwrap_or("") {
        "" => "default",
        namespace => namespace,
    };
    let object_name = metadata_str(object, "name").unwrap_or("");
    let now = jiff::Timestamp::now();
    let nanos = now.as_nanosecond();
    let mut name = format!("{object_name}.{nanos:x}");
    let mut bump = 0u32;
    while store.get(&def.storage_gr(), namespace, &name).is_some() && bump < 1000 {
        bump += 1;
        name = format!("{object_name}.{:x}", nanos + i128::from(bump));
    }
    let mut event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": reference(object),
        "reason": note.reason,
        "message": note.message,
        "type": note.kind,
    });
    match recorder {
        Recorder::Legacy { component } => {
            let at = now_rfc3339();
            event["source"] = json!({"component": component});
            event["firstTimestamp"] = json!(at);
            event["lastTimestamp"] = json!(at);
            event["count"] = json!(1);
            event["eventTime"] = Value::Null;
            event["reportingComponent"] = json!(component);
            event["reportingInstance"] = json!("");
        }
        Recorder::EventsApi { controller, instance, action } => {
            event["source"] = json!({});
            event["firstTimestamp"] = Value::Null;
            event["lastTimestamp"] = Value::Null;
            event["eventTime"] = json!(now.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
            event["action"] = json!(action);
            event["reportingComponent"] = json!(controller);
            event["reportingInstance"] = json!(instance);
        }
    }
    let options = WriteOptions::internal(match recorder {
        Recorder::Legacy { .. } => "kube-controller-manager",
        Recorder::EventsApi { controller, .. } => controller,
    });
    if let Err(error) = write::create(store, &sim.rng, &def, Some(namespace), event, &options) {
        tracing::debug!(error = %error, "recording an Event failed");
    }
}
