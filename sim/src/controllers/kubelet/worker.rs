//! The kubelet's work on one pod: its sandbox (IP, directory, mounted
//! token), one task per container, the pod status after every change they
//! report, the token's refresh, and the pod's end: on deletion the
//! containers get SIGTERM and their grace period, the final status is
//! written and the pod is deleted for good (grace 0, with its uid as
//! precondition), as the kubelet confirms a graceful deletion. A pod
//! deleted at once (grace 0, or forced) and the sim's shutdown kill the
//! processes without waiting.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::container::{self, ContainerSetup};
use super::sandbox::{self, MountedToken, PodDir, PodIp};
use super::status::{ContainerReport, PodFacts, State, pod_status};
use crate::controllers::replica_sets::host_ip;
use crate::error::GroupResource;
use crate::images::mapped_binary;
use crate::placement::qos_class;
use crate::state::SimState;
use crate::util::metadata_str;
use crate::write::{self, DeleteOptions, DeletePreconditions, WriteOptions};

/// How often the kubelet retries what failed while setting up the sandbox.
const SETUP_RETRY: Duration = Duration::from_secs(1);
/// How soon a failed token refresh is retried.
const TOKEN_RETRY: Duration = Duration::from_secs(10);

/// The latest the kubelet saw of its pod.
#[derive(Debug, Clone)]
pub enum PodSeen {
    Present(Arc<Value>),
    Gone,
}

/// Why the pod's work ends.
enum End {
    /// Deleted gracefully: containers stopped, pod to be removed.
    Graceful,
    /// Gone from the store, or the sim shuts down: kill everything.
    Abrupt,
}

struct Pod {
    sim: Arc<SimState>,
    namespace: String,
    name: String,
    uid: String,
    host_ip: String,
    start_time: jiff::Timestamp,
    qos_class: &'static str,
    updates: watch::Receiver<PodSeen>,
    shutdown: watch::Receiver<bool>,
}

fn pods() -> GroupResource {
    GroupResource::new("", "pods")
}

fn is_deleting(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_some()
}

/// The grace period of a deleted pod.
fn grace_of(pod: &Value) -> Duration {
    let seconds = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .or_else(|| pod.pointer("/spec/terminationGracePeriodSeconds"))
        .and_then(Value::as_u64)
        .unwrap_or(30);
    Duration::from_secs(seconds)
}

/// Runs pod `first` until it is gone.
pub async fn run(sim: Arc<SimState>, first: Arc<Value>, mut updates: watch::Receiver<PodSeen>) {
    // The pod as first seen counts as a change: one deleted already stops at once.
    updates.mark_changed();
    let containers: Vec<Value> =
        first.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();
    let field = |key: &str| metadata_str(&first, key).unwrap_or("").to_string();
    let host_ip = host_ip(&first, &sim.store.lock());
    let mut pod = Pod {
        shutdown: sim.shutdown.clone(),
        namespace: field("namespace"),
        name: field("name"),
        uid: field("uid"),
        host_ip,
        start_time: jiff::Timestamp::now(),
        qos_class: qos_class(&containers),
        sim,
        updates,
    };
    let waiting = vec![ContainerReport::default(); containers.len()];
    pod.write_status(None, &waiting, false);
    let Some((ip, dir, token)) = pod.set_up(&first, &waiting).await else {
        return;
    };
    pod.run_containers(&first, &containers, ip, dir, token).await;
}

impl Pod {
    /// The pod as stored now, if it is still this pod.
    fn stored(&self) -> Option<Arc<Value>> {
        self.sim
            .store
            .lock()
            .get(&pods(), &self.namespace, &self.name)
            .filter(|pod| metadata_str(pod, "uid") == Some(self.uid.as_str()))
    }

