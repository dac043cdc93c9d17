//! servicerefresh-sim: a faithful simulated Kubernetes API server for
//! testing the servicerefresh operator and `kubectl` without a cluster. This
//! file owns the public API (configuration, start-up, the handle with its
//! kubeconfig, stats and fault controls); the private modules below it form
//! layers, each using only those before it (see `sim/README.md`).
//!
//! Deployments get ReplicaSets and Pods that follow their simulated
//! rollouts, StatefulSets and DaemonSets their ControllerRevisions and
//! Pods from ports of the real controllers, deleted objects are
//! garbage-collected by owner reference, deleted namespaces and CRDs stay
//! `Terminating` until emptied, and PodDisruptionBudgets get the status the
//! disruption controller computes, as in a real cluster (`sim/README.md`
//! lists what the sim covers and where it still differs). With
//! [`SimConfig::nodes`] the cluster has nodes sized to the generated fleet,
//! a scheduler places pods by their requests (those that fit nowhere stay
//! `Pending`, `Unschedulable`), and rollouts wait for room. Pods of the
//! images in [`SimConfig::run_images`] run for real: once bound to a node,
//! the sim's kubelet starts their containers as local processes, with their
//! environment, a loopback IP and a mounted ServiceAccount token, probes
//! them, restarts them, serves their output as `pods/log`, and kills them on
//! deletion (SIGTERM, the grace period, SIGKILL) and at shutdown.
//!
//! Knobs beyond [`SimConfig`]: per-workload (Deployment, StatefulSet,
//! DaemonSet) annotations `sim.gisops.io/rollout-ms: "5000"` (rollout
//! duration), `sim.gisops.io/fail: "true"` (new pods never become
//! available, so a Deployment's rollout ends in `ProgressDeadlineExceeded`
//! and a StatefulSet's or DaemonSet's never ends), `sim.gisops.io/frozen:
//! "true"` (its controller leaves it alone, so its status is what clients
//! write to the status subresource) and `sim.gisops.io/no-defaults:
//! "true"` (stored without the API server's defaults, e.g. without
//! `spec.replicas`); `GET /sim/v1/stats` serves
//! [`SimStats`], `POST /sim/v1/faults` replaces the [`FaultConfig`] and
//! [`FaultMix`] (one JSON object with the fields of both, its
//! [`FaultRule`]s included), and `GET /sim/v1/requests` lists every
//! request received ([`request_log`]).
//!
//! Every API request is authenticated and authorized as on a real cluster
//! with RBAC. The port speaks TLS ([`SimHandle::secure_url`], certificate
//! signed by [`SimHandle::ca_certificate_pem`]) and plain HTTP
//! ([`SimHandle::base_url`]). Bearer tokens work on both: the admin token
//! ([`SimHandle::admin_token`], user `kubernetes-admin` in `system:masters`)
//! and ServiceAccount tokens (TokenRequests, or
//! [`SimHandle::service_account_token`]). Without credentials, a TLS request
//! is anonymous and gets 401 except on `/healthz`, `/livez`, `/readyz` and
//! `/version`, while a plain-HTTP request acts as `system:unsecured`, an
//! admin, as on the insecure port of servers before 1.20 (kubectl sends no
//! credentials over plain HTTP). `/sim/v1/*` takes no credentials.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

// Layers, lowest first: a module uses only modules of the groups above it
// (sim/README.md says what each owns).
mod error;
mod images;
mod pki;
mod quantity;
mod util;

mod registry;

mod pod_logs;
mod runtime;
mod store;

mod patch;
mod placement;
mod schema;
mod selector;

mod auth;
mod fields;
mod validation;

mod write;

mod state;

mod controllers;

mod fleet;
mod http;
mod request_log;

pub use error::{ApiError, SimError};
pub use pki::{PkiError, ServingCertificate};
pub use quantity::{QuantityError, cpu_millis};
pub use request_log::RequestRecord;
pub use runtime::{ProcessEntry as ContainerProcess, ProcessLabels};
use state::SimState;

