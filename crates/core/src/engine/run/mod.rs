//! The run state machine: from one observation to the next status and the actions to take.
//! Everything it knows between passes lives in the status it returns and in the run's plan
//! objects, so the operator can crash at any point and the next pass, working from the
//! persisted state alone, neither loses a run nor restarts a Deployment twice. This module
//! drives one pass; its children own when runs start ([`triggers`]), how batches advance
//! ([`batches`]), how a run is counted and closed ([`summary`]), and how a status written by
//! an earlier operator version moves its plan out ([`legacy`]).

mod batches;
mod legacy;
mod outputs;
mod pacing;
mod summary;
mod triggers;

pub use batches::{MESSAGE_REFRESH, UNCONFIRMED_RESTART_GRACE};
pub use summary::{MAX_HISTORY, refresh_totals};
pub use triggers::{
    REASON_CONFIG_MAP_CHANGED, REASON_CREATED, REASON_RUN_REQUESTED, REASON_SECRET_CHANGED,
    REASON_TRIGGER_CHANGED,
};

use std::borrow::Cow;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};

use super::conditions::{self, STALLED, Situation};
use super::plan::{self, Plan};
use super::results::{self, Outcome, reason};
use super::spec::{self, SpecError, TriggerSource, ValidSpec};
use super::transitions::{EventReason, EventSeverity, Transition};
use super::waits::{Wait, WaitReason, Waiting};
use super::{Decision, ObjectKey, Observation, RestartOutcome, RunSlot};
use crate::crd::{BatchPhase, Phase, ServiceRefreshStatus, ServiceResult};
use outputs::Outputs;

pub const MESSAGE_GONE: &str = "Deployment was deleted during the run";
pub const MESSAGE_REPLACED: &str =
    "Deployment was deleted and created again during the run; the new one starts with fresh pods";
pub const MESSAGE_PAUSED: &str = "Deployment is paused; a restart would not roll out";
pub const MESSAGE_DRY_RUN: &str = "dry run: not restarted";
pub const MESSAGE_EXCLUDED: &str = "excluded by spec.exclude after planning";
pub const MESSAGE_DESELECTED: &str = "no longer selected: spec.selector, spec.namePatterns or spec.namespaces changed after planning";
pub const MESSAGE_CANCELLED: &str = "run cancelled";
/// How a run's message names `spec.exclude` entries that match no Deployment; the closing
/// message keeps that note.
const EXCLUDE_NOTE: &str = "spec.exclude names no existing Deployment: ";
/// What `kubectl rollout status` says right after a restart, before the controller acts.
pub const MESSAGE_RESTARTED: &str = "Waiting for deployment spec update to be observed...";

/// Decides one reconcile pass: the complete new status, the plan objects and restarts to
/// send, what changed, and when to look again. The status equals the observed one exactly
/// when nothing happened, so the controller can skip the write.
pub fn decide(observation: &Observation) -> Decision {
    let refresh = observation.refresh;
    let generation = refresh.metadata.generation.unwrap_or(0);
    let mut status = refresh.status.clone().unwrap_or_default();
    let mut pass = Pass::new(observation, status.waiting.take());
    let stalled_before = conditions::find(&status.conditions, STALLED).cloned();
    let first_sight = status.observed_generation.is_none() && status.run.is_none();
    status.observed_generation = Some(generation);

    legacy::move_plan_out(&mut pass, &mut status);
    triggers::take_cancel_request(&mut pass.out, refresh, &mut status);
    let situation = match spec::validate(&refresh.spec, pass.own_namespace, observation.scope) {
        Err(error) => hold_for_unusable_spec(&mut pass, &mut status, &error),
        Ok(valid) => advance(&mut pass, &mut status, &valid, first_sight),
    };
    status.waiting = std::mem::take(&mut pass.waiting).into_status();
    conditions::apply(&mut status.conditions, &situation, generation, pass.now_seconds());
    warn_of_short_timeout(&pass, &mut status, generation);
    announce_new_stall(&mut pass.out, stalled_before.as_ref(), &status);
    refresh_totals(&mut status);
    batches::defer_results(&mut pass, &mut status);
    pass.out.into_decision(status)
}

