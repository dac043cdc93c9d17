//! Validation of built-in kinds with the real field paths and messages:
//! labels of every object, and Deployments (replicas, selector against the
//! template, immutable selector, containers, progress deadline).

use serde_json::{Map, Value, json};

use super::names::{LABEL_MSG, is_dns_label};
use crate::error::Cause;
use crate::registry::ResourceDef;
use crate::selector::LabelSelector;

fn validate_pod_template(t: Option<&Value>, causes: &mut Vec<Cause>) {
    let base = "spec.template.spec.containers";
    let containers = t.and_then(|t| t.pointer("/spec/containers")).and_then(Value::as_array);
    match containers {
        None => causes.push(Cause::required(base, "")),
        Some(cs) if cs.is_empty() => causes.push(Cause::required(base, "")),
        Some(cs) => {
            let mut seen = Vec::new();
            for (i, c) in cs.iter().enumerate() {
                let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() {
                    causes.push(Cause::required(&format!("{base}[{i}].name"), ""));
                } else if !is_dns_label(name) {
                    causes.push(Cause::invalid(
                        &format!("{base}[{i}].name"),
                        &json!(name),
                        LABEL_MSG,
                    ));
                } else if seen.contains(&name) {
                    causes.push(Cause::new(
                        "FieldValueDuplicate",
                        format!("Duplicate value: {name:?}"),
                        format!("{base}[{i}].name"),
                    ));
                }
                seen.push(name);
                if c.get("image").and_then(Value::as_str).unwrap_or("").trim().is_empty() {
                    causes.push(Cause::required(&format!("{base}[{i}].image"), ""));
                }
            }
        }
    }
}

fn go_map(labels: &Value) -> String {
    let parts: Vec<String> = labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    format!(
                        "{k:?}:{}",
                        match v {
                            Value::String(s) => format!("{s:?}"),
                            o => o.to_string(),
                        }
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!("map[string]string{{{}}}", parts.join(", "))
}

/// Validates a built-in object (create or update). `old` is the stored
/// object on update.
pub fn validate_object(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if !v.is_string() {
                causes.push(Cause::invalid("metadata.labels", v, "must be a string"));
            } else if LabelSelector::parse(&format!("{k}={}", v.as_str().unwrap_or(""))).is_err() {
                causes.push(Cause::invalid("metadata.labels", v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
            }
        }
    }
    if def.group == "apps" && def.plural == "deployments" {
        let spec = obj.get("spec");
        if let Some(r) = spec.and_then(|s| s.get("replicas")).and_then(Value::as_i64)
            && r < 0
        {
            causes.push(Cause::invalid(
                "spec.replicas",
                &json!(r),
                "must be greater than or equal to 0",
            ));
        }
        let selector = spec.and_then(|s| s.get("selector"));
        match selector {
            None | Some(Value::Null) => causes.push(Cause::required("spec.selector", "")),
            Some(sel) => {
                let empty =
                    sel.get("matchLabels").and_then(Value::as_object).is_none_or(Map::is_empty)
                        && sel
                            .get("matchExpressions")
                            .and_then(Value::as_array)
                            .is_none_or(Vec::is_empty);
                if empty {
                    causes.push(Cause::invalid(
                        "spec.selector",
                        sel,
                        "empty selector is invalid for deployment",
                    ));
                } else {
                    match LabelSelector::from_json(sel) {
                        Ok(ls) => {
                            let labels = spec
                                .and_then(|s| s.pointer("/template/metadata/labels"))
                                .and_then(Value::as_object);
                            if !ls.matches_map(labels) {
                                causes.push(Cause::invalid(
                                    "spec.template.metadata.labels",
                                    &Value::String(go_map(&json!(labels))),
                                    "`selector` does not match template `labels`",
                                ));
                            }
                        }
                        Err(e) => causes.push(Cause::invalid("spec.selector", sel, &e)),
                    }
                }
                if let Some(old_sel) = old.and_then(|o| o.pointer("/spec/selector"))
                    && old_sel != sel
                {
                    causes.push(Cause::invalid("spec.selector", sel, "field is immutable"));
                }
            }
        }
        validate_pod_template(spec.and_then(|s| s.get("template")), &mut causes);
        if let Some(p) = spec.and_then(|s| s.get("progressDeadlineSeconds")).and_then(Value::as_i64)
        {
            let min_ready =
                spec.and_then(|s| s.get("minReadySeconds")).and_then(Value::as_i64).unwrap_or(0);
            if p <= min_ready {
                causes.push(Cause::invalid(
                    "spec.progressDeadlineSeconds",
                    &json!(p),
                    "must be greater than minReadySeconds",
                ));
            }
        }
    }
    causes
}
