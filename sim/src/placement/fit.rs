//! Where a pod goes: the filters of the default scheduler that the sim's
//! nodes can fail (`NodeUnschedulable`: "node(s) were unschedulable";
//! `NodeResourcesFit`: "Too many pods", "Insufficient cpu", "Insufficient
//! memory"), then the `LeastAllocated` score (the mean free share of CPU
//! and memory after placing the pod; ties go to the first node by name,
//! where the real scheduler picks among them at random). A pod no node
//! takes gets the scheduler's `FitError` message, with the preemption
//! summary of a cluster where every pod has the same priority.

use std::collections::BTreeMap;
use std::fmt;

use super::cache::{NodeCache, NodeView};
use super::resources::Resources;

/// Why a pod fits no node, counted over the nodes as the scheduler words it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FitError {
    /// How many nodes there are.
    pub node_count: usize,
    /// Filter reasons and on how many nodes each failed.
    pub reasons: BTreeMap<String, usize>,
    /// What preemption found, per reason, on how many nodes.
    pub preemption: BTreeMap<String, usize>,
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
        write!(f, "0/{nodes} nodes are available: {}.", histogram(&self.reasons))?;
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
/// allocatable, or a cordoned node, cannot be helped).
fn filter(node: &NodeView, requests: Resources) -> (Vec<&'static str>, bool) {
    if node.unschedulable {
        return (vec!["node(s) were unschedulable"], false);
    }
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

/// The node a pod with `requests` goes to, or why none takes it.
/// `preemption_never`: the pod's `preemptionPolicy` is `Never`.
pub fn place(
    cache: &NodeCache,
    requests: Resources,
    preemption_never: bool,
) -> Result<String, FitError> {
    let mut best: Option<(&NodeView, u64)> = None;
    let mut reasons = BTreeMap::new();
    let mut preemption = BTreeMap::new();
    for node in cache.nodes() {
        let (failed, resolvable) = filter(node, requests);
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
        let outcome = if resolvable {
            "No preemption victims found for incoming pod"
        } else {
            "Preemption is not helpful for scheduling"
        };
        *preemption.entry(outcome.to_string()).or_insert(0) += 1;
    }
    match best {
        Some((node, _)) => Ok(node.name.clone()),
        None => {
            Err(FitError { node_count: cache.node_count(), reasons, preemption, preemption_never })
        }
    }
}
