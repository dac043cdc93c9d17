//! How batches advance: a batch starts (and its restarts go out in the same pass), each of
//! its services gets exactly one result, and the next batch starts when every service has
//! one. Never more than `batchSize` of a run's rollouts are in flight: a timed-out rollout
//! that is still rolling keeps its place until it completes or exceeds its progress deadline,
//! and a Deployment another run is rolling out is held, uncounted, until that rollout ends.

mod budget;
mod edits;

pub use budget::UNCONFIRMED_RESTART_GRACE;
use budget::{marked_by, rolled_out_by_another_run};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

use super::{
    MESSAGE_CANCELLED, MESSAGE_GONE, MESSAGE_PAUSED, MESSAGE_REPLACED, MESSAGE_RESTARTED, Pass,
};
use crate::crd::{
    BatchPhase, FailurePolicy, Phase, ServiceRefreshStatus, ServiceResult, ServiceStatus,
};
use crate::engine::plan;
use crate::engine::readiness::{self, Verdict};
use crate::engine::spec::ValidSpec;
use crate::engine::transitions::{EventReason, EventSeverity, Transition};
use crate::engine::{ObjectKey, Restart, RunId};

/// How often the waiting message of a rolling service may change in the status: it follows
/// every rollout step, and writing each would multiply status writes.
pub const MESSAGE_REFRESH: SignedDuration = SignedDuration::from_secs(5);

/// The run being driven, as a batch needs it.
pub(super) struct RunContext {
    id: String,
    /// Where this resource records its runs on a Deployment.
    record_annotation: String,
    /// The run's persisted start: every restart of the run carries it as `restartedAt`.
    restarted_at: String,
    cancelling: bool,
}

/// Results a running batch reached in this pass, and what its services looked like before,
/// so the pass can leave them unwritten when nothing else changes.
pub(super) struct DeferredResults {
    position: usize,
    services: Vec<ServiceStatus>,
    message_time: Option<MicroTime>,
    finished: Vec<Transition>,
    due: Timestamp,
}

impl Pass<'_> {
    /// Leaves a running batch's new results unwritten when they are all this pass would
    /// write: the status stays as observed and the pass comes back when they are due.
    /// Otherwise (a write happens anyway) they ride along.
    pub(super) fn defer_results(&mut self, status: &mut ServiceRefreshStatus) {
        let Some(mut deferred) = self.deferred.take() else {
            return;
        };
        let observed = self.observation.refresh.status.as_ref();
        let batch = &mut status.batches[deferred.position];
        std::mem::swap(&mut batch.services, &mut deferred.services);
        std::mem::swap(&mut batch.message_time, &mut deferred.message_time);
        super::refresh_totals(status);
        if observed == Some(&*status) {
            self.wake_no_later_than(deferred.due);
            return;
        }
        let batch = &mut status.batches[deferred.position];
        std::mem::swap(&mut batch.services, &mut deferred.services);
        std::mem::swap(&mut batch.message_time, &mut deferred.message_time);
        super::refresh_totals(status);
        self.transitions.extend(deferred.finished);
    }
}

/// A result one service got in this pass.
struct Finished {
    batch: u32,
    key: ObjectKey,
    result: ServiceResult,
    message: Option<String>,
}

impl Finished {
    fn into_transition(self, run: &str) -> Transition {
        Transition::ServiceFinished {
            run: run.to_owned(),
            batch: self.batch,
            deployment: self.key,
            result: self.result,
            message: self.message,
        }
    }
}

fn finish(
    finished: &mut Vec<Finished>,
    batch: u32,
    key: ObjectKey,
    service: &mut ServiceStatus,
    result: ServiceResult,
    message: Option<String>,
) {
    service.result = Some(result);
    service.message = message.clone();
    service.uid = None;
    if result == ServiceResult::Ready {
        // The restart is done; only failures keep the generation, as evidence it happened.
        service.generation = None;
    }
    finished.push(Finished { batch, key, result, message });
}

