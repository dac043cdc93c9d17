//! Deleting an object, as the real server's registry store does it:
//! preconditions, the garbage collector's finalizers (`orphan`,
//! `foregroundDeletion`) from the propagation policy, finalizers holding a
//! deletion (with `deletionTimestamp` set and `generation` bumped), and the
//! first-delete steps of the resources whose REST storage does more: a
//! namespace turns `Terminating`, a CRD gets its cleanup finalizer and
//! `Terminating` condition, a pod the sim's kubelet runs is deleted
//! gracefully (`deletionTimestamp` its grace period ahead, removed when the
//! kubelet confirms). What happens next (a namespace's contents, a CRD's
//! custom resources, dependents, a pod's processes) is the controllers' work.

use std::sync::Arc;

use serde_json::{Value, json};

use super::sync_registry;
use crate::error::{ApiError, GroupResource};
use crate::images::spec_runs_for_real;
use crate::registry::ResourceDef;
use crate::store::{EventType, StoreInner};
use crate::util::{metadata_mut, metadata_str, now_rfc3339, rfc3339_in};

/// The finalizer the garbage collector removes after orphaning dependents.
pub const ORPHAN_FINALIZER: &str = "orphan";
/// The finalizer the garbage collector removes once no dependent blocks the
/// owner's deletion (foreground deletion).
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// The finalizer the CRD finalizer removes once a deleted CRD's custom
/// resources are gone.
pub const CRD_CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// `DeleteOptions.preconditions`: the delete only proceeds when the stored
/// object still has these.
#[derive(Debug, Default, Clone)]
pub struct DeletePreconditions {
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
}

/// `DeleteOptions.propagationPolicy` (or the deprecated `orphanDependents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents lose their owner reference; the owner waits for that.
    Orphan,
    /// The owner goes at once; the garbage collector deletes dependents.
    Background,
    /// The owner waits (`foregroundDeletion`) until blocking dependents are gone.
    Foreground,
}

/// The options of one delete.
#[derive(Debug, Default, Clone)]
pub struct DeleteOptions {
    pub preconditions: DeletePreconditions,
    /// The requested propagation; `None` keeps what the object's finalizers
    /// say, else the resource's default (background).
    pub propagation: Option<Propagation>,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `gracePeriodSeconds` (pods): `None` takes the pod's
    /// `terminationGracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
}

/// What a delete did.
#[derive(Debug)]
pub struct Deletion {
    /// The object in served form: its last stored state, or the state it
    /// would have had (dry run).
    pub object: Value,
    /// Gone from the store (or would be); false while finalizers hold it.
    pub removed: bool,
    /// The resource answers a delete with a success `Status`, not the object.
    pub answer_with_status: bool,
}

/// Deletes one stored object (`old`).
pub fn delete(
    store: &mut StoreInner,
    def: &ResourceDef,
    old: &Arc<Value>,
    options: &DeleteOptions,
) -> Result<Deletion, ApiError> {
    check_preconditions(def, old, &options.preconditions)?;
    if def.is("", "namespaces") {
        return Ok(delete_namespace(store, def, old, options));
    }
    if def.is_crd() && old.pointer("/metadata/deletionTimestamp").is_none() {
        return Ok(start_crd_deletion(store, def, old, options));
    }
    if def.is("", "pods")
        && let Some(deletion) = delete_pod_gracefully(store, def, old, options)
    {
        return Ok(deletion);
    }
    Ok(delete_generic(store, def, old, options))
}

/// Deletes `object` only while the stored object is still it (its uid as the precondition),
/// as the controllers do: a namesake created since is left alone.
pub fn delete_same(
    store: &mut StoreInner,
    def: &ResourceDef,
    object: &Arc<Value>,
    propagation: Option<Propagation>,
) -> Result<Deletion, ApiError> {
    let options = DeleteOptions {
        preconditions: DeletePreconditions {
            uid: metadata_str(object, "uid").map(String::from),
            resource_version: None,
        },
        propagation,
        dry_run: false,
        grace_period_seconds: None,
    };
    delete(store, def, object, &options)
}

