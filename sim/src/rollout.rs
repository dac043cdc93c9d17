//! The simulated Deployment controller's rollout, as pure functions over
//! simulated time. This module owns how a Deployment's `status` moves after a
//! spec change: the RollingUpdate arithmetic of the real controller (maxSurge
//! rounded up, maxUnavailable rounded down, 25% each by default), the pod
//! counts (`replicas`, `updatedReplicas`, `readyReplicas`,
//! `availableReplicas`, `unavailableReplicas`), the `Available` and
//! `Progressing` conditions with the real reasons, messages and timestamps
//! (including `ProgressDeadlineExceeded`), pausing, and the pod-template hash
//! that names the new ReplicaSet. It does no IO and keeps no clock: the server
//! core passes simulated time in milliseconds since the Unix epoch.
//!
//! API, as the server core uses it:
//! - On every generation bump of a Deployment (any spec change, and on
//!   create), call [`begin`] with the stored object (its current `status`
//!   included), the previous [`RolloutPlan`] if any, the simulated time, the
//!   rollout duration and the failure knob. Keep the returned plan with the
//!   Deployment. Do not write a status inside the request that changed the
//!   spec: like the real controller, the new status appears on the next tick.
//! - On every tick, store `status_at(&deployment, &plan, now)` as the
//!   Deployment's `status` (when it differs from the stored one, bump the
//!   resourceVersion and send a MODIFIED watch event).
//! - For a Deployment found settled (created fully rolled out, or at
//!   start-up with `observedGeneration` = `generation`), keep
//!   [`settled`]`(&deployment, now)` as its plan: it reproduces the stored
//!   status and is the right `previous` for the next [`begin`].
//! - [`is_complete`] says whether a status shows a finished rollout (the
//!   controller's own test, the one `kubectl rollout status` mirrors).
//! - [`pod_template_hash`] and [`new_replica_set_name`] name the ReplicaSet.
//!
//! Model: a rollout proceeds in waves. At the start of each wave the
//! controller scales the new ReplicaSet up and the old ones down as far as
//! maxSurge and maxUnavailable allow (repeating until nothing changes, as its
//! successive syncs do); then the new pods become ready one wave later. The
//! wave length is `duration_ms` divided by the number of waves the rollout
//! needs, so the rollout finishes `duration_ms` after it began. With `fail`,
//! new pods never become ready: the rollout stalls after its first wave and
//! the `Progressing` condition turns `False` / `ProgressDeadlineExceeded`
//! once `spec.progressDeadlineSeconds` (default 600) have elapsed since the
//! last progress (strictly after, as the controller compares).

use serde_json::{Map, Value, json};

/// The default `spec.progressDeadlineSeconds` the API server fills in.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: u64 = 600;

/// Pod counts of a Deployment during a rollout. Old pods are always
/// available (the ones that were not are dropped when a rollout starts, as
/// the controller cleans up unhealthy old replicas first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PodCounts {
    /// Pods of old ReplicaSets (all ready and available).
    pub old: u64,
    /// Pods of the new ReplicaSet.
    pub new_total: u64,
    /// Ready (and, with minReadySeconds 0, available) pods of the new ReplicaSet.
    pub new_ready: u64,
}

impl PodCounts {
    fn total(&self) -> u64 {
        self.old + self.new_total
    }
    fn available(&self) -> u64 {
        self.old + self.new_ready
    }
}

/// A rollout in progress (or finished) for one Deployment generation.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutPlan {
    /// Simulated time (ms since the epoch) the controller first acts.
    pub started_at_ms: u64,
    /// Total duration the rollout takes when it does not fail.
    pub duration_ms: u64,
    /// New pods never become ready.
    pub fail: bool,
    /// `spec.paused` at the time of the change: the controller does not roll.
    pub paused: bool,
    /// The previous plan was paused and this one is not.
    pub resumed: bool,
    /// `spec.replicas` (desired pods).
    pub replicas: u64,
    /// Resolved maxSurge (pods).
    pub max_surge: u64,
    /// Resolved maxUnavailable (pods).
    pub max_unavailable: u64,
    /// `spec.progressDeadlineSeconds` in ms; `None` when it is MaxInt32 (no deadline).
    pub deadline_ms: Option<u64>,
    /// The pods when the rollout begins.
    pub from: PodCounts,
    /// Hash of the pod template this rollout rolls to.
    pub template_hash: String,
    /// Name of the new ReplicaSet (`<deployment>-<hash>`).
    pub new_rs_name: String,
    /// The pod template changed: a new ReplicaSet is created.
    pub template_changed: bool,
    /// The conditions before this rollout (the controller only changes them
    /// through its set-condition rule, which keeps transition times).
    pub prior_conditions: Vec<Value>,
    /// Length of one wave (time for new pods to become ready).
    pub wave_ms: u64,
}

/// FNV-1a (32 bit) of the canonical JSON of `spec.template`, encoded like
/// Kubernetes encodes its pod-template hashes (the decimal digits mapped onto
/// the "safe" alphabet without vowels), e.g. `5d8f9c7b6`.
pub fn pod_template_hash(deployment: &Value) -> String {
    let template = deployment.pointer("/spec/template").unwrap_or(&Value::Null);
    let mut canonical = String::new();
    write_canonical(template, &mut canonical);
    let mut hash: u32 = 0x811c_9dc5;
    for byte in canonical.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string().bytes().map(|b| char::from(SAFE[usize::from(b) % SAFE.len()])).collect()
}

