//! Validation of built-in kinds with the real field paths and messages:
//! Deployments (replicas, selector against the template, immutable
//! selector, containers, progress deadline), and the dispatch to the checks
//! of ConfigMaps and Secrets (`config`), Services and PodDisruptionBudgets
//! (`service`), StatefulSets, DaemonSets and ControllerRevisions
//! (`workloads`). Checks of further built-in kinds belong here, one function
//! per kind.

use serde_json::{Value, json};

use super::pod_template::{validate_pod_template, validate_selector};
use super::{config, service, workloads};
use crate::error::Cause;
use crate::registry::ResourceDef;

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
    } else if def.is("apps", "statefulsets") {
        causes.extend(workloads::validate_stateful_set(object, old));
    } else if def.is("apps", "daemonsets") {
        causes.extend(workloads::validate_daemon_set(object, old));
    } else if def.is("apps", "controllerrevisions") {
        causes.extend(workloads::validate_controller_revision(object, old));
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
            validate_selector(selector, template_labels, "deployment", causes);
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
