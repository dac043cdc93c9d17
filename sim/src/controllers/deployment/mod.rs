//! The simulated Deployment controller: a background task that notices
//! generation changes of Deployments (from the store's event stream),
//! starts a rollout plan for each, and writes the plan's status through the
//! write pipeline's status update (so resourceVersion bumps and MODIFIED
//! events happen as with a real controller) exactly when the plan says the
//! status changes: it sleeps until the earliest next change of any tracked
//! rollout (on a precise timer), not on a fixed tick. With each status change it brings the
//! Deployment's ReplicaSets and Pods in line (`replica_sets`), and it keeps
//! the template-change and concurrent-rollout statistics. Deployments
//! annotated [`FROZEN_ANNOTATION`] are left alone. `dependents` reacts to
//! changes of their ReplicaSets and Pods made by others (deletions, the
//! scheduler binding waiting pods, and pods that run for real getting ready
//! or unready). With nodes, after bringing a rollout's objects in line it
//! counts the new pods no node took and, when the plan assumed otherwise,
//! rebases the plan (`rollout::rebase`) and writes the status it gives at
//! once. A Deployment whose pods the kubelet runs for real has a plan that
//! follows its new pods' readiness instead of the clock, synced on every
//! readiness change (it needs no rebase: pods waiting for a node are simply
//! not ready).

mod dependents;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::owners::is_deleting;
use super::replica_sets::{self, Defs, REVISION_ANNOTATION, Rollout, Workload};
use super::rollout::{self, PodCounts, RolloutPlan};
use super::timer::PreciseTimer;
use crate::error::GroupResource;
use crate::state::SimState;
use crate::store::{EventType, ObjectKey, StoredEvent};
use crate::util::{metadata_mut, metadata_str, now_ms};
use crate::write::{self, WriteOptions};

/// Per-Deployment annotation: rollout duration in milliseconds.
pub const ROLLOUT_MS_ANNOTATION: &str = "sim.gisops.io/rollout-ms";
/// Per-Deployment annotation: new pods never become available.
pub const FAIL_ANNOTATION: &str = "sim.gisops.io/fail";
/// Per-Deployment annotation: with `"true"` the controller leaves the
/// Deployment alone (no rollout, no status, no ReplicaSets or Pods), so its
/// status is exactly what clients write to the `status` subresource: a
/// fixture for judging crafted statuses with real clients.
pub const FROZEN_ANNOTATION: &str = "sim.gisops.io/frozen";

/// What the controller remembers of one Deployment.
struct TrackedDeployment {
    /// The generation the plan is for.
    generation: i64,
    plan: RolloutPlan,
    /// The plan's ReplicaSets (`None`: none are made for this Deployment).
    workload: Option<Workload>,
    /// The pod counts its ReplicaSets and Pods were last brought to.
    applied: Option<PodCounts>,
    /// Someone else changed its ReplicaSets or Pods: look again even if the
    /// counts did not change.
    stale: bool,
    /// The plan still writes statuses.
    active: bool,
    /// The plan rolls pods (counts towards `rolling_now`).
    rolling: bool,
    /// When the controller next looks at it (its entry in the timers).
    due: Option<u64>,
}

fn key_of(deployment: &Value) -> ObjectKey {
    let field = |key: &str| metadata_str(deployment, key).unwrap_or("").to_string();
    (field("namespace"), field("name"))
}

fn generation_of(deployment: &Value) -> i64 {
    deployment.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0)
}

fn annotation<'a>(deployment: &'a Value, key: &str) -> Option<&'a str> {
    deployment
        .pointer("/metadata/annotations")
        .and_then(|annotations| annotations.get(key))
        .and_then(Value::as_str)
}

/// The rollout duration (ms) and failure knob of a workload: its
/// annotations, else the configured mean with its jitter.
pub(super) fn rollout_knobs(sim: &SimState, deployment: &Value) -> (u64, bool) {
    let fail = annotation(deployment, FAIL_ANNOTATION) == Some("true");
    let configured = annotation(deployment, ROLLOUT_MS_ANNOTATION)
        .and_then(|value| value.trim().parse::<u64>().ok());
    let duration = match configured {
        Some(ms) => ms,
        None => {
            // Uniform in mean ± jitter, so `rollout_ms` stays the mean rollout time.
            let jitter = sim.config.rollout_jitter_ms.min(sim.config.rollout_ms);
            let low = sim.config.rollout_ms - jitter;
            low + if jitter > 0 { sim.rng.with(|rng| rng.below(2 * jitter + 1)) } else { 0 }
        }
    };
    (duration, fail)
}