/// `<deployment name>-<pod template hash>`.
pub fn new_replica_set_name(deployment: &Value) -> String {
    format!("{}-{}", name_of(deployment), pod_template_hash(deployment))
}

fn name_of(deployment: &Value) -> &str {
    deployment.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

/// JSON with object keys sorted, so the hash does not depend on key order.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*key).clone()).to_string());
                out.push(':');
                write_canonical(&map[*key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Resolves an int-or-percent value against `total`, rounding up or down.
fn resolve_int_or_percent(value: Option<&Value>, total: u64, round_up: bool) -> u64 {
    let default = Value::String("25%".to_owned());
    let value = value.unwrap_or(&default);
    if let Some(n) = value.as_u64() {
        return n;
    }
    if let Some(pct) =
        value.as_str().and_then(|s| s.strip_suffix('%')).and_then(|s| s.parse::<u64>().ok())
    {
        let scaled = total * pct;
        return if round_up { scaled.div_ceil(100) } else { scaled / 100 };
    }
    0
}

/// (maxSurge, maxUnavailable) in pods, as the controller resolves them.
fn surge_and_unavailable(deployment: &Value, replicas: u64) -> (u64, u64) {
    let strategy = deployment.pointer("/spec/strategy");
    let is_recreate =
        strategy.and_then(|s| s.get("type")).and_then(Value::as_str) == Some("Recreate");
    if is_recreate {
        return (0, replicas);
    }
    let rolling = strategy.and_then(|s| s.get("rollingUpdate"));
    let surge = resolve_int_or_percent(rolling.and_then(|r| r.get("maxSurge")), replicas, true);
    let mut unavailable =
        resolve_int_or_percent(rolling.and_then(|r| r.get("maxUnavailable")), replicas, false);
    if surge == 0 && unavailable == 0 {
        // The controller's fencepost rule: both zero would deadlock.
        unavailable = 1;
    }
    (surge, unavailable.min(replicas))
}

fn spec_replicas(deployment: &Value) -> u64 {
    deployment.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1)
}

fn generation(deployment: &Value) -> Option<u64> {
    deployment.pointer("/metadata/generation").and_then(Value::as_u64)
}

fn available_in_status(status: Option<&Value>) -> u64 {
    status.and_then(|s| s.get("availableReplicas")).and_then(Value::as_u64).unwrap_or(0)
}

/// Starts the rollout of a Deployment's current generation.
///
/// `deployment` is the stored object after the spec change (its `status` is
/// the one the previous rollout left). `previous` is the plan of the previous
/// generation, if the server core still has it: it tells which running pods
/// already run the current template (a change of `spec.replicas` or
/// `spec.paused` alone creates no new ReplicaSet). Without it, the pods in
/// `status` are taken as old when the template hash differs from what the
/// status can tell, i.e. always, unless the Deployment has no status yet.
pub fn begin(
    deployment: &Value,
    previous: Option<&RolloutPlan>,
    now_ms: u64,
    duration_ms: u64,
    fail: bool,
) -> RolloutPlan {
    let replicas = spec_replicas(deployment);
    let (max_surge, max_unavailable) = surge_and_unavailable(deployment, replicas);
    let deadline_ms =
        match deployment.pointer("/spec/progressDeadlineSeconds").and_then(Value::as_u64) {
            Some(s) if s >= i32::MAX as u64 => None,
            Some(s) => Some(s * 1000),
            None => Some(DEFAULT_PROGRESS_DEADLINE_SECONDS * 1000),
        };
    let paused = deployment.pointer("/spec/paused").and_then(Value::as_bool).unwrap_or(false);
    let template_hash = pod_template_hash(deployment);
    let new_rs_name = format!("{}-{}", name_of(deployment), template_hash);

    let (current, prior_conditions, template_changed, was_paused) = match previous {
        Some(prev) => {
            let counts = prev.counts_at(now_ms);
            // The controller sets conditions on the status it last wrote
            // (the stored one); the plan's own view serves when there is none.
            let conditions = deployment
                .get("status")
                .map(conditions_of)
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| conditions_of(&status_at(deployment, prev, now_ms)));
            if prev.template_hash == template_hash {
                (counts, conditions, false, prev.paused)
            } else {
                // Every available pod now belongs to an old ReplicaSet; the
                // unavailable ones are cleaned up first.
                let old = PodCounts { old: counts.available(), new_total: 0, new_ready: 0 };
                (old, conditions, true, prev.paused)
            }
        }
        None => {
            let status = deployment.get("status");
            let has_status = status.and_then(|s| s.get("observedGeneration")).is_some();
            let conditions = status.map(conditions_of).unwrap_or_default();
            let old = PodCounts { old: available_in_status(status), new_total: 0, new_ready: 0 };
            (old, conditions, true, has_status && is_paused_status(status))
        }
    };

    // A paused controller creates no new ReplicaSet: the pods keep running
    // the previous template, which is what a later resume compares against.
    let template_hash = if paused && template_changed {
        previous.map(|p| p.template_hash.clone()).unwrap_or_default()
    } else {
        template_hash
    };
    let mut plan = RolloutPlan {
        started_at_ms: now_ms,
        duration_ms,
        fail,
        paused,
        resumed: was_paused && !paused,
        replicas,
        max_surge,
        max_unavailable,
        deadline_ms,
        from: current,
        template_hash,
        new_rs_name,
        template_changed,
        prior_conditions,
        wave_ms: 0,
    };
    let waves = plan.waves_needed();
    plan.wave_ms = duration_ms.checked_div(waves).unwrap_or(0);
    plan
}

/// The plan of a Deployment whose stored status is settled (its rollout
/// finished, e.g. one created fully rolled out, or found at start-up with
/// `observedGeneration` = `generation`): its available pods run the current
/// template, and [`status_at`] keeps its status (conditions and their times
/// included) until the next change. Use it as the `previous` plan of the next
/// [`begin`].
pub fn settled(deployment: &Value, now_ms: u64) -> RolloutPlan {
    let replicas = spec_replicas(deployment);
    let (max_surge, max_unavailable) = surge_and_unavailable(deployment, replicas);
    let status = deployment.get("status");
    let available = available_in_status(status).min(replicas);
    let updated = status
        .and_then(|s| s.get("updatedReplicas"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .clamp(available, replicas);
    let template_hash = pod_template_hash(deployment);
    RolloutPlan {
        started_at_ms: now_ms,
        duration_ms: 0,
        fail: false,
        paused: deployment.pointer("/spec/paused").and_then(Value::as_bool).unwrap_or(false),
        resumed: false,
        replicas,
        max_surge,
        max_unavailable,
        deadline_ms: Some(DEFAULT_PROGRESS_DEADLINE_SECONDS * 1000),
        from: PodCounts { old: 0, new_total: updated, new_ready: available },
        new_rs_name: format!("{}-{}", name_of(deployment), template_hash),
        template_hash,
        template_changed: false,
        prior_conditions: status.map(conditions_of).unwrap_or_default(),
        wave_ms: 0,
    }
}

fn is_paused_status(status: Option<&Value>) -> bool {
    status
        .map(conditions_of)
        .unwrap_or_default()
        .iter()
        .any(|c| c.get("reason").and_then(Value::as_str) == Some("DeploymentPaused"))
}

fn conditions_of(status: &Value) -> Vec<Value> {
    status.get("conditions").and_then(Value::as_array).cloned().unwrap_or_default()
}

impl RolloutPlan {
    /// Scales as far as the strategy allows, as repeated controller syncs do.
    fn scale(&self, mut c: PodCounts) -> PodCounts {
        let r = self.replicas;
        if c.new_total > r {
            c.new_total = r;
            c.new_ready = c.new_ready.min(r);
        }
        let min_available = r.saturating_sub(self.max_unavailable);
        loop {
            let before = c;
            // Scale the new ReplicaSet up within maxSurge.
            let max_total = r + self.max_surge;
            if c.total() < max_total && c.new_total < r {
                c.new_total += (max_total - c.total()).min(r - c.new_total);
            }
            // Scale old ReplicaSets down within maxUnavailable.
            if c.old > 0 {
                let new_unavailable = c.new_total - c.new_ready;
                let max_scaled_down =
                    c.total().saturating_sub(min_available).saturating_sub(new_unavailable);
                let by_availability = c.available().saturating_sub(min_available);
                let down = c.old.min(max_scaled_down).min(by_availability);
                // Once the new ReplicaSet is fully available, old pods go.
                let down = if c.new_ready >= r { c.old } else { down };
                c.old -= down;
            }
            if c == before {
                return c;
            }
        }
    }

    fn done(&self, c: &PodCounts) -> bool {
        c.old == 0 && c.new_total == self.replicas && c.new_ready == self.replicas
    }

    /// States at successive wave starts: index 0 at `started_at_ms`, index k
    /// at `started_at_ms + k * wave_ms`. Ends at completion or at a stall.
    fn waves(&self) -> Vec<PodCounts> {
        let mut states = vec![self.scale(self.from)];
        if self.paused {
            states[0] = self.from;
            return states;
        }
        // Bounded: each wave either makes progress or stops; the cap guards
        // against any arithmetic surprise.
        for _ in 0..10_000 {
            let Some(last) = states.last().copied() else {
                break;
            };
            if self.done(&last) || self.fail {
                break;
            }
            let mut ready = last;
            ready.new_ready = ready.new_total;
            let next = self.scale(ready);
            if next == last {
                break;
            }
            states.push(next);
        }
        states
    }

    fn waves_needed(&self) -> u64 {
        if self.fail || self.paused {
            return 1;
        }
        (self.waves().len() as u64).saturating_sub(1)
    }

    fn wave_time(&self, k: usize) -> u64 {
        self.started_at_ms + self.wave_ms * k as u64
    }

    /// Pod counts at `now_ms`.
    pub fn counts_at(&self, now_ms: u64) -> PodCounts {
        let states = self.waves();
        let mut current = states[0];
        for (k, state) in states.iter().enumerate() {
            if self.wave_time(k) <= now_ms {
                current = *state;
            }
        }
        current
    }
}

fn rfc3339(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    match jiff::Timestamp::from_second(secs) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => "1970-01-01T00:00:00Z".to_owned(),
    }
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, at_ms: u64) -> Value {
    let at = rfc3339(at_ms);
    json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": at,
        "lastTransitionTime": at,
    })
}