/// Configuration of a simulated cluster.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Listen address (default `127.0.0.1:0`, an ephemeral port).
    pub listen: SocketAddr,
    /// Namespace of the generated fleet (default `arcgis`).
    pub namespace: String,
    /// Number of generated Deployments.
    pub deployments: usize,
    /// Number of generated data-store StatefulSets (1-3 replicas each).
    pub stateful_sets: usize,
    /// Number of generated node-agent DaemonSets (a pod per node).
    pub daemon_sets: usize,
    /// Mean rollout duration of a pod-template change, in ms.
    pub rollout_ms: u64,
    /// Rollout durations spread uniformly over `rollout_ms` ± this many ms (capped at
    /// `rollout_ms`); 0 makes every rollout take exactly `rollout_ms`.
    pub rollout_jitter_ms: u64,
    /// How many generated workloads never become available on their next
    /// rollout, drawn uniformly among all of them (Deployments,
    /// StatefulSets and DaemonSets alike); at most their total.
    pub fail: usize,
    /// `spec.progressDeadlineSeconds` of generated Deployments (default 60,
    /// so that a failing one reports `ProgressDeadlineExceeded` within a
    /// minute of trying it out; the API server's default for Deployments
    /// clients create stays 600).
    pub progress_deadline_seconds: i32,
    /// Fault injection.
    pub faults: FaultConfig,
    /// Which errors injected faults are, and rates per request kind.
    pub fault_mix: FaultMix,
    /// Seed of every random choice.
    pub seed: u64,
    /// Watch events retained for resuming watches (older: 410 Expired).
    pub event_window: usize,
    /// Interval of BOOKMARK events on watches that allow them, in ms.
    pub bookmark_interval_ms: u64,
    /// Deployments get ReplicaSets and Pods that follow their rollouts
    /// (default true); false leaves the Deployment status alone.
    pub workload_objects: bool,
    /// A generated fleet of at most this many Deployments starts with its
    /// ReplicaSets and Pods (default 1,000); a larger one gets them per
    /// Deployment on its first rollout, which keeps start-up fast and small
    /// (see sim/README.md for the figures).
    pub fleet_objects_limit: usize,
    /// Images the kubelet runs for real, by repository (the image reference
    /// without tag or digest), each standing for a local executable: the
    /// image's entrypoint. A pod bound to a node with a container of such an
    /// image runs as local processes (see sim/README.md, "The kubelet");
    /// empty (the default): every pod's status is simulated.
    pub run_images: BTreeMap<String, PathBuf>,
    /// The kubelet's timings and files.
    pub kubelet: KubeletConfig,
    /// `Some(n)`: the cluster has `n` identical nodes (`sim-worker-1..n`)
    /// with CPU, memory and pod capacity; a scheduler places pods by their
    /// requests, pods that fit nowhere stay `Pending` (`Unschedulable`), and
    /// rollouts wait for room. `None` (the default): capacity is unlimited
    /// and pods are bound to `sim-worker-1..3` at creation, unchecked.
    /// `Some(0)` is taken as one node.
    pub nodes: Option<usize>,
    /// With `nodes`: the CPU (millicores) left over in total once the
    /// generated fleet's pods run; the nodes are sized for it (see
    /// sim/README.md). `None`: 2 CPUs per node. Ignored without `nodes`.
    pub spare_cpu_millis: Option<u64>,
}

