//! CRD structural-schema handling, as the apiextensions-apiserver does it for
//! custom resources: pruning of unknown fields, defaulting, and OpenAPI v3
//! validation with the real server's field-error messages, plus the 422
//! `Status` body that carries them. The schema is a CRD version's
//! `schema.openAPIV3Schema` and the object the whole custom resource, both as
//! `serde_json::Value`. At the root, `apiVersion`, `kind` and `metadata` are
//! left to the server (metadata is validated separately).
//!
//! API:
//! - [`prune`] drops fields the schema does not know and returns their paths
//!   (what `fieldValidation=Strict` reports as `unknown field "spec.x"`).
//! - [`apply_defaults`] drops `null`s of non-nullable fields and fills in
//!   `default`s, recursively.
//! - [`validate`] returns [`FieldError`]s in the order the server reports them.
//! - [`invalid_status`] builds the `422 Invalid` Status body.
//!
//! The order the server applies them on create/update: prune, default,
//! validate.

use serde_json::{Map, Value, json};

/// `metav1.CauseType` of a field error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorReason {
    /// `FieldValueInvalid`.
    FieldValueInvalid,
    /// `FieldValueRequired`.
    FieldValueRequired,
    /// `FieldValueNotSupported` (enum).
    FieldValueNotSupported,
    /// `FieldValueTypeInvalid`.
    FieldValueTypeInvalid,
    /// `FieldValueTooLong` (maxLength).
    FieldValueTooLong,
    /// `FieldValueTooMany` (maxItems, maxProperties).
    FieldValueTooMany,
    /// `FieldValueDuplicate` (list-type set/map).
    FieldValueDuplicate,
}

impl FieldErrorReason {
    /// The wire name (`StatusCause.reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FieldValueInvalid => "FieldValueInvalid",
            Self::FieldValueRequired => "FieldValueRequired",
            Self::FieldValueNotSupported => "FieldValueNotSupported",
            Self::FieldValueTypeInvalid => "FieldValueTypeInvalid",
            Self::FieldValueTooLong => "FieldValueTooLong",
            Self::FieldValueTooMany => "FieldValueTooMany",
            Self::FieldValueDuplicate => "FieldValueDuplicate",
        }
    }
}

/// One field error: `field` like `spec.batchSize` or `spec.items[0].name`,
/// `message` the error body like `Required value`. Displays as the server
/// prints it: `spec.batchSize: Invalid value: 0: ...`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Path of the field.
    pub field: String,
    /// Cause type.
    pub reason: FieldErrorReason,
    /// Error body (without the field).
    pub message: String,
}

// ---------------------------------------------------------------- helpers

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn properties(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

/// The schema of `additionalProperties` when it is a schema (not a bool).
fn additional_schema(schema: &Value) -> Option<&Value> {
    schema.get("additionalProperties").filter(|a| a.is_object())
}

const ROOT_META: [&str; 3] = ["apiVersion", "kind", "metadata"];

// ---------------------------------------------------------------- pruning

/// Drops fields not specified by `schema` from `obj` and returns their paths
/// (`spec.colour`, `spec.items[0].x`), in object order. Fields are kept
/// under `x-kubernetes-preserve-unknown-fields: true`, and every key of a map
/// with an `additionalProperties` schema is kept (its values pruned by that
/// schema). At the root `apiVersion`, `kind` and `metadata` are never pruned;
/// an `x-kubernetes-embedded-resource` keeps them too.
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune_at(schema, obj, "", true, &mut pruned);
    pruned
}

