//! Updating an object: optimistic concurrency, status isolation between the
//! main resource and its status subresource, system metadata kept from the
//! stored object, admission, generation, managedFields, no-op detection,
//! and removal once the last finalizer of a deleted object is gone.

use std::sync::Arc;

use serde_json::{Value, json};

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
    let mut old_comparable = (**old).clone();
    set_type_meta(&mut old_comparable, &def.storage_api_version(), &def.kind);
    if new == old_comparable {
        // A no-op: nothing is committed and the resourceVersion stays.
        return Ok(def.to_served(old));
    }
    if options.dry_run {
        return Ok(new);
    }
    let no_finalizers_left =
        new.pointer("/metadata/finalizers").and_then(Value::as_array).is_none_or(Vec::is_empty);
    if new.pointer("/metadata/deletionTimestamp").is_some() && no_finalizers_left {
        let stored = store.commit(&def.storage_gr(), new, EventType::Deleted);
        sync_registry(store, def, &stored, true);
        return Ok((*stored).clone());
    }
    let stored = store.commit(&def.storage_gr(), new, EventType::Modified);
    sync_registry(store, def, &stored, false);
    Ok((*stored).clone())
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
