//! `spec.healthGate`: the checks a run passes between batches (a Prometheus query and the
//! active alerts of an Alertmanager), where to reach them, and how long they may fail.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Checks evaluated after each batch becomes ready, before the next batch starts. The run
/// holds (reason `HealthGateFailing`) while any check fails; when they still fail after
/// `timeout`, the run ends as `failurePolicy` says: `Abort` ends it as Failed with the rest
/// Skipped (reason `HealthGateTimedOut`), `Continue` goes on with the next batch. An
/// unreachable endpoint fails its check.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthGate {
    /// How long the checks may keep failing after a batch, as a duration such as `5m`, from
    /// 5s to 168h. Counted from the moment the batch became ready. Default `10m`.
    #[serde(default = "default_gate_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "duration(self) >= duration('5s') && duration(self) <= duration('168h')",
        "message": "must be between 5s and 168h (one week)",
    }]))]
    pub timeout: String,

    /// A PromQL instant query (`/api/v1/query`). It passes when the result is empty, or
    /// when every sample is below `threshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusCheck>,

    /// Active alerts (`/api/v2/alerts`, neither silenced nor inhibited). It passes when no
    /// active alert matches every matcher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<AlertmanagerCheck>,
}

fn default_gate_timeout() -> String {
    "10m".to_owned()
}

/// A PromQL instant query that must come back empty or below a threshold.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusCheck {
    /// The Prometheus base URL, such as `http://prometheus.monitoring:9090`. Default: the
    /// operator's `--prometheus-url` (chart value `healthGate.prometheusUrl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub url: Option<String>,

    /// The PromQL expression, evaluated as an instant query, such as
    /// `sum by (deployment) (rate(http_errors_total[1m])) > 0`.
    #[schemars(length(min = 1, max = 4096))]
    pub query: String,

    /// A sample at or above this value fails the check. Default: any sample fails it, so a
    /// query that filters itself (`... > 0.05`) needs none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,

    /// A Secret key (in the ServiceRefresh's namespace) holding the PEM CA certificates
    /// that sign the endpoint's certificate. Default: the operator's own trust roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,

    /// A Secret key (in the ServiceRefresh's namespace) holding a bearer token, sent as
    /// `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret_ref: Option<SecretKeyRef>,
}

/// Active alerts that must not exist.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerCheck {
    /// The Alertmanager base URL, such as `http://alertmanager.monitoring:9093`. Default: the
    /// operator's `--alertmanager-url` (chart value `healthGate.alertmanagerUrl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub url: Option<String>,

    /// Label matchers in Alertmanager's syntax, such as `severity="critical"` or
    /// `namespace=~"arcgis.*"`; an alert fails the check when it matches all of them. No
    /// matchers: every active alert fails it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub matchers: Vec<String>,

    /// A Secret key (in the ServiceRefresh's namespace) holding the PEM CA certificates
    /// that sign the endpoint's certificate. Default: the operator's own trust roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,

    /// A Secret key (in the ServiceRefresh's namespace) holding a bearer token, sent as
    /// `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret_ref: Option<SecretKeyRef>,
}

/// One key of a Secret in the ServiceRefresh's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}
