//! One sync of the DaemonSet controller as pure arithmetic over the nodes
//! and their pods: what `manage` (`podsShouldBeOnNode`) and
//! `rollingUpdate` create and delete (`plan`), the status
//! `updateDaemonSetStatus` writes (`status`), and the spec it reads
//! (`DaemonSpec`, with the update limits). Nodes are visited in name order
//! where the real controller walks a Go map.

use serde_json::{Map, Value, json};

use super::super::int_or_percent;
use super::super::pods::PodView;
use crate::validation::TEMPLATE_GENERATION_ANNOTATION;

/// What the controller reads of a DaemonSet's spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    /// `updateStrategy.type: RollingUpdate` (else `OnDelete`).
    pub rolling: bool,
    /// `rollingUpdate.maxUnavailable` / `maxSurge` as written.
    pub max_unavailable: Option<Value>,
    pub max_surge: Option<Value>,
    pub min_ready_seconds: u64,
    pub history_limit: usize,
    /// The `deprecated.daemonset.template.generation` annotation.
    pub template_generation: Option<String>,
}

impl DaemonSpec {
    pub fn of(daemon_set: &Value) -> DaemonSpec {
        let spec = |pointer: &str| daemon_set.pointer(&format!("/spec{pointer}"));
        let rolling_update = spec("/updateStrategy/rollingUpdate");
        let limit = |key: &str| rolling_update.and_then(|rolling| rolling.get(key)).cloned();
        DaemonSpec {
            rolling: spec("/updateStrategy/type").and_then(Value::as_str) == Some("RollingUpdate"),
            max_unavailable: limit("maxUnavailable"),
            max_surge: limit("maxSurge"),
            min_ready_seconds: spec("/minReadySeconds").and_then(Value::as_u64).unwrap_or(0),
            history_limit: spec("/revisionHistoryLimit").and_then(Value::as_u64).unwrap_or(10)
                as usize,
            template_generation: daemon_set
                .pointer("/metadata/annotations")
                .and_then(|annotations| annotations.get(TEMPLATE_GENERATION_ANNOTATION))
                .and_then(Value::as_str)
                .map(String::from),
        }
    }

    /// (maxSurge, maxUnavailable) in pods for `desired` nodes
    /// (`updatedDesiredNodeCounts`: rounded up; 1 unavailable when both
    /// are 0).
    pub fn limits(&self, desired: u64) -> (u64, u64) {
        if !self.rolling {
            return (0, 0);
        }
        let resolve = |value: &Option<Value>| {
            value.as_ref().map_or(0, |value| int_or_percent(value, desired, true))
        };
        let surge = resolve(&self.max_surge);
        let mut unavailable = resolve(&self.max_unavailable);
        if desired > 0 && surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        (surge, unavailable)
    }

    /// Whether more than one pod may run on a node during an update.
    fn allows_surge(&self) -> bool {
        self.limits(1).0 > 0
    }

    /// `IsPodUpdated`: the pod carries the current hash, or the current
    /// template generation.
    pub fn is_updated(&self, view: &PodView, generation_label: Option<&str>, hash: &str) -> bool {
        (!hash.is_empty() && view.revision == hash)
            || self
                .template_generation
                .as_deref()
                .is_some_and(|generation| generation_label == Some(generation))
    }

    /// How many batches a rollout over `desired` nodes takes.
    pub fn steps(&self, desired: u64) -> u64 {
        let (surge, unavailable) = self.limits(desired);
        let batch = if surge > 0 { surge } else { unavailable.max(1) };
        desired.div_ceil(batch).max(1)
    }
}

/// One node as a sync sees it.
#[derive(Debug, Clone)]
pub struct NodePods {
    pub node: String,
    /// The template's `nodeSelector` matches the node.
    pub should_run: bool,
    /// Its daemon pods, oldest first, each with whether it is updated.
    pub pods: Vec<(PodView, bool)>,
}

/// What one sync does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Nodes to create a pod on.
    pub create: Vec<String>,
    /// Pods to delete.
    pub delete: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.delete.is_empty()
    }
}

/// `podsShouldBeOnNode` for every node; pods on unknown nodes go too (as
/// the pod garbage collector removes them).
fn manage(spec: &DaemonSpec, nodes: &[NodePods], plan: &mut Plan) {
    for node in nodes {
        let live: Vec<&(PodView, bool)> =
            node.pods.iter().filter(|(view, _)| !view.deleting).collect();
        if node.should_run && node.pods.is_empty() {
            plan.create.push(node.node.clone());
            continue;
        }
        if !node.should_run {
            plan.delete.extend(live.iter().map(|(view, _)| view.name.clone()));
            continue;
        }
        let (finished, running): (Vec<_>, Vec<_>) = live
            .into_iter()
            .partition(|(view, _)| matches!(view.phase.as_str(), "Failed" | "Succeeded"));
        plan.delete.extend(finished.iter().map(|(view, _)| view.name.clone()));
        if !spec.allows_surge() {
            plan.delete.extend(running.iter().skip(1).map(|(view, _)| view.name.clone()));
            continue;
        }
        if running.len() <= 1 {
            if running.is_empty() {
                plan.create.push(node.node.clone());
            }
            continue;
        }
        let (mut oldest_new, mut oldest_old) = (None, None);
        for (view, updated) in running {
            let slot = if *updated { &mut oldest_new } else { &mut oldest_old };
            match slot {
                None => *slot = Some(view),
                Some(_) => plan.delete.push(view.name.clone()),
            }
        }
        if let (Some(new), Some(old)) = (oldest_new, oldest_old)
            && (!old.ready || new.available)
        {
            plan.delete.push(old.name.clone());
        }
    }
}

