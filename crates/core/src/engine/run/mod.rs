//! The run state machine: from one observation to the next status and the actions to take.
//! Everything it knows between passes lives in the status it returns, so the operator can
//! crash at any point and the next pass, working from the persisted status alone, neither
//! loses a run nor restarts a Deployment twice. This module drives one pass; its children
//! own when runs start ([`triggers`]), how batches advance ([`batches`]), and how a run is
//! counted and closed ([`summary`]).

mod batches;
mod summary;
mod triggers;

pub use batches::UNCONFIRMED_RESTART_GRACE;

use std::collections::BTreeSet;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};

use super::conditions::{self, STALLED, Situation};
use super::plan;
use super::spec::{self, SpecError, ValidSpec};
use super::transitions::{EventReason, EventSeverity, Transition};
use super::{Decision, ObjectKey, Observation, Restart, RestartOutcome, RunSlot};
use crate::crd::{BatchPhase, Phase, ServiceRefreshStatus, ServiceResult};

pub use summary::{MAX_HISTORY, refresh_totals};
pub use triggers::{
    REASON_CONFIG_MAP_CHANGED, REASON_CREATED, REASON_RUN_REQUESTED, REASON_TRIGGER_CHANGED,
};

pub const MESSAGE_GONE: &str = "Deployment was deleted during the run";
pub const MESSAGE_REPLACED: &str =
    "Deployment was deleted and created again during the run; the new one starts with fresh pods";
pub const MESSAGE_PAUSED: &str = "Deployment is paused; a restart would not roll out";
pub const MESSAGE_DRY_RUN: &str = "dry run: not restarted";
pub const MESSAGE_EXCLUDED: &str = "excluded by spec.exclude after planning";
pub const MESSAGE_CANCELLED: &str = "run cancelled";
/// What `kubectl rollout status` says right after a restart, before the controller acts.
pub const MESSAGE_RESTARTED: &str = "Waiting for deployment spec update to be observed...";

/// Decides one reconcile pass: the complete new status, the restarts to send, what changed,
/// and when to look again. The status equals the observed one exactly when nothing
/// happened, so the controller can skip the write.
pub fn decide(observation: &Observation) -> Decision {
    let refresh = observation.refresh;
    let generation = refresh.metadata.generation.unwrap_or(0);
    let mut pass = Pass::new(observation);
    let mut status = refresh.status.clone().unwrap_or_default();
    let stalled_before = conditions::find(&status.conditions, STALLED).cloned();
    let first_sight = status.observed_generation.is_none() && status.run.is_none();
    status.observed_generation = Some(generation);

    pass.take_cancel_request(&mut status);
    let situation = match spec::validate(&refresh.spec, pass.own_namespace, observation.scope) {
        Err(error) => pass.hold_for_unusable_spec(&mut status, &error),
        Ok(valid) => pass.advance(&mut status, &valid, first_sight),
    };
    conditions::apply(&mut status.conditions, &situation, generation, pass.now_seconds());
    pass.announce_new_stall(stalled_before.as_ref(), &status);
    refresh_totals(&mut status);
    pass.defer_results(&mut status);

    Decision {
        status,
        restarts: pass.restarts,
        transitions: pass.transitions,
        wake_at: pass.wake_at,
        wants_run_slot: pass.wants_run_slot,
        awaiting: pass.awaiting,
    }
}

/// Folds the outcomes of the restart patches the controller sent into the status. Patched
/// records the generation to wait for; NotFound and Rejected are final results; Transient
/// leaves the service untouched so the next pass sends the same restart again. Returns the
/// services that got their result here.
pub fn record_restart_outcomes(
    status: &mut ServiceRefreshStatus,
    outcomes: &[(ObjectKey, RestartOutcome)],
    own_namespace: &str,
) -> Vec<Transition> {
    let run = status.run.as_ref().map(|run| run.id.clone()).unwrap_or_default();
    let mut finished = Vec::new();
    for (key, outcome) in outcomes {
        let Some((batch, service)) = status
            .batches
            .iter_mut()
            .filter(|batch| batch.phase == BatchPhase::Running)
            .flat_map(|batch| {
                let index = batch.index;
                batch.services.iter_mut().map(move |service| (index, service))
            })
            .find(|(_, service)| {
                service.result.is_none() && plan::service_key(service, own_namespace) == *key
            })
        else {
            continue;
        };
        let (result, message) = match outcome {
            RestartOutcome::Patched { generation } => {
                // An adopted generation may already be newer than what this patch reported.
                service.generation =
                    Some(service.generation.map_or(*generation, |known| known.max(*generation)));
                service.message = Some(MESSAGE_RESTARTED.to_owned());
                continue;
            }
            RestartOutcome::NotFound => (ServiceResult::Gone, MESSAGE_GONE.to_owned()),
            RestartOutcome::Rejected(reason) => {
                (ServiceResult::Failed, format!("restart rejected: {reason}"))
            }
            RestartOutcome::Transient(_) => continue,
        };
        service.result = Some(result);
        service.message = Some(message.clone());
        finished.push(Transition::ServiceFinished {
            run: run.clone(),
            batch,
            deployment: key.clone(),
            result,
            message: Some(message),
        });
    }
    refresh_totals(status);
    finished
}

/// Whether a run has started and not ended.
pub fn run_active(status: &ServiceRefreshStatus) -> bool {
    status.run.as_ref().is_some_and(|run| run.end_time.is_none())
}

