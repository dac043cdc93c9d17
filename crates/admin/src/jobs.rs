//! The job view of a ServiceRefresh: which jobs exist, their ArcGIS status, times and
//! per-batch, per-service results, computed from the object alone (its annotations, its
//! status and the admin ledger in `status.jobs`), so it is a pure function of the cached
//! object.
//!
//! A job is a run request submitted through this API: an entry of the ledger, whose id the
//! API wrote to `gisops.io/run-requested-at`. A request value that is no ledger job (the
//! CLI's, `kubectl annotate`'s) starts a run but is no job here. A job is
//! - SUBMITTED while the annotation holds it and no run has handled it yet (the run waits
//!   for a run slot, or for the run in progress to end);
//! - EXECUTING while the run that recorded it in `status.run.request` is active, and
//!   CANCELLING once a cancel is requested for that run (`gisops.io/cancel-requested-at`
//!   set, or `status.run.cancelRequest` recorded);
//! - COMPLETED, FAILED or CANCELLED when that run ended Succeeded, Failed or Cancelled
//!   (from `status.run` while it is the latest run, then from `status.history[].request`);
//! - CANCELLED also when it was withdrawn before it started (recorded in the ledger).
//!
//! The job JSON follows ArcGIS Enterprise's admin job resource (`jobid`, `status`,
//! `starttime`, `endtime` (0 until the end), `updatedtime` in epoch milliseconds,
//! `operationURI`, `username`, `result`, `messages`): see
//! <https://developers.arcgis.com/rest/enterprise-administration/enterprise/job/>. Its
//! `messages` use the `{type, description}` shape of ArcGIS job messages.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use serde::Serialize;

use super::config::TargetRef;
use super::ledger::{Ledger, submitted_at};
use servicerefresh_core::crd::{
    BatchPhase, CANCEL_REQUESTED_AT_ANNOTATION, Phase, RUN_REQUESTED_AT_ANNOTATION, RunStatus,
    RunSummary, ServiceRefresh, ServiceRefreshStatus, ServiceResult, Totals, WorkloadKind,
};
use servicerefresh_core::engine::Plan;
use servicerefresh_core::engine::conditions::{self, RECONCILING, STALLED};
use servicerefresh_core::engine::schedule::Schedule;
use servicerefresh_core::engine::view::{self as core_view, RunView};

/// The operation that submits jobs, below the context root.
pub const OPERATION: &str = "/services/refreshAllServices";

/// Stalled reasons that describe how the last run ended, not a spec that blocks the next.
const RUN_OUTCOME_REASONS: [&str; 3] = ["RunFailed", "NothingSelected", "Cancelled"];

/// Status of a job, as ArcGIS names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Submitted,
    Executing,
    Cancelling,
    Cancelled,
    Failed,
    Completed,
}

impl JobStatus {
    /// The status as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "SUBMITTED",
            Self::Executing => "EXECUTING",
            Self::Cancelling => "CANCELLING",
            Self::Cancelled => "CANCELLED",
            Self::Failed => "FAILED",
            Self::Completed => "COMPLETED",
        }
    }

    /// Whether the job has ended and will not change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Cancelled | Self::Failed | Self::Completed)
    }
}

/// Where the job API is and what it runs, for the job JSON.
#[derive(Clone, Debug)]
pub struct JobContext {
    pub target: TargetRef,
    /// The context root (empty for the server's root).
    pub context_root: String,
}

impl JobContext {
    /// `operationURI`: the submitting operation's path, as ArcGIS writes it.
    pub fn operation_uri(&self) -> String {
        format!("{}{OPERATION}", self.context_root)
    }
}

/// One message of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobMessage {
    #[serde(rename = "type")]
    pub kind: MessageKind,
    pub description: String,
}

/// Kinds of job messages, named as ArcGIS job messages name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum MessageKind {
    #[serde(rename = "esriJobMessageTypeInformative")]
    Informative,
    #[serde(rename = "esriJobMessageTypeWarning")]
    Warning,
    #[serde(rename = "esriJobMessageTypeError")]
    Error,
}

