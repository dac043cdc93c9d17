//! Typed decoding of built-in kinds: what the real server's JSON decoder
//! (Go's `encoding/json` in the case-sensitive `sigs.k8s.io/json` variant)
//! does to a request body as it fills the Go structs of the kind. A value of
//! the wrong type fails with Go's message (`json: cannot unmarshal string
//! into Go struct field DeploymentSpec.spec.replicas of type int32`: the
//! innermost struct, the path of JSON field names, the Go type), the custom
//! decoders of `Quantity`, `IntOrString`, `Time` and `[]byte` (base64) fail
//! with theirs, and fields the structs do not have are dropped and reported
//! (`spec.template.spec.containers[0].foo`) for `fieldValidation`.
//!
//! As in Go, the first type error is the one reported, and a `null` sets
//! nothing (the field is left out).

use base64::Engine;
use serde_json::{Map, Value};

use super::builtin::BuiltinSchemas;

/// What decoding found: the unknown fields dropped, in document order.
#[derive(Debug, Default)]
pub struct Decoded {
    pub unknown_fields: Vec<String>,
}

/// The first error of a decode.
#[derive(Debug, Clone)]
pub struct DecodeError {
    /// The Go decoder's message.
    pub message: String,
    /// Where (`spec.template.spec.containers[0].ports[0].containerPort`)
    /// and what, as server-side apply's typed conversion words it
    /// (`expected numeric (int or float), got string`); `None` for the
    /// custom decoders' errors, which apply does not make.
    pub typed: Option<(String, String)>,
}

/// Decodes `object` as the definition `root`: drops unknown fields (and
/// nulls) in place and returns their paths, or the decoder's first error.
pub fn decode(
    schemas: &BuiltinSchemas,
    root: &str,
    object: &mut Value,
) -> Result<Decoded, DecodeError> {
    let Some(definition) = schemas.definitions.get(root) else {
        return Ok(Decoded::default());
    };
    let mut state = State { schemas, error: None, unknown: Vec::new() };
    let context = Context { structure: String::new(), fields: Vec::new(), path: String::new() };
    state.definition(root, definition, object, &context);
    match state.error {
        Some(error) => Err(error),
        None => Ok(Decoded { unknown_fields: state.unknown }),
    }
}

/// Where the decoder is: the innermost struct, the JSON field names from
/// the root (Go's error context) and the path with indices (for unknown
/// fields).
#[derive(Clone)]
struct Context {
    structure: String,
    fields: Vec<String>,
    path: String,
}

impl Context {
    fn field(&self, structure: &str, key: &str) -> Context {
        let mut fields = self.fields.clone();
        fields.push(key.to_string());
        let path =
            if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) };
        Context { structure: structure.to_string(), fields, path }
    }

    fn index(&self, i: usize) -> Context {
        Context { path: format!("{}[{i}]", self.path), ..self.clone() }
    }
}

struct State<'a> {
    schemas: &'a BuiltinSchemas,
    error: Option<DecodeError>,
    unknown: Vec<String>,
}

/// How Go's decoder names a JSON value in a type error.
fn json_kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

/// `pkg.Name` of a definition (`io.k8s.api.apps.v1.DeploymentSpec` →
/// `v1.DeploymentSpec`).
fn go_struct_type(name: &str) -> String {
    let mut parts = name.rsplit('.');
    let type_name = parts.next().unwrap_or(name);
    match parts.next() {
        Some(package) => format!("{package}.{type_name}"),
        None => type_name.to_string(),
    }
}

