//! The desired state of a ServiceRefresh: which Deployments a run covers, how it proceeds,
//! and what starts one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kinds::WorkloadKind;
use super::pacing::{Schedule, default_max_runs_per_hour, default_trigger_settle};
use super::status::ServiceRefreshStatus;
use super::triggers::{ConfigMapTrigger, SecretTrigger};
use super::waves::Wave;

/// Longest `spec.trigger` the schema accepts. The status records a fixed-size digest of it,
/// never a copy, so the limit only keeps manifests sane.
pub const MAX_TRIGGER_LENGTH: u32 = 1024;

/// ServiceRefresh restarts a fleet of Deployments (and StatefulSets and DaemonSets, when
/// `spec.kinds` lists them) in batches, waits for each batch to become
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
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#,
        description = "Why the resource is where it is: Running, Queued, a wait, Succeeded, or what stalled it"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        priority = 1,
        json_path = r#".status.conditions[?(@.type=="Ready")].message"#,
        description = "What the run is doing, waits for, or what to fix"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(
        name = "Kinds",
        type_ = "string",
        json_path = ".spec.kinds",
        description = "The workload kinds the resource restarts",
        priority = 1
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRefreshSpec {
    /// Label selector choosing the Deployments to restart in the target namespaces.
    /// Required. `{}` selects every Deployment in the target namespaces; write it explicitly
    /// only when restarting everything is what you want. Editing the selection (selector,
    /// name patterns, namespaces) during a run applies to the services not yet in a batch:
    /// those no longer selected end Skipped with reason Deselected; newly selected ones wait
    /// for the next run.
    pub selector: LabelSelector,

    /// The kinds of workload the selection covers: `Deployment` (the default),
    /// `StatefulSet`, `DaemonSet`. The selector, name patterns, exclusions and namespaces
    /// apply to every listed kind. The operator must watch a kind for it to be listed (the
    /// chart's `workloadKinds` values); otherwise the resource is Stalled.
    #[serde(default = "WorkloadKind::default_kinds")]
    #[schemars(length(min = 1, max = 3))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub kinds: Vec<WorkloadKind>,

    /// Optional glob patterns (`*` and `?`) on the Deployment name, such as
    /// `arcgis-*-mapserver-*`. When set, a Deployment must match at least one pattern.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name_patterns: Vec<String>,

    /// Names of Deployments never to restart, even when selected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,

    /// Namespaces to select Deployments from. Default: the ServiceRefresh's own namespace.
    /// Other namespaces are refused (the resource becomes Stalled) unless the operator runs
    /// with `--allow-cross-namespace`: whoever may create a ServiceRefresh in one namespace
    /// must not be able to restart workloads in another.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,

    /// Number of Deployments restarted together. The next batch starts only when every
    /// Deployment of the current one has a result. 1 to 100, default 10.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1, max = 100))]
    pub batch_size: u32,

    /// How long a batch may take to become ready, as a duration such as `90s`, `10m` or
    /// `1h30m`, from 5s to 168h. Deployments still not ready then are recorded as TimedOut.
    /// Default `10m`.
    #[serde(default = "default_batch_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "duration(self) >= duration('5s') && duration(self) <= duration('168h')",
        "message": "must be between 5s and 168h (one week)",
    }]))]
    pub batch_timeout: String,

    /// What a failure does to the run: `Continue` (default) goes on with the next batch and
    /// reports the failures at the end; `Abort` ends the run as Failed after the batch in
    /// which the failure happened.
    #[serde(default)]
    pub failure_policy: FailurePolicy,

    /// Opaque token. Changing it starts a new run; leaving it unchanged never does, so
    /// GitOps tools can re-apply the manifest safely. At most 1024 characters; the status
    /// records a digest of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub trigger: Option<String>,

    /// ConfigMaps whose content starts a new run when it changes, such as the proxy settings.
    /// They must live in the ServiceRefresh's own namespace unless the operator runs with
    /// `--allow-cross-namespace`. Combine with `runOnCreate: false` for a resource that only
    /// reacts to ConfigMap changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_map_triggers: Vec<ConfigMapTrigger>,

    /// Secrets whose content starts a new run when it changes, such as a rotated
    /// certificate. Same rules as `configMapTriggers`; only a hash of the watched keys is
    /// kept. The operator must run with `--secret-triggers` (the chart's
    /// `secretTriggers.enabled`), which grants it read access to the named Secrets only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_triggers: Vec<SecretTrigger>,

    /// Ordered waves, for example system services first and then user services: each wave
    /// is batched on its own, and a wave starts only when every workload of the one before
    /// has a result. A workload matched by several waves belongs to the first; one matched
    /// by none runs in a last wave. With `failurePolicy: Abort` a failure stops the run in
    /// its wave. At most 20 waves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub waves: Vec<Wave>,

    /// Pause the run before its next batch. The batch in progress finishes; no new batch
    /// starts until suspend is false again.
    #[serde(default)]
    pub suspend: bool,

    /// Plan and record the run without restarting anything. Every planned Deployment is
    /// recorded as Skipped.
    #[serde(default)]
    pub dry_run: bool,

    /// Whether creating the resource starts a run. Default true. With false, creation only
    /// records the current trigger state, and the first run starts when a trigger changes:
    /// the Reloader-style setup, where the resource exists to react to ConfigMap changes.
    #[serde(default = "default_run_on_create")]
    pub run_on_create: bool,

    /// How long watched ConfigMaps must stay unchanged before their change starts a run, as
    /// a duration such as `5s` or `1m`, from 0s to 1h. Changes within it merge into one run.
    /// Default `5s`.
    #[serde(default = "default_trigger_settle")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "duration(self) <= duration('1h')",
        "message": "must be at most 1h",
    }]))]
    pub trigger_settle: String,

    /// How many runs started by ConfigMap or `spec.trigger` changes may start within an
    /// hour. One more stalls the resource with reason `RestartStorm` until a person requests
    /// a run (`gisops.io/run-requested-at`, `servicerefresh start`). 1 to 10, default 6.
    #[serde(default = "default_max_runs_per_hour")]
    #[schemars(range(min = 1, max = 10))]
    pub max_runs_per_hour: u32,

    /// Maintenance windows: runs restart Deployments only inside them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Checks between batches: a Prometheus query and Alertmanager's active alerts. The run
    /// holds while one fails. See `docs/health-gates-and-notifications.md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_gate: Option<super::health_gate::HealthGate>,
    /// How the run adapts its batches to what the cluster can take (docs/capacity.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pacing: Option<super::PacingSpec>,
    /// Webhooks told when a run starts, a batch fails, a run is held and a run finishes
    /// (CloudEvents or Slack text). See `docs/health-gates-and-notifications.md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<super::NotifySpec>,
}

fn default_run_on_create() -> bool {
    true
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