impl MessageKind {
    /// A short word for pages and CSS classes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Informative => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

fn message(kind: MessageKind, description: impl Into<String>) -> JobMessage {
    JobMessage { kind, description: description.into() }
}

/// A job as the API returns it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Job {
    pub jobid: String,
    pub status: JobStatus,
    pub starttime: i64,
    pub endtime: i64,
    pub updatedtime: i64,
    #[serde(rename = "operationURI")]
    pub operation_uri: String,
    /// Who submitted the job, when it was submitted through this API.
    pub username: Option<String>,
    /// The run's results: present once a run serves the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<JobResult>,
    pub messages: Vec<JobMessage>,
}

/// What the run serving a job did.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobResult {
    /// The ServiceRefresh, `NAMESPACE/NAME`.
    pub service_refresh: String,
    pub run: RunInfo,
    /// The run's message: why it started, then how it ended.
    pub summary: Option<String>,
    pub totals: Totals,
    pub progress: Progress,
    /// The plan, batch by batch. Kept for the latest run only: empty for older jobs.
    pub batches: Vec<BatchResult>,
    /// The services that Failed, TimedOut or are Gone.
    pub failures: Vec<ServiceView>,
}

/// Identity of the run serving a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    pub id: String,
    pub number: u64,
    pub reason: String,
    pub dry_run: bool,
}

/// Services with a result out of all planned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub done: u32,
    pub total: u32,
}

impl Progress {
    /// Percent done, for progress bars.
    pub fn percent(&self) -> u32 {
        (self.done * 100).checked_div(self.total).unwrap_or(0)
    }
}

/// One batch of the plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchResult {
    pub index: u32,
    /// PENDING, EXECUTING or COMPLETED (a completed batch may hold failures: see `failed`).
    pub status: &'static str,
    pub starttime: i64,
    pub endtime: i64,
    /// Its services that Failed, TimedOut or are Gone.
    pub failed: u32,
    pub services: Vec<ServiceView>,
}

impl BatchResult {
    /// The status for people: a completed batch with failures says so.
    pub fn label(&self) -> &'static str {
        match (self.status, self.failed) {
            ("COMPLETED", 1..) => "COMPLETED WITH FAILURES",
            (status, _) => status,
        }
    }
}

/// One Deployment of the plan and its result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceView {
    /// Deployment, StatefulSet or DaemonSet.
    pub kind: WorkloadKind,
    pub name: String,
    pub namespace: String,
    /// Ready, Failed, TimedOut, Gone or Skipped; null while it waits or rolls out.
    pub result: Option<ServiceResult>,
    /// Why it is not Ready, or what it waits for.
    pub message: Option<String>,
}

impl ServiceView {
    /// `StatefulSet ` or `DaemonSet ` before the name; nothing for a Deployment.
    pub fn kind_prefix(&self) -> String {
        if self.kind.is_deployment() { String::new() } else { format!("{} ", self.kind) }
    }

    /// The result as text, `Pending` while there is none.
    pub fn result_text(&self) -> String {
        self.result.map_or_else(|| "Pending".to_owned(), |result| format!("{result:?}"))
    }

    /// Whether the result counts as a failure.
    pub fn failed(&self) -> bool {
        self.result.is_some_and(ServiceResult::is_failure)
    }
}

fn annotation<'r>(refresh: &'r ServiceRefresh, key: &str) -> Option<&'r str> {
    refresh.metadata.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The run request no run has handled yet, if any: the pending job.
pub fn pending_request(refresh: &ServiceRefresh) -> Option<&str> {
    let value = annotation(refresh, RUN_REQUESTED_AT_ANNOTATION)?;
    let handled =
        refresh.status.as_ref().and_then(|status| status.triggers.run_requested_at.as_deref());
    (handled != Some(value)).then_some(value)
}

/// Whether a cancel request is written that the operator has not taken up yet.
pub fn cancel_pending(refresh: &ServiceRefresh) -> bool {
    let Some(value) = annotation(refresh, CANCEL_REQUESTED_AT_ANNOTATION) else {
        return false;
    };
    let handled =
        refresh.status.as_ref().and_then(|status| status.triggers.cancel_requested_at.as_deref());
    handled != Some(value)
}

fn millis(time: Option<&Time>) -> i64 {
    time.map_or(0, |time| time.0.as_millisecond())
}

