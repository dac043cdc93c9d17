//! The observed state of a ServiceRefresh: the current run and its plan with per-service
//! results, the kstatus conditions, trigger bookkeeping and a short history of past runs.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kinds::WorkloadKind;

/// Observed state of a ServiceRefresh: the current run, its plan with per-service results,
/// kstatus conditions, trigger bookkeeping and a short history of earlier runs.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRefreshStatus {
    /// Phase of the current run: Pending, Running, Succeeded, Failed, Suspended or Cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The current (or last) run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunStatus>,

    /// Counts over the current run's plan.
    #[serde(default)]
    pub totals: Totals,

    /// Services ready out of all planned, as `ready/total`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,

    /// Current batch out of all batches, as `current/total`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,

    /// The started batches of the current run, newest last: the one in flight with a row
    /// per service, the completed ones as counts. At most 100 are listed; earlier ones are
    /// summed up in `earlierBatches`. The services not started yet are in the run's plan
    /// (`kubectl get servicerefreshplans`), not here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<BatchStatus>,

    /// The completed batches no longer listed in `batches`, summed up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earlier_batches: Option<EarlierBatches>,

    /// Every service of the current run that did not end Ready, grouped by cause: one entry
    /// per result, reason and message, with the services' positions in the plan. The job API
    /// and `servicerefresh status` name each of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<ResultGroup>,

    /// Why the resource waits for something other than its own rollouts, while it does:
    /// cluster capacity, a disruption budget, a canary's soak, a maintenance window, a
    /// health gate, the minimum interval between restarts. Absent while nothing holds it.
    /// The `Reconciling` condition carries the same reason and message. An empty object
    /// (`{}`) means the same as absent: it is how a wait that ended is cleared.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "waiting_or_cleared"
    )]
    pub waiting: Option<WaitingStatus>,

    /// Conditions in the kstatus convention: `Ready`, `Reconciling` and `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// What the triggers looked like when the current run started; a difference starts a run.
    #[serde(default)]
    pub triggers: TriggerRecord,

    /// Summaries of earlier runs, newest first, at most ten.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<RunSummary>,

    /// Jobs submitted through the admin job API (`servicerefresh run --admin-listen`), newest
    /// first, at most twenty: who submitted each, and when. Only the job API writes this
    /// field, with server-side apply under its own field manager (servicerefresh-admin) on
    /// the status subresource, which only the operator's identity may write; the operator's
    /// own status writes leave it out, and runs carry it over unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<AdminJob>,
}

/// `status.waiting` as stored: an object without a reason is a cleared wait.
fn waiting_or_cleared<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<WaitingStatus>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    match value {
        Some(value) if value.get("reason").is_some() => {
            serde_json::from_value(value).map(Some).map_err(serde::de::Error::custom)
        }
        _ => Ok(None),
    }
}

/// What holds a resource back, and since when. The schema requires none of its fields: a
/// server-side apply that stops specifying a struct leaves it as `{}` (structured-merge-diff
/// keeps emptied maps), so the operator clears a wait by applying `waiting: {}`, which a
/// schema with required fields would refuse.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("required" = []))]
pub struct WaitingStatus {
    /// A stable word tools can match on, such as `WaitingForCapacity` or `OutsideWindow`.
    pub reason: String,
    /// What it waits for, in words: what the cluster, the gate or the schedule said.
    pub message: String,
    /// When the resource began waiting for this reason.
    pub since: Time,
    /// When the wait ends by itself, when that is known: the next window's start, the end
    /// of a soak or of a restart interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Time>,
}

/// A job submitted through the admin job API.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminJob {
    /// The job id: `j` and 32 lower-case hex digits (a UUIDv7). The job's run is the one whose
    /// `run.request` (or `history[].request`) is this id.
    pub id: String,
    /// Who submitted the job, as the TokenReview of their token named them.
    pub username: String,
    /// When the job was submitted.
    pub submit_time: MicroTime,
    /// When the job was cancelled before any run started for it: its request was withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdraw_time: Option<MicroTime>,
}

/// Phase of a run.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// The run is waiting to start, for instance queued behind runs of other resources.
    Pending,
    /// Batches are being restarted.
    Running,
    /// Every planned service ended Ready or Skipped.
    Succeeded,
    /// At least one service failed, timed out or disappeared, or the spec is unusable.
    Failed,
    /// `spec.suspend` holds the run before its next batch.
    Suspended,
    /// The run was cancelled through `gisops.io/cancel-requested-at`: the batch in flight
    /// finished, the rest of the plan was skipped.
    Cancelled,
}

