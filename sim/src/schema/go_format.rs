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
pub fn go_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e21 { format!("{n:.0}") } else { format!("{n}") }
}

/// Go's `%q` for a string (close enough: JSON escaping).
pub fn quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// Go's `%#v` of an unstructured value, roughly.
pub fn go_syntax(value: &Value) -> String {
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
pub fn bad_value(value: &Value) -> String {
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
