//! Connecting to the cluster: building clients from a kubeconfig or the in-cluster config,
//! with timeouts on every request but watches, a User-Agent naming this replica, and the
//! layers that count requests and fence writes; and why start-up can fail ([`StartupError`]),
//! the checks before watching included (in [`super::preflight`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use http::header::USER_AGENT;
use kube::client::ClientBuilder;
use kube::{Client, Config};
use thiserror::Error;

use super::answers::{failure_text, status_text};
use super::client_stack::{ApiMetricsLayer, LeaseObserverLayer, WriteFenceLayer};
use super::leader::LeaderElectionConfig;
use crate::telemetry::Telemetry;
use servicerefresh_core::policy::leadership::Leadership;

/// Timeouts of the operator's requests.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Connecting to the API server.
    pub connect: Duration,
    /// One request-response exchange (never applied to watches).
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(10), request: Duration::from_secs(30) }
    }
}

/// The clients the operator works with, and what they share with the rest of the operator:
/// its metrics and its leadership fence.
#[derive(Clone)]
pub struct Clients {
    /// Gets, lists, patches: each bounded by the request timeout; every write passes the
    /// leadership fence right before it is sent.
    pub requests: Client,
    /// Watches, which stay open for minutes; kube's watcher has its own idle timeout.
    pub watches: Client,
    /// The leader Lease's own requests: not fenced (they are how the fence opens), and read
    /// into the fence. Built only by [`Clients::from_config`].
    pub lease: Option<Client>,
    /// The API server's URL, for messages.
    pub server: String,
    /// This replica's name: the Lease holder identity and part of the User-Agent.
    pub identity: String,
    pub telemetry: Arc<Telemetry>,
    pub leadership: Arc<Leadership>,
}

/// This replica's name: `POD_NAME`, else the host name and a UUIDv7 (two processes on
/// one host must not share a Lease identity).
pub fn replica_identity() -> String {
    if let Ok(name) = std::env::var("POD_NAME")
        && !name.trim().is_empty()
    {
        return name.trim().to_owned();
    }
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "servicerefresh".to_owned());
    format!("{host}-{}", uuid::Uuid::now_v7().simple())
}

/// Where the Lease lives unless `--lease-namespace` says: `POD_NAMESPACE`, else the
/// in-cluster service account's namespace, else the kubeconfig context's namespace.
pub fn default_lease_namespace(config: &Config) -> String {
    const SERVICE_ACCOUNT_NAMESPACE: &str =
        "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
    std::env::var("POD_NAMESPACE")
        .ok()
        .or_else(|| std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE).ok())
        .map(|namespace| namespace.trim().to_owned())
        .filter(|namespace| !namespace.is_empty())
        .unwrap_or_else(|| config.default_namespace.clone())
}

/// The User-Agent of every request: the program, its version, and the replica.
pub fn user_agent(identity: &str) -> String {
    let identity: String = identity
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '(' && c != ')' { c } else { '_' })
        .collect();
    format!("servicerefresh/{} ({identity})", env!("CARGO_PKG_VERSION"))
}

impl Clients {
    /// The clients for one configuration, named `identity` in every request's User-Agent;
    /// with leader election, also the leader Lease's client.
    pub fn from_config(
        mut config: Config,
        timeouts: Timeouts,
        identity: &str,
        election: Option<&LeaderElectionConfig>,
    ) -> Result<Self, StartupError> {
        let server = config.cluster_url.to_string();
        let telemetry = Arc::new(Telemetry::new());
        let leadership = Arc::new(Leadership::default());
        let agent = user_agent(identity);
        let agent = HeaderValue::from_str(&agent)
            .map_err(|source| StartupError::UserAgent { agent: agent.clone(), source })?;
        config.headers.push((USER_AGENT, agent));
        config.connect_timeout = Some(timeouts.connect);
        let metrics = ApiMetricsLayer { telemetry: telemetry.clone() };
        let fence = WriteFenceLayer { leadership: leadership.clone() };
        let builder = |config: Config| {
            ClientBuilder::try_from(config)
                .map_err(|source| StartupError::Client { server: server.clone(), source })
        };
        let watches = builder(config.clone())?.with_layer(&metrics).with_layer(&fence).build();
        config.read_timeout = Some(timeouts.request);
        config.write_timeout = Some(timeouts.request);
        config.reset_reader_on_write = true;
        // No retries inside the client: a retried write would leave after the fence was
        // checked. The reconcile loop retries instead, through the fence again.
        config.default_retry = false;
        let requests = builder(config.clone())?.with_layer(&metrics).with_layer(&fence).build();
        let lease = match election {
            Some(election) => {
                let observer = LeaseObserverLayer {
                    leadership: leadership.clone(),
                    lease_path: format!(
                        "/namespaces/{}/leases/{}",
                        election.lease.namespace, election.lease.name
                    ),
                    identity: identity.to_owned(),
                };
                // A renewal that hangs must give way to the next try well before the fence
                // closes: renewals come every third of the renew deadline.
                let lease_timeout =
                    timeouts.request.min((election.renew_deadline / 3).max(Duration::from_secs(1)));
                config.read_timeout = Some(lease_timeout);
                config.write_timeout = Some(lease_timeout);
                Some(builder(config)?.with_layer(&metrics).with_layer(&observer).build())
            }
            None => None,
        };
        Ok(Self {
            requests,
            watches,
            lease,
            server,
            identity: identity.to_owned(),
            telemetry,
            leadership,
        })
    }

