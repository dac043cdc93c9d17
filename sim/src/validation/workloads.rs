//! Validation of the workload kinds beside Deployments, with the real field
//! paths and messages: StatefulSets (pod management policy, update strategy
//! and partition, the fields an update may change), DaemonSets (update
//! strategy with its maxUnavailable / maxSurge rule, immutable selector),
//! their shared selector and pod-template checks (from `builtin`), and
//! ControllerRevisions (data required and immutable, revision not
//! negative). Also what the DaemonSet strategy keeps beside the spec: the
//! template generation annotation.

use serde_json::{Map, Value, json};

use super::pod_template::{validate_pod_template, validate_selector};
use super::rbac::not_supported;
use crate::error::Cause;

/// The annotation holding a DaemonSet's template generation (the internal
/// `spec.templateGeneration` of the v1 API).
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// `ValidateNonnegativeField`.
fn nonnegative(spec: &Value, key: &str, path: &str, causes: &mut Vec<Cause>) {
    if let Some(value) = spec.get(key).and_then(Value::as_i64)
        && value < 0
    {
        causes.push(Cause::invalid(path, &json!(value), "must be greater than or equal to 0"));
    }
}

/// The selector and pod-template checks every workload shares.
fn validate_workload_spec(spec: Option<&Value>, kind: &str, causes: &mut Vec<Cause>) {
    let empty = json!({});
    let spec = spec.unwrap_or(&empty);
    match spec.get("selector") {
        None | Some(Value::Null) => causes.push(Cause::required("spec.selector", "")),
        Some(selector) => {
            let labels = spec.pointer("/template/metadata/labels").and_then(Value::as_object);
            validate_selector(selector, labels, kind, causes);
        }
    }
    validate_pod_template(spec.get("template"), causes);
    let restart_policy = spec.pointer("/template/spec/restartPolicy").and_then(Value::as_str);
    if let Some(policy) = restart_policy.filter(|policy| *policy != "Always") {
        causes.push(not_supported("spec.template.spec.restartPolicy", policy, &["Always"]));
    }
    if spec.pointer("/template/spec/activeDeadlineSeconds").is_some_and(|value| !value.is_null()) {
        let kind = if kind == "daemonset" { "DaemonSet" } else { "StatefulSet" };
        causes.push(Cause::new(
            "FieldValueForbidden",
            format!("Forbidden: activeDeadlineSeconds in {kind} is not Supported"),
            "spec.template.spec.activeDeadlineSeconds",
        ));
    }
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", causes);
    nonnegative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", causes);
}

/// An int-or-percent as Go prints an `intstr.IntOrString` in a field
/// error (`%#v`).
fn int_or_string_shown(value: &Value) -> String {
    match value {
        Value::String(text) => format!("intstr.IntOrString{{Type:1, IntVal:0, StrVal:{text:?}}}"),
        other => format!("intstr.IntOrString{{Type:0, IntVal:{other}, StrVal:\"\"}}"),
    }
}

/// `field.Invalid` of a value printed as `shown`.
fn invalid_shown(path: &str, shown: &str, detail: &str) -> Cause {
    Cause::new("FieldValueInvalid", format!("Invalid value: {shown}: {detail}"), path)
}

/// The value of an int-or-percent (`getIntOrPercentValue`), and whether it
/// is a valid one (a non-negative integer or `N%`).
fn int_or_percent(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.strip_suffix('%')?.parse::<i64>().ok(),
        _ => None,
    }
}

/// `ValidatePositiveIntOrPercent` and `IsNotMoreThan100Percent`.
fn validate_int_or_percent(value: &Value, path: &str, causes: &mut Vec<Cause>) {
    let shown = int_or_string_shown(value);
    match (value, int_or_percent(value)) {
        (_, None) => causes.push(invalid_shown(
            path,
            &shown,
            "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
        )),
        (Value::Number(_), Some(count)) if count < 0 => causes.push(Cause::invalid(
            path,
            &json!(count),
            "must be greater than or equal to 0",
        )),
        (Value::String(_), Some(percent)) if percent > 100 => {
            causes.push(invalid_shown(path, &shown, "must not be greater than 100%"));
        }
        _ => {}
    }
}

