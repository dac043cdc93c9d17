//! Values printed the way the Go API server prints them in field errors
//! (`%v`, `%q`, `%#v`), so that messages match the real server's.

use serde_json::Value;

/// The JSON type name the OpenAPI validator reports for a value.
pub fn type_name(value: &Value) -> &'static str {
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

/// Formats a number like Go's `%v` does for the common cases.
pub fn go_number(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e21 {
        format!("{number:.0}")
    } else {
        format!("{number}")
    }
}

/// Go's `%q` for a string (close enough: JSON escaping).
pub fn quote(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// Go's `%#v` of an unstructured value, roughly.
pub fn go_syntax(value: &Value) -> String {
    match value {
        Value::Null => "interface {}(nil)".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => quote(text),
        Value::Array(items) => format!(
            "[]interface {{}}{{{}}}",
            items.iter().map(go_syntax).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "map[string]interface {{}}{{{}}}",
            map.iter()
                .map(|(key, value)| format!("{}:{}", quote(key), go_syntax(value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The `BadValue` part of a field error body, as `field.Error.ErrorBody`.
pub fn bad_value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => match (number.as_i64(), number.as_u64(), number.as_f64()) {
            (Some(signed), _, _) => signed.to_string(),
            (_, Some(unsigned), _) => unsigned.to_string(),
            (_, _, Some(float)) => go_number(float),
            _ => number.to_string(),
        },
        Value::String(text) => quote(text),
        other => go_syntax(other),
    }
}
