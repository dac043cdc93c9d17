//! What a pod asks of a node, as the scheduler counts it
//! (`computePodResourceRequest`): per resource, the larger of the sum over
//! its containers and the largest init container, plus `spec.overhead`. A
//! container's request defaults to its limit, as the API server defaults
//! it. Also the pod's QoS class, which follows from the same fields.

use std::ops::{Add, AddAssign};

use serde_json::Value;

use crate::quantity;

/// CPU and memory, the resources the sim's nodes offer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Resources {
    /// CPU in millicores.
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
}

impl Resources {
    /// `self - other`, never below zero.
    pub fn saturating_sub(self, other: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(other.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_sub(other.memory_bytes),
        }
    }

    /// The larger of each resource.
    fn max(self, other: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.max(other.cpu_millis),
            memory_bytes: self.memory_bytes.max(other.memory_bytes),
        }
    }
}

impl Add for Resources {
    type Output = Resources;
    fn add(self, other: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_add(other.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_add(other.memory_bytes),
        }
    }
}

impl AddAssign for Resources {
    fn add_assign(&mut self, other: Resources) {
        *self = *self + other;
    }
}

/// CPU and memory of a `ResourceList` (`{"cpu": "500m", "memory": "1Gi"}`);
/// a quantity that does not parse counts as zero (admission refuses them).
pub fn resource_list(list: Option<&Value>) -> Resources {
    let amount = |key: &str, parse: fn(&str) -> Result<u64, quantity::QuantityError>| {
        list.and_then(|list| list.get(key))
            .and_then(|value| match value {
                Value::String(text) => parse(text).ok(),
                Value::Number(number) => parse(&number.to_string()).ok(),
                _ => None,
            })
            .unwrap_or(0)
    };
    Resources {
        cpu_millis: amount("cpu", quantity::cpu_millis),
        memory_bytes: amount("memory", quantity::whole_units),
    }
}

/// One container's requests, its limits standing in for missing ones.
fn container_requests(container: &Value) -> Resources {
    let requests = resource_list(container.pointer("/resources/requests"));
    let limits = resource_list(container.pointer("/resources/limits"));
    let has_request =
        |key: &str| container.pointer(&format!("/resources/requests/{key}")).is_some();
    Resources {
        cpu_millis: if has_request("cpu") { requests.cpu_millis } else { limits.cpu_millis },
        memory_bytes: if has_request("memory") {
            requests.memory_bytes
        } else {
            limits.memory_bytes
        },
    }
}

fn containers<'a>(spec: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    spec.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// A pod spec's requests as the scheduler sums them.
pub fn spec_requests(spec: &Value) -> Resources {
    let mut total = Resources::default();
    for container in containers(spec, "containers") {
        total += container_requests(container);
    }
    for init in containers(spec, "initContainers") {
        total = total.max(container_requests(init));
    }
    total + resource_list(spec.get("overhead"))
}

/// A pod's requests as the scheduler sums them.
pub fn pod_requests(pod: &Value) -> Resources {
    pod.get("spec").map(spec_requests).unwrap_or_default()
}

/// The pod's QoS class from its containers' requests and limits.
pub fn qos_class(containers: &[Value]) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for container in containers {
        let requests = container.pointer("/resources/requests").and_then(Value::as_object);
        let limits = container.pointer("/resources/limits").and_then(Value::as_object);
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for resource in ["cpu", "memory"] {
            let limit = limits.and_then(|limits| limits.get(resource));
            let request = requests.and_then(|requests| requests.get(resource)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn requests_sum_containers_take_the_largest_init_container_and_add_overhead() {
        let pod = json!({"spec": {
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}},
                {"name": "b", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "c"},
            ],
            "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "2"}}}],
            "overhead": {"cpu": "10m"},
        }});
        let requests = pod_requests(&pod);
        assert_eq!(requests.cpu_millis, 2010);
        assert_eq!(requests.memory_bytes, 1536 * 1024 * 1024);
        assert_eq!(
            pod_requests(&json!({"spec": {"containers": [{"name": "x"}]}})),
            Resources::default()
        );
    }

    #[test]
    fn qos_classes() {
        let guaranteed = json!({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}});
        let burstable = json!({"resources": {"requests": {"cpu": "100m"}}});
        assert_eq!(qos_class(std::slice::from_ref(&guaranteed)), "Guaranteed");
        assert_eq!(qos_class(&[guaranteed, burstable]), "Burstable");
        assert_eq!(qos_class(&[json!({"name": "x"})]), "BestEffort");
    }
}
