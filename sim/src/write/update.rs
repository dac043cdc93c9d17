//! Updating an object: optimistic concurrency, status isolation between the
//! main resource and its status subresource, system metadata kept from the
//! stored object, admission, generation, managedFields, no-op detection,
//! and removal once the last finalizer of a deleted object is gone.

use std::sync::Arc;

use serde_json::{Value, json};

use super::delete::finalizers_of;
use super::{WriteOptions, sync_registry};
use crate::error::{ApiError, Cause};
use crate::fields::{self, OwnershipContext};
use crate::registry::ResourceDef;
use crate::store::{EventType, StoreInner};
use crate::util::{metadata_mut, metadata_str, now_rfc3339, set_type_meta};
use crate::validation;

/// Metadata only the server sets: an update keeps the stored values.
const SYSTEM_METADATA: [&str; 7] = [
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "name",
    "namespace",
];

/// Updates an object: the shared path of PUT, every patch type and the
/// controllers' status writes. Returns the stored (or unchanged) object.
pub fn update(
    store: &mut StoreInner,
    def: &ResourceDef,
    old: &Arc<Value>,
    incoming: Value,
    options: &WriteOptions<'_>,
) -> Result<Value, ApiError> {
    let incoming = def.to_storage(incoming);
    let name = metadata_str(old, "name").unwrap_or("").to_string();
    let old_rv = metadata_str(old, "resourceVersion").unwrap_or("").to_string();
    let incoming_rv = metadata_str(&incoming, "resourceVersion").unwrap_or("").to_string();
    if !incoming_rv.is_empty() && incoming_rv != old_rv {
        return Err(ApiError::conflict_modified(&def.gr(), &name));
    }
    if incoming_rv.is_empty() && !def.unconditional_update && options.track_managed_fields {
        return Err(ApiError::invalid(
            &def.kind,
            &def.group,
            &name,
            &[Cause::new(
                "FieldValueInvalid",
                "Invalid value: 0x0: must be specified for an update",
                "metadata.resourceVersion",
            )],
        ));
    }
    let incoming_managed_fields = incoming.pointer("/metadata/managedFields").cloned();
    // Each side of the status subresource keeps the other side's part.
    let mut new = if options.subresource == Some("status") {
        let mut new = (**old).clone();
        copy_field(incoming.get("status"), &mut new, "status");
        if status_keeps_metadata(def) {
            // Their status strategies reset only the spec (and a
            // Deployment's labels): the controllers write annotations such
            // as the revision with the status.
            copy_field(incoming.get("metadata"), &mut new, "metadata");
            if def.is("apps", "deployments") {
                let labels = old.pointer("/metadata/labels").cloned();
                if let Some(metadata) = metadata_mut(&mut new) {
                    match labels {
                        Some(labels) => metadata.insert("labels".into(), labels),
                        None => metadata.remove("labels"),
                    };
                }
            }
        }
        new
    } else {
        let mut new = incoming;
        if def.status_subresource {
            copy_field(old.get("status"), &mut new, "status");
        }
        new
    };
    if !new.is_object() {
        return Err(ApiError::bad_request("object is not a JSON object"));
    }
    keep_system_metadata(old, &mut new);
    set_type_meta(&mut new, &def.storage_api_version(), &def.kind);
    check_no_new_finalizers(def, old, &new)?;
    validation::admit(def, &mut new, Some(old), options.strict)?;
    if def.has_generation && def.spec_changed(old, &new) {
        let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
        if let Some(metadata) = metadata_mut(&mut new) {
            metadata.insert("generation".into(), json!(generation + 1));
        }
    }
    let now = now_rfc3339();
    if options.track_managed_fields {
        let ownership = OwnershipContext::new(def, &options.manager, options.subresource, &now);
        // A request that rewrites managedFields (as kubectl does when it
        // migrates client-side apply ownership) replaces them before the
        // update itself is tracked.
        let old_managed_fields = old.pointer("/metadata/managedFields");
        let rewritten = incoming_managed_fields
            .as_ref()
            .filter(|fields| Some(*fields) != old_managed_fields && options.subresource.is_none());
        match rewritten {
            Some(managed_fields) => {
                let mut base = (**old).clone();
                if let Some(metadata) = metadata_mut(&mut base) {
                    metadata.insert("managedFields".into(), managed_fields.clone());
                }
                fields::canonicalize(&mut base);
                fields::track_update(Some(&base), &mut new, &ownership);
            }
            None => fields::track_update(Some(old), &mut new, &ownership),
        }
    } else if let Some(metadata) = metadata_mut(&mut new) {
        match incoming_managed_fields {
            Some(managed_fields) => {
                metadata.insert("managedFields".into(), managed_fields);
            }
            None => {
                metadata.remove("managedFields");
            }
        }
    }
    if let Some(metadata) = metadata_mut(&mut new) {
        metadata.insert("resourceVersion".into(), json!(old_rv));
    }
    // Compared as stored with the storage type meta (a copy only when the
    // stored object lacks it).
    let storage_api_version = def.storage_api_version();
    let stored_as_is = old.get("apiVersion").and_then(Value::as_str)
        == Some(storage_api_version.as_str())
        && old.get("kind").and_then(Value::as_str) == Some(def.kind.as_str());
    let unchanged = if stored_as_is {
        new == **old
    } else {
        let mut old_comparable = (**old).clone();
        set_type_meta(&mut old_comparable, &storage_api_version, &def.kind);
        new == old_comparable
    };
    if unchanged {
        // A no-op: nothing is committed and the resourceVersion stays.
        return Ok(def.to_served(old));
    }
    if options.dry_run {
        return Ok(new);
    }
    let mut no_finalizers_left =
        new.pointer("/metadata/finalizers").and_then(Value::as_array).is_none_or(Vec::is_empty);
    if def.is("", "namespaces") {
        // A namespace also waits for `spec.finalizers` (the namespace
        // controller's), and goes only by a delete once they are empty.
        no_finalizers_left = false;
    }
    // The registry's `shouldDeleteDuringUpdate`: a pod in its grace period
    // (`deletionGracePeriodSeconds` above 0) stays until the kubelet deletes it.
    let graceful = old
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|seconds| seconds > 0);
    if new.pointer("/metadata/deletionTimestamp").is_some() && no_finalizers_left && !graceful {
        let stored = store.commit(&def.storage_gr(), new, EventType::Deleted);
        sync_registry(store, def, &stored, true);
        return Ok((*stored).clone());
    }
    let stored = store.commit(&def.storage_gr(), new, EventType::Modified);
    sync_registry(store, def, &stored, false);
    Ok((*stored).clone())
}

