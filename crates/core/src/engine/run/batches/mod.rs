//! How batches advance: when no batch is running, the next one is cut from the plan
//! ([`cut`]) and its restarts go out in the same pass; each of its services gets exactly one
//! result ([`drive`], judging each service by [`verdict`] within the in-flight [`budget`]);
//! and when every service has one, the batch completes into counts and result groups
//! ([`complete`]). Spec edits reach the services not in a batch yet ([`edits`]).

mod budget;
mod budgets;
mod canary;
mod complete;
mod cut;
mod drive;
mod edits;
mod gate;
mod pace;
mod verdict;

pub use budget::UNCONFIRMED_RESTART_GRACE;
pub(super) use drive::{DeferredResults, defer_results};

use jiff::{SignedDuration, Timestamp};

use super::results::{self, reason};
use super::{MESSAGE_CANCELLED, MESSAGE_DRY_RUN, Pass, ServiceRefreshStatus, summary};
use crate::crd::{BatchPhase, BatchStatus, FailurePolicy, Phase, ResultGroup, ServiceResult};
use crate::engine::RunId;
use crate::engine::positions::PositionSet;
use crate::engine::spec::ValidSpec;
use crate::engine::transitions::{EventReason, EventSeverity, Transition};

/// How often the waiting message of a rolling service may change in the status: it follows
/// every rollout step, and writing each would multiply status writes.
pub const MESSAGE_REFRESH: SignedDuration = SignedDuration::from_secs(5);

/// How long after a run's start its plan objects may still be missing from the caches. The
/// plan is written before the status that refers to it, so beyond this lag they are gone.
const PLAN_VISIBLE_WITHIN: SignedDuration = UNCONFIRMED_RESTART_GRACE;

/// The run being driven, as a batch needs it.
pub(super) struct RunContext {
    id: String,
    /// Where this resource records its runs on a Deployment.
    record_annotation: String,
    /// The run's persisted start: every restart of the run carries it as `restartedAt`.
    restarted_at: String,
    cancelling: bool,
}

impl RunContext {
    fn of(pass: &Pass, status: &ServiceRefreshStatus) -> Option<Self> {
        let run = status.run.as_ref()?;
        let record_annotation =
            run.id.parse::<RunId>().map(|id| id.record_annotation()).unwrap_or_else(|_| {
                RunId::new(pass.observation.refresh, run.number).record_annotation()
            });
        Some(Self {
            id: run.id.clone(),
            record_annotation,
            restarted_at: run
                .start_time
                .as_ref()
                .map(|time| time.0.to_string())
                .unwrap_or_default(),
            cancelling: run.cancel_request.is_some(),
        })
    }
}

/// Moves the active run forward as far as this observation allows.
pub(super) fn drive_run(pass: &mut Pass, status: &mut ServiceRefreshStatus, spec: &ValidSpec) {
    let Some(run) = RunContext::of(pass, status) else {
        return;
    };
    edits::apply_spec_edits(pass, status, spec, &run);
    let mut pace = pace::Pace::observe(pass, status, spec, &run);
    let mut guard = budgets::DisruptionGuard::observe(pass, spec);
    loop {
        if let Some(position) = running_batch(status) {
            let limit = pace.in_flight_limit();
            if !drive::drive_batch(pass, status, position, spec, &run, limit, &mut guard) {
                guard.state_wait(pass, status, position, pace.batch_size());
                return;
            }
            // Completing may fold the oldest batches away, so `position` is read first.
            let index = status.batches[position].index;
            complete::complete_batch(pass, status, position, spec, &run);
            pace.batch_completed(pass, status, index);
            continue;
        }
        if run.cancelling {
            skip_the_rest(pass, status, (reason::CANCELLED, MESSAGE_CANCELLED));
            summary::end_run(pass, status);
            return;
        }
        // Before Abort: a failed canary ends the run as the canary's failure.
        match canary::before_next_batch(pass, status, spec) {
            canary::CanaryOutcome::Proceed => {}
            canary::CanaryOutcome::Hold => return,
            canary::CanaryOutcome::EndRun(message) => {
                pass.out.notice(EventSeverity::Warning, EventReason::CanaryFailed, message.clone());
                skip_the_rest(pass, status, (reason::CANARY_FAILED, &message));
                summary::end_run(pass, status);
                return;
            }
        }
        if spec.failure_policy == FailurePolicy::Abort
            && let Some(failed_batch) = last_batch_with_failure(status)
        {
            let message =
                format!("not started: run aborted after failures in batch {failed_batch}");
            skip_the_rest(pass, status, (reason::ABORTED, &message));
            summary::end_run(pass, status);
            return;
        }
        let Some(plan) = pass.plan_of(status) else {
            wait_for_plan(pass, status);
            return;
        };
        let size = pace.batch_size().min(canary::next_batch_size(status, spec));
        let Some(positions) = cut::next_batch(plan, status, size) else {
            summary::end_run(pass, status);
            return;
        };
        let positions = budgets::trim_batch(pass, spec, plan, positions);
        if spec.suspend {
            suspend(pass, status, spec);
            return;
        }
        if super::pacing::hold_batch(pass, status, spec, &positions) {
            return;
        }
        if pace.holds_new_batches() {
            return;
        }
        match gate::before_next_batch(pass, status, spec) {
            gate::GateOutcome::Proceed => {}
            gate::GateOutcome::Hold => return,
            gate::GateOutcome::EndRun(message) => {
                skip_the_rest(pass, status, (reason::HEALTH_GATE_TIMED_OUT, &message));
                summary::end_run(pass, status);
                return;
            }
        }
        start_batch(pass, status, &positions, spec);
    }
}

