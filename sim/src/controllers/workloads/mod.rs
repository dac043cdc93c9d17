//! The StatefulSet and DaemonSet controllers, one background task: each
//! change of a StatefulSet or DaemonSet, of one of their pods or
//! revisions, or of a node, and each pod start the kubelet has due, syncs
//! the workload concerned (on a timer, at most once per burst of events):
//! `stateful_set` and `daemon_set` port the real controllers' sync loops,
//! `history` their ControllerRevisions, `pods` the pods and the kubelet
//! that starts them.
//!
//! Simulated time: a pod starts (Running and Ready) a pod start time after
//! it is created, the workload's rollout time (`sim.gisops.io/rollout-ms`,
//! else the configured mean with its jitter) divided by the pods a rollout
//! replaces one after another, so a rollout takes about the rollout time.
//! A workload annotated `sim.gisops.io/fail: "true"` gets pods that run but
//! never become ready, except pods of the revision it last completed a
//! rollout to (none for a new one); one annotated `sim.gisops.io/frozen:
//! "true"` is left alone.

mod daemon_set;
mod history;
mod pods;
mod stateful_set;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::deployment::{FROZEN_ANNOTATION, rollout_knobs};
use super::events::{EventNote, Recorder, record};
use crate::error::GroupResource;
use crate::registry::ResourceDef;
use crate::state::SimState;
use crate::store::{EventType, StoreInner, StoredEvent};
use crate::util::{metadata_str, now_ms};
use crate::write::{self, WriteOptions};
use pods::Kubelet;

/// The two workload kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    StatefulSet,
    DaemonSet,
}

impl Kind {
    fn of(gr: &GroupResource) -> Option<Kind> {
        match (gr.group.as_str(), gr.resource.as_str()) {
            ("apps", "statefulsets") => Some(Kind::StatefulSet),
            ("apps", "daemonsets") => Some(Kind::DaemonSet),
            _ => None,
        }
    }

    fn by_name(kind: &str) -> Option<Kind> {
        match kind {
            "StatefulSet" => Some(Kind::StatefulSet),
            "DaemonSet" => Some(Kind::DaemonSet),
            _ => None,
        }
    }
}

/// (kind, namespace, name).
type Key = (Kind, String, String);

/// The resource definitions the controllers read and write through.
pub struct Defs {
    pods: Arc<ResourceDef>,
    revisions: Arc<ResourceDef>,
    stateful_sets: Arc<ResourceDef>,
    daemon_sets: Arc<ResourceDef>,
}

impl Defs {
    fn lookup(store: &StoreInner) -> Option<Defs> {
        Some(Defs {
            pods: store.registry.get("", "v1", "pods")?,
            revisions: store.registry.get("apps", "v1", "controllerrevisions")?,
            stateful_sets: store.registry.get("apps", "v1", "statefulsets")?,
            daemon_sets: store.registry.get("apps", "v1", "daemonsets")?,
        })
    }

    fn def(&self, kind: Kind) -> &ResourceDef {
        match kind {
            Kind::StatefulSet => &self.stateful_sets,
            Kind::DaemonSet => &self.daemon_sets,
        }
    }
}

/// The simulated-time knobs of one workload.
#[derive(Debug, Clone, Default)]
struct Knobs {
    /// How long a created pod stays pending.
    pod_start_ms: u64,
    /// `sim.gisops.io/fail`.
    fail: bool,
    /// The revision (StatefulSet) or hash (DaemonSet) whose pods start
    /// ready even when failing: the last one a rollout completed.
    good: Option<String>,
}

/// What a sync works with beside the store.
struct Ctx<'a> {
    sim: &'a SimState,
    defs: &'a Defs,
    kubelet: &'a mut Kubelet,
    knobs: Knobs,
    now_ms: u64,
    /// Making a generated workload as if long rolled out: pods ready at
    /// once, no Events.
    settling: bool,
    /// While settling, the nodes the fleet planned for a StatefulSet's pods
    /// (by ordinal); they are bound there as the fleet's Deployments' are.
    planned_nodes: &'a [String],
}

