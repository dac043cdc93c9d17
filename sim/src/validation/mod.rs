//! Admission of an object about to be stored: the server's defaults and
//! validation, per kind. Built-in kinds get their typed defaults and checks
//! (`defaults`, `builtin`), custom resources their CRD schema
//! (`custom_resource`), and CRDs themselves their structural checks and
//! status (`crd`). Typed validation of more built-in kinds belongs beside
//! `builtin`.

mod builtin;
mod crd;
mod custom_resource;
mod defaults;
mod names;
mod rbac;

use serde_json::Value;

use crate::error::ApiError;
use crate::registry::ResourceDef;
use crate::util::{metadata_str, now_rfc3339};

pub use names::validate_name;

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
        custom_resource::admit(def, object, strict)?;
    } else {
        defaults::default_object(def, object);
        rbac::default_object(def, object);
        let mut causes = builtin::validate_object(def, object, old);
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
    Ok(())
}
