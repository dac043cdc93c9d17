//! Driving the running batch through one pass: first its restarted services (their rollouts
//! may have freed places), then those not restarted yet, in plan order, each by its verdict.
//! Results reached within a batch may wait for the batch's end or the next message refresh
//! when they are all a pass would write.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

use super::budget::{self, InFlight};
use super::budgets::DisruptionGuard;
use super::verdict::{self, BatchClock, Finish, Launch, RolloutVerdict};
use super::{MESSAGE_REFRESH, RunContext};
use crate::crd::{Phase, ServiceRefreshStatus, ServiceResult, ServiceStatus};
use crate::engine::run::{MESSAGE_RESTARTED, Pass, pacing, refresh_totals};
use crate::engine::spec::ValidSpec;
use crate::engine::transitions::Transition;
use crate::engine::{ObjectKey, Restart, plan};

/// Results a running batch reached in this pass, and what its services looked like before,
/// so the pass can leave them unwritten when nothing else changes.
pub(in crate::engine::run) struct DeferredResults {
    position: usize,
    services: Vec<ServiceStatus>,
    message_time: Option<MicroTime>,
    finished: Vec<Transition>,
    due: Timestamp,
}

/// What one pass did to the running batch's rows.
#[derive(Default)]
struct Progress {
    finished: Vec<Transition>,
    unresolved: bool,
    messages_refreshed: bool,
    messages_stale: bool,
    adopted: bool,
    /// A restart waited because the maintenance windows closed after the batch began.
    held_by_window: bool,
}

/// Works through the unresolved services of the batch at `position`. Returns whether every
/// service of the batch now has a result.
pub(super) fn drive_batch(
    pass: &mut Pass,
    status: &mut ServiceRefreshStatus,
    position: usize,
    spec: &ValidSpec,
    run: &RunContext,
    (limit, capacity_hold): (usize, Option<&str>),
    guard: &mut DisruptionGuard,
) -> bool {
    status.phase = Some(Phase::Running);
    let elsewhere = budget::rollouts_in_flight_elsewhere(pass, status, position, run);
    guard.begin_batch(pass.observation.cluster, &elsewhere);
    let mut budget = InFlight::new(limit, elsewhere.len()).held_for_capacity(capacity_hold);
    let now = pass.now;
    // A batch begun inside a window may still hold restarts when the window closes (a
    // Deployment another run was rolling out, a full budget): they wait for the next window,
    // for no restart may change a pod template outside one.
    let window = pacing::outside_window(pass, spec, "the batch's remaining restarts wait");
    let resumed = pass.resumes_sending(window.is_some());
    let batch = &mut status.batches[position];
    // Sending resumes: the clock starts over for the services that waited to be restarted,
    // unless one of the batch already timed out (its result keeps the batch's real start).
    let timed_out_before =
        batch.services.iter().any(|row| row.result == Some(ServiceResult::TimedOut));
    if resumed && !timed_out_before {
        batch.start_time = Some(MicroTime(now));
    }
    // Only a hand-edited status lacks a start; starting the clock now is the fair reading.
    batch.start_time.get_or_insert(MicroTime(now));
    let mut clock =
        BatchClock::of(batch, spec.batch_timeout, &spec.batch_timeout_text, now, MESSAGE_REFRESH);
    // While restarts may not be sent, the services waiting for one keep their place without
    // failing for it; when sending resumes, the batch's clock starts over.
    clock.restarts_paused = pass.observation.forbidden.is_some() || window.is_some();
    let index = batch.index;
    let rows_before = batch.services.clone();
    let message_time_before = batch.message_time.clone();
    let restarts_before = pass.out.restarts.len();
    let mut progress = Progress::default();

    for row in batch.services.iter_mut().filter(|row| row.result.is_none()) {
        judge_restarted(pass, row, index, run, &clock, &mut budget, &mut progress, guard);
    }
    for row in batch.services.iter_mut() {
        if row.result.is_none() && row.generation.is_none() {
            let window = window.as_ref().map(|wait| wait.message.as_str());
            let ctx = (&clock, &mut budget, &mut *guard, window);
            launch_unrestarted(pass, row, index, run, ctx, &mut progress);
        }
    }

    if progress.messages_refreshed {
        batch.message_time = Some(MicroTime(now));
    }
    if let Some(wait) = window.filter(|_| progress.held_by_window) {
        pass.wait(status, wait);
    }
    if progress.messages_stale {
        let next =
            if progress.messages_refreshed { now + MESSAGE_REFRESH } else { clock.refresh_due };
        pass.out.wake_no_later_than(next);
    }
    if progress.unresolved {
        pass.out.wake_no_later_than(clock.deadline);
    }
    let finished: Vec<Transition> = progress.finished;
    let restarted_now = progress.adopted || pass.out.restarts.len() > restarts_before;
    if progress.unresolved && !clock.may_refresh && !restarted_now {
        // Results within a batch may wait for the batch's end or the next refresh: the next
        // pass derives them again from the same Deployments, and each written alone would
        // cost a status write per service.
        pass.out.deferred = Some(DeferredResults {
            position,
            services: rows_before,
            message_time: message_time_before,
            finished,
            due: clock.refresh_due,
        });
    } else {
        pass.out.transitions.extend(finished);
    }
    !progress.unresolved
}