/// The controller's SetDeploymentCondition: no change when status and
/// reason are unchanged; the transition time is kept when only the reason
/// changes; the changed condition moves to the end.
fn set_condition(conditions: &mut Vec<Value>, mut new: Value) {
    let kind = new.get("type").cloned();
    if let Some(pos) = conditions.iter().position(|c| c.get("type") == kind.as_ref()) {
        let current = &conditions[pos];
        if current.get("status") == new.get("status") && current.get("reason") == new.get("reason")
        {
            return;
        }
        if current.get("status") == new.get("status")
            && let (Some(t), Some(obj)) = (current.get("lastTransitionTime"), new.as_object_mut())
        {
            obj.insert("lastTransitionTime".to_owned(), t.clone());
        }
        conditions.remove(pos);
    }
    conditions.push(new);
}

fn progressing_reason(conditions: &[Value]) -> Option<(String, String)> {
    conditions.iter().find(|c| c.get("type").and_then(Value::as_str) == Some("Progressing")).map(
        |c| {
            (
                c.get("status").and_then(Value::as_str).unwrap_or("").to_owned(),
                c.get("reason").and_then(Value::as_str).unwrap_or("").to_owned(),
            )
        },
    )
}

/// The progress test of the controller: more updated, ready or available
/// pods, or fewer old ones.
fn made_progress(before: &PodCounts, after: &PodCounts) -> bool {
    after.new_total > before.new_total
        || after.available() > before.available()
        || after.old < before.old
}