    /// A client for the requests this replica sends on behalf of users (the admin job API's
    /// TokenReviews, SubjectAccessReviews and job writes): like the others it names this
    /// replica and is counted in the metrics, but it passes no leadership fence (any replica
    /// serves users, standbys included) and sends at most `concurrency` requests at once.
    /// Its own connections and limit keep a flood of user requests queued behind one another,
    /// never in front of the operator's own reads and writes.
    pub fn for_users(
        &self,
        mut config: Config,
        timeouts: Timeouts,
        concurrency: usize,
    ) -> Result<Client, StartupError> {
        let agent = user_agent(&self.identity);
        let agent = HeaderValue::from_str(&agent)
            .map_err(|source| StartupError::UserAgent { agent: agent.clone(), source })?;
        config.headers.push((USER_AGENT, agent));
        config.connect_timeout = Some(timeouts.connect);
        config.read_timeout = Some(timeouts.request);
        config.write_timeout = Some(timeouts.request);
        config.default_retry = false;
        let metrics = ApiMetricsLayer { telemetry: self.telemetry.clone() };
        Ok(ClientBuilder::try_from(config)
            .map_err(|source| StartupError::Client { server: self.server.clone(), source })?
            .with_layer(&metrics)
            .with_layer(&tower::limit::ConcurrencyLimitLayer::new(concurrency.max(1)))
            .build())
    }

    /// One client for everything, as tests and the demo use against a local simulated
    /// cluster: no leader election, and no request metrics.
    pub fn single(client: Client, server: impl Into<String>) -> Self {
        Self {
            requests: client.clone(),
            watches: client,
            lease: None,
            server: server.into(),
            identity: "servicerefresh".to_owned(),
            telemetry: Arc::new(Telemetry::new()),
            leadership: Arc::new(Leadership::default()),
        }
    }
}

/// Why the operator could not start.
#[derive(Debug, Error)]
pub enum StartupError {
    #[error("cannot read kubeconfig {path}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("no cluster configured (set KUBECONFIG, pass --kubeconfig, or run in a pod)")]
    NoConfig(#[source] kube::config::InferConfigError),
    #[error("cannot use the cluster configuration for {server}")]
    Client {
        server: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot reach the Kubernetes API server at {server} (gave up after {waited:.1?})")]
    Unreachable {
        server: String,
        /// How long start-up really tried, the last attempt included.
        waited: Duration,
        #[source]
        source: Unanswered,
    },
    #[error("cannot use {agent:?} as the User-Agent")]
    UserAgent {
        agent: String,
        #[source]
        source: http::header::InvalidHeaderValue,
    },
    #[error(transparent)]
    LeaderElection(#[from] super::leader::LeaderElectionError),
    #[error(transparent)]
    Metrics(#[from] crate::telemetry::ServeError),
    #[error(
        "{server} does not look like a Kubernetes API server: GET /version answered {answer} \
         (check the server URL in the kubeconfig)"
    )]
    NotKubernetes { server: String, answer: String },
    #[error(
        "the API server at {server} refused the operator's credentials ({answer}); check the \
         ServiceAccount token or kubeconfig"
    )]
    Unauthorized { server: String, answer: String },
    #[error("the API server at {server} refused to tell its version ({answer})")]
    VersionRefused { server: String, answer: String },
    #[error(
        "the ServiceRefresh CRD (servicerefreshes.gisops.io) is not installed in the cluster at \
         {server}; install it with `servicerefresh crd | kubectl apply -f -` (or `kubectl apply -f \
         crds/servicerefresh.yaml`)"
    )]
    CrdMissing { server: String },
    #[error("the API server at {server} refused to list ServiceRefreshes{scope}: {message}")]
    Refused { server: String, scope: String, message: String },
}

/// Why the last attempt to reach the API server failed.
#[derive(Debug, Error)]
pub enum Unanswered {
    /// No connection, or it broke: the cause in a few words, then the client's own error.
    #[error("{cause}")]
    Failed {
        cause: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// The server answered that it cannot serve yet (5xx, 429).
    #[error("{answer}")]
    NotReady { answer: String },
    #[error("no answer within {0:.1?}")]
    NoAnswer(Duration),
}

impl From<kube::Error> for Unanswered {
    fn from(error: kube::Error) -> Self {
        match &error {
            kube::Error::Api(status) => Self::NotReady { answer: status_text(status) },
            _ => Self::Failed { cause: failure_text(&error), source: Box::new(error) },
        }
    }
}

/// The cluster configuration from an explicit kubeconfig file, or else KUBECONFIG or the
/// in-cluster configuration.
pub async fn load_config(kubeconfig: Option<&Path>) -> Result<Config, StartupError> {
    match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                StartupError::Kubeconfig { path: path.display().to_string(), source }
            })?;
            Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.map_err(
                |source| StartupError::Kubeconfig { path: path.display().to_string(), source },
            )
        }
        None => Config::infer().await.map_err(StartupError::NoConfig),
    }
}