/// What one pass accumulates besides the status.
struct Pass<'a> {
    observation: &'a Observation<'a>,
    own_namespace: &'a str,
    /// The observation's time to the microsecond, the precision batch times are stored with,
    /// so the status held in memory equals what a read returns.
    now: Timestamp,
    restarts: Vec<Restart>,
    transitions: Vec<Transition>,
    wake_at: Option<Timestamp>,
    wants_run_slot: bool,
    awaiting: BTreeSet<ObjectKey>,
    deferred: Option<batches::DeferredResults>,
}

impl<'a> Pass<'a> {
    fn new(observation: &'a Observation<'a>) -> Self {
        let micros = observation.now.as_microsecond();
        Self {
            observation,
            own_namespace: plan::own_namespace(observation.refresh),
            now: Timestamp::from_microsecond(micros).unwrap_or(observation.now),
            restarts: Vec::new(),
            transitions: Vec::new(),
            wake_at: None,
            wants_run_slot: false,
            awaiting: BTreeSet::new(),
            deferred: None,
        }
    }

    /// Whole seconds: how `metav1.Time` fields (run times, conditions) are stored.
    fn now_seconds(&self) -> Timestamp {
        Timestamp::from_second(self.now.as_second()).unwrap_or(self.now)
    }

    fn now_time(&self) -> Time {
        Time(self.now_seconds())
    }

    fn now_micro(&self) -> MicroTime {
        MicroTime(self.now)
    }

    fn notice(&mut self, severity: EventSeverity, reason: EventReason, message: String) {
        self.transitions.push(Transition::notice(severity, reason, message));
    }

    /// Asks for another pass no later than `at`.
    fn wake_no_later_than(&mut self, at: Timestamp) {
        self.wake_at = Some(self.wake_at.map_or(at, |known| known.min(at)));
    }

    fn advance(
        &mut self,
        status: &mut ServiceRefreshStatus,
        spec: &ValidSpec,
        first_sight: bool,
    ) -> Situation {
        self.record_config_map_baselines(status, spec);
        self.track_missing_keys(status, spec);

        if run_active(status) {
            self.drive_run(status, spec);
            if run_active(status) {
                return self.active_situation(status, spec);
            }
        }

        if let Some(missing) = self.missing_config_map(spec) {
            // The phase keeps telling how the last run went; the condition tells what blocks.
            if status.run.is_none() && self.observation.refresh.spec.run_on_create {
                status.phase = Some(Phase::Pending);
            }
            return Situation::ConfigMapNotFound { config_map: missing };
        }

        if first_sight && !self.observation.refresh.spec.run_on_create {
            status.triggers = self.current_triggers(status, spec);
            return Situation::AwaitingTrigger;
        }

        let Some(trigger) = self.pending_trigger(status, spec) else {
            return summary::ended_situation(status);
        };
        match &self.observation.run_slot {
            RunSlot::Busy { holders } => {
                self.wants_run_slot = true;
                status.phase = Some(Phase::Pending);
                self.wake_no_later_than(self.now + super::QUEUED_RECHECK);
                Situation::Queued { trigger: trigger.reason.to_owned(), holders: holders.clone() }
            }
            RunSlot::Granted => {
                self.start_run(status, spec, trigger);
                if run_active(status) {
                    self.active_situation(status, spec)
                } else {
                    summary::ended_situation(status)
                }
            }
        }
    }

    /// An unusable spec stalls the resource. An active run holds where it is and resumes once
    /// the spec is fixed, unless it was cancelled: then it ends now, because nothing it could
    /// still do is wanted.
    fn hold_for_unusable_spec(
        &mut self,
        status: &mut ServiceRefreshStatus,
        error: &SpecError,
    ) -> Situation {
        if run_active(status) && status.run.as_ref().is_some_and(|run| run.cancel_request.is_some())
        {
            self.skip_unfinished(status, 0, MESSAGE_CANCELLED);
            self.end_run(status);
        }
        if !run_active(status) {
            status.phase = Some(Phase::Failed);
        }
        Situation::UnusableSpec { reason: error.reason(), message: error.to_string() }
    }

    fn active_situation(&self, status: &ServiceRefreshStatus, spec: &ValidSpec) -> Situation {
        let batches = status.batches.len();
        let batch = summary::current_batch_number(status);
        if status.phase == Some(Phase::Suspended) {
            Situation::Suspended { batch, batches }
        } else {
            let follow_up =
                self.pending_trigger(status, spec).map(|trigger| trigger.reason.to_owned());
            let cancelling = status.run.as_ref().is_some_and(|run| run.cancel_request.is_some());
            Situation::Running { batch, batches, follow_up, cancelling }
        }
    }

    /// Records a Warning event when the resource newly stalls or stalls for a new reason;
    /// repeating it every pass would flood the event stream.
    fn announce_new_stall(&mut self, before: Option<&Condition>, status: &ServiceRefreshStatus) {
        let Some(after) = conditions::find(&status.conditions, STALLED) else {
            return;
        };
        let unchanged = before.is_some_and(|before| {
            before.status == after.status
                && before.reason == after.reason
                && before.message == after.message
        });
        // Runs that end (failed, cancelled, nothing selected) have their own run event.
        if after.status == "True"
            && !unchanged
            && let Some(reason) = EventReason::for_stall(&after.reason)
        {
            self.notice(EventSeverity::Warning, reason, after.message.clone());
        }
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
