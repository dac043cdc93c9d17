//! The ReplicaSets and Pods of a Deployment, derived from its rollout plan:
//! the rollout model stays the source of truth for the Deployment's status,
//! and this module makes the objects a real cluster would show agree with
//! it, as the real Deployment controller, ReplicaSet controller, scheduler
//! and kubelet would have written them.
//!
//! - The new ReplicaSet is `<deployment>-<pod-template-hash>`, with the
//!   `pod-template-hash` label on itself, its selector and its template,
//!   an owner reference to the Deployment, the Deployment's annotations,
//!   and the `deployment.kubernetes.io/revision` (plus `revision-history`
//!   when an old ReplicaSet is reused, as `kubectl rollout undo` causes),
//!   `desired-replicas` and `max-replicas` annotations.
//! - It holds `updatedReplicas` pods, the ready ones of them Running and
//!   Ready. The old pods stay with the ReplicaSets that held them when the
//!   rollout began and go oldest ReplicaSet first, as the real controller
//!   scales old ReplicaSets down.
//! - Every change of a ReplicaSet's size records the Deployment controller's
//!   `ScalingReplicaSet` Event; zero-sized old ReplicaSets beyond
//!   `revisionHistoryLimit` are deleted once a rollout completes.
//!
//! Pods are created by the "ReplicaSet controller" (`kube-controller-
//! manager`) already bound to a node (where the scheduler places them; with
//! `SimConfig::nodes`, a pod no node takes stays `Pending` and
//! `Unschedulable` until the scheduler binds it), and their status is
//! written by the "kubelet": `Pending` (ContainerCreating) until the model
//! makes them ready, then `Running` and `Ready`; a failing rollout's pods
//! run but never become ready. [`unbound_new_pods`] tells the Deployment
//! controller how many new pods wait for a node, which its rollout model
//! takes in.
//!
//! This module plans and reconciles; `pods` keeps a ReplicaSet's pods,
//! `objects` builds what the controllers create, `kubelet` the pod statuses,
//! `scaling` sizes the ReplicaSets, `materialize` makes the objects of
//! Deployments found settled, `events` records the Events.

mod events;
mod kubelet;
mod materialize;
mod objects;
mod pods;
mod scaling;

use std::sync::Arc;

use serde_json::{Map, Value, json};

pub use kubelet::{PodPhase, host_ip};
use materialize::materialize_previous;
pub use materialize::materialize_settled;
pub use objects::pod_from_template;
use pods::owned_pods;
pub use pods::{is_bound, is_ready as is_pod_ready, set_pod_phase};
use scaling::{ensure_new_replica_set, ensure_old_replica_set};

use super::owners::{is_controlled_by, is_deleting};
use super::rollout::{PodCounts, RolloutPlan};
use crate::error::{ApiError, GroupResource};
use crate::registry::ResourceDef;
use crate::state::SimState;
use crate::store::StoreInner;
use crate::util::metadata_str;
use crate::write::{self, DeleteOptions, DeletePreconditions, WriteOptions};

/// The revision of a Deployment (on it and on its ReplicaSets).
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The earlier revisions of a reused ReplicaSet.
const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// The label that ties a ReplicaSet and its pods to one pod template.
pub const HASH_LABEL: &str = "pod-template-hash";
/// Deployment annotations a ReplicaSet does not copy.
const ANNOTATIONS_NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    "deprecated.deployment.rollback.to",
];
/// The longest `revision-history` annotation the real controller keeps.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// The field manager of the Deployment and ReplicaSet controllers.
const CONTROLLER_MANAGER: &str = "kube-controller-manager";
/// The field manager of pod status writes.
const KUBELET: &str = "kubelet";

fn replica_sets() -> GroupResource {
    GroupResource::new("apps", "replicasets")
}

fn pods() -> GroupResource {
    GroupResource::new("", "pods")
}

/// How a rollout uses ReplicaSets, fixed when it begins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Workload {
    /// The new ReplicaSet's name; `None` while a paused Deployment's
    /// template changed (no new ReplicaSet is created).
    pub new_rs: Option<String>,
    /// The new ReplicaSet's revision (the Deployment's revision annotation).
    pub revision: u64,
    /// The other ReplicaSets when the rollout began, oldest first, with the
    /// pods each keeps at the start (together the plan's old pods).
    pub old: Vec<(String, u64)>,
}

/// The resource definitions the derived objects are written through.
pub struct Defs {
    replica_sets: Arc<ResourceDef>,
    pods: Arc<ResourceDef>,
}

impl Defs {
    /// The definitions from the registry (`None` if a built-in is missing).
    pub fn lookup(store: &StoreInner) -> Option<Defs> {
        Some(Defs {
            replica_sets: store.registry.get("apps", "v1", "replicasets")?,
            pods: store.registry.get("", "v1", "pods")?,
        })
    }
}

fn name_of(object: &Value) -> &str {
    metadata_str(object, "name").unwrap_or("")
}

fn namespace_of(object: &Value) -> &str {
    metadata_str(object, "namespace").unwrap_or("")
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.pointer("/metadata/annotations")?.get(key)?.as_str()
}

