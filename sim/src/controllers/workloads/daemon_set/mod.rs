//! The DaemonSet controller (`pkg/controller/daemon`): one pod per node
//! whose labels match the template's `nodeSelector` (`manage`, with
//! `podsShouldBeOnNode`'s rules for surplus and surged pods), a
//! RollingUpdate within `maxUnavailable` or `maxSurge` (`rollingUpdate`),
//! its revisions (`constructHistory`, `cleanupHistory`) and the status
//! `updateDaemonSetStatus` writes.
//!
//! `plan` holds one sync of the controller over the nodes and their pods
//! as arithmetic; `sync` repeats it until it asks for nothing more,
//! writing the status each one would.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

mod plan;

pub use plan::{DaemonSpec, NodePods, Plan, plan, status};

use super::history;
use super::pods::{self, PodView, REVISION_LABEL, owned_pods};
use super::{Ctx, Kind, Outcome, record_normal, write_status};
use crate::controllers::nodes::{node_labels, node_names};
use crate::controllers::owners::{controller_reference, is_deleting};
use crate::controllers::replica_sets::pod_from_template;
use crate::controllers::rollout::pod_template_hash;
use crate::store::StoreInner;
use crate::util::{metadata_mut, metadata_str};

/// The label of a pod's template generation (the deprecated way of
/// telling updated pods).
const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// The nodes and the DaemonSet's pods on each, oldest first.
fn node_pods(
    store: &StoreInner,
    spec: &DaemonSpec,
    daemon_set: &Value,
    pods: &[Arc<Value>],
    hash: &str,
    now_ms: u64,
) -> Vec<NodePods> {
    let selector = daemon_set
        .pointer("/spec/template/spec/nodeSelector")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut by_node: BTreeMap<String, NodePods> = node_names(store)
        .into_iter()
        .map(|node| {
            let labels = node_labels(store, &node);
            let should_run = selector.iter().all(|(key, value)| labels.get(key) == Some(value));
            (node.clone(), NodePods { node, should_run, pods: Vec::new() })
        })
        .collect();
    let mut unknown: Vec<NodePods> = Vec::new();
    let mut sorted: Vec<&Arc<Value>> = pods.iter().collect();
    sorted.sort_by_key(|pod| PodView::of(pod, 0, 0).created);
    for pod in sorted {
        let mut view = PodView::of(pod, spec.min_ready_seconds, now_ms);
        // A pod whose node cannot be told is not the controller's concern.
        let Some(node) = target_node(pod) else {
            continue;
        };
        view.node = node;
        let generation = pod
            .pointer(&format!("/metadata/labels/{TEMPLATE_GENERATION_LABEL}"))
            .and_then(Value::as_str);
        let updated = spec.is_updated(&view, generation, hash);
        match by_node.get_mut(&view.node) {
            Some(node) => node.pods.push((view, updated)),
            None => unknown.push(NodePods {
                node: view.node.clone(),
                should_run: false,
                pods: vec![(view, updated)],
            }),
        }
    }
    by_node.into_values().chain(unknown).collect()
}

/// `AddOrUpdateDaemonPodTolerations`: the tolerations every daemon pod
/// has, replacing any with the same key, operator, value and effect.
fn add_daemon_tolerations(spec: &mut Map<String, Value>) {
    let mut wanted = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        wanted.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    let Some(tolerations) = tolerations.as_array_mut() else {
        return;
    };
    for (key, effect) in wanted {
        let toleration = json!({"key": key, "operator": "Exists", "effect": effect});
        let matches = |existing: &Value| {
            existing["key"] == key
                && existing["effect"] == effect
                && existing["operator"] == "Exists"
                && existing
                    .get("value")
                    .is_none_or(|value| value.as_str().is_none_or(str::is_empty))
        };
        match tolerations.iter().position(matches) {
            Some(index) => tolerations[index] = toleration,
            None => tolerations.push(toleration),
        }
    }
}