fn micro_millis(time: Option<&MicroTime>) -> i64 {
    time.map_or(0, |time| time.0.as_millisecond())
}

/// How many of `services` failed, timed out or are gone.
fn failed_in(services: &[core_view::ServiceView]) -> u32 {
    services.iter().filter(|service| service.result.is_some_and(ServiceResult::is_failure)).count()
        as u32
}

fn own_namespace(refresh: &ServiceRefresh) -> String {
    refresh.metadata.namespace.clone().unwrap_or_default()
}

/// The job `id` of `refresh`, or `None` when the ledger does not hold it, or when no
/// pending request, run, history entry or withdrawal knows it (any more). `plan` names the
/// services of the latest run.
pub fn find(
    refresh: &ServiceRefresh,
    plan: Option<&Plan>,
    id: &str,
    context: &JobContext,
) -> Option<Job> {
    let empty = ServiceRefreshStatus::default();
    let status = refresh.status.as_ref().unwrap_or(&empty);
    let ledger = Ledger::of(refresh);
    let entry = ledger.get(id)?;
    let submitted = submitted_at(id).unwrap_or_else(|| entry.submit_time.0.as_millisecond());
    let mut job = Job {
        jobid: id.to_owned(),
        status: JobStatus::Submitted,
        starttime: submitted,
        endtime: 0,
        updatedtime: submitted,
        operation_uri: context.operation_uri(),
        username: Some(entry.username.clone()).filter(|name| !name.is_empty()),
        result: None,
        messages: Vec::new(),
    };
    if let Some(run) = status.run.as_ref().filter(|run| run.request.as_deref() == Some(id)) {
        current_run_job(&mut job, refresh, plan, status, run, context);
    } else if let Some(summary) =
        status.history.iter().find(|summary| summary.request.as_deref() == Some(id))
    {
        history_job(&mut job, summary, context);
    } else if pending_request(refresh) == Some(id) {
        pending_job(&mut job, status, context);
    } else if let Some(withdrawn) = entry.withdraw_time.as_ref().map(|at| at.0.as_millisecond()) {
        job.status = JobStatus::Cancelled;
        job.endtime = withdrawn;
        job.updatedtime = withdrawn.max(submitted);
        job.messages.push(message(
            MessageKind::Informative,
            "Cancelled before it started: the run request was withdrawn, so no run served it.",
        ));
    } else {
        return None;
    }
    Some(job)
}

fn ended_status(phase: Phase) -> JobStatus {
    match phase {
        Phase::Succeeded => JobStatus::Completed,
        Phase::Cancelled => JobStatus::Cancelled,
        _ => JobStatus::Failed,
    }
}

fn run_info(run_id: &str, number: u64, reason: &str, dry_run: bool) -> RunInfo {
    RunInfo { id: run_id.to_owned(), number, reason: reason.to_owned(), dry_run }
}

fn current_run_job(
    job: &mut Job,
    refresh: &ServiceRefresh,
    plan: Option<&Plan>,
    status: &ServiceRefreshStatus,
    run: &RunStatus,
    context: &JobContext,
) {
    let active = run.end_time.is_none();
    job.status = current_run_status(refresh, status, run);
    let start = millis(run.start_time.as_ref());
    if start != 0 {
        job.starttime = start;
    }
    job.endtime = millis(run.end_time.as_ref());
    let own = own_namespace(refresh);
    let view = RunView::new(status, plan, &own);
    let batches = run_batches(&view, status, run);
    job.updatedtime = status
        .batches
        .iter()
        .flat_map(|batch| [&batch.start_time, &batch.end_time, &batch.message_time])
        .map(|time| micro_millis(time.as_ref()))
        .chain([job.updatedtime, job.starttime, job.endtime])
        .max()
        .unwrap_or(0);
    let progress = Progress {
        done: status.totals.ready + status.totals.failed + status.totals.skipped,
        total: status.totals.services,
    };
    let failures: Vec<ServiceView> = view.failures().into_iter().map(service_view).collect();
    let facts = RunFacts { status, run, active, batches: batches.len(), total: progress.total };
    current_run_messages(job, &facts, &failures, context);
    job.result = Some(JobResult {
        service_refresh: context.target.to_string(),
        run: run_info(&run.id, run.number, &run.reason, run.dry_run),
        summary: run.message.clone(),
        totals: status.totals.clone(),
        progress,
        batches,
        failures,
    });
}

