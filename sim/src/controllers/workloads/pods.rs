//! The pods of StatefulSets and DaemonSets: what a controller sees of each
//! (`PodView`: revision, readiness, availability), creating them where the
//! scheduler places them (with nodes, a pod no node takes waits unbound)
//! and deleting them through the write pipeline, and the "kubelet" that
//! starts them: a bound pod is `Pending` (ContainerCreating) until its
//! start time, a pod start time after it was bound, then `Running` and
//! `Ready`, or running but never ready when its workload is failing. Pods
//! of images the sim runs for real are left to its kubelet.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::{Ctx, Defs};
use crate::controllers::owners::{is_controlled_by, is_deleting};
use crate::controllers::replica_sets::{PodPhase, is_bound, is_pod_ready, set_pod_phase};
use crate::controllers::scheduler;
use crate::store::StoreInner;
use crate::util::metadata_str;
use crate::write::{self, DeleteOptions, DeletePreconditions, WriteOptions};

/// The label holding the revision a workload pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// What a controller needs to know of one of its pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    pub name: String,
    /// The `controller-revision-hash` label.
    pub revision: String,
    /// `spec.nodeName`.
    pub node: String,
    /// (creationTimestamp, name): the controllers' age order.
    pub created: (String, String),
    /// `status.phase`.
    pub phase: String,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// Ready for at least `minReadySeconds`.
    pub available: bool,
    /// When a ready pod becomes available (ms), if it is not yet.
    pub available_at: Option<u64>,
    /// Being deleted.
    pub deleting: bool,
}

impl PodView {
    /// The view of `pod` at `now_ms`, with the workload's `minReadySeconds`.
    pub fn of(pod: &Value, min_ready_seconds: u64, now_ms: u64) -> PodView {
        let text = |pointer: &str| pod.pointer(pointer).and_then(Value::as_str).unwrap_or("");
        let ready = is_pod_ready(pod);
        let ready_since = pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|conditions| conditions.iter().find(|condition| condition["type"] == "Ready"))
            .and_then(|condition| condition["lastTransitionTime"].as_str())
            .and_then(|time| time.parse::<jiff::Timestamp>().ok())
            .and_then(|time| u64::try_from(time.as_millisecond()).ok());
        let available_at = match (ready, ready_since) {
            (true, Some(since)) if min_ready_seconds > 0 => Some(since + min_ready_seconds * 1000),
            _ => None,
        };
        let available = ready && available_at.is_none_or(|at| at <= now_ms);
        PodView {
            name: text("/metadata/name").to_owned(),
            revision: text(&format!("/metadata/labels/{REVISION_LABEL}")).to_owned(),
            node: text("/spec/nodeName").to_owned(),
            created: (
                text("/metadata/creationTimestamp").to_owned(),
                text("/metadata/name").to_owned(),
            ),
            phase: text("/status/phase").to_owned(),
            ready,
            available,
            available_at: available_at.filter(|at| *at > now_ms),
            deleting: is_deleting(pod),
        }
    }

    /// `isRunningAndReady`.
    pub fn running_and_ready(&self) -> bool {
        self.phase == "Running" && self.ready
    }

    /// `isHealthy`: running, ready and not being deleted.
    pub fn healthy(&self) -> bool {
        self.running_and_ready() && !self.deleting
    }
}

/// The pods `owner` controls whose names start with `prefix`, in name
/// order.
pub fn owned_pods(store: &StoreInner, defs: &Defs, owner: &Value, prefix: &str) -> Vec<Arc<Value>> {
    let uid = metadata_str(owner, "uid").unwrap_or("");
    let namespace = metadata_str(owner, "namespace").unwrap_or("");
    store
        .list_prefix(&defs.pods.storage_gr(), namespace, prefix)
        .into_iter()
        .filter(|pod| is_controlled_by(pod, uid))
        .collect()
}

/// When the kubelet starts a pod, and whether it will ever be ready.
#[derive(Debug, Clone, Copy)]
struct Start {
    at_ms: u64,
    fails: bool,
}

/// The kubelet's side of the workload pods: when each pending pod starts.
#[derive(Debug, Default)]
pub struct Kubelet {
    starts: HashMap<String, Start>,
}

impl Kubelet {
    /// Forgets a deleted pod (by uid).
    pub fn forget(&mut self, uid: &str) {
        self.starts.remove(uid);
    }

