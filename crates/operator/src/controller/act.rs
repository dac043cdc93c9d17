//! Carrying out a decision: the restart patches (a JSON merge patch of two pod-template
//! annotations), the status write (server-side apply of the whole status under one field
//! manager), Kubernetes Events with names that always fit, and one structured log line per
//! lifecycle step. Every write asks its [`WriteGate`] right before it is sent, so a replica
//! that stopped leading mid-pass sends nothing more.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use thiserror::Error;
use tracing::{info, warn};

use servicerefresh_core::crd::{
    Phase, RESTARTED_AT_ANNOTATION, RESTARTED_BY_ANNOTATION, ServiceRefresh, ServiceRefreshPlan,
    ServiceRefreshStatus, ServiceResult,
};
use servicerefresh_core::engine::DeploymentSnapshot;
use servicerefresh_core::engine::Plan;
use servicerefresh_core::engine::{
    Decision, EventNote, EventSeverity, ObjectKey, Restart, RestartOutcome, Transition,
    record_restart_outcomes,
};
use servicerefresh_core::policy::forbidden_writes::RefusedRequest;
use servicerefresh_core::policy::leadership::{Leadership, Refused, Term};
use servicerefresh_core::policy::patch_memo::PatchMemo;
use servicerefresh_core::policy::plan_memo::PlanMemo;
use servicerefresh_core::policy::status_memo::StatusMemo;

use super::forbidden;

/// Asked right before each write of a pass: may this replica still send it?
pub trait WriteGate: Sync {
    fn check(&self) -> Result<(), Refused>;
}

/// Every write may go (no leader election, or a test).
pub struct Ungated;

impl WriteGate for Ungated {
    fn check(&self) -> Result<(), Refused> {
        Ok(())
    }
}

/// Writes may go while this replica still leads in the term the pass started in.
pub struct TermGate<'a> {
    pub leadership: &'a Leadership,
    pub term: Term,
}

impl WriteGate for TermGate<'_> {
    fn check(&self) -> Result<(), Refused> {
        self.leadership.permit_term(self.term, Instant::now())
    }
}