/// Folds the outcomes of the restart patches the controller sent into the status, as far as
/// they must be written at once: NotFound and Rejected are final results (a rejected patch
/// sent again would only be rejected again). Patched is not recorded: the status written
/// before the patches already names the restart (its row keeps the Deployment's uid), and
/// the next pass adopts its generation from the run mark the patch left on the Deployment,
/// so the outcome rides along with the next status write instead of costing one of its
/// own. Transient and Forbidden leave the service untouched so a later pass sends the same
/// restart again. Returns the services that got their result here.
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
        let (result, reason, message) = match outcome {
            RestartOutcome::Patched { .. }
            | RestartOutcome::Transient(_)
            | RestartOutcome::Forbidden(_) => continue,
            RestartOutcome::NotFound => {
                (ServiceResult::Gone, reason::DELETED, MESSAGE_GONE.to_owned())
            }
            RestartOutcome::Rejected(why) => (
                ServiceResult::Failed,
                reason::RESTART_REJECTED,
                results::shorten(&format!("restart rejected: {why}")),
            ),
        };
        service.result = Some(result);
        service.reason = Some(reason.to_owned());
        service.message = Some(message.clone());
        service.uid = None;
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

/// What one pass reads (the observation and the times it works with) and what it produces
/// besides the status ([`Outputs`]).
pub(super) struct Pass<'a> {
    observation: &'a Observation<'a>,
    own_namespace: &'a str,
    /// The observation's time to the microsecond, the precision batch times are stored with,
    /// so the status held in memory equals what a read returns.
    now: Timestamp,
    /// The active run's plan: the one observed, or the one this pass made.
    plan: Option<Cow<'a, Plan>>,
    /// What holds the resource back in this pass, beside its rollouts.
    waiting: Waiting,
    /// Restarts this pass may still send while the API server forbids them: one probe once
    /// the back-off ran out, none before; unlimited when nothing is forbidden.
    restart_probes: Option<usize>,
    out: Outputs,
}

impl<'a> Pass<'a> {
    fn new(
        observation: &'a Observation<'a>,
        waiting_before: Option<crate::crd::WaitingStatus>,
    ) -> Self {
        let micros = observation.now.as_microsecond();
        Self {
            observation,
            own_namespace: plan::own_namespace(observation.refresh),
            now: Timestamp::from_microsecond(micros).unwrap_or(observation.now),
            plan: observation.plan.map(Cow::Borrowed),
            waiting: Waiting::new(waiting_before),
            restart_probes: observation
                .forbidden
                .map(|forbidden| usize::from(forbidden.retry_due(observation.now))),
            out: Outputs::default(),
        }
    }

    /// Why a restart decided in this pass must not be sent: the API server forbids restarts
    /// and this pass's probe, if any, is taken. Takes the probe otherwise.
    fn forbidden_hold(&mut self) -> Option<String> {
        let forbidden = self.observation.forbidden?;
        match self.restart_probes.as_mut() {
            Some(probes) if *probes > 0 => {
                *probes -= 1;
                None
            }
            _ => Some(forbidden.hold_message()),
        }
    }

    /// The stall of a run whose writes the API server forbids; it looks again when the
    /// shell retries.
    fn forbidden_stall(&mut self) -> Option<Situation> {
        let forbidden = self.observation.forbidden?;
        self.out.wake_no_later_than(forbidden.retry_at.max(self.now));
        Some(Situation::Forbidden { message: forbidden.stall_message() })
    }

