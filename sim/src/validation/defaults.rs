//! The API server's defaults for built-in kinds: Deployments, StatefulSets,
//! DaemonSets and their pod templates, and Namespaces (finalizer, phase,
//! name label). A workload annotated [`NO_DEFAULTS_ANNOTATION`] is stored as
//! written, a sim-only knob for fixtures no real server would store
//! (`spec.replicas` absent).

use serde_json::{Map, Value, json};

use crate::registry::ResourceDef;

/// Workload annotation: with `"true"`, none of the defaults below is
/// applied to it (a real server always defaults, so this exists only for
/// fixtures, such as a Deployment without `spec.replicas` for `kubectl
/// rollout status`).
pub const NO_DEFAULTS_ANNOTATION: &str = "sim.gisops.io/no-defaults";

/// Applies the API server's defaults for a built-in kind.
pub fn default_object(def: &ResourceDef, object: &mut Value) {
    if def.is("apps", "deployments") {
        default_deployment(object);
    } else if def.is("apps", "statefulsets") {
        default_stateful_set(object);
    } else if def.is("apps", "daemonsets") {
        default_daemon_set(object);
    } else if def.is("", "namespaces") {
        default_namespace(object);
    }
}

/// Sets `key` unless it holds a non-null value.
fn set_default(fields: &mut Map<String, Value>, key: &str, value: Value) {
    if !fields.contains_key(key) || fields.get(key).is_some_and(Value::is_null) {
        fields.insert(key.to_string(), value);
    }
}

/// The object at `key`, replacing anything else there with `{}`.
fn object_at<'a>(
    fields: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    if !fields.get(key).is_some_and(Value::is_object) {
        fields.insert(key.to_string(), json!({}));
    }
    fields.get_mut(key).and_then(Value::as_object_mut)
}