/// Deletes every object of `def` in `namespace` (or everywhere) that is not being deleted
/// yet, in the background, each with [`delete_same`]: how the namespace controller and the CRD
/// finalizer empty what is being deleted. A failure is left for their next look.
pub fn delete_remaining(store: &mut StoreInner, def: &ResourceDef, namespace: Option<&str>) {
    for object in store.list(&def.storage_gr(), namespace) {
        if object.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        if let Err(error) = delete_same(store, def, &object, Some(Propagation::Background)) {
            let name = metadata_str(&object, "name").unwrap_or_default();
            tracing::debug!(error = %error, resource = %def.storage_gr(), name, "deleting failed");
        }
    }
}

/// The grace period of a first delete of `pod` (the pod strategy's
/// `CheckGracefulDelete`): the requested one, else the pod's
/// `terminationGracePeriodSeconds` (30 by default); 0 for a pod no kubelet
/// runs (unbound, finished, or, in the sim, of an image it does not run
/// while simulated pods stop at once); a negative one counts as 1.
fn pod_grace_period(store: &StoreInner, pod: &Value, options: &DeleteOptions) -> i64 {
    let requested = options.grace_period_seconds.or_else(|| {
        Some(
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30),
        )
    });
    let bound =
        pod.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|node| !node.is_empty());
    let finished = matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    let has_kubelet = store.simulated_pods_stop
        || pod
            .get("spec")
            .is_some_and(|spec| spec_runs_for_real(store.kubelet_repositories.iter(), spec));
    if !bound || finished || !has_kubelet {
        return 0;
    }
    match requested.unwrap_or(0) {
        period if period < 0 => 1,
        period => period,
    }
}

/// The graceful deletion of a pod (the generic registry's `BeforeDelete`):
/// a first delete with a grace period marks the pod deleting that far
/// ahead; a later one may only shorten it; `None` when the pod goes at once
/// (a grace period of 0, or one already 0).
fn delete_pod_gracefully(
    store: &mut StoreInner,
    def: &ResourceDef,
    old: &Arc<Value>,
    options: &DeleteOptions,
) -> Option<Deletion> {
    let pending = |object: &Value| Deletion {
        object: def.to_served(object),
        removed: false,
        answer_with_status: false,
    };
    let mut deleting = (**old).clone();
    if old.pointer("/metadata/deletionTimestamp").is_some() {
        let current = old
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if current == 0 {
            return None;
        }
        let requested = options.grace_period_seconds.map(|period| period.max(0));
        let period = match requested {
            Some(period) if period < current => period,
            // Graceful deletion is pending: nothing changes.
            _ => return Some(pending(old)),
        };
        if period == 0 {
            return None;
        }
        let at = old
            .pointer("/metadata/deletionTimestamp")
            .and_then(Value::as_str)
            .and_then(|at| at.parse::<jiff::Timestamp>().ok())
            .map_or(0, |at| at.as_second())
            - current
            + period;
        if let Some(metadata) = metadata_mut(&mut deleting) {
            let at = jiff::Timestamp::from_second(at)
                .map_or_else(|_| now_rfc3339(), |at| at.to_string());
            metadata.insert("deletionTimestamp".into(), json!(at));
            metadata.insert("deletionGracePeriodSeconds".into(), json!(period));
        }
    } else {
        let period = pod_grace_period(store, old, options);
        if period == 0 {
            return None;
        }
        let finalizers = finalizers_for_propagation(&finalizers_of(old), options.propagation);
        set_finalizers(&mut deleting, &finalizers);
        if let Some(metadata) = metadata_mut(&mut deleting) {
            metadata.insert("deletionTimestamp".into(), json!(rfc3339_in(period)));
            metadata.insert("deletionGracePeriodSeconds".into(), json!(period));
            if let Some(generation) = metadata.get("generation").and_then(Value::as_i64)
                && generation > 0
            {
                metadata.insert("generation".into(), json!(generation + 1));
            }
        }
    }
    if options.dry_run {
        return Some(pending(&deleting));
    }
    let stored = store.commit(&def.storage_gr(), deleting, EventType::Modified);
    Some(pending(&stored))
}

