//! The OpenAPI v2 (Swagger 2.0) document at `/openapi/v2`, built from the
//! same definitions as the v3 documents: the built-in kinds' compiled-in
//! schemas and the CRDs' `openAPIV3Schema`s. kubectl and Helm (client-go's
//! `OpenAPISchema`) ask for it only as protobuf
//! (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) and parse
//! it with gnostic's `openapi_v2.Document` for client-side validation, so
//! [`encode_protobuf`] writes that message (the fields the validation
//! reads: types, formats, descriptions, properties, items, additional
//! properties, required, enums, references and vendor extensions); other
//! clients get JSON.

use serde_json::{Map, Value, json};

use super::schemas::{kind_schema, list_meta, object_meta};
use super::{LIST_META, OBJECT_META, compiled_definitions, definition_name};
use crate::registry::Registry;

const DEFINITIONS_PREFIX: &str = "#/definitions/";

/// The Swagger 2.0 document of what `registry` serves.
pub fn swagger_document(registry: &Registry) -> Value {
    let mut definitions = Map::new();
    for def in registry.all() {
        let name = definition_name(&def.group, &def.version, &def.kind);
        match &def.schema {
            Some(schema) => {
                let mut published = kind_schema(&def.group, &def.version, &def.kind, schema);
                redirect_components(&mut published);
                definitions.insert(name, published);
            }
            None => {
                let compiled =
                    compiled_definitions(&def.group, &def.version, &def.kind, DEFINITIONS_PREFIX);
                for (name, schema) in compiled.into_iter().flatten() {
                    definitions.entry(name).or_insert(schema);
                }
            }
        }
    }
    let mut meta = object_meta();
    redirect_components(&mut meta);
    definitions.entry(OBJECT_META).or_insert(meta);
    let mut meta = list_meta();
    redirect_components(&mut meta);
    definitions.entry(LIST_META).or_insert(meta);
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": {},
        "definitions": Value::Object(definitions),
    })
}

