//! The seams between the server core and the modules that model content:
//! custom-resource admission (pruning, defaulting, validation: `schema`),
//! server-side Table output (`table`) and OpenAPI v3 documents (`openapi`).
//! Keeping the calls here lets the core stay unaware of their internals.

use std::sync::Arc;

use serde_json::Value;

use crate::error::{ApiError, Cause};
use crate::registry::{Registry, ResourceDef};
use crate::{openapi, schema, table as tbl};

/// Prunes unknown fields, applies defaults and validates a custom resource
/// against its version's `openAPIV3Schema`. With `strict`, pruned fields
/// are an error (`fieldValidation=Strict`), as the real server's strict
/// decoding reports them.
pub fn cr_admit(def: &ResourceDef, obj: &mut Value, strict: bool) -> Result<(), ApiError> {
    let Some(s) = &def.schema else {
        return Ok(());
    };
    let pruned = schema::prune(s, obj);
    if strict && !pruned.is_empty() {
        let list: Vec<String> = pruned.iter().map(|p| format!("unknown field {p:?}")).collect();
        return Err(ApiError::bad_request(format!(
            "{kind} in version {v:?} cannot be handled as a {kind}: strict decoding error: {}",
            list.join(", "),
            kind = def.kind,
            v = def.version,
        )));
    }
    schema::apply_defaults(s, obj);
    let errors = schema::validate(s, obj);
    if errors.is_empty() {
        return Ok(());
    }
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let causes: Vec<Cause> = errors
        .iter()
        .map(|e| Cause::new(e.reason.as_str(), e.message.clone(), e.field.clone()))
        .collect();
    let mut err = ApiError::invalid(&def.kind, &def.group, name, &causes);
    // The schema module renders the exact message (deduplicated causes).
    let status = schema::invalid_status(&def.kind, &def.group, name, &errors);
    if let Some(m) = status.get("message").and_then(Value::as_str) {
        err.message = m.to_string();
    }
    if let Some(d) = status.get("details") {
        err.details = Some(d.clone());
    }
    Err(err)
}

/// A `meta.k8s.io/v1` Table for the given objects. `crd` is the defining
/// CRD of a custom resource; `rv` the list's (or object's) resourceVersion.
pub fn table(
    def: &ResourceDef,
    crd: Option<&Value>,
    items: &[Arc<Value>],
    rv: &str,
    include: Option<&str>,
) -> Result<Value, ApiError> {
    let include = tbl::IncludeObject::from_query(include).ok_or_else(|| {
        ApiError::bad_request(format!(
            "includeObject: Unsupported value: {:?}: supported values: \"None\", \"Metadata\", \"Object\"",
            include.unwrap_or("")
        ))
    })?;
    let columns = match crd {
        Some(c) => tbl::columns_for_crd(c, &def.version),
        None => tbl::columns_for_builtin(&def.plural),
    };
    let objects: Vec<Value> = items.iter().map(|o| crate::api::present(def, o)).collect();
    Ok(tbl::table(&columns, &objects, rv, include, crate::util::now_ms()))
}

fn gv_list(registry: &Registry) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for d in registry.all() {
        if !out.iter().any(|(g, v)| *g == d.group && *v == d.version) {
            out.push((d.group.clone(), d.version.clone()));
        }
    }
    out
}

fn document(registry: &Registry, group: &str, version: &str) -> Value {
    let resources: Vec<openapi::ResourceSchema> = registry
        .all()
        .filter(|d| d.group == group && d.version == version)
        .map(|d| openapi::ResourceSchema {
            kind: d.kind.clone(),
            plural: d.plural.clone(),
            namespaced: d.namespaced,
            status_subresource: d.status_subresource,
            schema: d.schema.clone(),
        })
        .collect();
    openapi::group_version_document(group, version, &resources)
}

/// `/openapi/v3` discovery document.
pub fn openapi_root(registry: &Registry) -> Value {
    let docs: Vec<(String, Value)> = gv_list(registry)
        .into_iter()
        .map(|(g, v)| (openapi::gv_path(&g, &v), document(registry, &g, &v)))
        .collect();
    openapi::index_for(&docs)
}

/// `/openapi/v3/<path>` document (e.g. `apis/apps/v1`); `None` for an
/// unknown group-version.
pub fn openapi_doc(registry: &Registry, path: &str) -> Option<Value> {
    gv_list(registry)
        .into_iter()
        .find(|(g, v)| openapi::gv_path(g, v) == path)
        .map(|(g, v)| document(registry, &g, &v))
}
