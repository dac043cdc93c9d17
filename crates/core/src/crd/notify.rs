//! `spec.notify`: the webhooks told when a run starts, a batch fails, a run is held and a run
//! finishes, where their URLs and signing keys come from, and the form each one wants.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretKeyRef;

/// Where to tell people what the runs do. Delivery is best effort: it is retried with
/// backoff, never holds or fails a run, and only the leading replica sends.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotifySpec {
    /// The receivers, each sent every notification it asks for, in order.
    #[schemars(length(min = 1, max = 8))]
    pub webhooks: Vec<Webhook>,
}

/// One receiver. Give its URL either as `url` (a quick local try) or, for a URL that holds a
/// token (Slack, Teams), as `urlSecretRef`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.url) != has(self.urlSecretRef)",
    "message": "set exactly one of url and urlSecretRef",
}]))]
pub struct Webhook {
    /// The receiver's http:// or https:// URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub url: Option<String>,

    /// A Secret key (in the ServiceRefresh's namespace) holding the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_secret_ref: Option<SecretKeyRef>,

    /// A Secret key (in the ServiceRefresh's namespace) holding an HMAC key. Each request
    /// then carries `X-Servicerefresh-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_secret_ref: Option<SecretKeyRef>,

    /// `CloudEvents` (default): a CloudEvents 1.0 JSON event in structured mode. `Slack`: a
    /// `{"text": ...}` body that Slack-compatible incoming webhooks accept.
    #[serde(default)]
    pub format: WebhookFormat,

    /// The notifications to send. Default: all four.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4))]
    pub events: Vec<NotifyEvent>,
}

/// The body a webhook receives.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum WebhookFormat {
    #[default]
    CloudEvents,
    Slack,
}

/// What a notification is about.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum NotifyEvent {
    /// A run started.
    RunStarted,
    /// A batch completed with failed services.
    BatchFailed,
    /// The run waits for something other than its rollouts: a maintenance window, the health
    /// gate, capacity, a disruption budget, the restart interval, a canary's soak; or a
    /// restart storm stalled the resource.
    Held,
    /// A run ended: Succeeded, Failed or Cancelled.
    RunFinished,
}

impl NotifyEvent {
    pub const ALL: [Self; 4] = [Self::RunStarted, Self::BatchFailed, Self::Held, Self::RunFinished];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RunStarted => "RunStarted",
            Self::BatchFailed => "BatchFailed",
            Self::Held => "Held",
            Self::RunFinished => "RunFinished",
        }
    }
}

impl Webhook {
    /// Whether this receiver asked for `event`.
    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.events.is_empty() || self.events.contains(&event)
    }
}
