//! The IO shell around the engine: it watches ServiceRefreshes, Deployments and ConfigMaps,
//! runs one reconcile per ServiceRefresh change (observe → admit → act → requeue, in
//! [`reconcile`]), and never waits for a rollout inside a reconcile: progress arrives as
//! Deployment watch events routed to the resources waiting on them. Decisions are the
//! engine's; the stateful policy the shell consults lives in [`servicerefresh_core::policy`].

mod act;
mod caches;
mod client_stack;
mod leader;
pub mod plans;
mod reconcile;
mod shared;
mod startup;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, predicates, watcher};
use tracing::{debug, info, warn};

pub use act::{
    Applied, ApplyError, FIELD_MANAGER, StatusWrite, Ungated, WriteGate, WriteMemos,
    apply_decision, apply_decision_gated, classify_patch_result, event_name, restart_patch,
    status_apply_body,
};
pub use caches::CachedCluster;
pub use leader::{LeaderElectionConfig, LeaderElectionError, LeaseLocation, Timing};
pub use reconcile::ReconcileError;
pub use shared::RefreshCache;
pub use startup::{
    Clients, StartupError, Timeouts, Unanswered, default_lease_namespace, load_config, preflight,
    replica_identity, user_agent,
};

use crate::telemetry::{self, Telemetry};
use caches::{
    Cache, CacheSync, WatchDeliveries, api_for, refreshes_for_config_map, refreshes_for_deployment,
    watch,
};
use reconcile::{Context, error_policy, reconcile};
use servicerefresh_core::crd::ServiceRefresh;
use servicerefresh_core::engine::run::{
    REASON_CONFIG_MAP_CHANGED, REASON_CREATED, REASON_RUN_REQUESTED, REASON_TRIGGER_CHANGED,
};
use servicerefresh_core::engine::{ConfigMapSnapshot, DeploymentSnapshot, OperatorScope};
use servicerefresh_core::policy::admission::RunSlots;
use servicerefresh_core::policy::awaiting::AwaitIndex;
use servicerefresh_core::policy::leadership::{Change, LossReason};
use servicerefresh_core::policy::patch_memo::PatchMemo;
use servicerefresh_core::policy::plan_memo::PlanMemo;
use servicerefresh_core::policy::status_memo::StatusMemo;

/// Settings of the operator that are not part of any resource.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// Where resources may reach; its watch namespace is also what the operator watches.
    pub scope: OperatorScope,
    /// How many ServiceRefreshes may run at once across the cluster.
    pub max_concurrent_runs: usize,
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
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            scope: OperatorScope::default(),
            max_concurrent_runs: 1,
            retry_delay: Duration::from_secs(2),
            startup_timeout: Duration::from_secs(60),
            leader_election: None,
            metrics_listen: None,
            refresh_cache: RefreshCache::default(),
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
    if let Some(election) = &config.leader_election {
        let timing = election.timing()?;
        if clients.lease.is_none() {
            return Err(LeaderElectionError::NoLeaseClient.into());
        }
        clients.leadership.elect(timing.validity);
    }
    clients.telemetry.zero(
        &[REASON_CREATED, REASON_TRIGGER_CHANGED, REASON_RUN_REQUESTED, REASON_CONFIG_MAP_CHANGED],
        &["Succeeded", "Failed", "Cancelled"],
        &["Ready", "Failed", "TimedOut", "Gone", "Skipped"],
        &ReconcileError::KINDS,
    );
    let server = match config.metrics_listen {
        Some(address) => {
            let server = telemetry::serve(address, clients.telemetry.clone()).await?;
            info!(address = %server.address, "serving /metrics, /healthz and /readyz");
            Some(server)
        }
        None => None,
    };
    let result = operate(clients, config, shutdown).await;
    if let Some(server) = server {
        server.stop().await;
    }
    result
}

