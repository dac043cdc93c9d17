//! The kubelet's side of a pod: its status in each phase of the simulated
//! rollout (conditions, container states, IPs, QoS class), as the real
//! kubelet reports it. The host IP is its node's InternalIP and the pod IP
//! comes from the node's pod CIDR (without Node objects: `10.0.0.11..13`
//! and any `10.244.x.y`).

use std::sync::Arc;

use serde_json::{Value, json};

use super::name_of;
use crate::controllers::nodes::FIXED_NODES;
use crate::error::GroupResource;
use crate::placement::qos_class;
use crate::state::SimState;
use crate::store::StoreInner;
use crate::util::now_rfc3339;

/// The kubelet's view of one pod.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PodPhase {
    /// Created, containers being created.
    Starting,
    /// Containers running, readiness failing.
    Unready,
    /// Running and ready.
    Ready,
}

/// A pod's status in `phase`, keeping its start time, IPs and condition
/// transition times.
pub fn pod_status(pod: &Value, phase: PodPhase, sim: &SimState, store: &StoreInner) -> Value {
    let previous = pod.get("status");
    let now = now_rfc3339();
    let kept = |key: &str| previous.and_then(|status| status.get(key)).cloned();
    let start_time = kept("startTime").unwrap_or_else(|| json!(now));
    let node = node_of(pod, store);
    let host_ip = node_ip(pod, node.as_deref());
    // `10.244.N.` of the node's `10.244.N.0/24`.
    let cidr_prefix = node
        .as_ref()
        .and_then(|node| node.pointer("/spec/podCIDR").and_then(Value::as_str))
        .and_then(|cidr| cidr.strip_suffix("0/24"))
        .map(str::to_string);
    let running = phase != PodPhase::Starting;
    // The IP comes with the sandbox, on first start.
    let pod_ip = kept("podIP").or_else(|| {
        running.then(|| {
            let (a, b) = sim.rng.with(|rng| (rng.below(250), 2 + rng.below(250)));
            match &cidr_prefix {
                Some(prefix) => json!(format!("{prefix}{b}")),
                None => json!(format!("10.244.{a}.{b}")),
            }
        })
    });
    let containers: Vec<Value> =
        pod.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();
    let names: Vec<&str> =
        containers.iter().filter_map(|container| container["name"].as_str()).collect();
    let ready = phase == PodPhase::Ready;
    let unready_message = format!("containers with unready status: [{}]", names.join(" "));
    let condition = |kind: &str, ok: bool, reason: Option<&str>| {
        let mut condition = json!({
            "type": kind,
            "status": if ok { "True" } else { "False" },
            "lastProbeTime": null,
            "lastTransitionTime": now,
        });
        let old = previous
            .and_then(|status| status.get("conditions"))
            .and_then(Value::as_array)
            .and_then(|conditions| conditions.iter().find(|old| old["type"] == kind));
        if let Some(old) = old
            && old["status"] == condition["status"]
        {
            condition["lastTransitionTime"] = old["lastTransitionTime"].clone();
        }
        if let Some(reason) = reason {
            condition["reason"] = json!(reason);
            condition["message"] = json!(unready_message);
        }
        condition
    };
    let not_ready = (!ready).then_some("ContainersNotReady");
    let conditions = json!([
        condition("PodReadyToStartContainers", running, None),
        condition("Initialized", true, None),
        condition("Ready", ready, not_ready),
        condition("ContainersReady", ready, not_ready),
        condition("PodScheduled", true, None),
    ]);
    let old_statuses = previous
        .and_then(|status| status.get("containerStatuses"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let container_statuses: Vec<Value> = containers
        .iter()
        .map(|container| {
            let name = container["name"].as_str().unwrap_or("");
            let image = container["image"].as_str().unwrap_or("");
            let old = old_statuses.iter().find(|old| old["name"] == name);
            let started_at = old
                .and_then(|old| old.pointer("/state/running/startedAt"))
                .cloned()
                .unwrap_or_else(|| json!(now));
            let mut status = json!({
                "name": name,
                "image": image,
                "imageID": "",
                "ready": ready,
                "restartCount": 0,
                "started": running,
                "lastState": {},
            });
            if running {
                status["state"] = json!({"running": {"startedAt": started_at}});
                status["imageID"] = json!(format!(
                    "{}@sha256:{}",
                    image.split(':').next().unwrap_or(image),
                    digest(image)
                ));
                status["containerID"] =
                    json!(format!("containerd://{}", digest(&format!("{}{name}", name_of(pod)))));
            } else {
                status["state"] = json!({"waiting": {"reason": "ContainerCreating"}});
            }
            status
        })
        .collect();
    let mut status = json!({
        "phase": if running { "Running" } else { "Pending" },
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": start_time,
        "containerStatuses": container_statuses,
        "qosClass": qos_class(&containers),
    });
    if running && let Some(pod_ip) = pod_ip {
        status["podIP"] = pod_ip.clone();
        status["podIPs"] = json!([{"ip": pod_ip}]);
    }
    status
}

/// The Node object a pod is bound to, if there is one.
fn node_of(pod: &Value, store: &StoreInner) -> Option<Arc<Value>> {
    let node_name = pod.pointer("/spec/nodeName").and_then(Value::as_str)?;
    store.get(&GroupResource::new("", "nodes"), "", node_name)
}

/// The IP of `node` (the Node object of the pod's `spec.nodeName`): its
/// InternalIP; without Node objects `10.0.0.11` for `sim-worker-1`, ...
fn node_ip(pod: &Value, node: Option<&Value>) -> String {
    let internal = node.and_then(|node| {
        node.pointer("/status/addresses")?.as_array()?.iter().find_map(|address| {
            (address["type"] == "InternalIP").then(|| address["address"].as_str()).flatten()
        })
    });
    match internal {
        Some(ip) => ip.to_string(),
        None => {
            let node_name = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
            let index = FIXED_NODES.iter().position(|known| *known == node_name).unwrap_or(0);
            format!("10.0.0.{}", index + 11)
        }
    }
}

/// The IP of the node a pod is bound to (see [`node_ip`]).
pub fn host_ip(pod: &Value, store: &StoreInner) -> String {
    node_ip(pod, node_of(pod, store).as_deref())
}

/// A stable 64-hex-digit digest of `text` (image and container ids).
fn digest(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut out = String::with_capacity(64);
    for round in 0u8..4 {
        for byte in text.bytes().chain([round]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.push_str(&format!("{hash:016x}"));
    }
    out
}
