//! CRD structural schemas, handled as the apiextensions-apiserver does for
//! custom resources: pruning of unknown fields, defaulting, and OpenAPI v3
//! validation with the real server's field-error messages.
//!
//! The schema is a CRD version's `schema.openAPIV3Schema` and the object the
//! whole custom resource, both as `serde_json::Value`. At the root,
//! `apiVersion`, `kind` and `metadata` are left to the server (metadata is
//! validated separately). The server applies prune, default, validate in
//! that order, then the CEL rules (`x-kubernetes-validations`, `cel`);
//! validation and the rules walk the object along the schema alike (`walk`).
//!
//! The built-in kinds have schemas too (`builtin`, from k8s-openapi), which
//! typed decoding (`decode`) applies to request bodies as the real server's
//! Go decoder does.

mod builtin;
mod cel;
mod decode;
mod defaults;
mod go_format;
mod prune;
mod validate;
mod walk;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::error::Cause;

pub use builtin::{BuiltinSchemas, builtin_schemas, rewrite_refs};
pub use cel::{check_rules, validate_rules};
pub use decode::{DecodeError, decode};
pub use defaults::apply_defaults;
pub use prune::prune;
pub use validate::validate;

/// `metav1.CauseType` of a field error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorReason {
    /// `FieldValueInvalid`.
    Invalid,
    /// `FieldValueRequired`.
    Required,
    /// `FieldValueNotSupported` (enum).
    NotSupported,
    /// `FieldValueTypeInvalid`.
    TypeInvalid,
    /// `FieldValueTooLong` (maxLength).
    TooLong,
    /// `FieldValueTooMany` (maxItems, maxProperties).
    TooMany,
    /// `FieldValueDuplicate` (list-type set/map).
    Duplicate,
    /// `FieldValueForbidden` (a CEL rule's reason).
    Forbidden,
}

impl FieldErrorReason {
    /// The wire name (`StatusCause.reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "FieldValueInvalid",
            Self::Required => "FieldValueRequired",
            Self::NotSupported => "FieldValueNotSupported",
            Self::TypeInvalid => "FieldValueTypeInvalid",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Forbidden => "FieldValueForbidden",
        }
    }
}

/// One field error: `field` like `spec.batchSize` or `spec.items[0].name`,
/// `message` the error body like `Required value`. Displays as the server
/// prints it: `spec.batchSize: Invalid value: 0: ...`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub reason: FieldErrorReason,
    pub message: String,
}

impl From<&FieldError> for Cause {
    fn from(error: &FieldError) -> Self {
        Cause::new(error.reason.as_str(), error.message.clone(), error.field.clone())
    }
}

/// `path.key` (or `key` at the root).
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

/// `path[i]`.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// A boolean schema keyword, false when absent.
pub fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The schema's `properties`.
pub fn properties(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

/// The schema of `additionalProperties` when it is a schema (not a bool).
pub fn additional_schema(schema: &Value) -> Option<&Value> {
    schema.get("additionalProperties").filter(|additional| additional.is_object())
}

/// Fields the server owns at an object's root: never pruned, defaulted or
/// validated by the schema (metadata has its own validation).
pub const ROOT_META: [&str; 3] = ["apiVersion", "kind", "metadata"];
