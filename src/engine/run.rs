//! The run state machine: from one observation to the next status and the actions to take.
//! It owns when a run starts (and which triggers it has handled), how batches advance, how
//! each planned Deployment gets exactly one result, and how a run ends. Everything it knows
//! between passes lives in the status it returns, so the operator can crash at any point and
//! the next pass, working from the persisted status alone, neither loses a run nor restarts
//! a Deployment twice.

use std::collections::{BTreeSet, HashMap};

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

use super::conditions::{self, STALLED, Situation};
use super::plan;
use super::readiness::{self, Verdict};
use super::spec::{self, ValidSpec};
use super::{Decision, EventNote, EventSeverity, ObjectKey, Observation, Restart, RestartOutcome};
use crate::crd::{
    BatchPhase, ConfigMapHash, FailurePolicy, Phase, RESTARTED_BY_ANNOTATION,
    RUN_REQUESTED_AT_ANNOTATION, RunStatus, RunSummary, ServiceRefresh, ServiceRefreshStatus,
    ServiceResult, ServiceStatus, Totals, TriggerRecord,
};

/// Run reasons, as written to `status.run.reason`.
pub const REASON_CREATED: &str = "Created";
pub const REASON_TRIGGER_CHANGED: &str = "TriggerChanged";
pub const REASON_RUN_REQUESTED: &str = "RunRequested";
pub const REASON_CONFIG_MAP_CHANGED: &str = "ConfigMapChanged";

/// Finished runs kept in `status.history`.
pub const MAX_HISTORY: usize = 10;
/// Failed services named in a run's final message; the rest are counted, which keeps the
/// message (and the condition that carries it) small for large fleets.
const MAX_LISTED_FAILURES: usize = 10;

pub const MESSAGE_GONE: &str = "Deployment was deleted during the run";
pub const MESSAGE_PAUSED: &str = "Deployment is paused; a restart would not roll out";
pub const MESSAGE_DRY_RUN: &str = "dry run: not restarted";
pub const MESSAGE_EXCLUDED: &str = "excluded by spec.exclude after planning";

/// Decides one reconcile pass: the complete new status, the restarts to send, the events to
/// record and when to look again. The status equals the observed one exactly when nothing
/// happened, so the controller can skip the write.
pub fn decide(observation: &Observation) -> Decision {
    let refresh = observation.refresh;
    let generation = refresh.metadata.generation.unwrap_or(0);
    let mut pass = Pass::new(observation);
    let mut status = refresh.status.clone().unwrap_or_default();
    let stalled_before = conditions::find(&status.conditions, STALLED).cloned();
    status.observed_generation = Some(generation);

    let situation = match spec::validate(&refresh.spec) {
        Err(error) => {
            // An active run holds where it is and resumes once the spec is fixed; only a
            // resource with nothing in flight shows the spec problem as its phase.
            if !run_active(&status) {
                status.phase = Some(Phase::Failed);
            }
            Situation::InvalidSpec { message: error.to_string() }
        }
        Ok(valid) => pass.advance(&mut status, &valid),
    };
    conditions::apply(&mut status.conditions, &situation, generation, pass.now);
    pass.announce_new_stall(stalled_before.as_ref(), &status);
    refresh_totals(&mut status);

    Decision { status, restarts: pass.restarts, events: pass.events, wake_at: pass.wake_at }
}

/// Folds the outcomes of the restart patches the controller sent into the status. Patched
/// records the generation to wait for; NotFound and Rejected are final results; Transient
/// leaves the service untouched so the next pass sends the same restart again.
pub fn record_restart_outcomes(
    status: &mut ServiceRefreshStatus,
    outcomes: &[(ObjectKey, RestartOutcome)],
    own_namespace: &str,
) {
    for (key, outcome) in outcomes {
        let Some(service) = status
            .batches
            .iter_mut()
            .filter(|batch| batch.phase == BatchPhase::Running)
            .flat_map(|batch| batch.services.iter_mut())
            .find(|service| {
                service.result.is_none() && plan::service_key(service, own_namespace) == *key
            })
        else {
            continue;
        };
        match outcome {
            RestartOutcome::Patched { generation } => {
                // An adopted generation may already be newer than what this patch reported.
                service.generation =
                    Some(service.generation.map_or(*generation, |known| known.max(*generation)));
            }
            RestartOutcome::NotFound => {
                service.result = Some(ServiceResult::Gone);
                service.message = Some(MESSAGE_GONE.to_owned());
            }
            RestartOutcome::Rejected(reason) => {
                service.result = Some(ServiceResult::Failed);
                service.message = Some(format!("restart rejected: {reason}"));
            }
            RestartOutcome::Transient(_) => {}
        }
    }
    refresh_totals(status);
}