/// A new daemon pod for `node` (`CreatePodTemplate` and the node affinity
/// that ties it to the node): left for the scheduler in a cluster with
/// nodes, else bound to `node` at once (no scheduler runs).
fn new_pod(ctx: &Ctx<'_>, daemon_set: &Value, spec: &DaemonSpec, hash: &str, node: &str) -> Value {
    let mut template = daemon_set.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    if let Some(pod_spec) = template.get_mut("spec").and_then(Value::as_object_mut) {
        add_daemon_tolerations(pod_spec);
        let affinity = pod_spec.entry("affinity").or_insert_with(|| json!({}));
        if let Some(affinity) = affinity.as_object_mut() {
            let node_affinity = affinity.entry("nodeAffinity").or_insert_with(|| json!({}));
            node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = json!({
                "nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [node]}
                ]}]
            });
        }
    }
    if let Some(metadata) = metadata_mut(&mut template) {
        let labels = metadata.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            if let Some(generation) = &spec.template_generation {
                labels.insert(TEMPLATE_GENERATION_LABEL.into(), json!(generation));
            }
            labels.insert(REVISION_LABEL.into(), json!(hash));
        }
    }
    let metadata = json!({
        "generateName": format!("{}-", metadata_str(daemon_set, "name").unwrap_or("")),
        "namespace": metadata_str(daemon_set, "namespace").unwrap_or(""),
        "ownerReferences": [controller_reference(daemon_set, "apps/v1", "DaemonSet")],
    });
    pod_from_template(&template, metadata, (!ctx.sim.has_nodes()).then_some(node))
}

/// The node a daemon pod is for (`GetTargetNodeName`): its `spec.nodeName`,
/// else, while it waits for the scheduler, the node its affinity names
/// (`matchFields` `metadata.name` `In` one value).
fn target_node(pod: &Value) -> Option<String> {
    let bound =
        pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|node| !node.is_empty());
    if let Some(node) = bound {
        return Some(node.to_string());
    }
    let terms = pod
        .pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")?
        .as_array()?;
    terms.iter().find_map(|term| {
        let fields = term.get("matchFields")?.as_array()?;
        let by_name = fields
            .iter()
            .find(|field| field["key"] == "metadata.name" && field["operator"] == "In")?;
        match by_name["values"].as_array()?.as_slice() {
            [only] => only.as_str().map(String::from),
            _ => None,
        }
    })
}

/// The current revision's hash, its revision created or renumbered as
/// the template requires, and the old revisions (`constructHistory`).
fn construct_history(
    ctx: &mut Ctx<'_>,
    store: &mut StoreInner,
    daemon_set: &Value,
) -> Option<(String, Vec<Arc<Value>>)> {
    let data = history::template_patch(daemon_set);
    let (current, old): (Vec<Arc<Value>>, Vec<Arc<Value>>) =
        history::owned(store, ctx.defs, daemon_set)
            .into_iter()
            .partition(|revision| revision.get("data") == Some(&data));
    let next = old.iter().map(|revision| history::number_of(revision)).max().unwrap_or(0) + 1;
    let current = match current.last() {
        None => {
            let hash = pod_template_hash(daemon_set);
            let revision =
                history::build(daemon_set, "DaemonSet", REVISION_LABEL, &hash, data, next);
            match history::create(ctx.sim, store, ctx.defs, revision) {
                Ok(created) => created,
                Err(error) => {
                    tracing::debug!(error = %error, "creating a DaemonSet revision failed");
                    return None;
                }
            }
        }
        Some(newest) => {
            for duplicate in &current[..current.len() - 1] {
                history::delete(store, ctx.defs, duplicate);
            }
            if history::number_of(newest) < next {
                history::renumber(store, ctx.defs, newest, next)
            } else {
                newest.clone()
            }
        }
    };
    let hash = current
        .pointer(&format!("/metadata/labels/{REVISION_LABEL}"))
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| metadata_str(&current, "name").map(String::from))?;
    Some((hash, old))
}

/// The component its Events come from.
const COMPONENT: &str = "daemonset-controller";

