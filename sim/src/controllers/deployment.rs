//! The simulated Deployment controller: a background task that notices
//! generation changes of Deployments (from the store's event stream),
//! starts a rollout plan for each, and on every tick writes the plan's
//! status through the write pipeline's status update (so resourceVersion
//! bumps and MODIFIED events happen as with a real controller). It also
//! keeps the template-change and concurrent-rollout statistics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use super::rollout::{self, RolloutPlan};
use crate::error::GroupResource;
use crate::state::SimState;
use crate::store::{EventType, ObjectKey};
use crate::util::{metadata_str, now_ms};
use crate::write::{self, WriteOptions};

/// Per-Deployment annotation: rollout duration in milliseconds.
pub const ROLLOUT_MS_ANNOTATION: &str = "sim.gisops.io/rollout-ms";
/// Per-Deployment annotation: new pods never become available.
pub const FAIL_ANNOTATION: &str = "sim.gisops.io/fail";

/// How often rollouts advance: fine enough that statuses change in small
/// steps even for rollouts of a few hundred milliseconds.
const TICK: Duration = Duration::from_millis(20);

/// What the controller remembers of one Deployment.
struct TrackedDeployment {
    /// The generation the plan is for.
    generation: i64,
    plan: RolloutPlan,
    /// The plan still writes statuses.
    active: bool,
    /// The plan rolls pods (counts towards `rolling_now`).
    rolling: bool,
}

type Tracked = HashMap<ObjectKey, TrackedDeployment>;

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

/// The rollout duration (ms) and failure knob of a Deployment: its
/// annotations, else the configured mean with its jitter.
fn rollout_knobs(sim: &SimState, deployment: &Value) -> (u64, bool) {
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

/// Runs the controller until shutdown.
pub async fn run(sim: Arc<SimState>) {
    let mut events = sim.store.lock().subscribe();
    let mut tracked = Tracked::new();
    rescan(&sim, &mut tracked);
    let mut shutdown = sim.shutdown.clone();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) => {
                    if event.gr != deployments() {
                        continue;
                    }
                    if event.etype == EventType::Deleted {
                        tracked.remove(&(event.namespace.clone(), event.name.clone()));
                        update_rolling(&sim, &tracked);
                        continue;
                    }
                    observe(&sim, &mut tracked, &event.object, event.etype == EventType::Modified);
                }
                Err(RecvError::Lagged(_)) => {
                    // Events were missed: start over from the stored state.
                    events = sim.store.lock().subscribe();
                    rescan(&sim, &mut tracked);
                }
                Err(RecvError::Closed) => return,
            },
            _ = ticker.tick() => tick(&sim, &mut tracked),
            _ = shutdown.changed() => return,
        }
    }
}

/// Brings the tracked set in line with the stored Deployments.
fn rescan(sim: &SimState, tracked: &mut Tracked) {
    let all = sim.store.lock().list(&deployments(), None);
    tracked.retain(|key, _| all.iter().any(|deployment| key_of(deployment) == *key));
    for deployment in all {
        observe(sim, tracked, &deployment, false);
    }
}

/// Starts a plan for a Deployment whose generation changed (`modified`: by
/// an update, which counts as a template change in the stats).
fn observe(sim: &SimState, tracked: &mut Tracked, deployment: &Value, modified: bool) {
    let key = key_of(deployment);
    let generation = generation_of(deployment);
    let observed =
        deployment.pointer("/status/observedGeneration").and_then(Value::as_i64).unwrap_or(0);
    let previous = tracked.get(&key);
    match previous {
        Some(known) if known.generation == generation => return,
        None if observed >= generation => {
            // Settled (e.g. the generated fleet): remember a finished plan so
            // that a later change knows which template the pods run.
            let plan = rollout::begin(deployment, None, 0, 0, false);
            let settled = TrackedDeployment { generation, plan, active: false, rolling: false };
            tracked.insert(key, settled);
            return;
        }
        _ => {}
    }
    let (duration, fail) = rollout_knobs(sim, deployment);
    let plan =
        rollout::begin(deployment, previous.map(|known| &known.plan), now_ms(), duration, fail);
    if plan.template_changed && modified && previous.is_some() {
        sim.with_stats(|stats| {
            *stats.template_changes.entry(format!("{}/{}", key.0, key.1)).or_insert(0) += 1;
        });
    }
    let rolling = plan.template_changed && !plan.paused;
    tracked.insert(key, TrackedDeployment { generation, plan, active: true, rolling });
    update_rolling(sim, tracked);
}

/// Publishes how many rollouts are in progress (and the peak).
fn update_rolling(sim: &SimState, tracked: &Tracked) {
    let rolling = tracked.values().filter(|known| known.active && known.rolling).count() as u64;
    sim.with_stats(|stats| {
        stats.rolling_now = rolling;
        stats.peak_rolling = stats.peak_rolling.max(rolling);
    });
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

/// Writes the current status of every active plan.
fn tick(sim: &SimState, tracked: &mut Tracked) {
    let now = now_ms();
    let gr = deployments();
    let def = sim.store.lock().registry.get("apps", "v1", "deployments");
    let Some(def) = def else {
        return;
    };
    let keys: Vec<ObjectKey> =
        tracked.iter().filter(|(_, known)| known.active).map(|(key, _)| key.clone()).collect();
    for key in keys {
        let Some(deployment) = sim.store.lock().get(&gr, &key.0, &key.1) else {
            if let Some(known) = tracked.get_mut(&key) {
                known.active = false;
            }
            update_rolling(sim, tracked);
            continue;
        };
        let Some(known) = tracked.get_mut(&key) else {
            continue;
        };
        if generation_of(&deployment) != known.generation {
            continue;
        }
        let status = rollout::status_at(&deployment, &known.plan, now);
        let done = rollout::is_complete(&status, &deployment)
            || (known.plan.fail && deadline_exceeded(&status))
            || (known.plan.paused && now > known.plan.started_at_ms);
        if done {
            // Counted before the final status is visible, so that whoever
            // sees a finished rollout also sees it gone from `rolling_now`.
            known.active = false;
            update_rolling(sim, tracked);
        }
        if deployment.get("status") == Some(&status) {
            continue;
        }
        let mut updated = (*deployment).clone();
        if let Some(fields) = updated.as_object_mut() {
            fields.insert("status".into(), status);
        }
        let options = WriteOptions {
            subresource: Some("status"),
            ..WriteOptions::internal("kube-controller-manager")
        };
        let mut store = sim.store.lock();
        // Re-read under the lock: a request may have changed it meanwhile.
        match store.get(&gr, &key.0, &key.1) {
            Some(current)
                if current.pointer("/metadata/resourceVersion")
                    == deployment.pointer("/metadata/resourceVersion") =>
            {
                if let Err(error) = write::update(&mut store, &def, &current, updated, &options) {
                    tracing::warn!(error = %error, deployment = %format!("{}/{}", key.0, key.1), "status update failed");
                }
            }
            _ => {
                // Changed since: the next tick recomputes from the new state.
                drop(store);
                if let Some(known) = tracked.get_mut(&key)
                    && done
                {
                    known.active = true;
                    update_rolling(sim, tracked);
                }
            }
        }
    }
}
