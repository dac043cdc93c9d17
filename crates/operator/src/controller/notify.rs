//! Webhook delivery of the notifications the engine's transitions make (`spec.notify`). The
//! reconcile only queues them, after the status that records their transitions was written;
//! one task per receiver sends them in order, resolving URLs and signing keys from Secrets,
//! signing bodies with HMAC-SHA256 and retrying with backoff. Nothing here can hold or fail a
//! run. Only the leader sends: a queued notification is dropped once this replica stops
//! leading. A crash loses what was queued and not yet sent (at most once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use jiff::Timestamp;
use kube::{Client, ResourceExt};
use ring::hmac;
use servicerefresh_core::crd::{ServiceRefresh, Webhook, WebhookFormat};
use servicerefresh_core::engine::Transition;
use servicerefresh_core::engine::notifications::{Notification, notifications};
use servicerefresh_core::policy::leadership::Leadership;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tracing::{info, warn};

use super::health_gate::{error_chain, secret_value};
use crate::telemetry::Telemetry;

/// The header carrying `sha256=<hex HMAC-SHA256 of the body>` when a signing key is set.
pub const SIGNATURE_HEADER: &str = "x-servicerefresh-signature";
/// How long one delivery attempt may take, connection included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts after the first: with the delays below a receiver has about 15 s to return.
const RETRIES: usize = 5;
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Queues notifications per receiver and owns the tasks that send them.
pub struct Notifier {
    http: Result<reqwest::Client, String>,
    kube: Client,
    telemetry: Arc<Telemetry>,
    leadership: Arc<Leadership>,
    /// One queue per (ServiceRefresh, webhook index), so each receiver hears a resource's
    /// notifications in the order they happened.
    queues: Mutex<HashMap<String, UnboundedSender<Delivery>>>,
}

/// One notification for one receiver.
struct Delivery {
    namespace: String,
    webhook: Webhook,
    notification: Notification,
}

/// Why one attempt did not deliver.
enum Attempt {
    /// Worth trying again: no answer, a 5xx, a 429.
    Retry(String),
    /// Trying again cannot help: a Secret missing, a 4xx.
    Final(String),
    /// This replica no longer leads.
    NotLeading,
}