/// A dry run cuts every batch as the run would, and gives each service a Skipped result
/// without restarting it: the status shows the batches a real run would make.
pub(super) fn cut_dry_run(pass: &mut Pass, status: &mut ServiceRefreshStatus, spec: &ValidSpec) {
    let before = pass.out.transitions.len();
    cut_every_batch_skipped(pass, status, spec);
    // Nothing starts or completes in a dry run: its batches are no news, its results are.
    let mut index = 0;
    pass.out.transitions.retain(|transition| {
        index += 1;
        index <= before
            || !matches!(
                transition,
                Transition::BatchStarted { .. } | Transition::BatchCompleted { .. }
            )
    });
}

fn cut_every_batch_skipped(pass: &mut Pass, status: &mut ServiceRefreshStatus, spec: &ValidSpec) {
    loop {
        let Some(plan) = pass.plan_of(status) else {
            return;
        };
        let size = canary::next_batch_size(status, spec);
        let Some(positions) = cut::next_batch(plan, status, size) else {
            return;
        };
        let positions = budgets::trim_batch(pass, spec, plan, positions);
        start_batch(pass, status, &positions, spec);
        let Some(position) = running_batch(status) else {
            return;
        };
        drive::skip_unresolved_rows(pass, status, position, (reason::DRY_RUN, MESSAGE_DRY_RUN));
        let schedule = summary::schedule_of(status.run.as_ref(), spec);
        complete::close_batch(pass, status, position, Some(schedule));
        complete::fold_earlier_batches(status);
    }
}

/// The index in `status.batches` of the batch in flight, if any.
fn running_batch(status: &ServiceRefreshStatus) -> Option<usize> {
    status.batches.iter().position(|batch| batch.phase == BatchPhase::Running)
}

/// Starts a batch of the services at `positions`: a row each, the cursor past them.
fn start_batch(
    pass: &mut Pass,
    status: &mut ServiceRefreshStatus,
    positions: &[u32],
    spec: &ValidSpec,
) {
    let Some(plan) = pass.plan_of(status) else {
        return;
    };
    let rows = positions
        .iter()
        .filter_map(|&position| {
            plan.get(position)
                .map(|entry| crate::engine::plan::service_row(entry, position, pass.own_namespace))
        })
        .collect::<Vec<_>>();
    let index = next_batch_index(status);
    let positions_text = positions.iter().copied().collect::<PositionSet>().to_string();
    let services = rows.len();
    status.batches.push(BatchStatus {
        index,
        phase: BatchPhase::Running,
        positions: Some(positions_text),
        wave: (!spec.waves.is_empty())
            .then(|| positions.first().and_then(|first| plan.get(*first)).map(|entry| entry.wave))
            .flatten(),
        start_time: Some(pass.now_micro()),
        end_time: None,
        message_time: None,
        services: rows,
        counts: None,
        ready: Vec::new(),
    });
    if let (Some(run), Some(last)) = (status.run.as_mut(), positions.last()) {
        run.next_position = last.saturating_add(1);
        run.batch_size = u32::try_from(spec.batch_size.get()).ok();
        run.canary_size =
            spec.canary.as_ref().and_then(|canary| u32::try_from(canary.size.get()).ok());
        run.slow_start = spec.slow_start;
    }
    status.phase = Some(Phase::Running);
    let run = status.run.as_ref().map(|run| run.id.clone()).unwrap_or_default();
    let (_, batches) = summary::batch_numbers(status, spec);
    pass.out.transitions.push(Transition::BatchStarted { run, batch: index, batches, services });
}

fn next_batch_index(status: &ServiceRefreshStatus) -> u32 {
    let earlier = status.earlier_batches.as_ref().map_or(0, |earlier| earlier.batches);
    status.batches.last().map_or(earlier, |batch| batch.index) + 1
}