    /// Writes the status the reports make (the kubelet's status manager).
    fn write_status(&self, pod_ip: Option<&str>, reports: &[ContainerReport], terminal: bool) {
        let mut store = self.sim.store.lock();
        let Some(stored) = store
            .get(&pods(), &self.namespace, &self.name)
            .filter(|pod| metadata_str(pod, "uid") == Some(self.uid.as_str()))
        else {
            return;
        };
        let Some(def) = store.registry.get("", "v1", "pods") else {
            return;
        };
        let facts = PodFacts {
            pod: &stored,
            host_ip: &self.host_ip,
            pod_ip,
            start_time: self.start_time,
            qos_class: self.qos_class,
            terminal,
        };
        let status = pod_status(&facts, reports);
        if stored.get("status") == Some(&status) {
            return;
        }
        let options =
            WriteOptions { subresource: Some("status"), ..WriteOptions::internal("kubelet") };
        if let Err(error) =
            write::update(&mut store, &def, &stored, json!({"status": status}), &options)
        {
            tracing::debug!(%error, pod = %self.name, "kubelet status update failed");
        }
    }

    /// Waits `delay` unless the pod goes or the sim stops (then false).
    async fn pause(&mut self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        let mut shutdown = self.shutdown.clone();
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return true,
                changed = self.updates.changed() => {
                    let gone = changed.is_err() || match &*self.updates.borrow() {
                        PodSeen::Gone => true,
                        PodSeen::Present(pod) => is_deleting(pod),
                    };
                    if gone {
                        return false;
                    }
                }
                _ = shutdown.wait_for(|stopping| *stopping) => return false,
            }
        }
    }

    /// The sandbox: an IP, the pod's directory, the token when mounted. `None`
    /// when the pod went away first (a deleted pod is then removed).
    async fn set_up(
        &mut self,
        pod: &Value,
        waiting: &[ContainerReport],
    ) -> Option<(PodIp, PodDir, Option<MountedToken>)> {
        let (ip, dir) = loop {
            let start = self.sim.rng.with(|rng| rng.next_u64());
            let root = self.sim.kubelet_root.clone();
            match sandbox::allocate_ip(start).and_then(|ip| Ok((ip, PodDir::create(&root, pod)?))) {
                Ok(made) => break made,
                Err(error) => {
                    tracing::warn!(%error, pod = %self.name, "creating a pod sandbox");
                    if !self.pause(SETUP_RETRY).await {
                        return self.abandon().await;
                    }
                }
            }
        };
        let mut token = None;
        if sandbox::automounts(&self.sim, pod) {
            loop {
                match sandbox::mount_token(&self.sim, pod, &dir) {
                    Ok(mounted) => {
                        token = Some(mounted);
                        break;
                    }
                    Err(message) => {
                        tracing::debug!(%message, pod = %self.name, "mounting the ServiceAccount token");
                        self.write_status(None, waiting, false);
                        if !self.pause(SETUP_RETRY).await {
                            return self.abandon().await;
                        }
                    }
                }
            }
            if let Err(error) = sandbox::write_kubeconfig(&dir, self.sim.addr, pod) {
                tracing::warn!(%error, pod = %self.name, "writing the pod's kubeconfig");
            }
        }
        Some((ip, dir, token))
    }

    /// The pod went away before its sandbox was ready: a deleted pod is
    /// removed, as nothing runs.
    async fn abandon<T>(&mut self) -> Option<T> {
        if self.stored().is_some_and(|pod| is_deleting(&pod)) && !*self.shutdown.borrow() {
            self.remove();
        }
        None
    }

    async fn run_containers(
        &mut self,
        first: &Arc<Value>,
        containers: &[Value],
        ip: PodIp,
        dir: PodDir,
        token: Option<MountedToken>,
    ) {
        let pod_ip = ip.ip.to_string();
        let changed = Arc::new(Notify::new());
        let (stop, stop_requested) = watch::channel(None::<Duration>);
        let mut reports = Vec::new();
        let mut tasks: Vec<JoinHandle<()>> = Vec::new();
        for container in containers {
            let (report, watched) = watch::channel(ContainerReport::default());
            reports.push(watched);
            let image = container["image"].as_str().unwrap_or("");
            let setup = ContainerSetup {
                sim: self.sim.clone(),
                pod: first.clone(),
                container: container.clone(),
                binary: mapped_binary(&self.sim.config.run_images, image).map(PathBuf::from),
                pod_ip: pod_ip.clone(),
                host_ip: self.host_ip.clone(),
                rootfs: dir.rootfs.clone(),
                kubeconfig: token.map(|_| dir.kubeconfig()),
                report,
                changed: changed.clone(),
                stop: stop_requested.clone(),
            };
            tasks.push(tokio::spawn(container::run(setup)));
        }
        let snapshot = |reports: &[watch::Receiver<ContainerReport>]| -> Vec<ContainerReport> {
            reports.iter().map(|report| report.borrow().clone()).collect()
        };
        self.write_status(Some(&pod_ip), &snapshot(&reports), false);
        // Whatever happened to the pod while the sandbox was made is looked at first.
        self.updates.mark_changed();
        let mut stopping = false;
        let mut refresh = token.map(|token| refresh_instant(&token));
        let mut shutdown = self.shutdown.clone();
        let end = loop {
            tokio::select! {
                () = changed.notified() => {
                    self.write_status(Some(&pod_ip), &snapshot(&reports), false);
                    if stopping && tasks.iter().all(JoinHandle::is_finished) {
                        break End::Graceful;
                    }
                }
                () = sleep_until_some(refresh) => {
                    refresh = match sandbox::mount_token(&self.sim, first, &dir) {
                        Ok(mounted) => Some(refresh_instant(&mounted)),
                        Err(message) => {
                            tracing::debug!(%message, pod = %self.name, "refreshing the ServiceAccount token");
                            Some(Instant::now() + TOKEN_RETRY)
                        }
                    };
                }
                changed_pod = self.updates.changed() => {
                    let seen = if changed_pod.is_err() { PodSeen::Gone } else { self.updates.borrow().clone() };
                    match seen {
                        PodSeen::Gone => break End::Abrupt,
                        PodSeen::Present(pod) if is_deleting(&pod) && !stopping => {
                            stopping = true;
                            stop.send_replace(Some(grace_of(&pod)));
                        }
                        PodSeen::Present(_) => {}
                    }
                }
                () = wait_all(&mut tasks), if stopping => break End::Graceful,
                _ = shutdown.wait_for(|stopping| *stopping) => break End::Abrupt,
            }
        };
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // A finished task's result may have been taken already.
            if !task.is_finished() {
                let _ = task.await;
            }
        }
        let finals = snapshot(&reports);
        if matches!(end, End::Graceful) {
            let finals: Vec<ContainerReport> = finals
                .iter()
                .cloned()
                .map(|mut report| {
                    // A container stopped while waiting to restart ends as it last ended.
                    if matches!(report.state, State::Waiting { .. })
                        && let Some(last) = report.last_terminated.clone()
                    {
                        report.state = State::Terminated(last);
                    }
                    report.ready = false;
                    report
                })
                .collect();
            self.write_status(Some(&pod_ip), &finals, true);
            self.remove();
        }
        for report in &finals {
            for id in [
                report.container_id.as_ref(),
                report.last_terminated.as_ref().and_then(|t| t.container_id.as_ref()),
            ]
            .into_iter()
            .flatten()
            {
                self.sim.logs.remove(id);
            }
        }
        drop(dir);
        drop(ip);
    }

    /// Deletes the pod for good (the kubelet's confirmation of a graceful deletion).
    fn remove(&self) {
        let mut store = self.sim.store.lock();
        let (Some(pod), Some(def)) = (
            store
                .get(&pods(), &self.namespace, &self.name)
                .filter(|pod| metadata_str(pod, "uid") == Some(self.uid.as_str())),
            store.registry.get("", "v1", "pods"),
        ) else {
            return;
        };
        let options = DeleteOptions {
            preconditions: DeletePreconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            },
            grace_period_seconds: Some(0),
            ..DeleteOptions::default()
        };
        if let Err(error) = write::delete(&mut store, &def, &pod, &options) {
            tracing::debug!(%error, pod = %self.name, "kubelet could not remove a terminated pod");
        }
    }
}

/// When the kubelet replaces `token`.
fn refresh_instant(token: &MountedToken) -> Instant {
    let wait = token.refresh_at() - jiff::Timestamp::now().as_second();
    Instant::now() + Duration::from_secs(u64::try_from(wait).unwrap_or(0))
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Waits until every task has finished.
async fn wait_all(tasks: &mut [JoinHandle<()>]) {
    for task in tasks.iter_mut() {
        if !task.is_finished() {
            let _ = task.await;
        }
    }
}