/// Why a decision was not carried out to the end.
#[derive(Debug, Error)]
pub enum ApplyError {
    /// The replica stopped leading; what was not sent yet is left to the next leader.
    #[error("stopped before the next write")]
    Fenced(#[source] Refused),
    #[error("writing the status failed")]
    Status(#[source] kube::Error),
    #[error("writing the run's plan object {name} failed")]
    Plan {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// The one field manager every status write and restart patch is made under.
pub const FIELD_MANAGER: &str = "servicerefresh";

/// How many restart patches of one batch are in flight at once.
const PATCH_CONCURRENCY: usize = 16;

/// Longest object name the API server accepts (a DNS subdomain).
const MAX_NAME_LENGTH: usize = 253;

/// The restart patch: only the two pod-template annotations, as a JSON merge patch.
pub fn restart_patch(restart: &Restart) -> serde_json::Value {
    let mut patch = json!({
        "spec": {"template": {"metadata": {"annotations": {
            RESTARTED_AT_ANNOTATION: restart.restarted_at,
            RESTARTED_BY_ANNOTATION: restart.restarted_by,
        }}}}
    });
    patch["metadata"] = json!({"annotations": {&restart.record_annotation: restart.restarted_by}});
    if let Some(version) = &restart.resource_version {
        // A resourceVersion in a patch is a precondition: the API server answers 409 when
        // the object changed since.
        patch["metadata"]["resourceVersion"] = json!(version);
    }
    patch
}

/// Sends the restart patches, a few at a time, and reports each outcome; each patch asks the
/// gate first, and once one is refused no further patch is sent. Once the API server forbids
/// one (403), no further patch is sent either: each would be refused the same way. Patches
/// not sent have no outcome. Every accepted patch is remembered in `patches` at once, so a
/// later failure of this pass cannot hide it.
pub async fn send_restarts(
    client: &Client,
    restarts: &[Restart],
    gate: &dyn WriteGate,
    patches: &PatchMemo,
) -> Result<Vec<(ObjectKey, RestartOutcome)>, Refused> {
    let forbidden = AtomicBool::new(false);
    let forbidden = &forbidden;
    let outcomes: Vec<Result<Option<(ObjectKey, RestartOutcome)>, Refused>> =
        futures::stream::iter(restarts.iter().cloned())
            .map(|restart| {
                let client = client.clone();
                async move {
                    gate.check()?;
                    if forbidden.load(Ordering::Relaxed) {
                        return Ok(None);
                    }
                    let kind = restart.deployment.kind;
                    // Parsed straight into the lean snapshot, whatever the kind.
                    let api: Api<DeploymentSnapshot> =
                        Api::namespaced_with(client, &restart.deployment.namespace, &kind);
                    let params = PatchParams {
                        field_manager: Some(FIELD_MANAGER.into()),
                        ..Default::default()
                    };
                    let result = api
                        .patch(
                            &restart.deployment.name,
                            &params,
                            &Patch::Merge(restart_patch(&restart)),
                        )
                        .await;
                    let result = result.map(|patched| DeploymentSnapshot { kind, ..patched });
                    if let Ok(patched) = &result {
                        patches.remember(
                            restart.deployment.clone(),
                            restart.resource_version.as_deref(),
                            patched.clone(),
                        );
                    }
                    let outcome = classify_patch_result(result);
                    match &outcome {
                        RestartOutcome::Patched { generation } => {
                            info!(kind = %kind, deployment = %restart.deployment, run = %restart.restarted_by, generation, "restarted");
                        }
                        RestartOutcome::Rejected(message) => {
                            warn!(kind = %kind, deployment = %restart.deployment, run = %restart.restarted_by, error = %message, "restart refused by the API server");
                        }
                        RestartOutcome::Transient(message) => {
                            info!(kind = %kind, deployment = %restart.deployment, run = %restart.restarted_by, error = %message, "restart failed; it is retried");
                        }
                        // Logged once per pass by the reconcile, with the refused permission.
                        RestartOutcome::Forbidden(_) => forbidden.store(true, Ordering::Relaxed),
                        RestartOutcome::NotFound => {}
                    }
                    Ok(Some((restart.deployment, outcome)))
                }
            })
            .buffered(PATCH_CONCURRENCY)
            .collect()
            .await;
    let outcomes: Vec<Option<(ObjectKey, RestartOutcome)>> =
        outcomes.into_iter().collect::<Result<_, _>>()?;
    Ok(outcomes.into_iter().flatten().collect())
}

/// Maps a patch response to what it means for the run.
pub fn classify_patch_result(result: Result<DeploymentSnapshot, kube::Error>) -> RestartOutcome {
    match result {
        Ok(workload) => RestartOutcome::Patched { generation: workload.generation() },
        Err(kube::Error::Api(status)) => match status.code {
            404 => RestartOutcome::NotFound,
            403 => RestartOutcome::Forbidden(status.message.clone()),
            400 | 422 => RestartOutcome::Rejected(status.message.clone()),
            409 => RestartOutcome::Transient(format!(
                "the workload changed since the operator last saw it; deciding again ({})",
                status.message
            )),
            _ => RestartOutcome::Transient(format!("{} ({})", status.message, status.code)),
        },
        Err(other) => RestartOutcome::Transient(other.to_string()),
    }
}

/// The server-side apply body for the status subresource. It never names `status.jobs`:
/// that field belongs to the admin job API's field manager, and a field an apply body leaves
/// out is neither taken over nor removed by it, so the two writers never undo each other.
///
/// An optional record that ended is sent as `null`: an apply that merely leaves out an object
/// it wrote before removes only the fields it owned and leaves an empty object behind
/// (structured-merge-diff preserves emptied containers), which its required fields refuse.
/// Every object `previous` (the status as observed) holds and `status` no longer does is
/// nulled, at any depth outside lists; the records that come and go often (`waiting`,
/// `triggers.settling`, `triggers.storm`) always are, in case the observed status is stale.
pub fn status_apply_body(
    status: &ServiceRefreshStatus,
    previous: Option<&ServiceRefreshStatus>,
) -> serde_json::Value {
    let mut body = json!({
        "apiVersion": "gisops.io/v1alpha1",
        "kind": "ServiceRefresh",
        "status": status,
    });
    if let Some(status) = body.get_mut("status").and_then(serde_json::Value::as_object_mut) {
        status.remove("jobs");
        // A record that ended is applied as null: leaving it out would leave an emptied `{}`
        // behind on the API server (an emptied struct is kept, not removed). An empty
        // `waiting` read back still means no wait, so either shape is safe.
        status.entry("waiting").or_insert(serde_json::Value::Null);
        if let Some(triggers) =
            status.get_mut("triggers").and_then(serde_json::Value::as_object_mut)
        {
            triggers.entry("settling").or_insert(serde_json::Value::Null);
            triggers.entry("storm").or_insert(serde_json::Value::Null);
        }
    }
    if let (Some(previous), Some(applied)) =
        (previous.and_then(|previous| serde_json::to_value(previous).ok()), body.get_mut("status"))
    {
        null_ended_objects(&previous, applied);
    }
    body
}

/// Sets to null every object `previous` holds under a key `applied` lacks, recursing through
/// the objects both hold (lists are applied whole, so they need nothing).
fn null_ended_objects(previous: &serde_json::Value, applied: &mut serde_json::Value) {
    let (Some(previous), Some(applied)) = (previous.as_object(), applied.as_object_mut()) else {
        return;
    };
    for (key, before) in previous {
        if !before.is_object() || key == "jobs" {
            continue;
        }
        match applied.get_mut(key) {
            None => {
                applied.insert(key.clone(), serde_json::Value::Null);
            }
            Some(now) => null_ended_objects(before, now),
        }
    }
}

/// What became of a status write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusWrite {
    /// The status equals the observed one; nothing was sent.
    Unchanged,
    Written,
    /// The resource was deleted meanwhile; there is nothing left to write to.
    ResourceGone,
}

/// A decision carried out against the API.
#[derive(Debug)]
pub struct Applied {
    /// The decision, its status and transitions completed with the outcomes written at once.
    /// `status_write` tells what became of the last status write of the pass.
    pub decision: Decision,
    pub status_write: StatusWrite,
    /// Messages of restart patches that failed transiently and will be retried.
    pub transient_failures: Vec<String>,
    /// When the last restart patch was answered, if the pass sent any.
    pub restarts_sent_at: Option<Instant>,
    /// The request the API server forbade in this pass, if any, and its message.
    pub forbidden: Option<(RefusedRequest, String)>,
    /// A plan object or a restart patch of this pass went through: a refusal recorded
    /// earlier is over.
    pub writes_allowed: bool,
}

/// What this process remembers of its own writes until the caches show them.
#[derive(Clone, Copy)]
pub struct WriteMemos<'a> {
    pub status: &'a StatusMemo,
    pub patches: &'a PatchMemo,
    pub plans: &'a PlanMemo,
}

/// Carries out a decision in the order that keeps every restart on record before it is
/// sent: the plan objects of a run just planned, then the status (when it changed), so a
/// batch's start and its decided restarts are persisted; then the restart patches. Their
/// outcomes ride along with the next status write: a patch that went through is adopted
/// from the run mark it left on the Deployment by the next pass, and only an outcome that
/// ends a service (NotFound, Rejected) is written at once. A crash or a failed write
/// anywhere leaves the API server with a status that names every restart that may have
/// happened, and the next pass repeats byte-identical patches (or adopts them).
/// Events and logs are left to the caller, which publishes them only once the status is
/// written.
pub async fn apply_decision(
    client: &Client,
    observed: &ServiceRefresh,
    decision: Decision,
) -> Result<Applied, ApplyError> {
    let memos = WriteMemos {
        status: &StatusMemo::default(),
        patches: &PatchMemo::default(),
        plans: &PlanMemo::default(),
    };
    apply_decision_gated(client, observed, decision, &Ungated, memos).await
}

/// [`apply_decision`], asking `gate` before every write and remembering every accepted
/// write in `memos` at once, so a later failure in the pass cannot hide it.
pub async fn apply_decision_gated(
    client: &Client,
    observed: &ServiceRefresh,
    mut decision: Decision,
    gate: &dyn WriteGate,
    memos: WriteMemos<'_>,
) -> Result<Applied, ApplyError> {
    let mut on_record = observed.status.clone();
    let mut status_write = StatusWrite::Unchanged;
    if on_record.as_ref() != Some(&decision.status) {
        write_plans(client, observed, &decision, gate, memos.plans).await?;
        status_write =
            write_remembered(client, observed, &on_record, &decision.status, gate, memos).await?;

        if status_write == StatusWrite::ResourceGone {
            return Ok(Applied {
                decision,
                status_write,
                transient_failures: Vec::new(),
                restarts_sent_at: None,
                forbidden: None,
                writes_allowed: false,
            });
        }
        on_record = Some(decision.status.clone());
    }
    let outcomes = send_restarts(client, &decision.restarts, gate, memos.patches)
        .await
        .map_err(ApplyError::Fenced)?;
    let restarts_sent_at = (!outcomes.is_empty()).then(Instant::now);
    let forbidden = forbidden::refused_restart(&outcomes);
    let writes_allowed = !decision.plan_objects.is_empty()
        || outcomes.iter().any(|(_, outcome)| matches!(outcome, RestartOutcome::Patched { .. }));
    let namespace = observed.namespace().unwrap_or_default();
    let finished = record_restart_outcomes(&mut decision.status, &outcomes, &namespace);
    decision.transitions.extend(finished);
    let transient_failures = outcomes
        .into_iter()
        .filter_map(|(_, outcome)| match outcome {
            RestartOutcome::Transient(message) => Some(message),
            _ => None,
        })
        .collect();
    if on_record.as_ref() != Some(&decision.status) {
        status_write =
            write_remembered(client, observed, &on_record, &decision.status, gate, memos).await?;
    }
    Ok(Applied {
        decision,
        status_write,
        transient_failures,
        restarts_sent_at,
        forbidden,
        writes_allowed,
    })
}

/// Writes the plan objects of a run just planned (server-side apply: created, or replaced
/// when an earlier attempt left them), each asked of the gate first, and remembers the plan.
async fn write_plans(
    client: &Client,
    observed: &ServiceRefresh,
    decision: &Decision,
    gate: &dyn WriteGate,
    plans: &PlanMemo,
) -> Result<(), ApplyError> {
    if decision.plan_objects.is_empty() {
        return Ok(());
    }
    let namespace = observed.namespace().unwrap_or_default();
    let api: Api<ServiceRefreshPlan> = Api::namespaced(client.clone(), &namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for object in &decision.plan_objects {
        gate.check().map_err(ApplyError::Fenced)?;
        let name = object.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(object))
            .await
            .map_err(|source| ApplyError::Plan { name: name.clone(), source })?;
    }
    let reference = decision.status.run.as_ref().and_then(|run| run.plan.as_ref());
    if let (Some(reference), Some(uid)) = (reference, observed.metadata.uid.as_deref())
        && let Ok(plan) = Plan::from_objects(reference, &decision.plan_objects)
    {
        plans.remember(uid, plan);
    }
    Ok(())
}

/// One status write, asked of the gate first and remembered once accepted.
async fn write_remembered(
    client: &Client,
    observed: &ServiceRefresh,
    replaced: &Option<ServiceRefreshStatus>,
    status: &ServiceRefreshStatus,
    gate: &dyn WriteGate,
    memos: WriteMemos<'_>,
) -> Result<StatusWrite, ApplyError> {
    gate.check().map_err(ApplyError::Fenced)?;
    let written = write_status(client, observed, status).await.map_err(ApplyError::Status)?;
    if written == StatusWrite::Written {
        memos.status.remember(observed, replaced.clone(), status.clone());
    }
    Ok(written)
}

pub async fn write_status(
    client: &Client,
    refresh: &ServiceRefresh,
    status: &ServiceRefreshStatus,
) -> Result<StatusWrite, kube::Error> {
    let namespace = refresh.namespace().unwrap_or_default();
    let api: Api<ServiceRefresh> = Api::namespaced(client.clone(), &namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api
        .patch_status(
            &refresh.name_any(),
            &params,
            &Patch::Apply(status_apply_body(status, refresh.status.as_ref())),
        )
        .await
    {
        Ok(_) => Ok(StatusWrite::Written),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(StatusWrite::ResourceGone),
        Err(error) => Err(error),
    }
}

/// An Event name for `object` that the API server accepts however long the object's name
/// is: the name cut to leave room for the unique suffix, without a trailing '-' or '.'.
pub fn event_name(object: &str, now: Timestamp) -> String {
    let suffix = format!(".{:x}", now.as_nanosecond());
    let room = MAX_NAME_LENGTH - suffix.len();
    let mut stem: String = object.chars().take(room).collect();
    while stem.ends_with(['-', '.']) {
        stem.pop();
    }
    format!("{stem}{suffix}")
}

/// Records the Events of a pass. Events are best effort: losing one must not fail or repeat
/// the pass. Each is created fresh, never folded into a series, because the engine emits each
/// transition once and "batch 2 started" must not hide behind "batch 1 started". `instance`
/// is this replica's identity; a refused gate drops the Events not yet sent.
pub async fn publish_events(
    client: &Client,
    refresh: &ServiceRefresh,
    notes: &[EventNote],
    instance: &str,
    gate: &dyn WriteGate,
) {
    let namespace = refresh.namespace().unwrap_or_default();
    let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let regarding = refresh.object_ref(&());
    for note in notes {
        let now = Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(event_name(&refresh.name_any(), now)),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            action: Some("Refresh".to_owned()),
            reason: Some(note.reason.as_str().to_owned()),
            note: Some(note.message.chars().take(1000).collect()),
            type_: Some(
                match note.severity {
                    EventSeverity::Normal => "Normal",
                    EventSeverity::Warning => "Warning",
                }
                .to_owned(),
            ),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(format!("gisops.io/{FIELD_MANAGER}")),
            reporting_instance: Some(instance.to_owned()),
            ..Event::default()
        };
        if let Err(refused) = gate.check() {
            info!(reason = %note.reason, servicerefresh = %format!("{namespace}/{}", refresh.name_any()), error = %refused, "event not recorded: this replica stopped leading");
            return;
        }
        if let Err(error) = events.create(&PostParams::default(), &event).await {
            warn!(%error, reason = %note.reason, servicerefresh = %format!("{namespace}/{}", refresh.name_any()), "could not record event");
        }
    }
}

/// One structured log line per lifecycle step; per-service lines only for failures, which a
/// person needs, not for the thousands of services that went fine. No field is called
/// `message`: in JSON lines that is the line's own text.
pub fn log_transition(refresh: &str, transition: &Transition) {
    match transition {
        Transition::RunStarted { run, reason, services, batches, dry_run, trigger, .. } => {
            info!(
                servicerefresh = refresh,
                run, reason, services, batches, dry_run, trigger, "run started"
            );
        }
        Transition::BatchStarted { run, batch, batches, services } => {
            info!(servicerefresh = refresh, run, batch, batches, services, "batch started");
        }
        Transition::BatchCompleted { run, batch, batches, ready, failed, skipped, seconds } => {
            info!(
                servicerefresh = refresh,
                run, batch, batches, ready, failed, skipped, seconds, "batch finished"
            );
        }
        Transition::ServiceFinished { run, batch, deployment, result, message } => {
            if result.is_failure() {
                warn!(servicerefresh = refresh, run, batch, deployment = %deployment, result = ?result, reason = message.as_deref().unwrap_or_default(), "service failed");
            } else if *result == ServiceResult::Skipped {
                tracing::debug!(servicerefresh = refresh, run, batch, deployment = %deployment, reason = message.as_deref().unwrap_or_default(), "service skipped");
            }
        }
        Transition::RunFinished { run, phase, totals, message, seconds, .. } => {
            let fields = (totals.services, totals.ready, totals.failed, totals.skipped);
            if *phase == Phase::Succeeded {
                info!(servicerefresh = refresh, run, phase = ?phase, services = fields.0, ready = fields.1, failed = fields.2, skipped = fields.3, seconds, summary = message, "run finished");
            } else {
                warn!(servicerefresh = refresh, run, phase = ?phase, services = fields.0, ready = fields.1, failed = fields.2, skipped = fields.3, seconds, summary = message, "run finished");
            }
        }
        Transition::Waiting { run, reason, message } => {
            info!(servicerefresh = refresh, run, reason = %reason, waiting_for = message, "waiting");
        }
        Transition::Notice(note) => match note.severity {
            EventSeverity::Normal => {
                info!(servicerefresh = refresh, reason = %note.reason, note = %note.message, "notice")
            }
            EventSeverity::Warning => {
                warn!(servicerefresh = refresh, reason = %note.reason, note = %note.message, "notice")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_apply_body_never_names_the_admin_job_ledger() {
        let status: ServiceRefreshStatus = serde_json::from_value(json!({
            "phase": "Running",
            "jobs": [{"id": "j018bcfe568007abc8bccddeeff001122", "username": "alice",
                      "submitTime": "2023-11-14T22:13:20.000000Z"}],
        }))
        .expect("status");
        let body = status_apply_body(&status, None);
        assert_eq!(body["status"]["phase"], "Running");
        assert!(body["status"].get("jobs").is_none(), "{body}");
        assert_eq!(status.jobs.len(), 1, "the status itself keeps it");
    }

    #[test]
    fn records_that_ended_are_applied_as_null_so_no_empty_object_stays() {
        let body = status_apply_body(&ServiceRefreshStatus::default(), None);
        assert_eq!(body["status"]["waiting"], serde_json::Value::Null);
        assert!(body["status"].as_object().is_some_and(|status| status.contains_key("waiting")));
        let triggers = body["status"]["triggers"].as_object().expect("triggers");
        assert!(triggers.contains_key("settling") && triggers.contains_key("storm"), "{body}");
        let waiting: ServiceRefreshStatus = serde_json::from_value(json!({
            "waiting": {"reason": "OutsideWindow", "message": "m", "since": "2026-11-26T18:40:02Z"},
        }))
        .expect("status");
        assert_eq!(
            status_apply_body(&waiting, None)["status"]["waiting"]["reason"],
            "OutsideWindow"
        );
    }

    #[test]
    fn any_object_the_observed_status_held_and_the_new_one_drops_is_applied_as_null() {
        let previous: ServiceRefreshStatus = serde_json::from_value(json!({
            "run": {"id": "arcgis/r/1-0", "number": 1, "reason": "Created", "nextPosition": 4,
                    "pacing": {"effectiveBatchSize": 2, "capacityBlocked": true}},
            "earlierBatches": {"batches": 3, "ready": 30, "failed": 0, "skipped": 0},
        }))
        .expect("previous");
        let mut status = previous.clone();
        status.run.as_mut().expect("run").pacing = None;
        status.earlier_batches = None;
        let body = status_apply_body(&status, Some(&previous));
        let run = body["status"]["run"].as_object().expect("run");
        assert_eq!(run.get("pacing"), Some(&serde_json::Value::Null), "{body}");
        assert_eq!(body["status"].get("earlierBatches"), Some(&serde_json::Value::Null));
        assert_eq!(body["status"]["run"]["id"], "arcgis/r/1-0", "what stays is applied as is");
        // What the observed status never held is left out, not nulled.
        assert!(body["status"].get("history").is_none_or(serde_json::Value::is_array));
    }

    #[test]
    fn event_names_always_fit_and_stay_valid() {
        let now = Timestamp::from_second(1_800_000_000).expect("time");
        let short = event_name("refresh", now);
        assert!(short.starts_with("refresh."));
        for length in [200, 236, 240, 253] {
            for filler in ['a', '-'] {
                let name = format!(
                    "{}{}",
                    "r".repeat(length - 1 - 100),
                    filler.to_string().repeat(101).chars().take(101).collect::<String>()
                );
                let name: String = name.chars().take(length).collect();
                let event = event_name(&name, now);
                assert!(event.len() <= MAX_NAME_LENGTH, "{length}: {}", event.len());
                let stem = event.rsplit_once('.').map(|(stem, _)| stem).unwrap_or_default();
                assert!(!stem.ends_with(['-', '.']), "{event}");
            }
        }
    }
}