/// The Deployment's `status` at `now_ms` under `plan`. Zero-valued counts
/// are omitted, as the real API serves them (`omitempty`).
pub fn status_at(deployment: &Value, plan: &RolloutPlan, now_ms: u64) -> Value {
    let now_ms = now_ms.max(plan.started_at_ms);
    let r = plan.replicas;
    let min_available = r.saturating_sub(plan.max_unavailable);
    let states = plan.waves();
    let mut conditions = plan.prior_conditions.clone();
    let available_condition = |c: &PodCounts, at: u64| {
        if c.available() >= min_available {
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                at,
            )
        } else {
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                at,
            )
        }
    };
    let rs = &plan.new_rs_name;
    let t0 = plan.started_at_ms;
    let mut current = states[0];

    if plan.paused {
        set_condition(&mut conditions, available_condition(&current, t0));
        set_condition(
            &mut conditions,
            condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", t0),
        );
    } else {
        if plan.resumed {
            set_condition(
                &mut conditions,
                condition(
                    "Progressing",
                    "Unknown",
                    "DeploymentResumed",
                    "Deployment is resumed",
                    t0,
                ),
            );
        }
        // Each wave is one controller observation; `prev` is the last one.
        let mut prev = plan.from;
        let mut last_progress = t0;
        for (k, state) in states.iter().enumerate() {
            let at = plan.wave_time(k);
            if at > now_ms {
                break;
            }
            current = *state;
            set_condition(&mut conditions, available_condition(state, at));
            if plan.done(state) {
                set_condition(
                    &mut conditions,
                    condition(
                        "Progressing",
                        "True",
                        "NewReplicaSetAvailable",
                        &format!("ReplicaSet \"{rs}\" has successfully progressed."),
                        at,
                    ),
                );
            } else if k == 0 && plan.template_changed {
                set_condition(
                    &mut conditions,
                    condition(
                        "Progressing",
                        "True",
                        "NewReplicaSetCreated",
                        &format!("Created new replica set \"{rs}\""),
                        at,
                    ),
                );
                last_progress = at;
            } else if made_progress(&prev, state) || (k == 0 && !has_progressing(&conditions)) {
                set_progressing_updated(&mut conditions, rs, at);
                last_progress = at;
            }
            prev = *state;
            // No progress for longer than the deadline before the next wave
            // (or ever, when stalled): the controller marks the rollout failed.
            if let Some(deadline) = plan.deadline_ms {
                let expiry = last_progress + deadline + 1;
                let next = states.get(k + 1).map(|_| plan.wave_time(k + 1));
                if !plan.done(state) && expiry <= now_ms && next.is_none_or(|n| expiry < n) {
                    set_timed_out(&mut conditions, rs, expiry);
                }
            }
        }
    }

    let mut status = Map::new();
    if let Some(g) = generation(deployment) {
        status.insert("observedGeneration".into(), json!(g));
    }
    let ready = current.available();
    let counts = [
        ("replicas", current.total()),
        ("updatedReplicas", current.new_total),
        ("readyReplicas", ready),
        ("availableReplicas", ready),
        ("unavailableReplicas", r.saturating_sub(ready)),
    ];
    for (key, value) in counts {
        if value > 0 {
            status.insert(key.into(), json!(value));
        }
    }
    if !conditions.is_empty() {
        status.insert("conditions".into(), Value::Array(conditions));
    }
    Value::Object(status)
}

