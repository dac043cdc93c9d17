//! Admission of custom resources: pruning, defaulting, metadata checks,
//! validation against the version's `openAPIV3Schema` and its CEL rules
//! (`x-kubernetes-validations`, with `oldSelf` on update), turned into the
//! errors the real server answers.

use serde_json::Value;

use super::metadata;
use crate::error::{ApiError, Cause};
use crate::registry::ResourceDef;
use crate::schema;
use crate::util::metadata_str;

/// Prunes unknown fields, applies defaults and validates a custom resource
/// against its version's `openAPIV3Schema`. With `strict`, pruned fields
/// are an error (`fieldValidation=Strict`), as the real server's strict
/// decoding reports them.
pub fn admit(
    def: &ResourceDef,
    object: &mut Value,
    old: Option<&Value>,
    strict: bool,
) -> Result<(), ApiError> {
    let Some(structural_schema) = &def.schema else {
        return Ok(());
    };
    let pruned = schema::prune(structural_schema, object);
    if strict && !pruned.is_empty() {
        let unknown: Vec<String> =
            pruned.iter().map(|path| format!("unknown field {path:?}")).collect();
        return Err(ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
            unknown.join(", "),
            kind = def.kind,
            version = def.version,
        )));
    }
    schema::apply_defaults(structural_schema, object);
    let mut causes = metadata::validate_metadata(object);
    let errors = schema::validate(structural_schema, object);
    causes.extend(errors.iter().map(Cause::from));
    if errors.is_empty() {
        // The rules assume the types the schema guarantees.
        let failed = schema::validate_rules(structural_schema, object, old);
        causes.extend(failed.iter().map(Cause::from));
    }
    if causes.is_empty() {
        return Ok(());
    }
    let name = metadata_str(object, "name").unwrap_or("");
    Err(ApiError::invalid(&def.kind, &def.group, name, &causes))
}