/// What a sync leaves for later.
#[derive(Debug, Default)]
struct Outcome {
    /// When the workload must be synced again (a pod starts, or becomes
    /// available).
    next_due: Option<u64>,
    /// The revision every pod runs ready, when a rollout is complete.
    settled_revision: Option<String>,
}

/// Writes a workload's status through the status subresource (with the
/// metadata as stored, which the apps status strategies keep) when it
/// changed.
fn write_status(
    ctx: &Ctx<'_>,
    store: &mut StoreInner,
    kind: Kind,
    workload: &Value,
    status: Value,
) {
    let def = ctx.defs.def(kind);
    let namespace = metadata_str(workload, "namespace").unwrap_or("");
    let name = metadata_str(workload, "name").unwrap_or("");
    let Some(stored) = store.get(&def.storage_gr(), namespace, name) else {
        return;
    };
    if stored.get("status") == Some(&status) {
        return;
    }
    let mut updated = (*stored).clone();
    updated["status"] = status;
    let options = WriteOptions {
        subresource: Some("status"),
        ..WriteOptions::internal("kube-controller-manager")
    };
    if let Err(error) = write::update(store, def, &stored, updated, &options) {
        tracing::debug!(error = %error, kind = ?kind, "workload status update failed");
    }
}

/// Records a `Normal` Event of the controller `component` about a
/// workload.
fn record_normal(
    sim: &SimState,
    store: &mut StoreInner,
    component: &str,
    workload: &Value,
    reason: &str,
    message: &str,
) {
    let note = EventNote { kind: "Normal", reason, message };
    record(sim, store, workload, &Recorder::Legacy { component }, &note);
}

/// An int-or-percent of `total` (`GetScaledValueFromIntOrPercent`).
fn int_or_percent(value: &Value, total: u64, round_up: bool) -> u64 {
    if let Some(count) = value.as_u64() {
        return count;
    }
    let percent = value
        .as_str()
        .and_then(|text| text.strip_suffix('%'))
        .and_then(|digits| digits.parse::<u64>().ok());
    match percent {
        Some(percent) if round_up => (total * percent).div_ceil(100),
        Some(percent) => total * percent / 100,
        None => 0,
    }
}

fn is_frozen(object: &Value) -> bool {
    object
        .pointer("/metadata/annotations")
        .and_then(|annotations| annotations.get(FROZEN_ANNOTATION))
        .and_then(Value::as_str)
        == Some("true")
}

/// The revision a stored workload completed a rollout to, if its status
/// says so (the generated fleet, or one found after a restart).
fn settled_in_status(kind: Kind, object: &Value) -> Option<String> {
    let status = object.get("status")?;
    let number = |key: &str| status.get(key).and_then(Value::as_i64).unwrap_or(0);
    let observed = number("observedGeneration")
        >= object.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    match kind {
        Kind::StatefulSet => {
            let replicas = object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let current = status.get("currentRevision").and_then(Value::as_str)?;
            (observed
                && Some(current) == status.get("updateRevision").and_then(Value::as_str)
                && number("readyReplicas") == replicas
                && number("updatedReplicas") == replicas)
                .then(|| current.to_string())
        }
        Kind::DaemonSet => {
            let desired = number("desiredNumberScheduled");
            (observed
                && number("updatedNumberScheduled") == desired
                && number("numberAvailable") == desired)
                .then(|| super::rollout::pod_template_hash(object))
        }
    }
}

/// The StatefulSet or DaemonSet controlling an object (a pod or a
/// revision), from its controller reference; read without copying, as
/// every pod event of the cluster passes here.
fn workload_controller(object: &Value) -> Option<(Kind, &str)> {
    let references = object.pointer("/metadata/ownerReferences")?.as_array()?;
    let controller =
        references.iter().find(|reference| reference["controller"].as_bool() == Some(true))?;
    let api_version = controller["apiVersion"].as_str()?;
    if !api_version.starts_with("apps/") {
        return None;
    }
    let kind = Kind::by_name(controller["kind"].as_str()?)?;
    Some((kind, controller["name"].as_str()?))
}