/// Identity and timing of one run.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    /// Unique identity of the run, written to each restarted Deployment's pod template as
    /// `gisops.io/restarted-by`.
    pub id: String,
    /// Run number of this resource, counting from 1.
    pub number: u64,
    /// Why the run started: Created, TriggerChanged, RunRequested, ConfigMapChanged or
    /// SecretChanged.
    pub reason: String,
    /// Human-readable detail of why the run started and how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The `gisops.io/run-requested-at` value that started this run, when the reason is
    /// RunRequested; the job API uses it as the job id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The `gisops.io/cancel-requested-at` value that cancelled this run, once seen. No batch
    /// starts after it; the run ends Cancelled when the batch in flight has finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_request: Option<String>,
    /// Whether this run is a dry run that restarts nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Whether the run was requested with `gisops.io/force: "true"`: it restarts Deployments
    /// even within the operator's minimum restart interval.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// Where the run's plan is: the ServiceRefreshPlan objects holding its services in
    /// restart order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanRef>,
    /// Position in the plan of the next service to put in a batch; the services before it
    /// are in a started batch or already have a result.
    #[serde(default)]
    pub next_position: u32,
    /// How many services the next batch takes: `spec.batchSize` as of the latest batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// The canary batch's size (`spec.pacing.canary.size` as of the latest batch), when the
    /// run starts with canaries: with `slowStart` and the pacing, it tells how many batches
    /// the run has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_size: Option<u32>,
    /// Whether batch sizes grow 1, 2, 4, … (`spec.pacing.slowStart` as of the latest batch).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub slow_start: bool,
    /// The run's pacing now: its effective batch size and whether pods it restarted wait
    /// for room on the nodes. Absent while the run paces at `batchSize` without a block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacing: Option<super::PacingStatus>,
    /// Digest of the selection (`selector`, `namePatterns`, `namespaces`) the plan was made
    /// from. When the spec's selection changes during the run, the services it no longer
    /// selects are skipped in the batches not started yet, as `exclude` edits are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<String>,
    /// When the run was planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
}

/// Where a run's plan is kept.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanRef {
    /// Name of the first ServiceRefreshPlan object (`<refresh>-plan-0`); part k ends in `-k`.
    pub name: String,
    /// How many ServiceRefreshPlan objects hold the plan.
    pub parts: u32,
    /// How many services the plan holds.
    pub services: u32,
    /// Digest of the plan, as in each of its objects.
    pub digest: String,
}

/// Counts over the current run's plan.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Deployments in the plan.
    #[serde(default)]
    pub services: u32,
    /// Deployments whose pod template was restarted.
    #[serde(default)]
    pub restarted: u32,
    /// Deployments that became ready after their restart.
    #[serde(default)]
    pub ready: u32,
    /// Deployments that Failed, TimedOut or are Gone.
    #[serde(default)]
    pub failed: u32,
    /// Deployments that were Skipped (paused, dry run, or after an abort).
    #[serde(default)]
    pub skipped: u32,
}

/// One started batch of the run.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchStatus {
    /// Number of the batch in the run, counting from 1.
    pub index: u32,
    /// Running or Completed (Pending only in statuses written by operator versions that
    /// listed the whole plan here).
    pub phase: BatchPhase,
    /// The plan positions of the batch's services, as ranges such as `120-129`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<String>,
    /// The wave of the batch's services, counting from 0 (`spec.waves`); omitted without
    /// waves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<u32>,
    /// When the batch's restarts began, to the microsecond: the batch timeout counts from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<MicroTime>,
    /// When every service of the batch had a result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<MicroTime>,
    /// When the waiting messages of the batch's services were last refreshed; they are
    /// refreshed at most every few seconds, which bounds status writes during long rollouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_time: Option<MicroTime>,
    /// The batch's services while it runs, in plan order, with what each waits for or how
    /// it ended. Once the batch has completed, only those whose rollout may still be in
    /// flight stay listed (they hold a place in the in-flight budget); every result is in
    /// `counts` and the status's `results`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceStatus>,
    /// How the batch's services ended, once it has completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<BatchCounts>,
    /// Deployments that ended Ready, by name, as operator versions that kept the whole plan
    /// in the status wrote them. Read once to move such a run to a plan object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ready: Vec<String>,
}

/// How the services of one or more completed batches ended.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchCounts {
    /// Services that became ready after their restart.
    #[serde(default)]
    pub ready: u32,
    /// Services whose restart was sent (ready or not).
    #[serde(default)]
    pub restarted: u32,
    /// Services that Failed, TimedOut or are Gone.
    #[serde(default)]
    pub failed: u32,
    /// Services that were Skipped.
    #[serde(default)]
    pub skipped: u32,
}

