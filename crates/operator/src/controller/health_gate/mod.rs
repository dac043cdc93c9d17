//! The health gate's checks, performed when the engine asks for them (a decision with
//! `wants_health_check`): each configured check is asked over HTTP, with the endpoint from
//! the spec or the operator's defaults, an optional CA and bearer token read from Secrets in
//! the resource's namespace. The outcome is remembered per resource and laid into the next
//! observations; the engine decides what it means. An endpoint that cannot be asked fails
//! its check, saying why.

mod alertmanager;
mod prometheus;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};
use servicerefresh_core::crd::{SecretKeyRef, ServiceRefresh};
use servicerefresh_core::engine::health_gate::{CheckResult, GateCheck, GateResult};

/// How long one check may take, connection included: a monitoring system slower than this
/// fails the check rather than stall the reconcile.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Where checks go when a spec names no URL: the operator's `--prometheus-url` and
/// `--alertmanager-url`.
#[derive(Clone, Debug, Default)]
pub struct MonitoringDefaults {
    pub prometheus_url: Option<String>,
    pub alertmanager_url: Option<String>,
}

/// The checks' HTTP client, the defaults, and the latest outcome per resource (by uid).
pub struct HealthChecks {
    http: Result<reqwest::Client, String>,
    defaults: MonitoringDefaults,
    latest: Mutex<HashMap<String, GateResult>>,
}

/// An endpoint ready to ask: its base URL, the client trusting its CA, and its token.
struct Endpoint {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Endpoint {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.get(format!("{}{path}", self.base.trim_end_matches('/')));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

/// How a check names its endpoint's settings in messages.
struct EndpointSpec<'a> {
    what: &'static str,
    url: Option<&'a str>,
    default_url: Option<&'a str>,
    flag: &'static str,
    field: &'static str,
    ca: Option<&'a SecretKeyRef>,
    token: Option<&'a SecretKeyRef>,
}

impl HealthChecks {
    pub fn new(defaults: MonitoringDefaults) -> Self {
        let http = client_builder().build().map_err(|error| error_chain(&error));
        Self { http, defaults, latest: Mutex::default() }
    }

    /// The latest outcome for the resource with this uid.
    pub fn latest(&self, uid: &str) -> Option<GateResult> {
        self.latest.lock().ok()?.get(uid).cloned()
    }

    pub fn forget(&self, uid: &str) {
        if let Ok(mut latest) = self.latest.lock() {
            latest.remove(uid);
        }
    }

    /// Performs every check `refresh.spec.healthGate` names, concurrently, and remembers the
    /// outcome.
    pub async fn check(&self, kube: &Client, refresh: &ServiceRefresh) -> Option<GateResult> {
        let gate = refresh.spec.health_gate.as_ref()?;
        let uid = refresh.metadata.uid.clone()?;
        let namespace = refresh.namespace().unwrap_or_default();
        let prometheus = async {
            let check = gate.prometheus.as_ref()?;
            let spec = EndpointSpec {
                what: "Prometheus",
                url: check.url.as_deref(),
                default_url: self.defaults.prometheus_url.as_deref(),
                flag: "--prometheus-url",
                field: "spec.healthGate.prometheus.url",
                ca: check.ca_secret_ref.as_ref(),
                token: check.bearer_token_secret_ref.as_ref(),
            };
            Some(match self.endpoint(kube, &namespace, &spec).await {
                Ok(endpoint) => prometheus::check(&endpoint, check).await,
                Err(problem) => failed(GateCheck::Prometheus, problem),
            })
        };
        let alertmanager = async {
            let check = gate.alertmanager.as_ref()?;
            let spec = EndpointSpec {
                what: "Alertmanager",
                url: check.url.as_deref(),
                default_url: self.defaults.alertmanager_url.as_deref(),
                flag: "--alertmanager-url",
                field: "spec.healthGate.alertmanager.url",
                ca: check.ca_secret_ref.as_ref(),
                token: check.bearer_token_secret_ref.as_ref(),
            };
            Some(match self.endpoint(kube, &namespace, &spec).await {
                Ok(endpoint) => alertmanager::check(&endpoint, check).await,
                Err(problem) => failed(GateCheck::Alertmanager, problem),
            })
        };
        let (prometheus, alertmanager) = futures::join!(prometheus, alertmanager);
        let result = GateResult {
            checked_at: Timestamp::now(),
            checks: prometheus.into_iter().chain(alertmanager).collect(),
        };
        if let Ok(mut latest) = self.latest.lock() {
            latest.insert(uid, result.clone());
        }
        Some(result)
    }

    async fn endpoint(
        &self,
        kube: &Client,
        namespace: &str,
        spec: &EndpointSpec<'_>,
    ) -> Result<Endpoint, String> {
        let base = spec.url.or(spec.default_url).ok_or_else(|| {
            format!(
                "no {} URL: set {} or start the operator with {}",
                spec.what, spec.field, spec.flag
            )
        })?;
        let http = match spec.ca {
            None => self.http.clone()?,
            Some(reference) => {
                let pem = secret_value(kube, namespace, reference).await?;
                let certificates =
                    reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
                        format!(
                            "Secret {namespace}/{} key {} holds no PEM certificate: {}",
                            reference.name,
                            reference.key,
                            error_chain(&error)
                        )
                    })?;
                certificates
                    .into_iter()
                    .fold(client_builder(), |builder, certificate| {
                        builder.add_root_certificate(certificate)
                    })
                    .build()
                    .map_err(|error| error_chain(&error))?
            }
        };
        let token = match spec.token {
            None => None,
            Some(reference) => {
                let bytes = secret_value(kube, namespace, reference).await?;
                Some(String::from_utf8_lossy(&bytes).trim().to_owned())
            }
        };
        Ok(Endpoint { base: base.to_owned(), http, token })
    }
}

fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().timeout(CHECK_TIMEOUT).connect_timeout(CHECK_TIMEOUT)
}

pub(super) async fn secret_value(
    kube: &Client,
    namespace: &str,
    reference: &SecretKeyRef,
) -> Result<Vec<u8>, String> {
    let name = format!("Secret {namespace}/{} key {}", reference.name, reference.key);
    let secret = Api::<Secret>::namespaced(kube.clone(), namespace)
        .get(&reference.name)
        .await
        .map_err(|error| format!("cannot read {name}: {}", error_chain(&error)))?;
    secret
        .data
        .and_then(|mut data| data.remove(&reference.key))
        .map(|value| value.0)
        .ok_or_else(|| format!("{name} does not exist"))
}

fn failed(check: GateCheck, detail: String) -> CheckResult {
    CheckResult { check, passed: false, detail }
}

/// An error with its causes, as `a: b: c`: reqwest's own message alone ("error sending
/// request") hides the connection refused underneath.
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A label set as PromQL writes it: `name{a="1", b="2"}`.
fn label_set(labels: &std::collections::BTreeMap<String, String>) -> String {
    let name = labels.get("__name__").cloned().unwrap_or_default();
    let pairs: Vec<String> = labels
        .iter()
        .filter(|(key, _)| *key != "__name__")
        .map(|(key, value)| format!("{key}={value:?}"))
        .collect();
    format!("{name}{{{}}}", pairs.join(", "))
}

/// The start of a body too long or too odd to quote whole.
fn excerpt(body: &str) -> String {
    let trimmed = body.trim();
    if trimmed.chars().count() <= 200 {
        return trimmed.to_owned();
    }
    let mut short: String = trimmed.chars().take(199).collect();
    short.push('…');
    short
}
