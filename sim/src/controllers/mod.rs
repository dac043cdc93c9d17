//! The background controllers of the simulated cluster: tasks that watch
//! the store and write through the write pipeline, as the real
//! kube-controller-manager and apiextensions-apiserver do through the API.
//!
//! - `deployment`: the Deployment controller, its rollout model in
//!   `rollout`, and the ReplicaSets and Pods derived from it in
//!   `replica_sets` (as the ReplicaSet controller and kubelet would write
//!   them).
//! - `workloads`: the StatefulSet and DaemonSet controllers, their
//!   ControllerRevisions and pods (on the nodes of `nodes`).
//! - `garbage_collector`: owner references, with background, foreground
//!   and orphan propagation.
//! - `namespaces`: a deleted namespace's contents, then the namespace.
//! - `crd_cleanup`: a deleted CRD's custom resources, then the CRD.
//!
//! - `service_accounts`: each namespace's `default` ServiceAccount.
//! - `kubelet`: runs the pods of the images the sim runs for real as local
//!   processes, and writes their statuses.
//! - `scheduler` (with nodes): places pods on nodes, marks those that fit
//!   nowhere `Unschedulable`, and binds them once room appears.
//! - `disruption`: the status of PodDisruptionBudgets.
//! - `pod_stop` (with `SimConfig::pod_stop_time_ms`): removes the deleted
//!   pods whose status is simulated once their containers would have
//!   stopped.
//!
//! `owners` holds the owner-reference helpers they share; `events` the
//! event recorders; `nodes` the nodes workload pods go to; `timer` the
//! Deployment controller's precise timer.

mod crd_cleanup;
mod deployment;
mod disruption;
mod events;
mod garbage_collector;
mod kubelet;
mod namespaces;
mod nodes;
mod owners;
mod pod_stop;
mod replica_sets;
mod rollout;
mod scheduler;
mod service_accounts;
mod timer;
mod workloads;

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use crate::state::SimState;
use crate::store::{StoreInner, StoredEvent};

pub use deployment::{FAIL_ANNOTATION, rolled_out_status};
pub use replica_sets::REVISION_ANNOTATION;
pub use service_accounts::default_service_account;
pub use workloads::settle as settle_workload;

/// Runs every controller until shutdown, each as a task of its own (so
/// that the Deployment controller's timer never waits behind another
/// controller's work).
pub async fn run(sim: Arc<SimState>) {
    let tasks = [
        tokio::spawn(deployment::run(sim.clone())),
        tokio::spawn(workloads::run(sim.clone())),
        tokio::spawn(garbage_collector::run(sim.clone())),
        tokio::spawn(namespaces::run(sim.clone())),
        tokio::spawn(crd_cleanup::run(sim.clone())),
        tokio::spawn(kubelet::run(sim.clone())),
        tokio::spawn(service_accounts::run(sim.clone())),
        tokio::spawn(scheduler::run(sim.clone())),
        tokio::spawn(pod_stop::run(sim.clone())),
        tokio::spawn(disruption::run(sim)),
    ];
    for task in tasks {
        if let Err(error) = task.await {
            tracing::error!(error = %error, "a simulated controller failed");
        }
    }
}

/// Feeds a controller's `state` every change of the store until shutdown: `resync` first
/// and whenever events were missed (it starts over from the stored state), `on_event` for
/// each change.
async fn follow_store<S>(
    sim: &SimState,
    state: &mut S,
    resync: fn(&SimState, &mut S),
    on_event: fn(&SimState, &mut S, &StoredEvent),
) {
    let mut events = sim.store.lock().subscribe();
    resync(sim, state);
    let mut shutdown = sim.shutdown.clone();
    loop {
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) => on_event(sim, state, &event),
                Err(RecvError::Lagged(_)) => {
                    events = sim.store.lock().subscribe();
                    resync(sim, state);
                }
                Err(RecvError::Closed) => return,
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Creates the ReplicaSet and ready Pods of a Deployment created rolled out
/// (the generated fleet), as if the controllers had long finished; with
/// `nodes`, its pods run on those (one per replica).
pub fn materialize_settled(
    sim: &SimState,
    store: &mut StoreInner,
    deployment: &serde_json::Value,
    nodes: Option<&[String]>,
) {
    if let Some(defs) = replica_sets::Defs::lookup(store) {
        replica_sets::materialize_settled(sim, store, &defs, deployment, nodes);
    }
}
