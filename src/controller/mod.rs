//! The IO shell around the engine: it watches ServiceRefreshes, Deployments and ConfigMaps,
//! runs one reconcile per ServiceRefresh change (observe → admit → act → requeue, in
//! [`reconcile`]), and never waits for a rollout inside a reconcile: progress arrives as
//! Deployment watch events routed to the resources waiting on them. Decisions are the
//! engine's; the stateful policy the shell consults lives in [`crate::policy`].

mod act;
mod caches;
mod reconcile;
mod shared;
mod startup;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector;
use kube::runtime::{WatchStreamExt, predicates};
use tracing::{debug, info};

pub use act::{
    Applied, FIELD_MANAGER, StatusWrite, apply_decision, classify_patch_result, event_name,
    restart_patch, status_apply_body,
};
pub use caches::CachedCluster;
pub use reconcile::ReconcileError;
pub use shared::RefreshCache;
pub use startup::{Clients, StartupError, Timeouts, load_config, preflight};

use crate::crd::ServiceRefresh;
use crate::engine::{ConfigMapSnapshot, DeploymentSnapshot, OperatorScope};
use crate::policy::admission::RunSlots;
use crate::policy::awaiting::AwaitIndex;
use crate::policy::status_memo::StatusMemo;
use caches::{api_for, refreshes_for_config_map, refreshes_for_deployment, watch};
use reconcile::{Context, error_policy, reconcile};

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
            refresh_cache: RefreshCache::default(),
        }
    }
}

/// Runs the operator until `shutdown` resolves. Reconciles in progress finish first.
pub async fn run(
    clients: Clients,
    config: OperatorConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), StartupError> {
    let namespace = config.scope.watch_namespace.as_deref();
    // A signal during start-up ends the wait for the API server too.
    let shutdown = shutdown.shared();
    tokio::select! {
        checked = preflight(&clients, namespace, config.startup_timeout) => checked?,
        () = shutdown.clone() => return Ok(()),
    }
    let watches = &clients.watches;

    let awaiting = Arc::new(AwaitIndex::default());
    let (deployment_cache, deployment_writer) = reflector::store();
    let deployment_events = watch(api_for::<DeploymentSnapshot>(watches, namespace))
        .reflect(deployment_writer)
        .touched_objects();

    let (config_map_cache, config_map_writer) = reflector::store();
    let config_map_events = watch(api_for::<ConfigMapSnapshot>(watches, namespace))
        .reflect(config_map_writer)
        .touched_objects()
        .predicate_filter(predicates::resource_version, Default::default());

    let (refresh_cache, refresh_writer) = reflector::store();
    let refresh_events = watch(api_for::<ServiceRefresh>(watches, namespace))
        .modify(|refresh: &mut ServiceRefresh| refresh.metadata.managed_fields = None)
        .reflect(refresh_writer)
        .touched_objects();
    config.refresh_cache.publish(refresh_cache.clone());

    let (wake_queued, slot_freed) = futures::channel::mpsc::unbounded();
    let context = Arc::new(Context {
        clients: clients.clone(),
        cluster: CachedCluster { deployments: deployment_cache, config_maps: config_map_cache },
        refreshes: refresh_cache.clone(),
        scope: config.scope.clone(),
        slots: RunSlots::new(config.max_concurrent_runs),
        memo: StatusMemo::default(),
        awaiting: awaiting.clone(),
        wake_queued,
        retry_delay: config.retry_delay,
    });

    let refreshes_for_mapper = refresh_cache.clone();
    // No debounce: a batch's last rollout must start the next batch at once, and the engine
    // skips the status write of a pass that changes nothing.
    let controller = Controller::for_stream(refresh_events, refresh_cache)
        .with_config(ControllerConfig::default().debounce(Duration::ZERO))
        .watches_stream(deployment_events, move |deployment: DeploymentSnapshot| {
            refreshes_for_deployment(&deployment, &awaiting)
        })
        .watches_stream(config_map_events, move |config_map: ConfigMapSnapshot| {
            refreshes_for_config_map(&refreshes_for_mapper, &config_map)
        })
        // A finished run frees a slot; queued resources must hear about it.
        .reconcile_on(slot_freed)
        .graceful_shutdown_on(shutdown);

    info!(server = %clients.server, namespace = namespace.unwrap_or("(all)"), max_concurrent_runs = config.max_concurrent_runs, "servicerefresh operator started");
    controller
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            // Failures were logged by the error policy, with their causes.
            if let Ok((object, _)) = result {
                debug!(%object, "reconciled");
            }
        })
        .await;
    info!("servicerefresh operator stopped");
    Ok(())
}