/// The precondition check the real server makes before anything else (its
/// `BeforeDelete`), with its messages.
fn check_preconditions(
    def: &ResourceDef,
    old: &Value,
    preconditions: &DeletePreconditions,
) -> Result<(), ApiError> {
    let name = metadata_str(old, "name").unwrap_or("");
    // The real check names the kind where the group resource goes.
    let kind = GroupResource::new(&def.group, &def.kind);
    if let Some(uid) = &preconditions.uid {
        let actual = metadata_str(old, "uid").unwrap_or("");
        if uid != actual {
            return Err(ApiError::conflict(
                &kind,
                name,
                &format!(
                    "the UID in the precondition ({uid}) does not match the UID in record ({actual}). The object might have been deleted and then recreated"
                ),
            ));
        }
    }
    if let Some(rv) = &preconditions.resource_version {
        let actual = metadata_str(old, "resourceVersion").unwrap_or("");
        if rv != actual {
            return Err(ApiError::conflict(
                &kind,
                name,
                &format!(
                    "the ResourceVersion in the precondition ({rv}) does not match the ResourceVersion in record ({actual}). The object might have been modified"
                ),
            ));
        }
    }
    Ok(())
}

/// An object's `metadata.finalizers`.
pub fn finalizers_of(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|finalizers| finalizers.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

/// The finalizers after a delete with `propagation`: the garbage
/// collector's two are dropped and the requested one added; without a
/// request, one already there stays (the real store's
/// `deletionFinalizersForGarbageCollection`).
fn finalizers_for_propagation(current: &[String], propagation: Option<Propagation>) -> Vec<String> {
    let has = |finalizer: &str| current.iter().any(|present| present == finalizer);
    let (orphan, foreground) = match propagation {
        Some(Propagation::Orphan) => (true, false),
        Some(Propagation::Foreground) => (false, true),
        Some(Propagation::Background) => (false, false),
        None if has(ORPHAN_FINALIZER) => (true, false),
        None => (false, has(FOREGROUND_FINALIZER)),
    };
    let mut finalizers: Vec<String> = current
        .iter()
        .filter(|finalizer| *finalizer != ORPHAN_FINALIZER && *finalizer != FOREGROUND_FINALIZER)
        .cloned()
        .collect();
    if orphan {
        finalizers.push(ORPHAN_FINALIZER.into());
    }
    if foreground {
        finalizers.push(FOREGROUND_FINALIZER.into());
    }
    finalizers
}

fn set_finalizers(object: &mut Value, finalizers: &[String]) {
    if let Some(metadata) = metadata_mut(object) {
        if finalizers.is_empty() {
            metadata.remove("finalizers");
        } else {
            metadata.insert("finalizers".into(), json!(finalizers));
        }
    }
}

/// Marks an object as being deleted: `deletionTimestamp` (kept when set),
/// `deletionGracePeriodSeconds` 0, and `generation` bumped the first time,
/// so that its controllers see the change (the real `markAsDeleting`).
fn mark_deleting(object: &mut Value) {
    let Some(metadata) = metadata_mut(object) else {
        return;
    };
    if !metadata.contains_key("deletionTimestamp") {
        if let Some(generation) = metadata.get("generation").and_then(Value::as_i64)
            && generation > 0
        {
            metadata.insert("generation".into(), json!(generation + 1));
        }
        metadata.insert("deletionTimestamp".into(), json!(now_rfc3339()));
    }
    metadata.insert("deletionGracePeriodSeconds".into(), json!(0));
}

/// The registry store's delete: finalizers (the requested propagation's
/// included) hold the object, marked as deleting; without any it is gone.
fn delete_generic(
    store: &mut StoreInner,
    def: &ResourceDef,
    old: &Arc<Value>,
    options: &DeleteOptions,
) -> Deletion {
    let current = finalizers_of(old);
    let finalizers = finalizers_for_propagation(&current, options.propagation);
    if finalizers.is_empty() {
        if options.dry_run {
            return Deletion {
                object: def.to_served(old),
                removed: true,
                answer_with_status: false,
            };
        }
        let stored = store.commit(&def.storage_gr(), (**old).clone(), EventType::Deleted);
        sync_registry(store, def, &stored, true);
        return Deletion {
            object: def.to_served(&stored),
            removed: true,
            answer_with_status: !def.return_deleted_object,
        };
    }
    let mut deleting = (**old).clone();
    if finalizers != current {
        set_finalizers(&mut deleting, &finalizers);
    }
    mark_deleting(&mut deleting);
    if options.dry_run || deleting == **old {
        return Deletion {
            object: def.to_served(&deleting),
            removed: false,
            answer_with_status: false,
        };
    }
    let stored = store.commit(&def.storage_gr(), deleting, EventType::Modified);
    Deletion { object: def.to_served(&stored), removed: false, answer_with_status: false }
}

/// The namespace storage's delete: the first turns the namespace
/// `Terminating` (the namespace controller then deletes its contents and
/// removes the `kubernetes` finalizer from `spec.finalizers`); a later one,
/// once `spec.finalizers` is empty, deletes it like any object.
fn delete_namespace(
    store: &mut StoreInner,
    def: &ResourceDef,
    old: &Arc<Value>,
    options: &DeleteOptions,
) -> Deletion {
    if old.pointer("/metadata/deletionTimestamp").is_none() {
        let mut terminating = (**old).clone();
        let current = finalizers_of(old);
        let finalizers = finalizers_for_propagation(&current, options.propagation);
        if finalizers != current {
            set_finalizers(&mut terminating, &finalizers);
        }
        if let Some(metadata) = metadata_mut(&mut terminating) {
            metadata.insert("deletionTimestamp".into(), json!(now_rfc3339()));
        }
        if let Some(fields) = terminating.as_object_mut() {
            let status = fields.entry("status").or_insert_with(|| json!({}));
            if let Some(status) = status.as_object_mut() {
                status.insert("phase".into(), json!("Terminating"));
            }
        }
        if options.dry_run {
            return Deletion {
                object: def.to_served(&terminating),
                removed: false,
                answer_with_status: false,
            };
        }
        let stored = store.commit(&def.storage_gr(), terminating, EventType::Modified);
        return Deletion {
            object: def.to_served(&stored),
            removed: false,
            answer_with_status: false,
        };
    }
    let spec_finalizers =
        old.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
    if spec_finalizers {
        return Deletion { object: def.to_served(old), removed: false, answer_with_status: false };
    }
    delete_generic(store, def, old, options)
}

/// The CRD storage's first delete: `deletionTimestamp`, the cleanup
/// finalizer and the `Terminating` condition; the CRD finalizer then deletes
/// the custom resources and removes the finalizer.
fn start_crd_deletion(
    store: &mut StoreInner,
    def: &ResourceDef,
    old: &Arc<Value>,
    options: &DeleteOptions,
) -> Deletion {
    let mut terminating = (**old).clone();
    let mut finalizers = finalizers_for_propagation(&finalizers_of(old), options.propagation);
    if !finalizers.iter().any(|finalizer| finalizer == CRD_CLEANUP_FINALIZER) {
        finalizers.push(CRD_CLEANUP_FINALIZER.into());
    }
    set_finalizers(&mut terminating, &finalizers);
    if let Some(metadata) = metadata_mut(&mut terminating) {
        metadata.insert("deletionTimestamp".into(), json!(now_rfc3339()));
    }
    set_crd_condition(
        &mut terminating,
        "Terminating",
        "True",
        "InstanceDeletionPending",
        "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
    );
    if options.dry_run {
        return Deletion {
            object: def.to_served(&terminating),
            removed: false,
            answer_with_status: false,
        };
    }
    let stored = store.commit(&def.storage_gr(), terminating, EventType::Modified);
    Deletion { object: def.to_served(&stored), removed: false, answer_with_status: false }
}

/// Sets a CRD condition as the apiextensions helpers do: the transition
/// time changes only with the status.
pub fn set_crd_condition(crd: &mut Value, kind: &str, status: &str, reason: &str, message: &str) {
    let now = now_rfc3339();
    let Some(fields) = crd.as_object_mut() else {
        return;
    };
    let status_field = fields.entry("status").or_insert_with(|| json!({}));
    let Some(status_map) = status_field.as_object_mut() else {
        return;
    };
    let conditions = status_map.entry("conditions").or_insert_with(|| json!([]));
    let Some(conditions) = conditions.as_array_mut() else {
        return;
    };
    let mut condition = json!({
        "type": kind,
        "status": status,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    });
    match conditions.iter_mut().find(|condition| condition["type"] == kind) {
        Some(existing) => {
            if existing["status"] == status
                && let Some(time) = existing.get("lastTransitionTime").cloned()
            {
                condition["lastTransitionTime"] = time;
            }
            *existing = condition;
        }
        None => conditions.push(condition),
    }
}
