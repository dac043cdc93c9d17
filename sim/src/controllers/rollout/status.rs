//! The status a rollout plan produces at a given time: the pod counts and
//! the `Available` and `Progressing` conditions, set by the real
//! controller's rules (including `ProgressDeadlineExceeded`), and the
//! controller's completeness test.

use serde_json::{Map, Value, json};

use super::plan::{PodCounts, RolloutPlan, generation, spec_replicas};

/// A simulated time as `metav1.Time` (second precision).
pub fn rfc3339(ms: u64) -> String {
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
    if let Some(pos) =
        conditions.iter().position(|condition| condition.get("type") == kind.as_ref())
    {
        let current = &conditions[pos];
        if current.get("status") == new.get("status") && current.get("reason") == new.get("reason")
        {
            return;
        }
        if current.get("status") == new.get("status")
            && let (Some(time), Some(fields)) =
                (current.get("lastTransitionTime"), new.as_object_mut())
        {
            fields.insert("lastTransitionTime".to_owned(), time.clone());
        }
        conditions.remove(pos);
    }
    conditions.push(new);
}

fn is_progressing(condition: &Value) -> bool {
    condition.get("type").and_then(Value::as_str) == Some("Progressing")
}

/// The progress test of the controller: more updated, ready or available
/// pods, or fewer old ones.
fn made_progress(before: &PodCounts, after: &PodCounts) -> bool {
    after.new_total > before.new_total
        || after.available() > before.available()
        || after.old < before.old
}

/// What the controller's successive syncs under a plan leave at a time.
pub struct Replay {
    /// The pod counts.
    pub counts: PodCounts,
    /// The conditions.
    pub conditions: Vec<Value>,
    /// When the rollout last made progress (what the deadline runs from).
    pub last_progress_ms: u64,
}

