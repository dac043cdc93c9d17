//! The namespace controller: a namespace being deleted (`Terminating`) has
//! every object in it deleted (background propagation); objects that
//! finalizers hold are reported in the namespace's deletion conditions
//! (`NamespaceContentRemaining`, `NamespaceFinalizersRemaining`, with the
//! real messages); once nothing is left the `kubernetes` finalizer leaves
//! `spec.finalizers` and the namespace is deleted.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::GroupResource;
use crate::state::SimState;
use crate::store::{EventType, StoreInner, StoredEvent};
use crate::util::{metadata_str, now_rfc3339};
use crate::write::{
    self, DeleteOptions, DeletePreconditions, Propagation, WriteOptions, finalizers_of,
};

/// The finalizer of `spec.finalizers` this controller owns.
const KUBERNETES_FINALIZER: &str = "kubernetes";
const MANAGER: &str = "kube-controller-manager";

fn namespaces() -> GroupResource {
    GroupResource::new("", "namespaces")
}

/// The deletion conditions the controller maintains, with their reasons
/// and messages when all is well.
const CONDITIONS: [(&str, &str, &str); 5] = [
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    ("NamespaceContentRemaining", "ContentRemoved", "All content successfully removed"),
    ("NamespaceFinalizersRemaining", "ContentRemoved", "All content successfully removed"),
];

/// Runs the controller until shutdown.
pub async fn run(sim: Arc<SimState>) {
    let mut terminating: HashSet<String> = HashSet::new();
    super::follow_store(&sim, &mut terminating, resync, on_event).await;
}

fn resync(sim: &SimState, terminating: &mut HashSet<String>) {
    let all = sim.store.lock().list(&namespaces(), None);
    terminating.clear();
    for namespace in all {
        if namespace.pointer("/metadata/deletionTimestamp").is_some() {
            let name = metadata_str(&namespace, "name").unwrap_or("").to_string();
            terminating.insert(name.clone());
            sync(sim, terminating, &name);
        }
    }
}

fn on_event(sim: &SimState, terminating: &mut HashSet<String>, event: &StoredEvent) {
    if event.gr == namespaces() {
        if event.etype == EventType::Deleted {
            terminating.remove(&event.name);
        } else if event.object.pointer("/metadata/deletionTimestamp").is_some() {
            terminating.insert(event.name.clone());
            sync(sim, terminating, &event.name);
        }
        return;
    }
    // Content of a terminating namespace went away or changed its
    // finalizers: look again.
    if !event.namespace.is_empty() && terminating.contains(&event.namespace) {
        let relevant = event.etype == EventType::Deleted
            || event
                .prev
                .as_deref()
                .is_some_and(|prev| finalizers_of(prev) != finalizers_of(&event.object));
        if relevant {
            let namespace = event.namespace.clone();
            sync(sim, terminating, &namespace);
        }
    }
}

/// One pass of the namespace deleter.
fn sync(sim: &SimState, terminating: &mut HashSet<String>, name: &str) {
    let mut store = sim.store.lock();
    let Some(namespace) = store.get(&namespaces(), "", name) else {
        terminating.remove(name);
        return;
    };
    if namespace.pointer("/metadata/deletionTimestamp").is_none() {
        terminating.remove(name);
        return;
    }
    let Some(def) = store.registry.get("", "v1", "namespaces") else {
        return;
    };
    let finalized =
        !spec_finalizers(&namespace).iter().any(|finalizer| finalizer == KUBERNETES_FINALIZER);
    if !finalized {
        let (remaining, finalizers) = delete_content(&mut store, name);
        let namespace = set_conditions(&mut store, &def, &namespace, &remaining, &finalizers);
        if !remaining.is_empty() {
            return;
        }
        // Everything is gone: the `finalize` subresource write.
        let mut finalized = (*namespace).clone();
        let kept: Vec<String> = spec_finalizers(&namespace)
            .into_iter()
            .filter(|finalizer| finalizer != KUBERNETES_FINALIZER)
            .collect();
        if let Some(spec) = finalized.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("finalizers".into(), json!(kept));
        }
        store.commit(&def.storage_gr(), finalized, EventType::Modified);
    }
    let Some(namespace) = store.get(&namespaces(), "", name) else {
        return;
    };
    if !spec_finalizers(&namespace).is_empty() {
        return;
    }
    let options = DeleteOptions {
        preconditions: DeletePreconditions {
            uid: metadata_str(&namespace, "uid").map(String::from),
            resource_version: None,
        },
        ..DeleteOptions::default()
    };
    if let Err(error) = write::delete(&mut store, &def, &namespace, &options) {
        tracing::debug!(error = %error, namespace = name, "deleting a namespace failed");
    }
}