/// The kubelet of pods that run for real.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletConfig {
    /// The first crash-loop back-off, in ms (real: 10 s); it doubles up to
    /// 30 times this (real: 5 min) and is forgotten after 60 times this
    /// without a crash (real: 10 min). Default 1 s.
    pub crash_loop_backoff_ms: u64,
    /// Lifetime of the ServiceAccount tokens mounted into pods, in seconds
    /// (the kubelet asks for 3607 s); each is replaced at 80% of its life.
    pub pod_token_expiration_seconds: i64,
    /// Where the pods' files go; default: a temporary directory of this
    /// sim, removed at shutdown.
    pub root_dir: Option<PathBuf>,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        KubeletConfig {
            crash_loop_backoff_ms: 1_000,
            pod_token_expiration_seconds: 3_607,
            root_dir: None,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            namespace: "arcgis".into(),
            deployments: 0,
            stateful_sets: 0,
            daemon_sets: 0,
            rollout_ms: 2_000,
            rollout_jitter_ms: 0,
            fail: 0,
            progress_deadline_seconds: 60,
            faults: FaultConfig::default(),
            fault_mix: FaultMix::default(),
            seed: 1,
            event_window: 10_000,
            bookmark_interval_ms: 60_000,
            workload_objects: true,
            fleet_objects_limit: 1_000,
            run_images: BTreeMap::new(),
            kubelet: KubeletConfig::default(),
            nodes: None,
            spare_cpu_millis: None,
        }
    }
}

/// Fault injection knobs (changeable at runtime). Which errors an injected
/// fault is, and the rates of other request kinds, are a [`FaultMix`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FaultConfig {
    /// Fraction (0..1) of writes (create, update, patch, delete,
    /// deletecollection) answered with an injected error: 500, 429 with
    /// `Retry-After`, or a 504 timeout, as the [`FaultMix`] weighs them. Never
    /// a 409: a real server answers 409 only to a stale resourceVersion.
    #[serde(alias = "writeErrorRate")]
    pub write_error_rate: f64,
    /// Latency added to every request, in ms.
    #[serde(alias = "latencyMs")]
    pub latency_ms: u64,
    /// Close open watch streams after this long, in ms.
    #[serde(alias = "watchDropEveryMs")]
    pub watch_drop_every_ms: Option<u64>,
}

/// What injected faults are and which requests they hit (changeable at
/// runtime; `POST /sim/v1/faults` takes these fields beside the
/// [`FaultConfig`] ones).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FaultMix {
    /// Error rates (0..1) per request kind, by verb (`get`, `list`,
    /// `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`)
    /// or by `verb resource` as [`SimStats::requests`] names them (`patch
    /// deployments`, `update servicerefreshes/status`), the latter first.
    /// Writes without an entry use `write_error_rate`; reads without one
    /// never fail.
    #[serde(alias = "errorRates")]
    pub error_rates: BTreeMap<String, f64>,
    /// Relative weight of 500 InternalError (`etcdserver: request timed out`).
    #[serde(alias = "internalErrorWeight")]
    pub internal_error_weight: f64,
    /// Relative weight of 429 Too Many Requests (priority and fairness
    /// rejecting the request), sent with `Retry-After`.
    #[serde(alias = "tooManyRequestsWeight")]
    pub too_many_requests_weight: f64,
    /// Relative weight of 504 Timeout (the request outlived the server's
    /// request timeout); never for watches, which the timeout exempts.
    #[serde(alias = "timeoutWeight")]
    pub timeout_weight: f64,
    /// Relative weight of etcd refusing the object as too large (500
    /// `etcdserver: request is too large`, see [`RuleError::RequestTooLarge`]);
    /// 0 by default, so mixes written before it stay as they were.
    #[serde(alias = "requestTooLargeWeight")]
    pub request_too_large_weight: f64,
    /// `Retry-After` of an injected 429, in seconds.
    #[serde(alias = "retryAfterSeconds")]
    pub retry_after_seconds: u64,
    /// How long a timed-out request hangs before its 504, in ms (the real
    /// server waits its request timeout, 60 s by default; a client with a
    /// shorter timeout of its own gives up first).
    #[serde(alias = "timeoutMs")]
    pub timeout_ms: u64,
    /// A timed-out write is still carried out, as when the server's handler
    /// outlives the request's timeout; the client cannot tell.
    #[serde(alias = "timeoutCommits")]
    pub timeout_commits: bool,
    /// Deterministic faults, applied before the rates: each fails chosen
    /// requests of one kind, whatever the rates draw.
    pub rules: Vec<FaultRule>,
}