/// `findUpdatedPodsOnNode`: the node's one updated and one old pod, or
/// `None` when it has more than one of either.
fn updated_and_old(node: &NodePods) -> Option<(Option<&PodView>, Option<&PodView>)> {
    let (mut new, mut old) = (None, None);
    for (view, updated) in node.pods.iter().filter(|(view, _)| !view.deleting) {
        let slot = if *updated { &mut new } else { &mut old };
        if slot.is_some() {
            return None;
        }
        *slot = Some(view);
    }
    Some((new, old))
}

/// `rollingUpdate` over the nodes (after `manage` had nothing to do).
fn rolling_update(spec: &DaemonSpec, nodes: &[NodePods], plan: &mut Plan) {
    let considered: Vec<&NodePods> =
        nodes.iter().filter(|node| node.should_run || !node.pods.is_empty()).collect();
    let desired = nodes.iter().filter(|node| node.should_run).count() as u64;
    let (max_surge, max_unavailable) = spec.limits(desired);
    if max_surge == 0 {
        let mut unavailable = 0;
        let mut candidates = Vec::new();
        for node in &considered {
            let Some((new, old)) = updated_and_old(node) else {
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(new), None) => unavailable += u64::from(!new.available),
                (None, Some(old)) if !old.available => {
                    plan.delete.push(old.name.clone());
                    unavailable += 1;
                }
                (None, Some(_)) if unavailable >= max_unavailable => {}
                (None, Some(old)) => candidates.push(old.name.clone()),
            }
        }
        let room = max_unavailable.saturating_sub(unavailable) as usize;
        plan.delete.extend(candidates.into_iter().take(room));
        return;
    }
    let (mut surge, mut available) = (0, 0);
    let (mut allowed, mut candidates, mut sunset) = (Vec::new(), Vec::new(), Vec::new());
    for node in &considered {
        let Some((new, old)) = updated_and_old(node) else {
            surge += 1;
            continue;
        };
        match (old, new) {
            (Some(old), _) => available += u64::from(old.available),
            (None, Some(new)) => available += u64::from(new.available),
            (None, None) => {}
        }
        match (old, new) {
            (None, _) => {}
            (Some(old), None) if !old.available => {
                if node.should_run {
                    allowed.push(node.node.clone());
                } else {
                    plan.delete.push(old.name.clone());
                }
            }
            (Some(old), None) => {
                if !node.should_run {
                    sunset.push(old.name.clone());
                } else if surge < max_surge {
                    candidates.push(node.node.clone());
                }
            }
            (Some(_), Some(new)) if !new.available => surge += 1,
            (Some(old), Some(_)) => plan.delete.push(old.name.clone()),
        }
    }
    let deletable = available.saturating_sub(desired) as usize;
    plan.delete.extend(sunset.into_iter().take(deletable));
    let room = max_surge.saturating_sub(surge) as usize;
    plan.create.extend(allowed);
    plan.create.extend(candidates.into_iter().take(room));
}

/// One sync (`manage`, then `rollingUpdate` once nothing is pending).
pub fn plan(spec: &DaemonSpec, nodes: &[NodePods], deleting: bool) -> Plan {
    let mut plan = Plan::default();
    if deleting {
        return plan;
    }
    manage(spec, nodes, &mut plan);
    if plan.is_empty() && spec.rolling {
        rolling_update(spec, nodes, &mut plan);
    }
    plan
}

/// The status `updateDaemonSetStatus` writes, over the stored one (whose
/// other fields it keeps).
pub fn status(stored: Option<&Value>, generation: i64, nodes: &[NodePods]) -> Value {
    let (mut desired, mut current, mut misscheduled) = (0, 0, 0);
    let (mut ready, mut available, mut updated) = (0, 0, 0);
    for node in nodes {
        let oldest = node.pods.first();
        if !node.should_run {
            misscheduled += u64::from(oldest.is_some());
            continue;
        }
        desired += 1;
        let Some((view, is_updated)) = oldest else {
            continue;
        };
        current += 1;
        if view.ready {
            ready += 1;
            available += u64::from(view.available);
        }
        updated += u64::from(*is_updated);
    }
    let mut status: Map<String, Value> =
        stored.and_then(Value::as_object).cloned().unwrap_or_default();
    status.insert("observedGeneration".into(), json!(generation));
    status.insert("desiredNumberScheduled".into(), json!(desired));
    status.insert("currentNumberScheduled".into(), json!(current));
    status.insert("numberMisscheduled".into(), json!(misscheduled));
    status.insert("numberReady".into(), json!(ready));
    for (key, value) in [
        ("updatedNumberScheduled", updated),
        ("numberAvailable", available),
        ("numberUnavailable", desired - available),
    ] {
        if value > 0 {
            status.insert(key.into(), json!(value));
        } else {
            status.remove(key);
        }
    }
    Value::Object(status)
}
