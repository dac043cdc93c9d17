//! The `ServiceRefresh` custom resource: its spec, its status, and the CRD
//! generated from them. Every field carries a doc comment because those become
//! the descriptions `kubectl explain` prints.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the resource.
pub const GROUP: &str = "gisops.io";
/// Pod-template annotation `kubectl rollout restart` uses; setting it rolls a Deployment.
pub const RESTARTED_AT_ANNOTATION: &str = "kubectl.kubernetes.io/restartedAt";
/// Pod-template annotation naming the run that restarted a Deployment.
pub const RESTARTED_BY_ANNOTATION: &str = "gisops.io/restarted-by";
/// Annotation on a ServiceRefresh: setting it to a new value starts a run (ad-hoc trigger).
pub const RUN_REQUESTED_AT_ANNOTATION: &str = "gisops.io/run-requested-at";

/// Regex a `batchTimeout` must match: Go-style durations such as `90s`, `10m`, `1h30m`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h))+$";

/// ServiceRefresh restarts a fleet of Deployments in batches, waits for each batch to become
/// ready the way `kubectl rollout status` does, and records every batch's results in its status.
/// A run starts when the resource is created, when `spec.trigger` changes, when a watched
/// ConfigMap's content changes, or when the annotation `gisops.io/run-requested-at` gets a
/// new value. Re-applying an unchanged manifest starts nothing.
// Printer columns repeat `type_ = "string"`, which this lint mistakes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "gisops.io",
    version = "v1alpha1",
    kind = "ServiceRefresh",
    plural = "servicerefreshes",
    singular = "servicerefresh",
    namespaced,
    status = "ServiceRefreshStatus",
    shortname = "sref",
    shortname = "srefs",
    category = "gisops",
    derive = "PartialEq",
    doc = "ServiceRefresh restarts a fleet of Deployments in ready-gated batches and records the results.",
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Phase of the current run"
    ),
    printcolumn(
        name = "Progress",
        type_ = "string",
        json_path = ".status.progress",
        description = "Services ready out of all services planned (ready/total)"
    ),
    printcolumn(
        name = "Batch",
        type_ = "string",
        json_path = ".status.batch",
        description = "Current batch out of all batches (current/total)"
    ),
    printcolumn(
        name = "Failed",
        type_ = "integer",
        json_path = ".status.totals.failed",
        description = "Services that failed, timed out or disappeared in the current run"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRefreshSpec {
    /// Label selector choosing the Deployments to restart in the target namespaces.
    /// Required. `{}` selects every Deployment in the target namespaces; write it explicitly
    /// only when restarting everything is what you want.
    pub selector: LabelSelector,

    /// Optional glob patterns (`*` and `?`) on the Deployment name, such as
    /// `arcgis-*-mapserver-*`. When set, a Deployment must match at least one pattern.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name_patterns: Vec<String>,

    /// Names of Deployments never to restart, even when selected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,

    /// Namespaces to select Deployments from. Default: the ServiceRefresh's own namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,

    /// Number of Deployments restarted together. The next batch starts only when every
    /// Deployment of the current one has a result. 1 to 100, default 10.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1, max = 100))]
    pub batch_size: u32,

    /// How long a batch may take to become ready, as a duration such as `90s`, `10m` or
    /// `1h30m`. Deployments still not ready then are recorded as TimedOut. Default `10m`.
    #[serde(default = "default_batch_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    pub batch_timeout: String,

    /// What a failure does to the run: `Continue` (default) goes on with the next batch and
    /// reports the failures at the end; `Abort` ends the run as Failed after the batch in
    /// which the failure happened.
    #[serde(default)]
    pub failure_policy: FailurePolicy,

    /// Opaque token. Changing it starts a new run; leaving it unchanged never does, so
    /// GitOps tools can re-apply the manifest safely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,

    /// ConfigMaps whose content starts a new run when it changes, such as the proxy settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_map_triggers: Vec<ConfigMapTrigger>,

    /// Pause the run before its next batch. The batch in progress finishes; no new batch
    /// starts until suspend is false again.
    #[serde(default)]
    pub suspend: bool,

    /// Plan and record the run without restarting anything. Every planned Deployment is
    /// recorded as Skipped.
    #[serde(default)]
    pub dry_run: bool,
}

fn default_batch_size() -> u32 {
    10
}

fn default_batch_timeout() -> String {
    "10m".to_owned()
}

/// What a failed Deployment does to the rest of the run.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum FailurePolicy {
    /// Go on with the next batches and report all failures at the end.
    #[default]
    Continue,
    /// Start no further batch once a Deployment has failed; the run ends as Failed.
    Abort,
}

