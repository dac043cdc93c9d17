//! The scheduling queue's task: after every batch of changes that may
//! matter to a waiting pod it tries the waiting pods that are due (see
//! [`super::schedule_waiting`]): a pod that waits and was never tried (one
//! created through the API), or, while pods wait, room that may have
//! appeared (a bound pod deleted or finished, a node added or changed, a
//! Deployment deleted or a ReplicaSet created, which release a generated
//! fleet's reservations). Without waiting pods it leaves the store alone.

use std::sync::Arc;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::schedule_waiting;
use crate::error::GroupResource;
use crate::placement::is_waiting;
use crate::state::SimState;
use crate::store::{EventType, StoredEvent};

/// What a change may mean to the queue.
#[derive(Default)]
struct Wake {
    /// A pod waits that may never have been tried.
    waiting_pod: bool,
    /// Room may have appeared.
    room: bool,
}

impl Wake {
    fn observe(&mut self, event: &StoredEvent) {
        let pods = GroupResource::new("", "pods");
        if event.gr == pods {
            if event.etype != EventType::Deleted && is_waiting(&event.object) {
                self.waiting_pod = true;
            }
            let bound = |pod: &serde_json::Value| {
                !pod.pointer("/spec/nodeName")
                    .and_then(|node| node.as_str())
                    .unwrap_or("")
                    .is_empty()
            };
            // Leaving a node (deleted, or finished) frees room; the cache
            // decides exactly, this only wakes the queue.
            self.room |= event.prev.as_deref().is_some_and(bound)
                && (event.etype == EventType::Deleted
                    || event.object.pointer("/status/phase")
                        != event.prev.as_deref().and_then(|prev| prev.pointer("/status/phase")));
        } else {
            self.room |= event.gr == GroupResource::new("", "nodes")
                || (event.gr == GroupResource::new("apps", "deployments")
                    && event.etype == EventType::Deleted)
                || (event.gr == GroupResource::new("apps", "replicasets")
                    && event.etype == EventType::Added);
        }
    }

    fn due(&self, sim: &SimState) -> bool {
        self.waiting_pod || (self.room && sim.node_cache().has_waiting())
    }
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
                let mut wake = Wake::default();
                match received {
                    Ok(event) => wake.observe(&event),
                    // Missed events: the cache lists the store again.
                    Err(RecvError::Lagged(_)) => wake.waiting_pod = true,
                    Err(RecvError::Closed) => return,
                }
                loop {
                    match events.try_recv() {
                        Ok(event) => wake.observe(&event),
                        Err(TryRecvError::Lagged(_)) => wake.waiting_pod = true,
                        Err(_) => break,
                    }
                }
                if wake.due(&sim) {
                    schedule_waiting(&sim, &mut sim.store.lock());
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
