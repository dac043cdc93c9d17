//! The simulated kubelet's part in a graceful pod deletion (with
//! `SimConfig::pod_stop_time_ms`): a pod whose status is simulated, deleted
//! with a grace period, stays `Terminating` (its `deletionTimestamp` and
//! `deletionGracePeriodSeconds` set, its requests still counted on its
//! node) while its containers would stop, and is removed (grace period 0,
//! its uid as precondition) the stop time after the deletion was first
//! seen, or at the end of its grace period when that is sooner (a later
//! delete may shorten it). Pods the sim's kubelet runs for real are left
//! to it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::error::GroupResource;
use crate::state::SimState;
use crate::store::{EventType, StoredEvent};
use crate::util::metadata_str;
use crate::write::{self, DeleteOptions, DeletePreconditions};

fn pods() -> GroupResource {
    GroupResource::new("", "pods")
}

/// A pod whose containers are stopping.
struct Stopping {
    namespace: String,
    name: String,
    /// When its deletion was first seen.
    seen: Instant,
    /// When it is removed.
    removal: Instant,
}

/// The pods being stopped, by uid.
struct PodStopper {
    stop_time: Duration,
    stopping: HashMap<String, Stopping>,
}

/// The grace period of a pod being deleted gracefully, if it is one this
/// controller stops.
fn graceful_deletion(sim: &SimState, pod: &Value) -> Option<Duration> {
    pod.pointer("/metadata/deletionTimestamp")?;
    let grace = pod.pointer("/metadata/deletionGracePeriodSeconds")?.as_u64()?;
    let real = pod.get("spec").is_some_and(|spec| sim.runs_for_real(spec));
    (grace > 0 && !real).then(|| Duration::from_secs(grace))
}

impl PodStopper {
    fn observe(&mut self, sim: &SimState, pod: &Value) {
        let uid = metadata_str(pod, "uid").unwrap_or("").to_string();
        let Some(grace) = graceful_deletion(sim, pod) else {
            return;
        };
        let now = Instant::now();
        let stopping = self.stopping.entry(uid).or_insert_with(|| Stopping {
            namespace: metadata_str(pod, "namespace").unwrap_or("").to_string(),
            name: metadata_str(pod, "name").unwrap_or("").to_string(),
            seen: now,
            removal: now + self.stop_time,
        });
        stopping.removal = stopping.removal.min(stopping.seen + grace);
    }

    fn on_event(&mut self, sim: &SimState, event: &StoredEvent) {
        if event.gr != pods() {
            return;
        }
        match event.etype {
            EventType::Deleted => {
                self.stopping.remove(metadata_str(&event.object, "uid").unwrap_or(""));
            }
            EventType::Added | EventType::Modified => self.observe(sim, &event.object),
        }
    }

    /// Starts over from the stored pods (after missed events): pods seen
    /// stopping before keep their removal time.
    fn resync(&mut self, sim: &SimState) {
        let all = sim.store.lock().list(&pods(), None);
        let present: std::collections::HashSet<&str> =
            all.iter().filter_map(|pod| metadata_str(pod, "uid")).collect();
        self.stopping.retain(|uid, _| present.contains(uid.as_str()));
        for pod in &all {
            self.observe(sim, pod);
        }
    }

    fn next_removal(&self) -> Option<Instant> {
        self.stopping.values().map(|stopping| stopping.removal).min()
    }

    /// Removes the pods whose containers have stopped by now.
    fn remove_due(&mut self, sim: &SimState) {
        let now = Instant::now();
        let due: Vec<(String, Stopping)> =
            self.stopping.extract_if(|_, stopping| stopping.removal <= now).collect();
        if due.is_empty() {
            return;
        }
        let mut store = sim.store.lock();
        let Some(def) = store.registry.get("", "v1", "pods") else {
            return;
        };
        for (uid, stopping) in due {
            let Some(pod) = store
                .get(&pods(), &stopping.namespace, &stopping.name)
                .filter(|pod| metadata_str(pod, "uid") == Some(uid.as_str()))
            else {
                continue;
            };
            let options = DeleteOptions {
                preconditions: DeletePreconditions { uid: Some(uid), resource_version: None },
                grace_period_seconds: Some(0),
                ..DeleteOptions::default()
            };
            if let Err(error) = write::delete(&mut store, &def, &pod, &options) {
                tracing::debug!(%error, pod = %stopping.name, "could not remove a stopped pod");
            }
        }
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Runs until shutdown (at once done when simulated pods stop at once).
pub async fn run(sim: Arc<SimState>) {
    if sim.config.pod_stop_time_ms == 0 {
        return;
    }
    let mut stopper = PodStopper {
        stop_time: Duration::from_millis(sim.config.pod_stop_time_ms),
        stopping: HashMap::new(),
    };
    let mut events = sim.store.lock().subscribe();
    stopper.resync(&sim);
    let mut shutdown = sim.shutdown.clone();
    loop {
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) => stopper.on_event(&sim, &event),
                Err(RecvError::Lagged(_)) => {
                    events = sim.store.lock().subscribe();
                    stopper.resync(&sim);
                }
                Err(RecvError::Closed) => return,
            },
            () = sleep_until_some(stopper.next_removal()) => stopper.remove_due(&sim),
            _ = shutdown.changed() => return,
        }
    }
}