async fn operate(
    clients: Clients,
    config: OperatorConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), StartupError> {
    let namespace = config.scope.watch_namespace.as_deref();
    let telemetry = clients.telemetry.clone();
    // A signal during start-up ends the wait for the API server too.
    let shutdown = shutdown.shared();
    telemetry
        .readiness
        .not_ready(format!("connecting to the Kubernetes API server at {}", clients.server));
    tokio::select! {
        checked = preflight(&clients, namespace, config.startup_timeout) => checked?,
        () = shutdown.clone() => return Ok(()),
    }
    let watches = &clients.watches;

    let awaiting = Arc::new(AwaitIndex::default());
    let deliveries = Arc::new(WatchDeliveries::default());
    let sync = Arc::new(CacheSync::default());
    let (deployment_cache, deployment_writer) = reflector::store();
    let deployment_events = watch(api_for::<DeploymentSnapshot>(watches, namespace))
        .inspect(log_refusals(Cache::Deployments))
        .reflect(deployment_writer)
        .inspect(synced(&sync, Cache::Deployments))
        .touched_objects();

    let (config_map_cache, config_map_writer) = reflector::store();
    let config_map_events = watch(api_for::<ConfigMapSnapshot>(watches, namespace))
        .inspect(log_refusals(Cache::ConfigMaps))
        .reflect(config_map_writer)
        .inspect(synced(&sync, Cache::ConfigMaps))
        .touched_objects()
        .predicate_filter(predicates::resource_version, Default::default());

    let (refresh_cache, refresh_writer) = reflector::store();
    let refresh_events = watch(api_for::<ServiceRefresh>(watches, namespace))
        .inspect(log_refusals(Cache::ServiceRefreshes))
        .modify(|refresh: &mut ServiceRefresh| refresh.metadata.managed_fields = None)
        .reflect(refresh_writer)
        .inspect(synced(&sync, Cache::ServiceRefreshes))
        .touched_objects();
    config.refresh_cache.publish(refresh_cache.clone());

    let readiness = tokio::spawn(report_readiness(telemetry.clone(), sync.clone()));

    let (wake_queued, slot_freed) = futures::channel::mpsc::unbounded();
    let (reconcile_all, reconcile_all_requested) = futures::channel::mpsc::unbounded::<()>();
    let context = Arc::new(Context {
        clients: clients.clone(),
        cluster: CachedCluster {
            deployments: deployment_cache,
            config_maps: config_map_cache,
            patches: PatchMemo::default(),
        },
        refreshes: refresh_cache.clone(),
        plan_memo: PlanMemo::default(),
        scope: config.scope.clone(),
        slots: RunSlots::new(config.max_concurrent_runs),
        memo: StatusMemo::default(),
        awaiting: awaiting.clone(),
        wake_queued,
        retry_delay: config.retry_delay,
        telemetry: telemetry.clone(),
        leadership: clients.leadership.clone(),
        deliveries: deliveries.clone(),
        sync,
    });

    let refreshes_for_mapper = refresh_cache.clone();
    // No debounce: a batch's last rollout must start the next batch at once, and the engine
    // skips the status write of a pass that changes nothing.
    let controller = Controller::for_stream(refresh_events, refresh_cache)
        .with_config(ControllerConfig::default().debounce(Duration::ZERO))
        .watches_stream(deployment_events, move |deployment: DeploymentSnapshot| {
            deliveries.record(deployment.key(), Instant::now());
            refreshes_for_deployment(&deployment, &awaiting)
        })
        .watches_stream(config_map_events, move |config_map: ConfigMapSnapshot| {
            refreshes_for_config_map(&refreshes_for_mapper, &config_map)
        })
        // A finished run frees a slot; queued resources must hear about it.
        .reconcile_on(slot_freed)
        // A new leader looks at every resource.
        .reconcile_all_on(reconcile_all_requested)
        .graceful_shutdown_on(shutdown.clone());

    let lease_name = config
        .leader_election
        .as_ref()
        .map(|election| format!("{}/{}", election.lease.namespace, election.lease.name));
    let on_change = {
        let context = context.clone();
        let identity = clients.identity.clone();
        let lease = lease_name.clone().unwrap_or_default();
        move |change: Change| match change {
            Change::Acquired { term } => {
                info!(identity = %identity, lease = %lease, term, "leadership acquired");
                context.start_term();
                context.telemetry.leader.set(1);
                let _ = reconcile_all.unbounded_send(());
            }
            Change::Lost { term, reason } => {
                if reason == LossReason::SteppedDown {
                    info!(identity = %identity, lease = %lease, term, reason = reason.as_str(), "leadership given up");
                } else {
                    warn!(identity = %identity, lease = %lease, term, reason = reason.as_str(), "leadership lost");
                }
                context.telemetry.leader.set(0);
                context.telemetry.runs_active.set(0);
                context.telemetry.runs_queued.set(0);
            }
        }
    };
    let (stop_election, election_stopped) = tokio::sync::oneshot::channel::<()>();
    let election = match (&config.leader_election, &clients.lease) {
        (Some(election), Some(lease_client)) => Some(tokio::spawn(leader::run(
            lease_client.clone(),
            election.clone(),
            clients.identity.clone(),
            clients.leadership.clone(),
            on_change,
            election_stopped,
        ))),
        _ => {
            // Without election this replica leads from the start, in one term.
            for change in clients.leadership.poll(Instant::now()) {
                if let Change::Acquired { .. } = change {
                    telemetry.leader.set(1);
                }
            }
            None
        }
    };

    info!(server = %clients.server, namespace = namespace.unwrap_or("(all)"), max_concurrent_runs = config.max_concurrent_runs, identity = %clients.identity, leader_election = lease_name.as_deref().unwrap_or("off"), "servicerefresh operator started");
    // kube's controller holds its runner until the caches are ready, and a graceful shutdown
    // waits for the runner; a shutdown before the first lists completed would wait for
    // caches nobody fills any more. With a cache not synced, no reconcile has run to finish.
    let stopped_unsynced = {
        let sync = context.sync.clone();
        async move {
            shutdown.await;
            if sync.pending().is_empty() {
                std::future::pending::<()>().await;
            }
        }
    };
    let running = controller.run(reconcile, error_policy, context).for_each(|result| async move {
        // Failures were logged by the error policy, with their causes.
        if let Ok((object, _)) = result {
            debug!(%object, "reconciled");
        }
    });
    tokio::select! {
        () = running => {}
        () = stopped_unsynced => info!("stopped before the caches synced; nothing was in flight"),
    }
    // Every reconcile has finished: only now may the Lease go to another replica.
    if let Some(election) = election {
        let _ = stop_election.send(());
        let _ = election.await;
    } else {
        clients.leadership.step_down();
    }
    readiness.abort();
    info!("servicerefresh operator stopped");
    Ok(())
}

