//! The checks of `metadata` every kind gets (`ValidateObjectMetaAccessor`):
//! label keys and values, annotation keys and their total size, owner
//! references (the required fields, at most one controller), and finalizer
//! names, with the real server's paths and messages.

use serde_json::{Map, Value, json};

use crate::error::Cause;

/// The real server's limit of all annotations together (keys and values).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// `must be no more than N characters` (v1.32's `MaxLenError`).
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// Whether `text` matches `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
fn is_qualified_name_part(text: &str) -> bool {
    let bytes = text.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Whether `text` matches the DNS-1123 subdomain pattern (no length check).
pub fn matches_subdomain(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|label| {
            let bytes = label.as_bytes();
            let ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            match (bytes.first(), bytes.last()) {
                (Some(first), Some(last)) => {
                    ok(first) && ok(last) && bytes.iter().all(|b| ok(b) || *b == b'-')
                }
                _ => false,
            }
        })
}

/// `IsDNS1123Subdomain`'s messages.
pub fn subdomain_errors(text: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if text.len() > 253 {
        errors.push(max_len_error(253));
    }
    if !matches_subdomain(text) {
        errors.push(SUBDOMAIN_MSG.to_string());
    }
    errors
}

/// `IsQualifiedName`'s messages for a label key, annotation key (lower
/// cased first) or finalizer.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                errors.extend(
                    subdomain_errors(prefix).into_iter().map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errors.push(format!("name part {}", max_len_error(63)));
    }
    if !is_qualified_name_part(name) {
        errors.push(format!("name part {QUALIFIED_NAME_MSG}"));
    }
    errors
}

/// `IsValidLabelValue`'s messages.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push(max_len_error(63));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errors.push(LABEL_VALUE_MSG.to_string());
    }
    errors
}

/// Validates an object's metadata.
pub fn validate_metadata(object: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let Some(metadata) = object.get("metadata").and_then(Value::as_object) else {
        return causes;
    };
    validate_labels(metadata, &mut causes);
    validate_annotations(metadata, &mut causes);
    validate_owner_references(metadata, &mut causes);
    for finalizer in metadata.get("finalizers").and_then(Value::as_array).into_iter().flatten() {
        let name = finalizer.as_str().unwrap_or("");
        for message in qualified_name_errors(name) {
            causes.push(Cause::invalid("metadata.finalizers", &json!(name), &message));
        }
    }
    causes
}

fn validate_labels(metadata: &Map<String, Value>, causes: &mut Vec<Cause>) {
    let Some(labels) = metadata.get("labels").and_then(Value::as_object) else {
        return;
    };
    for (key, value) in labels {
        for message in qualified_name_errors(key) {
            causes.push(Cause::invalid("metadata.labels", &json!(key), &message));
        }
        let text = value.as_str().unwrap_or("");
        for message in label_value_errors(text) {
            causes.push(Cause::invalid("metadata.labels", value, &message));
        }
    }
}

fn validate_annotations(metadata: &Map<String, Value>, causes: &mut Vec<Cause>) {
    let Some(annotations) = metadata.get("annotations").and_then(Value::as_object) else {
        return;
    };
    let mut total = 0;
    for (key, value) in annotations {
        for message in qualified_name_errors(&key.to_lowercase()) {
            causes.push(Cause::invalid("metadata.annotations", &json!(key), &message));
        }
        total += key.len() + value.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        causes.push(Cause::new(
            "FieldValueTooLong",
            format!("Too long: must have at most {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"),
            "metadata.annotations",
        ));
    }
}

fn validate_owner_references(metadata: &Map<String, Value>, causes: &mut Vec<Cause>) {
    let Some(references) = metadata.get("ownerReferences").and_then(Value::as_array) else {
        return;
    };
    let path = "metadata.ownerReferences";
    let mut first_controller: Option<String> = None;
    for reference in references {
        let text = |key: &str| reference.get(key).and_then(Value::as_str).unwrap_or("").to_string();
        let api_version = text("apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            causes.push(Cause::invalid(
                &format!("{path}.apiVersion"),
                &json!(api_version),
                "version must not be empty",
            ));
        }
        for key in ["kind", "name", "uid"] {
            if text(key).is_empty() {
                causes.push(Cause::invalid(
                    &format!("{path}.{key}"),
                    &json!(""),
                    "must not be empty",
                ));
            }
        }
        if (api_version == "v1") && text("kind") == "Event" {
            causes.push(Cause::new(
                "FieldValueInvalid",
                format!(
                    "Invalid value: {}: /v1, Kind=Event is disallowed from being an owner",
                    go_owner_reference(reference)
                ),
                path,
            ));
        }
        if reference.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{}/{}", text("kind"), text("name"));
            match &first_controller {
                Some(first) => causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!(
                        "Invalid value: []v1.OwnerReference{{{}}}: Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}",
                        references.iter().map(go_owner_reference).collect::<Vec<_>>().join(", ")
                    ),
                    path,
                )),
                None => first_controller = Some(current),
            }
        }
    }
}

/// An owner reference as Go's `%#v` prints it (pointers as addresses).
fn go_owner_reference(reference: &Value) -> String {
    let text = |key: &str| reference.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let pointer = |key: &str| match reference.get(key).and_then(Value::as_bool) {
        Some(_) => "(*bool)(0xc000a1c2d8)".to_string(),
        None => "(*bool)(nil)".to_string(),
    };
    format!(
        "v1.OwnerReference{{APIVersion:{:?}, Kind:{:?}, Name:{:?}, UID:{:?}, Controller:{}, BlockOwnerDeletion:{}}}",
        text("apiVersion"),
        text("kind"),
        text("name"),
        text("uid"),
        pointer("controller"),
        pointer("blockOwnerDeletion"),
    )
}
