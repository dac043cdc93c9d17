//! OpenAPI v3 validation of an object against a structural schema, with the
//! real server's field paths, error order and messages.

use serde_json::{Map, Value, json};

use super::go_format::{bad_value, go_number, go_syntax, quote, type_name};
use super::walk::Node;
use super::{FieldError, FieldErrorReason, flag, index, join};

/// Validates `object` against `schema` and returns every field error, in the
/// order the API server lists them (per node: type, string, format, number,
/// array, enum, then object: required before properties, properties in key
/// order where the server's order is random), then the list-type
/// (`set`/`map`) duplicates. `anyOf`/`allOf`/`oneOf`/`not` are not checked
/// (beyond `x-kubernetes-int-or-string`), nor `x-kubernetes-validations`.
pub fn validate(schema: &Value, object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let root = Node::root(schema, object);
    validate_at(&root, &mut errors);
    // The server checks list types (set/map uniqueness) after the schema.
    list_types_at(&root, &mut errors);
    errors
}

fn list_types_at(node: &Node<'_>, errors: &mut Vec<FieldError>) {
    if let Value::Array(items) = node.value {
        list_type_errors(node.schema, items, &node.path, errors);
    }
    for (_, child) in node.children() {
        list_types_at(&child, errors);
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "integer" => match value {
            Value::Number(number) => {
                number.is_i64()
                    || number.is_u64()
                    || number.as_f64().is_some_and(|float| float.fract() == 0.0)
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

fn invalid(errors: &mut Vec<FieldError>, path: &str, value: &Value, detail: String) {
    errors.push(FieldError {
        field: path.to_owned(),
        reason: FieldErrorReason::Invalid,
        message: format!("Invalid value: {}: {detail}", bad_value(value)),
    });
}

fn num(schema: &Value, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

fn count(schema: &Value, key: &str) -> Option<u64> {
    schema.get(key).and_then(Value::as_u64)
}

fn validate_at(node: &Node<'_>, errors: &mut Vec<FieldError>) {
    let (schema, value, path) = (node.schema, node.value, node.path.as_str());
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
                reason: FieldErrorReason::TypeInvalid,
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
        schema
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(|expected| type_matches(expected, value))
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
            reason: FieldErrorReason::TypeInvalid,
            message: format!(
                "Invalid value: \"{actual}\": {shown} in body must be of type {expected}: \"{actual}\""
            ),
        });
        return;
    }

    // strings
    if let Value::String(text) = value {
        let len = text.chars().count() as u64;
        if let Some(max) = count(schema, "maxLength")
            && len > max
        {
            let unit = if max == 1 { "byte" } else { "bytes" };
            errors.push(FieldError {
                field: path.to_owned(),
                reason: FieldErrorReason::TooLong,
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
            if let Ok(compiled) = regex::Regex::new(pattern)
                && !compiled.is_match(text)
            {
                invalid(errors, path, value, format!("{shown} in body should match '{pattern}'"));
            }
        }
        // format
        if let Some(format) = schema.get("format").and_then(Value::as_str)
            && !format_ok(format, text)
        {
            errors.push(FieldError {
                field: path.to_owned(),
                reason: FieldErrorReason::TypeInvalid,
                message: format!(
                    "Invalid value: {}: {shown} in body must be of type {format}: {}",
                    quote(text),
                    quote(text)
                ),
            });
        }
    }

    // numbers
    if let Some(number) = value.as_f64() {
        if let Some(multiple) = num(schema, "multipleOf")
            && multiple > 0.0
            && (number / multiple).fract() != 0.0
        {
            let detail = format!("{shown} in body should be a multiple of {}", go_number(multiple));
            invalid(errors, path, value, detail);
        }
        if let Some(max) = num(schema, "maximum") {
            if flag(schema, "exclusiveMaximum") {
                if number >= max {
                    let detail = format!("{shown} in body should be less than {}", go_number(max));
                    invalid(errors, path, value, detail);
                }
            } else if number > max {
                let detail =
                    format!("{shown} in body should be less than or equal to {}", go_number(max));
                invalid(errors, path, value, detail);
            }
        }
        if let Some(min) = num(schema, "minimum") {
            if flag(schema, "exclusiveMinimum") {
                if number <= min {
                    let detail =
                        format!("{shown} in body should be greater than {}", go_number(min));
                    invalid(errors, path, value, detail);
                }
            } else if number < min {
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
        for (_, item) in node.children() {
            validate_at(&item, errors);
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
                reason: FieldErrorReason::TooMany,
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
            .map(|allowed| match allowed {
                Value::String(text) => quote(text),
                other => quote(&other.to_string()),
            })
            .collect();
        errors.push(FieldError {
            field: path.to_owned(),
            reason: FieldErrorReason::NotSupported,
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
                        reason: FieldErrorReason::Required,
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
                reason: FieldErrorReason::TooMany,
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
        for (_, child) in node.children() {
            validate_at(&child, errors);
        }
    }
}

/// Whether a string has the OpenAPI `format` (only the date formats are
/// checked, as the server's formats that matter here).
fn format_ok(format: &str, text: &str) -> bool {
    match format {
        "date-time" => {
            text.parse::<jiff::Timestamp>().is_ok()
                && text.len() >= 20
                && text
                    .as_bytes()
                    .get(10)
                    .is_some_and(|separator| matches!(separator, b'T' | b't' | b' '))
        }
        "date" => text.parse::<jiff::civil::Date>().is_ok() && text.len() == 10,
        "int32" | "int64" | "byte" | "password" | "" => true,
        _ => true,
    }
}

fn has_duplicates(items: &[Value]) -> bool {
    items.iter().enumerate().any(|(i, item)| items[..i].contains(item))
}

/// `x-kubernetes-list-type: set|map` uniqueness, as `field.Duplicate`.
fn list_type_errors(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<FieldError>) {
    let map_keys: Vec<&str> = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let key_fields = |item: &Value| {
        let mut fields = Map::new();
        for key in &map_keys {
            if let Some(value) = item.get(*key) {
                fields.insert((*key).to_owned(), value.clone());
            }
        }
        Value::Object(fields)
    };
    // What identifies an item, and how the error shows it.
    let (identities, shown): (Vec<Value>, fn(&Value) -> String) =
        match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => (items.to_vec(), bad_value),
            Some("map") => (items.iter().map(key_fields).collect(), go_syntax),
            _ => return,
        };
    for (i, identity) in identities.iter().enumerate() {
        if identities[..i].contains(identity) {
            errors.push(FieldError {
                field: index(path, i),
                reason: FieldErrorReason::Duplicate,
                message: format!("Duplicate value: {}", shown(identity)),
            });
        }
    }
}
