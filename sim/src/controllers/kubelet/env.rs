//! A container's environment as the kubelet makes it
//! (`makeEnvironmentVariables`): `envFrom` ConfigMaps and Secrets, then
//! `env` in order, each value expanded from the variables before it and the
//! service variables, with the downward API (`fieldRef`,
//! `resourceFieldRef`) and `configMapKeyRef`/`secretKeyRef` from the store;
//! then the `kubernetes` Service's variables, which every pod gets whatever
//! its `enableServiceLinks` (here pointing at the sim's TLS port). Failures
//! read as the kubelet's (`CreateContainerConfigError` messages).

use std::collections::HashMap;
use std::net::SocketAddr;

use base64::Engine;
use serde_json::Value;

use super::argv::expand;
use crate::error::GroupResource;
use crate::store::StoreInner;
use crate::util::metadata_str;

/// What the kubelet knows of the pod beyond its spec when it starts a container.
pub struct PodContext<'a> {
    pub pod: &'a Value,
    pub pod_ip: &'a str,
    pub host_ip: &'a str,
    /// The API server (the `kubernetes` Service's endpoint).
    pub api_server: SocketAddr,
}

/// The `kubernetes` Service's variables, pointing at `api_server`.
pub fn service_env(api_server: SocketAddr) -> Vec<(String, String)> {
    let (host, port) = (api_server.ip().to_string(), api_server.port());
    let url = format!("tcp://{}", api_server);
    vec![
        ("KUBERNETES_SERVICE_HOST".into(), host.clone()),
        ("KUBERNETES_SERVICE_PORT".into(), port.to_string()),
        ("KUBERNETES_SERVICE_PORT_HTTPS".into(), port.to_string()),
        ("KUBERNETES_PORT".into(), url.clone()),
        (format!("KUBERNETES_PORT_{port}_TCP"), url),
        (format!("KUBERNETES_PORT_{port}_TCP_PROTO"), "tcp".into()),
        (format!("KUBERNETES_PORT_{port}_TCP_PORT"), port.to_string()),
        (format!("KUBERNETES_PORT_{port}_TCP_ADDR"), host),
    ]
}

/// The environment of `container`, in the order the kubelet hands it to the
/// runtime (a later entry of the same name wins); or the message of a
/// `CreateContainerConfigError`.
pub fn container_env(
    context: &PodContext<'_>,
    container: &Value,
    store: &StoreInner,
) -> Result<Vec<(String, String)>, String> {
    let pod = context.pod;
    let namespace = metadata_str(pod, "namespace").unwrap_or("");
    let service: HashMap<String, String> = service_env(context.api_server).into_iter().collect();
    let mut defined: Vec<(String, String)> = Vec::new();
    let mut values: HashMap<String, String> = HashMap::new();
    let mut define = |name: String, value: String, values: &mut HashMap<String, String>| {
        values.insert(name.clone(), value.clone());
        defined.push((name, value));
    };
    for source in container.get("envFrom").and_then(Value::as_array).into_iter().flatten() {
        let prefix = source.get("prefix").and_then(Value::as_str).unwrap_or("");
        for (kind, field) in [("ConfigMap", "configMapRef"), ("Secret", "secretRef")] {
            let Some(reference) = source.get(field) else {
                continue;
            };
            let name = reference.get("name").and_then(Value::as_str).unwrap_or("");
            let optional = reference.get("optional").and_then(Value::as_bool).unwrap_or(false);
            let Some(data) = source_data(store, kind, namespace, name, optional)? else {
                continue;
            };
            for (key, value) in data {
                // Keys that are no valid variable names are skipped (the
                // kubelet records an event naming them).
                let name = format!("{prefix}{key}");
                if is_env_name(&name) {
                    define(name, value, &mut values);
                }
            }
        }
    }
    for variable in container.get("env").and_then(Value::as_array).into_iter().flatten() {
        let name = variable.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let literal = variable.get("value").and_then(Value::as_str).unwrap_or("");
        let value = if !literal.is_empty() {
            let mut known = service.clone();
            known.extend(values.iter().map(|(name, value)| (name.clone(), value.clone())));
            expand(literal, &known)
        } else if let Some(from) = variable.get("valueFrom") {
            match value_from(context, container, from, namespace, store)? {
                Some(value) => value,
                None => continue,
            }
        } else {
            String::new()
        };
        define(name, value, &mut values);
    }
    let mut env: Vec<(String, String)> = service_env(context.api_server)
        .into_iter()
        .filter(|(name, _)| !values.contains_key(name))
        .collect();
    env.extend(defined);
    Ok(env)
}

/// Whether `name` is a valid environment variable name
/// (`IsEnvVarName`: printable ASCII, no `=`, not starting with a digit).
fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_graphic() && c != '=')
}

