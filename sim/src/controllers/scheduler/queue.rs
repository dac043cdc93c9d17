//! The scheduling queue's task: after every batch of changes that may
//! matter to a waiting pod (pods, nodes, a Deployment deleted or a
//! ReplicaSet created, which release a fleet's reservations), it tries the
//! waiting pods that are due (see [`super::schedule_waiting`]).

use std::sync::Arc;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::schedule_waiting;
use crate::error::GroupResource;
use crate::state::SimState;
use crate::store::{EventType, StoredEvent};

/// Whether a change may concern a waiting pod.
fn matters(event: &StoredEvent) -> bool {
    event.gr == GroupResource::new("", "pods")
        || event.gr == GroupResource::new("", "nodes")
        || (event.gr == GroupResource::new("apps", "deployments")
            && event.etype == EventType::Deleted)
        || (event.gr == GroupResource::new("apps", "replicasets")
            && event.etype == EventType::Added)
}

/// Runs the queue until shutdown (only in a cluster with nodes).
pub async fn run(sim: Arc<SimState>) {
    if !sim.has_nodes() {
        return;
    }
    let mut events = sim.store.lock().subscribe();
    schedule_waiting(&sim, &mut sim.store.lock());
    let mut shutdown = sim.shutdown.clone();
    loop {
        tokio::select! {
            received = events.recv() => {
                // Missed events leave the cache to list the store again.
                let mut due = match received {
                    Ok(event) => matters(&event),
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => return,
                };
                loop {
                    match events.try_recv() {
                        Ok(event) => due |= matters(&event),
                        Err(TryRecvError::Lagged(_)) => due = true,
                        Err(_) => break,
                    }
                }
                if due {
                    schedule_waiting(&sim, &mut sim.store.lock());
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
