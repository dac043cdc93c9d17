//! The write pipeline every change goes through, whoever makes it (REST
//! handlers, controllers, the generated fleet): type and name checks,
//! system metadata, status isolation, defaulting and validation, generation,
//! managedFields, no-op detection, finalizers, cascading deletes and the
//! registry changes CRD writes cause. Callers hold the store lock; each
//! operation reads and commits under it, so a write is atomic.

mod apply;
mod create;
mod delete;
mod patch;
mod update;

use serde_json::Value;

use crate::error::ApiError;
use crate::registry::{ResourceDef, custom_resource_defs};
use crate::store::StoreInner;
use crate::util::{metadata_str, set_type_meta};

pub use apply::apply;
pub use create::create;
pub use delete::{
    CRD_CLEANUP_FINALIZER, DeleteOptions, DeletePreconditions, FOREGROUND_FINALIZER,
    ORPHAN_FINALIZER, Propagation, delete, delete_remaining, delete_same, finalizers_of,
    set_crd_condition,
};
pub use patch::patched;
pub use update::update;

/// Options of one write.
pub struct WriteOptions<'a> {
    /// Field manager.
    pub manager: String,
    /// Subresource written (`status`), if any.
    pub subresource: Option<&'a str>,
    /// `dryRun=All`: everything but the commit.
    pub dry_run: bool,
    /// Record the write as an Update operation in managedFields; false for
    /// apply, which records its own.
    pub track_managed_fields: bool,
    /// `fieldValidation=Strict`.
    pub strict: bool,
    /// `force=true`: an apply takes the fields other managers own.
    pub force: bool,
}

impl WriteOptions<'_> {
    /// A write by one of the server's own components (the fleet, the
    /// controllers), named `manager` in managedFields.
    pub fn internal(manager: &str) -> Self {
        WriteOptions {
            manager: manager.to_string(),
            subresource: None,
            dry_run: false,
            track_managed_fields: true,
            strict: false,
            force: false,
        }
    }
}

/// Checks the `apiVersion` and `kind` a client sent against the resource
/// of the URL (a different version of the same group is accepted, as the
/// real server converts it) and sets them to the resource's.
pub fn check_type_meta(def: &ResourceDef, object: &mut Value) -> Result<(), ApiError> {
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string();
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
    if def.is_custom() && kind.is_empty() {
        return Err(ApiError::bad_request(format!("Object 'Kind' is missing in '{object}'")));
    }
    if !kind.is_empty() && kind != def.kind {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({kind}) does not match the kind on the URL ({})",
            def.kind
        )));
    }
    if !api_version.is_empty() && api_version != def.api_version() {
        let group_of = |api_version: &str| {
            api_version.rsplit_once('/').map(|(group, _)| group.to_string()).unwrap_or_default()
        };
        if group_of(&api_version) != def.group {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                def.api_version()
            )));
        }
    }
    set_type_meta(object, &def.api_version(), &def.kind);
    Ok(())
}

/// Keeps the registry in step with a committed CRD write: the resources a
/// CRD defines are served from its creation until its deletion.
fn sync_registry(store: &mut StoreInner, def: &ResourceDef, object: &Value, deleted: bool) {
    if !def.is_crd() {
        return;
    }
    let crd_name = metadata_str(object, "name").unwrap_or("").to_string();
    store.registry.remove_crd(&crd_name);
    if !deleted {
        for custom_def in custom_resource_defs(object) {
            store.registry.add(custom_def);
        }
    }
}