/// The StatefulSet spec fields an update may change; the others must stay.
const STATEFUL_SET_MUTABLE: [&str; 7] = [
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

/// `ValidateStatefulSet` / `ValidateStatefulSetUpdate`.
pub fn validate_stateful_set(set: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = set.get("spec");
    let field = |key: &str| spec.and_then(|spec| spec.get(key));
    match field("podManagementPolicy").and_then(Value::as_str) {
        None | Some("") => causes.push(Cause::required("spec.podManagementPolicy", "")),
        Some("OrderedReady" | "Parallel") => {}
        Some(other) => causes.push(Cause::invalid(
            "spec.podManagementPolicy",
            &json!(other),
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = field("updateStrategy");
    let rolling_update = strategy
        .and_then(|strategy| strategy.get("rollingUpdate"))
        .filter(|value| !value.is_null());
    match strategy.and_then(|strategy| strategy.get("type")).and_then(Value::as_str) {
        None | Some("") => causes.push(Cause::required("spec.updateStrategy", "")),
        Some("OnDelete") => {
            if let Some(rolling_update) = rolling_update {
                causes.push(Cause::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    rolling_update,
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        Some("RollingUpdate") => {
            if let Some(rolling_update) = rolling_update {
                let path = "spec.updateStrategy.rollingUpdate.partition";
                nonnegative(rolling_update, "partition", path, &mut causes);
                if let Some(max_unavailable) = rolling_update.get("maxUnavailable") {
                    let path = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                    validate_int_or_percent(max_unavailable, path, &mut causes);
                    if int_or_percent(max_unavailable) == Some(0) {
                        let shown = int_or_string_shown(max_unavailable);
                        causes.push(invalid_shown(path, &shown, "cannot be 0"));
                    }
                }
            }
        }
        Some(_) => causes.push(Cause::invalid(
            "spec.updateStrategy",
            strategy.unwrap_or(&Value::Null),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    for when in ["whenDeleted", "whenScaled"] {
        let policy = spec.and_then(|spec| {
            spec.pointer(&format!("/persistentVolumeClaimRetentionPolicy/{when}"))
        });
        if let Some(policy) = policy.and_then(Value::as_str)
            && !matches!(policy, "Retain" | "Delete")
        {
            causes.push(not_supported(
                &format!("spec.persistentVolumeClaimRetentionPolicy.{when}"),
                policy,
                &["Retain", "Delete"],
            ));
        }
    }
    if let Some(spec) = spec {
        nonnegative(spec, "replicas", "spec.replicas", &mut causes);
        if let Some(ordinals) = spec.get("ordinals") {
            nonnegative(ordinals, "start", "spec.ordinals.start", &mut causes);
        }
    }
    validate_workload_spec(spec, "statefulset", &mut causes);
    if let Some(old_spec) = old.and_then(|old| old.get("spec")) {
        let frozen = |spec: Option<&Value>| -> Map<String, Value> {
            spec.and_then(Value::as_object)
                .map(|fields| {
                    fields
                        .iter()
                        .filter(|(key, _)| !STATEFUL_SET_MUTABLE.contains(&key.as_str()))
                        .map(|(key, value)| (key.clone(), value.clone()))
                        .collect()
                })
                .unwrap_or_default()
        };
        if frozen(spec) != frozen(Some(old_spec)) {
            causes.push(Cause::new(
                "FieldValueForbidden",
                "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                "spec",
            ));
        }
    }
    causes
}

/// `ValidateDaemonSet` / `ValidateDaemonSetUpdate` (with the v1 strategy's
/// immutable selector).
pub fn validate_daemon_set(daemon_set: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = daemon_set.get("spec");
    validate_workload_spec(spec, "daemonset", &mut causes);
    let strategy = spec.and_then(|spec| spec.get("updateStrategy"));
    match strategy.and_then(|strategy| strategy.get("type")).and_then(Value::as_str) {
        Some("OnDelete") => {}
        Some("RollingUpdate") => {
            match strategy.and_then(|strategy| strategy.get("rollingUpdate")) {
                None | Some(Value::Null) => {
                    causes.push(Cause::required("spec.updateStrategy.rollingUpdate", ""));
                }
                Some(rolling_update) => {
                    validate_rolling_update_daemon_set(rolling_update, &mut causes)
                }
            }
        }
        other => causes.push(not_supported(
            "spec.updateStrategy",
            other.unwrap_or(""),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    if let (Some(selector), Some(old_selector)) = (
        spec.and_then(|spec| spec.get("selector")),
        old.and_then(|old| old.pointer("/spec/selector")),
    ) && selector != old_selector
    {
        causes.push(Cause::invalid("spec.selector", selector, "field is immutable"));
    }
    causes
}

/// `ValidateRollingUpdateDaemonSet`: exactly one of maxUnavailable and
/// maxSurge is non-zero.
fn validate_rolling_update_daemon_set(rolling_update: &Value, causes: &mut Vec<Cause>) {
    let base = "spec.updateStrategy.rollingUpdate";
    let zero = json!(0);
    let max_unavailable = rolling_update.get("maxUnavailable").unwrap_or(&zero);
    let max_surge = rolling_update.get("maxSurge").unwrap_or(&zero);
    validate_int_or_percent(max_unavailable, &format!("{base}.maxUnavailable"), causes);
    validate_int_or_percent(max_surge, &format!("{base}.maxSurge"), causes);
    let has_unavailable = int_or_percent(max_unavailable).unwrap_or(0) != 0;
    let has_surge = int_or_percent(max_surge).unwrap_or(0) != 0;
    if has_unavailable && has_surge {
        causes.push(invalid_shown(
            &format!("{base}.maxSurge"),
            &int_or_string_shown(max_surge),
            "may not be set when maxUnavailable is non-zero",
        ));
    } else if !has_unavailable && !has_surge {
        causes.push(Cause::required(
            &format!("{base}.maxUnavailable"),
            "cannot be 0 when maxSurge is 0",
        ));
    }
}

/// `ValidateControllerRevision` / `ValidateControllerRevisionUpdate`.
pub fn validate_controller_revision(revision: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let data = revision.get("data").filter(|data| !data.is_null());
    if data.is_none() {
        causes.push(Cause::required("data", "data is mandatory"));
    }
    nonnegative(revision, "revision", "revision", &mut causes);
    if let Some(old) = old
        && old.get("data").filter(|data| !data.is_null()) != data
    {
        causes.push(Cause::invalid("data", data.unwrap_or(&Value::Null), "field is immutable"));
    }
    causes
}

/// The DaemonSet strategy's template generation: 1 on create (unless a
/// higher one is given), kept on update, and bumped with every template
/// change.
pub fn prepare_daemon_set(daemon_set: &mut Value, old: Option<&Value>) {
    let generation_of = |object: &Value| {
        object
            .pointer("/metadata/annotations")
            .and_then(|annotations| annotations.get(TEMPLATE_GENERATION_ANNOTATION))
            .and_then(Value::as_str)
            .and_then(|value| value.parse::<i64>().ok())
    };
    let generation = match old {
        None => generation_of(daemon_set).unwrap_or(0).max(1),
        Some(old) => {
            let kept = generation_of(old).unwrap_or(0);
            let changed = old.pointer("/spec/template") != daemon_set.pointer("/spec/template");
            if changed { kept + 1 } else { kept }
        }
    };
    let Some(metadata) = daemon_set.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let annotations = metadata.entry("annotations").or_insert_with(|| json!({}));
    if let Some(annotations) = annotations.as_object_mut() {
        annotations.insert(TEMPLATE_GENERATION_ANNOTATION.into(), json!(generation.to_string()));
    }
}
