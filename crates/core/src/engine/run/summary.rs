//! How a run is counted and closed: the totals and printer-column strings, the run's closing
//! message and phase, the history of past runs, and the conditions a resource shows once no
//! run is active.

use super::Pass;
use crate::crd::{Phase, RunStatus, RunSummary, ServiceRefreshStatus, ServiceResult, WorkloadKind};
use crate::engine::ObjectKey;
use crate::engine::conditions::Situation;
use crate::engine::positions::PositionSet;
use crate::engine::results::{self, reason};
use crate::engine::schedule::Schedule;
use crate::engine::spec::{self, OperatorScope, ValidSpec};
use crate::engine::transitions::Transition;

/// Finished runs kept in `status.history`.
pub const MAX_HISTORY: usize = 10;
/// Failed services named in a run's final message; the rest are counted, which keeps the
/// message (and the condition that carries it) small for large fleets.
const MAX_LISTED_FAILURES: usize = 10;

pub(super) fn end_run(pass: &mut Pass, status: &mut ServiceRefreshStatus) {
    pass.waiting.forget();
    refresh_totals(status);
    let (failures, listed_count) = listed_failures(pass, status);
    let totals = status.totals.clone();
    let now = pass.now_time();
    let selection = describe_selection(pass);
    // A gate that timed out under Abort fails the run even when every restart went well.
    // So does a canary that turned unready during its soak.
    let gate_failure = stopping_result(status).map(|group| group.message.clone());
    let Some(run) = status.run.as_mut() else {
        return;
    };
    let cancelled = run.cancel_request.is_some();
    let phase = if cancelled {
        Phase::Cancelled
    } else if totals.failed == 0 && totals.services > 0 && gate_failure.is_none() {
        Phase::Succeeded
    } else {
        Phase::Failed
    };
    let noun = noun(pass);
    let outcome = if totals.services == 0 {
        format!("nothing selected: no {} matched the {selection}", noun.0)
    } else if run.dry_run {
        let batches = status.batches.last().map_or(0, |batch| batch.index);
        format!(
            "dry run planned {} {} in {batches} batches; nothing was restarted",
            totals.services, noun.1
        )
    } else if cancelled {
        format!(
            "{} of {} {} ready, {} failed, {} skipped",
            totals.ready, totals.services, noun.1, totals.failed, totals.skipped
        )
    } else if let Some(gate) = gate_failure.filter(|_| totals.failed == 0) {
        format!(
            "{gate}; {} of {} Deployments ready, {} skipped",
            totals.ready, totals.services, totals.skipped
        )
    } else if totals.failed == 0 {
        format!(
            "{} of {} {} ready, {} skipped",
            totals.ready, totals.services, noun.1, totals.skipped
        )
    } else {
        let mut listed = failures.join("; ");
        let more = (totals.failed as usize).saturating_sub(listed_count);
        if more > 0 {
            listed.push_str(&format!("; and {more} more"));
        }
        format!("{} of {} {} failed: {listed}", totals.failed, totals.services, noun.1)
    };
    // A note made at the start (excluded names that match nothing) stays on record.
    let start_note = run
        .message
        .as_deref()
        .and_then(|message| message.split_once(super::EXCLUDE_NOTE))
        .map(|(_, names)| format!("; {}{names}", super::EXCLUDE_NOTE))
        .unwrap_or_default();
    let verb = match phase {
        Phase::Succeeded => "succeeded",
        Phase::Cancelled => "was cancelled",
        _ => "failed",
    };
    let message = shorten_run_message(format!("Run {} {verb}: {outcome}{start_note}", run.number));
    let seconds =
        run.start_time.as_ref().map_or(0.0, |start| now.0.duration_since(start.0).as_secs_f64());
    run.end_time = Some(now);
    run.message = Some(message.clone());
    status.history.insert(
        0,
        RunSummary {
            id: run.id.clone(),
            number: run.number,
            reason: run.reason.clone(),
            request: run.request.clone(),
            phase,
            message: Some(message.clone()),
            start_time: run.start_time.clone(),
            end_time: run.end_time.clone(),
            totals: totals.clone(),
        },
    );
    status.history.truncate(MAX_HISTORY);
    status.phase = Some(phase);
    let (run, number, reason) = (run.id.clone(), run.number, run.reason.clone());
    pass.out.transitions.push(Transition::RunFinished {
        run,
        number,
        reason,
        phase,
        totals,
        message,
        seconds,
    });
}

