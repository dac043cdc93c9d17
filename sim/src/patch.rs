//! Patch semantics: JSON merge patch (RFC 7386), JSON patch (RFC 6902),
//! strategic merge patch for the built-in types (patch merge keys,
//! `$patch`, `$retainKeys`, `$setElementOrder`, `$deleteFromPrimitiveList`),
//! and the list-type rules (atomic, map with keys, set) that strategic merge
//! and server-side apply share, from built-in knowledge or a CRD schema.
//! Apply patches are server-side apply, which lives with field ownership.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// How a list field merges.
#[derive(Debug, Clone, PartialEq)]
pub enum ListType {
    /// Replaced whole.
    Atomic,
    /// Elements identified by these keys.
    Map(Vec<String>),
    /// Set of scalars.
    Set,
}

/// Strategic-merge list rules of the built-in types, by field name (the
/// patch merge keys of their Go types).
pub fn builtin_smp_list(path: &[String]) -> ListType {
    let (parent, field) = last_two_fields(path);
    let key = |merge_key: &str| ListType::Map(vec![merge_key.to_string()]);
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => key("name"),
        "ports" if matches!(parent, "containers" | "initContainers" | "ephemeralContainers") => {
            key("containerPort")
        }
        "ports" => key("port"),
        "volumeMounts" => key("mountPath"),
        "volumeDevices" => key("devicePath"),
        "conditions" => key("type"),
        "ownerReferences" => key("uid"),
        "hostAliases" => key("ip"),
        "topologySpreadConstraints" => key("topologyKey"),
        "finalizers" => ListType::Set,
        _ => ListType::Atomic,
    }
}

/// Server-side-apply list rules of the built-in types (list-map keys).
pub fn builtin_ssa_list(path: &[String]) -> ListType {
    let (parent, field) = last_two_fields(path);
    match field {
        "ports" if matches!(parent, "containers" | "initContainers" | "ephemeralContainers") => {
            ListType::Map(vec!["containerPort".into(), "protocol".into()])
        }
        "ports" => ListType::Map(vec!["port".into(), "protocol".into()]),
        _ => builtin_smp_list(path),
    }
}

/// The parent field and the field a path ends at ("" where there is none).
fn last_two_fields(path: &[String]) -> (&str, &str) {
    match path {
        [.., parent, field] => (parent, field),
        [field] => ("", field),
        [] => ("", ""),
    }
}

/// List rule from a CRD `openAPIV3Schema` for a path of field names.
pub fn schema_list_type(schema: &Value, path: &[String]) -> ListType {
    let mut node = schema;
    for (depth, field) in path.iter().enumerate() {
        let property = node.get("properties").and_then(|properties| properties.get(field));
        node = match property {
            Some(property) => property,
            None => match node.get("additionalProperties") {
                Some(additional) if additional.is_object() => additional,
                _ => return ListType::Atomic,
            },
        };
        let is_last = depth + 1 == path.len();
        if !is_last && node.get("type").and_then(Value::as_str) == Some("array") {
            match node.get("items") {
                Some(items) => node = items,
                None => return ListType::Atomic,
            }
        }
    }
    list_type_of(node)
}

fn list_type_of(node: &Value) -> ListType {
    match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("map") => ListType::Map(
            node.get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|keys| keys.iter().filter_map(|key| key.as_str().map(String::from)).collect())
                .unwrap_or_default(),
        ),
        Some("set") => ListType::Set,
        _ => ListType::Atomic,
    }
}

/// The patch formats other than apply, by the content type that names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json` (built-in types only).
    StrategicMerge,
}

