//! The apiextensions CRD finalizer: a CRD being deleted (with the
//! `customresourcecleanup.apiextensions.k8s.io` finalizer) has its custom
//! resources deleted; their own finalizers hold them, and the CRD with
//! them (`Terminating` condition `InstanceDeletionInProgress`). Once none
//! is left the condition turns `InstanceDeletionCompleted`, the finalizer
//! goes, and with it the CRD and the resources it served.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::GroupResource;
use crate::state::SimState;
use crate::store::{EventType, StoredEvent};
use crate::util::{metadata_mut, metadata_str};
use crate::write::{
    self, CRD_CLEANUP_FINALIZER, DeleteOptions, DeletePreconditions, Propagation, WriteOptions,
    finalizers_of, set_crd_condition,
};

const MANAGER: &str = "kube-apiserver";

fn crds() -> GroupResource {
    GroupResource::new("apiextensions.k8s.io", "customresourcedefinitions")
}

/// The custom resources a CRD defines (group and plural).
fn served(crd: &Value) -> GroupResource {
    let text = |pointer: &str| crd.pointer(pointer).and_then(Value::as_str).unwrap_or("");
    GroupResource::new(text("/spec/group"), text("/spec/names/plural"))
}

fn cleaning_up(crd: &Value) -> bool {
    crd.pointer("/metadata/deletionTimestamp").is_some()
        && finalizers_of(crd).iter().any(|finalizer| finalizer == CRD_CLEANUP_FINALIZER)
}

/// Runs the finalizer until shutdown.
pub async fn run(sim: Arc<SimState>) {
    // Custom resources of CRDs being cleaned up -> the CRD's name.
    let mut pending: HashMap<GroupResource, String> = HashMap::new();
    super::follow_store(&sim, &mut pending, resync, on_event).await;
}

fn resync(sim: &SimState, pending: &mut HashMap<GroupResource, String>) {
    pending.clear();
    let all = sim.store.lock().list(&crds(), None);
    for crd in all {
        if cleaning_up(&crd) {
            let name = metadata_str(&crd, "name").unwrap_or("").to_string();
            pending.insert(served(&crd), name.clone());
            sync(sim, pending, &name);
        }
    }
}

fn on_event(sim: &SimState, pending: &mut HashMap<GroupResource, String>, event: &StoredEvent) {
    if event.gr == crds() {
        if event.etype == EventType::Deleted {
            pending.retain(|_, name| *name != event.name);
        } else if cleaning_up(&event.object) {
            pending.insert(served(&event.object), event.name.clone());
            sync(sim, pending, &event.name);
        }
        return;
    }
    let Some(crd_name) = pending.get(&event.gr).cloned() else {
        return;
    };
    let relevant = event.etype == EventType::Deleted
        || event
            .prev
            .as_deref()
            .is_some_and(|prev| finalizers_of(prev) != finalizers_of(&event.object));
    if relevant {
        sync(sim, pending, &crd_name);
    }
}

/// One pass of the CRD finalizer.
fn sync(sim: &SimState, pending: &mut HashMap<GroupResource, String>, name: &str) {
    let mut store = sim.store.lock();
    let Some(crd) = store.get(&crds(), "", name) else {
        return;
    };
    if !cleaning_up(&crd) {
        return;
    }
    let Some(crd_def) =
        store.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    else {
        return;
    };
    let gr = served(&crd);
    let in_progress =
        crd.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|conditions| {
            conditions.iter().any(|condition| {
                condition["type"] == "Terminating"
                    && condition["reason"] == "InstanceDeletionInProgress"
            })
        });
    let mut crd = crd;
    if !in_progress {
        // Committed as the status write it is (CRD admission would reset
        // the conditions to its own two).
        let mut updated = (*crd).clone();
        set_crd_condition(
            &mut updated,
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
        );
        crd = store.commit(&crd_def.storage_gr(), updated, EventType::Modified);
    }
    let custom_def =
        store.registry.all().find(|def| def.storage_gr() == gr && def.is_custom()).cloned();
    if let Some(custom_def) = &custom_def {
        for object in store.list(&gr, None) {
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
            if let Err(error) = write::delete(&mut store, custom_def, &object, &options) {
                tracing::debug!(error = %error, "deleting a custom resource failed");
            }
        }
    }
    if !store.list(&gr, None).is_empty() {
        return;
    }
    let mut updated = (*crd).clone();
    set_crd_condition(
        &mut updated,
        "Terminating",
        "False",
        "InstanceDeletionCompleted",
        "removed all instances",
    );
    let remaining: Vec<String> = finalizers_of(&crd)
        .into_iter()
        .filter(|finalizer| finalizer != CRD_CLEANUP_FINALIZER)
        .collect();
    if let Some(metadata) = metadata_mut(&mut updated) {
        if remaining.is_empty() {
            metadata.remove("finalizers");
        } else {
            metadata.insert("finalizers".into(), json!(remaining));
        }
    }
    pending.remove(&gr);
    if !remaining.is_empty() {
        store.commit(&crd_def.storage_gr(), updated, EventType::Modified);
        return;
    }
    // Without finalizers the update removes the CRD, and the registry stops
    // serving its resources.
    let options = WriteOptions::internal(MANAGER);
    if let Err(error) = write::update(&mut store, &crd_def, &crd, with_rv(updated, &crd), &options)
    {
        tracing::debug!(error = %error, crd = name, "removing the CRD cleanup finalizer failed");
    }
}

fn with_rv(mut object: Value, current: &Value) -> Value {
    if let (Some(metadata), Some(rv)) =
        (metadata_mut(&mut object), metadata_str(current, "resourceVersion"))
    {
        metadata.insert("resourceVersion".into(), json!(rv));
    }
    object
}
