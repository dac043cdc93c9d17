//! servicerefresh-sim: a faithful simulated Kubernetes API server for
//! testing the servicerefresh operator and `kubectl` without a cluster. This
//! file owns the public API (start-up, the handle with its kubeconfig, stats
//! and fault controls, and the configuration types of `config` it
//! re-exports); the private modules below it form layers, each using only
//! those before it (see `sim/README.md`).
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
//! `spec.replicas`), and on Deployments `sim.gisops.io/errors-per-second`
//! (the errors its pods serve once restarted, exported by `GET
//! /sim/v1/metrics` for Prometheus); `GET /sim/v1/stats` serves
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

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

// Layers, lowest first: a module uses only modules of the groups above it
// (sim/README.md says what each owns).
mod config;
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

pub use config::{
    DelayStats, FaultConfig, FaultMix, FaultRule, KubeletConfig, RuleError, SimConfig, SimStats,
};
pub use error::{ApiError, SimError};
pub use pki::{PkiError, ServingCertificate};
pub use quantity::{QuantityError, cpu_millis};
pub use request_log::RequestRecord;
pub use runtime::{ProcessEntry as ContainerProcess, ProcessLabels};
use state::SimState;

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
