//! Deleting an object: preconditions, finalizers (deletion waits for them),
//! and the cascades the real server's controllers perform at once here: a
//! namespace takes its contents with it, a CRD its custom resources and
//! their registry entries.

use std::sync::Arc;

use serde_json::{Value, json};

use super::sync_registry;
use crate::error::{ApiError, GroupResource};
use crate::registry::ResourceDef;
use crate::store::{EventType, StoreInner};
use crate::util::{metadata_mut, metadata_str, now_rfc3339};

/// `DeleteOptions.preconditions`: the delete only proceeds when the stored
/// object still has these.
#[derive(Debug, Default)]
pub struct DeletePreconditions {
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
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

/// Deletes one stored object (`old`), respecting finalizers.
pub fn delete(
    store: &mut StoreInner,
    def: &ResourceDef,
    old: &Arc<Value>,
    preconditions: &DeletePreconditions,
    dry_run: bool,
) -> Result<Deletion, ApiError> {
    let name = metadata_str(old, "name").unwrap_or("");
    for (label, key, wanted) in [
        ("UID", "uid", &preconditions.uid),
        ("ResourceVersion", "resourceVersion", &preconditions.resource_version),
    ] {
        let actual = metadata_str(old, key).unwrap_or("");
        if let Some(wanted) = wanted
            && wanted != actual
        {
            return Err(ApiError::conflict(
                &def.gr(),
                name,
                &format!(
                    "Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {actual}"
                ),
            ));
        }
    }
    let pending = |object: &Value| Deletion {
        object: def.to_served(object),
        removed: false,
        answer_with_status: false,
    };
    let removed = |object: &Value| Deletion {
        object: def.to_served(object),
        removed: true,
        answer_with_status: false,
    };
    let has_finalizers = old
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|finalizers| !finalizers.is_empty());
    let is_namespace = def.is("", "namespaces");
    if has_finalizers && !is_namespace {
        if old.pointer("/metadata/deletionTimestamp").is_some() || dry_run {
            return Ok(pending(old));
        }
        let mut terminating = (**old).clone();
        if let Some(metadata) = metadata_mut(&mut terminating) {
            metadata.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            metadata.insert("deletionGracePeriodSeconds".into(), json!(0));
        }
        let stored = store.commit(&def.storage_gr(), terminating, EventType::Modified);
        return Ok(pending(&stored));
    }
    if dry_run {
        return Ok(removed(old));
    }
    if is_namespace {
        return Ok(removed(&delete_namespace(store, def, old)));
    }
    if def.is_crd() {
        let group = old.pointer("/spec/group").and_then(Value::as_str).unwrap_or("");
        let plural = old.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or("");
        let custom_resources = GroupResource::new(group, plural);
        for object in store.list(&custom_resources, None) {
            store.commit(&custom_resources, (*object).clone(), EventType::Deleted);
        }
    }
    let stored = store.commit(&def.storage_gr(), (**old).clone(), EventType::Deleted);
    sync_registry(store, def, &stored, true);
    Ok(Deletion { answer_with_status: !def.return_deleted_object, ..removed(&stored) })
}

/// Deletes a namespace with everything in it, as the namespace controller
/// would (here at once): the namespace turns Terminating, its objects are
/// deleted, then the namespace itself. Returns its Terminating state.
fn delete_namespace(store: &mut StoreInner, def: &ResourceDef, old: &Value) -> Arc<Value> {
    let namespace = metadata_str(old, "name").unwrap_or("").to_string();
    let mut terminating = old.clone();
    if let Some(metadata) = metadata_mut(&mut terminating) {
        metadata.insert("deletionTimestamp".into(), json!(now_rfc3339()));
    }
    if let Some(fields) = terminating.as_object_mut() {
        fields.insert("status".into(), json!({"phase": "Terminating"}));
    }
    let terminating = store.commit(&def.storage_gr(), terminating, EventType::Modified);
    let resources: Vec<GroupResource> = store.collections.keys().cloned().collect();
    for gr in resources {
        for object in store.list(&gr, Some(&namespace)) {
            let mut last = (*object).clone();
            if let Some(metadata) = metadata_mut(&mut last) {
                metadata.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            }
            store.commit(&gr, last, EventType::Deleted);
        }
    }
    store.commit(&def.storage_gr(), (*terminating).clone(), EventType::Deleted);
    terminating
}