/// The struct name of a definition (`DeploymentSpec`).
fn struct_name(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY_FORMAT_MSG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

impl State<'_> {
    fn fail(&mut self, message: String) {
        if self.error.is_none() {
            self.error = Some(DecodeError { message, typed: None });
        }
    }

    /// Go's `UnmarshalTypeError`, with the struct context when there is one.
    fn type_error(&mut self, value_kind: &str, go_type: &str, context: &Context) {
        let message = if context.fields.is_empty() {
            format!("json: cannot unmarshal {value_kind} into Go value of type {go_type}")
        } else {
            format!(
                "json: cannot unmarshal {value_kind} into Go struct field {}.{} of type {go_type}",
                context.structure,
                context.fields.join(".")
            )
        };
        if self.error.is_none() {
            let expected = match go_type {
                "string" | "[]uint8" => "string",
                "bool" => "boolean",
                t if t.starts_with("int") || t.starts_with("float") => "numeric (int or float)",
                t if t.starts_with("[]") => "list",
                _ => "map",
            };
            let got = match value_kind {
                "string" => "string",
                "bool" => "bool",
                "array" => "[]interface {}",
                "object" => "map[string]interface {}",
                number if number.contains('.') => "float64",
                _ => "int64",
            };
            let typed = (context.path.clone(), format!("expected {expected}, got {got}"));
            self.error = Some(DecodeError { message, typed: Some(typed) });
        }
    }

    /// The Go type a schema decodes into.
    fn go_type(&self, schema: &Value) -> String {
        if let Some((name, _)) = self.schemas.referenced(schema) {
            return match name {
                INT_OR_STRING => "intstr.IntOrString".into(),
                QUANTITY => "resource.Quantity".into(),
                _ => go_struct_type(name),
            };
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("integer") => match schema.get("format").and_then(Value::as_str) {
                Some("int32") => "int32".into(),
                Some("int64") => "int64".into(),
                _ => "int".into(),
            },
            Some("number") => "float64".into(),
            Some("boolean") => "bool".into(),
            Some("string") if schema.get("format").and_then(Value::as_str) == Some("byte") => {
                "[]uint8".into()
            }
            Some("string") => "string".into(),
            Some("array") => {
                format!(
                    "[]{}",
                    schema.get("items").map(|items| self.go_type(items)).unwrap_or_default()
                )
            }
            Some("object") => match schema.get("additionalProperties") {
                Some(additional) if additional.is_object() => {
                    format!("map[string]{}", self.go_type(additional))
                }
                _ => "map[string]interface {}".into(),
            },
            _ => "interface {}".into(),
        }
    }

    /// A value of a named definition.
    fn definition(&mut self, name: &str, definition: &Value, value: &mut Value, context: &Context) {
        if value.is_null() || BuiltinSchemas::is_free_form(name) {
            return;
        }
        match name {
            QUANTITY => return self.quantity(value),
            INT_OR_STRING => {
                if !value.is_string() {
                    self.integer(value, "int32", context);
                }
                return;
            }
            _ => {}
        }
        if definition.get("format").and_then(Value::as_str) == Some("date-time") {
            return self.time(value, context);
        }
        match definition.get("properties").and_then(Value::as_object) {
            Some(properties) => self.structure(name, properties, value, context),
            None => self.schema(definition, value, context),
        }
    }

    /// A struct: its known fields decoded, unknown ones dropped.
    fn structure(
        &mut self,
        name: &str,
        properties: &Map<String, Value>,
        value: &mut Value,
        context: &Context,
    ) {
        let Value::Object(fields) = value else {
            let kind = json_kind(value);
            self.type_error(&kind, &go_struct_type(name), context);
            return;
        };
        let keys: Vec<String> = fields.keys().cloned().collect();
        for key in keys {
            let child_context = context.field(struct_name(name), &key);
            match properties.get(&key) {
                Some(property) => {
                    let drop = match fields.get_mut(&key) {
                        Some(child) if child.is_null() => true,
                        Some(child) => {
                            self.schema(property, child, &child_context);
                            false
                        }
                        None => false,
                    };
                    if drop {
                        fields.remove(&key);
                    }
                }
                None => {
                    fields.remove(&key);
                    self.unknown.push(child_context.path);
                }
            }
        }
    }

    /// A value of an inline schema (or a reference).
    fn schema(&mut self, schema: &Value, value: &mut Value, context: &Context) {
        if value.is_null() {
            return;
        }
        if let Some((name, definition)) = self.schemas.referenced(schema) {
            return self.definition(name, definition, value, context);
        }
        let go_type = self.go_type(schema);
        match schema.get("type").and_then(Value::as_str) {
            Some("integer") => self.integer(value, &go_type, context),
            Some("number") if !value.is_number() => {
                self.type_error(&json_kind(value), &go_type, context);
            }
            Some("boolean") if !value.is_boolean() => {
                self.type_error(&json_kind(value), &go_type, context);
            }
            Some("string") => match value {
                Value::String(text) => {
                    if schema.get("format").and_then(Value::as_str) == Some("byte")
                        && let Err(offset) = go_base64(text)
                    {
                        self.fail(format!("illegal base64 data at input byte {offset}"));
                    } else if schema.get("format").and_then(Value::as_str) == Some("date-time") {
                        self.time(value, context);
                    }
                }
                other => {
                    let kind = json_kind(other);
                    self.type_error(&kind, &go_type, context);
                }
            },
            Some("array") => match value {
                Value::Array(items) => {
                    if let Some(item_schema) = schema.get("items") {
                        for (i, item) in items.iter_mut().enumerate() {
                            self.schema(item_schema, item, &context.index(i));
                        }
                    }
                }
                other => {
                    let kind = json_kind(other);
                    self.type_error(&kind, &go_type, context);
                }
            },
            Some("object") => {
                let additional = schema.get("additionalProperties").filter(|a| a.is_object());
                match (value, additional) {
                    (Value::Object(entries), Some(additional)) => {
                        for (key, entry) in entries.iter_mut() {
                            let entry_context = Context {
                                path: format!("{}.{key}", context.path),
                                ..context.clone()
                            };
                            self.schema(additional, entry, &entry_context);
                        }
                    }
                    (Value::Object(_), None) => {}
                    (other, _) => {
                        let kind = json_kind(other);
                        self.type_error(&kind, &go_type, context);
                    }
                }
            }
            _ => {}
        }
    }

    /// An integer of `go_type` (`int32`, `int64`): Go parses the literal,
    /// so `1.5` and out-of-range numbers fail as `number 1.5`.
    fn integer(&mut self, value: &Value, go_type: &str, context: &Context) {
        match value {
            Value::Number(number) => {
                let fits = match go_type {
                    "int32" => number.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                    _ => number.is_i64(),
                };
                if !fits {
                    self.type_error(&format!("number {number}"), go_type, context);
                }
            }
            other => {
                let kind = json_kind(other);
                self.type_error(&kind, go_type, context);
            }
        }
    }

    /// `resource.Quantity`'s own decoder: a string or number in its format.
    fn quantity(&mut self, value: &Value) {
        let text = match value {
            Value::String(text) => text.trim().to_string(),
            Value::Number(number) => number.to_string(),
            other => other.to_string(),
        };
        if let Err(message) = parse_quantity(&text) {
            self.fail(message.to_string());
        }
    }

    /// `metav1.Time`'s decoder: an RFC 3339 string.
    fn time(&mut self, value: &Value, context: &Context) {
        match value {
            Value::String(text) if text.is_empty() => {}
            Value::String(text) => {
                if text.parse::<jiff::Timestamp>().is_err() {
                    self.fail(format!(
                        "parsing time {text:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {text:?} as \"2006\""
                    ));
                }
            }
            other => {
                let kind = json_kind(other);
                self.type_error(&kind, "string", context);
            }
        }
    }
}