/// A deterministic fault: fail the next request of one kind once a request
/// of another kind has arrived since the last one of the first kind. For
/// example `fail: "patch servicerefreshes/status"`, `after: "patch
/// deployments"` loses the status write an operator sends right after a
/// batch's restart patches, every time, where a rate would hit it by luck.
/// The sim keeps the rule's state (`armed`, `fired`) in place, so `GET
/// /sim/v1/faults` and [`SimHandle::fault_mix`] show how often it fired.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FaultRule {
    /// The requests it fails, by `verb resource` as [`SimStats::requests`]
    /// names them (`patch servicerefreshes/status`).
    pub fail: String,
    /// The requests that arm it (`patch deployments`): a `fail` request is
    /// failed when at least one of these arrived since the previous `fail`
    /// request (answered or failed). Empty: every `fail` request is.
    pub after: String,
    /// How many more requests it may fail; `None`: any number.
    pub times: Option<u64>,
    /// What a failed request is answered.
    pub error: RuleError,
    /// With [`RuleError::Timeout`]: how long the request hangs before its
    /// 504, in ms (a sim shutting down ends the wait). Long enough, it keeps
    /// the request in flight while a test kills its client.
    #[serde(alias = "hangMs")]
    pub hang_ms: u64,
    /// With [`RuleError::Timeout`]: the write is carried out, only its answer
    /// is lost.
    pub commits: bool,
    /// State: an `after` request arrived since the last `fail` request.
    pub armed: bool,
    /// State: how many requests it failed so far.
    pub fired: u64,
}

impl Default for FaultRule {
    fn default() -> Self {
        FaultRule {
            fail: String::new(),
            after: String::new(),
            times: Some(1),
            error: RuleError::InternalError,
            hang_ms: 0,
            commits: false,
            armed: false,
            fired: 0,
        }
    }
}

/// The answer of a request a [`FaultRule`] fails.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum RuleError {
    /// 500 InternalError (`etcdserver: request timed out`); nothing is
    /// carried out.
    InternalError,
    /// 429 Too Many Requests with `Retry-After` (the mix's
    /// `retry_after_seconds`); nothing is carried out.
    TooManyRequests,
    /// 504 Timeout, after the rule's `hang_ms`, carried out or not as its
    /// `commits` says.
    Timeout,
    /// 500 with the message `etcdserver: request is too large`, as the API
    /// server answers when etcd refuses an object over its request limit:
    /// the storage error reaches the client unconverted, so the `Status`
    /// has no `reason` and no `details` (what the sim's own size check
    /// answers too); nothing is carried out.
    RequestTooLarge,
}

impl Default for FaultMix {
    fn default() -> Self {
        FaultMix {
            error_rates: BTreeMap::new(),
            internal_error_weight: 1.0,
            too_many_requests_weight: 1.0,
            timeout_weight: 1.0,
            request_too_large_weight: 0.0,
            retry_after_seconds: 1,
            timeout_ms: 0,
            timeout_commits: false,
            rules: Vec::new(),
        }
    }
}

/// How late scheduled status changes were written: the Deployment
/// controller wakes when a rollout's next status change is due, and this
/// records by how much it missed (timer precision and load).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct DelayStats {
    /// Status changes written on schedule.
    pub count: u64,
    /// Sum of the delays in microseconds (the mean is `total_us / count`).
    pub total_us: u64,
    /// The largest delay in microseconds.
    pub max_us: u64,
    /// How many delays fell in each bucket, by the bucket's inclusive upper
    /// bound in microseconds (`u64::MAX` for the rest).
    pub buckets: BTreeMap<u64, u64>,
}

impl DelayStats {
    /// The bucket bounds, in microseconds.
    pub const BOUNDS_US: [u64; 9] =
        [250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, u64::MAX];

