//! `metadata.managedFields` entries: who owns which fields, through which
//! operation, apiVersion and subresource.

use serde_json::{Value, json};

use super::field_set::{FieldPath, FieldSet, fields_v1_contains, from_fields_v1, to_fields_v1};

/// One `managedFields` entry.
#[derive(Debug, Clone)]
pub struct ManagedFieldsEntry {
    /// Field manager.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// apiVersion the fields were set with.
    pub api_version: String,
    /// Last change time.
    pub time: String,
    /// Subresource (`status`) or none.
    pub subresource: Option<String>,
    /// Owned fields.
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    /// Whether this is the entry of `manager`'s `operation` on `subresource`.
    pub fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }
}

/// Reads `metadata.managedFields`.
pub fn read_entries(object: &Value) -> Vec<ManagedFieldsEntry> {
    raw_entries(object).iter().map(parse_entry).collect()
}

/// `metadata.managedFields` as stored.
pub fn raw_entries(object: &Value) -> Vec<Value> {
    object.pointer("/metadata/managedFields").and_then(Value::as_array).cloned().unwrap_or_default()
}

/// Parses one entry.
pub fn parse_entry(entry: &Value) -> ManagedFieldsEntry {
    let text = |key: &str| entry.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    ManagedFieldsEntry {
        manager: text("manager"),
        operation: text("operation"),
        api_version: text("apiVersion"),
        time: text("time"),
        subresource: subresource_of(entry).map(String::from),
        fields: entry.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
    }
}

fn subresource_of(entry: &Value) -> Option<&str> {
    entry.get("subresource").and_then(Value::as_str).filter(|subresource| !subresource.is_empty())
}

/// Whether a stored entry is `manager`'s `operation` on `subresource`
/// (without parsing its fields).
pub fn raw_entry_is(
    entry: &Value,
    manager: &str,
    operation: &str,
    subresource: Option<&str>,
) -> bool {
    entry.get("manager").and_then(Value::as_str).unwrap_or("") == manager
        && entry.get("operation").and_then(Value::as_str).unwrap_or("") == operation
        && subresource_of(entry) == subresource
}

/// Whether a stored entry owns any of these paths (without parsing it).
pub fn raw_entry_owns_any<'a>(
    entry: &Value,
    paths: impl IntoIterator<Item = &'a FieldPath>,
) -> bool {
    let Some(fields_v1) = entry.get("fieldsV1") else {
        return false;
    };
    paths.into_iter().any(|path| fields_v1_contains(fields_v1, path))
}

/// One entry as stored.
pub fn render_entry(entry: &ManagedFieldsEntry) -> Value {
    let mut rendered = json!({
        "manager": entry.manager,
        "operation": entry.operation,
        "apiVersion": entry.api_version,
        "time": entry.time,
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(&entry.fields),
    });
    if let (Some(subresource), Some(fields)) = (&entry.subresource, rendered.as_object_mut()) {
        fields.insert("subresource".into(), json!(subresource));
    }
    rendered
}

/// Writes `metadata.managedFields` (entries that own nothing dropped, as
/// the real server drops them).
pub fn write_entries(object: &mut Value, entries: &[ManagedFieldsEntry]) {
    let list: Vec<Value> =
        entries.iter().filter(|entry| !entry.fields.is_empty()).map(render_entry).collect();
    write_raw_entries(object, list);
}

/// Writes already rendered entries.
pub fn write_raw_entries(object: &mut Value, list: Vec<Value>) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            metadata.remove("managedFields");
        } else {
            metadata.insert("managedFields".into(), Value::Array(list));
        }
    }
}
