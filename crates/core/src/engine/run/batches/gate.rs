//! The health gate in the run: before a batch after the first starts, the gate that began
//! when the previous batch completed must be open. A failing gate holds the run with its
//! detail as the wait's message; a gate failing past its timeout ends the run under
//! `failurePolicy: Abort` and is passed with a Warning under `Continue`.

use jiff::SignedDuration;

use crate::crd::{BatchPhase, FailurePolicy, ServiceRefreshStatus};
use crate::engine::health_gate::{self, GateStep};
use crate::engine::run::Pass;
use crate::engine::spec::ValidSpec;
use crate::engine::transitions::{EventReason, EventSeverity};
use crate::engine::waits::{Wait, WaitReason};

/// How soon a pass that asked for a check comes back if the shell did not decide again.
const EVALUATE_RETRY: SignedDuration = SignedDuration::from_secs(1);

/// What the gate lets the run do next.
pub(super) enum GateOutcome {
    Proceed,
    Hold,
    /// The gate timed out under `failurePolicy: Abort`: the run ends, saying why.
    EndRun(String),
}

pub(super) fn before_next_batch(
    pass: &mut Pass,
    status: &ServiceRefreshStatus,
    spec: &ValidSpec,
) -> GateOutcome {
    let Some(gate) = &spec.health_gate else {
        return GateOutcome::Proceed;
    };
    let Some((batch, began)) = status
        .batches
        .iter()
        .rev()
        .find(|batch| batch.phase == BatchPhase::Completed)
        .and_then(|batch| Some((batch.index, batch.end_time.as_ref()?.0)))
    else {
        return GateOutcome::Proceed;
    };
    let observed = pass.observation.health_gate;
    match health_gate::judge(gate.timeout, began, observed, pass.now) {
        GateStep::Open => GateOutcome::Proceed,
        GateStep::Evaluate => {
            pass.out.wants_health_check = true;
            pass.out.wake_no_later_than(pass.now + EVALUATE_RETRY);
            // The wait in the status stands until a fresh outcome says otherwise.
            if let Some(before) = pass.waiting_before(WaitReason::HealthGateFailing) {
                pass.wait(status, before);
            }
            GateOutcome::Hold
        }
        GateStep::Failing { failures, failing_for, recheck_at } => {
            let seconds = failing_for.as_secs();
            let message = crate::engine::results::shorten(&format!(
                "health gate after batch {batch} failing for {seconds}s (timeout {}): {failures}",
                gate.timeout_text
            ));
            pass.out.wake_no_later_than(recheck_at);
            pass.wait(status, Wait { reason: WaitReason::HealthGateFailing, message, until: None });
            GateOutcome::Hold
        }
        GateStep::TimedOut { failures } => {
            let message = crate::engine::results::shorten(&format!(
                "health gate after batch {batch} still failing after {}: {failures}",
                gate.timeout_text
            ));
            match spec.failure_policy {
                FailurePolicy::Abort => GateOutcome::EndRun(message),
                FailurePolicy::Continue => {
                    pass.out.notice(
                        EventSeverity::Warning,
                        EventReason::HealthGateTimedOut,
                        format!("{message}; failurePolicy Continue starts the next batch"),
                    );
                    GateOutcome::Proceed
                }
            }
        }
    }
}