/// The Deployment's `status` at `now_ms` under `plan`. Zero-valued counts
/// are omitted, as the real API serves them (`omitempty`).
pub fn status_at(deployment: &Value, plan: &RolloutPlan, now_ms: u64) -> Value {
    let Replay { counts: current, conditions, .. } = replay(plan, now_ms);
    let replicas = plan.replicas;
    let mut status = Map::new();
    if let Some(generation) = generation(deployment) {
        status.insert("observedGeneration".into(), json!(generation));
    }
    let ready = current.available();
    let counts = [
        ("replicas", current.total()),
        ("updatedReplicas", current.new_total),
        ("readyReplicas", ready),
        ("availableReplicas", ready),
        ("unavailableReplicas", replicas.saturating_sub(ready)),
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

/// Replays the controller's observations under `plan` up to `now_ms`: each
/// wave is one sync that sets the conditions by the real rules.
pub fn replay(plan: &RolloutPlan, now_ms: u64) -> Replay {
    let now_ms = now_ms.max(plan.started_at_ms);
    let replicas = plan.replicas;
    let min_available = replicas.saturating_sub(plan.max_unavailable);
    let mut conditions = plan.prior_conditions.clone();
    let available_condition = |counts: &PodCounts, at: u64| {
        if counts.available() >= min_available {
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
    let replica_set = &plan.new_rs_name;
    let started = plan.started_at_ms;
    let timeline = plan.timeline();
    let live = plan.observed.is_some();
    // The timeline always holds at least the first state.
    let mut current = timeline[0].1;
    let mut last_progress = plan.continues_from.unwrap_or(started);

    if plan.paused {
        set_condition(&mut conditions, available_condition(&current, started));
        set_condition(
            &mut conditions,
            condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                started,
            ),
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
                    started,
                ),
            );
        }
        // Each wave is one controller observation; `observed` is the last one.
        let mut observed = plan.from;
        let mut completed = false;
        for (wave, (at, state)) in timeline.iter().enumerate() {
            let at = *at;
            if at > now_ms {
                break;
            }
            current = *state;
            set_condition(&mut conditions, available_condition(state, at));
            if live && completed && state.total() == state.new_total {
                // A complete rollout is not checked for progress again.
                observed = *state;
                continue;
            }
            if plan.done(state) {
                completed = true;
                set_condition(
                    &mut conditions,
                    condition(
                        "Progressing",
                        "True",
                        "NewReplicaSetAvailable",
                        &format!("ReplicaSet \"{replica_set}\" has successfully progressed."),
                        at,
                    ),
                );
            } else if wave == 0 && plan.template_changed && plan.continues_from.is_none() {
                set_condition(
                    &mut conditions,
                    condition(
                        "Progressing",
                        "True",
                        "NewReplicaSetCreated",
                        &format!("Created new replica set \"{replica_set}\""),
                        at,
                    ),
                );
                last_progress = at;
            } else if made_progress(&observed, state)
                || (wave == 0 && !has_progressing(&conditions))
            {
                set_progressing_updated(&mut conditions, replica_set, at);
                last_progress = at;
            }
            observed = *state;
            // No progress for longer than the deadline before the next wave
            // (or ever, when stalled): the controller marks the rollout failed.
            if let Some(deadline) = plan.deadline_ms {
                let expiry = last_progress + deadline + 1;
                let next = timeline.get(wave + 1).map(|(at, _)| *at);
                if !plan.done(state) && expiry <= now_ms && next.is_none_or(|next| expiry < next) {
                    set_timed_out(&mut conditions, replica_set, expiry);
                }
            }
        }
    }

    Replay { counts: current, conditions, last_progress_ms: last_progress }
}

/// On progress the controller always rewrites the Progressing condition,
/// keeping its transition time only while it stays True.
fn set_progressing_updated(conditions: &mut Vec<Value>, replica_set: &str, at: u64) {
    let mut cond = condition(
        "Progressing",
        "True",
        "ReplicaSetUpdated",
        &format!("ReplicaSet \"{replica_set}\" is progressing."),
        at,
    );
    if let Some(pos) = conditions.iter().position(is_progressing) {
        if conditions[pos].get("status").and_then(Value::as_str) == Some("True")
            && let (Some(time), Some(fields)) =
                (conditions[pos].get("lastTransitionTime").cloned(), cond.as_object_mut())
        {
            fields.insert("lastTransitionTime".to_owned(), time);
        }
        conditions.remove(pos);
    }
    conditions.push(cond);
}

fn has_progressing(conditions: &[Value]) -> bool {
    conditions.iter().any(is_progressing)
}

fn set_timed_out(conditions: &mut Vec<Value>, replica_set: &str, at: u64) {
    set_condition(
        conditions,
        condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            &format!("ReplicaSet \"{replica_set}\" has timed out progressing."),
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

/// The first instant after `after_ms` at which [`status_at`] (or the pod
/// counts of [`RolloutPlan::counts_at`]) may change: a wave start, or a
/// progress deadline expiring one deadline (plus the controller's strict
/// millisecond) after a wave that made progress (or after the last progress
/// of the plan a continuation continues). `None` when nothing can
/// change any more. The controller sleeps until then.
pub fn next_change_after(plan: &RolloutPlan, after_ms: u64) -> Option<u64> {
    if plan.paused {
        // The paused status is written once; the plan is done just after.
        let done_at = plan.started_at_ms + 1;
        return (done_at > after_ms).then_some(done_at);
    }
    let mut next: Option<u64> = None;
    let mut consider = |at: u64| {
        if at > after_ms && next.is_none_or(|next| at < next) {
            next = Some(at);
        }
    };
    let timeline = plan.timeline();
    // A plan that follows pods stays active once complete, but a complete
    // rollout has no deadline left.
    let completed = plan.observed.is_some() && timeline.iter().any(|(_, state)| plan.done(state));
    for (at, _) in timeline {
        consider(at);
        if let Some(deadline) = plan.deadline_ms.filter(|_| !completed) {
            consider(at + deadline + 1);
        }
    }
    if let (Some(progress), Some(deadline)) = (plan.continues_from, plan.deadline_ms) {
        consider(progress + deadline + 1);
    }
    next
}
