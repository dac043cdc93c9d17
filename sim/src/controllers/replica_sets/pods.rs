//! A ReplicaSet's pods, as the ReplicaSet controller and the kubelet keep
//! them: as many as desired (unbound, then unready, then newest deleted
//! first), each placed by the scheduler when created, the oldest bound ones
//! ready, each status of a bound pod written by the "kubelet" (the simulated
//! one, or for pods that run for real the sim's kubelet; a pod no node took
//! keeps the scheduler's); then the ReplicaSet's status, from the pods'
//! readiness.

use std::sync::Arc;

use serde_json::{Value, json};

use super::kubelet::{PodPhase, pod_status};
use super::objects::build_pod;
use super::{
    Defs, Desired, KUBELET, create_object, creation_key, name_of, namespace_of, pods,
    set_replica_set_status,
};
use crate::controllers::owners::{is_controlled_by, is_deleting};
use crate::controllers::scheduler;
use crate::registry::ResourceDef;
use crate::state::SimState;
use crate::store::StoreInner;
use crate::util::metadata_str;
use crate::write::{self, DeleteOptions, DeletePreconditions, WriteOptions};

/// The pods a ReplicaSet controls that are not being deleted, oldest first.
pub(super) fn owned_pods(store: &StoreInner, rs: &Value) -> Vec<Arc<Value>> {
    let uid = metadata_str(rs, "uid").unwrap_or("");
    let prefix = format!("{}-", name_of(rs));
    let mut owned: Vec<Arc<Value>> = store
        .list_prefix(&pods(), namespace_of(rs), &prefix)
        .into_iter()
        .filter(|pod| is_controlled_by(pod, uid) && !is_deleting(pod))
        .collect();
    owned.sort_by_key(|pod| creation_key(pod));
    owned
}

/// Whether a pod is bound to a node (the kubelets run only those).
pub fn is_bound(pod: &Value) -> bool {
    !pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("").is_empty()
}

/// Whether a pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|conditions| {
        conditions
            .iter()
            .any(|condition| condition["type"] == "Ready" && condition["status"] == "True")
    })
}

/// The ReplicaSet controller and kubelet: `desired.replicas` pods, the
/// oldest `desired.ready` of them ready; then the ReplicaSet's status.
pub(super) fn ensure_pods(
    sim: &SimState,
    store: &mut StoreInner,
    defs: &Defs,
    rs: &Arc<Value>,
    desired: Desired,
) {
    let mut pods = owned_pods(store, rs);
    let wanted = desired.replicas as usize;
    if pods.len() > wanted {
        // Unbound pods go first, then unready ones, then the newest.
        let mut victims = pods.clone();
        victims.sort_by(|a, b| {
            is_bound(a)
                .cmp(&is_bound(b))
                .then(is_ready(a).cmp(&is_ready(b)))
                .then(creation_key(b).cmp(&creation_key(a)))
        });
        for pod in victims.into_iter().take(pods.len() - wanted) {
            let options = DeleteOptions {
                preconditions: DeletePreconditions {
                    uid: metadata_str(&pod, "uid").map(String::from),
                    resource_version: None,
                },
                ..DeleteOptions::default()
            };
            if let Err(error) = write::delete(store, &defs.pods, &pod, &options) {
                tracing::debug!(error = %error, pod = name_of(&pod), "deleting a pod failed");
            }
        }
        pods = owned_pods(store, rs);
    }
    // Ready pods stay ready; the oldest unready bound ones become ready
    // first; unbound pods wait for the scheduler.
    pods.sort_by(|a, b| {
        is_ready(b)
            .cmp(&is_ready(a))
            .then(is_bound(b).cmp(&is_bound(a)))
            .then(creation_key(a).cmp(&creation_key(b)))
    });
    let unready = if desired.failing { PodPhase::Unready } else { PodPhase::Starting };
    for (index, pod) in pods.iter().enumerate().filter(|(_, pod)| is_bound(pod)) {
        let phase = if (index as u64) < desired.ready { PodPhase::Ready } else { unready };
        set_pod_phase(sim, store, &defs.pods, pod, phase);
    }
    for index in pods.len()..wanted {
        let phase = if (index as u64) < desired.ready { PodPhase::Ready } else { unready };
        create_pod(sim, store, defs, rs, phase, None);
    }
    let pods = owned_pods(store, rs);
    let ready = pods.iter().filter(|pod| is_ready(pod)).count() as u64;
    set_replica_set_status(store, &defs.replica_sets, rs, pods.len() as u64, ready);
}

/// Creates one pod of a ReplicaSet where the scheduler places it (on
/// `node` when given: a pod that runs already), then writes its status: the
/// kubelet's, or the scheduler's when no node takes it.
pub(super) fn create_pod(
    sim: &SimState,
    store: &mut StoreInner,
    defs: &Defs,
    rs: &Value,
    phase: PodPhase,
    node: Option<&str>,
) {
    let mut pod = build_pod(sim, rs, node);
    let placement = scheduler::place(sim, store, &mut pod);
    match create_object(sim, store, &defs.pods, pod) {
        Ok(created) => {
            scheduler::created(sim, store, &created, &placement);
            if let Some(stored) = store.get(&pods(), namespace_of(&created), name_of(&created))
                && is_bound(&stored)
            {
                set_pod_phase(sim, store, &defs.pods, &stored, phase);
            }
        }
        Err(error) => {
            tracing::debug!(error = %error, replica_set = name_of(rs), "creating a pod failed");
        }
    }
}

/// The kubelet's status write: `phase` (and the IP it assigns on first
/// start, drawn from `sim`'s generator), through `pods_def`. A pod the
/// sim's kubelet runs for real gets its status from there.
pub fn set_pod_phase(
    sim: &SimState,
    store: &mut StoreInner,
    pods_def: &ResourceDef,
    pod: &Arc<Value>,
    phase: PodPhase,
) {
    if pod.get("spec").is_some_and(|spec| sim.runs_for_real(spec)) {
        return;
    }
    let status = pod_status(pod, phase, sim, store);
    if pod.get("status") == Some(&status) {
        return;
    }
    // The pod status strategy takes only the status of a status write.
    let updated = json!({"status": status});
    let options = WriteOptions { subresource: Some("status"), ..WriteOptions::internal(KUBELET) };
    if let Err(error) = write::update(store, pods_def, pod, updated, &options) {
        tracing::debug!(error = %error, pod = name_of(pod), "pod status update failed");
    }
}
