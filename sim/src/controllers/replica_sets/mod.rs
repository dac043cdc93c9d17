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
//! manager`) already bound to a node, and their status is written by the
//! "kubelet": `Pending` (ContainerCreating) until the model makes them
//! ready, then `Running` and `Ready`; a failing rollout's pods run but never
//! become ready.
//!
//! This module plans and reconciles; `pods` keeps a ReplicaSet's pods,
//! `objects` builds what the controllers create, `kubelet` the pod statuses,
//! `events` the Events.

mod events;
mod kubelet;
mod objects;
mod pods;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use events::record_scaling;
pub use kubelet::{PodPhase, pod_status};
pub use objects::pod_from_template;
use objects::{build_pod, build_replica_set, copied_annotations};
use pods::{create_pod, ensure_pods};
pub use pods::{is_ready, set_pod_phase};

use super::owners::{is_controlled_by, is_deleting};
use super::rollout::{PodCounts, RolloutPlan, pod_template_hash, surge_and_unavailable};
use crate::error::{ApiError, GroupResource};
use crate::registry::ResourceDef;
use crate::state::SimState;
use crate::store::{EventType, StoreInner};
use crate::util::{metadata_mut, metadata_str};
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
/// Nodes pods are bound to (there are no Node objects).
const NODES: [&str; 3] = ["sim-worker-1", "sim-worker-2", "sim-worker-3"];

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
    events: Arc<ResourceDef>,
}

