//! Where a pod goes: the `NodeAffinity` pre-filter (nodes a DaemonSet's pod
//! is not for: "node(s) didn't satisfy plugin(s) [NodeAffinity]"), the
//! filters of the default scheduler that the sim's nodes can fail, in the
//! scheduler's order, each node failing on the first
//! (`NodeUnschedulable`: "node(s) were unschedulable", unless the pod
//! tolerates it; `NodeAffinity`: "node(s) didn't match Pod's node
//! affinity/selector"; `NodeResourcesFit`: "Too many pods", "Insufficient
//! cpu", "Insufficient memory"), then the `LeastAllocated` score (the mean
//! free share of CPU and memory after placing the pod; ties go to the first
//! node by name, where the real scheduler picks among them at random). A
//! pod no node takes gets the scheduler's `FitError` message, with the
//! preemption summary of a cluster where every pod has the same priority.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::affinity::NodeConstraints;
use super::cache::{NodeCache, NodeView};
use super::resources::{Resources, pod_requests};

/// Why the `NodeAffinity` pre-filter leaves a node out.
const NOT_NAMED: &str = "node(s) didn't satisfy plugin(s) [NodeAffinity]";
/// The pre-filter's answer when the terms name no node in common.
const TERMS_CONFLICT: &str = "pod affinity terms conflict";
/// Preemption cannot help on a node the pod can never go to.
const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";

/// What a pod asks of the nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Its requests (see `resources`).
    pub requests: Resources,
    /// Its node selector, affinity and cordon toleration.
    pub constraints: NodeConstraints,
    /// Its `preemptionPolicy` is `Never`.
    pub preemption_never: bool,
}

impl Needs {
    /// What `pod` asks.
    pub fn of(pod: &Value) -> Needs {
        Needs {
            requests: pod_requests(pod),
            constraints: NodeConstraints::of(pod),
            preemption_never: pod.pointer("/spec/preemptionPolicy").and_then(Value::as_str)
                == Some("Never"),
        }
    }
}

/// Why a pod fits no node, counted over the nodes as the scheduler words it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FitError {
    /// How many nodes there are.
    pub node_count: usize,
    /// Filter reasons and on how many nodes each failed.
    pub reasons: BTreeMap<String, usize>,
    /// What preemption found, per reason, on how many nodes.
    pub preemption: BTreeMap<String, usize>,
    /// The pre-filter turned the pod away before any node was looked at.
    pub pre_filter: Option<&'static str>,
    /// The pod's `preemptionPolicy` is `Never`.
    pub preemption_never: bool,
}

/// `"<count> <reason>"` sorted as strings, as the scheduler sorts them.
fn histogram(reasons: &BTreeMap<String, usize>) -> String {
    let mut parts: Vec<String> =
        reasons.iter().map(|(reason, count)| format!("{count} {reason}")).collect();
    parts.sort();
    parts.join(", ")
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes = self.node_count;
        if nodes == 0 {
            return write!(f, "no nodes available to schedule pods");
        }
        match self.pre_filter {
            Some(message) => write!(f, "0/{nodes} nodes are available: {message}.")?,
            None => write!(f, "0/{nodes} nodes are available: {}.", histogram(&self.reasons))?,
        }
        if self.preemption_never {
            write!(f, " preemption: not eligible due to preemptionPolicy=Never.")
        } else {
            write!(
                f,
                " preemption: 0/{nodes} nodes are available: {}.",
                histogram(&self.preemption)
            )
        }
    }
}

/// What one node says to a pod: the reasons it fails, and whether evicting
/// pods could ever make room there (a request beyond the node's whole
/// allocatable, a cordoned node or one the pod is not for cannot be
/// helped).
fn filter(node: &NodeView, needs: &Needs) -> (Vec<&'static str>, bool) {
    if node.unschedulable && !needs.constraints.tolerates_unschedulable() {
        return (vec!["node(s) were unschedulable"], false);
    }
    if !needs.constraints.matches(node) {
        return (vec!["node(s) didn't match Pod's node affinity/selector"], false);
    }
    let requests = needs.requests;
    let mut reasons = Vec::new();
    let mut resolvable = true;
    if node.pods + 1 > node.max_pods {
        reasons.push("Too many pods");
    }
    let free = node.allocatable.saturating_sub(node.requested);
    if requests.cpu_millis > 0 && requests.cpu_millis > free.cpu_millis {
        reasons.push("Insufficient cpu");
        resolvable &= requests.cpu_millis <= node.allocatable.cpu_millis;
    }
    if requests.memory_bytes > 0 && requests.memory_bytes > free.memory_bytes {
        reasons.push("Insufficient memory");
        resolvable &= requests.memory_bytes <= node.allocatable.memory_bytes;
    }
    (reasons, resolvable)
}

/// The `LeastAllocated` score of a node that takes the pod (0 to 100).
fn score(node: &NodeView, requests: Resources) -> u64 {
    let share = |allocatable: u64, used: u64| {
        (allocatable.saturating_sub(used) * 100).checked_div(allocatable).unwrap_or(0)
    };
    let after = node.requested + requests;
    (share(node.allocatable.cpu_millis, after.cpu_millis)
        + share(node.allocatable.memory_bytes, after.memory_bytes))
        / 2
}

/// The node a pod with `needs` goes to, or why none takes it.
pub fn place(cache: &NodeCache, needs: &Needs) -> Result<String, FitError> {
    let mut best: Option<(&NodeView, u64)> = None;
    let mut reasons = BTreeMap::new();
    let mut preemption = BTreeMap::new();
    let candidates = needs.constraints.candidates();
    let unfit = |reasons, preemption, pre_filter| FitError {
        node_count: cache.node_count(),
        reasons,
        preemption,
        pre_filter,
        preemption_never: needs.preemption_never,
    };
    if candidates.as_ref().is_some_and(|names| names.is_empty()) {
        let preemption = BTreeMap::from([(NOT_HELPFUL.to_string(), cache.node_count())]);
        return Err(unfit(BTreeMap::new(), preemption, Some(TERMS_CONFLICT)));
    }
    let requests = needs.requests;
    for node in cache.nodes() {
        if candidates.as_ref().is_some_and(|names| !names.contains(&node.name)) {
            *reasons.entry(NOT_NAMED.to_string()).or_insert(0) += 1;
            *preemption.entry(NOT_HELPFUL.to_string()).or_insert(0) += 1;
            continue;
        }
        let (failed, resolvable) = filter(node, needs);
        if failed.is_empty() {
            let score = score(node, requests);
            if best.is_none_or(|(_, best_score)| score > best_score) {
                best = Some((node, score));
            }
            continue;
        }
        for reason in failed {
            *reasons.entry(reason.to_string()).or_insert(0) += 1;
        }
        let outcome =
            if resolvable { "No preemption victims found for incoming pod" } else { NOT_HELPFUL };
        *preemption.entry(outcome.to_string()).or_insert(0) += 1;
    }
    match best {
        Some((node, _)) => Ok(node.name.clone()),
        None => Err(unfit(reasons, preemption, None)),
    }
}