impl Notifier {
    pub fn new(kube: Client, telemetry: Arc<Telemetry>, leadership: Arc<Leadership>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(ATTEMPT_TIMEOUT)
            .user_agent(concat!("servicerefresh/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| error_chain(&error));
        Self { http, kube, telemetry, leadership, queues: Mutex::default() }
    }

    /// Queues the notifications `transitions` make for every webhook of `refresh` that asked
    /// for them. Returns at once.
    pub fn notify(&self, refresh: &ServiceRefresh, transitions: &[Transition]) {
        let Some(notify) = &refresh.spec.notify else { return };
        let namespace = refresh.namespace().unwrap_or_default();
        let key = format!("{namespace}/{}", refresh.name_any());
        let told = notifications(&key, transitions, Timestamp::now());
        if told.is_empty() {
            return;
        }
        let mut queues = self.queues.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (index, webhook) in notify.webhooks.iter().enumerate() {
            let queue = format!("{key}#{index}");
            for notification in told.iter().filter(|told| webhook.wants(told.event)) {
                let delivery = Delivery {
                    namespace: namespace.clone(),
                    webhook: webhook.clone(),
                    notification: notification.clone(),
                };
                let sender = queues.entry(queue.clone()).or_insert_with(|| self.spawn_sender());
                if let Err(returned) = sender.send(delivery) {
                    // The task ended (it never does while the sender lives); start another.
                    let sender = self.spawn_sender();
                    let _ = sender.send(returned.0);
                    queues.insert(queue.clone(), sender);
                }
            }
        }
    }

    fn spawn_sender(&self) -> UnboundedSender<Delivery> {
        let (sender, mut receiver) = unbounded_channel::<Delivery>();
        let mut worker = Worker {
            http: self.http.clone(),
            kube: self.kube.clone(),
            telemetry: self.telemetry.clone(),
            leadership: self.leadership.clone(),
            down: false,
        };
        tokio::spawn(async move {
            while let Some(delivery) = receiver.recv().await {
                worker.deliver(&delivery).await;
            }
        });
        sender
    }
}

/// What a sending task needs, and whether its receiver is down.
struct Worker {
    http: Result<reqwest::Client, String>,
    kube: Client,
    telemetry: Arc<Telemetry>,
    leadership: Arc<Leadership>,
    /// The last notification failed after all its retries: the next ones get one attempt
    /// each until one is delivered, so a dead receiver cannot build a queue of retries.
    down: bool,
}

impl Worker {
    async fn deliver(&mut self, delivery: &Delivery) {
        let notification = &delivery.notification;
        let attempt = || self.attempt(delivery);
        let retries = if self.down { 0 } else { RETRIES };
        let backoff = ExponentialBuilder::new()
            .with_min_delay(FIRST_RETRY_DELAY)
            .with_max_delay(MAX_RETRY_DELAY)
            .with_factor(2.0)
            .with_max_times(retries);
        let outcome = attempt
            .retry(backoff)
            .when(|attempt| matches!(attempt, Attempt::Retry(_)))
            .notify(|attempt, delay| {
                if let Attempt::Retry(why) = attempt {
                    info!(servicerefresh = %notification.refresh, notification = %notification.id, error = %why, retry_in = ?delay, "webhook notification not delivered yet");
                }
            })
            .await;
        let result = match outcome {
            Ok(()) => "delivered",
            Err(Attempt::NotLeading) => {
                info!(servicerefresh = %notification.refresh, notification = %notification.id, "webhook notification dropped: this replica stopped leading");
                "dropped"
            }
            Err(Attempt::Retry(why) | Attempt::Final(why)) => {
                warn!(servicerefresh = %notification.refresh, notification = %notification.id, error = %why, "webhook notification failed");
                "failed"
            }
        };
        self.down = result == "failed";
        self.telemetry.notification(result);
    }

    async fn attempt(&self, delivery: &Delivery) -> Result<(), Attempt> {
        if self.leadership.permit(Instant::now()).is_err() {
            return Err(Attempt::NotLeading);
        }
        let http = self.http.as_ref().map_err(|error| Attempt::Final(error.clone()))?;
        let webhook = &delivery.webhook;
        let url = match (&webhook.url, &webhook.url_secret_ref) {
            (Some(url), _) => url.clone(),
            (None, Some(reference)) => {
                let bytes = secret_value(&self.kube, &delivery.namespace, reference)
                    .await
                    .map_err(Attempt::Retry)?;
                String::from_utf8_lossy(&bytes).trim().to_owned()
            }
            (None, None) => return Err(Attempt::Final("the webhook names no URL".to_owned())),
        };
        let (body, content_type) = match webhook.format {
            WebhookFormat::CloudEvents => {
                (delivery.notification.cloud_event(), "application/cloudevents+json; charset=utf-8")
            }
            WebhookFormat::Slack => (delivery.notification.slack(), "application/json"),
        };
        let body = serde_json::to_vec(&body).map_err(|error| Attempt::Final(error.to_string()))?;
        let mut request = http.post(&url).header(reqwest::header::CONTENT_TYPE, content_type);
        if let Some(reference) = &webhook.signing_key_secret_ref {
            let key = secret_value(&self.kube, &delivery.namespace, reference)
                .await
                .map_err(Attempt::Retry)?;
            request = request.header(SIGNATURE_HEADER, signature(&key, &body));
        }
        // The URL may hold a token (Slack's do): messages name the receiver by host only.
        let receiver = receiver_name(&url);
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|error| Attempt::Retry(format!("{receiver}: {}", without_url(&error))))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(Attempt::Retry(format!("{receiver} answered {status}")))
        } else {
            Err(Attempt::Final(format!("{receiver} answered {status}")))
        }
    }
}

/// `sha256=<hex HMAC-SHA256 of body under key>`, as GitHub's `X-Hub-Signature-256` writes it.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), body);
    let hex: String = tag.as_ref().iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

/// The receiver for messages: scheme, host and port, never the path or query.
fn receiver_name(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.port().map(|port| format!(":{port}")).unwrap_or_default()
        ),
        Err(_) => "the webhook URL (not a valid URL)".to_owned(),
    }
}

fn without_url(error: &reqwest::Error) -> String {
    let mut text = error_chain(error);
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn messages_name_the_receiver_without_its_path() {
        assert_eq!(
            receiver_name("https://hooks.slack.com:8443/services/T000/B000/SECRET?x=1"),
            "https://hooks.slack.com:8443"
        );
        assert_eq!(receiver_name("not a url"), "the webhook URL (not a valid URL)");
    }
}