/// `base` patched with `patch` (strategic merge with the built-in types'
/// list rules).
pub fn patch_object(patch_type: PatchType, base: &Value, patch: &Value) -> Result<Value, ApiError> {
    match patch_type {
        PatchType::Json => {
            let mut patched = base.clone();
            json_patch(&mut patched, patch)?;
            Ok(patched)
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("merge patch is not a JSON object"));
            }
            let mut patched = base.clone();
            merge_patch(&mut patched, patch);
            Ok(patched)
        }
        PatchType::StrategicMerge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("strategic merge patch is not a JSON object"));
            }
            strategic_merge(base, patch, &builtin_smp_list)
        }
    }
}

/// RFC 7386 merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// RFC 6902 JSON patch, applied one operation at a time. Like the API
/// server's implementation, a `test` for `null` succeeds on a missing path
/// (kube-rs' finalizer helper relies on it).
fn json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let operations = patch.as_array().ok_or_else(|| {
        ApiError::bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    })?;
    for operation in operations {
        let is_null_test = operation.get("op").and_then(Value::as_str) == Some("test")
            && operation.get("value").is_some_and(Value::is_null);
        if is_null_test {
            let path = operation.get("path").and_then(Value::as_str).unwrap_or("");
            match target.pointer(path) {
                None | Some(Value::Null) => continue,
                Some(_) => {}
            }
        }
        let single: json_patch::Patch =
            serde_json::from_value(Value::Array(vec![operation.clone()])).map_err(|error| {
                ApiError::bad_request(format!("json: cannot unmarshal patch: {error}"))
            })?;
        json_patch::patch(target, &single).map_err(|error| ApiError {
            code: 422,
            reason: "Invalid",
            message: format!(
                "the server rejected our request due to an error in our request: {error}"
            ),
            details: None,
        })?;
    }
    Ok(())
}

/// Whether a list element has the same merge-key values as `probe`.
fn same_merge_key(element: &Value, keys: &[String], probe: &Value) -> bool {
    !keys.is_empty()
        && keys.iter().all(|key| {
            element.get(key).unwrap_or(&Value::Null) == probe.get(key).unwrap_or(&Value::Null)
        })
}

/// Strategic merge patch of `original` with `patch`, using `lists` for list
/// rules by field path.
fn strategic_merge(
    original: &Value,
    patch: &Value,
    lists: &dyn Fn(&[String]) -> ListType,
) -> Result<Value, ApiError> {
    let mut path = Vec::new();
    match merge_value(Some(original), patch, &mut path, lists)? {
        Some(merged) => Ok(merged),
        None => Ok(Value::Object(Map::new())),
    }
}

/// Strategic merge of one value; `None` when the patch deletes it.
fn merge_value(
    original: Option<&Value>,
    patch: &Value,
    path: &mut Vec<String>,
    lists: &dyn Fn(&[String]) -> ListType,
) -> Result<Option<Value>, ApiError> {
    let Value::Object(patch_fields) = patch else {
        return Ok(Some(patch.clone()));
    };
    match directive(patch) {
        Some("delete") => return Ok(None),
        Some("replace") => {
            let mut replacement = patch_fields.clone();
            replacement.remove("$patch");
            return Ok(Some(strip_directives(&Value::Object(replacement))));
        }
        Some("merge") | None => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!("Unknown patch type found: {other}")));
        }
    }
    let mut out = match original {
        Some(Value::Object(original_fields)) => original_fields.clone(),
        _ => Map::new(),
    };
    let mut retain_keys: Option<Vec<String>> = None;
    for (key, value) in patch_fields {
        if key == "$patch" || key.starts_with("$setElementOrder/") {
            continue;
        }
        if key == "$retainKeys" {
            retain_keys = value
                .as_array()
                .map(|keys| keys.iter().filter_map(|key| key.as_str().map(String::from)).collect());
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Some(deleted)) =
                (out.get_mut(field), value.as_array())
            {
                list.retain(|item| !deleted.contains(item));
            }
            continue;
        }
        if value.is_null() {
            out.remove(key);
            continue;
        }
        path.push(key.clone());
        let merged = match value {
            Value::Array(patch_items) => {
                let list_type = lists(path);
                Some(merge_list(out.get(key), patch_items, &list_type, path, lists)?)
            }
            _ => merge_value(out.get(key), value, path, lists)?,
        };
        path.pop();
        match merged {
            Some(merged) => {
                out.insert(key.clone(), merged);
            }
            None => {
                out.remove(key);
            }
        }
    }
    if let Some(keep) = retain_keys {
        out.retain(|key, _| keep.contains(key));
    }
    Ok(Some(Value::Object(out)))
}

