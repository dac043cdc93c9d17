//! Events the controllers record about the objects they manage, written as
//! the controller manager's event recorder writes core/v1 Events (named
//! `<object>.<hex nanoseconds>`, with the involved object, source and
//! reporting component).

use serde_json::{Value, json};

use crate::registry::ResourceDef;
use crate::state::SimState;
use crate::store::StoreInner;
use crate::util::{metadata_str, now_rfc3339};
use crate::write::{self, WriteOptions};

/// Who records an Event and about what.
pub struct Recorder<'a> {
    /// The `events` resource definition (core/v1).
    pub events: &'a ResourceDef,
    /// The controller, e.g. `deployment-controller`.
    pub component: &'a str,
    /// The involved object's `apiVersion` and `kind`.
    pub api_version: &'a str,
    pub kind: &'a str,
}

impl Recorder<'_> {
    /// Records a `Normal` Event about `involved`.
    pub fn normal(
        &self,
        sim: &SimState,
        store: &mut StoreInner,
        involved: &Value,
        reason: &str,
        message: &str,
    ) {
        let name_of = metadata_str(involved, "name").unwrap_or("");
        let namespace = metadata_str(involved, "namespace").unwrap_or("");
        let nanos = jiff::Timestamp::now().as_nanosecond();
        let mut name = format!("{name_of}.{nanos:x}");
        let mut bump = 0u32;
        while store.get(&self.events.storage_gr(), namespace, &name).is_some() && bump < 1000 {
            bump += 1;
            name = format!("{name_of}.{:x}", nanos + i128::from(bump));
        }
        let now = now_rfc3339();
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": self.api_version,
                "kind": self.kind,
                "name": name_of,
                "namespace": namespace,
                "uid": metadata_str(involved, "uid").unwrap_or(""),
                "resourceVersion": metadata_str(involved, "resourceVersion").unwrap_or(""),
            },
            "reason": reason,
            "message": message,
            "source": {"component": self.component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": "Normal",
            "eventTime": null,
            "reportingComponent": self.component,
            "reportingInstance": "",
        });
        let options = WriteOptions::internal("kube-controller-manager");
        if let Err(error) =
            write::create(store, &sim.rng, self.events, Some(namespace), event, &options)
        {
            tracing::debug!(error = %error, "recording an Event failed");
        }
    }
}
