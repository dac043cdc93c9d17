//! CustomResourceDefinitions as objects: structural checks of a CRD, its
//! defaults, and the status the apiextensions controller would set
//! (NamesAccepted, Established, acceptedNames, storedVersions). What a CRD
//! serves is the registry's business.

use serde_json::{Value, json};

use crate::error::Cause;

/// Validates a CRD; returns the causes of a 422.
pub fn validate(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = obj.get("spec");
    let s = |p: &str| spec.and_then(|s| s.pointer(p)).and_then(Value::as_str).unwrap_or("");
    let group = s("/group");
    let plural = s("/names/plural");
    let kind = s("/names/kind");
    if group.is_empty() {
        causes.push(Cause::required("spec.group", ""));
    } else if !group.contains('.') {
        causes.push(Cause::invalid(
            "spec.group",
            &json!(group),
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        causes.push(Cause::required("spec.names.plural", ""));
    }
    if kind.is_empty() {
        causes.push(Cause::required("spec.names.kind", ""));
    }
    let scope = s("/scope");
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(Cause::new(
            "FieldValueNotSupported",
            format!("Unsupported value: {scope:?}: supported values: \"Cluster\", \"Namespaced\""),
            "spec.scope",
        ));
    }
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let versions =
        spec.and_then(|s| s.get("versions")).and_then(Value::as_array).cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::invalid(
            "spec.versions",
            &json!([]),
            "must have exactly one version marked as storage version",
        ));
    } else {
        let storage = versions
            .iter()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .count();
        if storage != 1 {
            causes.push(Cause::invalid(
                "spec.versions",
                &Value::Array(versions.clone()),
                "must have exactly one version marked as storage version",
            ));
        }
        for (i, v) in versions.iter().enumerate() {
            if v.get("schema").and_then(|s| s.get("openAPIV3Schema")).is_none() {
                causes.push(Cause::required(
                    &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    "schemas are required",
                ));
            }
        }
    }
    causes
}

/// Fills the CRD defaults and the status its controllers would set.
pub fn prepare(obj: &mut Value, now: &str) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
        let kind = names.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
        if !names.contains_key("singular") {
            names.insert("singular".into(), json!(kind.to_lowercase()));
        }
        if !names.contains_key("listKind") {
            names.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    if !spec.contains_key("conversion") {
        spec.insert("conversion".into(), json!({"strategy": "None"}));
    }
    let names = spec.get("names").cloned().unwrap_or(json!({}));
    let storage = spec
        .get("versions")
        .and_then(Value::as_array)
        .and_then(|vs| vs.iter().find(|v| v.get("storage").and_then(Value::as_bool) == Some(true)))
        .and_then(|v| v.get("name"))
        .cloned()
        .unwrap_or(Value::Null);
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    let mut stored: Vec<Value> = m
        .get("status")
        .and_then(|s| s.get("storedVersions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !storage.is_null() && !stored.contains(&storage) {
        stored.push(storage);
    }
    let keep_time = |t: &str, m: &serde_json::Map<String, Value>| -> String {
        m.get("status")
            .and_then(|s| s.get("conditions"))
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(t)))
            .and_then(|c| c.get("lastTransitionTime"))
            .and_then(Value::as_str)
            .unwrap_or(now)
            .to_string()
    };
    let names_time = keep_time("NamesAccepted", m);
    let est_time = keep_time("Established", m);
    m.insert(
        "status".into(),
        json!({
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": names_time, "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": est_time, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
            ],
            "acceptedNames": names,
            "storedVersions": stored,
        }),
    );
}
