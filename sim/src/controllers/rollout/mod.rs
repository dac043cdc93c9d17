//! The Deployment rollout model: how a Deployment's `status` moves over
//! simulated time after a spec change, as pure functions (no IO and no clock:
//! the controller passes milliseconds since the Unix epoch). `plan` owns the
//! real controller's RollingUpdate arithmetic and the waves of a rollout,
//! `status` the pod counts and the `Available` / `Progressing` conditions
//! they produce (with the real reasons, messages and timestamps), and
//! `template_hash` the name of the new ReplicaSet.
//!
//! API, as the Deployment controller uses it:
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
//! - With nodes, for a plan on the clock (not one that follows pods), after
//!   creating a wave's pods (and whenever the scheduler binds waiting ones),
//!   compare how many new pods have no node with the plan's `new_unbound`
//!   at that time; when they differ, keep [`rebase`]`(&plan, now, unbound)`
//!   as the plan.
//! - The plan's `new_rs_name` names the new ReplicaSet
//!   (`<deployment>-<pod template hash>`).
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
//!
//! Capacity: a plan assumes every pod it creates finds a node. When the
//! scheduler leaves some of a wave's new pods unbound (`Pending`,
//! `Unschedulable`), the controller rebases the plan at that moment: the
//! rollout goes on from the pods there are, the unbound ones never become
//! ready while unbound, so the wave that would have made them ready makes
//! no progress, old pods are not scaled down past maxUnavailable for them,
//! and no further surge pods are created. Such a rollout stalls like a
//! failing one and crosses its progress deadline the same way. Once the
//! scheduler binds them (room freed by other pods going), the controller
//! rebases again: they become ready one wave later and the rollout carries
//! on (a `ProgressDeadlineExceeded` condition turns back to `True` /
//! `ReplicaSetUpdated` with that progress, as the real controller does).
//! Without nodes no pod is ever unbound and no plan is rebased.
//!
//! Pods the kubelet runs for real replace the clock: a plan that
//! [`RolloutPlan::follow_pods`] moves when the controller observes its new
//! pods' readiness (`observe_ready`), each observation one controller sync;
//! once complete, only the counts and `Available` follow the pods (the real
//! controller checks no more progress of a complete rollout). Such a plan
//! needs no rebase: a pod no node took is not run, so it is observed
//! unready until the scheduler binds it and it gets ready.

mod plan;
mod status;
mod template_hash;

#[cfg(test)]
mod capacity_tests;
#[cfg(test)]
mod tests;

use serde_json::Value;

use plan::spec_replicas;
pub use plan::surge_and_unavailable;
pub use plan::{PodCounts, RolloutPlan};
pub use status::{is_complete, next_change_after, status_at};
use template_hash::new_replica_set_name;
pub use template_hash::pod_template_hash;

/// The default `spec.progressDeadlineSeconds` the API server fills in.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: u64 = 600;

