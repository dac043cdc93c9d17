//! Services and PodDisruptionBudgets. A Service gets the API server's
//! defaults and allocations (type `ClusterIP`, session affinity, single-stack
//! IPv4, a cluster IP from `10.96.0.0/12`, node ports from 30000-32767, ports'
//! protocol and target port), keeps them across updates that leave them out
//! (as `kubectl apply` and `helm upgrade` do), and is validated as the real
//! server does for the fields charts set. A PodDisruptionBudget gets its
//! empty status on creation and the checks of its spec.

use serde_json::{Map, Value, json};

use crate::error::Cause;

const SERVICE_TYPES: [&str; 4] = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];

/// A stable number from the object's uid (allocations must not collide in
/// practice, and must not change when the object is written again).
fn uid_hash(object: &Value, salt: u64) -> u64 {
    let uid = object.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("");
    let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ salt;
    for byte in uid.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// An address of the service CIDR `10.96.0.0/12`, never `10.96.0.1` (the
/// `kubernetes` Service's).
fn allocate_cluster_ip(service: &Value) -> String {
    let offset = 2 + uid_hash(service, 0) % ((1 << 20) - 3);
    let address = (10u32 << 24) | (96 << 16) | offset as u32;
    format!(
        "{}.{}.{}.{}",
        address >> 24,
        (address >> 16) & 0xff,
        (address >> 8) & 0xff,
        address & 0xff
    )
}

fn set_default(fields: &mut Map<String, Value>, key: &str, value: Value) {
    if fields.get(key).is_none_or(Value::is_null) {
        fields.insert(key.to_string(), value);
    }
}

/// Defaults and allocations of a Service (`old` on update).
pub fn prepare_service(service: &mut Value, old: Option<&Value>) {
    let node_port_salt = uid_hash(service, 1);
    let cluster_ip = allocate_cluster_ip(service);
    let Some(fields) = service.as_object_mut() else {
        return;
    };
    if !fields.get("spec").is_some_and(Value::is_object) {
        fields.insert("spec".into(), json!({}));
    }
    if old.is_none() {
        fields.insert("status".into(), json!({"loadBalancer": {}}));
    }
    let Some(spec) = fields.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let old_spec = old.and_then(|old| old.get("spec"));
    set_default(spec, "type", json!("ClusterIP"));
    let service_type = spec.get("type").and_then(Value::as_str).unwrap_or("").to_string();
    if service_type == "ExternalName" {
        return;
    }
    set_default(spec, "sessionAffinity", json!("None"));
    set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    // An update that leaves the allocated values out keeps them.
    for key in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        if let Some(value) = old_spec.and_then(|spec| spec.get(key)) {
            set_default(spec, key, value.clone());
        }
    }
    let ip = match spec.get("clusterIP").and_then(Value::as_str) {
        Some(ip) if !ip.is_empty() => ip.to_string(),
        _ => cluster_ip,
    };
    spec.insert("clusterIP".into(), json!(ip));
    set_default(spec, "clusterIPs", json!([ip]));
    set_default(spec, "ipFamilies", json!(["IPv4"]));
    set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
    let node_ports = service_type == "NodePort" || service_type == "LoadBalancer";
    if node_ports {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if service_type == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    let old_ports: Vec<Value> = old_spec
        .and_then(|spec| spec.get("ports"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for (i, port) in ports.iter_mut().enumerate() {
            let Some(port) = port.as_object_mut() else {
                continue;
            };
            set_default(port, "protocol", json!("TCP"));
            if let Some(number) = port.get("port").cloned() {
                set_default(port, "targetPort", number);
            }
            if node_ports {
                let kept = old_ports
                    .iter()
                    .find(|old| old.get("port") == port.get("port"))
                    .and_then(|old| old.get("nodePort"))
                    .cloned();
                let allocated = json!(30000 + (node_port_salt + i as u64 * 7919) % 2768);
                set_default(port, "nodePort", kept.unwrap_or(allocated));
            }
        }
    }
}

/// Validates a Service (after [`prepare_service`]).
pub fn validate_service(service: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = service.get("spec").cloned().unwrap_or(json!({}));
    let text = |key: &str| spec.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    let service_type = text("type");
    if !SERVICE_TYPES.contains(&service_type.as_str()) {
        causes.push(Cause::new(
            "FieldValueNotSupported",
            format!(
                "Unsupported value: {service_type:?}: supported values: {}",
                SERVICE_TYPES.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", ")
            ),
            "spec.type",
        ));
    }
    let ports = spec.get("ports").and_then(Value::as_array).cloned().unwrap_or_default();
    let headless = text("clusterIP") == "None";
    if service_type == "ExternalName" {
        if text("externalName").is_empty() {
            causes.push(Cause::required("spec.externalName", ""));
        }
    } else if ports.is_empty() && !headless {
        causes.push(Cause::required("spec.ports", ""));
    }
    let mut names: Vec<String> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        let name = port.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        if ports.len() > 1 && name.is_empty() {
            causes.push(Cause::required(&format!("{path}.name"), ""));
        } else if !name.is_empty() && names.contains(&name) {
            causes.push(Cause::new(
                "FieldValueDuplicate",
                format!("Duplicate value: {name:?}"),
                format!("{path}.name"),
            ));
        }
        names.push(name);
        let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&number) {
            causes.push(Cause::invalid(
                &format!("{path}.port"),
                &json!(number),
                "must be between 1 and 65535, inclusive",
            ));
        }
        let protocol = port.get("protocol").and_then(Value::as_str).unwrap_or("");
        if !PROTOCOLS.contains(&protocol) {
            causes.push(Cause::new(
                "FieldValueNotSupported",
                format!(
                    "Unsupported value: {protocol:?}: supported values: \"SCTP\", \"TCP\", \"UDP\""
                ),
                format!("{path}.protocol"),
            ));
        }
        if let Some(target) = port.get("targetPort").and_then(Value::as_i64)
            && !(1..=65535).contains(&target)
        {
            causes.push(Cause::invalid(
                &format!("{path}.targetPort"),
                &json!(target),
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
    if let Some(old_ip) = old.and_then(|old| old.pointer("/spec/clusterIP")).and_then(Value::as_str)
        && !old_ip.is_empty()
        && service_type != "ExternalName"
        && text("clusterIP") != old_ip
    {
        causes.push(Cause::invalid(
            "spec.clusterIP",
            &json!(text("clusterIP")),
            "field is immutable",
        ));
    }
    causes
}

/// The status a PodDisruptionBudget is created with.
pub fn prepare_pod_disruption_budget(budget: &mut Value, old: Option<&Value>) {
    if old.is_none()
        && let Some(fields) = budget.as_object_mut()
    {
        fields.insert(
            "status".into(),
            json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}),
        );
    }
}

/// Validates a PodDisruptionBudget's spec.
pub fn validate_pod_disruption_budget(budget: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = budget.get("spec").cloned().unwrap_or(json!({}));
    let min_available = spec.get("minAvailable").filter(|value| !value.is_null());
    let max_unavailable = spec.get("maxUnavailable").filter(|value| !value.is_null());
    if min_available.is_some() && max_unavailable.is_some() {
        causes.push(Cause::new(
            "FieldValueInvalid",
            format!(
                "Invalid value: policy.PodDisruptionBudgetSpec{{MinAvailable:(*intstr.IntOrString)(0xc000a1c2d8), Selector:{}, MaxUnavailable:(*intstr.IntOrString)(0xc000a1c2e0), UnhealthyPodEvictionPolicy:(*policy.UnhealthyPodEvictionPolicyType)(nil)}}: minAvailable and maxUnavailable cannot be both set",
                if spec.get("selector").is_some() { "(*v1.LabelSelector)(0xc000a1c2f0)" } else { "(*v1.LabelSelector)(nil)" }
            ),
            "spec",
        ));
    }
    for (key, value) in [("minAvailable", min_available), ("maxUnavailable", max_unavailable)] {
        if let Some(value) = value {
            validate_int_or_percent(value, &format!("spec.{key}"), &mut causes);
        }
    }
    if let Some(policy) = spec.get("unhealthyPodEvictionPolicy").and_then(Value::as_str)
        && policy != "IfHealthyBudget"
        && policy != "AlwaysAllow"
    {
        causes.push(Cause::new(
            "FieldValueNotSupported",
            format!("Unsupported value: {policy:?}: supported values: \"AlwaysAllow\", \"IfHealthyBudget\""),
            "spec.unhealthyPodEvictionPolicy",
        ));
    }
    causes
}

/// `ValidatePositiveIntOrPercent` and `IsNotMoreThan100Percent`.
fn validate_int_or_percent(value: &Value, path: &str, causes: &mut Vec<Cause>) {
    match value {
        Value::String(text) => {
            let percent = text
                .strip_suffix('%')
                .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
            match percent.and_then(|digits| digits.parse::<u64>().ok()) {
                None => causes.push(Cause::invalid(
                    path,
                    value,
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                )),
                Some(number) if number > 100 => {
                    causes.push(Cause::invalid(path, value, "must not be greater than 100%"));
                }
                Some(_) => {}
            }
        }
        Value::Number(number) if number.as_i64().is_some_and(|n| n < 0) => {
            causes.push(Cause::invalid(path, value, "must be greater than or equal to 0"));
        }
        _ => {}
    }
}