/// What the controller remembers of one workload.
struct Tracked {
    /// The generation the knobs were drawn for.
    generation: i64,
    knobs: Knobs,
    /// Its entry in the timers.
    due: Option<u64>,
}

/// Runs the controllers until shutdown.
pub async fn run(sim: Arc<SimState>) {
    let mut events = sim.store.lock().subscribe();
    let mut controller = Controller {
        sim: sim.clone(),
        tracked: HashMap::new(),
        timers: BTreeSet::new(),
        kubelet: Kubelet::default(),
    };
    controller.resync();
    let mut shutdown = sim.shutdown.clone();
    loop {
        let wake = controller.timers.first().map(|(due, _)| *due);
        let timer = async {
            match wake {
                Some(due) => {
                    let wait = due.saturating_sub(now_ms());
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) => controller.on_event(&event),
                Err(RecvError::Lagged(_)) => {
                    events = sim.store.lock().subscribe();
                    controller.resync();
                }
                Err(RecvError::Closed) => return,
            },
            () = timer => controller.fire_due(),
            _ = shutdown.changed() => return,
        }
    }
}

struct Controller {
    sim: Arc<SimState>,
    tracked: HashMap<Key, Tracked>,
    /// (due ms, workload): when each workload is synced next.
    timers: BTreeSet<(u64, Key)>,
    kubelet: Kubelet,
}

impl Controller {
    /// Schedules every stored workload now.
    fn resync(&mut self) {
        let keys: Vec<Key> = {
            let store = self.sim.store.lock();
            [Kind::StatefulSet, Kind::DaemonSet]
                .into_iter()
                .flat_map(|kind| {
                    let gr = match kind {
                        Kind::StatefulSet => GroupResource::new("apps", "statefulsets"),
                        Kind::DaemonSet => GroupResource::new("apps", "daemonsets"),
                    };
                    store.list(&gr, None).into_iter().map(move |object| {
                        let text = |key: &str| metadata_str(&object, key).unwrap_or("").to_string();
                        (kind, text("namespace"), text("name"))
                    })
                })
                .collect()
        };
        let now = now_ms();
        for key in keys {
            self.schedule(&key, now);
        }
    }

    /// Syncs `key` at `at` (or earlier, if already due earlier).
    fn schedule(&mut self, key: &Key, at: u64) {
        let due = self.tracked.get(key).and_then(|tracked| tracked.due);
        if due.is_some_and(|due| due <= at) {
            return;
        }
        if let Some(due) = due {
            self.timers.remove(&(due, key.clone()));
        }
        self.timers.insert((at, key.clone()));
        let tracked = self.tracked.entry(key.clone()).or_insert_with(|| Tracked {
            generation: -1,
            knobs: Knobs::default(),
            due: None,
        });
        tracked.due = Some(at);
    }

    fn forget(&mut self, key: &Key) {
        if let Some(tracked) = self.tracked.remove(key)
            && let Some(due) = tracked.due
        {
            self.timers.remove(&(due, key.clone()));
        }
    }

    fn on_event(&mut self, event: &StoredEvent) {
        let now = now_ms();
        if let Some(kind) = Kind::of(&event.gr) {
            let key = (kind, event.namespace.clone(), event.name.clone());
            if event.etype == EventType::Deleted {
                self.forget(&key);
            } else {
                self.schedule(&key, now);
            }
            return;
        }
        let is_pod = event.gr.group.is_empty() && event.gr.resource == "pods";
        if is_pod || (event.gr.group == "apps" && event.gr.resource == "controllerrevisions") {
            if is_pod && event.etype == EventType::Deleted {
                self.kubelet.forget(metadata_str(&event.object, "uid").unwrap_or(""));
            }
            if let Some((kind, owner)) = workload_controller(&event.object) {
                self.schedule(&(kind, event.namespace.clone(), owner.to_string()), now);
            }
            return;
        }
        if event.gr.group.is_empty() && event.gr.resource == "nodes" {
            let daemon_sets: Vec<Key> =
                self.tracked.keys().filter(|key| key.0 == Kind::DaemonSet).cloned().collect();
            for key in daemon_sets {
                self.schedule(&key, now);
            }
        }
    }