impl BatchCounts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &BatchCounts) {
        self.ready += other.ready;
        self.restarted += other.restarted;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

/// The completed batches of a run no longer listed one by one, summed up.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EarlierBatches {
    /// How many batches are summed up: batches 1 to this number.
    pub batches: u32,
    /// When the first of them started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<MicroTime>,
    /// When the last of them completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<MicroTime>,
    /// How their services ended.
    #[serde(default)]
    pub counts: BatchCounts,
}

/// Services of a run that ended the same way for the same cause.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResultGroup {
    /// How the services ended: Failed, TimedOut, Gone or Skipped.
    pub result: ServiceResult,
    /// Why, as a CamelCase reason such as `ProgressDeadlineExceeded`, `RolloutTimedOut`,
    /// `RestartRejected`, `Deleted`, `Paused`, `Excluded` or `Cancelled`.
    pub reason: String,
    /// What happened to the first of them, in words (shortened when very long).
    pub message: String,
    /// How many services ended this way.
    pub count: u32,
    /// Their positions in the run's plan, as ranges such as `3,7,120-129`.
    pub positions: String,
    /// The first few of them by name (`namespace/name` outside the ServiceRefresh's own
    /// namespace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

/// Phase of one batch.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum BatchPhase {
    /// Not started yet.
    Pending,
    /// Restarted; waiting for its Deployments to become ready.
    Running,
    /// Every service of the batch has a result.
    Completed,
}

/// One Deployment of a started batch and its result.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Name of the Deployment.
    pub name: String,
    /// Position of the Deployment in the run's plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// Namespace of the Deployment; omitted when it is the ServiceRefresh's own namespace,
    /// which keeps the status small for large fleets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Kind of the workload; omitted for a Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<WorkloadKind>,
    /// The Deployment generation our restart produced; present while the restart is being
    /// rolled out. Readiness is judged only once the Deployment has observed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The uid of the Deployment the run restarted, kept until its result: a Deployment
    /// deleted and created again under the same name is then told apart from a cache that
    /// has not seen the restart yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The outcome; absent while the service is waiting or rolling out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ServiceResult>,
    /// Why the service ended as it did, as a CamelCase reason (absent for Ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why the service is not Ready, or what it is waiting for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Outcome of one Deployment in a run.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ServiceResult {
    /// Rolled out and available, by the rule of `kubectl rollout status`.
    Ready,
    /// The rollout failed (for instance `ProgressDeadlineExceeded`) or the restart was rejected.
    Failed,
    /// Still not ready when the batch timeout expired.
    TimedOut,
    /// Deleted during the run.
    Gone,
    /// Not restarted: paused Deployment, dry run, or the run was aborted or cancelled before
    /// its batch.
    Skipped,
}

impl ServiceResult {
    /// Whether this result counts as a failure of the run.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::TimedOut | Self::Gone)
    }
}

/// Trigger values handled by the latest run; a differing value starts the next run.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerRecord {
    /// When these values were recorded: the start of the latest run, or the resource's
    /// creation when `runOnCreate` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<Time>,
    /// Digest of the `spec.trigger` the latest run handled (or that creation recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_digest: Option<String>,
    /// The `spec.trigger` itself, as operator versions before `tokenDigest` recorded it.
    /// Read once to carry the record over; never written again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The `gisops.io/run-requested-at` annotation value the latest run handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_requested_at: Option<String>,
    /// The `gisops.io/cancel-requested-at` value handled last, so each request acts once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_requested_at: Option<String>,
    /// Content hashes of the watched ConfigMaps when the latest run started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_maps: Vec<ConfigMapHash>,
    /// Content hashes of the watched Secrets when the latest run started: a digest of the
    /// watched keys, never their values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ConfigMapHash>,
    /// ConfigMap and Secret changes waiting for `spec.triggerSettle` to pass without further change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settling: Option<super::pacing::TriggerSettling>,
    /// The restart storm that stopped trigger-started runs, until a person requests a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storm: Option<super::pacing::RestartStorm>,
}

/// Content hash of one watched ConfigMap or Secret.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapHash {
    /// Namespace of the object.
    pub namespace: String,
    /// Name of the object.
    pub name: String,
    /// Hash of the watched keys' content.
    pub hash: String,
}

/// Summary of a finished run.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// Identity of the run.
    pub id: String,
    /// Run number of this resource.
    #[serde(default)]
    pub number: u64,
    /// Why the run started.
    pub reason: String,
    /// The `gisops.io/run-requested-at` value that started the run, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// How the run ended: Succeeded, Failed or Cancelled.
    pub phase: Phase,
    /// How the run ended, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the run was planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
    /// Counts at the end of the run.
    pub totals: Totals,
}
