//! The checks every workload's spec shares: its selector (non-empty, and
//! matching the pod template's labels) and its pod template's containers,
//! with the real messages.

use serde_json::{Map, Value, json};

use super::names::{LABEL_MSG, is_dns_label};
use crate::error::Cause;
use crate::selector::LabelSelector;

/// A workload's selector must select something, and its pod template
/// (`kind`: the lower-case kind the messages name).
pub fn validate_selector(
    selector: &Value,
    template_labels: Option<&Map<String, Value>>,
    kind: &str,
    causes: &mut Vec<Cause>,
) {
    let no_labels =
        selector.get("matchLabels").and_then(Value::as_object).is_none_or(Map::is_empty);
    let no_expressions =
        selector.get("matchExpressions").and_then(Value::as_array).is_none_or(Vec::is_empty);
    if no_labels && no_expressions {
        causes.push(Cause::invalid(
            "spec.selector",
            selector,
            &format!("empty selector is invalid for {kind}"),
        ));
        return;
    }
    match LabelSelector::from_json(selector) {
        Ok(parsed) => {
            if !parsed.matches_map(template_labels) {
                causes.push(Cause::invalid(
                    "spec.template.metadata.labels",
                    &Value::String(go_string_map(&json!(template_labels))),
                    "`selector` does not match template `labels`",
                ));
            }
        }
        Err(message) => causes.push(Cause::invalid("spec.selector", selector, &message)),
    }
}

/// Every container needs a unique DNS-label name and an image.
pub fn validate_pod_template(template: Option<&Value>, causes: &mut Vec<Cause>) {
    let base = "spec.template.spec.containers";
    let containers = template
        .and_then(|template| template.pointer("/spec/containers"))
        .and_then(Value::as_array);
    let Some(containers) = containers.filter(|containers| !containers.is_empty()) else {
        causes.push(Cause::required(base, ""));
        return;
    };
    let mut seen = Vec::new();
    for (i, container) in containers.iter().enumerate() {
        let name = container.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            causes.push(Cause::required(&format!("{base}[{i}].name"), ""));
        } else if !is_dns_label(name) {
            causes.push(Cause::invalid(&format!("{base}[{i}].name"), &json!(name), LABEL_MSG));
        } else if seen.contains(&name) {
            causes.push(Cause::new(
                "FieldValueDuplicate",
                format!("Duplicate value: {name:?}"),
                format!("{base}[{i}].name"),
            ));
        }
        seen.push(name);
        if container.get("image").and_then(Value::as_str).unwrap_or("").trim().is_empty() {
            causes.push(Cause::required(&format!("{base}[{i}].image"), ""));
        }
    }
}

/// A label map as Go prints a `map[string]string` (`%#v`), as the real
/// message shows it.
fn go_string_map(labels: &Value) -> String {
    let entries: Vec<String> = labels
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(key, value)| {
                    let value = match value {
                        Value::String(text) => format!("{text:?}"),
                        other => other.to_string(),
                    };
                    format!("{key:?}:{value}")
                })
                .collect()
        })
        .unwrap_or_default();
    format!("map[string]string{{{}}}", entries.join(", "))
}