/// Longest closing message of a run, in characters: it is the message of the Ready and
/// Stalled conditions too.
const MAX_RUN_MESSAGE_CHARS: usize = 4_096;

fn shorten_run_message(message: String) -> String {
    if message.chars().count() <= MAX_RUN_MESSAGE_CHARS {
        return message;
    }
    let mut short: String = message.chars().take(MAX_RUN_MESSAGE_CHARS - 1).collect();
    short.push('…');
    short
}

/// What the run restarts, singular and plural: Deployments, or workloads when the resource
/// lists other kinds too.
fn noun(pass: &Pass) -> (&'static str, &'static str) {
    let kinds = &pass.observation.refresh.spec.kinds;
    if kinds.iter().all(WorkloadKind::is_deployment) {
        ("Deployment", "Deployments")
    } else {
        ("workload", "workloads")
    }
}

/// A failed service as the closing message names it: `arcgis/web`, or with its kind when it
/// is no Deployment (`StatefulSet arcgis/relational-store`).
fn named(key: &ObjectKey) -> String {
    if key.kind.is_deployment() { key.to_string() } else { key.describe() }
}

/// The first failures of the run in plan order, for its closing message: the services of
/// one cause named together before the cause's message. Returns the phrases and how many
/// services they name.
fn listed_failures(pass: &Pass, status: &ServiceRefreshStatus) -> (Vec<String>, usize) {
    let plan = pass.plan_of(status);
    let mut causes: Vec<(u32, Vec<String>, ServiceResult, String)> = Vec::new();
    // The services of one cause are named together, before the message about the first.
    for group in status.results.iter().filter(|group| group.result.is_failure()) {
        let positions = PositionSet::parse(&group.positions).unwrap_or_default();
        let names: Vec<(u32, String)> = positions
            .iter()
            .take(MAX_LISTED_FAILURES)
            .filter_map(|position| Some((position, named(&plan?.get(position)?.key))))
            .collect();
        if let Some(&(first, _)) = names.first() {
            let names = names.into_iter().map(|(_, name)| name).collect();
            causes.push((first, names, group.result, group.message.clone()));
        }
    }
    for row in status.batches.iter().flat_map(|batch| &batch.services) {
        if let (Some(result), Some(position)) = (row.result, row.position)
            && result.is_failure()
            && results::group_of(&status.results, position).is_none()
        {
            let key = crate::engine::plan::service_key(row, pass.own_namespace);
            causes.push((
                position,
                vec![named(&key)],
                result,
                row.message.clone().unwrap_or_default(),
            ));
        }
    }
    causes.sort_by_key(|(position, ..)| *position);
    let mut budget = MAX_LISTED_FAILURES;
    let mut phrases = Vec::new();
    for (_, mut names, result, message) in causes {
        if budget == 0 {
            break;
        }
        names.truncate(budget);
        budget -= names.len();
        phrases.push(format!("{}: {result:?}: {message}", names.join(", ")));
    }
    (phrases, MAX_LISTED_FAILURES - budget)
}

/// The selection of the current spec in words, or why there is none.
fn describe_selection(pass: &Pass) -> String {
    let refresh = pass.observation.refresh;
    let scope: &OperatorScope = pass.observation.scope;
    spec::validate(&refresh.spec, pass.own_namespace, scope)
        .map(|valid| valid.describe_selection())
        .unwrap_or_else(|error| error.to_string())
}