    /// Records when a pod just created starts.
    fn starting(&mut self, uid: &str, start: Start) {
        self.starts.insert(uid.to_owned(), start);
    }
}

/// The kubelet brings `pods` to now: pending bound pods whose start time
/// has come start, ready unless they fail; pending bound pods it has not
/// seen (bound since they were created) are `ContainerCreating` and start a
/// pod start time from now (`fails` says whether a pod fails). Returns the
/// earliest start still ahead.
pub fn start_due(
    ctx: &mut Ctx<'_>,
    store: &mut StoreInner,
    pods: &[Arc<Value>],
    fails: &dyn Fn(&Value) -> bool,
) -> Option<u64> {
    let now_ms = ctx.now_ms;
    let mut next: Option<u64> = None;
    for pod in pods {
        let runs_for_real = pod.get("spec").is_some_and(|spec| ctx.sim.runs_for_real(spec));
        if pod.pointer("/status/phase").and_then(Value::as_str) != Some("Pending")
            || is_deleting(pod)
            || !is_bound(pod)
            || runs_for_real
        {
            continue;
        }
        let uid = metadata_str(pod, "uid").unwrap_or("").to_string();
        let start = match ctx.kubelet.starts.get(&uid) {
            Some(start) => *start,
            None => {
                set_pod_phase(ctx.sim, store, &ctx.defs.pods, pod, PodPhase::Starting);
                let start = Start { at_ms: now_ms + ctx.knobs.pod_start_ms, fails: fails(pod) };
                ctx.kubelet.starting(&uid, start);
                start
            }
        };
        if start.at_ms > now_ms {
            next = Some(next.map_or(start.at_ms, |next| next.min(start.at_ms)));
            continue;
        }
        let phase = if start.fails { PodPhase::Unready } else { PodPhase::Ready };
        set_pod_phase(ctx.sim, store, &ctx.defs.pods, pod, phase);
        ctx.kubelet.starts.remove(&uid);
    }
    next
}

/// Creates a pod for a workload where the scheduler places it; once bound,
/// the kubelet starts it after the workload's pod start time (at once,
/// ready, while settling), failing when `fails`. Returns the created pod's
/// name.
pub fn create(
    ctx: &mut Ctx<'_>,
    store: &mut StoreInner,
    mut pod: Value,
    fails: bool,
) -> Option<String> {
    let namespace = metadata_str(&pod, "namespace").unwrap_or("").to_string();
    let options = WriteOptions::internal("kube-controller-manager");
    let placement = scheduler::place(ctx.sim, store, &mut pod);
    let created =
        match write::create(store, &ctx.sim.rng, &ctx.defs.pods, Some(&namespace), pod, &options) {
            Ok(created) => created,
            Err(error) => {
                tracing::debug!(error = %error, "creating a workload pod failed");
                return None;
            }
        };
    scheduler::created(ctx.sim, store, &created, &placement);
    let name = metadata_str(&created, "name").unwrap_or("").to_string();
    let stored = store.get(&ctx.defs.pods.storage_gr(), &namespace, &name)?;
    if !is_bound(&stored) {
        // The kubelet starts it once the scheduler binds it.
        return Some(name);
    }
    if ctx.settling {
        set_pod_phase(ctx.sim, store, &ctx.defs.pods, &stored, PodPhase::Ready);
    } else {
        set_pod_phase(ctx.sim, store, &ctx.defs.pods, &stored, PodPhase::Starting);
        let uid = metadata_str(&stored, "uid").unwrap_or("");
        ctx.kubelet.starting(uid, Start { at_ms: ctx.now_ms + ctx.knobs.pod_start_ms, fails });
    }
    Some(name)
}

/// Deletes a workload pod (with its uid as precondition); whether it went.
pub fn delete(store: &mut StoreInner, defs: &Defs, namespace: &str, name: &str) -> bool {
    let Some(pod) = store.get(&defs.pods.storage_gr(), namespace, name) else {
        return false;
    };
    let options = DeleteOptions {
        preconditions: DeletePreconditions {
            uid: metadata_str(&pod, "uid").map(String::from),
            resource_version: None,
        },
        ..DeleteOptions::default()
    };
    match write::delete(store, &defs.pods, &pod, &options) {
        Ok(_) => true,
        Err(error) => {
            tracing::debug!(error = %error, pod = name, "deleting a workload pod failed");
            false
        }
    }
}