/// On progress the controller always rewrites the Progressing condition,
/// keeping its transition time only while it stays True.
fn set_progressing_updated(conditions: &mut Vec<Value>, rs: &str, at: u64) {
    let mut cond = condition(
        "Progressing",
        "True",
        "ReplicaSetUpdated",
        &format!("ReplicaSet \"{rs}\" is progressing."),
        at,
    );
    if let Some(pos) =
        conditions.iter().position(|c| c.get("type").and_then(Value::as_str) == Some("Progressing"))
    {
        if conditions[pos].get("status").and_then(Value::as_str) == Some("True")
            && let (Some(t), Some(obj)) =
                (conditions[pos].get("lastTransitionTime").cloned(), cond.as_object_mut())
        {
            obj.insert("lastTransitionTime".to_owned(), t);
        }
        conditions.remove(pos);
    }
    conditions.push(cond);
}

fn has_progressing(conditions: &[Value]) -> bool {
    progressing_reason(conditions).is_some()
}

fn set_timed_out(conditions: &mut Vec<Value>, rs: &str, at: u64) {
    set_condition(
        conditions,
        condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            &format!("ReplicaSet \"{rs}\" has timed out progressing."),
            at,
        ),
    );
}

/// The controller's DeploymentComplete test on a served status: every
/// desired pod updated and available, no old pods left, and the status
/// observed the current generation.
pub fn is_complete(status: &Value, deployment: &Value) -> bool {
    let get = |key: &str| status.get(key).and_then(Value::as_u64).unwrap_or(0);
    let desired = spec_replicas(deployment);
    let observed = status.get("observedGeneration").and_then(Value::as_u64).unwrap_or(0);
    get("updatedReplicas") == desired
        && get("replicas") == desired
        && get("availableReplicas") == desired
        && observed >= generation(deployment).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_764_000_000_000;

    fn deployment(replicas: u64, generation: u64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "arcgis", "generation": generation},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": image}]}
                }
            }
        })
    }

    fn n(status: &Value, key: &str) -> u64 {
        status.get(key).and_then(Value::as_u64).unwrap_or(0)
    }

    fn cond<'a>(status: &'a Value, kind: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
            .unwrap_or_else(|| panic!("no {kind} condition in {status}"))
    }

    /// A Deployment that finished its first rollout at T0 + 10s, with status.
    fn settled(replicas: u64) -> (Value, RolloutPlan) {
        let mut d = deployment(replicas, 1, "nginx:1");
        let plan = begin(&d, None, T0, 10_000, false);
        d["status"] = status_at(&d, &plan, T0 + 10_000);
        (d, plan)
    }

    #[test]
    fn hash_is_stable_and_key_order_independent() {
        let a = deployment(3, 1, "nginx:1");
        let mut b = a.clone();
        b["spec"]["template"] = serde_json::from_str(
            r#"{"spec":{"containers":[{"image":"nginx:1","name":"web"}]},"metadata":{"labels":{"app":"web"}}}"#,
        )
        .unwrap();
        assert_eq!(pod_template_hash(&a), pod_template_hash(&b));
        let h = pod_template_hash(&a);
        assert!(!h.is_empty() && h.len() <= 10);
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_ne!(h, pod_template_hash(&deployment(3, 1, "nginx:2")));
        assert_eq!(new_replica_set_name(&a), format!("web-{h}"));
    }

    #[test]
    fn fresh_deployment_becomes_available() {
        let d = deployment(3, 1, "nginx:1");
        let plan = begin(&d, None, T0, 6_000, false);
        let s = status_at(&d, &plan, T0);
        assert_eq!(n(&s, "observedGeneration"), 1);
        assert_eq!(n(&s, "replicas"), 3);
        assert_eq!(n(&s, "updatedReplicas"), 3);
        assert_eq!(n(&s, "availableReplicas"), 0);
        assert_eq!(n(&s, "unavailableReplicas"), 3);
        assert_eq!(cond(&s, "Available")["status"], "False");
        assert_eq!(cond(&s, "Available")["reason"], "MinimumReplicasUnavailable");
        assert_eq!(cond(&s, "Progressing")["reason"], "NewReplicaSetCreated");
        assert!(!is_complete(&s, &d));
        let s = status_at(&d, &plan, T0 + 6_000);
        assert!(is_complete(&s, &d));
        assert_eq!(s.get("unavailableReplicas"), None);
        assert_eq!(cond(&s, "Available")["reason"], "MinimumReplicasAvailable");
        let p = cond(&s, "Progressing");
        assert_eq!(p["reason"], "NewReplicaSetAvailable");
        let rs = new_replica_set_name(&d);
        assert_eq!(p["message"], format!("ReplicaSet \"{rs}\" has successfully progressed."));
        assert_eq!(p["lastUpdateTime"], rfc3339(T0 + 6_000));
        assert_eq!(p["lastTransitionTime"], rfc3339(T0));
    }

    #[test]
    fn rolling_update_of_ten_moves_like_the_controller() {
        let (d, prev) = settled(10);
        let mut d2 = deployment(10, 2, "nginx:2");
        d2["status"] = d["status"].clone();
        let plan = begin(&d2, Some(&prev), T0 + 60_000, 20_000, false);
        assert_eq!((plan.max_surge, plan.max_unavailable), (3, 2));
        assert_eq!(plan.wave_ms, 10_000);
        let at = |dt: u64| status_at(&d2, &plan, T0 + 60_000 + dt);
        // First wave: surge 3 + 2 old terminated, so 5 new pods, 8 old.
        let s = at(0);
        assert_eq!(n(&s, "observedGeneration"), 2);
        assert_eq!(
            (n(&s, "replicas"), n(&s, "updatedReplicas"), n(&s, "availableReplicas")),
            (13, 5, 8)
        );
        assert_eq!(n(&s, "unavailableReplicas"), 2);
        assert_eq!(cond(&s, "Available")["status"], "True");
        // Available never went False: its transition time is the first rollout's.
        assert_eq!(cond(&s, "Available")["lastTransitionTime"], rfc3339(T0 + 10_000));
        assert_eq!(cond(&s, "Progressing")["reason"], "NewReplicaSetCreated");
        let s = at(9_999);
        assert_eq!(n(&s, "updatedReplicas"), 5);
        let s = at(10_000);
        assert_eq!(
            (n(&s, "replicas"), n(&s, "updatedReplicas"), n(&s, "availableReplicas")),
            (13, 10, 8)
        );
        let p = cond(&s, "Progressing");
        assert_eq!(p["reason"], "ReplicaSetUpdated");
        assert_eq!(p["message"], format!("ReplicaSet \"{}\" is progressing.", plan.new_rs_name));
        assert!(!is_complete(&s, &d2));
        let s = at(20_000);
        assert_eq!(
            (n(&s, "replicas"), n(&s, "updatedReplicas"), n(&s, "availableReplicas")),
            (10, 10, 10)
        );
        assert!(is_complete(&s, &d2));
        assert_eq!(cond(&s, "Progressing")["reason"], "NewReplicaSetAvailable");
        assert_eq!(status_at(&d2, &plan, T0 + 999_999_999), s);
    }

    #[test]
    fn failing_rollout_times_out_exactly_after_the_deadline() {
        let (d, prev) = settled(4);
        let mut d2 = deployment(4, 2, "nginx:broken");
        d2["spec"]["progressDeadlineSeconds"] = json!(30);
        d2["status"] = d["status"].clone();
        let start = T0 + 100_000;
        let plan = begin(&d2, Some(&prev), start, 10_000, true);
        let s = status_at(&d2, &plan, start + 20_000);
        // surge 1, unavailable 1: two new pods that never become ready.
        assert_eq!(
            (n(&s, "replicas"), n(&s, "updatedReplicas"), n(&s, "availableReplicas")),
            (5, 2, 3)
        );
        assert_eq!(cond(&s, "Progressing")["status"], "True");
        let s = status_at(&d2, &plan, start + 30_000);
        assert_eq!(cond(&s, "Progressing")["status"], "True");
        let s = status_at(&d2, &plan, start + 30_001);
        let p = cond(&s, "Progressing");
        assert_eq!(p["status"], "False");
        assert_eq!(p["reason"], "ProgressDeadlineExceeded");
        assert_eq!(
            p["message"],
            format!("ReplicaSet \"{}\" has timed out progressing.", plan.new_rs_name)
        );
        assert_eq!(p["lastTransitionTime"], rfc3339(start + 30_001));
        assert!(!is_complete(&s, &d2));
        assert_eq!(cond(&s, "Available")["status"], "True");
        // It stays so.
        assert_eq!(status_at(&d2, &plan, start + 3_600_000), s);
    }

    #[test]
    fn slow_waves_time_out_then_recover() {
        let (d, prev) = settled(4);
        let mut d2 = deployment(4, 2, "nginx:2");
        d2["spec"]["progressDeadlineSeconds"] = json!(5);
        d2["status"] = d["status"].clone();
        let plan = begin(&d2, Some(&prev), T0 + 100_000, 20_000, false);
        assert_eq!(plan.wave_ms, 10_000);
        let s = status_at(&d2, &plan, T0 + 106_000);
        assert_eq!(cond(&s, "Progressing")["reason"], "ProgressDeadlineExceeded");
        let s = status_at(&d2, &plan, T0 + 110_000);
        let p = cond(&s, "Progressing");
        assert_eq!(p["reason"], "ReplicaSetUpdated");
        assert_eq!(p["status"], "True");
        assert_eq!(p["lastTransitionTime"], rfc3339(T0 + 110_000));
    }

    #[test]
    fn scaled_to_zero_completes_at_once() {
        let (d, prev) = settled(3);
        let mut d2 = d.clone();
        d2["spec"]["replicas"] = json!(0);
        d2["metadata"]["generation"] = json!(2);
        let plan = begin(&d2, Some(&prev), T0 + 50_000, 30_000, false);
        let s = status_at(&d2, &plan, T0 + 50_000);
        assert_eq!(n(&s, "observedGeneration"), 2);
        assert_eq!(s.get("replicas"), None);
        assert!(is_complete(&s, &d2));
        assert_eq!(cond(&s, "Available")["status"], "True");
        assert_eq!(cond(&s, "Progressing")["reason"], "NewReplicaSetAvailable");
        // A fresh zero-replica Deployment too.
        let z = deployment(0, 1, "nginx:1");
        let plan = begin(&z, None, T0, 30_000, false);
        assert!(is_complete(&status_at(&z, &plan, T0), &z));
    }

    #[test]
    fn scale_up_with_same_template_creates_no_new_replica_set() {
        let (d, prev) = settled(2);
        let mut d2 = d.clone();
        d2["spec"]["replicas"] = json!(4);
        d2["metadata"]["generation"] = json!(2);
        let plan = begin(&d2, Some(&prev), T0 + 50_000, 5_000, false);
        assert!(!plan.template_changed);
        let s = status_at(&d2, &plan, T0 + 50_000);
        assert_eq!((n(&s, "updatedReplicas"), n(&s, "availableReplicas")), (4, 2));
        assert_eq!(cond(&s, "Progressing")["reason"], "ReplicaSetUpdated");
        let s = status_at(&d2, &plan, T0 + 55_000);
        assert!(is_complete(&s, &d2));
    }

    #[test]
    fn paused_does_not_roll() {
        let (d, prev) = settled(3);
        let mut d2 = deployment(3, 2, "nginx:2");
        d2["spec"]["paused"] = json!(true);
        d2["status"] = d["status"].clone();
        let plan = begin(&d2, Some(&prev), T0 + 50_000, 5_000, false);
        let s = status_at(&d2, &plan, T0 + 500_000);
        assert_eq!(n(&s, "observedGeneration"), 2);
        assert_eq!((n(&s, "updatedReplicas"), n(&s, "availableReplicas")), (0, 3));
        let p = cond(&s, "Progressing");
        assert_eq!(
            (p["status"].as_str(), p["reason"].as_str()),
            (Some("Unknown"), Some("DeploymentPaused"))
        );
        assert_eq!(p["message"], "Deployment is paused");
        assert!(!is_complete(&s, &d2));
        // Resuming rolls.
        let mut d3 = d2.clone();
        d3["spec"]["paused"] = json!(false);
        d3["metadata"]["generation"] = json!(3);
        d3["status"] = s;
        let plan3 = begin(&d3, Some(&plan), T0 + 600_000, 5_000, false);
        assert!(plan3.resumed && plan3.template_changed);
        let s = status_at(&d3, &plan3, T0 + 605_000);
        assert!(is_complete(&s, &d3));
    }

    #[test]
    fn second_change_mid_rollout_restarts_the_plan() {
        let (d, prev) = settled(10);
        let mut d2 = deployment(10, 2, "nginx:2");
        d2["status"] = d["status"].clone();
        let p2 = begin(&d2, Some(&prev), T0 + 60_000, 20_000, false);
        let mid = status_at(&d2, &p2, T0 + 65_000);
        assert_eq!(n(&mid, "availableReplicas"), 8);
        let mut d3 = deployment(10, 3, "nginx:3");
        d3["status"] = mid;
        let p3 = begin(&d3, Some(&p2), T0 + 65_000, 20_000, false);
        assert_ne!(p3.new_rs_name, p2.new_rs_name);
        assert_eq!(p3.from, PodCounts { old: 8, new_total: 0, new_ready: 0 });
        let s = status_at(&d3, &p3, T0 + 65_000);
        assert_eq!(n(&s, "observedGeneration"), 3);
        assert_eq!(n(&s, "updatedReplicas"), 5);
        assert_eq!(n(&s, "availableReplicas"), 8);
        // Same reason as before: the controller's set-condition rule keeps
        // the previous message until the next progress rewrites it.
        assert_eq!(cond(&s, "Progressing")["reason"], "NewReplicaSetCreated");
        let s = status_at(&d3, &p3, T0 + 75_000);
        assert_eq!(
            cond(&s, "Progressing")["message"],
            format!("ReplicaSet \"{}\" is progressing.", p3.new_rs_name)
        );
        let s = status_at(&d3, &p3, T0 + 85_000);
        assert!(is_complete(&s, &d3));
        assert!(cond(&s, "Progressing")["message"].as_str().unwrap().contains(&p3.new_rs_name));
        // Without the previous plan the stored status is the starting point.
        let p3b = begin(&d3, None, T0 + 65_000, 20_000, false);
        assert_eq!(p3b.from.old, 8);
    }

    #[test]
    fn settled_plan_keeps_the_stored_status() {
        let (d, _) = settled(3);
        let plan = super::settled(&d, T0 + 500_000);
        assert_eq!(status_at(&d, &plan, T0 + 900_000), d["status"]);
        // A later template change rolls from it, keeping condition times.
        let mut d2 = deployment(3, 2, "nginx:2");
        d2["status"] = d["status"].clone();
        let p2 = begin(&d2, Some(&plan), T0 + 1_000_000, 10_000, false);
        assert!(p2.template_changed);
        assert_eq!(p2.from.old, 3);
        let s = status_at(&d2, &p2, T0 + 1_010_000);
        assert!(is_complete(&s, &d2));
        assert_eq!(cond(&s, "Available")["lastTransitionTime"], rfc3339(T0 + 10_000));
        assert_eq!(cond(&s, "Progressing")["lastTransitionTime"], rfc3339(T0));
        // A scale-down of a settled Deployment is done at once and keeps
        // the condition as it was.
        let mut d3 = d.clone();
        d3["spec"]["replicas"] = json!(1);
        d3["metadata"]["generation"] = json!(2);
        let p3 = begin(&d3, Some(&plan), T0 + 1_000_000, 10_000, false);
        let s = status_at(&d3, &p3, T0 + 1_000_000);
        assert!(is_complete(&s, &d3));
        assert_eq!(cond(&s, "Progressing"), cond(&d["status"], "Progressing"));
    }

    #[test]
    fn surge_and_unavailable_follow_kubernetes_rounding() {
        let d = |r: u64, strategy: Value| {
            let mut d = deployment(r, 1, "x");
            d["spec"]["strategy"] = strategy;
            d
        };
        assert_eq!(surge_and_unavailable(&d(10, json!({})), 10), (3, 2));
        assert_eq!(surge_and_unavailable(&d(1, json!({})), 1), (1, 0));
        assert_eq!(surge_and_unavailable(&d(3, json!({})), 3), (1, 0));
        let s = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}});
        assert_eq!(surge_and_unavailable(&d(3, s), 3), (0, 1));
        let s = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 1}});
        assert_eq!(surge_and_unavailable(&d(3, s), 3), (2, 1));
        assert_eq!(surge_and_unavailable(&d(3, json!({"type": "Recreate"})), 3), (0, 3));
    }

    /// `kubectl rollout status` reads these statuses as the real ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kubectl_rollout_status_reads_the_statuses() {
        use crate::openapi::kubectl_harness::{Kubectl, json_response};
        use axum::extract::RawQuery;
        use axum::http::StatusCode;
        use axum::response::IntoResponse;
        use axum::routing::get;
        use std::sync::{Arc, Mutex};

        let current = Arc::new(Mutex::new(Value::Null));
        let (c1, c2) = (current.clone(), current.clone());
        let routes = axum::Router::new()
            .route(
                "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
                get(move || async move { json_response(c1.lock().unwrap().clone()) }),
            )
            .route(
                "/apis/apps/v1/namespaces/{ns}/deployments",
                get(move |RawQuery(q): RawQuery| async move {
                    if q.unwrap_or_default().contains("watch=true") {
                        return StatusCode::NOT_FOUND.into_response();
                    }
                    let obj = c2.lock().unwrap().clone();
                    json_response(json!({"kind": "DeploymentList", "apiVersion": "apps/v1",
                        "metadata": {"resourceVersion": "9"}, "items": [obj]}))
                }),
            );
        let Some(k) = Kubectl::start(routes).await else {
            return;
        };
        let set = |mut d: Value, status: Value| {
            d["apiVersion"] = json!("apps/v1");
            d["kind"] = json!("Deployment");
            d["metadata"]["resourceVersion"] = json!("9");
            d["status"] = status;
            *current.lock().unwrap() = d;
        };
        async fn status(k: &Kubectl) -> (bool, String, String) {
            k.run(&["rollout", "status", "deployment/web", "--watch=false"]).await
        }

        let (d, prev) = settled(10);
        let mut d2 = deployment(10, 2, "nginx:2");
        d2["spec"]["progressDeadlineSeconds"] = json!(60);
        // Right after the patch: the previous rollout's status is still there.
        set(d2.clone(), d["status"].clone());
        let (ok, out, err) = status(&k).await;
        assert!(ok, "{err}");
        assert_eq!(out, "Waiting for deployment spec update to be observed...\n");

        let start = T0 + 100_000;
        let plan = begin(&d2, Some(&prev), start, 20_000, false);
        set(d2.clone(), status_at(&d2, &plan, start));
        let (_, out, _) = status(&k).await;
        assert_eq!(
            out,
            "Waiting for deployment \"web\" rollout to finish: 5 out of 10 new replicas have been updated...\n"
        );
        set(d2.clone(), status_at(&d2, &plan, start + 10_000));
        let (_, out, _) = status(&k).await;
        assert_eq!(
            out,
            "Waiting for deployment \"web\" rollout to finish: 3 old replicas are pending termination...\n"
        );
        set(d2.clone(), status_at(&d2, &plan, start + 20_000));
        let (ok, out, _) = status(&k).await;
        assert!(ok);
        assert_eq!(out, "deployment \"web\" successfully rolled out\n");

        let failing = begin(&d2, Some(&prev), start, 20_000, true);
        set(d2.clone(), status_at(&d2, &failing, start + 60_000));
        let (ok, out, _) = status(&k).await;
        assert!(ok);
        assert_eq!(
            out,
            "Waiting for deployment \"web\" rollout to finish: 5 out of 10 new replicas have been updated...\n"
        );
        set(d2.clone(), status_at(&d2, &failing, start + 60_001));
        let (ok, _, err) = status(&k).await;
        assert!(!ok);
        // (Before it, stderr may hold the test server's refused watch.)
        assert!(
            err.ends_with("error: deployment \"web\" exceeded its progress deadline\n"),
            "{err}"
        );
    }

    #[test]
    fn rfc3339_drops_milliseconds() {
        assert_eq!(rfc3339(1_000_999), "1970-01-01T00:16:40Z");
    }
}
