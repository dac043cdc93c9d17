//! The simulated Deployment controller: a background task that notices
//! generation changes of Deployments (from the store's event stream), starts
//! a rollout plan for each (`rollout` module), and on every tick writes the
//! plan's status through the normal status-update path (so resourceVersion
//! bumps and MODIFIED events happen as with a real controller). It also
//! keeps the template-change and concurrent-rollout statistics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use crate::api::{WriteOpts, persist_update};
use crate::error::GroupResource;
use crate::rollout::{self, RolloutPlan};
use crate::server::Sim;
use crate::store::EventType;
use crate::util::now_ms;

/// Per-Deployment annotation: rollout duration in milliseconds.
pub const ROLLOUT_MS_ANNOTATION: &str = "sim.gisops.io/rollout-ms";
/// Per-Deployment annotation: new pods never become available.
pub const FAIL_ANNOTATION: &str = "sim.gisops.io/fail";

const TICK: Duration = Duration::from_millis(20);

struct Tracked {
    generation: i64,
    plan: RolloutPlan,
    active: bool,
    rolling: bool,
}

fn key_of(obj: &Value) -> (String, String) {
    let s = |k: &str| {
        obj.pointer(&format!("/metadata/{k}")).and_then(Value::as_str).unwrap_or("").to_string()
    };
    (s("namespace"), s("name"))
}

fn generation_of(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0)
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations").and_then(|a| a.get(key)).and_then(Value::as_str)
}

/// The rollout duration and failure knob of a Deployment.
pub fn knobs(sim: &Sim, obj: &Value) -> (u64, bool) {
    let fail = annotation(obj, FAIL_ANNOTATION) == Some("true");
    let duration =
        match annotation(obj, ROLLOUT_MS_ANNOTATION).and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(ms) => ms,
            None => {
                // Uniform in mean ± jitter, so `rollout_ms` stays the mean rollout time.
                let jitter = sim.config.rollout_jitter_ms.min(sim.config.rollout_ms);
                let low = sim.config.rollout_ms - jitter;
                low + if jitter > 0 { sim.random_below(2 * jitter + 1) } else { 0 }
            }
        };
    (duration, fail)
}

fn deployments() -> GroupResource {
    GroupResource::new("apps", "deployments")
}

/// Runs the controller until shutdown.
pub async fn run(sim: Arc<Sim>) {
    let mut rx = sim.store.lock().subscribe();
    let mut tracked: HashMap<(String, String), Tracked> = HashMap::new();
    rescan(&sim, &mut tracked);
    let mut shutdown = sim.shutdown.clone();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Ok(ev) => {
                    if ev.gr != deployments() {
                        continue;
                    }
                    let key = (ev.namespace.clone(), ev.name.clone());
                    if ev.etype == EventType::Deleted {
                        tracked.remove(&key);
                        update_rolling(&sim, &tracked);
                        continue;
                    }
                    observe(&sim, &mut tracked, &ev.object, ev.etype == EventType::Modified);
                }
                Err(RecvError::Lagged(_)) => {
                    rx = sim.store.lock().subscribe();
                    rescan(&sim, &mut tracked);
                }
                Err(RecvError::Closed) => return,
            },
            _ = ticker.tick() => tick(&sim, &mut tracked),
            _ = shutdown.changed() => return,
        }
    }
}

fn rescan(sim: &Sim, tracked: &mut HashMap<(String, String), Tracked>) {
    let all = sim.store.lock().list(&deployments(), None);
    tracked.retain(|k, _| all.iter().any(|o| key_of(o) == *k));
    for obj in all {
        observe(sim, tracked, &obj, false);
    }
}