/// The data of a ConfigMap or Secret (Secret values decoded), `None` for an
/// optional one that does not exist.
fn source_data(
    store: &StoreInner,
    kind: &str,
    namespace: &str,
    name: &str,
    optional: bool,
) -> Result<Option<Vec<(String, String)>>, String> {
    let resource = if kind == "Secret" { "secrets" } else { "configmaps" };
    let Some(object) = store.get(&GroupResource::new("", resource), namespace, name) else {
        return if optional {
            Ok(None)
        } else {
            Err(format!("{} {name:?} not found", kind.to_lowercase()))
        };
    };
    let mut data: Vec<(String, String)> = Vec::new();
    if let Some(fields) = object.get("data").and_then(Value::as_object) {
        for (key, value) in fields {
            let text = value.as_str().unwrap_or("");
            let text = if kind == "Secret" {
                let bytes =
                    base64::engine::general_purpose::STANDARD.decode(text).unwrap_or_default();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                text.to_string()
            };
            data.push((key.clone(), text));
        }
    }
    Ok(Some(data))
}

/// A `valueFrom` value; `None` for an optional reference that is missing.
fn value_from(
    context: &PodContext<'_>,
    container: &Value,
    from: &Value,
    namespace: &str,
    store: &StoreInner,
) -> Result<Option<String>, String> {
    if let Some(field) = from.pointer("/fieldRef/fieldPath").and_then(Value::as_str) {
        return field_value(context, field).map(Some);
    }
    if let Some(resource) = from.get("resourceFieldRef") {
        return resource_value(container, resource, context.pod).map(Some);
    }
    for (kind, field) in [("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")] {
        let Some(reference) = from.get(field) else {
            continue;
        };
        let name = reference.get("name").and_then(Value::as_str).unwrap_or("");
        let key = reference.get("key").and_then(Value::as_str).unwrap_or("");
        let optional = reference.get("optional").and_then(Value::as_bool).unwrap_or(false);
        let Some(data) = source_data(store, kind, namespace, name, optional)? else {
            return Ok(None);
        };
        return match data.into_iter().find(|(found, _)| found == key) {
            Some((_, value)) => Ok(Some(value)),
            None if optional => Ok(None),
            None => Err(format!("couldn't find key {key} in {kind} {namespace}/{name}")),
        };
    }
    Ok(Some(String::new()))
}

/// The downward API's pod fields (`podFieldSelectorRuntimeValue`).
fn field_value(context: &PodContext<'_>, field: &str) -> Result<String, String> {
    let pod = context.pod;
    let text =
        |pointer: &str| pod.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_string();
    let keyed = |map: &str| {
        let key = field
            .strip_prefix(&format!("metadata.{map}['"))
            .and_then(|rest| rest.strip_suffix("']"))?;
        Some(
            pod.pointer(&format!("/metadata/{map}"))
                .and_then(|m| m.get(key))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )
    };
    Ok(match field {
        "metadata.name" => text("/metadata/name"),
        "metadata.namespace" => text("/metadata/namespace"),
        "metadata.uid" => text("/metadata/uid"),
        "spec.nodeName" => text("/spec/nodeName"),
        "spec.serviceAccountName" => text("/spec/serviceAccountName"),
        "status.hostIP" | "status.hostIPs" => context.host_ip.to_string(),
        "status.podIP" | "status.podIPs" => context.pod_ip.to_string(),
        _ => {
            if let Some(value) = keyed("labels").or_else(|| keyed("annotations")) {
                value
            } else {
                return Err(format!("unsupported fieldPath: {field}"));
            }
        }
    })
}

/// `resourceFieldRef`: the container's request or limit divided by the
/// divisor, rounded up; a limit not set is the node's allocatable (this
/// machine's CPUs and memory).
fn resource_value(container: &Value, reference: &Value, pod: &Value) -> Result<String, String> {
    let resource = reference.get("resource").and_then(Value::as_str).unwrap_or("");
    let target = match reference.get("containerName").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .and_then(|containers| containers.iter().find(|c| c["name"] == name))
            .ok_or_else(|| format!("container {name} not found"))?,
        _ => container,
    };
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource : {resource}"))?;
    let set = target
        .pointer(&format!("/resources/{kind}/{name}"))
        .or_else(|| {
            (kind == "requests")
                .then(|| target.pointer(&format!("/resources/limits/{name}")))
                .flatten()
        })
        .and_then(quantity_text);
    let amount = match (set, kind) {
        (Some(text), _) => {
            parse_quantity(&text).ok_or_else(|| format!("invalid quantity {text:?}"))?
        }
        (None, "limits") => node_allocatable(name),
        (None, _) => 0.0,
    };
    let divisor = reference
        .get("divisor")
        .and_then(quantity_text)
        .and_then(|text| parse_quantity(&text))
        .filter(|divisor| *divisor > 0.0)
        .unwrap_or(1.0);
    Ok(format!("{}", (amount / divisor).ceil() as i64))
}