fn deployments() -> GroupResource {
    GroupResource::new("apps", "deployments")
}

/// The status of a Deployment whose first rollout finished a minute before
/// `now_ms` (the generated fleet starts settled).
pub fn rolled_out_status(deployment: &Value, now_ms: u64) -> Value {
    let plan = rollout::begin(deployment, None, now_ms.saturating_sub(60_000), 0, false);
    rollout::status_at(deployment, &plan, now_ms)
}

/// Now in microseconds since the Unix epoch (the timers' precision).
fn now_us() -> i128 {
    jiff::Timestamp::now().as_microsecond() as i128
}

/// Runs the controller until shutdown.
pub async fn run(sim: Arc<SimState>) {
    let mut events = sim.store.lock().subscribe();
    let mut controller =
        Controller { sim: sim.clone(), tracked: HashMap::new(), timers: BTreeSet::new() };
    controller.rescan();
    let mut shutdown = sim.shutdown.clone();
    let timer = PreciseTimer::new();
    loop {
        timer.set(controller.next_wake());
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) => controller.on_event(&event),
                Err(RecvError::Lagged(_)) => {
                    // Events were missed: start over from the stored state.
                    events = sim.store.lock().subscribe();
                    controller.rescan();
                }
                Err(RecvError::Closed) => return,
            },
            () = timer.fired() => controller.fire_due(),
            _ = shutdown.changed() => return,
        }
    }
}

struct Controller {
    sim: Arc<SimState>,
    tracked: HashMap<ObjectKey, TrackedDeployment>,
    /// (due time in ms since the epoch, Deployment): when each active plan's
    /// status next changes.
    timers: BTreeSet<(u64, ObjectKey)>,
}

impl Controller {
    /// When the earliest timer is due, on the monotonic clock.
    fn next_wake(&self) -> Option<Instant> {
        let (due_ms, _) = self.timers.first()?;
        let wait_us = (i128::from(*due_ms) * 1000 - now_us()).max(0);
        let wait = Duration::from_micros(u64::try_from(wait_us).unwrap_or(0));
        Some(Instant::now() + wait)
    }

    /// Syncs every Deployment whose timer is due.
    fn fire_due(&mut self) {
        let now = now_ms();
        while let Some((due, key)) = self.timers.first().cloned() {
            if due > now {
                break;
            }
            self.timers.remove(&(due, key.clone()));
            if let Some(known) = self.tracked.get_mut(&key) {
                known.due = None;
            }
            self.sync(&key, now, Some(due));
        }
    }

    fn schedule(&mut self, key: &ObjectKey, at: Option<u64>) {
        let Some(known) = self.tracked.get_mut(key) else {
            return;
        };
        if let Some(old) = known.due.take() {
            self.timers.remove(&(old, key.clone()));
        }
        if let Some(at) = at {
            known.due = Some(at);
            self.timers.insert((at, key.clone()));
        }
    }

    fn untrack(&mut self, key: &ObjectKey) {
        self.schedule(key, None);
        self.tracked.remove(key);
        self.update_rolling();
    }

    fn on_event(&mut self, event: &StoredEvent) {
        if event.gr == deployments() {
            let key = (event.namespace.clone(), event.name.clone());
            if event.etype == EventType::Deleted {
                self.untrack(&key);
            } else {
                self.observe(
                    &event.object,
                    event.prev.as_deref(),
                    event.etype == EventType::Modified,
                );
            }
            return;
        }
        self.on_dependent_event(event);
    }

    /// Brings the tracked set in line with the stored Deployments.
    fn rescan(&mut self) {
        let all = self.sim.store.lock().list(&deployments(), None);
        let keys: Vec<ObjectKey> = self
            .tracked
            .keys()
            .filter(|key| !all.iter().any(|deployment| key_of(deployment) == **key))
            .cloned()
            .collect();
        for key in keys {
            self.untrack(&key);
        }
        for deployment in all {
            self.observe(&deployment, None, false);
        }
        // Missed events may have bound waiting pods: look at every rollout's
        // objects again.
        let now = now_ms();
        let active: Vec<ObjectKey> = self
            .tracked
            .iter()
            .filter(|(_, known)| known.active && known.workload.is_some())
            .map(|(key, _)| key.clone())
            .collect();
        for key in active {
            if let Some(known) = self.tracked.get_mut(&key) {
                known.stale = true;
            }
            self.schedule(&key, Some(now));
        }
    }