    /// Records one delay.
    pub fn record(&mut self, delay_us: u64) {
        self.count += 1;
        self.total_us += delay_us;
        self.max_us = self.max_us.max(delay_us);
        let bound =
            Self::BOUNDS_US.iter().copied().find(|bound| delay_us <= *bound).unwrap_or(u64::MAX);
        *self.buckets.entry(bound).or_insert(0) += 1;
    }
}

/// Counters of a simulated cluster (also at `GET /sim/v1/stats`).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct SimStats {
    /// Pod-template changes per Deployment (`ns/name`).
    pub template_changes: BTreeMap<String, u64>,
    /// Highest number of concurrent rollouts seen.
    pub peak_rolling: u64,
    /// Rollouts in progress now.
    pub rolling_now: u64,
    /// Requests per `verb resource` (e.g. `patch deployments`).
    pub requests: BTreeMap<String, u64>,
    /// How late the Deployment controller wrote the status changes of
    /// rollouts after they were due.
    pub status_delays: DelayStats,
}

/// Kills every process the kubelet started when the handle goes, even
/// without [`SimHandle::shutdown`] (a test that panics).
#[derive(Debug)]
struct ProcessReaper(Arc<runtime::ProcessTable>);

impl Drop for ProcessReaper {
    fn drop(&mut self) {
        self.0.kill_all();
    }
}

/// A running simulated cluster.
#[derive(Debug)]
pub struct SimHandle {
    sim: Arc<SimState>,
    _reaper: ProcessReaper,
    addr: SocketAddr,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    controller: tokio::task::JoinHandle<()>,
    requests: Arc<request_log::RequestLog>,
}

/// A kubeconfig for one server, user and namespace.
fn kubeconfig(
    server: &str,
    ca: Option<&str>,
    user: &str,
    token: Option<&str>,
    namespace: &str,
) -> String {
    use base64::Engine;
    let ca = ca
        .map(|ca| {
            let data = base64::engine::general_purpose::STANDARD.encode(ca);
            format!("    certificate-authority-data: {data}\n")
        })
        .unwrap_or_default();
    let credentials = match token {
        Some(token) => format!("\n    token: {token}"),
        None => " {}".to_string(),
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {server}\n{ca}users:\n- name: {user}\n  user:{credentials}\ncontexts:\n- name: {user}\n  context:\n    cluster: sim\n    user: {user}\n    namespace: {namespace}\ncurrent-context: {user}\npreferences: {{}}\n"
    )
}

/// Starts a simulated cluster.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| SimError::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr()?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let pki = pki::ClusterPki::generate()?;
    let container_runtime = runtime::ContainerRuntime::new()?;
    let reaper = ProcessReaper(container_runtime.processes().clone());
    let sim =
        Arc::new(SimState::new(config.clone(), addr, shutdown_rx.clone(), pki, container_runtime));
    fleet::seed(&sim, &config)?;
    let controller = tokio::spawn(controllers::run(sim.clone()));
    let requests = Arc::new(request_log::RequestLog::default());
    let app = request_log::wire(http::router(sim.clone()), requests.clone())
        .into_make_service_with_connect_info::<http::Transport>();
    let listener = http::SimListener::new(listener, sim.pki.api_server())?;
    let mut shutdown = shutdown_rx;
    let server = tokio::spawn(async move {
        let graceful = async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(graceful).await {
            tracing::error!(error = %error, "sim server failed");
        }
    });
    Ok(SimHandle { sim, _reaper: reaper, addr, shutdown_tx, server, controller, requests })
}

impl SimHandle {
    /// The address the server listens on (the ephemeral port resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: the plain-HTTP side of the port, where a request
    /// without credentials acts as an admin (`system:unsecured`, as on the
    /// insecure port of servers before 1.20).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `https://<addr>`: the secure side of the port, where every request
    /// is authenticated as on a real API server (its certificate is signed
    /// by [`Self::ca_certificate_pem`]).
    pub fn secure_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The cluster CA's certificate (PEM), which clients of
    /// [`Self::secure_url`] trust: generated when the sim starts, so each
    /// sim has its own.
    pub fn ca_certificate_pem(&self) -> &str {
        self.sim.pki.ca_pem()
    }