/// A restarted service (or one this run's patch reached without a record): judged by its
/// rollout.
#[allow(clippy::too_many_arguments)]
fn judge_restarted(
    pass: &mut Pass,
    row: &mut ServiceStatus,
    batch: u32,
    run: &RunContext,
    clock: &BatchClock,
    budget: &mut InFlight,
    progress: &mut Progress,
    guard: &mut DisruptionGuard,
) {
    let key = plan::service_key(row, pass.own_namespace);
    let deployment = pass.observation.cluster.deployment(&key);
    let Some((generation, adopted)) = verdict::restart_generation(row, deployment.as_deref(), run)
    else {
        return;
    };
    if adopted {
        // A restart the status already names (its uid was written before the patch) needs
        // no write of its own: every pass adopts it again from the run mark until a write
        // happens anyway. One never put on record is recorded now.
        progress.adopted |= row.uid.is_none();
        row.generation = Some(generation);
        row.uid = deployment.as_ref().and_then(|deployment| deployment.metadata.uid.clone());
        row.message = Some(MESSAGE_RESTARTED.to_owned());
    }
    match verdict::judge_rollout(row, deployment.as_deref(), generation, clock) {
        RolloutVerdict::Finished { finish, still_rolling } => {
            if still_rolling {
                // It keeps its place in the budget of the batches after this one (no restart
                // follows in a timed-out batch), and its end must be heard.
                pass.out.awaiting.insert(key.clone());
                guard.in_flight(pass.observation.cluster, &key);
            }
            finish_row(&mut progress.finished, &run.id, batch, key, row, finish, false);
        }
        RolloutVerdict::Waiting(message) => {
            budget.take();
            guard.in_flight(pass.observation.cluster, &key);
            progress.unresolved = true;
            pass.out.awaiting.insert(key);
            if row.message.as_deref() != Some(message.as_str()) {
                if row.message.is_none() || clock.may_refresh {
                    row.message = Some(message);
                    progress.messages_refreshed = true;
                } else {
                    progress.messages_stale = true;
                }
            }
        }
    }
}