    /// Starts a plan for a Deployment whose generation changed (`modified`:
    /// by an update, which counts as a template change in the stats;
    /// `previous`: the object before the change, when known).
    fn observe(&mut self, deployment: &Value, previous: Option<&Value>, modified: bool) {
        let key = key_of(deployment);
        if annotation(deployment, FROZEN_ANNOTATION) == Some("true") {
            if self.tracked.contains_key(&key) {
                self.untrack(&key);
            }
            return;
        }
        let generation = generation_of(deployment);
        if is_deleting(deployment) {
            // Being deleted (in the foreground, or held by finalizers): the
            // controller only reports; the garbage collector removes the
            // ReplicaSets.
            if self.tracked.get(&key).is_some_and(|known| known.active) {
                self.schedule(&key, None);
                if let Some(known) = self.tracked.get_mut(&key) {
                    known.active = false;
                }
                self.update_rolling();
            }
            return;
        }
        let observed =
            deployment.pointer("/status/observedGeneration").and_then(Value::as_i64).unwrap_or(0);
        let previous_plan = self.tracked.get(&key);
        match previous_plan {
            Some(known) if known.generation == generation => return,
            None if observed >= generation => {
                // Settled (e.g. the generated fleet): remember a finished plan
                // so that a later change knows which template the pods run.
                let plan = rollout::begin(deployment, None, 0, 0, false);
                let settled = TrackedDeployment {
                    generation,
                    plan,
                    workload: None,
                    applied: None,
                    stale: false,
                    active: false,
                    rolling: false,
                    due: None,
                };
                self.tracked.insert(key, settled);
                return;
            }
            _ => {}
        }
        let (duration, fail) = rollout_knobs(&self.sim, deployment);
        let now = now_ms();
        let mut plan =
            rollout::begin(deployment, previous_plan.map(|known| &known.plan), now, duration, fail);
        let runs_for_real = deployment
            .pointer("/spec/template/spec")
            .is_some_and(|spec| self.sim.runs_for_real(spec));
        if self.sim.config.workload_objects && runs_for_real {
            plan.follow_pods();
        }
        let had_plan = previous_plan.is_some();
        if plan.template_changed && modified && had_plan {
            self.sim.with_stats(|stats| {
                *stats.template_changes.entry(format!("{}/{}", key.0, key.1)).or_insert(0) += 1;
            });
        }
        let workload = if self.sim.config.workload_objects {
            let mut store = self.sim.store.lock();
            Defs::lookup(&store).map(|defs| {
                replica_sets::begin(&self.sim, &mut store, &defs, deployment, &plan, previous)
            })
        } else {
            None
        };
        let rolling = plan.template_changed && !plan.paused;
        self.schedule(&key, None);
        self.tracked.insert(
            key.clone(),
            TrackedDeployment {
                generation,
                plan,
                workload,
                applied: None,
                stale: false,
                active: true,
                rolling,
                due: None,
            },
        );
        self.update_rolling();
        // The new status (and the first scaling) happens now, not on a tick.
        self.sync(&key, now, None);
    }

    /// Publishes how many rollouts are in progress (and the peak).
    fn update_rolling(&self) {
        let rolling =
            self.tracked.values().filter(|known| known.active && known.rolling).count() as u64;
        self.sim.with_stats(|stats| {
            stats.rolling_now = rolling;
            stats.peak_rolling = stats.peak_rolling.max(rolling);
        });
    }