/// A job served by the latest run: executing or cancelling while it runs, then as it ended.
fn current_run_status(
    refresh: &ServiceRefresh,
    status: &ServiceRefreshStatus,
    run: &RunStatus,
) -> JobStatus {
    if run.end_time.is_none() {
        return if run.cancel_request.is_some() || cancel_pending(refresh) {
            JobStatus::Cancelling
        } else {
            JobStatus::Executing
        };
    }
    let phase = status
        .history
        .iter()
        .find(|summary| summary.id == run.id)
        .map(|summary| summary.phase)
        .or(status.phase)
        .unwrap_or(Phase::Failed);
    ended_status(phase)
}

fn service_view(service: &core_view::ServiceView) -> ServiceView {
    ServiceView {
        kind: service.key.kind,
        name: service.key.name.clone(),
        namespace: service.key.namespace.clone(),
        result: service.result,
        message: service.message.clone(),
    }
}

/// The run's batches in order: the folded earlier ones, those in the status, the batches still
/// to come as the next cut will make them, and the services skipped without a batch.
fn run_batches(view: &RunView, status: &ServiceRefreshStatus, run: &RunStatus) -> Vec<BatchResult> {
    let mut batches: Vec<BatchResult> = Vec::new();
    if let Some(earlier) = &status.earlier_batches {
        batches.push(BatchResult {
            index: earlier.batches,
            status: "COMPLETED",
            starttime: micro_millis(earlier.start_time.as_ref()),
            endtime: micro_millis(earlier.end_time.as_ref()),
            failed: failed_in(&view.earlier_services),
            services: view.earlier_services.iter().map(service_view).collect(),
        });
    }
    batches.extend(view.batches.iter().map(|batch| BatchResult {
        index: batch.index,
        status: match batch.phase {
            BatchPhase::Pending => "PENDING",
            BatchPhase::Running => "EXECUTING",
            BatchPhase::Completed => "COMPLETED",
        },
        starttime: batch.start_time.map_or(0, |time| time.as_millisecond()),
        endtime: batch.end_time.map_or(0, |time| time.as_millisecond()),
        failed: batch.counts.failed,
        services: batch.services.iter().map(service_view).collect(),
    }));
    // The batches to come, as the run's schedule will cut them (canary, slow start, pacing).
    let mut next = batches.last().map_or(0, |batch| batch.index) + 1;
    for (index, chunk) in Schedule::of_run(run).cut(&view.not_started, next) {
        batches.push(BatchResult {
            index,
            status: "PENDING",
            starttime: 0,
            endtime: 0,
            failed: 0,
            services: chunk.iter().map(service_view).collect(),
        });
        next = index + 1;
    }
    if !view.unbatched.is_empty() {
        // Skipped without a batch (excluded, cancelled before their batch, a dry run).
        batches.push(BatchResult {
            index: next,
            status: "SKIPPED",
            starttime: 0,
            endtime: 0,
            failed: 0,
            services: view.unbatched.iter().map(service_view).collect(),
        });
    }
    batches
}

/// What the messages of a job served by the latest run are worded from.
struct RunFacts<'a> {
    status: &'a ServiceRefreshStatus,
    run: &'a RunStatus,
    active: bool,
    batches: usize,
    total: u32,
}

