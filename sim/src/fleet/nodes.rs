//! The generated cluster's nodes (`SimConfig::nodes`): identical workers
//! `sim-worker-1..N` sized to the generated fleet, the Node objects their
//! kubelets would register (capacity, allocatable, conditions, addresses,
//! system info) and their heartbeat Leases in `kube-node-lease`.
//!
//! Sizing: every node runs one pod of each generated DaemonSet; the pods of
//! the generated Deployments and StatefulSets are spread over the nodes
//! largest first, each to the node with the least CPU requested so far;
//! every node then gets `(fleet CPU requests + spare) / N` millicores,
//! rounded up (or the fullest node's load, should the pods not spread that
//! evenly), so that exactly the spare CPU is left over in total, up to that
//! rounding.
//! Memory is generous (twice the fullest node's requests, at least 8 GiB)
//! and so are pod slots (at least the kubelet's default 110).

use serde_json::{Value, json};

use crate::error::SimError;
use crate::placement::{Resources, spec_requests};
use crate::quantity::{format_bytes, format_cpu};
use crate::state::SimState;
use crate::store::StoreInner;
use crate::util::{Rng, now_rfc3339};
use crate::write::{self, WriteOptions};

/// Spare CPU per node when `SimConfig::spare_cpu_millis` is not set.
pub const DEFAULT_SPARE_CPU_PER_NODE_MILLIS: u64 = 2_000;
/// The namespace of the nodes' heartbeat Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// What the kubelet reserves below memory capacity (its eviction threshold).
const MEMORY_RESERVED_BYTES: u64 = 100 * 1024 * 1024;
const GIB: u64 = 1024 * 1024 * 1024;

/// The name of node `index` (1-based).
pub fn node_name(index: usize) -> String {
    format!("sim-worker-{index}")
}

/// The InternalIP of node `index` (1-based): `10.0.0.11` for the first.
pub fn node_ip(index: usize) -> String {
    let host = 10 + index;
    format!("10.0.{}.{}", host / 256, host % 256)
}

/// The nodes of a generated cluster and where the fleet's pods run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// How many nodes.
    pub count: usize,
    /// Allocatable CPU and memory of each node.
    pub allocatable: Resources,
    /// Allocatable pod slots of each node.
    pub max_pods: u64,
    /// Per replicated workload (Deployment or StatefulSet), per replica:
    /// the index (0-based) of its node.
    pub placements: Vec<Vec<usize>>,
    /// Per replicated workload: one pod's requests.
    pub requests: Vec<Resources>,
}

impl NodePlan {
    /// Names of the nodes a replicated workload's replicas run on.
    pub fn nodes_of(&self, workload: usize) -> Vec<String> {
        self.placements
            .get(workload)
            .map(|nodes| nodes.iter().map(|node| node_name(node + 1)).collect())
            .unwrap_or_default()
    }
}

/// One pod's requests of a workload's template.
fn template_requests(workload: &Value) -> Resources {
    workload.pointer("/spec/template/spec").map(spec_requests).unwrap_or_default()
}

/// Sizes `count` nodes for the pods of `replicated` (Deployments and
/// StatefulSets, `spec.replicas` each) and of `daemons` (DaemonSets, one pod
/// on every node) with `spare_cpu_millis` left over.
pub fn plan(
    count: usize,
    spare_cpu_millis: u64,
    replicated: &[Value],
    daemons: &[Value],
) -> NodePlan {
    let count = count.max(1);
    let requests: Vec<Resources> = replicated.iter().map(template_requests).collect();
    let mut pods: Vec<(usize, usize)> = replicated
        .iter()
        .enumerate()
        .flat_map(|(index, workload)| {
            let replicas = workload.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1);
            (0..replicas as usize).map(move |replica| (index, replica))
        })
        .collect();
    pods.sort_by(|a, b| requests[b.0].cpu_millis.cmp(&requests[a.0].cpu_millis));
    let per_node =
        daemons.iter().map(template_requests).fold(Resources::default(), |sum, one| sum + one);
    let mut loads = vec![(per_node, daemons.len() as u64); count];
    let mut placements: Vec<Vec<usize>> = replicated.iter().map(|_| Vec::new()).collect();
    for (deployment, _) in pods {
        let node = (0..count)
            .min_by_key(|node| (loads[*node].0.cpu_millis, loads[*node].1, *node))
            .unwrap_or(0);
        loads[node].0 += requests[deployment];
        loads[node].1 += 1;
        placements[deployment].push(node);
    }
    let total_cpu: u64 = loads.iter().map(|(load, _)| load.cpu_millis).sum();
    let fullest_cpu = loads.iter().map(|(load, _)| load.cpu_millis).max().unwrap_or(0);
    let fullest_memory = loads.iter().map(|(load, _)| load.memory_bytes).max().unwrap_or(0);
    let fullest_pods = loads.iter().map(|(_, pods)| *pods).max().unwrap_or(0);
    let cpu_millis = (total_cpu + spare_cpu_millis).div_ceil(count as u64).max(fullest_cpu);
    let memory_bytes = (2 * fullest_memory).max(8 * GIB).div_ceil(GIB) * GIB;
    NodePlan {
        count,
        allocatable: Resources { cpu_millis, memory_bytes },
        max_pods: (2 * fullest_pods).max(110),
        placements,
        requests,
    }
}

