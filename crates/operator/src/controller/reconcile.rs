//! One reconcile of a ServiceRefresh: observe (the cached resource with this process's own
//! latest write laid over it), admit (decide; when the engine wants a run slot, ask for one
//! and decide again), act (patches, then the status write, then Events and logs), and requeue.
//! When the engine needs its next step right after a status write, as after planning a run,
//! the next pass runs at once inside the same reconcile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedSender;
use jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use thiserror::Error;
use tracing::{info, warn};

use super::act::{self, ApplyError, StatusWrite, TermGate, WriteGate, WriteMemos};
use super::caches::{Cache, CacheSync, CachedCluster, WatchDeliveries};
use super::forbidden;
use super::health_gate::HealthChecks;
use super::notify::Notifier;
use super::plans;
use super::startup::Clients;
use crate::telemetry::{self, Telemetry};
use servicerefresh_core::crd::{Phase, ServiceRefresh, ServiceRefreshStatus};
use servicerefresh_core::engine::conditions;
use servicerefresh_core::engine::view::batch_members;
use servicerefresh_core::engine::{
    Decision, ObjectKey, Observation, OperatorScope, Plan, RunSlot, Transition, decide, run_active,
};
use servicerefresh_core::engine::{EventNote, EventReason, EventSeverity, WaitReason};
use servicerefresh_core::policy::admission::{CachedRefresh, RunSlots};
use servicerefresh_core::policy::awaiting::AwaitIndex;
use servicerefresh_core::policy::forbidden_writes::{ForbiddenWrites, RefusedRequest};
use servicerefresh_core::policy::leadership::{Leadership, Term};
use servicerefresh_core::policy::plan_memo::PlanMemo;
use servicerefresh_core::policy::refusals::RefusedWrites;
use servicerefresh_core::policy::requeue::{self, Requeue};
use servicerefresh_core::policy::status_memo::StatusMemo;

/// Passes one reconcile may run back to back before it yields to other resources.
const MAX_PASSES_PER_RECONCILE: usize = 8;

/// Why a reconcile did not complete; it is retried after the configured delay.
#[derive(Debug, Error)]
pub enum ReconcileError {
    #[error("writing the status of {object} failed")]
    StatusWrite {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("the API server refused to store the status of {object}; retrying with back-off")]
    StatusRefused {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing plan object {plan} of {object} failed")]
    PlanWrite {
        object: String,
        plan: String,
        #[source]
        source: kube::Error,
    },
    #[error("ServiceRefresh {0} has no namespace")]
    NotNamespaced(String),
}

impl ReconcileError {
    /// Every [`Self::kind`].
    pub const KINDS: [&'static str; 4] =
        ["status_write", "status_refused", "plan_write", "not_namespaced"];

    /// The `kind` label of `servicerefresh_reconcile_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::StatusWrite { .. } => "status_write",
            Self::StatusRefused { .. } => "status_refused",
            Self::PlanWrite { .. } => "plan_write",
            Self::NotNamespaced(_) => "not_namespaced",
        }
    }
}

/// Shared state of all reconciles.
pub struct Context {
    pub clients: Clients,
    pub cluster: CachedCluster,
    pub refreshes: Store<ServiceRefresh>,
    /// The plans of the resources' current runs, read once from their plan objects.
    pub plan_memo: PlanMemo,
    /// Refused status writes in a row, for the back-off.
    pub refusals: RefusedWrites,
    /// Writes the API server forbids (403), for the Forbidden stall and its retries.
    pub forbidden: ForbiddenWrites,
    pub scope: OperatorScope,
    /// No Deployment is restarted twice within it, unless a run is forced.
    pub min_restart_interval: jiff::SignedDuration,
    pub slots: RunSlots,
    pub memo: StatusMemo,
    pub awaiting: Arc<AwaitIndex>,
    /// Wakes queued ServiceRefreshes when a run frees its slot.
    pub wake_queued: UnboundedSender<ObjectRef<ServiceRefresh>>,
    pub retry_delay: Duration,
    pub telemetry: Arc<Telemetry>,
    pub leadership: Arc<Leadership>,
    pub deliveries: Arc<WatchDeliveries>,
    pub sync: Arc<CacheSync>,
    /// The health gate's checks and their latest outcomes.
    pub health_checks: HealthChecks,
    /// Sends `spec.notify` webhooks their notifications.
    pub notifier: Notifier,
}

/// What a pass leaves for the requeue decision.
struct PassOutcome {
    wake_at: Option<Timestamp>,
    transient_failures: usize,
}

