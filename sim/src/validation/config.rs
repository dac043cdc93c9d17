//! ConfigMaps and Secrets: their keys, the 1 MiB limit of their data,
//! `immutable: true`, and the Secret's own rules (`stringData` merged into
//! `data` and never stored, `type` defaulted to `Opaque` and immutable, the
//! keys each built-in type requires).

use base64::Engine;
use serde_json::{Map, Value, json};

use super::metadata::max_len_error;
use crate::error::Cause;

/// `core.MaxSecretSize`, the limit of a ConfigMap's or Secret's data.
pub const MAX_DATA_SIZE: usize = 1024 * 1024;

const IMMUTABLE_MSG: &str = "field is immutable when `immutable` is set";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

/// `IsConfigMapKey`'s messages.
fn config_key_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if key.len() > 253 {
        errors.push(max_len_error(253));
    }
    let valid_chars = |key: &str| {
        key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    if key.is_empty() || !valid_chars(key) {
        errors.push(CONFIG_KEY_MSG.to_string());
    }
    if key == "." {
        errors.push("must not be '.'".to_string());
    } else if key == ".." {
        errors.push("must not be '..'".to_string());
    } else if key.starts_with("..") {
        errors.push("must not start with '..'".to_string());
    }
    errors
}

fn entries<'a>(object: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    object.get(key).and_then(Value::as_object)
}

/// Validates a ConfigMap (`old` on update).
pub fn validate_config_map(config_map: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let data = entries(config_map, "data");
    let binary = entries(config_map, "binaryData");
    let mut total = 0;
    for (key, value) in data.into_iter().flatten() {
        for message in config_key_errors(key) {
            causes.push(Cause::invalid(&format!("data[{key}]"), &json!(key), &message));
        }
        if binary.is_some_and(|binary| binary.contains_key(key)) {
            causes.push(Cause::invalid(
                &format!("data[{key}]"),
                &json!(key),
                "duplicate of key present in binaryData",
            ));
        }
        total += value.as_str().map_or(0, str::len);
    }
    for (key, value) in binary.into_iter().flatten() {
        for message in config_key_errors(key) {
            causes.push(Cause::invalid(&format!("binaryData[{key}]"), &json!(key), &message));
        }
        if data.is_some_and(|data| data.contains_key(key)) {
            causes.push(Cause::invalid(
                &format!("binaryData[{key}]"),
                &json!(key),
                "duplicate of key present in data",
            ));
        }
        total += decoded_len(value);
    }
    if total > MAX_DATA_SIZE {
        // The real server reports the whole object, at the empty path.
        causes.push(too_long("[]"));
    }
    if let Some(old) = old {
        immutable_data(config_map, old, &["data", "binaryData"], &mut causes);
    }
    causes
}

fn too_long(field: &str) -> Cause {
    Cause::new(
        "FieldValueTooLong",
        format!("Too long: must have at most {MAX_DATA_SIZE} bytes"),
        field,
    )
}

/// The decoded length of a base64 value.
fn decoded_len(value: &Value) -> usize {
    let text = value.as_str().unwrap_or("");
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map(|bytes| bytes.len())
        .unwrap_or(text.len() / 4 * 3)
}

/// The checks of an update of an object stored with `immutable: true`.
fn immutable_data(new: &Value, old: &Value, fields: &[&str], causes: &mut Vec<Cause>) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        causes.push(Cause::new(
            "FieldValueForbidden",
            format!("Forbidden: {IMMUTABLE_MSG}"),
            "immutable",
        ));
    }
    for field in fields {
        let present = |object: &Value| object.get(*field).filter(|value| !value.is_null()).cloned();
        if present(new) != present(old) {
            causes.push(Cause::new(
                "FieldValueForbidden",
                format!("Forbidden: {IMMUTABLE_MSG}"),
                *field,
            ));
        }
    }
}

/// A Secret's defaults and conversion: `type` defaults to `Opaque`, and
/// `stringData` is merged into `data` (its keys win) and dropped.
pub fn default_secret(secret: &mut Value) {
    let Some(fields) = secret.as_object_mut() else {
        return;
    };
    if fields.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
        fields.insert("type".into(), json!("Opaque"));
    }
    if let Some(Value::Object(string_data)) = fields.remove("stringData") {
        if !fields.get("data").is_some_and(Value::is_object) {
            fields.insert("data".into(), json!({}));
        }
        if let Some(data) = fields.get_mut("data").and_then(Value::as_object_mut) {
            for (key, value) in string_data {
                let text = value.as_str().unwrap_or("");
                let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
                data.insert(key, json!(encoded));
            }
        }
    }
}

/// Validates a Secret (after [`default_secret`]; `old` on update).
pub fn validate_secret(secret: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let data = entries(secret, "data");
    let mut total = 0;
    for (key, value) in data.into_iter().flatten() {
        for message in config_key_errors(key) {
            causes.push(Cause::invalid(&format!("data[{key}]"), &json!(key), &message));
        }
        total += decoded_len(value);
    }
    if total > MAX_DATA_SIZE {
        causes.push(too_long("data"));
    }
    let has = |key: &str| data.is_some_and(|data| data.contains_key(key));
    let secret_type = secret.get("type").and_then(Value::as_str).unwrap_or("Opaque");
    match secret_type {
        "kubernetes.io/service-account-token" => {
            let name = secret.pointer("/metadata/annotations/kubernetes.io~1service-account.name");
            if name.and_then(Value::as_str).is_none_or(str::is_empty) {
                causes.push(Cause::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => {
            causes.push(Cause::required("data[.dockercfg]", ""));
        }
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            causes.push(Cause::required("data[.dockerconfigjson]", ""));
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            causes.push(Cause::required("data[username]", ""));
            causes.push(Cause::required("data[password]", ""));
        }
        "kubernetes.io/ssh-auth" if !has("ssh-privatekey") => {
            causes.push(Cause::required("data[ssh-privatekey]", ""));
        }
        "kubernetes.io/tls" => {
            if !has("tls.crt") {
                causes.push(Cause::required("data[tls.crt]", ""));
            }
            if !has("tls.key") {
                causes.push(Cause::required("data[tls.key]", ""));
            }
        }
        _ => {}
    }
    if let Some(old) = old {
        let old_type = old.get("type").and_then(Value::as_str).unwrap_or("Opaque");
        if old_type != secret_type {
            causes.push(Cause::invalid("type", &json!(secret_type), "field is immutable"));
        }
        immutable_data(secret, old, &["data"], &mut causes);
    }
    causes
}
