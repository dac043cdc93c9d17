//! Server-side behaviour of the built-in kinds: name validation rules,
//! defaulting (Deployment and pod-template defaults, Namespace
//! finalizers/phase), validation with the real field paths and messages, and
//! which part of an object counts as its spec for `metadata.generation`.

use serde_json::{Map, Value, json};

use crate::error::Cause;
use crate::registry::ResourceDef;
use crate::selector::LabelSelector;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// Whether `s` is a DNS-1123 label.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && !b[0].is_ascii_uppercase()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && !b[b.len() - 1].is_ascii_uppercase()
        && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// Whether `s` is a DNS-1123 subdomain.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Validates `metadata.name` for a resource.
pub fn validate_name(def: &ResourceDef, name: &str) -> Option<Cause> {
    let v = json!(name);
    if def.plural == "namespaces" {
        if !is_dns_label(name) {
            return Some(Cause::invalid("metadata.name", &v, LABEL_MSG));
        }
    } else if !is_dns_subdomain(name) {
        return Some(Cause::invalid("metadata.name", &v, SUBDOMAIN_MSG));
    }
    None
}

fn set_default(m: &mut Map<String, Value>, k: &str, v: Value) {
    if !m.contains_key(k) || m.get(k).is_some_and(Value::is_null) {
        m.insert(k.to_string(), v);
    }
}

fn obj_entry<'a>(m: &'a mut Map<String, Value>, k: &str) -> Option<&'a mut Map<String, Value>> {
    if !m.get(k).is_some_and(Value::is_object) {
        m.insert(k.to_string(), json!({}));
    }
    m.get_mut(k).and_then(Value::as_object_mut)
}

fn default_probe(p: &mut Value) {
    if let Some(m) = p.as_object_mut() {
        set_default(m, "timeoutSeconds", json!(1));
        set_default(m, "periodSeconds", json!(10));
        set_default(m, "successThreshold", json!(1));
        set_default(m, "failureThreshold", json!(3));
        if let Some(h) = m.get_mut("httpGet").and_then(Value::as_object_mut) {
            set_default(h, "path", json!("/"));
            set_default(h, "scheme", json!("HTTP"));
        }
    }
}

fn default_container(c: &mut Value) {
    let Some(m) = c.as_object_mut() else {
        return;
    };
    set_default(m, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(m, "terminationMessagePolicy", json!("File"));
    let image = m.get("image").and_then(Value::as_str).unwrap_or("");
    let last = image.rsplit('/').next().unwrap_or("");
    let latest = !image.contains('@') && (!last.contains(':') || last.ends_with(":latest"));
    set_default(m, "imagePullPolicy", json!(if latest { "Always" } else { "IfNotPresent" }));
    if let Some(ports) = m.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            if let Some(pm) = p.as_object_mut() {
                set_default(pm, "protocol", json!("TCP"));
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = m.get_mut(probe) {
            default_probe(p);
        }
    }
    if let Some(env) = m.get_mut("env").and_then(Value::as_array_mut) {
        for e in env {
            if let Some(fr) = e.pointer_mut("/valueFrom/fieldRef").and_then(Value::as_object_mut) {
                set_default(fr, "apiVersion", json!("v1"));
            }
        }
    }
    if let Some(res) = m.get_mut("resources").and_then(Value::as_object_mut)
        && let Some(limits) = res.get("limits").and_then(Value::as_object).cloned()
        && let Some(req) = obj_entry(res, "requests")
    {
        for (k, v) in limits {
            set_default(req, &k, v);
        }
    }
}

fn default_pod_spec(spec: &mut Map<String, Value>) {
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    for key in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(key).and_then(Value::as_array_mut) {
            for c in cs {
                default_container(c);
            }
        }
    }
}

/// Applies the API server's defaults for a built-in kind.
pub fn default_object(def: &ResourceDef, obj: &mut Value) {
    match (def.group.as_str(), def.plural.as_str()) {
        ("apps", "deployments") => default_deployment(obj),
        ("", "namespaces") => {
            let name =
                obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
            let Some(m) = obj.as_object_mut() else {
                return;
            };
            if let Some(meta) = obj_entry(m, "metadata")
                && let Some(labels) = obj_entry(meta, "labels")
            {
                labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            if let Some(spec) = obj_entry(m, "spec") {
                set_default(spec, "finalizers", json!(["kubernetes"]));
            }
            if let Some(status) = obj_entry(m, "status") {
                set_default(status, "phase", json!("Active"));
            }
        }
        _ => {}
    }
}

fn default_deployment(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    let Some(spec) = obj_entry(m, "spec") else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    if let Some(strategy) = obj_entry(spec, "strategy") {
        set_default(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(ru) = obj_entry(strategy, "rollingUpdate")
        {
            set_default(ru, "maxUnavailable", json!("25%"));
            set_default(ru, "maxSurge", json!("25%"));
        }
    }
    if let Some(template) = spec.get_mut("template").and_then(Value::as_object_mut)
        && let Some(pod) = template.get_mut("spec").and_then(Value::as_object_mut)
    {
        default_pod_spec(pod);
    }
}

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

/// Whether the change from `old` to `new` bumps `metadata.generation`.
pub fn generation_changes(def: &ResourceDef, old: &Value, new: &Value) -> bool {
    if def.is_custom() {
        let strip = |v: &Value| -> Value {
            let mut v = v.clone();
            if let Some(m) = v.as_object_mut() {
                m.remove("metadata");
                m.remove("apiVersion");
                m.remove("kind");
                if def.status_subresource {
                    m.remove("status");
                }
            }
            v
        };
        strip(old) != strip(new)
    } else {
        old.get("spec") != new.get("spec")
    }
}

const EVENT_RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedCount", "count"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
];

/// Whether a resource is `events.k8s.io` events (stored as core/v1 events,
/// as the real server does).
pub fn is_events_v1(def: &ResourceDef) -> bool {
    def.group == "events.k8s.io" && def.plural == "events"
}

fn rename_keys(obj: &mut Value, forward: bool) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    for (new_name, core_name) in EVENT_RENAMES {
        let (from, to) = if forward { (new_name, core_name) } else { (core_name, new_name) };
        if let Some(v) = m.remove(*from) {
            m.insert((*to).to_string(), v);
        }
    }
}

/// An `events.k8s.io/v1` Event in its core/v1 storage form.
pub fn event_to_core(mut obj: Value) -> Value {
    rename_keys(&mut obj, true);
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!("v1"));
        m.insert("kind".into(), json!("Event"));
    }
    obj
}

/// A stored core/v1 Event as `events.k8s.io/v1`.
pub fn event_from_core(mut obj: Value) -> Value {
    rename_keys(&mut obj, false);
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!("events.k8s.io/v1"));
        m.insert("kind".into(), json!("Event"));
    }
    obj
}

/// The field path of an `events.k8s.io/v1` field selector in storage form.
pub fn event_field_to_core(path: &str) -> String {
    for (new_name, core_name) in EVENT_RENAMES {
        if path == *new_name {
            return (*core_name).to_string();
        }
        if let Some(rest) = path.strip_prefix(&format!("{new_name}.")) {
            return format!("{core_name}.{rest}");
        }
    }
    path.to_string()
}
