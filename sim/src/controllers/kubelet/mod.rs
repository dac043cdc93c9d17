//! The sim's kubelet for images it runs for real (`SimConfig::run_images`):
//! every pod bound to a node (`spec.nodeName` set, as a kubelet only runs
//! its node's pods) with a container of such an image, and not finished, is
//! run by a `worker` (its sandbox and status) with one task per container
//! (`container`: process, probes, restarts after the `backoff`), from the container's
//! environment (`env`) and command line (`argv`), in a `sandbox` of its own
//! (loopback IP, directory, mounted token), reporting a status built by
//! `status`, probed by `probes`. Pods of other images keep the simulated
//! statuses the ReplicaSet controller writes.
//!
//! The controller follows the store's pod events: a new pod to run gets a
//! worker, each change of it goes to its worker, a pod gone from the store
//! stops its worker at once. At shutdown every process is killed and the
//! pods' files removed.

mod argv;
mod backoff;
mod container;
mod env;
mod probes;
mod sandbox;
mod status;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use worker::PodSeen;

use crate::error::GroupResource;
use crate::images::spec_runs_for_real;
use crate::state::SimState;
use crate::store::{EventType, StoredEvent};
use crate::util::metadata_str;

fn pods() -> GroupResource {
    GroupResource::new("", "pods")
}

/// A pod the kubelet works on.
struct Worker {
    seen: watch::Sender<PodSeen>,
    task: JoinHandle<()>,
}

/// Whether the kubelet runs `pod`: bound to a node, with an image it runs,
/// not finished.
fn runs(sim: &SimState, pod: &Value) -> bool {
    let bound =
        pod.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|node| !node.is_empty());
    let finished = matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    bound
        && !finished
        && pod
            .get("spec")
            .is_some_and(|spec| spec_runs_for_real(sim.config.run_images.keys(), spec))
}

struct Kubelet {
    sim: Arc<SimState>,
    workers: HashMap<String, Worker>,
}

impl Kubelet {
    fn uid(pod: &Value) -> String {
        metadata_str(pod, "uid").unwrap_or("").to_string()
    }

    fn observe(&mut self, pod: &Arc<Value>) {
        let uid = Self::uid(pod);
        if let Some(worker) = self.workers.get(&uid) {
            worker.seen.send_replace(PodSeen::Present(pod.clone()));
            return;
        }
        if !runs(&self.sim, pod) {
            return;
        }
        let (seen, updates) = watch::channel(PodSeen::Present(pod.clone()));
        let task = tokio::spawn(worker::run(self.sim.clone(), pod.clone(), updates));
        self.workers.insert(uid, Worker { seen, task });
    }

    fn forget(&mut self, uid: &str) {
        if let Some(worker) = self.workers.remove(uid) {
            // The worker kills what runs and cleans up on its own.
            worker.seen.send_replace(PodSeen::Gone);
        }
    }

    fn resync(&mut self) {
        let all = self.sim.store.lock().list(&pods(), None);
        let present: std::collections::HashSet<String> =
            all.iter().map(|pod| Self::uid(pod)).collect();
        let gone: Vec<String> =
            self.workers.keys().filter(|uid| !present.contains(*uid)).cloned().collect();
        for uid in gone {
            self.forget(&uid);
        }
        for pod in &all {
            self.observe(pod);
        }
    }

    fn on_event(&mut self, event: &StoredEvent) {
        if event.gr != pods() {
            return;
        }
        match event.etype {
            EventType::Deleted => self.forget(&Self::uid(&event.object)),
            EventType::Added | EventType::Modified => self.observe(&event.object),
        }
    }

    /// Stops every worker and waits for them.
    async fn stop(mut self) {
        self.sim.runtime.shut_down();
        let workers: Vec<Worker> = self.workers.drain().map(|(_, worker)| worker).collect();
        for worker in &workers {
            worker.seen.send_replace(PodSeen::Gone);
        }
        for worker in workers {
            let _ = worker.task.await;
        }
    }
}

/// Runs the kubelet until shutdown (at once done when no image is run for real).
pub async fn run(sim: Arc<SimState>) {
    if sim.config.run_images.is_empty() {
        return;
    }
    let mut kubelet = Kubelet { sim: sim.clone(), workers: HashMap::new() };
    super::follow_store(
        &sim,
        &mut kubelet,
        |_, kubelet| kubelet.resync(),
        |_, kubelet, event| kubelet.on_event(event),
    )
    .await;
    kubelet.stop().await;
    if sim.config.kubelet.root_dir.is_none() {
        let _ = std::fs::remove_dir_all(&sim.kubelet_root);
    }
}