/// A node's Node object as its kubelet registers it.
fn node_object(plan: &NodePlan, index: usize, ids: &mut Rng) -> Value {
    let name = node_name(index);
    let now = now_rfc3339();
    let allocatable = plan.allocatable;
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": kind, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        })
    };
    let pod_cidr = format!("10.244.{index}.0/24");
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
            },
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
        "status": {
            "capacity": {
                "cpu": format_cpu(allocatable.cpu_millis.div_ceil(1000) * 1000),
                "ephemeral-storage": "102626232Ki",
                "hugepages-1Gi": "0",
                "hugepages-2Mi": "0",
                "memory": format_bytes(allocatable.memory_bytes + MEMORY_RESERVED_BYTES),
                "pods": plan.max_pods.to_string(),
            },
            "allocatable": {
                "cpu": format_cpu(allocatable.cpu_millis),
                "ephemeral-storage": "94580335255",
                "hugepages-1Gi": "0",
                "hugepages-2Mi": "0",
                "memory": format_bytes(allocatable.memory_bytes),
                "pods": plan.max_pods.to_string(),
            },
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": node_ip(index)},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": format!("{:016x}{:016x}", ids.next_u64(), ids.next_u64()),
                "systemUUID": ids.uuid(),
                "bootID": ids.uuid(),
                "kernelVersion": "6.1.0-28-cloud-amd64",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": "containerd://1.7.24",
                "kubeletVersion": "v1.32.0",
                "kubeProxyVersion": "v1.32.0",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    })
}

/// The heartbeat Lease of a node, owned by it.
fn lease_object(node: &Value) -> Value {
    let name = node.pointer("/metadata/name").cloned().unwrap_or(Value::Null);
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": NODE_LEASE_NAMESPACE,
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Node", "name": name,
                "uid": node.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
            }],
        },
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now},
    })
}

/// Registers the planned nodes and their Leases (the Lease namespace must
/// exist).
pub fn register(
    sim: &SimState,
    store: &mut StoreInner,
    plan: &NodePlan,
    seed: u64,
) -> Result<(), SimError> {
    let (Some(nodes), Some(leases)) = (
        store.registry.get("", "v1", "nodes"),
        store.registry.get("coordination.k8s.io", "v1", "leases"),
    ) else {
        return Ok(());
    };
    // A generator of their own, so that the fleet's draws stay the same.
    let mut ids = Rng::new(seed.wrapping_add(0x70de));
    for index in 1..=plan.count {
        let node = node_object(plan, index, &mut ids);
        let node =
            write::create(store, &sim.rng, &nodes, None, node, &WriteOptions::internal("kubelet"))?;
        let lease = lease_object(&node);
        write::create(
            store,
            &sim.rng,
            &leases,
            Some(NODE_LEASE_NAMESPACE),
            lease,
            &WriteOptions::internal("kubelet"),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(replicas: u64, cpu: &str) -> Value {
        json!({"spec": {"replicas": replicas, "template": {"spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}
        ]}}}})
    }

    #[test]
    fn nodes_fit_the_fleet_with_exactly_the_spare_left() {
        let fleet = [deployment(3, "500m"), deployment(2, "300m"), deployment(1, "100m")];
        let plan = plan(3, 1500, &fleet, &[]);
        // 1500m + 600m + 100m = 2200m of requests, plus 1500m spare over 3 nodes.
        assert_eq!(plan.allocatable.cpu_millis, 1234);
        let total: u64 = 3 * plan.allocatable.cpu_millis;
        assert_eq!(total - 2200, 1502, "the spare, up to rounding to a millicore per node");
        assert_eq!(plan.placements[0], vec![0, 1, 2], "largest pods first, spread");
        let mut loads = [0u64; 3];
        for (deployment, nodes) in plan.placements.iter().enumerate() {
            for node in nodes {
                loads[*node] += plan.requests[deployment].cpu_millis;
            }
        }
        assert!(loads.iter().all(|load| *load <= plan.allocatable.cpu_millis), "{loads:?}");
        assert_eq!(plan.max_pods, 110);
        assert_eq!(plan.allocatable.memory_bytes, 8 * GIB);
    }

    #[test]
    fn a_fleet_that_does_not_spread_evenly_gets_its_fullest_node() {
        let plan = plan(2, 0, &[deployment(1, "2"), deployment(1, "100m")], &[]);
        assert_eq!(plan.allocatable.cpu_millis, 2000);
        assert_eq!(plan.nodes_of(0), vec!["sim-worker-1"]);
        assert_eq!(plan.nodes_of(1), vec!["sim-worker-2"]);
    }

    #[test]
    fn daemon_pods_take_their_share_of_every_node() {
        let daemon = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "agent", "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}
        ]}}}});
        let plan = plan(2, 1000, &[deployment(2, "300m")], &[daemon.clone(), daemon]);
        // 600m of replicas and 2 x 2 x 50m of daemons, plus 1000m spare over 2 nodes.
        assert_eq!(plan.allocatable.cpu_millis, 900);
        assert_eq!(plan.placements[0], vec![0, 1], "the replicas spread over both nodes");
    }

    #[test]
    fn node_addresses() {
        assert_eq!(node_ip(1), "10.0.0.11");
        assert_eq!(node_ip(300), "10.0.1.54");
    }
}
