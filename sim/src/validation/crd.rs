//! CustomResourceDefinitions as objects: structural checks of a CRD (its
//! CEL rules must compile), its defaults, and the status the apiextensions controller would set
//! (NamesAccepted, Established, acceptedNames, storedVersions). What a CRD
//! serves is the registry's business.

use serde_json::{Value, json};

use crate::error::Cause;
use crate::schema;

/// Validates a CRD; returns the causes of a 422.
pub fn validate(crd: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = crd.get("spec");
    let text = |pointer: &str| {
        spec.and_then(|spec| spec.pointer(pointer)).and_then(Value::as_str).unwrap_or("")
    };
    let group = text("/group");
    let plural = text("/names/plural");
    let kind = text("/names/kind");
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
    let scope = text("/scope");
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(Cause::new(
            "FieldValueNotSupported",
            format!("Unsupported value: {scope:?}: supported values: \"Cluster\", \"Namespaced\""),
            "spec.scope",
        ));
    }
    let name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let versions = spec
        .and_then(|spec| spec.get("versions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::invalid(
            "spec.versions",
            &json!([]),
            "must have exactly one version marked as storage version",
        ));
    } else {
        let storage = versions
            .iter()
            .filter(|version| version.get("storage").and_then(Value::as_bool) == Some(true))
            .count();
        if storage != 1 {
            causes.push(Cause::invalid(
                "spec.versions",
                &Value::Array(versions.clone()),
                "must have exactly one version marked as storage version",
            ));
        }
        for (i, version) in versions.iter().enumerate() {
            let base = format!("spec.versions[{i}].schema.openAPIV3Schema");
            match version.pointer("/schema/openAPIV3Schema") {
                None => causes.push(Cause::required(&base, "schemas are required")),
                Some(structural) => {
                    for error in schema::check_rules(structural) {
                        causes.push(Cause::invalid(
                            &format!("{base}.{}", error.path),
                            &json!(error.rule),
                            &format!("compilation failed: {}", error.message),
                        ));
                    }
                }
            }
        }
    }
    causes
}

/// Fills the CRD defaults and the status its controllers would set.
pub fn prepare(crd: &mut Value, now: &str) {
    let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) else {
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
    let storage_version = spec
        .get("versions")
        .and_then(Value::as_array)
        .and_then(|versions| {
            versions
                .iter()
                .find(|version| version.get("storage").and_then(Value::as_bool) == Some(true))
        })
        .and_then(|version| version.get("name"))
        .cloned()
        .unwrap_or(Value::Null);
    let Some(fields) = crd.as_object_mut() else {
        return;
    };
    let mut stored_versions: Vec<Value> = fields
        .get("status")
        .and_then(|status| status.get("storedVersions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !storage_version.is_null() && !stored_versions.contains(&storage_version) {
        stored_versions.push(storage_version);
    }
    // A condition keeps its transition time while it stays True.
    let transition_time = |condition_type: &str, fields: &serde_json::Map<String, Value>| {
        fields
            .get("status")
            .and_then(|status| status.get("conditions"))
            .and_then(Value::as_array)
            .and_then(|conditions| {
                conditions.iter().find(|condition| {
                    condition.get("type").and_then(Value::as_str) == Some(condition_type)
                })
            })
            .and_then(|condition| condition.get("lastTransitionTime"))
            .and_then(Value::as_str)
            .unwrap_or(now)
            .to_string()
    };
    let names_accepted_time = transition_time("NamesAccepted", fields);
    let established_time = transition_time("Established", fields);
    fields.insert(
        "status".into(),
        json!({
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "lastTransitionTime": names_accepted_time, "reason": "NoConflicts", "message": "no conflicts found"},
                {"type": "Established", "status": "True", "lastTransitionTime": established_time, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
            ],
            "acceptedNames": names,
            "storedVersions": stored_versions,
        }),
    );
}