/// Whether a status write of this resource keeps the metadata it carries
/// (the real status strategies of the apps workloads reset only the spec;
/// most others keep only the status).
fn status_keeps_metadata(def: &ResourceDef) -> bool {
    def.group == "apps" && !def.is_custom() && def.status_subresource
}

/// An object being deleted takes no new finalizers (the real
/// `ValidateNoNewFinalizers`, a 422 with its message).
fn check_no_new_finalizers(def: &ResourceDef, old: &Value, new: &Value) -> Result<(), ApiError> {
    if old.pointer("/metadata/deletionTimestamp").is_none() {
        return Ok(());
    }
    let old_finalizers = finalizers_of(old);
    let mut added: Vec<String> = finalizers_of(new)
        .into_iter()
        .filter(|finalizer| !old_finalizers.contains(finalizer))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    added.sort();
    added.dedup();
    // Go's `%#v` of a string slice.
    let quoted: Vec<String> = added.iter().map(|finalizer| format!("{finalizer:?}")).collect();
    Err(ApiError::invalid(
        &def.kind,
        &def.group,
        metadata_str(old, "name").unwrap_or(""),
        &[Cause::new(
            "FieldValueForbidden",
            format!(
                "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                quoted.join(", ")
            ),
            "metadata.finalizers",
        )],
    ))
}

/// Sets `to[key]` to `value`, or removes it when there is none.
fn copy_field(value: Option<&Value>, to: &mut Value, key: &str) {
    let Some(fields) = to.as_object_mut() else {
        return;
    };
    match value {
        Some(value) => {
            fields.insert(key.to_string(), value.clone());
        }
        None => {
            fields.remove(key);
        }
    }
}

/// Copies the system metadata of the stored object over the incoming one.
fn keep_system_metadata(old: &Value, new: &mut Value) {
    let old_metadata = old.get("metadata").cloned().unwrap_or_default();
    if let Some(metadata) = metadata_mut(new) {
        for key in SYSTEM_METADATA {
            match old_metadata.get(key) {
                Some(value) => {
                    metadata.insert(key.to_string(), value.clone());
                }
                None => {
                    metadata.remove(key);
                }
            }
        }
        metadata.remove("selfLink");
    }
}
