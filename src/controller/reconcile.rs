//! One reconcile of a ServiceRefresh: observe (the cached resource with this process's own
//! latest write laid over it), admit (decide; when the engine wants a run slot, ask for one
//! and decide again), act (patches, then the status write, then Events and logs), and requeue.
//! When the engine needs its next step right after a status write, as after planning a run,
//! the next pass runs at once inside the same reconcile.

use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use thiserror::Error;
use tracing::warn;

use super::act::{self, StatusWrite};
use super::caches::CachedCluster;
use super::startup::Clients;
use crate::crd::{Phase, ServiceRefresh};
use crate::engine::{
    Decision, ObjectKey, Observation, OperatorScope, RunSlot, Transition, decide, run_active,
};
use crate::policy::admission::{CachedRefresh, RunSlots};
use crate::policy::awaiting::AwaitIndex;
use crate::policy::requeue::{self, Requeue};
use crate::policy::status_memo::StatusMemo;

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
    #[error("ServiceRefresh {0} has no namespace")]
    NotNamespaced(String),
}

/// Shared state of all reconciles.
pub struct Context {
    pub clients: Clients,
    pub cluster: CachedCluster,
    pub refreshes: Store<ServiceRefresh>,
    pub scope: OperatorScope,
    pub slots: RunSlots,
    pub memo: StatusMemo,
    pub awaiting: Arc<AwaitIndex>,
    /// Wakes queued ServiceRefreshes when a run frees its slot.
    pub wake_queued: UnboundedSender<ObjectRef<ServiceRefresh>>,
    pub retry_delay: Duration,
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
    let namespace =
        refresh.namespace().ok_or_else(|| ReconcileError::NotNamespaced(refresh.name_any()))?;
    let key = ObjectKey::new(namespace, refresh.name_any());
    if refresh.metadata.deletion_timestamp.is_some() {
        ctx.forget(&key, &refresh);
        return Ok(Action::await_change());
    }
    // Plans and readiness verdicts read the caches, so they must be complete first. The
    // controller drives the streams that fill them, so this resolves after the first list.
    let _ = ctx.cluster.deployments.wait_until_ready().await;
    let _ = ctx.cluster.config_maps.wait_until_ready().await;

    for _ in 0..MAX_PASSES_PER_RECONCILE {
        let observed = ctx.observe(&refresh);
        let decision = ctx.admit_and_decide(&key, &observed);
        let Some(outcome) = ctx.act(&key, &observed, decision).await? else {
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
    warn!(servicerefresh = %format!("{}/{}", refresh.namespace().unwrap_or_default(), refresh.name_any()), error = %error, cause = %error_chain(error), "reconcile failed; retrying");
    Action::requeue(ctx.retry_delay)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.join(": ")
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

    /// Decides without a run slot; when the engine wants one, asks admission and, if a slot
    /// is granted, decides again with it. The second pass happens only when a run is due.
    fn admit_and_decide(&self, key: &ObjectKey, observed: &ServiceRefresh) -> Decision {
        let cached = self.cached_refreshes();
        let mut observation = Observation {
            refresh: observed,
            cluster: &self.cluster,
            scope: &self.scope,
            run_slot: RunSlot::Busy { holders: self.slots.holders(key, &cached) },
            now: Timestamp::now(),
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

    /// Carries out a decision. Returns `None` when the resource turned out to be deleted.
    async fn act(
        &self,
        key: &ObjectKey,
        observed: &ServiceRefresh,
        decision: Decision,
    ) -> Result<Option<PassOutcome>, ReconcileError> {
        let was_active = observed.status.as_ref().is_some_and(run_active);
        let applied = act::apply_decision(&self.clients.requests, observed, decision)
            .await
            .map_err(|source| ReconcileError::StatusWrite { object: key.to_string(), source })?;
        match applied.status_write {
            StatusWrite::ResourceGone => {
                self.forget(key, observed);
                return Ok(None);
            }
            StatusWrite::Written => {
                self.memo.remember(
                    observed,
                    observed.status.clone(),
                    applied.decision.status.clone(),
                );
            }
            StatusWrite::Unchanged => {}
        }
        let Decision { status, transitions, wake_at, wants_run_slot, awaiting, .. } =
            applied.decision;
        let transient_failures = applied.transient_failures.len();

        let name = key.to_string();
        for transition in &transitions {
            act::log_transition(&name, transition);
        }
        let notes: Vec<_> = transitions.iter().filter_map(Transition::event).collect();
        act::publish_events(&self.clients.requests, observed, &notes).await;

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
        Ok(Some(PassOutcome { wake_at, transient_failures }))
    }

    fn forget(&self, key: &ObjectKey, refresh: &ServiceRefresh) {
        self.memo.forget(refresh);
        self.awaiting.set(key, &Default::default());
        for waiting in self.slots.release(key) {
            let _ = self
                .wake_queued
                .unbounded_send(ObjectRef::new(&waiting.name).within(&waiting.namespace));
        }
    }
}