fn revision_of(object: &Value) -> u64 {
    annotation(object, REVISION_ANNOTATION).and_then(|value| value.parse().ok()).unwrap_or(0)
}

fn spec_replicas(object: &Value) -> u64 {
    object.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1)
}

/// The ReplicaSets a Deployment controls, by revision (then name).
pub fn owned_replica_sets(store: &StoreInner, deployment: &Value) -> Vec<Arc<Value>> {
    let uid = metadata_str(deployment, "uid").unwrap_or("");
    let prefix = format!("{}-", name_of(deployment));
    let mut owned: Vec<Arc<Value>> = store
        .list_prefix(&replica_sets(), namespace_of(deployment), &prefix)
        .into_iter()
        .filter(|rs| is_controlled_by(rs, uid))
        .collect();
    owned.sort_by(|a, b| revision_of(a).cmp(&revision_of(b)).then(name_of(a).cmp(name_of(b))));
    owned
}

fn creation_key(object: &Value) -> (String, String) {
    (
        metadata_str(object, "creationTimestamp").unwrap_or("").to_string(),
        name_of(object).to_string(),
    )
}

/// How many pods of the Deployment's ReplicaSet `rs_name` are ready (and
/// not being deleted).
pub fn ready_pods(store: &StoreInner, deployment: &Value, rs_name: &str) -> u64 {
    let Some(rs) = store.get(&replica_sets(), namespace_of(deployment), rs_name) else {
        return 0;
    };
    let uid = metadata_str(deployment, "uid").unwrap_or("");
    if !is_controlled_by(&rs, uid) {
        return 0;
    }
    owned_pods(store, &rs).iter().filter(|pod| is_pod_ready(pod)).count() as u64
}

/// Plans the ReplicaSets of a rollout that begins now: which ReplicaSet is
/// new and its revision, and which old ReplicaSets hold the plan's old pods.
/// `previous` is the Deployment before the change (its template names the
/// ReplicaSet of the running pods when no ReplicaSet exists yet, as for a
/// generated fleet whose objects are made on first use).
pub fn begin(
    sim: &SimState,
    store: &mut StoreInner,
    defs: &Defs,
    deployment: &Value,
    plan: &RolloutPlan,
    previous: Option<&Value>,
) -> Workload {
    let name = name_of(deployment);
    let new_rs = if plan.paused && plan.template_changed {
        None
    } else {
        Some(format!("{name}-{}", plan.template_hash))
    };
    let mut owned = owned_replica_sets(store, deployment);
    let is_new = |rs: &Value| new_rs.as_deref() == Some(name_of(rs));
    if plan.from.old > 0
        && !owned.iter().any(|rs| !is_new(rs))
        && let Some(previous) = previous
        && let Some(created) =
            materialize_previous(sim, store, defs, deployment, previous, plan.from.old)
    {
        owned.insert(0, created);
    }
    let max_old =
        owned.iter().filter(|rs| !is_new(rs)).map(|rs| revision_of(rs)).max().unwrap_or(0);
    let revision = match owned.iter().find(|rs| is_new(rs)) {
        Some(existing) if revision_of(existing) > max_old => revision_of(existing),
        _ if new_rs.is_none() => revision_of(deployment).max(max_old),
        _ => max_old + 1,
    };
    // The old pods go to the ReplicaSets that have ready pods, newest first
    // (every available pod is old when a template changes; unready ones are
    // cleaned up first).
    let mut remaining = plan.from.old;
    let mut old: Vec<(String, u64)> = Vec::new();
    for rs in owned.iter().rev().filter(|rs| !is_new(rs)) {
        let ready = rs.pointer("/status/readyReplicas").and_then(Value::as_u64).unwrap_or(0);
        let keep = ready.min(remaining);
        remaining -= keep;
        old.push((name_of(rs).to_string(), keep));
    }
    if remaining > 0
        && let Some(newest) = old.first_mut()
    {
        newest.1 += remaining;
    }
    old.reverse();
    Workload { new_rs, revision, old }
}

fn create_object(
    sim: &SimState,
    store: &mut StoreInner,
    def: &ResourceDef,
    object: Value,
) -> Result<Value, ApiError> {
    let namespace = namespace_of(&object).to_string();
    write::create(
        store,
        &sim.rng,
        def,
        Some(&namespace),
        object,
        &WriteOptions::internal(CONTROLLER_MANAGER),
    )
}

/// What a reconcile of one Deployment's objects works from.
pub struct Rollout<'a> {
    pub sim: &'a SimState,
    pub defs: &'a Defs,
    /// The Deployment as stored.
    pub deployment: &'a Value,
    pub plan: &'a RolloutPlan,
    pub workload: &'a Workload,
}