/// The job's messages: what the run is, what holds it, each failure, and how it ended.
fn current_run_messages(
    job: &mut Job,
    facts: &RunFacts,
    failures: &[ServiceView],
    context: &JobContext,
) {
    let RunFacts { status, run, active, batches, total } = *facts;
    let job_status = job.status;
    let messages = &mut job.messages;
    messages.push(message(
        MessageKind::Informative,
        format!(
            "Run {} ({}) of ServiceRefresh {}: {total} Deployments in {batches} batches.",
            run.number, run.reason, context.target,
        ),
    ));
    if run.dry_run {
        messages.push(message(MessageKind::Informative, "Dry run: nothing is restarted."));
    }
    if active && status.phase == Some(Phase::Suspended) {
        messages.push(message(
            MessageKind::Warning,
            "spec.suspend holds the run before its next batch; it resumes when suspend is cleared.",
        ));
    }
    if job_status == JobStatus::Cancelling || (run.cancel_request.is_some() && !active) {
        messages.push(message(
            MessageKind::Warning,
            "Cancel requested: the batch in flight finishes, the later batches are skipped.",
        ));
    }
    for failure in failures {
        messages.push(message(
            MessageKind::Error,
            format!(
                "{}/{}: {}: {}",
                failure.namespace,
                failure.name,
                failure.result_text(),
                failure.message.as_deref().unwrap_or_default()
            ),
        ));
    }
    if !active && let Some(summary) = &run.message {
        let kind = if job_status == JobStatus::Failed {
            MessageKind::Error
        } else {
            MessageKind::Informative
        };
        messages.push(message(kind, summary.clone()));
    }
}

fn history_job(job: &mut Job, summary: &RunSummary, context: &JobContext) {
    job.status = ended_status(summary.phase);
    let start = millis(summary.start_time.as_ref());
    if start != 0 {
        job.starttime = start;
    }
    job.endtime = millis(summary.end_time.as_ref());
    job.updatedtime = job.updatedtime.max(job.starttime).max(job.endtime);
    let totals = summary.totals.clone();
    job.messages.push(message(
        MessageKind::Informative,
        format!(
            "Run {} ({}) of ServiceRefresh {}: {} Deployments. Per-service results are kept for \
             the latest run only.",
            summary.number, summary.reason, context.target, totals.services
        ),
    ));
    if let Some(text) = &summary.message {
        let kind = if job.status == JobStatus::Failed {
            MessageKind::Error
        } else {
            MessageKind::Informative
        };
        job.messages.push(message(kind, text.clone()));
    }
    let done = totals.ready + totals.failed + totals.skipped;
    job.result = Some(JobResult {
        service_refresh: context.target.to_string(),
        run: run_info(&summary.id, summary.number, &summary.reason, false),
        summary: summary.message.clone(),
        progress: Progress { done: done.min(totals.services), total: totals.services },
        totals,
        batches: Vec::new(),
        failures: Vec::new(),
    });
}

fn pending_job(job: &mut Job, status: &ServiceRefreshStatus, context: &JobContext) {
    let by = job.username.as_deref().map(|name| format!(" by {name}")).unwrap_or_default();
    job.messages.push(message(
        MessageKind::Informative,
        format!("Submitted{by}: a run of ServiceRefresh {} starts for this job.", context.target),
    ));
    if let Some(run) = status.run.as_ref().filter(|run| run.end_time.is_none()) {
        job.messages.push(message(
            MessageKind::Informative,
            format!("Run {} is in progress; this job's run starts when it ends.", run.number),
        ));
    }
    if let Some(queued) = conditions::find(&status.conditions, RECONCILING)
        .filter(|condition| condition.reason == "Queued" && condition.status == "True")
    {
        job.messages
            .push(message(MessageKind::Informative, format!("Queued: {}.", queued.message)));
    }
    if let Some(stalled) = conditions::find(&status.conditions, STALLED).filter(|condition| {
        condition.status == "True" && !RUN_OUTCOME_REASONS.contains(&condition.reason.as_str())
    }) {
        job.messages.push(message(
            MessageKind::Warning,
            format!(
                "The ServiceRefresh is stalled ({}): {}. The job starts once that is fixed.",
                stalled.reason, stalled.message
            ),
        ));
    }
}

/// Every job `refresh` knows, newest first: the ledger's jobs that are pending, served by
/// the latest run or one in the history, or withdrawn.
pub fn list(refresh: &ServiceRefresh, context: &JobContext) -> Vec<Job> {
    let ledger = Ledger::of(refresh);
    let mut jobs: Vec<Job> =
        ledger.ids().filter_map(|id| find(refresh, None, id, context)).collect();
    jobs.sort_by_key(|job| std::cmp::Reverse((job.starttime, job.updatedtime)));
    jobs
}

#[cfg(test)]
mod tests;
