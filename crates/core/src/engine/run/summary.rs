//! How a run is counted and closed: the totals and printer-column strings recomputed from
//! the plan, the run's closing message and phase, the history of past runs, and the
//! conditions a resource shows once no run is active.

use super::Pass;
use crate::crd::{BatchPhase, Phase, RunSummary, ServiceRefreshStatus, ServiceResult, Totals};
use crate::engine::conditions::Situation;
use crate::engine::plan;
use crate::engine::spec::{self, OperatorScope};
use crate::engine::transitions::Transition;

/// Finished runs kept in `status.history`.
pub const MAX_HISTORY: usize = 10;
/// Failed services named in a run's final message; the rest are counted, which keeps the
/// message (and the condition that carries it) small for large fleets.
const MAX_LISTED_FAILURES: usize = 10;

impl Pass<'_> {
    pub(super) fn end_run(&mut self, status: &mut ServiceRefreshStatus) {
        refresh_totals(status);
        let failures: Vec<String> = status
            .batches
            .iter()
            .flat_map(|batch| batch.services.iter())
            .filter(|service| service.result.is_some_and(ServiceResult::is_failure))
            .map(|service| {
                let key = plan::service_key(service, self.own_namespace);
                let result = service.result.map(|result| format!("{result:?}")).unwrap_or_default();
                format!("{key}: {result}: {}", service.message.as_deref().unwrap_or_default())
            })
            .collect();
        let totals = status.totals.clone();
        let batches = status.batches.len();
        let now = self.now_time();
        let selection = self.describe_selection();
        let Some(run) = status.run.as_mut() else {
            return;
        };
        let cancelled = run.cancel_request.is_some();
        let phase = if cancelled {
            Phase::Cancelled
        } else if failures.is_empty() && totals.services > 0 {
            Phase::Succeeded
        } else {
            Phase::Failed
        };
        let outcome = if totals.services == 0 {
            format!("nothing selected: no Deployment matched the {selection}")
        } else if run.dry_run {
            format!(
                "dry run planned {} Deployments in {batches} batches; nothing was restarted",
                totals.services
            )
        } else if cancelled {
            format!(
                "cancelled: {} of {} Deployments ready, {} failed, {} skipped",
                totals.ready, totals.services, totals.failed, totals.skipped
            )
        } else if failures.is_empty() {
            format!(
                "{} of {} Deployments ready, {} skipped",
                totals.ready, totals.services, totals.skipped
            )
        } else {
            let mut listed =
                failures.iter().take(MAX_LISTED_FAILURES).cloned().collect::<Vec<_>>().join("; ");
            if failures.len() > MAX_LISTED_FAILURES {
                listed.push_str(&format!("; and {} more", failures.len() - MAX_LISTED_FAILURES));
            }
            format!("{} of {} Deployments failed: {listed}", failures.len(), totals.services)
        };
        // A note made at the start (excluded names that match nothing) stays on record.
        let start_note = run
            .message
            .as_deref()
            .and_then(|message| message.split_once(super::triggers::EXCLUDE_NOTE))
            .map(|(_, names)| format!("; {}{names}", super::triggers::EXCLUDE_NOTE))
            .unwrap_or_default();
        let verb = match phase {
            Phase::Succeeded => "succeeded",
            Phase::Cancelled => "was cancelled",
            _ => "failed",
        };
        let message = format!("Run {} {verb}: {outcome}{start_note}", run.number);
        let seconds = run
            .start_time
            .as_ref()
            .map_or(0.0, |start| now.0.duration_since(start.0).as_secs_f64());
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
        self.transitions.push(Transition::RunFinished {
            run,
            number,
            reason,
            phase,
            totals,
            message,
            seconds,
        });
    }

    /// The selection of the current spec in words, or why there is none.
    fn describe_selection(&self) -> String {
        let refresh = self.observation.refresh;
        // The run is being driven, so the spec validated in this pass.
        let scope: &OperatorScope = self.observation.scope;
        spec::validate(&refresh.spec, self.own_namespace, scope)
            .map(|valid| valid.describe_selection())
            .unwrap_or_else(|error| error.to_string())
    }
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
        Phase::Failed if status.totals.services == 0 => Situation::NothingSelected { message },
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
        let failed = status
            .batches
            .iter()
            .flat_map(|batch| batch.services.iter())
            .any(|service| service.result.is_some_and(ServiceResult::is_failure));
        if failed || status.totals.services == 0 { Phase::Failed } else { Phase::Succeeded }
    })
}

/// 1-based number of the first batch not completed, or the number of batches when all are.
pub(super) fn current_batch_number(status: &ServiceRefreshStatus) -> usize {
    status
        .batches
        .iter()
        .position(|batch| batch.phase != BatchPhase::Completed)
        .map_or(status.batches.len(), |position| position + 1)
}

/// Recomputes the counts and the printer-column strings from the plan. A service counts as
/// restarted once its restart generation is known (kept on failures for that reason) or it
/// became Ready, which only follows a restart.
pub fn refresh_totals(status: &mut ServiceRefreshStatus) {
    if status.run.is_none() {
        return;
    }
    let mut totals = Totals::default();
    let folded: usize = status.batches.iter().map(|batch| batch.ready.len()).sum();
    // A plan holds at most a few hundred thousand services, far below u32::MAX.
    let folded = u32::try_from(folded).unwrap_or(u32::MAX);
    totals.services = folded;
    totals.restarted = folded;
    totals.ready = folded;
    for service in status.batches.iter().flat_map(|batch| batch.services.iter()) {
        totals.services += 1;
        if service.generation.is_some() || service.result == Some(ServiceResult::Ready) {
            totals.restarted += 1;
        }
        // Exhaustive, so a new result must be placed in the totals before it compiles.
        match service.result {
            Some(ServiceResult::Ready) => totals.ready += 1,
            Some(ServiceResult::Skipped) => totals.skipped += 1,
            Some(ServiceResult::Failed | ServiceResult::TimedOut | ServiceResult::Gone) => {
                totals.failed += 1
            }
            None => {}
        }
    }
    let progress = format!("{}/{}", totals.ready, totals.services);
    let batch = format!("{}/{}", current_batch_number(status), status.batches.len());
    status.totals = totals;
    status.progress = Some(progress);
    status.batch = Some(batch);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(results: &[ServiceResult]) -> ServiceRefreshStatus {
        let services: Vec<serde_json::Value> = results
            .iter()
            .enumerate()
            .map(|(index, result)| serde_json::json!({"name": format!("svc-{index}"), "result": result}))
            .collect();
        let mut status: ServiceRefreshStatus = serde_json::from_value(serde_json::json!({
            "run": {"id": "arcgis/refresh/1-0123", "number": 1, "reason": "Created", "dryRun": false},
            "batches": [{"index": 1, "phase": "Completed", "services": services}]
        }))
        .expect("a status");
        refresh_totals(&mut status);
        status
    }

    #[test]
    fn a_run_without_a_recorded_phase_is_judged_by_its_results() {
        // Statuses written before the history held phases.
        assert_eq!(last_run_phase(&ended(&[ServiceResult::Ready])), Phase::Succeeded);
        assert_eq!(
            last_run_phase(&ended(&[ServiceResult::Ready, ServiceResult::Skipped])),
            Phase::Succeeded
        );
        assert_eq!(
            last_run_phase(&ended(&[ServiceResult::Ready, ServiceResult::Gone])),
            Phase::Failed
        );
        assert_eq!(last_run_phase(&ended(&[])), Phase::Failed, "nothing selected");
    }
}