/// Syncs one DaemonSet: revisions, pods, status, history.
pub fn sync(ctx: &mut Ctx<'_>, store: &mut StoreInner, daemon_set: &Value) -> Outcome {
    if is_deleting(daemon_set) {
        return Outcome::default();
    }
    let spec = DaemonSpec::of(daemon_set);
    let name = metadata_str(daemon_set, "name").unwrap_or("").to_string();
    let namespace = metadata_str(daemon_set, "namespace").unwrap_or("").to_string();
    let Some((hash, old)) = construct_history(ctx, store, daemon_set) else {
        return Outcome::default();
    };
    let prefix = format!("{name}-");
    let (fail, good) = (ctx.knobs.fail, ctx.knobs.good.clone());
    let fails = move |revision: &str| fail && good.as_deref() != Some(revision);
    let generation =
        daemon_set.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    // Each round is one sync of the real controller: the status it writes
    // counts the pods it found, before its own creations and deletions.
    let mut rounds = 8 * (node_names(store).len() + 4);
    let (pods, nodes, status, next_start) = loop {
        let pods = owned_pods(store, ctx.defs, daemon_set, &prefix);
        let pod_fails = |pod: &Value| {
            let revision = pod.pointer(&format!("/metadata/labels/{REVISION_LABEL}"));
            fails(revision.and_then(Value::as_str).unwrap_or(""))
        };
        let next_start = pods::start_due(ctx, store, &pods, &pod_fails);
        let pods = owned_pods(store, ctx.defs, daemon_set, &prefix);
        let nodes = node_pods(store, &spec, daemon_set, &pods, &hash, ctx.now_ms);
        rounds = rounds.saturating_sub(1);
        let plan = if rounds == 0 { Plan::default() } else { plan(&spec, &nodes, false) };
        let status = status(daemon_set.get("status"), generation, &nodes);
        for pod_name in &plan.delete {
            if pods::delete(store, ctx.defs, &namespace, pod_name) && !ctx.settling {
                let message = format!("Deleted pod: {pod_name}");
                record_normal(ctx.sim, store, COMPONENT, daemon_set, "SuccessfulDelete", &message);
            }
        }
        for node in &plan.create {
            let pod = new_pod(ctx, daemon_set, &spec, &hash, node);
            if let Some(pod_name) = pods::create(ctx, store, pod, fails(&hash))
                && !ctx.settling
            {
                let message = format!("Created pod: {pod_name}");
                record_normal(ctx.sim, store, COMPONENT, daemon_set, "SuccessfulCreate", &message);
            }
        }
        if !ctx.settling || plan.is_empty() {
            write_status(ctx, store, Kind::DaemonSet, daemon_set, status.clone());
        }
        if plan.is_empty() {
            break (pods, nodes, status, next_start);
        }
    };
    clean_up_history(store, ctx, &spec, &pods, old);
    let number = |key: &str| status.get(key).and_then(Value::as_u64).unwrap_or(0);
    // The status as stored now (the latest round's).
    let desired = number("desiredNumberScheduled");
    let settled =
        number("updatedNumberScheduled") == desired && number("numberAvailable") == desired;
    let available_at = nodes
        .iter()
        .flat_map(|node| node.pods.iter().filter_map(|(view, _)| view.available_at))
        .min();
    Outcome {
        next_due: [next_start, available_at].into_iter().flatten().min(),
        settled_revision: settled.then_some(hash),
    }
}

/// Deletes old revisions beyond `revisionHistoryLimit` whose hash no pod
/// carries, lowest revision first (`cleanupHistory`).
fn clean_up_history(
    store: &mut StoreInner,
    ctx: &Ctx<'_>,
    spec: &DaemonSpec,
    pods: &[Arc<Value>],
    old: Vec<Arc<Value>>,
) {
    let mut to_kill = old.len().saturating_sub(spec.history_limit);
    let live = |revision: &Value| {
        let hash = revision.pointer(&format!("/metadata/labels/{REVISION_LABEL}"));
        pods.iter().any(|pod| pod.pointer(&format!("/metadata/labels/{REVISION_LABEL}")) == hash)
    };
    for revision in old {
        if to_kill == 0 {
            break;
        }
        if live(&revision) {
            continue;
        }
        history::delete(store, ctx.defs, &revision);
        to_kill -= 1;
    }
}