    /// Whether restarts may be sent again after the last status said why they could not: a
    /// write the API server forbade (the refusal has ended) or closed maintenance windows
    /// (`window_closed`: whether they still are). The running batch's clock then starts over,
    /// as its held restarts could not be sent until now.
    fn resumes_sending(&self, window_closed: bool) -> bool {
        let Some(status) = self.observation.refresh.status.as_ref() else {
            return false;
        };
        let was_forbidden = conditions::find(&status.conditions, STALLED).is_some_and(|stalled| {
            stalled.status == "True" && stalled.reason == super::forbidden::FORBIDDEN
        });
        let was_outside_window = status
            .waiting
            .as_ref()
            .is_some_and(|waiting| waiting.reason == WaitReason::OutsideWindow.as_str());
        (was_forbidden && self.observation.forbidden.is_none())
            || (was_outside_window && !window_closed)
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

    /// The active run's plan, when the one in hand is the one `status` refers to.
    fn plan_of(&self, status: &ServiceRefreshStatus) -> Option<&Plan> {
        let reference = status.run.as_ref()?.plan.as_ref()?;
        self.plan.as_deref().filter(|plan| plan.digest() == reference.digest)
    }

    /// The wait the status held when the pass began, if it was for `reason`.
    fn waiting_before(&self, reason: crate::engine::WaitReason) -> Option<Wait> {
        let before = self.observation.refresh.status.as_ref()?.waiting.as_ref()?;
        (before.reason == reason.as_str()).then(|| Wait {
            reason,
            message: before.message.clone(),
            until: before.until.as_ref().map(|until| until.0),
        })
    }

    /// States that the resource waits for `wait` in this pass. A wait that begins here is
    /// announced once (an Event, a log line, a metric); the pass wakes when it ends by itself.
    fn wait(&mut self, status: &ServiceRefreshStatus, wait: Wait) {
        if let Some(until) = wait.until {
            self.out.wake_no_later_than(until);
        }
        if self.waiting.hold(wait.clone(), self.now_seconds()) {
            let run = status.run.as_ref().map(|run| run.id.clone()).unwrap_or_default();
            self.out.transitions.push(Transition::Waiting {
                run,
                reason: wait.reason,
                message: wait.message,
            });
        }
    }

    /// Records a non-Ready result of a service that never got a row in a batch.
    fn record_unbatched(
        &mut self,
        status: &mut ServiceRefreshStatus,
        position: u32,
        key: &ObjectKey,
        (result, reason, message): (ServiceResult, &str, &str),
    ) {
        let run = status.run.as_ref().map(|run| run.id.clone()).unwrap_or_default();
        let outcome = Outcome { position, key, result, reason, message };
        results::record(&mut status.results, self.own_namespace, &outcome);
        self.out.transitions.push(Transition::ServiceFinished {
            run,
            batch: 0,
            deployment: key.clone(),
            result,
            message: Some(message.to_owned()),
        });
    }
}

fn advance(
    pass: &mut Pass,
    status: &mut ServiceRefreshStatus,
    spec: &ValidSpec,
    first_sight: bool,
) -> Situation {
    let refresh = pass.observation.refresh;
    triggers::record_config_map_baselines(pass, status, spec);
    triggers::track_missing_keys(pass, status, spec);
    let changed = triggers::config_map_change(pass, status, spec);
    pacing::settle_config_maps(pass, status, spec, changed);

    if run_active(status) {
        batches::drive_run(pass, status, spec);
        if run_active(status) {
            return active_situation(pass, status, spec);
        }
    }

    if let Some(missing) = triggers::missing_trigger_object(pass, spec) {
        // The phase keeps telling how the last run went; the condition tells what blocks.
        if status.run.is_none() && spec.run_on_create {
            status.phase = Some(Phase::Pending);
        }
        let key = missing.key.clone();
        return match missing.source {
            TriggerSource::ConfigMap => Situation::ConfigMapNotFound { config_map: key },
            TriggerSource::Secret => Situation::SecretNotFound { secret: key },
        };
    }

    if first_sight && !spec.run_on_create {
        status.triggers = triggers::current_triggers(pass, status, spec);
        return Situation::AwaitingTrigger;
    }

    let trigger = triggers::pending_trigger(pass, status, spec);
    let due = trigger.as_ref().map(|trigger| (trigger.message.as_str(), trigger.by_person));
    if let Some(stall) = pacing::storm_stall(pass, status, spec, due) {
        return stall;
    }
    let Some(trigger) = trigger else {
        return summary::ended_situation(status);
    };
    if let Some(held) = pacing::hold_run_start(pass, status, spec, trigger.reason) {
        return held;
    }
    match &pass.observation.run_slot {
        RunSlot::Busy { holders } => {
            pass.out.wants_run_slot = true;
            status.phase = Some(Phase::Pending);
            pass.out.wake_no_later_than(pass.now + super::QUEUED_RECHECK);
            Situation::Queued { trigger: trigger.reason.to_owned(), holders: holders.clone() }
        }
        RunSlot::Granted => {
            // A run's first write is its plan: while a refused write waits for its retry,
            // starting would only be refused again.
            if let Some(forbidden) =
                pass.observation.forbidden.filter(|forbidden| !forbidden.retry_due(pass.now))
            {
                pass.out.wake_no_later_than(forbidden.retry_at);
                return Situation::Forbidden { message: forbidden.stall_message() };
            }
            triggers::start_run(pass, status, spec, refresh, trigger);
            if run_active(status) {
                active_situation(pass, status, spec)
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
    pass: &mut Pass,
    status: &mut ServiceRefreshStatus,
    error: &SpecError,
) -> Situation {
    if run_active(status) && status.run.as_ref().is_some_and(|run| run.cancel_request.is_some()) {
        batches::skip_the_rest(pass, status, (reason::CANCELLED, MESSAGE_CANCELLED));
        summary::end_run(pass, status);
    }
    if !run_active(status) {
        status.phase = Some(Phase::Failed);
    }
    Situation::UnusableSpec { reason: error.reason(), message: error.to_string() }
}

fn active_situation(pass: &mut Pass, status: &ServiceRefreshStatus, spec: &ValidSpec) -> Situation {
    if let Some(stall) = pass.forbidden_stall() {
        return stall;
    }
    let (batch, batches) = summary::batch_numbers(status, spec);
    let cancelling = status.run.as_ref().is_some_and(|run| run.cancel_request.is_some());
    if status.phase == Some(Phase::Suspended) {
        Situation::Suspended { batch, batches }
    } else if let Some(waiting) = pass.waiting.current().filter(|_| !cancelling) {
        Situation::Waiting { reason: waiting.reason.clone(), message: waiting.message.clone() }
    } else {
        let follow_up =
            triggers::pending_trigger(pass, status, spec).map(|trigger| trigger.reason.to_owned());
        Situation::Running { batch, batches, follow_up, cancelling }
    }
}

/// Keeps the `BatchTimeoutShort` warning current: rollouts of the run that were still
/// progressing when their batch timed out (announced once, when it appears).
fn warn_of_short_timeout(pass: &Pass, status: &mut ServiceRefreshStatus, generation: i64) {
    let cut_short: u32 = status
        .results
        .iter()
        .filter(|group| group.reason == reason::ROLLOUT_TIMED_OUT)
        .map(|group| group.count)
        .sum::<u32>()
        + status
            .batches
            .iter()
            .filter(|batch| batch.counts.is_none())
            .flat_map(|batch| &batch.services)
            .filter(|row| row.reason.as_deref() == Some(reason::ROLLOUT_TIMED_OUT))
            .count() as u32;
    let timeout = pass.observation.refresh.spec.batch_timeout.clone();
    conditions::apply_batch_timeout_warning(
        &mut status.conditions,
        cut_short,
        &timeout,
        generation,
        pass.now_seconds(),
    );
}

/// Records a Warning event when the resource newly stalls or stalls for a new reason;
/// repeating it every pass would flood the event stream.
fn announce_new_stall(
    out: &mut Outputs,
    before: Option<&Condition>,
    status: &ServiceRefreshStatus,
) {
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
        out.notice(EventSeverity::Warning, reason, after.message.clone());
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
