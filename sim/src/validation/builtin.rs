//! Validation of built-in kinds with the real field paths and messages:
//! Deployments (replicas, selector against the template, immutable
//! selector, containers, progress deadline), and the dispatch to the checks
//! of ConfigMaps and Secrets (`config`), Services and PodDisruptionBudgets
//! (`service`). Checks of further built-in kinds belong here, one function
//! per kind.

use serde_json::{Map, Value, json};

use super::names::{LABEL_MSG, is_dns_label};
use super::{config, service};
use crate::error::Cause;
use crate::registry::ResourceDef;
use crate::selector::LabelSelector;

/// Validates a built-in object (create or update). `old` is the stored
/// object on update.
pub fn validate_object(def: &ResourceDef, object: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    if def.is("apps", "deployments") {
        validate_deployment(object, old, &mut causes);
    } else if def.is("", "configmaps") {
        causes.extend(config::validate_config_map(object, old));
    } else if def.is("", "secrets") {
        causes.extend(config::validate_secret(object, old));
    } else if def.is("", "services") {
        causes.extend(service::validate_service(object, old));
    } else if def.is("policy", "poddisruptionbudgets") {
        causes.extend(service::validate_pod_disruption_budget(object));
    }
    causes
}

fn validate_deployment(deployment: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = deployment.get("spec");
    let spec_field = |key: &str| spec.and_then(|spec| spec.get(key));
    if let Some(replicas) = spec_field("replicas").and_then(Value::as_i64)
        && replicas < 0
    {
        causes.push(Cause::invalid(
            "spec.replicas",
            &json!(replicas),
            "must be greater than or equal to 0",
        ));
    }
    match spec_field("selector") {
        None | Some(Value::Null) => causes.push(Cause::required("spec.selector", "")),
        Some(selector) => {
            let template_labels = spec
                .and_then(|spec| spec.pointer("/template/metadata/labels"))
                .and_then(Value::as_object);
            validate_selector(selector, template_labels, causes);
            if let Some(old_selector) = old.and_then(|old| old.pointer("/spec/selector"))
                && old_selector != selector
            {
                causes.push(Cause::invalid("spec.selector", selector, "field is immutable"));
            }
        }
    }
    validate_pod_template(spec_field("template"), causes);
    if let Some(deadline) = spec_field("progressDeadlineSeconds").and_then(Value::as_i64) {
        let min_ready = spec_field("minReadySeconds").and_then(Value::as_i64).unwrap_or(0);
        if deadline <= min_ready {
            causes.push(Cause::invalid(
                "spec.progressDeadlineSeconds",
                &json!(deadline),
                "must be greater than minReadySeconds",
            ));
        }
    }
}

/// A Deployment's selector must select something, and its pod template.
fn validate_selector(
    selector: &Value,
    template_labels: Option<&Map<String, Value>>,
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
            "empty selector is invalid for deployment",
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
fn validate_pod_template(template: Option<&Value>, causes: &mut Vec<Cause>) {
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