/// The ServiceRefresh (namespace, name) a `gisops.io/restarted-by` value points to, so the
/// controller can map a Deployment event to the resource whose run restarted it.
pub fn run_owner(restarted_by: &str) -> Option<(String, String)> {
    let mut parts = restarted_by.splitn(3, '/');
    let namespace = parts.next()?;
    let name = parts.next()?;
    let (number, _uid) = parts.next()?.split_once('-')?;
    let well_formed = !namespace.is_empty()
        && !name.is_empty()
        && !number.is_empty()
        && number.bytes().all(|byte| byte.is_ascii_digit());
    well_formed.then(|| (namespace.to_owned(), name.to_owned()))
}

/// The identity of run `number` of `refresh`: unique across deletions and re-creations of a
/// resource with the same name, because it carries the start of the object's uid.
pub fn run_id(refresh: &ServiceRefresh, number: u64) -> String {
    let namespace = plan::own_namespace(refresh);
    let name = refresh.metadata.name.as_deref().unwrap_or_default();
    let uid: String = refresh.metadata.uid.as_deref().unwrap_or_default().chars().take(8).collect();
    let uid = if uid.is_empty() { "nouid".to_owned() } else { uid };
    format!("{namespace}/{name}/{number}-{uid}")
}

/// Whether a run has started and not ended.
pub fn run_active(status: &ServiceRefreshStatus) -> bool {
    status.run.as_ref().is_some_and(|run| run.end_time.is_none())
}

/// Status times are stored with whole seconds only (that is how `metav1.Time` serializes);
/// truncating up front keeps the in-memory status equal to what a read returns, which keeps
/// the `restartedAt` value derived from it byte-identical across passes.
fn whole_seconds(now: Timestamp) -> Timestamp {
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

struct Trigger {
    reason: &'static str,
    message: String,
}

/// What one pass accumulates besides the status.
struct Pass<'a> {
    observation: &'a Observation<'a>,
    own_namespace: &'a str,
    now: Timestamp,
    deployments: HashMap<ObjectKey, &'a Deployment>,
    restarts: Vec<Restart>,
    events: Vec<EventNote>,
    wake_at: Option<Timestamp>,
}

impl<'a> Pass<'a> {
    fn new(observation: &'a Observation<'a>) -> Self {
        let deployments = observation
            .deployments
            .iter()
            .filter_map(|deployment| {
                let namespace = deployment.metadata.namespace.as_deref()?;
                let name = deployment.metadata.name.as_deref()?;
                Some((ObjectKey::new(namespace, name), deployment.as_ref()))
            })
            .collect();
        Self {
            observation,
            own_namespace: plan::own_namespace(observation.refresh),
            now: whole_seconds(observation.now),
            deployments,
            restarts: Vec::new(),
            events: Vec::new(),
            wake_at: None,
        }
    }

    fn event(&mut self, severity: EventSeverity, reason: &str, message: String) {
        self.events.push(EventNote { severity, reason: reason.to_owned(), message });
    }