/// Checks a quantity as `resource.ParseQuantity` does; the error is its
/// message.
fn parse_quantity(text: &str) -> Result<(), &'static str> {
    static FORMAT: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let format = FORMAT
        .get_or_init(|| regex::Regex::new(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$").ok());
    let Some(captures) = format.as_ref().and_then(|format| format.captures(text)) else {
        return Err(QUANTITY_FORMAT_MSG);
    };
    let number = captures.get(1).map(|m| m.as_str()).unwrap_or("");
    let suffix = captures.get(2).map(|m| m.as_str()).unwrap_or("");
    if number.trim_start_matches(['+', '-']).parse::<f64>().is_err() {
        return Err(QUANTITY_FORMAT_MSG);
    }
    const SUFFIXES: [&str; 15] =
        ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P"];
    let exponent = suffix
        .strip_prefix(['e', 'E'])
        .is_some_and(|exponent| exponent.trim_start_matches(['+', '-']).parse::<u32>().is_ok());
    if SUFFIXES.contains(&suffix) || suffix == "E" || exponent {
        Ok(())
    } else {
        Err("unable to parse quantity's suffix")
    }
}

/// Decodes standard padded base64 as Go's `base64.StdEncoding` does (line
/// breaks ignored); the error is the offset Go reports.
fn go_base64(text: &str) -> Result<Vec<u8>, usize> {
    let cleaned: String = text.chars().filter(|ch| *ch != '\r' && *ch != '\n').collect();
    let config = base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true);
    let engine = base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    match engine.decode(cleaned.as_bytes()) {
        Ok(bytes) => Ok(bytes),
        Err(base64::DecodeError::InvalidByte(offset, _))
        | Err(base64::DecodeError::InvalidLastSymbol(offset, _)) => Err(offset),
        Err(_) => {
            // An incomplete final quantum: Go reports where it starts.
            let len = cleaned.len();
            if !len.is_multiple_of(4) {
                Err(len - len % 4)
            } else {
                Err(cleaned.find('=').unwrap_or(0))
            }
        }
    }
}