/// A ConfigMap whose content is watched; a change to it starts a new run.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapTrigger {
    /// Name of the ConfigMap.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Namespace of the ConfigMap. Default: the ServiceRefresh's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Keys whose values are watched. Default: all of `data` and `binaryData`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

/// Observed state of a ServiceRefresh: the current run, its plan with per-service results,
/// kstatus conditions, trigger bookkeeping and a short history of earlier runs.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRefreshStatus {
    /// Phase of the current run: Pending, Running, Succeeded, Failed or Suspended.
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

    /// The plan of the current run, batch by batch, with each service's result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<BatchStatus>,

    /// Conditions in the kstatus convention: `Ready`, `Reconciling` and `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// What the triggers looked like when the current run started; a difference starts a run.
    #[serde(default)]
    pub triggers: TriggerRecord,

    /// Summaries of earlier runs, newest first, at most ten.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<RunSummary>,
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
    /// Why the run started: Created, TriggerChanged, RunRequested or ConfigMapChanged.
    pub reason: String,
    /// Human-readable detail of why the run started and how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Whether this run is a dry run that restarts nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// When the run was planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
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

/// One batch of the plan.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchStatus {
    /// Position of the batch in the plan, counting from 1.
    pub index: u32,
    /// Pending, Running or Completed.
    pub phase: BatchPhase,
    /// When the batch's restarts began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When every service of the batch had a result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
    /// The Deployments of the batch, sorted by namespace and name.
    pub services: Vec<ServiceStatus>,
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

/// One Deployment of the plan and its result.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Name of the Deployment.
    pub name: String,
    /// Namespace of the Deployment; omitted when it is the ServiceRefresh's own namespace,
    /// which keeps the status small for large fleets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Deployment generation our restart produced; present while the restart is being
    /// rolled out. Readiness is judged only once the Deployment has observed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The outcome; absent while the service is waiting or rolling out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ServiceResult>,
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
    /// Not restarted: paused Deployment, dry run, or the run was aborted before its batch.
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
    /// The `spec.trigger` the latest run handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The `gisops.io/run-requested-at` annotation value the latest run handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_requested_at: Option<String>,
    /// Content hashes of the watched ConfigMaps when the latest run started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_maps: Vec<ConfigMapHash>,
}

/// Content hash of one watched ConfigMap.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapHash {
    /// Namespace of the ConfigMap.
    pub namespace: String,
    /// Name of the ConfigMap.
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
    /// Why the run started.
    pub reason: String,
    /// How the run ended: Succeeded or Failed.
    pub phase: Phase,
    /// When the run was planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
    /// Counts at the end of the run.
    pub totals: Totals,
}

/// The CRD as served: the derived one, with doc-comment line breaks inside a paragraph
/// joined, so `kubectl explain` can wrap descriptions itself.
pub fn crd() -> CustomResourceDefinition {
    use kube::CustomResourceExt;
    let derived = ServiceRefresh::crd();
    let Ok(mut value) = serde_json::to_value(&derived) else {
        return derived;
    };
    join_description_lines(&mut value);
    serde_json::from_value(value).unwrap_or(derived)
}

fn join_description_lines(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    serde_json::Value::String(text) if key == "description" => {
                        *text = text
                            .split("\n\n")
                            .map(|paragraph| {
                                paragraph.split('\n').map(str::trim).collect::<Vec<_>>().join(" ")
                            })
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    _ => join_description_lines(child),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(join_description_lines),
        _ => {}
    }
}

/// The CRD manifest as YAML, exactly what `servicerefresh crd` prints and
/// `crds/servicerefresh.yaml` holds.
pub fn crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let yaml = serde_saphyr::to_string(&crd())?;
    Ok(format!("# Generated by `servicerefresh crd`; do not edit.\n---\n{yaml}"))
}