fn default_namespace(namespace: &mut Value) {
    let name =
        namespace.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
    let Some(fields) = namespace.as_object_mut() else {
        return;
    };
    if let Some(metadata) = object_at(fields, "metadata")
        && let Some(labels) = object_at(metadata, "labels")
    {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    if let Some(spec) = object_at(fields, "spec") {
        set_default(spec, "finalizers", json!(["kubernetes"]));
    }
    if let Some(status) = object_at(fields, "status") {
        set_default(status, "phase", json!("Active"));
    }
}

/// The spec of a workload to default; `None` for one annotated
/// [`NO_DEFAULTS_ANNOTATION`].
fn defaulted_spec(workload: &mut Value) -> Option<&mut Map<String, Value>> {
    let no_defaults = workload
        .pointer("/metadata/annotations")
        .and_then(|annotations| annotations.get(NO_DEFAULTS_ANNOTATION))
        .and_then(Value::as_str)
        == Some("true");
    if no_defaults {
        return None;
    }
    object_at(workload.as_object_mut()?, "spec")
}

/// Defaults of the workload's pod template.
fn default_template(spec: &mut Map<String, Value>) {
    if let Some(template) = spec.get_mut("template").and_then(Value::as_object_mut)
        && let Some(pod_spec) = template.get_mut("spec").and_then(Value::as_object_mut)
    {
        default_pod_spec(pod_spec);
    }
}

fn default_deployment(deployment: &mut Value) {
    let Some(spec) = defaulted_spec(deployment) else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    if let Some(strategy) = object_at(spec, "strategy") {
        set_default(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(rolling_update) = object_at(strategy, "rollingUpdate")
        {
            set_default(rolling_update, "maxUnavailable", json!("25%"));
            set_default(rolling_update, "maxSurge", json!("25%"));
        }
    }
    default_template(spec);
}

/// `SetDefaults_StatefulSet` with the default feature gates of 1.32
/// (`StatefulSetAutoDeletePVC` on, `MaxUnavailableStatefulSet` off, so no
/// `maxUnavailable` default).
fn default_stateful_set(stateful_set: &mut Value) {
    let Some(spec) = defaulted_spec(stateful_set) else {
        return;
    };
    set_default(spec, "podManagementPolicy", json!("OrderedReady"));
    if let Some(strategy) = object_at(spec, "updateStrategy") {
        if !strategy.get("type").is_some_and(Value::is_string) {
            strategy.insert("type".into(), json!("RollingUpdate"));
            set_default(strategy, "rollingUpdate", json!({}));
        }
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(rolling_update) =
                strategy.get_mut("rollingUpdate").and_then(Value::as_object_mut)
        {
            set_default(rolling_update, "partition", json!(0));
        }
    }
    if let Some(policy) = object_at(spec, "persistentVolumeClaimRetentionPolicy") {
        set_default(policy, "whenDeleted", json!("Retain"));
        set_default(policy, "whenScaled", json!("Retain"));
    }
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    if let Some(claims) = spec.get_mut("volumeClaimTemplates").and_then(Value::as_array_mut) {
        for claim in claims {
            if let Some(claim_spec) = claim.get_mut("spec").and_then(Value::as_object_mut) {
                set_default(claim_spec, "volumeMode", json!("Filesystem"));
            }
        }
    }
    default_template(spec);
}

/// `SetDefaults_DaemonSet`: RollingUpdate with maxUnavailable 1 and
/// maxSurge 0.
fn default_daemon_set(daemon_set: &mut Value) {
    let Some(spec) = defaulted_spec(daemon_set) else {
        return;
    };
    if let Some(strategy) = object_at(spec, "updateStrategy") {
        set_default(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(rolling_update) = object_at(strategy, "rollingUpdate")
        {
            set_default(rolling_update, "maxUnavailable", json!(1));
            set_default(rolling_update, "maxSurge", json!(0));
        }
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    default_template(spec);
}

fn default_pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    for key in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(key).and_then(Value::as_array_mut) {
            for container in containers {
                default_container(container);
            }
        }
    }
}

fn default_container(container: &mut Value) {
    let Some(fields) = container.as_object_mut() else {
        return;
    };
    set_default(fields, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(fields, "terminationMessagePolicy", json!("File"));
    // Images without a tag, or tagged latest, are pulled every time.
    let image = fields.get("image").and_then(Value::as_str).unwrap_or("");
    let last_segment = image.rsplit('/').next().unwrap_or("");
    let latest =
        !image.contains('@') && (!last_segment.contains(':') || last_segment.ends_with(":latest"));
    set_default(fields, "imagePullPolicy", json!(if latest { "Always" } else { "IfNotPresent" }));
    if let Some(ports) = fields.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            if let Some(port) = port.as_object_mut() {
                set_default(port, "protocol", json!("TCP"));
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(probe) = fields.get_mut(probe) {
            default_probe(probe);
        }
    }
    if let Some(env) = fields.get_mut("env").and_then(Value::as_array_mut) {
        for variable in env {
            if let Some(field_ref) =
                variable.pointer_mut("/valueFrom/fieldRef").and_then(Value::as_object_mut)
            {
                set_default(field_ref, "apiVersion", json!("v1"));
            }
        }
    }
    // Requests default to the limits.
    if let Some(resources) = fields.get_mut("resources").and_then(Value::as_object_mut)
        && let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned()
        && let Some(requests) = object_at(resources, "requests")
    {
        for (resource, limit) in limits {
            set_default(requests, &resource, limit);
        }
    }
}

fn default_probe(probe: &mut Value) {
    if let Some(fields) = probe.as_object_mut() {
        set_default(fields, "timeoutSeconds", json!(1));
        set_default(fields, "periodSeconds", json!(10));
        set_default(fields, "successThreshold", json!(1));
        set_default(fields, "failureThreshold", json!(3));
        if let Some(http_get) = fields.get_mut("httpGet").and_then(Value::as_object_mut) {
            set_default(http_get, "path", json!("/"));
            set_default(http_get, "scheme", json!("HTTP"));
        }
    }
}