    /// Writes the Deployment's status at `now`, then brings its ReplicaSets
    /// and Pods in line, and sets its timer to the plan's next change. A
    /// status change that was `due` (ms) is recorded with its delay.
    fn sync(&mut self, key: &ObjectKey, now: u64, due: Option<u64>) {
        let sim = self.sim.clone();
        let mut store = sim.store.lock();
        let Some(deployment) = store.get(&deployments(), &key.0, &key.1) else {
            drop(store);
            self.untrack(key);
            return;
        };
        let Some(def) = store.registry.get("apps", "v1", "deployments") else {
            return;
        };
        let Some(known) = self.tracked.get_mut(key) else {
            return;
        };
        if generation_of(&deployment) != known.generation || is_deleting(&deployment) {
            return;
        }
        // Pods that run for real: the plan follows the new pods' readiness.
        let live = known.plan.observed.is_some();
        if live
            && known.active
            && let Some(new_rs) =
                known.workload.as_ref().and_then(|workload| workload.new_rs.as_ref())
        {
            let ready = replica_sets::ready_pods(&store, &deployment, new_rs);
            known.plan.observe_ready(now, ready);
        }
        let status = rollout::status_at(&deployment, &known.plan, now);
        let complete = rollout::is_complete(&status, &deployment);
        let done = known.active
            && (complete
                || (known.plan.fail && deadline_exceeded(&status))
                || (known.plan.paused && now > known.plan.started_at_ms));
        let mut updated = (*deployment).clone();
        if let Some(fields) = updated.as_object_mut() {
            fields.insert("status".into(), status);
        }
        // The controller writes the revision of the new ReplicaSet with the
        // status (the status strategy keeps annotations).
        if let Some(workload) = &known.workload
            && workload.revision > 0
            && let Some(metadata) = metadata_mut(&mut updated)
        {
            let annotations =
                metadata.entry("annotations").or_insert_with(|| serde_json::json!({}));
            if let Some(annotations) = annotations.as_object_mut() {
                annotations
                    .insert(REVISION_ANNOTATION.into(), workload.revision.to_string().into());
            }
        }
        // A plan that follows pods stays active: its pods may still change.
        let active = known.active && (!done || live);
        let next = if active { rollout::next_change_after(&known.plan, now) } else { None };
        // A finished plan's status is settled: only its objects are looked
        // at again (when someone else changed them).
        let changed = (known.active || done) && updated != *deployment;
        if done {
            // Counted before the final status is visible, so that whoever
            // sees a finished rollout also sees it gone from `rolling_now`.
            known.active = live;
            known.rolling &= !live;
            self.update_rolling();
        }
        let Some(known) = self.tracked.get_mut(key) else {
            return;
        };
        // The status goes first: it is what was due. The ReplicaSets and Pods
        // follow under the same lock, so no request sees one without the
        // other.
        let mut current = deployment.clone();
        if changed {
            let options = WriteOptions {
                subresource: Some("status"),
                ..WriteOptions::internal("kube-controller-manager")
            };
            match write::update(&mut store, &def, &deployment, updated, &options) {
                Ok(stored) => {
                    current = Arc::new(stored);
                    if let Some(due) = due {
                        let late_us = u64::try_from(now_us() - i128::from(due) * 1000).unwrap_or(0);
                        sim.with_stats(|stats| stats.status_delays.record(late_us));
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, deployment = %format!("{}/{}", key.0, key.1), "status update failed");
                }
            }
        }
        let mut counts = known.plan.counts_at(now);
        let mut rebased = false;
        if let Some(workload) = &known.workload
            && (known.stale || known.applied != Some(counts))
            && let Some(defs) = Defs::lookup(&store)
        {
            // A plan's first step starts from the pods it began with.
            let previous = known.applied.or(Some(known.plan.from));
            let rollout = Rollout {
                sim: &sim,
                defs: &defs,
                deployment: &current,
                plan: &known.plan,
                workload,
            };
            replica_sets::reconcile(&rollout, &mut store, previous, counts);
            // New pods the scheduler left without a node (or bound since)
            // move the rollout on differently from the plan's assumption. A
            // plan that follows pods sees them unready already.
            if sim.has_nodes() && !known.plan.paused && !live {
                let unbound = replica_sets::unbound_new_pods(&store, &current, workload);
                if unbound != counts.new_unbound {
                    known.plan = rollout::rebase(&known.plan, now, unbound);
                    counts = known.plan.counts_at(now);
                    rebased = true;
                }
            }
            known.applied = Some(counts);
            known.stale = false;
            if (!known.active || (live && complete)) && !rebased {
                replica_sets::clean_up_history(&mut store, &defs, &current, workload);
            }
        }
        drop(store);
        if rebased {
            // The status under the new plan is written at once, and the
            // rollout is followed again until it completes.
            if let Some(known) = self.tracked.get_mut(key) {
                known.active = true;
            }
            self.update_rolling();
            self.schedule(key, Some(now));
            return;
        }
        self.schedule(key, next);
    }
}

fn deadline_exceeded(status: &Value) -> bool {
    status.get("conditions").and_then(Value::as_array).is_some_and(|conditions| {
        conditions.iter().any(|condition| {
            condition.get("type").and_then(Value::as_str) == Some("Progressing")
                && condition.get("reason").and_then(Value::as_str)
                    == Some("ProgressDeadlineExceeded")
        })
    })
}