/// `spec.suspend` holds the run before its next batch; the first pass that holds says so.
fn suspend(pass: &mut Pass, status: &mut ServiceRefreshStatus, spec: &ValidSpec) {
    if status.phase == Some(Phase::Suspended) {
        return;
    }
    status.phase = Some(Phase::Suspended);
    let (batch, batches) = summary::batch_numbers(status, spec);
    pass.out.notice(
        EventSeverity::Normal,
        EventReason::Suspended,
        format!("Run suspended by spec.suspend before batch {batch} of {batches}"),
    );
}

/// The plan the status refers to is not in the caches yet. It was written before the
/// status, so it appears within the caches' lag; past that it was deleted, and the services
/// not started can no longer be named: the run ends with them skipped.
fn wait_for_plan(pass: &mut Pass, status: &mut ServiceRefreshStatus) {
    let started = status.run.as_ref().and_then(|run| run.start_time.as_ref()).map(|time| time.0);
    let lost_at = started
        .and_then(|start| start.checked_add(PLAN_VISIBLE_WITHIN).ok())
        .unwrap_or(Timestamp::MIN);
    if pass.now < lost_at {
        pass.out.wake_no_later_than(lost_at.min(pass.now + SignedDuration::from_secs(1)));
        return;
    }
    let Some(run) = status.run.as_mut() else {
        return;
    };
    let end = run.plan.as_ref().map_or(run.next_position, |plan| plan.services);
    let name = run.plan.as_ref().map(|plan| plan.name.clone()).unwrap_or_default();
    let mut remaining = PositionSet::default();
    let resulted = results::resulted_positions(&status.results);
    for position in run.next_position..end {
        if !resulted.contains(position) {
            remaining.insert(position);
        }
    }
    run.next_position = end;
    if !remaining.is_empty() {
        let count = u32::try_from(remaining.len()).unwrap_or(u32::MAX);
        status.results.push(ResultGroup {
            result: ServiceResult::Skipped,
            reason: reason::PLAN_LOST.to_owned(),
            message: format!(
                "not restarted: the run's plan (ServiceRefreshPlan {name} and its parts) was \
                 deleted before these services' batches started"
            ),
            count,
            positions: remaining.to_string(),
            examples: Vec::new(),
        });
    }
    summary::end_run(pass, status);
}

/// Gives every service without a result a Skipped result: the running batch's rows (the
/// batch then completes) and every service not in a batch yet.
pub(super) fn skip_the_rest(
    pass: &mut Pass,
    status: &mut ServiceRefreshStatus,
    (why, message): (&str, &str),
) {
    if let Some(position) = running_batch(status) {
        drive::skip_unresolved_rows(pass, status, position, (why, message));
        complete::close_batch(pass, status, position, None);
    }
    let Some(run) = status.run.as_ref() else {
        return;
    };
    let start = run.next_position;
    let Some(plan) = pass.plan_of(status).cloned() else {
        return;
    };
    let resulted = results::resulted_positions(&status.results);
    for position in start..plan.end() {
        if resulted.contains(position) {
            continue;
        }
        if let Some(entry) = plan.get(position) {
            pass.record_unbatched(
                status,
                position,
                &entry.key,
                (ServiceResult::Skipped, why, message),
            );
        }
    }
    if let Some(run) = status.run.as_mut() {
        run.next_position = plan.end();
    }
}

/// The number of the latest batch in which a service failed.
fn last_batch_with_failure(status: &ServiceRefreshStatus) -> Option<u32> {
    let listed = status.batches.iter().rev().find(|batch| match &batch.counts {
        Some(counts) => counts.failed > 0,
        None => batch.services.iter().any(|row| row.result.is_some_and(ServiceResult::is_failure)),
    });
    listed.map(|batch| batch.index).or_else(|| {
        let earlier = status.earlier_batches.as_ref()?;
        (earlier.counts.failed > 0).then_some(earlier.batches)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(listed_failed: u32, earlier_failed: u32) -> ServiceRefreshStatus {
        serde_json::from_value(serde_json::json!({
            "earlierBatches": {"batches": 4, "counts": {"failed": earlier_failed}},
            "batches": [{"index": 5, "phase": "Completed", "counts": {"failed": listed_failed}}]
        }))
        .expect("a status")
    }

    #[test]
    fn a_failure_in_a_summed_up_batch_is_found_too() {
        // Under failurePolicy Abort a long run must stop even when the failed batch is no
        // longer listed in the status, only counted.
        assert_eq!(last_batch_with_failure(&status(1, 1)), Some(5));
        assert_eq!(last_batch_with_failure(&status(0, 1)), Some(4));
        assert_eq!(last_batch_with_failure(&status(0, 0)), None);
    }
}