/// Strategic merge of a list by its list type: atomic lists are replaced,
/// sets gain the new values, maps merge element by merge key.
fn merge_list(
    original: Option<&Value>,
    patch: &[Value],
    list_type: &ListType,
    path: &mut Vec<String>,
    lists: &dyn Fn(&[String]) -> ListType,
) -> Result<Value, ApiError> {
    let original_items: Vec<Value> = match original {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    match list_type {
        ListType::Atomic => Ok(Value::Array(patch.iter().map(strip_directives).collect())),
        ListType::Set => {
            let mut out = original_items;
            for item in patch {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Ok(Value::Array(out))
        }
        ListType::Map(keys) => {
            if patch.iter().any(|item| directive(item) == Some("replace")) {
                return Ok(Value::Array(
                    patch
                        .iter()
                        .filter(|item| item.get("$patch").is_none())
                        .map(strip_directives)
                        .collect(),
                ));
            }
            let mut out = original_items;
            for item in patch {
                let position = out.iter().position(|element| same_merge_key(element, keys, item));
                let delete = directive(item) == Some("delete");
                match (position, delete) {
                    (Some(index), true) => {
                        out.remove(index);
                    }
                    (None, true) => {}
                    (Some(index), false) => {
                        if let Some(merged) = merge_value(Some(&out[index]), item, path, lists)? {
                            out[index] = merged;
                        }
                    }
                    (None, false) => {
                        if let Some(merged) = merge_value(None, item, path, lists)? {
                            out.push(merged);
                        }
                    }
                }
            }
            Ok(Value::Array(out))
        }
    }
}

/// The `$patch` directive of a list element or object, if any.
fn directive(item: &Value) -> Option<&str> {
    item.get("$patch").and_then(Value::as_str)
}

/// A value without `$`-directives, at any depth.
fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(key, _)| !key.starts_with('$'))
                .map(|(key, value)| (key.clone(), strip_directives(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn smp_merges_containers_by_name() {
        let orig = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x:1", "env": [{"name": "E", "value": "1"}]},
            {"name": "b", "image": "y:1"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "b", "image": "y:2"},
            {"name": "a", "env": [{"name": "F", "value": "2"}]}
        ]}}}});
        let out = strategic_merge(&orig, &patch, &builtin_smp_list).expect("merges");
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs[0]["image"], "x:1");
        assert_eq!(cs[0]["env"].as_array().map(Vec::len), Some(2));
        assert_eq!(cs[1]["image"], "y:2");
    }

    #[test]
    fn json_patch_null_test_matches_a_missing_path() {
        let mut obj = json!({"metadata": {"name": "x"}});
        let p = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["f"]}
        ]);
        json_patch(&mut obj, &p).expect("applies");
        assert_eq!(obj["metadata"]["finalizers"], json!(["f"]));
        assert!(json_patch(&mut obj, &p).is_err(), "test fails once set");
    }

    #[test]
    fn smp_delete_directive() {
        let orig = json!({"c": [{"name": "a"}, {"name": "b"}], "m": {"x": 1}});
        let patch =
            json!({"containers": [{"name": "a", "$patch": "delete"}], "m": {"$patch": "delete"}});
        let orig2 = json!({"containers": orig["c"].clone(), "m": orig["m"].clone()});
        let out = strategic_merge(&orig2, &patch, &builtin_smp_list).expect("merges");
        assert_eq!(out, json!({"containers": [{"name": "b"}]}));
    }
}