pub async fn reconcile(
    refresh: Arc<ServiceRefresh>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let result = reconcile_passes(refresh, &ctx).await;
    ctx.telemetry.reconcile_duration.observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_passes(
    refresh: Arc<ServiceRefresh>,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let namespace =
        refresh.namespace().ok_or_else(|| ReconcileError::NotNamespaced(refresh.name_any()))?;
    let key = ObjectKey::new(namespace, refresh.name_any());
    if refresh.metadata.deletion_timestamp.is_some() {
        ctx.forget(&key, &refresh);
        return Ok(Action::await_change());
    }
    // Plans and readiness verdicts read the caches, so they must be complete first. The
    // controller drives the streams that fill them, so this resolves after the first list.
    ctx.sync.wait_for(&Cache::CLUSTER).await;
    // Only the leader acts. A standby's caches stay warm; when it takes over, every
    // ServiceRefresh is reconciled afresh.
    let Ok(term) = ctx.leadership.permit(Instant::now()) else {
        return Ok(Action::await_change());
    };
    // A Secret whose watch has not listed it yet is unknown, not missing.
    if !ctx.cluster.secrets.ensure(&refresh, &ctx.refreshes).await {
        return Ok(Action::requeue(ctx.retry_delay));
    }

    for _ in 0..MAX_PASSES_PER_RECONCILE {
        // The newest cached copy: the status memo overlays this process's last write only
        // while the cache still shows what that write replaced, so it must be asked with
        // what the cache shows now, not with the copy this reconcile began with.
        let cached =
            ctx.refreshes.get(&ObjectRef::from_obj(&*refresh)).unwrap_or_else(|| refresh.clone());
        let observed = ctx.observe(&cached);
        let plan = ctx.plan_of(&observed).await;
        let mut decision = ctx.admit_and_decide(&key, &observed, plan.clone());
        if decision.wants_health_check {
            // The engine holds at its gate without a fresh outcome: check, then decide again.
            ctx.health_checks.check(&ctx.clients.requests, &observed).await;
            decision = ctx.admit_and_decide(&key, &observed, plan);
        }
        let Some(outcome) = ctx.act(&key, &observed, decision, term).await? else {
            return Ok(Action::await_change());
        };
        match requeue::after_pass(
            outcome.wake_at,
            Timestamp::now(),
            outcome.transient_failures,
            ctx.retry_delay,
        ) {
            Requeue::AtOnce => continue,
            Requeue::After(delay) => return Ok(Action::requeue(delay)),
            Requeue::OnChange => return Ok(Action::await_change()),
        }
    }
    Ok(Action::requeue(Duration::from_millis(1)))
}

pub fn error_policy(
    refresh: Arc<ServiceRefresh>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    warn!(servicerefresh = %format!("{}/{}", refresh.namespace().unwrap_or_default(), refresh.name_any()), error = %error, cause = %telemetry::error_causes(error), "reconcile failed; retrying");
    ctx.telemetry.reconcile_failed(error.kind());
    match error {
        ReconcileError::StatusRefused { .. } => {
            let key = ObjectKey::new(refresh.namespace().unwrap_or_default(), refresh.name_any());
            Action::requeue(ctx.refusals.refused(&key))
        }
        _ => Action::requeue(ctx.retry_delay),
    }
}

impl Context {
    /// The resource as cached, with this process's latest status write laid over it while
    /// the cache has not caught up.
    fn observe(&self, cached: &ServiceRefresh) -> ServiceRefresh {
        let mut observed = cached.clone();
        if let Some(fresher) = self.memo.freshest(cached) {
            observed.status = Some(fresher);
        }
        observed
    }

    fn cached_refreshes(&self) -> Vec<CachedRefresh> {
        self.refreshes
            .state()
            .iter()
            .map(|refresh| {
                let status = self.memo.freshest(refresh).or_else(|| refresh.status.clone());
                CachedRefresh {
                    key: ObjectKey::new(
                        refresh.namespace().unwrap_or_default(),
                        refresh.name_any(),
                    ),
                    holds_slot: status.as_ref().is_some_and(run_active),
                    suspended: status.as_ref().and_then(|status| status.phase)
                        == Some(Phase::Suspended),
                }
            })
            .collect()
    }

    /// The plan the resource's current run refers to: the one this process knows, or the one
    /// its plan objects hold (read once, then known). `None` when the run has no plan or its
    /// objects cannot be read now; the engine waits for it.
    async fn plan_of(&self, refresh: &ServiceRefresh) -> Option<Arc<Plan>> {
        let reference = refresh.status.as_ref()?.run.as_ref()?.plan.as_ref()?;
        let uid = refresh.metadata.uid.as_deref()?;
        if let Some(plan) = self.plan_memo.get(uid, reference) {
            return Some(plan);
        }
        match plans::read_plan(&self.clients.requests, refresh).await {
            Ok(Some(plan)) => {
                self.plan_memo.remember(uid, plan);
                self.plan_memo.get(uid, reference)
            }
            Ok(None) => None,
            Err(error) => {
                warn!(servicerefresh = %refresh.name_any(), %error, "could not read the run's plan objects");
                None
            }
        }
    }

    /// Decides without a run slot; when the engine wants one, asks admission and, if a slot
    /// is granted, decides again with it. The second pass happens only when a run is due.
    fn admit_and_decide(
        &self,
        key: &ObjectKey,
        observed: &ServiceRefresh,
        plan: Option<Arc<Plan>>,
    ) -> Decision {
        let cached = self.cached_refreshes();
        let gate = observed.metadata.uid.as_deref().and_then(|uid| self.health_checks.latest(uid));
        let forbidden = self.forbidden.current(key);
        let mut observation = Observation {
            refresh: observed,
            cluster: &self.cluster,
            scope: &self.scope,
            plan: plan.as_deref(),
            run_slot: RunSlot::Busy { holders: self.slots.holders(key, &cached) },
            health_gate: gate.as_ref(),
            forbidden: forbidden.as_ref(),
            now: Timestamp::now(),
            min_restart_interval: self.min_restart_interval,
        };
        let decision = decide(&observation);
        if !decision.wants_run_slot {
            return decision;
        }
        match self.slots.try_admit(key, &cached) {
            Ok(()) => {
                observation.run_slot = RunSlot::Granted;
                observation.now = Timestamp::now();
                decide(&observation)
            }
            Err(_) => decision,
        }
    }

    /// Carries out a decision. Returns `None` when the resource turned out to be deleted, or
    /// when this replica stopped leading before its next write.
    async fn act(
        &self,
        key: &ObjectKey,
        observed: &ServiceRefresh,
        decision: Decision,
        term: Term,
    ) -> Result<Option<PassOutcome>, ReconcileError> {
        let was_active = observed.status.as_ref().is_some_and(run_active);
        let gate = TermGate { leadership: &self.leadership, term };
        let applied = match act::apply_decision_gated(
            &self.clients.requests,
            observed,
            decision,
            &gate,
            WriteMemos {
                status: &self.memo,
                patches: &self.cluster.patches,
                plans: &self.plan_memo,
            },
        )
        .await
        {
            Ok(applied) => applied,
            Err(ApplyError::Fenced(refused)) => {
                info!(servicerefresh = %key, reason = %refused, "stopped before the next write: this replica no longer leads");
                return Ok(None);
            }
            Err(ApplyError::Status(source)) if is_refusal(&source) => {
                self.mark_refused(key, observed, &source, &gate).await;
                return Err(ReconcileError::StatusRefused { object: key.to_string(), source });
            }
            Err(ApplyError::Status(source)) => {
                return Err(ReconcileError::StatusWrite { object: key.to_string(), source });
            }
            Err(ApplyError::Plan { source, .. }) if forbidden::is_forbidden(&source) => {
                // The run did not start: its plan is its first write. The next pass stalls
                // it with the refused permission and tries again after the back-off.
                let namespace = key.namespace.clone();
                let refused = forbidden::refused_plan_write(&namespace);
                let retry_at = self.note_forbidden(key, refused, &source.to_string());
                return Ok(Some(PassOutcome { wake_at: Some(retry_at), transient_failures: 0 }));
            }
            Err(ApplyError::Plan { name, source }) => {
                return Err(ReconcileError::PlanWrite {
                    object: key.to_string(),
                    plan: name,
                    source,
                });
            }
        };
        if applied.status_write == StatusWrite::Written {
            self.refusals.written(key);
        }
        let mut retry_forbidden = None;
        if let Some((refused, message)) = applied.forbidden.clone() {
            retry_forbidden = Some(self.note_forbidden(key, refused, &message));
        } else if applied.writes_allowed {
            self.forbidden.allowed(key);
        }
        match applied.status_write {
            StatusWrite::ResourceGone => {
                self.forget(key, observed);
                return Ok(None);
            }
            StatusWrite::Written | StatusWrite::Unchanged => {}
        }
        // Gauges first: by the time a run's end is counted, it no longer shows as active.
        self.record_run_gauges();
        let restarts_sent_at = applied.restarts_sent_at;
        let Decision { status, transitions, wake_at, wants_run_slot, awaiting, .. } =
            applied.decision;
        let transient_failures = applied.transient_failures.len();

        let name = key.to_string();
        for transition in &transitions {
            act::log_transition(&name, transition);
            self.count(transition);
        }
        if let Some(sent_at) = restarts_sent_at {
            self.record_batch_handoff(key, &status, &transitions, sent_at);
        }
        let notes: Vec<_> = transitions.iter().filter_map(Transition::event).collect();
        act::publish_events(
            &self.clients.requests,
            observed,
            &notes,
            &self.clients.identity,
            &gate,
        )
        .await;
        // Queued only now that the status recording these transitions is written.
        self.notifier.notify(observed, &transitions);

        self.awaiting.set(key, &awaiting);
        if !run_active(&status) && !wants_run_slot {
            let queued = self.slots.release(key);
            if was_active {
                for waiting in queued {
                    let _ = self
                        .wake_queued
                        .unbounded_send(ObjectRef::new(&waiting.name).within(&waiting.namespace));
                }
            }
        }
        // A Role change causes no event on the resource: the refused write is retried on
        // the back-off's schedule.
        let wake_at = match (wake_at, retry_forbidden) {
            (Some(wake), Some(retry)) => Some(wake.min(retry)),
            (wake, retry) => wake.or(retry),
        };
        Ok(Some(PassOutcome { wake_at, transient_failures }))
    }

    /// Records a write the API server forbade, with one log line per attempt: a warning for
    /// the first of a series, the retries at info. Returns when to try again.
    fn note_forbidden(&self, key: &ObjectKey, refused: RefusedRequest, error: &str) -> Timestamp {
        let first = self.forbidden.current(key).is_none();
        let retry_at = self.forbidden.refused(key, refused.clone(), Timestamp::now());
        let RefusedRequest { verb, resource, group, namespace } = &refused;
        if first {
            warn!(servicerefresh = %key, %verb, %resource, %group, %namespace, %error, %retry_at, "the API server forbids this write: the operator lacks the RBAC permission; the run stalls and retries until it is granted");
        } else {
            info!(servicerefresh = %key, %verb, %resource, %group, %namespace, %error, %retry_at, "still forbidden; retrying later");
        }
        retry_at
    }

    /// The metrics of one transition, counted once its status is written.
    fn count(&self, transition: &Transition) {
        match transition {
            Transition::RunStarted { reason, .. } => self.telemetry.run_started(reason),
            Transition::RunFinished { phase, .. } => {
                self.telemetry.run_finished(&format!("{phase:?}"))
            }
            Transition::ServiceFinished { result, .. } => {
                self.telemetry.restart_finished(&format!("{result:?}"));
            }
            Transition::BatchCompleted { seconds, .. } => {
                self.telemetry.batch_duration.observe(*seconds)
            }
            Transition::Waiting { reason, .. } => self.telemetry.wait_began(reason.as_str()),
            Transition::BatchStarted { .. } | Transition::Notice(_) => {}
        }
    }

    /// When a pass completed one batch and sent the next one's patches: the time from the
    /// watch event of the completed batch's last service to those patches.
    fn record_batch_handoff(
        &self,
        key: &ObjectKey,
        status: &ServiceRefreshStatus,
        transitions: &[Transition],
        sent_at: Instant,
    ) {
        let completed = transitions.iter().find_map(|transition| match transition {
            Transition::BatchCompleted { batch, .. } => Some(*batch),
            _ => None,
        });
        let started = transitions.iter().find_map(|transition| match transition {
            Transition::BatchStarted { batch, .. } => Some(*batch),
            _ => None,
        });
        let (Some(completed), Some(started)) = (completed, started) else {
            return;
        };
        if started != completed + 1 {
            return;
        }
        let Some(batch) = status.batches.iter().find(|batch| batch.index == completed) else {
            return;
        };
        let Some(plan) = self.plan_memo_for(key, status) else {
            return;
        };
        let services = batch_members(batch, &plan);
        if let Some(last_event) = self.deliveries.latest(&services) {
            self.telemetry
                .batch_handoff
                .observe(sent_at.saturating_duration_since(last_event).as_secs_f64());
        }
    }

    /// Runs in progress and resources queued for a slot, as this leader sees them.
    fn record_run_gauges(&self) {
        let active = self
            .refreshes
            .state()
            .iter()
            .filter(|refresh| {
                self.memo
                    .peek(refresh)
                    .or_else(|| refresh.status.clone())
                    .as_ref()
                    .is_some_and(run_active)
            })
            .count();
        self.telemetry.runs_active.set(i64::try_from(active).unwrap_or(i64::MAX));
        let mut waiting: BTreeMap<&'static str, i64> =
            WaitReason::ALL.iter().map(|reason| (reason.as_str(), 0)).collect();
        for refresh in self.refreshes.state().iter() {
            let status = self.memo.peek(refresh).or_else(|| refresh.status.clone());
            if let Some(reason) = status
                .and_then(|status| status.waiting)
                .and_then(|waiting| WaitReason::parse(&waiting.reason))
            {
                *waiting.entry(reason.as_str()).or_default() += 1;
            }
        }
        for (reason, count) in waiting {
            self.telemetry.set_waiting(reason, count);
        }
        // The smallest effective batch size of the active runs: a per-resource family would be
        // empty between runs, which OpenMetrics parsers reject.
        let mut smallest: Option<u32> = None;
        for refresh in self.refreshes.state().iter() {
            let status = self.memo.peek(refresh).or_else(|| refresh.status.clone());
            let Some(run) =
                status.as_ref().filter(|status| run_active(status)).and_then(|s| s.run.as_ref())
            else {
                continue;
            };
            let size =
                run.pacing.as_ref().map(|pacing| pacing.effective_batch_size).or(run.batch_size);
            if let Some(size) = size {
                smallest = Some(smallest.map_or(size, |other| other.min(size)));
            }
        }
        self.telemetry.effective_batch_size.set(i64::from(smallest.unwrap_or(0)));
        self.telemetry.runs_queued.set(i64::try_from(self.slots.queued()).unwrap_or(i64::MAX));
    }

    /// A new leadership term: forget what this replica wrote or admitted in an earlier one;
    /// the cluster is the truth now.
    pub fn start_term(&self) {
        self.memo.clear();
        self.plan_memo.clear();
        self.slots.reset();
    }

    /// The plan this process knows for `status`'s run of the resource `key`.
    fn plan_memo_for(&self, key: &ObjectKey, status: &ServiceRefreshStatus) -> Option<Arc<Plan>> {
        let reference = status.run.as_ref()?.plan.as_ref()?;
        let refresh = self.refreshes.get(&ObjectRef::new(&key.name).within(&key.namespace))?;
        self.plan_memo.get(refresh.metadata.uid.as_deref()?, reference)
    }

    /// The API server refused the status this pass decided: mark the stored status Stalled
    /// with the reason (a small change to what it stored before, so it can go through), and
    /// say so once per series of refusals. Nothing was restarted: restarts follow the status.
    async fn mark_refused(
        &self,
        key: &ObjectKey,
        observed: &ServiceRefresh,
        source: &kube::Error,
        gate: &TermGate<'_>,
    ) {
        let why = match source {
            kube::Error::Api(status) => format!("{} {}", status.code, status.message),
            other => other.to_string(),
        };
        let generation = observed.metadata.generation.unwrap_or(0);
        let marked = conditions::with_status_write_refused(
            observed.status.as_ref(),
            &why,
            generation,
            Timestamp::now(),
        );
        if gate.check().is_err() {
            return;
        }
        if let Err(error) = act::write_status(&self.clients.requests, observed, &marked).await {
            warn!(servicerefresh = %key, %error, "the Stalled condition could not be stored either");
        }
        if self.refusals.count(key) == 0 {
            let note = EventNote {
                severity: EventSeverity::Warning,
                reason: EventReason::StatusWriteRefused,
                message: conditions::find(&marked.conditions, conditions::STALLED)
                    .map(|condition| condition.message.clone())
                    .unwrap_or(why),
            };
            act::publish_events(
                &self.clients.requests,
                observed,
                &[note],
                &self.clients.identity,
                gate,
            )
            .await;
        }
    }

    fn forget(&self, key: &ObjectKey, refresh: &ServiceRefresh) {
        self.memo.forget(refresh);
        if let Some(uid) = refresh.metadata.uid.as_deref() {
            self.plan_memo.forget(uid);
            self.health_checks.forget(uid);
        }
        self.awaiting.set(key, &Default::default());
        self.forbidden.allowed(key);
        for waiting in self.slots.release(key) {
            let _ = self
                .wake_queued
                .unbounded_send(ObjectRef::new(&waiting.name).within(&waiting.namespace));
        }
    }
}

/// Whether the API server refused a status write for good: too large for etcd, too large a
/// request, or invalid. Retrying the same write cannot succeed.
fn is_refusal(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => {
            matches!(status.code, 400 | 413 | 422)
                || (status.code == 500 && status.message.contains("request is too large"))
        }
        _ => false,
    }
}
