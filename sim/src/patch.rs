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

/// Strategic-merge list rules of the built-in types, by field name.
pub fn builtin_smp_list(path: &[String]) -> ListType {
    let field = path.last().map(String::as_str).unwrap_or("");
    let parent = if path.len() >= 2 { path[path.len() - 2].as_str() } else { "" };
    let key = |k: &str| ListType::Map(vec![k.to_string()]);
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
    let field = path.last().map(String::as_str).unwrap_or("");
    let parent = if path.len() >= 2 { path[path.len() - 2].as_str() } else { "" };
    match field {
        "ports" if matches!(parent, "containers" | "initContainers" | "ephemeralContainers") => {
            ListType::Map(vec!["containerPort".into(), "protocol".into()])
        }
        "ports" => ListType::Map(vec!["port".into(), "protocol".into()]),
        _ => builtin_smp_list(path),
    }
}

/// List rule from a CRD `openAPIV3Schema` for a path of field names.
pub fn schema_list_type(schema: &Value, path: &[String]) -> ListType {
    let mut node = schema;
    for (i, field) in path.iter().enumerate() {
        let props = node.get("properties").and_then(|p| p.get(field));
        let next = match props {
            Some(p) => p,
            None => match node.get("additionalProperties") {
                Some(ap) if ap.is_object() => ap,
                _ => return ListType::Atomic,
            },
        };
        node = next;
        if i + 1 < path.len() && node.get("type").and_then(Value::as_str) == Some("array") {
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
                .map(|a| a.iter().filter_map(|k| k.as_str().map(String::from)).collect())
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
    let ops = patch.as_array().ok_or_else(|| {
        ApiError::bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    })?;
    for op in ops {
        let is_null_test = op.get("op").and_then(Value::as_str) == Some("test")
            && op.get("value").is_some_and(Value::is_null);
        if is_null_test {
            let path = op.get("path").and_then(Value::as_str).unwrap_or("");
            match target.pointer(path) {
                None | Some(Value::Null) => continue,
                Some(_) => {}
            }
        }
        let p: json_patch::Patch = serde_json::from_value(Value::Array(vec![op.clone()]))
            .map_err(|e| ApiError::bad_request(format!("json: cannot unmarshal patch: {e}")))?;
        json_patch::patch(target, &p).map_err(|e| ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("the server rejected our request due to an error in our request: {e}"),
            details: None,
        })?;
    }
    Ok(())
}

/// Whether a list element matches a key set.
fn element_matches(elem: &Value, keys: &[String], probe: &Value) -> bool {
    !keys.is_empty()
        && keys
            .iter()
            .all(|k| elem.get(k).unwrap_or(&Value::Null) == probe.get(k).unwrap_or(&Value::Null))
}

/// Strategic merge patch of `original` with `patch`, using `lists` for list
/// rules by field path.
pub fn strategic_merge(
    original: &Value,
    patch: &Value,
    lists: &dyn Fn(&[String]) -> ListType,
) -> Result<Value, ApiError> {
    let mut path = Vec::new();
    match smp_value(Some(original), patch, &mut path, lists)? {
        Some(v) => Ok(v),
        None => Ok(Value::Object(Map::new())),
    }
}

fn smp_value(
    original: Option<&Value>,
    patch: &Value,
    path: &mut Vec<String>,
    lists: &dyn Fn(&[String]) -> ListType,
) -> Result<Option<Value>, ApiError> {
    match patch {
        Value::Object(pm) => {
            let directive = pm.get("$patch").and_then(Value::as_str);
            match directive {
                Some("delete") => return Ok(None),
                Some("replace") => {
                    let mut clean = pm.clone();
                    clean.remove("$patch");
                    return Ok(Some(strip_directives(&Value::Object(clean))));
                }
                Some("merge") | None => {}
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "Unknown patch type found: {other}"
                    )));
                }
            }
            let mut out = match original {
                Some(Value::Object(o)) => o.clone(),
                _ => Map::new(),
            };
            let mut retain: Option<Vec<String>> = None;
            for (k, v) in pm {
                if k == "$patch" || k.starts_with("$setElementOrder/") {
                    continue;
                }
                if k == "$retainKeys" {
                    retain = v
                        .as_array()
                        .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect());
                    continue;
                }
                if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(list)), Some(del)) =
                        (out.get_mut(field), v.as_array())
                    {
                        list.retain(|x| !del.contains(x));
                    }
                    continue;
                }
                if v.is_null() {
                    out.remove(k);
                    continue;
                }
                path.push(k.clone());
                let merged = match v {
                    Value::Array(pl) => {
                        let lt = lists(path);
                        Some(smp_list(out.get(k), pl, &lt, path, lists)?)
                    }
                    _ => smp_value(out.get(k), v, path, lists)?,
                };
                path.pop();
                match merged {
                    Some(m) => {
                        out.insert(k.clone(), m);
                    }
                    None => {
                        out.remove(k);
                    }
                }
            }
            if let Some(keep) = retain {
                out.retain(|k, _| keep.contains(k));
            }
            Ok(Some(Value::Object(out)))
        }
        other => Ok(Some(other.clone())),
    }
}

fn smp_list(
    original: Option<&Value>,
    patch: &[Value],
    lt: &ListType,
    path: &mut Vec<String>,
    lists: &dyn Fn(&[String]) -> ListType,
) -> Result<Value, ApiError> {
    let orig: Vec<Value> = match original {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    match lt {
        ListType::Atomic => Ok(Value::Array(patch.iter().map(strip_directives).collect())),
        ListType::Set => {
            let mut out = orig;
            for p in patch {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
            Ok(Value::Array(out))
        }
        ListType::Map(keys) => {
            if patch.iter().any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace")) {
                return Ok(Value::Array(
                    patch
                        .iter()
                        .filter(|p| p.get("$patch").is_none())
                        .map(strip_directives)
                        .collect(),
                ));
            }
            let mut out = orig;
            for p in patch {
                let pos = out.iter().position(|e| element_matches(e, keys, p));
                let delete = p.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(i), true) => {
                        out.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => {
                        if let Some(m) = smp_value(Some(&out[i]), p, path, lists)? {
                            out[i] = m;
                        }
                    }
                    (None, false) => {
                        if let Some(m) = smp_value(None, p, path, lists)? {
                            out.push(m);
                        }
                    }
                }
            }
            Ok(Value::Array(out))
        }
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
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