    fn advance(&mut self, status: &mut ServiceRefreshStatus, spec: &ValidSpec) -> Situation {
        self.record_config_map_baselines(status);

        let mut ended_this_pass = false;
        if run_active(status) {
            self.drive_run(status, spec);
            if run_active(status) {
                return self.active_situation(status);
            }
            ended_this_pass = true;
        }

        if let Some(missing) = self.missing_config_map() {
            // The phase keeps telling how the last run went; the condition tells what blocks.
            status.phase = Some(match status.run {
                Some(_) => last_run_phase(status),
                None => Phase::Pending,
            });
            return Situation::ConfigMapNotFound { config_map: missing };
        }

        let Some(trigger) = self.pending_trigger(status) else {
            return ended_situation(status);
        };
        // A follow-up does not start in the pass its predecessor ended: admission was
        // computed while this resource still held a slot, and other queued resources deserve
        // a fair look at it. The controller comes back at once.
        if ended_this_pass || !self.observation.may_start_run {
            if ended_this_pass {
                self.wake_at = Some(self.now);
            }
            status.phase = Some(Phase::Pending);
            return Situation::Queued { trigger: trigger.reason.to_owned() };
        }
        self.start_run(status, spec, trigger);
        if run_active(status) { self.active_situation(status) } else { ended_situation(status) }
    }

    fn active_situation(&self, status: &ServiceRefreshStatus) -> Situation {
        let batches = status.batches.len();
        let batch = current_batch_number(status);
        if status.phase == Some(Phase::Suspended) {
            Situation::Suspended { batch, batches }
        } else {
            let follow_up = self.pending_trigger(status).map(|trigger| trigger.reason.to_owned());
            Situation::Running { batch, batches, follow_up }
        }
    }

    fn watched_config_maps(&self) -> Vec<ObjectKey> {
        plan::watched_config_maps(&self.observation.refresh.spec, self.own_namespace)
            .into_iter()
            .map(|(key, _)| key)
            .collect()
    }