/// v3-style references (`#/components/schemas/X`, `allOf: [{$ref}]`) as
/// v2 writes them.
fn redirect_components(schema: &mut Value) {
    match schema {
        Value::Object(fields) => {
            let single_ref = fields
                .get("allOf")
                .and_then(Value::as_array)
                .filter(|all_of| all_of.len() == 1)
                .and_then(|all_of| all_of[0].get("$ref"))
                .cloned();
            if let Some(reference) = single_ref {
                fields.remove("allOf");
                fields.insert("$ref".into(), reference);
            }
            if let Some(Value::String(reference)) = fields.get_mut("$ref")
                && let Some(name) = reference.strip_prefix("#/components/schemas/")
            {
                *reference = format!("{DEFINITIONS_PREFIX}{name}");
            }
            for value in fields.values_mut() {
                redirect_components(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redirect_components),
        _ => {}
    }
}

/// Protobuf wire format, enough for gnostic's messages.
#[derive(Default)]
struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    fn key(&mut self, field: u64, wire_type: u64) {
        self.varint((field << 3) | wire_type);
    }

    fn bytes_field(&mut self, field: u64, bytes: &[u8]) {
        self.key(field, 2);
        self.varint(bytes.len() as u64);
        self.bytes.extend_from_slice(bytes);
    }

    fn string(&mut self, field: u64, text: &str) {
        if !text.is_empty() {
            self.bytes_field(field, text.as_bytes());
        }
    }

    fn message(&mut self, field: u64, message: Writer) {
        self.bytes_field(field, &message.bytes);
    }

    fn boolean(&mut self, field: u64, value: bool) {
        if value {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int(&mut self, field: u64, value: u64) {
        self.key(field, 0);
        self.varint(value);
    }

    fn double(&mut self, field: u64, value: f64) {
        self.key(field, 1);
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
}

/// `openapi.v2.Any` holding a value as YAML (JSON is YAML).
fn any(value: &Value) -> Writer {
    let mut any = Writer::default();
    any.string(2, &format!("{value}\n"));
    any
}

/// `openapi.v2.NamedAny`.
fn named_any(name: &str, value: &Value) -> Writer {
    let mut named = Writer::default();
    named.string(1, name);
    named.message(2, any(value));
    named
}

/// `openapi.v2.NamedSchema`.
fn named_schema(name: &str, schema: &Value) -> Writer {
    let mut named = Writer::default();
    named.string(1, name);
    named.message(2, encode_schema(schema));
    named
}

/// `openapi.v2.Schema`.
fn encode_schema(schema: &Value) -> Writer {
    let mut out = Writer::default();
    let text = |key: &str| schema.get(key).and_then(Value::as_str).unwrap_or("");
    out.string(1, text("$ref"));
    out.string(2, text("format"));
    out.string(3, text("title"));
    out.string(4, text("description"));
    if let Some(default) = schema.get("default") {
        out.message(5, any(default));
    }
    for (field, key) in [(6, "multipleOf"), (7, "maximum"), (9, "minimum")] {
        if let Some(number) = schema.get(key).and_then(Value::as_f64) {
            out.double(field, number);
        }
    }
    out.boolean(8, schema.get("exclusiveMaximum").and_then(Value::as_bool).unwrap_or(false));
    out.boolean(10, schema.get("exclusiveMinimum").and_then(Value::as_bool).unwrap_or(false));
    for (field, key) in [
        (11, "maxLength"),
        (12, "minLength"),
        (14, "maxItems"),
        (15, "minItems"),
        (17, "maxProperties"),
        (18, "minProperties"),
    ] {
        if let Some(number) = schema.get(key).and_then(Value::as_u64) {
            out.int(field, number);
        }
    }
    out.string(13, text("pattern"));
    out.boolean(16, schema.get("uniqueItems").and_then(Value::as_bool).unwrap_or(false));
    for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
        if let Some(required) = required.as_str() {
            out.bytes_field(19, required.as_bytes());
        }
    }
    for value in schema.get("enum").and_then(Value::as_array).into_iter().flatten() {
        out.message(20, any(value));
    }
    match schema.get("additionalProperties") {
        Some(Value::Object(_)) => {
            let mut item = Writer::default();
            item.message(1, encode_schema(&schema["additionalProperties"]));
            out.message(21, item);
        }
        Some(Value::Bool(allowed)) => {
            let mut item = Writer::default();
            item.key(2, 0);
            item.varint(u64::from(*allowed));
            out.message(21, item);
        }
        _ => {}
    }
    if let Some(schema_type) = schema.get("type").and_then(Value::as_str) {
        let mut types = Writer::default();
        types.bytes_field(1, schema_type.as_bytes());
        out.message(22, types);
    }
    if let Some(items) = schema.get("items").filter(|items| items.is_object()) {
        let mut item = Writer::default();
        item.message(1, encode_schema(items));
        out.message(23, item);
    }
    for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        out.message(24, encode_schema(part));
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        let mut encoded = Writer::default();
        for (name, property) in properties {
            encoded.message(1, named_schema(name, property));
        }
        out.message(25, encoded);
    }
    if let Some(fields) = schema.as_object() {
        for (key, value) in fields.iter().filter(|(key, _)| key.starts_with("x-")) {
            out.message(31, named_any(key, value));
        }
    }
    out
}

/// The document as an `openapi.v2.Document` protobuf message.
pub fn encode_protobuf(document: &Value) -> Vec<u8> {
    let mut out = Writer::default();
    out.string(1, document.get("swagger").and_then(Value::as_str).unwrap_or("2.0"));
    let mut info = Writer::default();
    info.string(1, document.pointer("/info/title").and_then(Value::as_str).unwrap_or(""));
    info.string(2, document.pointer("/info/version").and_then(Value::as_str).unwrap_or(""));
    out.message(2, info);
    out.message(8, Writer::default());
    let mut definitions = Writer::default();
    for (name, schema) in
        document.get("definitions").and_then(Value::as_object).into_iter().flatten()
    {
        definitions.message(1, named_schema(name, schema));
    }
    out.message(9, definitions);
    out.bytes
}
