//! What the query and headers ask of a write or a list: the write options
//! (field manager, dry run, field validation), the patch format, delete
//! preconditions, and the label and field selectors.

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

use super::query::{Query, is_true};
use crate::error::{ApiError, Cause};
use crate::patch::PatchType;
use crate::registry::ResourceDef;
use crate::selector::{FieldSelector, LabelSelector};
use crate::validation::FieldValidation;
use crate::write::{DeleteOptions, DeletePreconditions, Propagation, WriteOptions};

/// The patch types every resource accepts (the error message lists them).
const PATCH_TYPES: &str =
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

/// The options of a write from its query (`fieldManager`, `dryRun`,
/// `fieldValidation`) and headers (the User-Agent names the manager when no
/// `fieldManager` does).
pub fn write_options<'a>(
    query: &Query,
    headers: &HeaderMap,
    subresource: Option<&'a str>,
) -> Result<WriteOptions<'a>, ApiError> {
    let dry_run = match query.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            )));
        }
    };
    Ok(WriteOptions {
        manager: field_manager(query, headers),
        subresource,
        dry_run,
        track_managed_fields: true,
        strict: FieldValidation::parse(query.get("fieldValidation").map(String::as_str))?
            == FieldValidation::Strict,
        force: is_true(query, "force"),
    })
}

/// `fieldManager`, else the User-Agent's product name (as the real server
/// defaults it), at most 128 characters.
fn field_manager(query: &Query, headers: &HeaderMap) -> String {
    if let Some(manager) = query.get("fieldManager").filter(|manager| !manager.is_empty()) {
        return manager.clone();
    }
    let user_agent =
        headers.get(header::USER_AGENT).and_then(|value| value.to_str().ok()).unwrap_or("unknown");
    let product = user_agent.split('/').next().unwrap_or(user_agent);
    product.chars().take(128).collect()
}

/// What a PATCH request's content type asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchFormat {
    /// A JSON, merge or strategic merge patch.
    Patch(PatchType),
    /// Server-side apply.
    Apply,
}

/// The patch format of a PATCH request to `def`; strategic merge patches
/// are for built-in types only.
pub fn patch_format(headers: &HeaderMap, def: &ResourceDef) -> Result<PatchFormat, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    match content_type {
        "application/json-patch+json" => Ok(PatchFormat::Patch(PatchType::Json)),
        "application/merge-patch+json" => Ok(PatchFormat::Patch(PatchType::Merge)),
        "application/strategic-merge-patch+json" if !def.is_custom() => {
            Ok(PatchFormat::Patch(PatchType::StrategicMerge))
        }
        "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchFormat::Apply),
        _ => Err(unsupported_patch_type(def)),
    }
}

/// The 415 for a patch content type `def` does not accept.
pub fn unsupported_patch_type(def: &ResourceDef) -> ApiError {
    let accepted = if def.is_custom() {
        PATCH_TYPES.to_string()
    } else {
        format!("{PATCH_TYPES}, application/strategic-merge-patch+json")
    };
    ApiError::unsupported_media(format!(
        "the body of the request was in an unknown format - accepted media types include: {accepted}"
    ))
}

/// What a DELETE asks for (from its query and its `DeleteOptions` body).
pub struct DeleteRequest {
    /// The options the write pipeline takes.
    pub options: DeleteOptions,
    /// The deprecated `orphanDependents` was `false`: an object finalizers
    /// hold is answered 202 (the only case the real server does so).
    pub accepted_if_pending: bool,
}

/// The options of a DELETE; 422 for invalid ones, as `ValidateDeleteOptions`.
pub fn delete_options(query: &Query, body: &Value) -> Result<DeleteRequest, ApiError> {
    let dry_run = query.get("dryRun").map(String::as_str) == Some("All")
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|stages| stages.iter().any(|stage| stage == "All"));
    let precondition = |key: &str| {
        body.pointer(&format!("/preconditions/{key}")).and_then(Value::as_str).map(String::from)
    };
    let preconditions = DeletePreconditions {
        uid: precondition("uid"),
        resource_version: precondition("resourceVersion"),
    };
    let policy = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| query.get("propagationPolicy").cloned());
    let orphan_dependents = body
        .get("orphanDependents")
        .and_then(Value::as_bool)
        .or_else(|| query.get("orphanDependents").map(|value| value == "true"));
    let invalid = |cause: Cause| {
        ApiError::invalid("DeleteOptions", "meta.k8s.io", "", std::slice::from_ref(&cause))
    };
    let propagation = match (policy.as_deref(), orphan_dependents) {
        (Some(policy), Some(_)) => {
            return Err(invalid(Cause::invalid(
                "propagationPolicy",
                &json!(policy),
                "orphanDependents and deletionPropagation cannot be both set",
            )));
        }
        (Some("Orphan"), None) => Some(Propagation::Orphan),
        (Some("Background"), None) => Some(Propagation::Background),
        (Some("Foreground"), None) => Some(Propagation::Foreground),
        (Some(other), None) => {
            return Err(invalid(Cause::new(
                "FieldValueNotSupported",
                format!(
                    "Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ),
                "propagationPolicy",
            )));
        }
        (None, Some(true)) => Some(Propagation::Orphan),
        (None, Some(false)) => Some(Propagation::Background),
        (None, None) => None,
    };
    let grace_period_seconds = body
        .get("gracePeriodSeconds")
        .and_then(Value::as_i64)
        .or_else(|| query.get("gracePeriodSeconds").and_then(|value| value.parse().ok()));
    Ok(DeleteRequest {
        options: DeleteOptions { preconditions, propagation, dry_run, grace_period_seconds },
        accepted_if_pending: orphan_dependents == Some(false),
    })
}

/// The label and field selectors of a list, watch or deletecollection.
pub struct ListSelectors {
    label: LabelSelector,
    field: FieldSelector,
}

impl ListSelectors {
    /// Parses `labelSelector` and `fieldSelector` for `def` (field paths
    /// checked against the resource's and converted to storage form).
    pub fn from_query(def: &ResourceDef, query: &Query) -> Result<Self, ApiError> {
        let mut field = FieldSelector::parse(
            query.get("fieldSelector").map(String::as_str).unwrap_or(""),
            &def.selectable_fields(),
        )?;
        field.map_paths(|path| def.field_path_to_storage(path));
        let label =
            LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?;
        Ok(ListSelectors { label, field })
    }

    /// Whether a stored object matches both.
    pub fn matches(&self, object: &Value) -> bool {
        self.label.matches(object) && self.field.matches(object)
    }
}