    fn current_hash(&self, key: &ObjectKey) -> Option<&'a String> {
        self.observation.config_map_hashes.get(key).and_then(Option::as_ref)
    }

    fn missing_config_map(&self) -> Option<ObjectKey> {
        self.watched_config_maps().into_iter().find(|key| self.current_hash(key).is_none())
    }

    /// A trigger ConfigMap seen for the first time only sets the baseline later changes are
    /// measured against: adding a trigger to the spec is a spec edit, and spec edits start
    /// nothing. Entries for ConfigMaps no longer watched are dropped.
    fn record_config_map_baselines(&self, status: &mut ServiceRefreshStatus) {
        let watched: BTreeSet<ObjectKey> = self.watched_config_maps().into_iter().collect();
        let recorded = &status.triggers.config_maps;
        let baselines: Vec<ConfigMapHash> = watched
            .iter()
            .filter_map(|key| {
                let known = recorded
                    .iter()
                    .find(|entry| entry.namespace == key.namespace && entry.name == key.name);
                known.cloned().or_else(|| {
                    self.current_hash(key).map(|hash| ConfigMapHash {
                        namespace: key.namespace.clone(),
                        name: key.name.clone(),
                        hash: hash.clone(),
                    })
                })
            })
            .collect();
        if baselines != status.triggers.config_maps {
            status.triggers.config_maps = baselines;
        }
    }

    /// Why a new run is due, comparing the triggers with the values the last run recorded at
    /// its start. Because the record is taken at run start, any number of changes during a
    /// run add up to one follow-up run. A trigger that was removed (no token, no annotation)
    /// is no new value and starts nothing. A change of a ConfigMap trigger's `keys` changes
    /// its hash and so counts as a content change.
    fn pending_trigger(&self, status: &ServiceRefreshStatus) -> Option<Trigger> {
        if status.run.is_none() {
            return Some(Trigger {
                reason: REASON_CREATED,
                message: "ServiceRefresh created".to_owned(),
            });
        }
        let refresh = self.observation.refresh;
        let recorded = &status.triggers;
        let mut found: Vec<Trigger> = Vec::new();
        if let Some(token) = &refresh.spec.trigger
            && recorded.token.as_ref() != Some(token)
        {
            found.push(Trigger {
                reason: REASON_TRIGGER_CHANGED,
                message: format!("spec.trigger changed to {token:?}"),
            });
        }
        if let Some(requested) = run_requested_at(refresh)
            && recorded.run_requested_at.as_ref() != Some(requested)
        {
            found.push(Trigger {
                reason: REASON_RUN_REQUESTED,
                message: format!("annotation {RUN_REQUESTED_AT_ANNOTATION} set to {requested:?}"),
            });
        }
        for key in self.watched_config_maps() {
            let changed = self.current_hash(&key).is_some_and(|hash| {
                recorded.config_maps.iter().any(|entry| {
                    entry.namespace == key.namespace
                        && entry.name == key.name
                        && entry.hash != *hash
                })
            });
            if changed {
                found.push(Trigger {
                    reason: REASON_CONFIG_MAP_CHANGED,
                    message: format!("ConfigMap {key} changed"),
                });
            }
        }
        let reason = found.first()?.reason;
        let message =
            found.into_iter().map(|trigger| trigger.message).collect::<Vec<_>>().join("; ");
        Some(Trigger { reason, message })
    }

    /// The trigger values a starting run handles. A removed token or annotation keeps its
    /// last value, so putting the same value back later is still no change.
    fn current_triggers(&self, status: &ServiceRefreshStatus) -> TriggerRecord {
        let refresh = self.observation.refresh;
        let config_maps = self
            .watched_config_maps()
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter_map(|key| {
                let hash = self.current_hash(&key)?.clone();
                Some(ConfigMapHash { namespace: key.namespace, name: key.name, hash })
            })
            .collect();
        TriggerRecord {
            token: refresh.spec.trigger.clone().or_else(|| status.triggers.token.clone()),
            token_digest: None,
            cancel_requested_at: status.triggers.cancel_requested_at.clone(),
            run_requested_at: run_requested_at(refresh)
                .cloned()
                .or_else(|| status.triggers.run_requested_at.clone()),
            config_maps,
        }
    }

    /// Plans a run. Restarts wait for a later pass so the plan is persisted before any
    /// Deployment is touched; a crash in between then resumes this plan rather than making
    /// a new one.
    fn start_run(&mut self, status: &mut ServiceRefreshStatus, spec: &ValidSpec, trigger: Trigger) {
        let refresh = self.observation.refresh;
        let keys = plan::select(spec, self.own_namespace, self.observation.deployments);
        let services: Vec<ServiceStatus> =
            keys.iter().map(|key| plan::planned_service(key, self.own_namespace)).collect();
        let number = status.run.as_ref().map_or(0, |run| run.number) + 1;
        let dry_run = refresh.spec.dry_run;

        // The request this run serves: a run-requested-at value not handled before.
        let request = run_requested_at(refresh)
            .filter(|value| status.triggers.run_requested_at.as_ref() != Some(*value))
            .cloned();
        status.triggers = self.current_triggers(status);
        status.batches = plan::cut_batches(&services, spec.batch_size, 1);
        status.run = Some(RunStatus {
            id: run_id(refresh, number),
            number,
            reason: trigger.reason.to_owned(),
            message: Some(trigger.message.clone()),
            request,
            cancel_request: None,
            dry_run,
            start_time: Some(Time(self.now)),
            end_time: None,
        });
        status.phase = Some(Phase::Running);
        let dry = if dry_run { " (dry run)" } else { "" };
        self.event(
            EventSeverity::Normal,
            "RunStarted",
            format!(
                "Run {number}{dry} started ({}): {} Deployments in {} batches of up to {}",
                trigger.message,
                services.len(),
                status.batches.len(),
                spec.batch_size
            ),
        );

        if dry_run {
            for batch in &mut status.batches {
                for service in &mut batch.services {
                    service.result = Some(ServiceResult::Skipped);
                    service.message = Some(MESSAGE_DRY_RUN.to_owned());
                }
                batch.phase = BatchPhase::Completed;
                batch.start_time = Some(MicroTime(self.now));
                batch.end_time = Some(MicroTime(self.now));
            }
        }
        if dry_run || services.is_empty() {
            self.end_run(status);
        } else {
            self.wake_at = Some(self.now);
        }
    }

    /// Moves the active run forward as far as this observation allows.
    fn drive_run(&mut self, status: &mut ServiceRefreshStatus, spec: &ValidSpec) {
        let Some(run_id) = status.run.as_ref().map(|run| run.id.clone()) else {
            return;
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
                if spec.failure_policy == FailurePolicy::Abort
                    && let Some(failed_batch) = last_batch_with_failure(status)
                {
                    self.abort_from(status, position, failed_batch);
                    self.end_run(status);
                    return;
                }
                if !self.start_batch(status, position) {
                    return;
                }
                continue;
            }
            if !self.drive_batch(status, position, spec, &run_id) {
                return;
            }
            self.complete_batch(status, position);
        }
    }

    /// Starts the batch at `position`, or completes it at once when every service in it
    /// already has a result. Returns whether the caller may go on to the next batch.
    fn start_batch(&mut self, status: &mut ServiceRefreshStatus, position: usize) -> bool {
        let total = status.batches.len();
        let batch = &mut status.batches[position];
        if batch.services.iter().all(|service| service.result.is_some()) {
            batch.phase = BatchPhase::Completed;
            batch.end_time = Some(MicroTime(self.now));
            return true;
        }
        if self.observation.refresh.spec.suspend {
            if status.phase != Some(Phase::Suspended) {
                status.phase = Some(Phase::Suspended);
                self.event(
                    EventSeverity::Normal,
                    "Suspended",
                    format!(
                        "Run suspended by spec.suspend before batch {} of {total}",
                        position + 1
                    ),
                );
            }
            return false;
        }
        let count = batch.services.len();
        batch.phase = BatchPhase::Running;
        // Restarts use this persisted time as their restartedAt value, so they wait for the
        // next pass: a crash before the write must not leave patches with an unrecorded time.
        batch.start_time = Some(MicroTime(self.now));
        status.phase = Some(Phase::Running);
        self.wake_at = Some(self.now);
        self.event(
            EventSeverity::Normal,
            "BatchStarted",
            format!("Batch {} of {total} started: {count} Deployments", position + 1),
        );
        false
    }

    /// Works through the unresolved services of the running batch. Returns whether every
    /// service of the batch now has a result.
    fn drive_batch(
        &mut self,
        status: &mut ServiceRefreshStatus,
        position: usize,
        spec: &ValidSpec,
        run_id: &str,
    ) -> bool {
        status.phase = Some(Phase::Running);
        let timeout_text = self.observation.refresh.spec.batch_timeout.clone();
        let own_namespace = self.own_namespace;
        let now = self.now;
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
        let restarted_at = start.to_string();
        let mut unresolved = false;

        for service in &mut batch.services {
            if service.result.is_some() {
                continue;
            }
            let key = plan::service_key(service, own_namespace);
            let Some(deployment) = self.deployments.get(&key).copied() else {
                service.result = Some(ServiceResult::Gone);
                service.message = Some(MESSAGE_GONE.to_owned());
                continue;
            };
            let generation = match service.generation {
                Some(generation) => generation,
                None if restarted_by(deployment) == Some(run_id) => {
                    // Our patch went through but its outcome was never recorded (a crash
                    // between patch and status write): adopt it instead of patching again.
                    let generation = deployment.metadata.generation.unwrap_or(0);
                    service.generation = Some(generation);
                    generation
                }
                None if deployment.spec.paused == Some(true) => {
                    service.result = Some(ServiceResult::Skipped);
                    service.message = Some(MESSAGE_PAUSED.to_owned());
                    continue;
                }
                None if timed_out => {
                    service.result = Some(ServiceResult::TimedOut);
                    service.message = Some(format!(
                        "not restarted within spec.batchTimeout {timeout_text}: the restart patch did not go through"
                    ));
                    continue;
                }
                None => {
                    self.restarts.push(Restart {
                        deployment: key,
                        restarted_at: restarted_at.clone(),
                        restarted_by: run_id.to_owned(),
                    });
                    unresolved = true;
                    continue;
                }
            };
            match readiness::verdict(deployment, generation) {
                Verdict::Ready => {
                    service.result = Some(ServiceResult::Ready);
                    service.generation = None;
                    service.message = None;
                }
                Verdict::Failed(message) => {
                    service.result = Some(ServiceResult::Failed);
                    service.message = Some(message);
                }
                Verdict::Waiting(message) if timed_out => {
                    service.result = Some(ServiceResult::TimedOut);
                    service.message = Some(format!(
                        "not ready after spec.batchTimeout {timeout_text}: {message}"
                    ));
                }
                // The waiting message is not stored: it changes with every rollout step and
                // would turn each step into a status write.
                Verdict::Waiting(_) => unresolved = true,
            }
        }

        if unresolved {
            self.wake_at = Some(deadline);
        }
        !unresolved
    }

    fn complete_batch(&mut self, status: &mut ServiceRefreshStatus, position: usize) {
        let total = status.batches.len();
        let batch = &mut status.batches[position];
        batch.phase = BatchPhase::Completed;
        batch.end_time = Some(MicroTime(self.now));
        let count = |wanted: fn(ServiceResult) -> bool| {
            batch.services.iter().filter(|service| service.result.is_some_and(wanted)).count()
        };
        let ready = count(|result| result == ServiceResult::Ready);
        let failed = count(ServiceResult::is_failure);
        let skipped = count(|result| result == ServiceResult::Skipped);
        let severity = if failed > 0 { EventSeverity::Warning } else { EventSeverity::Normal };
        self.event(
            severity,
            "BatchCompleted",
            format!(
                "Batch {} of {total} completed: {ready} ready, {failed} failed, {skipped} skipped",
                position + 1
            ),
        );
    }

    /// Under `failurePolicy: Abort`, gives every service of the batches not started a
    /// Skipped result, so each planned Deployment still ends with exactly one result.
    fn abort_from(
        &mut self,
        status: &mut ServiceRefreshStatus,
        position: usize,
        failed_batch: u32,
    ) {
        let message = format!("not started: run aborted after failures in batch {failed_batch}");
        for batch in &mut status.batches[position..] {
            for service in batch.services.iter_mut().filter(|service| service.result.is_none()) {
                service.result = Some(ServiceResult::Skipped);
                service.message = Some(message.clone());
            }
            batch.phase = BatchPhase::Completed;
            batch.end_time = Some(MicroTime(self.now));
        }
    }

    /// Spec edits during a run reach only the batches not started yet: newly excluded
    /// Deployments there are skipped, and a new batchSize re-cuts them in the same order.
    fn apply_spec_edits(&self, status: &mut ServiceRefreshStatus, spec: &ValidSpec) {
        let first_pending = status
            .batches
            .iter()
            .rposition(|batch| batch.phase != BatchPhase::Pending)
            .map_or(0, |position| position + 1);
        if first_pending >= status.batches.len() {
            return;
        }
        for batch in &mut status.batches[first_pending..] {
            for service in &mut batch.services {
                if service.result.is_none() && spec.exclude.contains(&service.name) {
                    service.result = Some(ServiceResult::Skipped);
                    service.message = Some(MESSAGE_EXCLUDED.to_owned());
                }
            }
        }
        let first_index = u32::try_from(first_pending + 1).unwrap_or(u32::MAX);
        let pending = &status.batches[first_pending..];
        // Checking the shape first spares re-cutting (and cloning) thousands of services on
        // every pass of a large run.
        let already_cut =
            pending.iter().zip(first_index..).enumerate().all(|(position, (batch, index))| {
                let is_last = position + 1 == pending.len();
                let size = batch.services.len();
                batch.index == index
                    && batch.start_time.is_none()
                    && batch.end_time.is_none()
                    && (size == spec.batch_size || (is_last && size > 0 && size < spec.batch_size))
            });
        if !already_cut {
            let services: Vec<ServiceStatus> =
                pending.iter().flat_map(|batch| batch.services.iter().cloned()).collect();
            let recut = plan::cut_batches(&services, spec.batch_size, first_index);
            status.batches.truncate(first_pending);
            status.batches.extend(recut);
        }
    }

    fn end_run(&mut self, status: &mut ServiceRefreshStatus) {
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
        let Some(run) = status.run.as_mut() else {
            return;
        };
        let phase = if failures.is_empty() { Phase::Succeeded } else { Phase::Failed };
        let outcome = if totals.services == 0 {
            "no Deployment matched the selector, name patterns and namespaces".to_owned()
        } else if run.dry_run {
            format!(
                "dry run planned {} Deployments in {} batches; nothing was restarted",
                totals.services,
                status.batches.len()
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
        let verb = if phase == Phase::Succeeded { "succeeded" } else { "failed" };
        let message = format!("Run {} {verb}: {outcome}", run.number);
        run.end_time = Some(Time(self.now));
        run.message = Some(message.clone());
        status.history.insert(
            0,
            RunSummary {
                id: run.id.clone(),
                number: run.number,
                reason: run.reason.clone(),
                request: run.request.clone(),
                phase,
                message: run.message.clone(),
                start_time: run.start_time.clone(),
                end_time: run.end_time.clone(),
                totals,
            },
        );
        status.history.truncate(MAX_HISTORY);
        status.phase = Some(phase);
        let (severity, reason) = match phase {
            Phase::Succeeded => (EventSeverity::Normal, "RunSucceeded"),
            _ => (EventSeverity::Warning, "RunFailed"),
        };
        self.event(severity, reason, message);
    }

    /// Records a Warning event when the resource newly stalls or stalls for a new reason;
    /// repeating it every pass would flood the event stream.
    fn announce_new_stall(
        &mut self,
        before: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
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
        // A failed run has its own RunFailed event already.
        if after.status == "True" && !unchanged && after.reason != "RunFailed" {
            self.event(EventSeverity::Warning, &after.reason.clone(), after.message.clone());
        }
    }
}

/// The conditions once no run is active: those of the last run's outcome.
fn ended_situation(status: &mut ServiceRefreshStatus) -> Situation {
    let Some(run) = &status.run else {
        // Without any run the Created trigger is always pending, so this is not reached.
        return Situation::Queued { trigger: REASON_CREATED.to_owned() };
    };
    let message = run.message.clone().unwrap_or_default();
    let phase = last_run_phase(status);
    status.phase = Some(phase);
    if phase == Phase::Failed {
        Situation::RunFailed { message }
    } else {
        Situation::Succeeded { message }
    }
}

/// How the last (ended) run went, by the same rule `end_run` applies.
fn last_run_phase(status: &ServiceRefreshStatus) -> Phase {
    let failed = status
        .batches
        .iter()
        .flat_map(|batch| batch.services.iter())
        .any(|service| service.result.is_some_and(ServiceResult::is_failure));
    if failed { Phase::Failed } else { Phase::Succeeded }
}

fn run_requested_at(refresh: &ServiceRefresh) -> Option<&String> {
    refresh.metadata.annotations.as_ref()?.get(RUN_REQUESTED_AT_ANNOTATION)
}

fn restarted_by(deployment: &Deployment) -> Option<&str> {
    deployment
        .spec
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(RESTARTED_BY_ANNOTATION)
        .map(String::as_str)
}

/// 1-based number of the first batch not completed, or the number of batches when all are.
fn current_batch_number(status: &ServiceRefreshStatus) -> usize {
    status
        .batches
        .iter()
        .position(|batch| batch.phase != BatchPhase::Completed)
        .map_or(status.batches.len(), |position| position + 1)
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

/// Recomputes the counts and the printer-column strings from the plan. A service counts as
/// restarted once its restart generation is known (kept on failures for that reason) or it
/// became Ready, which only follows a restart.
fn refresh_totals(status: &mut ServiceRefreshStatus) {
    if status.run.is_none() {
        return;
    }
    let mut totals = Totals::default();
    for service in status.batches.iter().flat_map(|batch| batch.services.iter()) {
        totals.services += 1;
        if service.generation.is_some() || service.result == Some(ServiceResult::Ready) {
            totals.restarted += 1;
        }
        match service.result {
            Some(ServiceResult::Ready) => totals.ready += 1,
            Some(ServiceResult::Skipped) => totals.skipped += 1,
            Some(result) if result.is_failure() => totals.failed += 1,
            _ => {}
        }
    }
    let progress = format!("{}/{}", totals.ready, totals.services);
    let batch = format!("{}/{}", current_batch_number(status), status.batches.len());
    status.totals = totals;
    status.progress = Some(progress);
    status.batch = Some(batch);
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