    /// A kubeconfig (cluster, user and context `sim`) for the plain-HTTP
    /// side with the admin token: kube-rs sends the token, kubectl (which
    /// sends no credentials over plain HTTP) acts as `system:unsecured`;
    /// both are admins.
    pub fn kubeconfig_yaml(&self, namespace: &str) -> String {
        kubeconfig(&self.base_url(), None, "sim", Some(&self.admin_token()), namespace)
    }

    /// A kubeconfig for the secure side with the admin token (user and
    /// context `kubernetes-admin`, in `namespace`), as kubeadm's
    /// `admin.conf`: kubectl sends the token over TLS, so `kubectl auth
    /// whoami` answers `kubernetes-admin`.
    pub fn secure_admin_kubeconfig_yaml(&self, namespace: &str) -> String {
        self.secure_kubeconfig_yaml(auth::ADMIN_USER, Some(&self.admin_token()), namespace)
    }

    /// A serving certificate signed by the cluster CA for `dns_names` and
    /// `ips` (for a server of your own, such as the operator's admin API,
    /// that clients trusting [`Self::ca_certificate_pem`] then trust).
    pub fn issue_serving_certificate(
        &self,
        dns_names: &[String],
        ips: &[std::net::IpAddr],
    ) -> Result<ServingCertificate, SimError> {
        let common_name = dns_names
            .first()
            .cloned()
            .or_else(|| ips.first().map(ToString::to_string))
            .unwrap_or_else(|| "localhost".to_string());
        Ok(self.sim.pki.issue(&common_name, dns_names, ips)?)
    }