fn spec_finalizers(namespace: &Value) -> Vec<String> {
    namespace
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .map(|finalizers| finalizers.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

/// Deletes every object in the namespace that is not being deleted yet;
/// returns what remains (per resource, as `<resource>.<group>`) and the
/// finalizers holding it.
fn delete_content(
    store: &mut StoreInner,
    namespace: &str,
) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let resources: Vec<GroupResource> = store.collections.keys().cloned().collect();
    for gr in &resources {
        let Some(def) = store.registry.all().find(|def| def.storage_gr() == *gr).cloned() else {
            continue;
        };
        if !def.namespaced {
            continue;
        }
        for object in store.list(gr, Some(namespace)) {
            if object.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let options = DeleteOptions {
                preconditions: DeletePreconditions {
                    uid: metadata_str(&object, "uid").map(String::from),
                    resource_version: None,
                },
                propagation: Some(Propagation::Background),
                dry_run: false,
                grace_period_seconds: None,
            };
            if let Err(error) = write::delete(store, &def, &object, &options) {
                tracing::debug!(error = %error, "deleting namespace content failed");
            }
        }
    }
    let mut remaining: BTreeMap<String, u64> = BTreeMap::new();
    let mut finalizers: BTreeMap<String, u64> = BTreeMap::new();
    for gr in &resources {
        let left = store.list(gr, Some(namespace));
        if left.is_empty() {
            continue;
        }
        *remaining.entry(format!("{}.{}", gr.resource, gr.group)).or_default() += left.len() as u64;
        for object in left {
            for finalizer in finalizers_of(&object) {
                *finalizers.entry(finalizer).or_default() += 1;
            }
        }
    }
    (remaining, finalizers)
}

/// Writes the deletion conditions (when they change); returns the stored
/// namespace.
fn set_conditions(
    store: &mut StoreInner,
    def: &crate::registry::ResourceDef,
    namespace: &Arc<Value>,
    remaining: &BTreeMap<String, u64>,
    finalizers: &BTreeMap<String, u64>,
) -> Arc<Value> {
    let now = now_rfc3339();
    let mut conditions: Vec<Value> = namespace
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut changed = false;
    for (kind, ok_reason, ok_message) in CONDITIONS {
        let (status, reason, message) = match kind {
            "NamespaceContentRemaining" if !remaining.is_empty() => {
                let parts: Vec<String> = remaining
                    .iter()
                    .map(|(resource, count)| format!("{resource} has {count} resource instances"))
                    .collect();
                (
                    "True",
                    "SomeResourcesRemain",
                    format!("Some resources are remaining: {}", parts.join(", ")),
                )
            }
            "NamespaceFinalizersRemaining" if !finalizers.is_empty() => {
                let parts: Vec<String> = finalizers
                    .iter()
                    .map(|(finalizer, count)| format!("{finalizer} in {count} resource instances"))
                    .collect();
                (
                    "True",
                    "SomeFinalizerRemain",
                    format!("Some finalizers are remaining: {}", parts.join(", ")),
                )
            }
            _ => ("False", ok_reason, ok_message.to_string()),
        };
        match conditions.iter_mut().find(|condition| condition["type"] == kind) {
            Some(existing) => {
                if existing["status"] != status
                    || existing["reason"] != reason
                    || existing["message"] != message.as_str()
                {
                    if existing["status"] != status {
                        existing["lastTransitionTime"] = json!(now);
                    }
                    existing["status"] = json!(status);
                    existing["reason"] = json!(reason);
                    existing["message"] = json!(message);
                    changed = true;
                }
            }
            None => {
                conditions.push(json!({
                    "type": kind,
                    "status": status,
                    "lastTransitionTime": now,
                    "reason": reason,
                    "message": message,
                }));
                changed = true;
            }
        }
    }
    if !changed {
        return namespace.clone();
    }
    let mut updated = (**namespace).clone();
    if let Some(status) = updated.get_mut("status").and_then(Value::as_object_mut) {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    let options = WriteOptions { subresource: Some("status"), ..WriteOptions::internal(MANAGER) };
    match write::update(store, def, namespace, updated, &options) {
        Ok(stored) => Arc::new(stored),
        Err(error) => {
            tracing::debug!(error = %error, "namespace condition update failed");
            namespace.clone()
        }
    }
}