/// A service not restarted yet: restarted while the budget allows, held, or given a result.
fn launch_unrestarted(
    pass: &mut Pass,
    row: &mut ServiceStatus,
    batch: u32,
    run: &RunContext,
    (clock, budget, guard, window): (
        &BatchClock,
        &mut InFlight,
        &mut DisruptionGuard,
        Option<&str>,
    ),
    progress: &mut Progress,
) {
    let key = plan::service_key(row, pass.own_namespace);
    let deployment = pass.observation.cluster.deployment(&key);
    // A restart decided earlier (its uid kept, its outcome unknown) is sent again as it was:
    // the budget allowed it then, and if it landed, its own pods are what the budget misses.
    let disruption = match (&row.uid, deployment.as_deref()) {
        (None, Some(workload)) => guard.hold(workload),
        _ => None,
    };
    match verdict::launch(row, deployment.as_deref(), run, (budget, disruption.as_deref()), clock) {
        Launch::Finish { finish, keep_uid } => {
            finish_row(&mut progress.finished, &run.id, batch, key, row, finish, keep_uid);
        }
        Launch::Hold(message) => {
            if disruption.as_deref() == Some(message.as_str()) {
                guard.held(&key, &message);
            }
            progress.unresolved = true;
            pass.out.awaiting.insert(key);
            row.message = Some(message);
        }
        Launch::Restart => {
            progress.unresolved = true;
            if let Some(message) = window {
                progress.held_by_window = true;
                pass.out.awaiting.insert(key);
                row.message = Some(format!("held: {message}"));
                return;
            }
            if let Some(message) = pass.forbidden_hold() {
                pass.out.awaiting.insert(key);
                row.message = Some(message);
                return;
            }
            budget.take();
            guard.in_flight(pass.observation.cluster, &key);
            pass.out.awaiting.insert(key.clone());
            let deployment = deployment.as_deref();
            // The resourceVersion precondition pins the patch to this very object.
            row.uid = deployment.and_then(|deployment| deployment.metadata.uid.clone());
            pass.out.restarts.push(Restart {
                deployment: key,
                restarted_at: run.restarted_at.clone(),
                restarted_by: run.id.clone(),
                record_annotation: run.record_annotation.clone(),
                resource_version: deployment
                    .and_then(|deployment| deployment.metadata.resource_version.clone()),
            });
        }
    }
}

/// Gives `row` its result and notes the transition.
fn finish_row(
    finished: &mut Vec<Transition>,
    run: &str,
    batch: u32,
    key: ObjectKey,
    row: &mut ServiceStatus,
    finish: Finish,
    keep_uid: bool,
) {
    row.result = Some(finish.result);
    row.reason = (!finish.reason.is_empty()).then(|| finish.reason.to_owned());
    row.message = finish.message.clone();
    if !keep_uid {
        row.uid = None;
    }
    if finish.result == ServiceResult::Ready {
        // The restart is done; only failures keep the generation, as evidence it happened.
        row.generation = None;
    }
    finished.push(Transition::ServiceFinished {
        run: run.to_owned(),
        batch,
        deployment: key,
        result: finish.result,
        message: finish.message,
    });
}

/// Gives every row of the batch at `position` without a result a Skipped result.
pub(super) fn skip_unresolved_rows(
    pass: &mut Pass,
    status: &mut ServiceRefreshStatus,
    position: usize,
    (why, message): (&str, &str),
) {
    let run = status.run.as_ref().map(|run| run.id.clone()).unwrap_or_default();
    let own_namespace = pass.own_namespace;
    let batch = &mut status.batches[position];
    for row in batch.services.iter_mut().filter(|row| row.result.is_none()) {
        row.result = Some(ServiceResult::Skipped);
        row.reason = Some(why.to_owned());
        row.message = Some(message.to_owned());
        row.uid = None;
        pass.out.transitions.push(Transition::ServiceFinished {
            run: run.clone(),
            batch: batch.index,
            deployment: plan::service_key(row, own_namespace),
            result: ServiceResult::Skipped,
            message: Some(message.to_owned()),
        });
    }
}

/// Leaves a running batch's new results unwritten when they are all this pass would write:
/// the status stays as observed and the pass comes back when they are due. Otherwise (a
/// write happens anyway) they ride along.
pub(in crate::engine::run) fn defer_results(pass: &mut Pass, status: &mut ServiceRefreshStatus) {
    let Some(mut deferred) = pass.out.deferred.take() else {
        return;
    };
    let observed = pass.observation.refresh.status.as_ref();
    swap_rows(status, &mut deferred);
    if observed == Some(&*status) {
        pass.out.wake_no_later_than(deferred.due);
        return;
    }
    swap_rows(status, &mut deferred);
    pass.out.transitions.extend(deferred.finished);
}

fn swap_rows(status: &mut ServiceRefreshStatus, deferred: &mut DeferredResults) {
    let batch = &mut status.batches[deferred.position];
    std::mem::swap(&mut batch.services, &mut deferred.services);
    std::mem::swap(&mut batch.message_time, &mut deferred.message_time);
    refresh_totals(status);
}