impl Pass<'_> {
    /// Moves the active run forward as far as this observation allows.
    pub(super) fn drive_run(&mut self, status: &mut ServiceRefreshStatus, spec: &ValidSpec) {
        let Some(run) = status.run.as_ref() else {
            return;
        };
        let record_annotation =
            run.id.parse::<RunId>().map(|id| id.record_annotation()).unwrap_or_else(|_| {
                RunId::new(self.observation.refresh, run.number).record_annotation()
            });
        let run = RunContext {
            id: run.id.clone(),
            record_annotation,
            restarted_at: run
                .start_time
                .as_ref()
                .map(|time| time.0.to_string())
                .unwrap_or_default(),
            cancelling: run.cancel_request.is_some(),
        };
        self.apply_spec_edits(status, spec);
        loop {
            let Some(position) =
                status.batches.iter().position(|batch| batch.phase != BatchPhase::Completed)
            else {
                self.end_run(status);
                return;
            };
            if status.batches[position].phase == BatchPhase::Pending {
                if run.cancelling {
                    self.skip_unfinished(status, position, MESSAGE_CANCELLED);
                    self.end_run(status);
                    return;
                }
                if spec.failure_policy == FailurePolicy::Abort
                    && let Some(failed_batch) = last_batch_with_failure(status)
                {
                    let message =
                        format!("not started: run aborted after failures in batch {failed_batch}");
                    self.skip_unfinished(status, position, &message);
                    self.end_run(status);
                    return;
                }
                if !self.start_batch(status, position) {
                    return;
                }
                continue;
            }
            if !self.drive_batch(status, position, spec, &run) {
                return;
            }
            self.complete_batch(status, position, &run.id);
        }
    }

    /// Starts the batch at `position`, or completes it at once when every service in it
    /// already has a result. Returns whether the run may go on in this pass.
    fn start_batch(&mut self, status: &mut ServiceRefreshStatus, position: usize) -> bool {
        let total = status.batches.len();
        let now = self.now_micro();
        let batch = &mut status.batches[position];
        if batch.services.iter().all(|service| service.result.is_some()) {
            batch.phase = BatchPhase::Completed;
            batch.end_time = Some(now);
            return true;
        }
        if self.observation.refresh.spec.suspend {
            if status.phase != Some(Phase::Suspended) {
                status.phase = Some(Phase::Suspended);
                self.notice(
                    EventSeverity::Normal,
                    EventReason::Suspended,
                    format!(
                        "Run suspended by spec.suspend before batch {} of {total}",
                        position + 1
                    ),
                );
            }
            return false;
        }
        batch.phase = BatchPhase::Running;
        batch.start_time = Some(now);
        let services = batch.services.len();
        let index = batch.index;
        status.phase = Some(Phase::Running);
        let run = status.run.as_ref().map(|run| run.id.clone()).unwrap_or_default();
        self.transitions.push(Transition::BatchStarted {
            run,
            batch: index,
            batches: total,
            services,
        });
        true
    }

    /// Works through the unresolved services of the running batch: first those restarted
    /// (their rollouts may have freed places), then those not yet restarted, in plan order.
    /// Returns whether every service of the batch now has a result.
    fn drive_batch(
        &mut self,
        status: &mut ServiceRefreshStatus,
        position: usize,
        spec: &ValidSpec,
        run: &RunContext,
    ) -> bool {
        status.phase = Some(Phase::Running);
        let mut in_flight = self.rollouts_in_flight_elsewhere(status, position, run);
        let timeout_text = self.observation.refresh.spec.batch_timeout.clone();
        let own_namespace = self.own_namespace;
        let now = self.now;
        let cluster = self.observation.cluster;
        let batch = &mut status.batches[position];
        let start = match &batch.start_time {
            Some(time) => time.0,
            None => {
                // Only a hand-edited status gets here; starting the clock now is the fair reading.
                batch.start_time = Some(MicroTime(now));
                now
            }
        };
        let deadline = start.checked_add(spec.batch_timeout).unwrap_or(Timestamp::MAX);
        let timed_out = now >= deadline;
        // Messages were last written with the batch's start unless refreshed since.
        let messages_written = batch.message_time.as_ref().map_or(start, |time| time.0);
        let refresh_due = messages_written.checked_add(MESSAGE_REFRESH).unwrap_or(Timestamp::MAX);
        let may_refresh_messages = now >= refresh_due;
        let mut messages_refreshed = false;
        let mut messages_stale = false;
        let mut unresolved = false;
        let mut finished = Vec::new();
        let index = batch.index;
        let services_before = batch.services.clone();
        let message_time_before = batch.message_time.clone();
        let restarts_before = self.restarts.len();
        let mut adopted = false;

        // Restarted services: judge their rollouts.
        for service in batch.services.iter_mut().filter(|service| service.result.is_none()) {
            let key = plan::service_key(service, own_namespace);
            let Some(deployment) = cluster.deployment(&key) else {
                // Not restarted yet: the second loop gives the same result.
                if service.generation.is_some() {
                    finish(
                        &mut finished,
                        index,
                        key,
                        service,
                        ServiceResult::Gone,
                        Some(MESSAGE_GONE.to_owned()),
                    );
                }
                continue;
            };
            let generation = match service.generation {
                Some(generation) => generation,
                None if marked_by(&deployment, &run.id, &run.record_annotation) => {
                    // Our patch went through but its outcome was never recorded (a crash
                    // between patch and status write): adopt it instead of patching again.
                    // If another run restarted it since, its current rollout includes ours.
                    service.generation = Some(deployment.generation());
                    service.uid = deployment.metadata.uid.clone();
                    service.message = Some(MESSAGE_RESTARTED.to_owned());
                    adopted = true;
                    deployment.generation()
                }
                None => continue,
            };
            if service.uid.is_some() && deployment.metadata.uid != service.uid {
                // A new Deployment of the same name: its pods are fresh anyway, and waiting
                // for the old object's generation would only time out.
                finish(
                    &mut finished,
                    index,
                    key,
                    service,
                    ServiceResult::Gone,
                    Some(MESSAGE_REPLACED.to_owned()),
                );
                continue;
            }
            match readiness::verdict(&deployment, generation) {
                Verdict::Ready => {
                    finish(&mut finished, index, key, service, ServiceResult::Ready, None)
                }
                Verdict::Failed(message) => {
                    finish(
                        &mut finished,
                        index,
                        key,
                        service,
                        ServiceResult::Failed,
                        Some(message),
                    );
                }
                Verdict::Waiting(message) if timed_out => {
                    let message =
                        format!("not ready after spec.batchTimeout {timeout_text}: {message}");
                    finish(
                        &mut finished,
                        index,
                        key,
                        service,
                        ServiceResult::TimedOut,
                        Some(message),
                    );
                    // Still rolling: it keeps its place in the in-flight budget of the
                    // batches after this one (no restart follows in a timed-out batch).
                    self.awaiting.insert(plan::service_key(service, own_namespace));
                }
                Verdict::Waiting(message) => {
                    in_flight += 1;
                    unresolved = true;
                    self.awaiting.insert(key);
                    if service.message.as_deref() != Some(message.as_str()) {
                        if service.message.is_none() || may_refresh_messages {
                            service.message = Some(message);
                            messages_refreshed = true;
                        } else {
                            messages_stale = true;
                        }
                    }
                }
            }
        }

        // Services not restarted yet: restart them while the budget allows.
        for service in batch.services.iter_mut() {
            if service.result.is_some() || service.generation.is_some() {
                continue;
            }
            let key = plan::service_key(service, own_namespace);
            let Some(deployment) = cluster.deployment(&key) else {
                finish(
                    &mut finished,
                    index,
                    key,
                    service,
                    ServiceResult::Gone,
                    Some(MESSAGE_GONE.to_owned()),
                );
                continue;
            };
            if deployment.paused {
                finish(
                    &mut finished,
                    index,
                    key,
                    service,
                    ServiceResult::Skipped,
                    Some(MESSAGE_PAUSED.to_owned()),
                );
                continue;
            }
            if run.cancelling {
                let message = format!("{MESSAGE_CANCELLED} before this Deployment was restarted");
                finish(&mut finished, index, key, service, ServiceResult::Skipped, Some(message));
                continue;
            }
            let hold = rolled_out_by_another_run(&deployment, &run.id)
                .map(|other| format!("held: run {other} is rolling this Deployment out; it is restarted once that rollout ends"))
                .or_else(|| (in_flight >= spec.batch_size).then(|| format!(
                    "held: {in_flight} rollouts of this run are in flight, the most batchSize allows; timed-out rollouts keep their place until they end"
                )));
            if timed_out {
                let why = hold
                    .or_else(|| service.message.clone())
                    .unwrap_or_else(|| "the restart patch has not succeeded (see the operator's log for the API errors)".to_owned());
                let message =
                    format!("not restarted within spec.batchTimeout {timeout_text}: {why}");
                // A restart decided earlier whose patch was never confirmed keeps its uid: the
                // next batches hold its place until the cache can show whether it landed.
                let sent = service.uid.take();
                finish(&mut finished, index, key, service, ServiceResult::TimedOut, Some(message));
                service.uid = sent;
                continue;
            }
            unresolved = true;
            if let Some(hold) = hold {
                self.awaiting.insert(key);
                service.message = Some(hold);
                continue;
            }
            in_flight += 1;
            self.awaiting.insert(key.clone());
            // The resourceVersion precondition pins the patch to this very object.
            service.uid = deployment.metadata.uid.clone();
            self.restarts.push(Restart {
                deployment: key,
                restarted_at: run.restarted_at.clone(),
                restarted_by: run.id.clone(),
                record_annotation: run.record_annotation.clone(),
                resource_version: deployment.metadata.resource_version.clone(),
            });
        }

        if messages_refreshed {
            batch.message_time = Some(MicroTime(now));
        }
        if messages_stale {
            let next_refresh = if messages_refreshed { now + MESSAGE_REFRESH } else { refresh_due };
            self.wake_no_later_than(next_refresh);
        }
        if unresolved {
            self.wake_no_later_than(deadline);
        }
        let finished: Vec<Transition> =
            finished.into_iter().map(|finished| finished.into_transition(&run.id)).collect();
        let restarted_now = adopted || self.restarts.len() > restarts_before;
        if unresolved && !may_refresh_messages && !restarted_now {
            // Results within a batch may wait for the batch's end or the next refresh: the
            // next pass derives them again from the same Deployments, and each written alone
            // would cost a status write per service.
            self.deferred = Some(DeferredResults {
                position,
                services: services_before,
                message_time: message_time_before,
                finished,
                due: refresh_due,
            });
        } else {
            self.transitions.extend(finished);
        }
        !unresolved
    }

    fn complete_batch(&mut self, status: &mut ServiceRefreshStatus, position: usize, run: &str) {
        let total = status.batches.len();
        let now = self.now;
        let batch = &mut status.batches[position];
        batch.phase = BatchPhase::Completed;
        batch.end_time = Some(MicroTime(now));
        batch.fold_ready();
        let count = |wanted: fn(ServiceResult) -> bool| {
            batch.services.iter().filter(|service| service.result.is_some_and(wanted)).count()
        };
        let seconds = batch
            .start_time
            .as_ref()
            .map_or(0.0, |start| now.duration_since(start.0).as_secs_f64());
        self.transitions.push(Transition::BatchCompleted {
            run: run.to_owned(),
            batch: batch.index,
            batches: total,
            ready: batch.ready.len(),
            failed: count(ServiceResult::is_failure),
            skipped: count(|result| result == ServiceResult::Skipped),
            seconds,
        });
    }

    /// Gives every service without a result, from the batch at `position` on, a Skipped
    /// result, so each planned Deployment still ends with exactly one result.
    pub(super) fn skip_unfinished(
        &mut self,
        status: &mut ServiceRefreshStatus,
        position: usize,
        message: &str,
    ) {
        let run = status.run.as_ref().map(|run| run.id.clone()).unwrap_or_default();
        let now = self.now;
        let own_namespace = self.own_namespace;
        let mut finished = Vec::new();
        for batch in status.batches.iter_mut().skip(position) {
            let index = batch.index;
            for service in batch.services.iter_mut().filter(|service| service.result.is_none()) {
                let key = plan::service_key(service, own_namespace);
                finish(
                    &mut finished,
                    index,
                    key,
                    service,
                    ServiceResult::Skipped,
                    Some(message.to_owned()),
                );
            }
            if batch.phase != BatchPhase::Completed {
                batch.phase = BatchPhase::Completed;
                batch.end_time = Some(MicroTime(now));
                batch.fold_ready();
            }
        }
        self.transitions
            .extend(finished.into_iter().map(|finished| finished.into_transition(&run)));
    }
}

fn last_batch_with_failure(status: &ServiceRefreshStatus) -> Option<u32> {
    status
        .batches
        .iter()
        .rev()
        .find(|batch| {
            batch
                .services
                .iter()
                .any(|service| service.result.is_some_and(ServiceResult::is_failure))
        })
        .map(|batch| batch.index)
}