    /// Syncs every workload whose timer is due.
    fn fire_due(&mut self) {
        let now = now_ms();
        while let Some((due, key)) = self.timers.first().cloned() {
            if due > now {
                break;
            }
            self.timers.remove(&(due, key.clone()));
            if let Some(tracked) = self.tracked.get_mut(&key) {
                tracked.due = None;
            }
            self.sync(&key, now);
        }
    }

    fn sync(&mut self, key: &Key, now: u64) {
        let sim = self.sim.clone();
        let mut store = sim.store.lock();
        let Some(defs) = Defs::lookup(&store) else {
            return;
        };
        let (kind, namespace, name) = key;
        let Some(object) = store.get(&defs.def(*kind).storage_gr(), namespace, name) else {
            drop(store);
            self.forget(key);
            return;
        };
        if is_frozen(&object) {
            return;
        }
        let generation =
            object.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
        let Some(tracked) = self.tracked.get_mut(key) else {
            return;
        };
        if tracked.generation != generation {
            if tracked.generation < 0 {
                tracked.knobs.good = settled_in_status(*kind, &object);
            }
            tracked.generation = generation;
            let (rollout_ms, fail) = rollout_knobs(&sim, &object);
            let steps = match kind {
                Kind::StatefulSet => stateful_set::SetSpec::of(&object).steps(),
                Kind::DaemonSet => {
                    let desired = super::nodes::node_names(&store).len() as u64;
                    daemon_set::DaemonSpec::of(&object).steps(desired)
                }
            };
            tracked.knobs.pod_start_ms = rollout_ms / steps.max(1);
            tracked.knobs.fail = fail;
        }
        let mut ctx = Ctx {
            sim: &sim,
            defs: &defs,
            kubelet: &mut self.kubelet,
            knobs: tracked.knobs.clone(),
            now_ms: now,
            settling: false,
            planned_nodes: &[],
        };
        let outcome = match kind {
            Kind::StatefulSet => stateful_set::sync(&mut ctx, &mut store, &object),
            Kind::DaemonSet => daemon_set::sync(&mut ctx, &mut store, &object),
        };
        drop(store);
        if let Some(tracked) = self.tracked.get_mut(key)
            && outcome.settled_revision.is_some()
        {
            tracked.knobs.good = outcome.settled_revision;
        }
        if let Some(due) = outcome.next_due {
            self.schedule(key, due);
        }
    }
}

/// Makes the revision, pods and status of a StatefulSet or DaemonSet
/// created rolled out (the generated fleet), as if the controllers had
/// long finished: pods ready, no Events; a StatefulSet's pods on `nodes`
/// when given (by ordinal), a DaemonSet's on theirs.
pub fn settle(sim: &SimState, store: &mut StoreInner, workload: &Value, nodes: Option<&[String]>) {
    let Some(defs) = Defs::lookup(store) else {
        return;
    };
    let kind = workload.get("kind").and_then(Value::as_str).and_then(Kind::by_name);
    let mut kubelet = Kubelet::default();
    let mut ctx = Ctx {
        sim,
        defs: &defs,
        kubelet: &mut kubelet,
        knobs: Knobs::default(),
        now_ms: now_ms(),
        settling: true,
        planned_nodes: nodes.unwrap_or_default(),
    };
    match kind {
        Some(Kind::StatefulSet) => {
            stateful_set::sync(&mut ctx, store, workload);
        }
        Some(Kind::DaemonSet) => {
            daemon_set::sync(&mut ctx, store, workload);
        }
        None => {}
    }
}
