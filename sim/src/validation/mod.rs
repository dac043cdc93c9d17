//! Admission of an object about to be stored: the server's defaults and
//! validation, per kind. Every object gets the metadata checks
//! (`metadata`); built-in kinds their typed defaults and checks
//! (`defaults`, `builtin`, which dispatches to `config` for ConfigMaps and
//! Secrets, `service` for Services and PodDisruptionBudgets and `workloads`
//! for StatefulSets, DaemonSets and ControllerRevisions, which share the
//! selector and pod-template checks of `pod_template`), custom
//! resources their CRD schema and CEL rules (`custom_resource`), and CRDs
//! themselves their structural checks and status (`crd`). Last, the stored
//! form must fit etcd's request limit. Typed validation of more built-in
//! kinds belongs beside `builtin`.
//!
//! Before admission, `decoding` turns a request's object into what the real
//! server's decoder would make of it (types, unknown fields).

mod builtin;
mod config;
mod crd;
mod custom_resource;
mod decoding;
mod defaults;
mod metadata;
mod names;
mod pod_template;
mod rbac;
mod service;
mod workloads;

use serde_json::Value;

use crate::error::ApiError;
use crate::registry::ResourceDef;
use crate::util::{metadata_str, now_rfc3339};

pub use decoding::{FieldValidation, Source, decode};
pub use names::validate_name;
pub use workloads::TEMPLATE_GENERATION_ANNOTATION;

/// Defaults and validates an object about to be stored (`old` is the stored
/// object on update). `strict` is `fieldValidation=Strict`.
pub fn admit(
    def: &ResourceDef,
    object: &mut Value,
    old: Option<&Value>,
    strict: bool,
) -> Result<(), ApiError> {
    let name = metadata_str(object, "name").unwrap_or("").to_string();
    if def.is_custom() {
        custom_resource::admit(def, object, old, strict)?;
    } else {
        defaults::default_object(def, object);
        rbac::default_object(def, object);
        prepare(def, object, old);
        let mut causes = metadata::validate_metadata(object);
        causes.extend(builtin::validate_object(def, object, old));
        causes.extend(rbac::validate(def, object, old));
        if !causes.is_empty() {
            return Err(ApiError::invalid(&def.kind, &def.group, &name, &causes));
        }
    }
    if def.is_crd() {
        let causes = crd::validate(object);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&def.kind, &def.group, &name, &causes));
        }
        crd::prepare(object, &now_rfc3339());
    }
    check_storage_size(object)
}

/// What the server sets on built-in kinds beyond their defaults, which may
/// depend on the stored object: a Secret's `stringData` and type, a
/// Service's allocations, a PodDisruptionBudget's first status, a
/// DaemonSet's template generation.
fn prepare(def: &ResourceDef, object: &mut Value, old: Option<&Value>) {
    if def.is("", "secrets") {
        config::default_secret(object);
    } else if def.is("", "services") {
        service::prepare_service(object, old);
    } else if def.is("policy", "poddisruptionbudgets") {
        service::prepare_pod_disruption_budget(object, old);
    } else if def.is("apps", "daemonsets") {
        workloads::prepare_daemon_set(object, old);
    }
}

/// etcd's default `--max-request-bytes` (1.5 MiB), which every stored
/// object must fit into.
const MAX_STORED_BYTES: usize = 1536 * 1024;

/// The error etcd answers (and the API server passes on as a 500) for an
/// object too large to store.
fn check_storage_size(object: &Value) -> Result<(), ApiError> {
    let size = serde_json::to_vec(object).map(|bytes| bytes.len()).unwrap_or(0);
    if size > MAX_STORED_BYTES {
        return Err(ApiError::request_too_large());
    }
    Ok(())
}