fn quantity_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A Kubernetes quantity (`50m`, `128Mi`, `1.5G`, `2e3`) as a number.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let power: i32 = exponent.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(power)
        }
    };
    Some(number * scale)
}

/// This machine's CPUs or memory, standing in for the node's allocatable.
fn node_allocatable(resource: &str) -> f64 {
    match resource {
        "cpu" => std::thread::available_parallelism().map_or(1.0, |cpus| cpus.get() as f64),
        "memory" => std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|meminfo| {
                let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
                let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kib * 1024.0)
            })
            .unwrap_or(8.0 * 1024f64.powi(3)),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web-1", "namespace": "apps", "uid": "u-1", "labels": {"app": "web"}},
            "spec": {"nodeName": "sim-worker-2", "serviceAccountName": "runner", "containers": [{
                "name": "main",
                "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            }]},
        })
    }

    fn env_of(container: Value, store: &StoreInner) -> Result<HashMap<String, String>, String> {
        let pod = pod();
        let context = PodContext {
            pod: &pod,
            pod_ip: "127.1.0.9",
            host_ip: "10.0.0.12",
            api_server: "127.0.0.1:6443".parse().unwrap(),
        };
        container_env(&context, &container, store).map(|env| env.into_iter().collect())
    }

    fn store_with(objects: &[(&str, Value)]) -> crate::store::Store {
        let store = crate::store::Store::new(100);
        {
            let mut inner = store.lock();
            for (resource, object) in objects {
                inner.commit(
                    &GroupResource::new("", resource),
                    object.clone(),
                    crate::store::EventType::Added,
                );
            }
        }
        store
    }

    #[test]
    fn values_expand_earlier_variables_and_the_downward_api_fills_in() {
        let store = store_with(&[]);
        let env = env_of(
            json!({"name": "main", "resources": pod()["spec"]["containers"][0]["resources"], "env": [
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "LISTEN", "value": "$(POD_IP):8080 $(LATER) $$(POD_IP)"},
                {"name": "LATER", "value": "x"},
                {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "ACCOUNT", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                {"name": "API", "value": "$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"},
                {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
                {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            ]}),
            &store.lock(),
        )
        .unwrap();
        assert_eq!(env["LISTEN"], "127.1.0.9:8080 $(LATER) $(POD_IP)");
        assert_eq!(env["NAME"], "web-1");
        assert_eq!(env["APP"], "web");
        assert_eq!(env["ACCOUNT"], "runner");
        assert_eq!(env["API"], "127.0.0.1:6443");
        assert_eq!(env["CPU"], "1", "250m rounded up to whole cores");
        assert_eq!(env["MEM_MI"], "128");
        assert_eq!(env["KUBERNETES_PORT_6443_TCP_ADDR"], "127.0.0.1");
    }

    #[test]
    fn config_maps_and_secrets_come_from_the_store_with_the_kubelets_errors() {
        let store = store_with(&[
            (
                "configmaps",
                json!({"metadata": {"name": "settings", "namespace": "apps"}, "data": {"mode": "fast", "bad key": "x"}}),
            ),
            (
                "secrets",
                json!({"metadata": {"name": "creds", "namespace": "apps"}, "data": {"password": "czNjcjN0"}}),
            ),
        ]);
        let inner = store.lock();
        let env = env_of(
            json!({"name": "main",
                "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
                "env": [
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                    {"name": "MAYBE", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k", "optional": true}}},
                ]}),
            &inner,
        )
        .unwrap();
        assert_eq!(env["CFG_mode"], "fast");
        assert!(!env.contains_key("CFG_bad key"));
        assert_eq!(env["PASSWORD"], "s3cr3t");
        assert!(!env.contains_key("MAYBE"));
        let missing = |reference: Value| {
            env_of(json!({"name": "main", "env": [{"name": "X", "valueFrom": reference}]}), &inner)
        };
        assert_eq!(
            missing(json!({"secretKeyRef": {"name": "nope", "key": "k"}})).unwrap_err(),
            "secret \"nope\" not found"
        );
        assert_eq!(
            missing(json!({"configMapKeyRef": {"name": "settings", "key": "k"}})).unwrap_err(),
            "couldn't find key k in ConfigMap apps/settings"
        );
    }

    #[test]
    fn quantities_parse_with_their_suffixes() {
        for (text, value) in
            [("50m", 0.05), ("128Mi", 134_217_728.0), ("1.5", 1.5), ("2k", 2000.0), ("1e3", 1000.0)]
        {
            assert_eq!(parse_quantity(text), Some(value), "{text}");
        }
        assert_eq!(parse_quantity("12q"), None);
    }
}