fn prune_at(schema: &Value, obj: &mut Value, path: &str, root: bool, pruned: &mut Vec<String>) {
    if flag(schema, "x-kubernetes-int-or-string") {
        return;
    }
    match obj {
        Value::Object(map) => {
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            let props = properties(schema);
            let additional = additional_schema(schema);
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let keep_meta = (root || embedded) && ROOT_META.contains(&key.as_str());
                let child_path = join(path, &key);
                if let Some(prop) = props.and_then(|p| p.get(&key)) {
                    if !(root && keep_meta)
                        && let Some(child) = map.get_mut(&key)
                    {
                        prune_at(prop, child, &child_path, false, pruned);
                    }
                } else if let Some(additional) = additional {
                    if let Some(child) = map.get_mut(&key) {
                        prune_at(additional, child, &child_path, false, pruned);
                    }
                } else if keep_meta
                    || preserve
                    || schema.get("additionalProperties") == Some(&Value::Bool(true))
                {
                    // Kept as is.
                } else {
                    map.remove(&key);
                    pruned.push(child_path);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_at(item_schema, item, &index(path, i), false, pruned);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- defaulting

/// Applies `default`s for absent properties, recursively (into array items,
/// map values and defaulted values themselves). Before defaulting, `null`
/// values of fields that are not `nullable` are dropped (and so get their
/// default, if any), as the API server does.
pub fn apply_defaults(schema: &Value, obj: &mut Value) {
    default_at(schema, obj, true);
}

fn default_at(schema: &Value, obj: &mut Value, root: bool) {
    match obj {
        Value::Object(map) => {
            if let Some(props) = properties(schema) {
                for (key, prop) in props {
                    if root && ROOT_META.contains(&key.as_str()) {
                        continue;
                    }
                    if map.get(key) == Some(&Value::Null) && !flag(prop, "nullable") {
                        map.remove(key);
                    }
                    if !map.contains_key(key)
                        && let Some(default) = prop.get("default")
                    {
                        map.insert(key.clone(), default.clone());
                    }
                    if let Some(child) = map.get_mut(key) {
                        default_at(prop, child, false);
                    }
                }
            }
            if let Some(additional) = additional_schema(schema) {
                let known = properties(schema);
                for (key, child) in map.iter_mut() {
                    if known.is_some_and(|k| k.contains_key(key)) {
                        continue;
                    }
                    default_at(additional, child, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items.iter_mut() {
                    default_at(item_schema, item, false);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- validation

/// Validates `obj` against `schema` and returns every field error, in the
/// order the API server lists them (per node: type, string, format, number,
/// array, enum, then object: required before properties, properties in key
/// order where the server's order is random), then the list-type
/// (`set`/`map`) duplicates. `anyOf`/`allOf`/`oneOf`/`not` are not checked
/// (beyond `x-kubernetes-int-or-string`), nor `x-kubernetes-validations`.
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate_at(schema, obj, "", true, &mut errors);
    // The server checks list types (set/map uniqueness) after the schema.
    list_types_at(schema, obj, "", true, &mut errors);
    errors
}

fn list_types_at(
    schema: &Value,
    value: &Value,
    path: &str,
    root: bool,
    errors: &mut Vec<FieldError>,
) {
    match value {
        Value::Array(items) => {
            list_type_errors(schema, items, path, errors);
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    list_types_at(item_schema, item, &index(path, i), false, errors);
                }
            }
        }
        Value::Object(map) => {
            let props = properties(schema);
            let additional = additional_schema(schema);
            for (key, child) in map {
                if root && ROOT_META.contains(&key.as_str()) {
                    continue;
                }
                let child_schema = props.and_then(|p| p.get(key)).or(additional);
                if let Some(child_schema) = child_schema {
                    list_types_at(child_schema, child, &join(path, key), false, errors);
                }
            }
        }
        _ => {}
    }
}

/// The JSON type name the OpenAPI validator reports for a value.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "integer" => match value {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        "number" => value.is_number(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

/// Formats a number like Go's `%v` does for the common cases.
fn go_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e21 { format!("{n:.0}") } else { format!("{n}") }
}

/// Go's `%q` for a string (close enough: JSON escaping).
fn quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// Go's `%#v` of an unstructured value, roughly.
fn go_syntax(value: &Value) -> String {
    match value {
        Value::Null => "interface {}(nil)".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(items) => format!(
            "[]interface {{}}{{{}}}",
            items.iter().map(go_syntax).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "map[string]interface {{}}{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}:{}", quote(k), go_syntax(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The `BadValue` part of a field error body, as `field.Error.ErrorBody`.
fn bad_value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => go_number(f),
            _ => n.to_string(),
        },
        Value::String(s) => quote(s),
        other => go_syntax(other),
    }
}

fn invalid(errors: &mut Vec<FieldError>, path: &str, value: &Value, detail: String) {
    errors.push(FieldError {
        field: path.to_owned(),
        reason: FieldErrorReason::FieldValueInvalid,
        message: format!("Invalid value: {}: {detail}", bad_value(value)),
    });
}

fn num(schema: &Value, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

fn count(schema: &Value, key: &str) -> Option<u64> {
    schema.get(key).and_then(Value::as_u64)
}

fn validate_at(
    schema: &Value,
    value: &Value,
    path: &str,
    root: bool,
    errors: &mut Vec<FieldError>,
) {
    let int_or_string = flag(schema, "x-kubernetes-int-or-string");
    let shown = if path.is_empty() { "<root>" } else { path };

    // type (and nullable)
    if value.is_null() {
        if flag(schema, "nullable") {
            return;
        }
        let expected = if int_or_string {
            Some("integer,string".to_owned())
        } else {
            schema.get("type").and_then(Value::as_str).map(str::to_owned)
        };
        if let Some(expected) = expected {
            errors.push(FieldError {
                field: path.to_owned(),
                reason: FieldErrorReason::FieldValueTypeInvalid,
                message: format!(
                    "Invalid value: \"null\": {shown} in body must be of type {expected}: \"null\""
                ),
            });
        }
        return;
    }
    let type_ok = if int_or_string {
        type_matches("integer", value) || value.is_string()
    } else {
        schema.get("type").and_then(Value::as_str).is_none_or(|t| type_matches(t, value))
    };
    if !type_ok {
        let expected = if int_or_string {
            "integer,string"
        } else {
            schema.get("type").and_then(Value::as_str).unwrap_or("")
        };
        let actual = type_name(value);
        errors.push(FieldError {
            field: path.to_owned(),
            reason: FieldErrorReason::FieldValueTypeInvalid,
            message: format!(
                "Invalid value: \"{actual}\": {shown} in body must be of type {expected}: \"{actual}\""
            ),
        });
        return;
    }

    // strings
    if let Value::String(s) = value {
        let len = s.chars().count() as u64;
        if let Some(max) = count(schema, "maxLength")
            && len > max
        {
            let unit = if max == 1 { "byte" } else { "bytes" };
            errors.push(FieldError {
                field: path.to_owned(),
                reason: FieldErrorReason::FieldValueTooLong,
                message: format!("Too long: may not be more than {max} {unit}"),
            });
        }
        if let Some(min) = count(schema, "minLength")
            && len < min
        {
            invalid(
                errors,
                path,
                value,
                format!("{shown} in body should be at least {min} chars long"),
            );
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            // An uncompilable pattern is rejected when the CRD is created; a
            // stored one that does not compile checks nothing.
            if let Ok(re) = regex::Regex::new(pattern)
                && !re.is_match(s)
            {
                invalid(errors, path, value, format!("{shown} in body should match '{pattern}'"));
            }
        }
        // format
        if let Some(format) = schema.get("format").and_then(Value::as_str)
            && !format_ok(format, s)
        {
            errors.push(FieldError {
                field: path.to_owned(),
                reason: FieldErrorReason::FieldValueTypeInvalid,
                message: format!(
                    "Invalid value: {}: {shown} in body must be of type {format}: {}",
                    quote(s),
                    quote(s)
                ),
            });
        }
    }

    // numbers
    if let Some(n) = value.as_f64() {
        if let Some(m) = num(schema, "multipleOf")
            && m > 0.0
            && (n / m).fract() != 0.0
        {
            let detail = format!("{shown} in body should be a multiple of {}", go_number(m));
            invalid(errors, path, value, detail);
        }
        if let Some(max) = num(schema, "maximum") {
            if flag(schema, "exclusiveMaximum") {
                if n >= max {
                    let detail = format!("{shown} in body should be less than {}", go_number(max));
                    invalid(errors, path, value, detail);
                }
            } else if n > max {
                let detail =
                    format!("{shown} in body should be less than or equal to {}", go_number(max));
                invalid(errors, path, value, detail);
            }
        }
        if let Some(min) = num(schema, "minimum") {
            if flag(schema, "exclusiveMinimum") {
                if n <= min {
                    let detail =
                        format!("{shown} in body should be greater than {}", go_number(min));
                    invalid(errors, path, value, detail);
                }
            } else if n < min {
                let detail = format!(
                    "{shown} in body should be greater than or equal to {}",
                    go_number(min)
                );
                invalid(errors, path, value, detail);
            }
        }
    }

    // arrays
    if let Value::Array(items) = value {
        let len = items.len() as u64;
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate_at(item_schema, item, &index(path, i), false, errors);
            }
        }
        if let Some(min) = count(schema, "minItems")
            && len < min
        {
            invalid(
                errors,
                path,
                &json!(len),
                format!("{shown} in body should have at least {min} items"),
            );
        }
        if let Some(max) = count(schema, "maxItems")
            && len > max
        {
            errors.push(FieldError {
                field: path.to_owned(),
                reason: FieldErrorReason::FieldValueTooMany,
                message: format!("Too many: {len}: must have at most {max} items"),
            });
        }
        if flag(schema, "uniqueItems") && has_duplicates(items) {
            invalid(errors, path, value, format!("{shown} in body shouldn't contain duplicates"));
        }
    }

    // enum
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let supported: Vec<String> = allowed
            .iter()
            .map(|v| match v {
                Value::String(s) => quote(s),
                other => quote(&other.to_string()),
            })
            .collect();
        errors.push(FieldError {
            field: path.to_owned(),
            reason: FieldErrorReason::FieldValueNotSupported,
            message: format!(
                "Unsupported value: {}: supported values: {}",
                bad_value(value),
                supported.join(", ")
            ),
        });
    }

    // objects
    if let Value::Object(map) = value {
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for key in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(key) {
                    errors.push(FieldError {
                        field: join(path, key),
                        reason: FieldErrorReason::FieldValueRequired,
                        message: "Required value".to_owned(),
                    });
                }
            }
        }
        if let Some(max) = count(schema, "maxProperties")
            && map.len() as u64 > max
        {
            errors.push(FieldError {
                field: path.to_owned(),
                reason: FieldErrorReason::FieldValueTooMany,
                message: format!("Too many: {}: must have at most {max} items", map.len()),
            });
        }
        if let Some(min) = count(schema, "minProperties")
            && (map.len() as u64) < min
        {
            invalid(
                errors,
                path,
                value,
                format!("{shown} in body should have at least {min} properties"),
            );
        }
        let props = properties(schema);
        let additional = additional_schema(schema);
        for (key, child) in map {
            if root && ROOT_META.contains(&key.as_str()) {
                continue;
            }
            let child_path = join(path, key);
            if let Some(prop) = props.and_then(|p| p.get(key)) {
                validate_at(prop, child, &child_path, false, errors);
            } else if let Some(additional) = additional {
                validate_at(additional, child, &child_path, false, errors);
            }
        }
    }
}

fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" => {
            s.parse::<jiff::Timestamp>().is_ok()
                && s.len() >= 20
                && s.as_bytes().get(10).is_some_and(|c| matches!(c, b'T' | b't' | b' '))
        }
        "date" => s.parse::<jiff::civil::Date>().is_ok() && s.len() == 10,
        "int32" | "int64" | "byte" | "password" | "" => true,
        _ => true,
    }
}

fn has_duplicates(items: &[Value]) -> bool {
    items.iter().enumerate().any(|(i, a)| items[..i].iter().any(|b| a == b))
}

/// `x-kubernetes-list-type: set|map` uniqueness, as `field.Duplicate`.
fn list_type_errors(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    let list_type = schema.get("x-kubernetes-list-type").and_then(Value::as_str);
    match list_type {
        Some("set") => {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    errors.push(FieldError {
                        field: index(path, i),
                        reason: FieldErrorReason::FieldValueDuplicate,
                        message: format!("Duplicate value: {}", bad_value(item)),
                    });
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let key_of = |item: &Value| {
                let mut m = Map::new();
                for k in &keys {
                    if let Some(v) = item.get(*k) {
                        m.insert((*k).to_owned(), v.clone());
                    }
                }
                Value::Object(m)
            };
            let item_keys: Vec<Value> = items.iter().map(key_of).collect();
            for (i, key) in item_keys.iter().enumerate() {
                if item_keys[..i].contains(key) {
                    errors.push(FieldError {
                        field: index(path, i),
                        reason: FieldErrorReason::FieldValueDuplicate,
                        message: format!("Duplicate value: {}", go_syntax(key)),
                    });
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- Status

/// The `422 Invalid` Status body for `errors` on `<kind>.<group> "<name>"`:
/// the message lists every error (in brackets when more than one, duplicates
/// dropped), and `details.causes` carries each as `{reason, message, field}`.
pub fn invalid_status(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> Value {
    let qualified = if group.is_empty() { kind.to_owned() } else { format!("{kind}.{group}") };
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        let line = e.to_string();
        if !seen.contains(&line) {
            seen.push(line);
        }
    }
    let aggregate = match seen.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    let causes: Vec<Value> = errors
        .iter()
        .map(|e| json!({"reason": e.reason.as_str(), "message": e.message, "field": e.field}))
        .collect();
    let mut details = Map::new();
    details.insert("name".into(), json!(name));
    if !group.is_empty() {
        details.insert("group".into(), json!(group));
    }
    details.insert("kind".into(), json!(kind));
    details.insert("causes".into(), Value::Array(causes));
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("{qualified} \"{name}\" is invalid: {aggregate}"),
        "reason": "Invalid",
        "details": Value::Object(details),
        "code": 422,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mimics the project's ServiceRefresh schema.
    fn crd_schema() -> Value {
        json!({
            "type": "object",
            "required": ["spec"],
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["selector"],
                    "properties": {
                        "selector": {
                            "type": "object",
                            "properties": {
                                "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                                "matchExpressions": {"type": "array", "items": {
                                    "type": "object",
                                    "required": ["key", "operator"],
                                    "properties": {
                                        "key": {"type": "string"},
                                        "operator": {"type": "string"},
                                        "values": {"type": "array", "items": {"type": "string"}}
                                    }
                                }}
                            }
                        },
                        "batchSize": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 100, "default": 10},
                        "batchTimeout": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$", "default": "10m"},
                        "failurePolicy": {"type": "string", "enum": ["Continue", "Abort"], "default": "Continue"},
                        "trigger": {"type": "string", "nullable": true},
                        "namePatterns": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                        "configMapTriggers": {"type": "array", "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "keys": {"type": "array", "items": {"type": "string"}, "default": []}
                            }
                        }}
                    }
                },
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {
                    "phase": {"type": "string"}
                }}
            }
        })
    }

    fn object(spec: Value) -> Value {
        json!({"apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
               "metadata": {"name": "x", "namespace": "arcgis"}, "spec": spec})
    }

    fn messages(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_fill_absent_fields_recursively() {
        let schema = crd_schema();
        let mut obj = object(json!({"selector": {}, "configMapTriggers": [{"name": "proxy"}]}));
        apply_defaults(&schema, &mut obj);
        assert_eq!(obj["spec"]["batchSize"], 10);
        assert_eq!(obj["spec"]["batchTimeout"], "10m");
        assert_eq!(obj["spec"]["failurePolicy"], "Continue");
        assert_eq!(obj["spec"]["configMapTriggers"][0]["keys"], json!([]));
        assert_eq!(obj["metadata"], json!({"name": "x", "namespace": "arcgis"}));
        assert!(validate(&schema, &obj).is_empty());
        // Defaults inside defaults.
        let nested = json!({"type": "object", "properties": {"a": {
            "type": "object", "default": {},
            "properties": {"b": {"type": "integer", "default": 3}}
        }}});
        let mut o = json!({});
        apply_defaults(&nested, &mut o);
        assert_eq!(o, json!({"a": {"b": 3}}));
    }

    #[test]
    fn non_nullable_nulls_are_dropped_then_defaulted() {
        let schema = crd_schema();
        let mut obj = object(json!({"selector": {}, "batchSize": null, "trigger": null}));
        apply_defaults(&schema, &mut obj);
        assert_eq!(obj["spec"]["batchSize"], 10);
        assert_eq!(obj["spec"]["trigger"], Value::Null);
        assert!(validate(&schema, &obj).is_empty());
    }

    #[test]
    fn prune_drops_unknown_fields_only() {
        let schema = crd_schema();
        let mut obj = object(json!({
            "selector": {"matchLabels": {"app": "x"}, "bogus": 1},
            "colour": "red",
            "configMapTriggers": [{"name": "a", "extra": true}]
        }));
        obj["status"] = json!({"phase": "Running", "anything": {"goes": 1}});
        obj["extraTop"] = json!(1);
        let pruned = prune(&schema, &mut obj);
        assert_eq!(
            pruned,
            vec![
                "extraTop",
                "spec.colour",
                "spec.configMapTriggers[0].extra",
                "spec.selector.bogus"
            ]
        );
        assert_eq!(obj["spec"]["selector"], json!({"matchLabels": {"app": "x"}}));
        assert_eq!(obj["status"]["anything"], json!({"goes": 1}));
        assert_eq!(obj["apiVersion"], "gisops.io/v1alpha1");
        assert_eq!(obj["metadata"]["name"], "x");
    }

    #[test]
    fn minimum_and_maximum() {
        let schema = crd_schema();
        let errs = validate(&schema, &object(json!({"selector": {}, "batchSize": 0})));
        assert_eq!(
            messages(&errs),
            vec![
                "spec.batchSize: Invalid value: 0: spec.batchSize in body should be greater than or equal to 1"
            ]
        );
        assert_eq!(errs[0].reason, FieldErrorReason::FieldValueInvalid);
        let errs = validate(&schema, &object(json!({"selector": {}, "batchSize": 101})));
        assert_eq!(
            errs[0].message,
            "Invalid value: 101: spec.batchSize in body should be less than or equal to 100"
        );
        let excl = json!({"type": "number", "minimum": 1.5, "exclusiveMinimum": true, "maximum": 3, "exclusiveMaximum": true});
        assert_eq!(
            validate(&excl, &json!(1.5))[0].message,
            "Invalid value: 1.5: <root> in body should be greater than 1.5"
        );
        assert_eq!(
            validate(&excl, &json!(3))[0].message,
            "Invalid value: 3: <root> in body should be less than 3"
        );
    }

    #[test]
    fn required_enum_type_and_pattern() {
        let schema = crd_schema();
        let errs = validate(&schema, &object(json!({"failurePolicy": "Foo"})));
        assert_eq!(
            messages(&errs),
            vec![
                "spec.selector: Required value",
                "spec.failurePolicy: Unsupported value: \"Foo\": supported values: \"Continue\", \"Abort\""
            ]
        );
        assert_eq!(errs[0].reason, FieldErrorReason::FieldValueRequired);
        assert_eq!(errs[1].reason, FieldErrorReason::FieldValueNotSupported);
        let errs = validate(&schema, &object(json!({"selector": {}, "batchSize": "ten"})));
        assert_eq!(
            messages(&errs),
            vec![
                "spec.batchSize: Invalid value: \"string\": spec.batchSize in body must be of type integer: \"string\""
            ]
        );
        assert_eq!(errs[0].reason, FieldErrorReason::FieldValueTypeInvalid);
        let errs = validate(&schema, &object(json!({"selector": {}, "batchTimeout": "10x"})));
        assert_eq!(
            messages(&errs),
            vec![
                "spec.batchTimeout: Invalid value: \"10x\": spec.batchTimeout in body should match '^([0-9]+(ms|s|m|h))+$'"
            ]
        );
        let errs = validate(&schema, &json!({"apiVersion": "v", "kind": "k", "metadata": {}}));
        assert_eq!(messages(&errs), vec!["spec: Required value"]);
    }

    #[test]
    fn integers_must_be_whole_and_null_needs_nullable() {
        let s = json!({"type": "integer"});
        assert!(validate(&s, &json!(3)).is_empty());
        assert!(validate(&s, &json!(3.0)).is_empty());
        assert_eq!(
            validate(&s, &json!(3.5))[0].message,
            "Invalid value: \"number\": <root> in body must be of type integer: \"number\""
        );
        let obj = json!({"type": "object", "properties": {"n": {"type": "integer"}, "m": {"type": "string", "nullable": true}}});
        let errs = validate(&obj, &json!({"n": null, "m": null}));
        assert_eq!(
            messages(&errs),
            vec!["n: Invalid value: \"null\": n in body must be of type integer: \"null\""]
        );
        let b = json!({"type": "boolean"});
        assert_eq!(
            validate(&b, &json!("true"))[0].message,
            "Invalid value: \"string\": <root> in body must be of type boolean: \"string\""
        );
    }

    #[test]
    fn string_lengths_and_format() {
        let s = json!({"type": "object", "properties": {
            "a": {"type": "string", "maxLength": 3, "minLength": 2},
            "t": {"type": "string", "format": "date-time"}
        }});
        let errs = validate(&s, &json!({"a": "abcd", "t": "2024-01-02T03:04:05Z"}));
        assert_eq!(messages(&errs), vec!["a: Too long: may not be more than 3 bytes"]);
        assert_eq!(errs[0].reason, FieldErrorReason::FieldValueTooLong);
        let errs = validate(&s, &json!({"a": "x", "t": "yesterday"}));
        assert_eq!(
            messages(&errs),
            vec![
                "a: Invalid value: \"x\": a in body should be at least 2 chars long",
                "t: Invalid value: \"yesterday\": t in body must be of type date-time: \"yesterday\""
            ]
        );
    }

    #[test]
    fn arrays_items_and_list_types() {
        let schema = crd_schema();
        let errs = validate(
            &schema,
            &object(
                json!({"selector": {"matchExpressions": [{"key": "a"}]}, "namePatterns": ["a", "b", "a"]}),
            ),
        );
        assert_eq!(
            messages(&errs),
            vec![
                "spec.selector.matchExpressions[0].operator: Required value",
                "spec.namePatterns[2]: Duplicate value: \"a\""
            ]
        );
        let s =
            json!({"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "integer"}});
        assert_eq!(
            messages(&validate(&s, &json!([]))),
            vec![": Invalid value: 0: <root> in body should have at least 1 items"]
        );
        let errs = validate(&s, &json!([1, "x", 3]));
        assert_eq!(
            messages(&errs),
            vec![
                "[1]: Invalid value: \"string\": [1] in body must be of type integer: \"string\"",
                ": Too many: 3: must have at most 2 items"
            ]
        );
        let m = json!({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                       "items": {"type": "object", "properties": {"name": {"type": "string"}}}});
        assert_eq!(
            messages(&validate(&m, &json!([{"name": "a"}, {"name": "a"}]))),
            vec!["[1]: Duplicate value: map[string]interface {}{\"name\":\"a\"}"]
        );
    }

    #[test]
    fn additional_properties_and_int_or_string() {
        let s = json!({"type": "object", "properties": {
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "surge": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}
        }});
        assert!(validate(&s, &json!({"labels": {"a": "b"}, "surge": 1})).is_empty());
        assert!(validate(&s, &json!({"surge": "25%"})).is_empty());
        let errs = validate(&s, &json!({"labels": {"a": 1}, "surge": true}));
        assert_eq!(
            messages(&errs),
            vec![
                "labels.a: Invalid value: \"integer\": labels.a in body must be of type string: \"integer\"",
                "surge: Invalid value: \"boolean\": surge in body must be of type integer,string: \"boolean\""
            ]
        );
    }

    /// The project's CRD, as `servicerefresh crd` generates it.
    fn project_schema() -> Value {
        let crd: Value =
            serde_json::from_str(include_str!("../tests/fixtures/servicerefresh-crd.json"))
                .unwrap();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    }

    #[test]
    fn project_crd_defaults_and_validation() {
        let schema = project_schema();
        let mut obj = object(json!({"selector": {"matchLabels": {"app": "map"}}}));
        assert!(prune(&schema, &mut obj).is_empty());
        apply_defaults(&schema, &mut obj);
        assert_eq!(obj["spec"]["batchSize"], 10);
        assert_eq!(obj["spec"]["batchTimeout"], "10m");
        assert_eq!(obj["spec"]["failurePolicy"], "Continue");
        assert_eq!(obj["spec"]["suspend"], false);
        assert_eq!(obj["spec"]["dryRun"], false);
        assert_eq!(obj.get("status"), None);
        assert!(validate(&schema, &obj).is_empty());

        let mut bad = object(json!({
            "batchSize": 0, "batchTimeout": "10x", "failurePolicy": "Foo",
            "configMapTriggers": [{"name": ""}], "colour": "red"
        }));
        assert_eq!(prune(&schema, &mut bad), vec!["spec.colour"]);
        apply_defaults(&schema, &mut bad);
        let errs = validate(&schema, &bad);
        assert_eq!(
            messages(&errs),
            vec![
                "spec.selector: Required value",
                "spec.batchSize: Invalid value: 0: spec.batchSize in body should be greater than or equal to 1",
                "spec.batchTimeout: Invalid value: \"10x\": spec.batchTimeout in body should match '^([0-9]+(ms|s|m|h))+$'",
                "spec.configMapTriggers[0].name: Invalid value: \"\": spec.configMapTriggers[0].name in body should be at least 1 chars long",
                "spec.failurePolicy: Unsupported value: \"Foo\": supported values: \"Continue\", \"Abort\"",
            ]
        );
        let errs = validate(&schema, &object(json!({"selector": {}, "batchSize": 101})));
        assert_eq!(
            messages(&errs),
            vec![
                "spec.batchSize: Invalid value: 101: spec.batchSize in body should be less than or equal to 100"
            ]
        );

        // Status written by the operator: defaults fill the totals.
        let mut with_status = object(json!({"selector": {}}));
        with_status["status"] = json!({"phase": "Running", "history": [{"id": "r1", "phase": "Succeeded", "reason": "Created", "totals": {}}]});
        apply_defaults(&schema, &mut with_status);
        assert_eq!(with_status["status"]["totals"]["services"], 0);
        assert_eq!(with_status["status"]["history"][0]["totals"]["failed"], 0);
        assert_eq!(with_status["status"]["triggers"], json!({}));
        assert!(validate(&schema, &with_status).is_empty());
        with_status["status"]["phase"] = json!("Exploded");
        assert_eq!(
            messages(&validate(&schema, &with_status)),
            vec![
                "status.phase: Unsupported value: \"Exploded\": supported values: \"Pending\", \"Running\", \"Succeeded\", \"Failed\", \"Suspended\""
            ]
        );
    }

    #[test]
    fn invalid_status_body() {
        let schema = crd_schema();
        let errs = validate(
            &schema,
            &object(json!({"selector": {}, "batchSize": 0, "failurePolicy": "Foo"})),
        );
        let status = invalid_status("ServiceRefresh", "gisops.io", "x", &errs);
        assert_eq!(
            status["message"],
            "ServiceRefresh.gisops.io \"x\" is invalid: [spec.batchSize: Invalid value: 0: spec.batchSize in body should be greater than or equal to 1, spec.failurePolicy: Unsupported value: \"Foo\": supported values: \"Continue\", \"Abort\"]"
        );
        assert_eq!(status["code"], 422);
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["details"]["group"], "gisops.io");
        assert_eq!(status["details"]["kind"], "ServiceRefresh");
        assert_eq!(status["details"]["name"], "x");
        assert_eq!(
            status["details"]["causes"][0],
            json!({"reason": "FieldValueInvalid", "field": "spec.batchSize",
                   "message": "Invalid value: 0: spec.batchSize in body should be greater than or equal to 1"})
        );
        let one = invalid_status("ServiceRefresh", "gisops.io", "x", &errs[..1]);
        assert_eq!(
            one["message"],
            "ServiceRefresh.gisops.io \"x\" is invalid: spec.batchSize: Invalid value: 0: spec.batchSize in body should be greater than or equal to 1"
        );
        let core = invalid_status("ConfigMap", "", "c", &errs[..1]);
        assert!(core["message"].as_str().unwrap().starts_with("ConfigMap \"c\" is invalid: "));
        assert_eq!(core["details"].get("group"), None);
    }
}