/// Tells `sync` when a watch stream delivers its first complete list.
fn synced<K>(
    sync: &Arc<CacheSync>,
    cache: Cache,
) -> impl Fn(&Result<watcher::Event<K>, watcher::Error>) + Send + 'static {
    let sync = sync.clone();
    move |event| {
        if let Ok(watcher::Event::InitDone) = event {
            sync.synced(cache);
        }
    }
}

/// Logs every watch or list the API server refuses (401, 403: a missing permission or a
/// revoked token), naming the cache and quoting the server's message, which says which verb on
/// which resource was refused. The watcher retries with backoff, so a missing right shows up
/// as one such line every few seconds, while the cache it feeds stays stale or unsynced. Other
/// watch errors (dropped connections, expired versions) are routine and logged at debug.
fn log_refusals<K>(cache: Cache) -> impl Fn(&Result<watcher::Event<K>, watcher::Error>) + Send {
    move |event| {
        let Err(error) = event else {
            return;
        };
        match refusal(error) {
            Some(status) => warn!(
                watch = cache.name(),
                code = status.code,
                error = %status.message,
                "watch refused by the API server; retrying with backoff"
            ),
            None => debug!(watch = cache.name(), %error, "watch failed; retrying with backoff"),
        }
    }
}

/// The API server's answer when a watch error is an authentication or authorization refusal.
fn refusal(error: &watcher::Error) -> Option<&kube::core::Status> {
    let status = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status))
        | watcher::Error::WatchError(status) => status.as_ref(),
        _ => return None,
    };
    matches!(status.code, 401 | 403).then_some(status)
}

/// Keeps `/readyz` saying which watch caches are still filling.
async fn report_readiness(telemetry: Arc<Telemetry>, sync: Arc<CacheSync>) {
    let mut changes = sync.subscribe();
    loop {
        let pending = sync.pending();
        if pending.is_empty() {
            telemetry.readiness.ready();
            info!("watch caches synced: ready");
            return;
        }
        telemetry
            .readiness
            .not_ready(format!("waiting for the watch caches to sync: {}", pending.join(", ")));
        if changes.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::core::Status;
    use kube::runtime::watcher::Error;

    use super::refusal;

    fn status(code: u16) -> Box<Status> {
        Status::failure("deployments.apps is forbidden: User \"u\" cannot watch", "Forbidden")
            .with_code(code)
            .boxed()
    }

    #[test]
    fn refused_lists_and_watches_are_told_apart_from_routine_watch_errors() {
        let refused = [
            Error::InitialListFailed(kube::Error::Api(status(403))),
            Error::WatchStartFailed(kube::Error::Api(status(403))),
            Error::WatchFailed(kube::Error::Api(status(401))),
            Error::WatchError(status(403)),
        ];
        for error in &refused {
            let found = refusal(error).unwrap_or_else(|| panic!("{error} is a refusal"));
            assert!(found.message.starts_with("deployments.apps is forbidden"));
        }
        let routine = [
            Error::WatchError(status(410)),
            Error::InitialListFailed(kube::Error::Api(status(500))),
            Error::NoResourceVersion,
        ];
        for error in &routine {
            assert!(refusal(error).is_none(), "{error} is routine");
        }
    }
}
