//! The canary in the run: the run's first batch is the canary batch; before any later batch
//! starts, a canary whose rollout failed ends the run, and otherwise the canaries soak for
//! `spec.pacing.canary.soak` after their batch completed, each judged ready on every pass,
//! as the `CanarySoak` wait. Everything it needs is in the status (the canary batch's
//! positions and end time) and the observation, so a restarted operator resumes the soak.

use crate::crd::{BatchPhase, ServiceRefreshStatus};
use crate::engine::ObjectKey;
use crate::engine::canary::{self, Soak};
use crate::engine::positions::PositionSet;
use crate::engine::run::Pass;
use crate::engine::spec::ValidSpec;
use crate::engine::waits::{Wait, WaitReason};

/// The batch number of the canary batch within its run.
const CANARY_BATCH: u32 = 1;

/// What the canary lets the run do next.
pub(super) enum CanaryOutcome {
    Proceed,
    Hold,
    /// A canary failed: the run ends, whatever `failurePolicy` says, saying why.
    EndRun(String),
}

/// How many services the batch cut next takes before capacity pacing has its say.
pub(super) fn next_batch_size(status: &ServiceRefreshStatus, spec: &ValidSpec) -> usize {
    let index = super::next_batch_index(status);
    let canary = spec.canary.as_ref().map(|canary| canary.size);
    canary::scheduled_size(index, spec.batch_size.get(), canary, spec.slow_start)
}

pub(super) fn before_next_batch(
    pass: &mut Pass,
    status: &ServiceRefreshStatus,
    spec: &ValidSpec,
) -> CanaryOutcome {
    let Some(soak) = spec.canary.as_ref().map(|canary| (canary.soak, &canary.soak_text)) else {
        return CanaryOutcome::Proceed;
    };
    // Only between the canary batch and the next: once a later batch started, the soak
    // was over.
    let Some(batch) = status.batches.last().filter(|batch| {
        batch.index == CANARY_BATCH
            && batch.phase == BatchPhase::Completed
            && status.earlier_batches.is_none()
    }) else {
        return CanaryOutcome::Proceed;
    };
    // With nothing left to restart there is nothing for the canary to protect.
    let Some(plan) =
        pass.plan_of(status).filter(|plan| super::cut::next_batch(plan, status, 1).is_some())
    else {
        return CanaryOutcome::Proceed;
    };
    let positions = batch
        .positions
        .as_deref()
        .and_then(|text| PositionSet::parse(text).ok())
        .unwrap_or_default();
    let name_of = |position: u32| plan.get(position).map(|entry| entry.key.clone());
    for group in status.results.iter().filter(|group| group.result.is_failure()) {
        let failed = PositionSet::parse(&group.positions).unwrap_or_default();
        if let Some(key) =
            positions.iter().find(|position| failed.contains(*position)).and_then(name_of)
        {
            return CanaryOutcome::EndRun(format!(
                "stopped by the canary: Deployment {key} ended {:?} ({}): {}",
                group.result, group.reason, group.message
            ));
        }
    }
    let resulted = crate::engine::results::resulted_positions(&status.results);
    let canaries: Vec<ObjectKey> = positions
        .iter()
        .filter(|position| !resulted.contains(*position))
        .filter_map(name_of)
        .collect();
    let completed = batch.end_time.as_ref().map_or(pass.now, |time| time.0);
    let until = completed.checked_add(soak.0).unwrap_or(jiff::Timestamp::MAX);
    let observed: Vec<_> = canaries
        .iter()
        .map(|key| (key.clone(), pass.observation.cluster.deployment(key)))
        .collect();
    match canary::judge_soak(&observed, until, pass.now) {
        Soak::Over => CanaryOutcome::Proceed,
        Soak::Failed { canary, why } => {
            CanaryOutcome::EndRun(format!("stopped by the canary: Deployment {canary} {why}"))
        }
        Soak::Soaking { until } => {
            // A canary turning unready must wake the resource at once.
            pass.out.awaiting.extend(canaries.iter().cloned());
            let names = canaries.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
            let message = crate::engine::results::shorten(&format!(
                "the canary batch is ready and soaks for {} (until {until}) before the next \
                 batch; each canary must stay ready: {names}",
                soak.1
            ));
            pass.wait(status, Wait { reason: WaitReason::CanarySoak, message, until: Some(until) });
            CanaryOutcome::Hold
        }
    }
}