/// The conditions once no run is active: those of the last run's outcome.
pub(super) fn ended_situation(status: &mut ServiceRefreshStatus) -> Situation {
    let Some(run) = &status.run else {
        return Situation::AwaitingTrigger;
    };
    let message = run.message.clone().unwrap_or_default();
    let phase = last_run_phase(status);
    status.phase = Some(phase);
    match phase {
        Phase::Cancelled => Situation::Cancelled { message },
        Phase::Failed if results::totals(status).services == 0 => {
            Situation::NothingSelected { message }
        }
        Phase::Failed
            if status.results.iter().any(|group| group.reason == reason::CANARY_FAILED) =>
        {
            Situation::CanaryFailed { message }
        }
        Phase::Failed => Situation::RunFailed { message },
        _ => Situation::Succeeded { message },
    }
}

/// How the last (ended) run went: as recorded in the history, or by the rule `end_run`
/// applies for a status written before the history held phases.
fn last_run_phase(status: &ServiceRefreshStatus) -> Phase {
    let recorded = status
        .history
        .first()
        .filter(|summary| status.run.as_ref().is_some_and(|run| run.id == summary.id))
        .map(|summary| summary.phase);
    recorded.unwrap_or_else(|| {
        let totals = results::totals(status);
        if totals.failed > 0 || totals.services == 0 { Phase::Failed } else { Phase::Succeeded }
    })
}

/// The number of the current batch and an estimate of how many the run has: the batches
/// started so far, plus the services not in a batch yet cut as the spec's schedule cuts
/// them (canary, slow start, the effective size).
pub(super) fn batch_numbers(status: &ServiceRefreshStatus, spec: &ValidSpec) -> (usize, usize) {
    batch_numbers_with(status, Some(schedule_of(status.run.as_ref(), spec)))
}

/// The schedule of the spec's pacing, with the effective size `run` paces at now.
pub(super) fn schedule_of(run: Option<&RunStatus>, spec: &ValidSpec) -> Schedule {
    let limit = spec.batch_size.get();
    let effective = run
        .and_then(|run| run.pacing.as_ref())
        .filter(|_| spec.capacity_aware)
        .map_or(limit, |pacing| pacing.effective_batch_size as usize);
    Schedule {
        limit,
        canary: spec.canary.as_ref().map(|canary| canary.size),
        slow_start: spec.slow_start,
        effective,
    }
}

/// [`batch_numbers`] with the schedule to assume for the rest (by default, the one the
/// run's record holds as of its latest batch).
pub(super) fn batch_numbers_with(
    status: &ServiceRefreshStatus,
    schedule: Option<Schedule>,
) -> (usize, usize) {
    let started = status
        .batches
        .last()
        .map(|batch| batch.index)
        .or_else(|| status.earlier_batches.as_ref().map(|earlier| earlier.batches))
        .unwrap_or(0) as usize;
    let Some(run) = &status.run else {
        return (started, started);
    };
    let end = run.plan.as_ref().map_or(0, |plan| plan.services);
    let resulted_ahead = results::resulted_positions(&status.results)
        .iter()
        .filter(|position| *position >= run.next_position)
        .count();
    let remaining = (end.saturating_sub(run.next_position) as usize).saturating_sub(resulted_ahead);
    let schedule = schedule.unwrap_or_else(|| Schedule::of_run(run));
    let next = u32::try_from(started).unwrap_or(u32::MAX).saturating_add(1);
    let total = started + schedule.batches_for(remaining, next);
    let running = status.batches.iter().any(|batch| batch.phase == crate::crd::BatchPhase::Running);
    let current = if running || remaining == 0 { started } else { started + 1 };
    (current.min(total), total)
}