    /// Creates the namespace `name` unless it exists.
    pub fn create_namespace(&self, name: &str) -> Result<(), SimError> {
        let mut store = self.sim.store.lock();
        let Some(def) = store.registry.get("", "v1", "namespaces") else {
            return Ok(());
        };
        let namespace = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
        });
        let options = write::WriteOptions::internal("sim");
        match write::create(&mut store, &self.sim.rng, &def, None, namespace, &options) {
            Ok(_) => Ok(()),
            Err(error) if error.reason == "AlreadyExists" => Ok(()),
            Err(error) => Err(SimError::Request(error)),
        }
    }

    /// A kubeconfig for the secure side (cluster `sim` with its CA, user
    /// and context `user`), authenticating with `token`, or anonymous
    /// without one.
    pub fn secure_kubeconfig_yaml(
        &self,
        user: &str,
        token: Option<&str>,
        namespace: &str,
    ) -> String {
        kubeconfig(&self.secure_url(), Some(self.sim.pki.ca_pem()), user, token, namespace)
    }

    /// The admin token the kubeconfig carries: user `kubernetes-admin`,
    /// groups `system:masters` and `system:authenticated`.
    pub fn admin_token(&self) -> String {
        self.sim.tokens.admin_token().to_string()
    }

    /// Creates the ServiceAccount `namespace/name` unless it exists (the
    /// namespace must exist).
    pub fn create_service_account(&self, namespace: &str, name: &str) -> Result<(), SimError> {
        let mut store = self.sim.store.lock();
        let Some(def) = store.registry.get("", "v1", "serviceaccounts") else {
            return Ok(());
        };
        let account = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        });
        let options = write::WriteOptions::internal("sim");
        match write::create(&mut store, &self.sim.rng, &def, Some(namespace), account, &options) {
            Ok(_) => Ok(()),
            Err(error) if error.reason == "AlreadyExists" => Ok(()),
            Err(error) => Err(SimError::Request(error)),
        }
    }

    /// A token of the ServiceAccount `namespace/name`, valid for `duration`
    /// for the API audience, as a TokenRequest (`kubectl create token NAME
    /// -n NAMESPACE --duration ...`) issues it; unlike the API, any
    /// duration of at least a second is accepted. Fails (404) when the
    /// ServiceAccount does not exist.
    pub fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        duration: Duration,
    ) -> Result<String, SimError> {
        let grant = auth::TokenGrant {
            namespace: namespace.to_string(),
            name: name.to_string(),
            expiration_seconds: i64::try_from(duration.as_secs().max(1)).unwrap_or(i64::MAX / 2),
            audiences: auth::api_audiences(),
            bound: None,
            now: jiff::Timestamp::now().as_second(),
        };
        let store = self.sim.store.lock();
        let (token, _) =
            self.sim.tokens.issue(&store, &self.sim.rng, &grant).map_err(SimError::Request)?;
        Ok(token)
    }

    /// A kubeconfig for the secure side that authenticates as the
    /// ServiceAccount `namespace/name` (a token valid for a day; user and
    /// context named `system:serviceaccount:<namespace>:<name>`, in the
    /// ServiceAccount's namespace): a client using it, kubectl included, has
    /// exactly the ServiceAccount's rights.
    pub fn service_account_kubeconfig_yaml(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<String, SimError> {
        let token = self.service_account_token(namespace, name, Duration::from_secs(86_400))?;
        let user = format!("system:serviceaccount:{namespace}:{name}");
        Ok(self.secure_kubeconfig_yaml(&user, Some(&token), namespace))
    }

    /// Writes [`Self::service_account_kubeconfig_yaml`] to `path`.
    pub fn write_service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
        path: &Path,
    ) -> Result<(), SimError> {
        std::fs::write(path, self.service_account_kubeconfig_yaml(namespace, name)?)?;
        Ok(())
    }

    /// Writes [`Self::kubeconfig_yaml`] for the fleet namespace to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), SimError> {
        std::fs::write(path, self.kubeconfig_yaml(&self.sim.config.namespace))?;
        Ok(())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        self.sim.with_stats(|stats| stats.clone())
    }

    /// Every request received so far, in arrival order (also at `GET /sim/v1/requests`).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.requests.snapshot()
    }

    /// The request log's clock: milliseconds since the sim started.
    pub fn now_ms(&self) -> u64 {
        self.requests.now_ms()
    }

    /// Clears the request and template-change counters and the peak (which
    /// restarts at the rollouts in progress now).
    pub fn reset_stats(&self) {
        self.sim.with_stats(|stats| {
            let rolling = stats.rolling_now;
            *stats = SimStats::default();
            stats.rolling_now = rolling;
            stats.peak_rolling = rolling;
        });
    }

    /// Replaces the fault configuration (the [`FaultMix`] stays).
    pub fn set_faults(&self, faults: FaultConfig) {
        self.sim.set_faults(faults);
    }

    /// Replaces which errors faults inject, the rates per request kind and
    /// the rules (whose state starts as given).
    pub fn set_fault_mix(&self, mix: FaultMix) {
        self.sim.set_fault_mix(mix);
    }

    /// The fault mix now, with the rules' state (`armed`, `fired`).
    pub fn fault_mix(&self) -> FaultMix {
        self.sim.fault_mix()
    }

    /// Adds a rule to the mix and returns its index in [`FaultMix::rules`].
    pub fn add_fault_rule(&self, rule: FaultRule) -> usize {
        self.sim.add_fault_rule(rule)
    }

    /// The container processes the kubelet runs now (pods of
    /// [`SimConfig::run_images`]), by main process id.
    pub fn container_processes(&self) -> Vec<ContainerProcess> {
        self.sim.runtime.processes().list()
    }

    /// Stops the server, its watches and the controllers; every process the
    /// kubelet started is killed first.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        self.sim.runtime.shut_down();
        let _ = self.server.await;
        let _ = self.controller.await;
    }
}
