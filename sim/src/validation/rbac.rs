//! The RBAC kinds (`pkg/apis/rbac/validation`): the v1 defaults of
//! binding subjects and role references, policy rules, role references
//! (immutable once set), and subjects, with the real field paths and
//! messages. Their names are path segments, not DNS names (`names`).

use serde_json::{Value, json};

use super::metadata::subdomain_errors;
use super::names::{RBAC_GROUP, path_segment_messages};
use crate::error::Cause;
use crate::registry::ResourceDef;

/// `SetDefaults_Subject` and the bindings' `roleRef.apiGroup` default.
pub fn default_object(def: &ResourceDef, object: &mut Value) {
    if !def.plural.ends_with("bindings") {
        return;
    }
    if let Some(role_ref) = object.get_mut("roleRef").and_then(Value::as_object_mut)
        && role_ref.get("apiGroup").and_then(Value::as_str).unwrap_or("").is_empty()
    {
        role_ref.insert("apiGroup".into(), json!(RBAC_GROUP));
    }
    if let Some(subjects) = object.get_mut("subjects").and_then(Value::as_array_mut) {
        for subject in subjects.iter_mut().filter_map(Value::as_object_mut) {
            let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
            let empty = subject.get("apiGroup").and_then(Value::as_str).unwrap_or("").is_empty();
            if empty && (kind == "User" || kind == "Group") {
                subject.insert("apiGroup".into(), json!(RBAC_GROUP));
            }
        }
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

/// A `[]string` as Go's `%#v` prints it in a field error.
fn go_strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// `field.NotSupported`.
pub(super) fn not_supported(field: &str, value: &str, supported: &[&str]) -> Cause {
    let supported: Vec<String> = supported.iter().map(|value| format!("{value:?}")).collect();
    Cause::new(
        "FieldValueNotSupported",
        format!("Unsupported value: {value:?}: supported values: {}", supported.join(", ")),
        field,
    )
}

/// Validates an RBAC object (`old` on update).
pub fn validate(def: &ResourceDef, object: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    match def.plural.as_str() {
        "roles" | "clusterroles" => {
            let namespaced = def.namespaced;
            for (index, rule) in
                object.get("rules").and_then(Value::as_array).into_iter().flatten().enumerate()
            {
                validate_rule(rule, namespaced, &format!("rules[{index}]"), &mut causes);
            }
            if let Some(aggregation) =
                object.get("aggregationRule").filter(|value| !value.is_null())
            {
                let selectors = aggregation.get("clusterRoleSelectors").and_then(Value::as_array);
                if selectors.is_none_or(Vec::is_empty) {
                    causes.push(Cause::required(
                        "aggregationRule.clusterRoleSelectors",
                        "at least one clusterRoleSelector required if aggregationRule is non-nil",
                    ));
                }
            }
        }
        "rolebindings" | "clusterrolebindings" => {
            validate_binding(object, def.namespaced, &mut causes);
            if let Some(old_ref) = old.and_then(|old| old.get("roleRef"))
                && object.get("roleRef") != Some(old_ref)
            {
                let role_ref = object.get("roleRef").cloned().unwrap_or(Value::Null);
                let field =
                    |key: &str| role_ref.get(key).and_then(Value::as_str).unwrap_or("").to_string();
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    format!(
                        "Invalid value: rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}: cannot change roleRef",
                        field("apiGroup"),
                        field("kind"),
                        field("name")
                    ),
                    "roleRef",
                ));
            }
        }
        _ => {}
    }
    causes
}

/// `ValidatePolicyRule`.
fn validate_rule(rule: &Value, namespaced: bool, path: &str, causes: &mut Vec<Cause>) {
    let verbs = strings(rule.get("verbs"));
    if verbs.is_empty() {
        causes.push(Cause::required(
            &format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = strings(rule.get("nonResourceURLs"));
    let (groups, resources, names) = (
        strings(rule.get("apiGroups")),
        strings(rule.get("resources")),
        strings(rule.get("resourceNames")),
    );
    if !urls.is_empty() {
        let invalid = |detail: &str| {
            Cause::new(
                "FieldValueInvalid",
                format!("Invalid value: {}: {detail}", go_strings(&urls)),
                format!("{path}.nonResourceURLs"),
            )
        };
        if namespaced {
            causes.push(invalid("namespaced rules cannot apply to non-resource URLs"));
        }
        if !groups.is_empty() || !resources.is_empty() || !names.is_empty() {
            causes.push(invalid(
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return;
    }
    if groups.is_empty() {
        causes.push(Cause::required(
            &format!("{path}.apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if resources.is_empty() {
        causes.push(Cause::required(
            &format!("{path}.resources"),
            "resource rules must supply at least one resource",
        ));
    }
}

/// `ValidateRoleBinding` / `ValidateClusterRoleBinding`.
fn validate_binding(binding: &Value, namespaced: bool, causes: &mut Vec<Cause>) {
    let role_ref = binding.get("roleRef");
    let field = |key: &str| {
        role_ref.and_then(|role_ref| role_ref.get(key)).and_then(Value::as_str).unwrap_or("")
    };
    if field("apiGroup") != RBAC_GROUP {
        causes.push(not_supported("roleRef.apiGroup", field("apiGroup"), &[RBAC_GROUP]));
    }
    let kinds: &[&str] = if namespaced { &["Role", "ClusterRole"] } else { &["ClusterRole"] };
    if !kinds.contains(&field("kind")) {
        causes.push(not_supported("roleRef.kind", field("kind"), kinds));
    }
    let name = field("name");
    if name.is_empty() {
        causes.push(Cause::required("roleRef.name", ""));
    } else {
        for message in path_segment_messages(name) {
            causes.push(Cause::invalid("roleRef.name", &json!(name), &message));
        }
    }
    for (index, subject) in
        binding.get("subjects").and_then(Value::as_array).into_iter().flatten().enumerate()
    {
        validate_subject(subject, namespaced, &format!("subjects[{index}]"), causes);
    }
}

/// `ValidateRoleBindingSubject`.
fn validate_subject(subject: &Value, namespaced: bool, path: &str, causes: &mut Vec<Cause>) {
    let field = |key: &str| subject.get(key).and_then(Value::as_str).unwrap_or("");
    let name = field("name");
    if name.is_empty() {
        causes.push(Cause::required(&format!("{path}.name"), ""));
    }
    match field("kind") {
        "ServiceAccount" => {
            if let Some(message) = subdomain_errors(name).first().filter(|_| !name.is_empty()) {
                causes.push(Cause::invalid(&format!("{path}.name"), &json!(name), message));
            }
            if !field("apiGroup").is_empty() {
                causes.push(not_supported(&format!("{path}.apiGroup"), field("apiGroup"), &[""]));
            }
            if !namespaced && field("namespace").is_empty() {
                causes.push(Cause::required(&format!("{path}.namespace"), ""));
            }
        }
        "User" | "Group" => {
            if field("apiGroup") != RBAC_GROUP {
                causes.push(not_supported(
                    &format!("{path}.apiGroup"),
                    field("apiGroup"),
                    &[RBAC_GROUP],
                ));
            }
        }
        kind => causes.push(not_supported(
            &format!("{path}.kind"),
            kind,
            &["ServiceAccount", "User", "Group"],
        )),
    }
}