/// Brings the Deployment's ReplicaSets and Pods to `counts` (the plan's pod
/// counts now) from `previous` (the counts they were last brought to), in
/// the order the real controller's successive syncs take: the new
/// ReplicaSet up as far as maxSurge allows with the old pods still there,
/// the old ReplicaSets down, then the new one the rest of the way.
pub fn reconcile(
    rollout: &Rollout<'_>,
    store: &mut StoreInner,
    previous: Option<PodCounts>,
    counts: PodCounts,
) {
    let plan = rollout.plan;
    let new_desired = |replicas: u64| Desired {
        replicas,
        ready: counts.new_ready.min(replicas),
        failing: plan.fail,
    };
    if let Some(new_rs) = &rollout.workload.new_rs {
        let first = match previous {
            Some(previous) if counts.new_total > previous.new_total => {
                let room = (plan.replicas + plan.max_surge).saturating_sub(previous.old);
                counts.new_total.min(previous.new_total.max(room))
            }
            _ => counts.new_total,
        };
        ensure_new_replica_set(rollout, store, new_rs, new_desired(first));
    }
    // Old pods go oldest ReplicaSet first. (What the old ReplicaSets held
    // when the rollout began, not the plan's start: a rebased plan starts
    // later.)
    let at_start: u64 = rollout.workload.old.iter().map(|(_, pods)| pods).sum();
    let mut removed = at_start.saturating_sub(counts.old);
    for (name, at_start) in &rollout.workload.old {
        let gone = removed.min(*at_start);
        removed -= gone;
        let keep = at_start - gone;
        let desired = Desired { replicas: keep, ready: keep, failing: false };
        ensure_old_replica_set(rollout, store, name, desired);
    }
    if let Some(new_rs) = &rollout.workload.new_rs {
        ensure_new_replica_set(rollout, store, new_rs, new_desired(counts.new_total));
    }
}

/// How many pods of the rollout's new ReplicaSet wait for a node.
pub fn unbound_new_pods(store: &StoreInner, deployment: &Value, workload: &Workload) -> u64 {
    let Some(new_rs) = &workload.new_rs else {
        return 0;
    };
    let Some(rs) = store.get(&replica_sets(), namespace_of(deployment), new_rs) else {
        return 0;
    };
    let uid = metadata_str(&rs, "uid").unwrap_or("");
    store
        .list_prefix(&pods(), namespace_of(deployment), &format!("{new_rs}-"))
        .iter()
        .filter(|pod| is_controlled_by(pod, uid) && !is_deleting(pod) && !pods::is_bound(pod))
        .count() as u64
}

/// Deletes the Deployment's old, empty ReplicaSets beyond its
/// `revisionHistoryLimit` (lowest revisions first), as the real controller
/// does once a rollout completes.
pub fn clean_up_history(
    store: &mut StoreInner,
    defs: &Defs,
    deployment: &Value,
    workload: &Workload,
) {
    let limit =
        deployment.pointer("/spec/revisionHistoryLimit").and_then(Value::as_u64).unwrap_or(10);
    let cleanable: Vec<Arc<Value>> = owned_replica_sets(store, deployment)
        .into_iter()
        .filter(|rs| workload.new_rs.as_deref() != Some(name_of(rs)))
        .filter(|rs| {
            rs.pointer("/spec/replicas").and_then(Value::as_u64) == Some(0)
                && rs.pointer("/status/replicas").and_then(Value::as_u64).unwrap_or(0) == 0
                && !is_deleting(rs)
        })
        .collect();
    let excess = cleanable.len().saturating_sub(limit as usize);
    for rs in cleanable.into_iter().take(excess) {
        let options = DeleteOptions {
            preconditions: DeletePreconditions {
                uid: metadata_str(&rs, "uid").map(String::from),
                resource_version: None,
            },
            ..DeleteOptions::default()
        };
        if let Err(error) = write::delete(store, &defs.replica_sets, &rs, &options) {
            tracing::debug!(error = %error, "deleting an old ReplicaSet failed");
        }
    }
}

/// What one ReplicaSet should hold.
#[derive(Clone, Copy)]
struct Desired {
    replicas: u64,
    ready: u64,
    failing: bool,
}

/// Writes a ReplicaSet's status (the ReplicaSet controller's).
fn set_replica_set_status(
    store: &mut StoreInner,
    def: &ResourceDef,
    rs: &Value,
    replicas: u64,
    ready: u64,
) {
    let Some(current) = store.get(&replica_sets(), namespace_of(rs), name_of(rs)) else {
        return;
    };
    let mut status = Map::new();
    status.insert("replicas".into(), json!(replicas));
    if replicas > 0 {
        status.insert("fullyLabeledReplicas".into(), json!(replicas));
    }
    if ready > 0 {
        status.insert("readyReplicas".into(), json!(ready));
        status.insert("availableReplicas".into(), json!(ready));
    }
    if let Some(generation) = current.pointer("/metadata/generation") {
        status.insert("observedGeneration".into(), generation.clone());
    }
    let status = Value::Object(status);
    if current.get("status") == Some(&status) {
        return;
    }
    // A status write carries the metadata (which a ReplicaSet's status
    // strategy keeps) and the status; the spec stays as stored.
    let updated = json!({"metadata": current.get("metadata"), "status": status});
    let options =
        WriteOptions { subresource: Some("status"), ..WriteOptions::internal(CONTROLLER_MANAGER) };
    if let Err(error) = write::update(store, def, &current, updated, &options) {
        tracing::debug!(error = %error, replica_set = name_of(rs), "ReplicaSet status update failed");
    }
}