/// Starts the rollout of a Deployment's current generation.
///
/// `deployment` is the stored object after the spec change (its `status` is
/// the one the previous rollout left). `previous` is the plan of the previous
/// generation, if the controller still has it: it tells which running pods
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
            // MaxInt32 is how a Deployment opts out of the deadline.
            Some(seconds) if seconds >= i32::MAX as u64 => None,
            Some(seconds) => Some(seconds * 1000),
            None => Some(DEFAULT_PROGRESS_DEADLINE_SECONDS * 1000),
        };
    let paused = deployment.pointer("/spec/paused").and_then(Value::as_bool).unwrap_or(false);
    let template_hash = pod_template_hash(deployment);
    let new_rs_name = new_replica_set_name(deployment);

    let (current, prior_conditions, template_changed, was_paused) = match previous {
        Some(previous) => {
            let counts = previous.counts_at(now_ms);
            // The controller sets conditions on the status it last wrote
            // (the stored one); the plan's own view serves when there is none.
            let conditions = deployment
                .get("status")
                .map(conditions_of)
                .filter(|conditions| !conditions.is_empty())
                .unwrap_or_else(|| conditions_of(&status_at(deployment, previous, now_ms)));
            if previous.template_hash == template_hash {
                (counts, conditions, false, previous.paused)
            } else {
                // Every available pod now belongs to an old ReplicaSet; the
                // unavailable ones are cleaned up first.
                let old = PodCounts { old: counts.available(), ..PodCounts::default() };
                (old, conditions, true, previous.paused)
            }
        }
        None => {
            let status = deployment.get("status");
            let has_status = status.and_then(|status| status.get("observedGeneration")).is_some();
            let conditions = status.map(conditions_of).unwrap_or_default();
            let old = PodCounts { old: available_in_status(status), ..PodCounts::default() };
            (old, conditions, true, has_status && is_paused_status(status))
        }
    };

    // A paused controller creates no new ReplicaSet: the pods keep running
    // the previous template, which is what a later resume compares against.
    let template_hash = if paused && template_changed {
        previous.map(|previous| previous.template_hash.clone()).unwrap_or_default()
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
        observed: None,
        continues_from: None,
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
#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "the controller still plans settled Deployments with `begin`; see sim/README.md"
    )
)]
pub fn settled(deployment: &Value, now_ms: u64) -> RolloutPlan {
    let replicas = spec_replicas(deployment);
    let (max_surge, max_unavailable) = surge_and_unavailable(deployment, replicas);
    let status = deployment.get("status");
    let available = available_in_status(status).min(replicas);
    let updated = status
        .and_then(|status| status.get("updatedReplicas"))
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
        from: PodCounts { new_total: updated, new_ready: available, ..PodCounts::default() },
        new_rs_name: new_replica_set_name(deployment),
        template_hash,
        template_changed: false,
        prior_conditions: status.map(conditions_of).unwrap_or_default(),
        wave_ms: 0,
        observed: None,
        continues_from: None,
    }
}

/// The plan of a rollout whose new pods the scheduler did not all place as
/// the plan assumed: at `at_ms` (the controller's sync after creating pods,
/// or after the scheduler bound some), `unbound` of the new ReplicaSet's
/// pods have no node. The returned plan continues the rollout from the
/// pods there are then: bound pods that are not ready yet become ready one
/// wave later, unbound ones never while they are (so the rollout stalls
/// once nothing else can become ready). Its conditions carry on from the
/// plan's, and the progress deadline still counts from the last progress
/// (so a rollout waiting for room crosses it as a stalled one does). For
/// plans on the clock: one that follows pods keeps its observations, and
/// sees pods without a node as the unready pods they are.
pub fn rebase(plan: &RolloutPlan, at_ms: u64, unbound: u64) -> RolloutPlan {
    let at_ms = at_ms.max(plan.started_at_ms);
    let replay = status::replay(plan, at_ms);
    let mut from = replay.counts;
    from.new_unbound = unbound.min(from.new_total);
    from.new_ready = from.new_ready.min(from.new_total - from.new_unbound);
    RolloutPlan {
        started_at_ms: at_ms,
        resumed: false,
        from,
        prior_conditions: replay.conditions,
        continues_from: Some(replay.last_progress_ms),
        ..plan.clone()
    }
}

/// Whether the controller reported the Deployment paused.
fn is_paused_status(status: Option<&Value>) -> bool {
    status.map(conditions_of).unwrap_or_default().iter().any(|condition| {
        condition.get("reason").and_then(Value::as_str) == Some("DeploymentPaused")
    })
}

/// A status's conditions (none when absent).
fn conditions_of(status: &Value) -> Vec<Value> {
    status.get("conditions").and_then(Value::as_array).cloned().unwrap_or_default()
}

/// `status.availableReplicas`, 0 when absent.
fn available_in_status(status: Option<&Value>) -> u64 {
    status.and_then(|status| status.get("availableReplicas")).and_then(Value::as_u64).unwrap_or(0)
}
