//! The nodes workload pods run on: the `Node` objects in the store when
//! there are any, else the fixed workers the sim binds pods to when it
//! serves no nodes. DaemonSets take their nodes from here, and controllers
//! the node they bind a new pod to while no scheduler runs.

use serde_json::{Map, Value, json};

use crate::error::GroupResource;
use crate::state::SimState;
use crate::store::StoreInner;
use crate::util::metadata_str;

/// The workers pods are bound to while the store holds no `Node` objects.
pub const FIXED_NODES: [&str; 3] = ["sim-worker-1", "sim-worker-2", "sim-worker-3"];

fn nodes() -> GroupResource {
    GroupResource::new("", "nodes")
}

/// The names of the `Node` objects in the store, or [`FIXED_NODES`] when
/// there are none.
pub fn node_names(store: &StoreInner) -> Vec<String> {
    let stored: Vec<String> = store
        .list(&nodes(), None)
        .iter()
        .filter_map(|node| metadata_str(node, "name").map(String::from))
        .collect();
    if stored.is_empty() {
        FIXED_NODES.iter().map(|name| name.to_string()).collect()
    } else {
        stored
    }
}

/// The node a controller binds a pod it creates to itself, one of `names`
/// at random, as the sim does without `SimConfig::nodes` (no scheduler
/// runs); `None` in a cluster with nodes, where the pod is created unbound
/// and the scheduler places it.
pub fn self_bound_node<S: AsRef<str>>(sim: &SimState, names: &[S]) -> Option<String> {
    if sim.has_nodes() || names.is_empty() {
        return None;
    }
    let index = sim.rng.with(|rng| rng.below(names.len() as u64)) as usize;
    names.get(index).map(|name| name.as_ref().to_string())
}

/// A node's labels: its object's, or for a fixed worker the labels a
/// kubelet registers its node with (hostname, OS, architecture).
pub fn node_labels(store: &StoreInner, name: &str) -> Map<String, Value> {
    if let Some(node) = store.get(&nodes(), "", name) {
        return node
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
    }
    let labels = json!({
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    });
    labels.as_object().cloned().unwrap_or_default()
}