impl Defs {
    /// The definitions from the registry (`None` if a built-in is missing).
    pub fn lookup(store: &StoreInner) -> Option<Defs> {
        Some(Defs {
            replica_sets: store.registry.get("apps", "v1", "replicasets")?,
            pods: store.registry.get("", "v1", "pods")?,
            events: store.registry.get("", "v1", "events")?,
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

/// Creates the ReplicaSet (and its ready pods) of the template `previous`
/// ran, for a Deployment whose objects were never made.
fn materialize_previous(
    sim: &SimState,
    store: &mut StoreInner,
    defs: &Defs,
    deployment: &Value,
    previous: &Value,
    pods: u64,
) -> Option<Arc<Value>> {
    let hash = pod_template_hash(previous);
    let revision = revision_of(previous).max(1);
    let mut template_source = deployment.clone();
    if let (Some(fields), Some(template)) =
        (template_source.pointer_mut("/spec"), previous.pointer("/spec/template"))
        && let Some(fields) = fields.as_object_mut()
    {
        fields.insert("template".into(), template.clone());
    }
    let rs = build_replica_set(&template_source, &hash, revision, pods, pods);
    let created = create_object(sim, store, &defs.replica_sets, rs).ok()?;
    set_replica_set_status(store, &defs.replica_sets, &created, pods, pods);
    let created = store.get(&replica_sets(), namespace_of(&created), name_of(&created))?;
    for _ in 0..pods {
        create_pod(sim, store, defs, &created, PodPhase::Ready);
    }
    store.get(&replica_sets(), namespace_of(&created), name_of(&created))
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
    // Old pods go oldest ReplicaSet first.
    let mut removed = plan.from.old.saturating_sub(counts.old);
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

fn ensure_new_replica_set(
    rollout: &Rollout<'_>,
    store: &mut StoreInner,
    name: &str,
    desired: Desired,
) {
    let Rollout { sim, defs, deployment, plan, workload } = *rollout;
    let max_replicas = plan.replicas + plan.max_surge;
    let rs = match store.get(&replica_sets(), namespace_of(deployment), name) {
        Some(rs) => rs,
        None => {
            let hash = name.rsplit('-').next().unwrap_or("");
            let rs = build_replica_set(
                deployment,
                hash,
                workload.revision,
                desired.replicas,
                max_replicas,
            );
            let created = match create_object(sim, store, &defs.replica_sets, rs) {
                Ok(created) => created,
                Err(error) => {
                    tracing::debug!(error = %error, replica_set = name, "creating a ReplicaSet failed");
                    return;
                }
            };
            if desired.replicas > 0 {
                record_scaling(sim, store, defs, deployment, name, 0, desired.replicas);
            }
            Arc::new(created)
        }
    };
    let uid = metadata_str(deployment, "uid").unwrap_or("");
    if !is_controlled_by(&rs, uid) || is_deleting(&rs) {
        return;
    }
    let mut updated = (*rs).clone();
    // The new ReplicaSet follows the Deployment's annotations and revision.
    let mut annotations = copied_annotations(deployment);
    let current_revision = revision_of(&rs);
    if current_revision < workload.revision {
        annotations.insert(REVISION_ANNOTATION.into(), json!(workload.revision.to_string()));
        if current_revision > 0 {
            let history = annotation(&rs, REVISION_HISTORY_ANNOTATION).unwrap_or("");
            let mut revisions: Vec<&str> =
                history.split(',').filter(|revision| !revision.is_empty()).collect();
            let old = current_revision.to_string();
            revisions.push(&old);
            while revisions.join(",").len() > MAX_REVISION_HISTORY_CHARS && revisions.len() > 1 {
                revisions.remove(0);
            }
            annotations.insert(REVISION_HISTORY_ANNOTATION.into(), json!(revisions.join(",")));
        }
    }
    set_size(&mut updated, desired.replicas, plan.replicas, max_replicas, annotations);
    let rs = update_replica_set(sim, store, defs, deployment, &rs, updated);
    ensure_pods(sim, store, defs, &rs, desired);
}

fn ensure_old_replica_set(
    rollout: &Rollout<'_>,
    store: &mut StoreInner,
    name: &str,
    desired: Desired,
) {
    let Rollout { sim, defs, deployment, plan, .. } = *rollout;
    let Some(rs) = store.get(&replica_sets(), namespace_of(deployment), name) else {
        return;
    };
    let uid = metadata_str(deployment, "uid").unwrap_or("");
    if !is_controlled_by(&rs, uid) || is_deleting(&rs) {
        return;
    }
    let mut updated = (*rs).clone();
    let max_replicas = plan.replicas + plan.max_surge;
    set_size(&mut updated, desired.replicas, plan.replicas, max_replicas, Map::new());
    let rs = update_replica_set(sim, store, defs, deployment, &rs, updated);
    ensure_pods(sim, store, defs, &rs, desired);
}

/// Sets a ReplicaSet's size, its replicas annotations and `annotations`.
fn set_size(
    rs: &mut Value,
    replicas: u64,
    desired_replicas: u64,
    max_replicas: u64,
    mut annotations: Map<String, Value>,
) {
    if let Some(spec) = rs.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), json!(replicas));
    }
    annotations.insert(DESIRED_REPLICAS_ANNOTATION.into(), json!(desired_replicas.to_string()));
    annotations.insert(MAX_REPLICAS_ANNOTATION.into(), json!(max_replicas.to_string()));
    if let Some(metadata) = metadata_mut(rs) {
        let current = metadata.entry("annotations").or_insert_with(|| json!({}));
        if let Some(current) = current.as_object_mut() {
            for (key, value) in annotations {
                current.insert(key, value);
            }
        }
    }
}

/// Writes a changed ReplicaSet (recording the scaling Event); returns the
/// stored state.
fn update_replica_set(
    sim: &SimState,
    store: &mut StoreInner,
    defs: &Defs,
    deployment: &Value,
    rs: &Arc<Value>,
    updated: Value,
) -> Arc<Value> {
    if updated == **rs {
        return rs.clone();
    }
    let from = spec_replicas(rs);
    let to = spec_replicas(&updated);
    match write::update(
        store,
        &defs.replica_sets,
        rs,
        updated,
        &WriteOptions::internal(CONTROLLER_MANAGER),
    ) {
        Ok(stored) => {
            if from != to {
                record_scaling(sim, store, defs, deployment, name_of(rs), from, to);
            }
            Arc::new(stored)
        }
        Err(error) => {
            tracing::debug!(error = %error, replica_set = name_of(rs), "scaling a ReplicaSet failed");
            rs.clone()
        }
    }
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

/// Creates the objects of a Deployment that is already rolled out (the
/// generated fleet): its ReplicaSet at revision 1 with ready pods. Their
/// statuses are committed directly, as the fleet's Deployment status is:
/// the objects start settled, as if the controllers had long finished.
pub fn materialize_settled(
    sim: &SimState,
    store: &mut StoreInner,
    defs: &Defs,
    deployment: &Value,
) {
    let hash = pod_template_hash(deployment);
    let replicas = spec_replicas(deployment);
    let (max_surge, _) = surge_and_unavailable(deployment, replicas);
    let rs = build_replica_set(deployment, &hash, 1, replicas, replicas + max_surge);
    let mut rs = match create_object(sim, store, &defs.replica_sets, rs) {
        Ok(created) => created,
        Err(error) => {
            tracing::debug!(error = %error, "creating a fleet ReplicaSet failed");
            return;
        }
    };
    for _ in 0..replicas {
        match create_object(sim, store, &defs.pods, build_pod(sim, &rs)) {
            Ok(mut pod) => {
                let status = pod_status(&pod, PodPhase::Ready, sim);
                if let Some(fields) = pod.as_object_mut() {
                    fields.insert("status".into(), status);
                }
                store.commit(&pods(), pod, EventType::Modified);
            }
            Err(error) => tracing::debug!(error = %error, "creating a fleet pod failed"),
        }
    }
    let generation = rs.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
    if let Some(fields) = rs.as_object_mut() {
        fields.insert(
            "status".into(),
            json!({
                "replicas": replicas,
                "fullyLabeledReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "observedGeneration": generation,
            }),
        );
    }
    store.commit(&replica_sets(), rs, EventType::Modified);
}
