//! The IO shell around the engine: it watches ServiceRefreshes, workloads, ConfigMaps and the
//! Secrets that Secret triggers name,
//! runs one reconcile per ServiceRefresh change (observe → admit → act → requeue, in
//! [`reconcile`]), and never waits for a rollout inside a reconcile: progress arrives as
//! Deployment watch events routed to the resources waiting on them. Decisions are the
//! engine's; the stateful policy the shell consults lives in [`servicerefresh_core::policy`].

mod act;
mod answers;
mod caches;
mod client_stack;
mod forbidden;
mod health_gate;
mod leader;
mod listing;
mod notify;
mod operate;
pub mod plans;
mod preflight;
mod reconcile;
mod secret_watches;
mod shared;
mod startup;
mod watches;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tracing::info;

pub use act::{
    Applied, ApplyError, FIELD_MANAGER, StatusWrite, Ungated, WriteGate, WriteMemos,
    apply_decision, apply_decision_gated, classify_patch_result, event_name, restart_patch,
    status_apply_body,
};
pub use caches::CachedCluster;
pub use health_gate::MonitoringDefaults;
pub use leader::{LeaderElectionConfig, LeaderElectionError, LeaseLocation, Timing};
pub use listing::{InitialList, PAGE_SIZE as LIST_PAGE_SIZE};
pub use preflight::preflight;
pub use reconcile::ReconcileError;
pub use shared::RefreshCache;
pub use startup::{
    Clients, StartupError, Timeouts, Unanswered, default_lease_namespace, load_config,
    replica_identity, user_agent,
};

use crate::telemetry::{self, Server};
use servicerefresh_core::engine::OperatorScope;
use servicerefresh_core::engine::run::{
    REASON_CONFIG_MAP_CHANGED, REASON_CREATED, REASON_RUN_REQUESTED, REASON_SECRET_CHANGED,
    REASON_TRIGGER_CHANGED,
};

/// Settings of the operator that are not part of any resource.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// Where resources may reach; its watch namespace is also what the operator watches.
    pub scope: OperatorScope,
    /// How many ServiceRefreshes may run at once across the cluster.
    pub max_concurrent_runs: usize,
    /// No Deployment is restarted by this operator twice within it, unless a run is forced
    /// (`--min-restart-interval`, 5m). Zero here, for embedding and tests; the flag sets it.
    pub min_restart_interval: jiff::SignedDuration,
    /// Delay before retrying a reconcile that hit an API error or a transient patch failure.
    pub retry_delay: Duration,
    /// How long start-up keeps retrying an unreachable API server.
    pub startup_timeout: Duration,
    /// Leader election through a Lease; `None`: this replica always leads (one replica, tests,
    /// the demo). Needs clients built by [`Clients::from_config`] with the same Lease.
    pub leader_election: Option<LeaderElectionConfig>,
    /// Where to serve `/metrics`, `/healthz` and `/readyz`; `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Where the ServiceRefresh cache is published once watching starts (the admin API reads it).
    pub refresh_cache: RefreshCache,
    /// Where health gate checks go when a spec names no URL.
    pub monitoring: MonitoringDefaults,
    /// How the cache watches list what exists at start-up (`--initial-list`).
    pub initial_list: InitialList,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            scope: OperatorScope::default(),
            max_concurrent_runs: 1,
            min_restart_interval: jiff::SignedDuration::ZERO,
            retry_delay: Duration::from_secs(2),
            startup_timeout: Duration::from_secs(60),
            leader_election: None,
            metrics_listen: None,
            refresh_cache: RefreshCache::default(),
            monitoring: MonitoringDefaults::default(),
            initial_list: InitialList::default(),
        }
    }
}

/// Runs the operator until `shutdown` resolves. Reconciles in progress finish first; then a
/// leader releases its Lease.
pub async fn run(
    clients: Clients,
    config: OperatorConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), StartupError> {
    check_election(&clients, &config)?;
    zero_metrics(&clients);
    let server = serve_telemetry(&clients, config.metrics_listen).await?;
    let result = operate::operate(clients, config, shutdown).await;
    if let Some(server) = server {
        server.stop().await;
    }
    result
}

/// With leader election, valid timing and a Lease client; the fence then starts closed.
fn check_election(clients: &Clients, config: &OperatorConfig) -> Result<(), StartupError> {
    if let Some(election) = &config.leader_election {
        let timing = election.timing()?;
        if clients.lease.is_none() {
            return Err(LeaderElectionError::NoLeaseClient.into());
        }
        clients.leadership.elect(timing.validity);
    }
    Ok(())
}

/// Every label value known in advance, at zero.
fn zero_metrics(clients: &Clients) {
    clients.telemetry.zero(
        &[
            REASON_CREATED,
            REASON_TRIGGER_CHANGED,
            REASON_RUN_REQUESTED,
            REASON_CONFIG_MAP_CHANGED,
            REASON_SECRET_CHANGED,
        ],
        &["Succeeded", "Failed", "Cancelled"],
        &["Ready", "Failed", "TimedOut", "Gone", "Skipped"],
        &ReconcileError::KINDS,
    );
    for reason in servicerefresh_core::engine::WaitReason::ALL {
        clients.telemetry.wait_began_family(reason.as_str());
        clients.telemetry.set_waiting(reason.as_str(), 0);
    }
}

/// The `/metrics`, `/healthz` and `/readyz` listener, when an address is configured.
async fn serve_telemetry(
    clients: &Clients,
    address: Option<SocketAddr>,
) -> Result<Option<Server>, StartupError> {
    let Some(address) = address else {
        return Ok(None);
    };
    let server = telemetry::serve(address, clients.telemetry.clone()).await?;
    info!(address = %server.address, "serving /metrics, /healthz and /readyz");
    Ok(Some(server))
}
