//! Connecting to the cluster: building clients from a kubeconfig or the in-cluster config,
//! with timeouts on every request but watches, and the checks that tell apart "cannot reach
//! the server", "this is not a Kubernetes API server" and "the CRD is not installed" before
//! the operator starts watching, retried with backoff for a bounded time because in a pod the
//! API server is sometimes briefly unreachable at start.

use std::path::Path;
use std::time::{Duration, Instant};

use kube::api::{Api, ListParams};
use kube::{Client, Config};
use thiserror::Error;
use tracing::info;

use crate::crd::ServiceRefresh;

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

/// The clients the operator works with.
#[derive(Clone)]
pub struct Clients {
    /// Gets, lists, patches: each bounded by the request timeout.
    pub requests: Client,
    /// Watches, which stay open for minutes; kube's watcher has its own idle timeout.
    pub watches: Client,
    /// The API server's URL, for messages.
    pub server: String,
}

impl Clients {
    /// Both kinds of client from one configuration.
    pub fn from_config(mut config: Config, timeouts: Timeouts) -> Result<Self, StartupError> {
        let server = config.cluster_url.to_string();
        config.connect_timeout = Some(timeouts.connect);
        let watches = Client::try_from(config.clone())
            .map_err(|source| StartupError::Client { server: server.clone(), source })?;
        config.read_timeout = Some(timeouts.request);
        config.write_timeout = Some(timeouts.request);
        config.reset_reader_on_write = true;
        let requests = Client::try_from(config)
            .map_err(|source| StartupError::Client { server: server.clone(), source })?;
        Ok(Self { requests, watches, server })
    }

    /// One client for everything, as tests and the demo use against a local simulated cluster.
    pub fn single(client: Client, server: impl Into<String>) -> Self {
        Self { requests: client.clone(), watches: client, server: server.into() }
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
    #[error("cannot reach the Kubernetes API server at {server} (gave up after {waited:?})")]
    Unreachable {
        server: String,
        waited: Duration,
        #[source]
        source: kube::Error,
    },
    #[error(
        "{server} does not look like a Kubernetes API server: GET /version answered {code} \
         (check the server URL in the kubeconfig)"
    )]
    NotKubernetes { server: String, code: u16 },
    #[error(
        "the ServiceRefresh CRD (servicerefreshes.gisops.io) is not installed in the cluster at \
         {server}; install it with `servicerefresh crd | kubectl apply -f -` (or `kubectl apply -f \
         crds/servicerefresh.yaml`)"
    )]
    CrdMissing { server: String },
    #[error("the API server at {server} refused to list ServiceRefreshes{scope}: {message}")]
    Refused { server: String, scope: String, message: String },
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

/// Checks that the server is a Kubernetes API server with the CRD installed, listing
/// ServiceRefreshes in `namespace` (or all namespaces), which is also the permission the
/// operator needs most. Unreachable servers and 5xx answers are retried with backoff until
/// `give_up_after`; answers that will not change are reported at once.
pub async fn preflight(
    clients: &Clients,
    namespace: Option<&str>,
    give_up_after: Duration,
) -> Result<(), StartupError> {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(200);
    loop {
        let error = match check_once(clients, namespace).await {
            Ok(()) => return Ok(()),
            Err(Check::Final(error)) => return Err(error),
            Err(Check::Retry(error)) => error,
        };
        let waited = started.elapsed();
        if waited + backoff > give_up_after {
            return Err(StartupError::Unreachable {
                server: clients.server.clone(),
                waited,
                source: error,
            });
        }
        info!(server = %clients.server, error = %error, retry_in = ?backoff, "API server not ready; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

enum Check {
    Final(StartupError),
    Retry(kube::Error),
}

fn retry_worthy(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        _ => true,
    }
}

async fn check_once(clients: &Clients, namespace: Option<&str>) -> Result<(), Check> {
    let server = clients.server.clone();
    match clients.requests.apiserver_version().await {
        Ok(_) => {}
        Err(kube::Error::Api(status))
            if (400..500).contains(&status.code) && status.code != 429 =>
        {
            return Err(Check::Final(StartupError::NotKubernetes { server, code: status.code }));
        }
        Err(error) if retry_worthy(&error) => return Err(Check::Retry(error)),
        Err(error) => return Err(Check::Final(StartupError::Client { server, source: error })),
    }
    let api: Api<ServiceRefresh> = match namespace {
        Some(namespace) => Api::namespaced(clients.requests.clone(), namespace),
        None => Api::all(clients.requests.clone()),
    };
    let scope = namespace.map(|ns| format!(" in namespace {ns}")).unwrap_or_default();
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => {
            Err(Check::Final(StartupError::CrdMissing { server }))
        }
        Err(error) if retry_worthy(&error) => Err(Check::Retry(error)),
        Err(kube::Error::Api(status)) => Err(Check::Final(StartupError::Refused {
            server,
            scope,
            message: status.message.clone(),
        })),
        Err(error) => Err(Check::Final(StartupError::Client { server, source: error })),
    }
}