fn observe(
    sim: &Sim,
    tracked: &mut HashMap<(String, String), Tracked>,
    obj: &Value,
    modified: bool,
) {
    let key = key_of(obj);
    let generation = generation_of(obj);
    let observed = obj.pointer("/status/observedGeneration").and_then(Value::as_i64).unwrap_or(0);
    let previous = tracked.get(&key);
    match previous {
        Some(t) if t.generation == generation => return,
        None if observed >= generation => {
            // Settled (e.g. the generated fleet): remember a finished plan so
            // that a later change knows which template the pods run.
            let plan = rollout::begin(obj, None, 0, 0, false);
            tracked.insert(key, Tracked { generation, plan, active: false, rolling: false });
            return;
        }
        _ => {}
    }
    let (duration, fail) = knobs(sim, obj);
    let plan = rollout::begin(obj, previous.map(|t| &t.plan), now_ms(), duration, fail);
    if plan.template_changed && modified && previous.is_some() {
        sim.with_stats(|s| {
            *s.template_changes.entry(format!("{}/{}", key.0, key.1)).or_insert(0) += 1;
        });
    }
    let rolling = plan.template_changed && !plan.paused;
    tracked.insert(key, Tracked { generation, plan, active: true, rolling });
    update_rolling(sim, tracked);
}

fn update_rolling(sim: &Sim, tracked: &HashMap<(String, String), Tracked>) {
    let n = tracked.values().filter(|t| t.active && t.rolling).count() as u64;
    sim.with_stats(|s| {
        s.rolling_now = n;
        s.peak_rolling = s.peak_rolling.max(n);
    });
}

fn deadline_exceeded(status: &Value) -> bool {
    status.get("conditions").and_then(Value::as_array).is_some_and(|cs| {
        cs.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Progressing")
                && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
        })
    })
}

fn tick(sim: &Sim, tracked: &mut HashMap<(String, String), Tracked>) {
    let now = now_ms();
    let gr = deployments();
    let def = sim.store.lock().registry.get("apps", "v1", "deployments");
    let Some(def) = def else {
        return;
    };
    let keys: Vec<(String, String)> =
        tracked.iter().filter(|(_, t)| t.active).map(|(k, _)| k.clone()).collect();
    for key in keys {
        let Some(obj) = sim.store.lock().get(&gr, &key.0, &key.1) else {
            if let Some(t) = tracked.get_mut(&key) {
                t.active = false;
            }
            update_rolling(sim, tracked);
            continue;
        };
        let Some(t) = tracked.get_mut(&key) else {
            continue;
        };
        if generation_of(&obj) != t.generation {
            continue;
        }
        let status = rollout::status_at(&obj, &t.plan, now);
        let done = rollout::is_complete(&status, &obj)
            || (t.plan.fail && deadline_exceeded(&status))
            || (t.plan.paused && now > t.plan.started_at_ms);
        if done {
            // Counted before the final status is visible, so that whoever
            // sees a finished rollout also sees it gone from `rolling_now`.
            t.active = false;
            update_rolling(sim, tracked);
        }
        if obj.get("status") == Some(&status) {
            continue;
        }
        let mut new = (*obj).clone();
        if let Some(m) = new.as_object_mut() {
            m.insert("status".into(), status);
        }
        let o = WriteOpts {
            manager: "kube-controller-manager".into(),
            sub: Some("status"),
            dry_run: false,
            track: true,
            strict: false,
        };
        let mut st = sim.store.lock();
        // Re-read under the lock: a request may have changed it meanwhile.
        match st.get(&gr, &key.0, &key.1) {
            Some(cur)
                if cur.pointer("/metadata/resourceVersion")
                    == obj.pointer("/metadata/resourceVersion") =>
            {
                if let Err(e) = persist_update(&mut st, &def, &cur, new, &o) {
                    tracing::warn!(error = %e, deployment = %format!("{}/{}", key.0, key.1), "status update failed");
                }
            }
            _ => {
                // Changed since: the next tick recomputes from the new state.
                drop(st);
                if let Some(t) = tracked.get_mut(&key)
                    && done
                {
                    t.active = true;
                    update_rolling(sim, tracked);
                }
            }
        }
    }
}