/// The result group of a gate that timed out under Abort or of a failed canary: either ends
/// the run as Failed even when every restart went well.
fn stopping_result(status: &ServiceRefreshStatus) -> Option<&crate::crd::ResultGroup> {
    status.results.iter().find(|group| {
        group.reason == reason::HEALTH_GATE_TIMED_OUT || group.reason == reason::CANARY_FAILED
    })
}

/// Recomputes the counts and the printer-column strings.
pub fn refresh_totals(status: &mut ServiceRefreshStatus) {
    if status.run.is_none() {
        return;
    }
    let totals = results::totals(status);
    let (batch, mut batches) = batch_numbers_with(status, None);
    let running = status.batches.iter().any(|batch| batch.phase == crate::crd::BatchPhase::Running);
    let all_cut = status.run.as_ref().is_some_and(|run| {
        run.end_time.is_some()
            || run.plan.as_ref().is_some_and(|plan| run.next_position >= plan.services)
    });
    let stopped_early = status.run.as_ref().is_some_and(|run| run.cancel_request.is_some())
        || totals.failed > 0
        || stopping_result(status).is_some();
    if all_cut && !running && stopped_early {
        // A run that ends early (cancelled, aborted) skips the batches it had not started:
        // they no longer count as ahead, but the total it was heading for stays, so BATCH
        // reads where it stopped (`5/10`), not `5/5`. A run that goes through has counted
        // down to its last batch already, even when services left its plan without a batch
        // (excluded, an OnDelete StatefulSet).
        let planned = status
            .batch
            .as_deref()
            .and_then(|shown| shown.split_once('/'))
            .and_then(|(_, total)| total.parse::<usize>().ok());
        batches = batches.max(planned.unwrap_or(0));
    }
    status.progress = Some(format!("{}/{}", totals.ready, totals.services));
    status.batch = Some(format!("{batch}/{batches}"));
    status.totals = totals;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_ended_before_the_history_held_phases_is_judged_by_its_totals() {
        let status = |services: u32, failed: u32| -> ServiceRefreshStatus {
            let results = if failed == 0 {
                serde_json::json!([])
            } else {
                serde_json::json!([{"result": "Failed", "reason": "ProgressDeadlineExceeded",
                    "message": "m", "count": failed, "positions": "0", "examples": ["a"]}])
            };
            serde_json::from_value(serde_json::json!({
                "run": {"id": "arcgis/refresh/1-0123", "number": 1, "reason": "Requested",
                    "plan": {"name": "refresh-plan-1", "parts": 1, "services": services,
                        "digest": "d"}},
                "results": results,
            }))
            .expect("a status")
        };
        assert_eq!(last_run_phase(&status(3, 0)), Phase::Succeeded);
        assert_eq!(last_run_phase(&status(3, 1)), Phase::Failed);
        assert_eq!(last_run_phase(&status(0, 0)), Phase::Failed, "nothing was selected");
        let mut recorded = status(3, 1);
        recorded.history = serde_json::from_value(serde_json::json!([{
            "id": "arcgis/refresh/1-0123", "number": 1, "reason": "Requested",
            "phase": "Cancelled", "totals": {}
        }]))
        .expect("a history");
        assert_eq!(last_run_phase(&recorded), Phase::Cancelled, "the history's word wins");
        recorded.history[0].id = "arcgis/refresh/0-9999".to_owned();
        assert_eq!(last_run_phase(&recorded), Phase::Failed, "another run's summary is not this");
    }

    #[test]
    fn a_long_run_message_is_cut_to_the_limit_with_an_ellipsis() {
        let short = shorten_run_message("x".repeat(MAX_RUN_MESSAGE_CHARS + 100));
        assert_eq!(short.chars().count(), MAX_RUN_MESSAGE_CHARS);
        assert!(short.ends_with("x…"));
        let fits = "y".repeat(MAX_RUN_MESSAGE_CHARS);
        assert_eq!(shorten_run_message(fits.clone()), fits);
    }
}
