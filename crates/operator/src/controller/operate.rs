//! One operator's life once its listener is up, as a list of steps: wait for the API server,
//! start the watches, build the reconcilers' shared context, wire kube's controller to the
//! watches, elect a leader, reconcile until shutdown, and hand the Lease over only once every
//! reconcile has finished.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::mpsc::{self, UnboundedReceiver, UnboundedSender};
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::OperatorConfig;
use super::caches::{
    CachedCluster, refreshes_for_budget, refreshes_for_config_map, refreshes_for_deployment,
    refreshes_for_pod, refreshes_for_secret,
};
use super::leader;
use super::preflight::preflight;
use super::reconcile::{Context, error_policy, reconcile};
use super::secret_watches::SecretWatches;
use super::startup::{Clients, StartupError};
use super::watches::{CacheEvents, Caches, report_readiness, watch_caches};
use servicerefresh_core::crd::ServiceRefresh;
use servicerefresh_core::engine::{
    ConfigMapSnapshot, DeploymentSnapshot, DisruptionBudgetSnapshot, PodSnapshot, SecretSnapshot,
    WaitReason,
};
use servicerefresh_core::policy::admission::RunSlots;
use servicerefresh_core::policy::leadership::{Change, LossReason};
use servicerefresh_core::policy::patch_memo::PatchMemo;
use servicerefresh_core::policy::plan_memo::PlanMemo;
use servicerefresh_core::policy::status_memo::StatusMemo;

/// The shutdown signal, awaited in several places.
type Shutdown = Shared<BoxFuture<'static, ()>>;

/// Runs the operator from the start-up checks to the Lease's release.
pub async fn operate(
    clients: Clients,
    config: OperatorConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), StartupError> {
    // A signal during start-up ends the wait for the API server too.
    let shutdown: Shutdown = shutdown.boxed().shared();
    if !wait_for_api_server(&clients, &config, shutdown.clone()).await? {
        return Ok(());
    }
    let namespace = config.scope.watch_namespace.as_deref();
    let (caches, events) =
        watch_caches(&clients.watches, namespace, &config.scope.extra_kinds, config.initial_list);
    config.refresh_cache.publish(caches.refreshes.clone());
    let readiness = tokio::spawn(report_readiness(clients.telemetry.clone(), caches.sync.clone()));
    let (wake_queued, slot_freed) = mpsc::unbounded();
    let (reconcile_all, reconcile_all_requested) = mpsc::unbounded::<()>();
    let (secrets, secret_changes) =
        SecretWatches::new(clients.watches.clone(), config.scope.clone());
    let context = build_context(&clients, &config, caches, secrets, wake_queued);
    let controller = wire_controller(
        events,
        secret_changes,
        &context,
        slot_freed,
        reconcile_all_requested,
        shutdown.clone(),
    );
    let election = start_election(&clients, &config, &context, reconcile_all);
    log_started(&clients, &config);
    run_controller(controller, context, shutdown).await;
    hand_over(election, &clients).await;
    readiness.abort();
    info!("servicerefresh operator stopped");
    Ok(())
}

/// Not ready until the start-up checks pass; `false` when shutdown came first.
async fn wait_for_api_server(
    clients: &Clients,
    config: &OperatorConfig,
    shutdown: Shutdown,
) -> Result<bool, StartupError> {
    clients
        .telemetry
        .readiness
        .not_ready(format!("connecting to the Kubernetes API server at {}", clients.server));
    let namespace = config.scope.watch_namespace.as_deref();
    tokio::select! {
        checked = preflight(clients, namespace, config.startup_timeout) => checked.map(|()| true),
        () = shutdown => Ok(false),
    }
}

/// The state every reconcile shares.
fn build_context(
    clients: &Clients,
    config: &OperatorConfig,
    caches: Caches,
    secrets: SecretWatches,
    wake_queued: UnboundedSender<ObjectRef<ServiceRefresh>>,
) -> Arc<Context> {
    Arc::new(Context {
        clients: clients.clone(),
        cluster: CachedCluster {
            workloads: caches.workloads,
            config_maps: caches.config_maps,
            pending_pods: caches.pending_pods,
            disruption_budgets: caches.disruption_budgets,
            secrets,
            patches: PatchMemo::default(),
        },
        refreshes: caches.refreshes,
        plan_memo: PlanMemo::default(),
        refusals: Default::default(),
        forbidden: Default::default(),
        scope: config.scope.clone(),
        min_restart_interval: config.min_restart_interval,
        slots: RunSlots::new(config.max_concurrent_runs),
        memo: StatusMemo::default(),
        awaiting: Arc::default(),
        wake_queued,
        retry_delay: config.retry_delay,
        telemetry: clients.telemetry.clone(),
        leadership: clients.leadership.clone(),
        deliveries: Arc::default(),
        sync: caches.sync,
        health_checks: super::health_gate::HealthChecks::new(config.monitoring.clone()),
        notifier: super::notify::Notifier::new(
            clients.requests.clone(),
            clients.telemetry.clone(),
            clients.leadership.clone(),
        ),
    })
}

/// kube's controller over the ServiceRefresh watch, with Deployment, ConfigMap and Secret
/// changes routed to the resources they concern.
fn wire_controller(
    events: CacheEvents,
    secret_changes: UnboundedReceiver<SecretSnapshot>,
    context: &Context,
    slot_freed: UnboundedReceiver<ObjectRef<ServiceRefresh>>,
    reconcile_all_requested: UnboundedReceiver<()>,
    shutdown: Shutdown,
) -> Controller<ServiceRefresh> {
    let deliveries = context.deliveries.clone();
    let awaiting = context.awaiting.clone();
    let refreshes = context.refreshes.clone();
    let budget_awaiting = context.awaiting.clone();
    let workloads = context.cluster.workloads.clone();
    let refreshes_of_secrets = context.refreshes.clone();
    // No debounce: a batch's last rollout must start the next batch at once, and the engine
    // skips the status write of a pass that changes nothing.
    Controller::for_stream(events.refreshes, context.refreshes.clone())
        .with_config(ControllerConfig::default().debounce(Duration::ZERO))
        .watches_stream(events.workloads, move |deployment: DeploymentSnapshot| {
            let owners = refreshes_for_deployment(&deployment, &awaiting);
            // Only a Deployment some run restarted or waits on can end a batch: the rest of
            // the fleet (the first list's thousands) needs no entry.
            if !owners.is_empty() {
                deliveries.record(deployment.key(), Instant::now());
            }
            owners
        })
        .watches_stream(events.config_maps, move |config_map: ConfigMapSnapshot| {
            refreshes_for_config_map(&refreshes, &config_map)
        })
        .watches_stream(events.pending_pods, |pod: PodSnapshot| refreshes_for_pod(&pod))
        .watches_stream(events.disruption_budgets, move |budget: DisruptionBudgetSnapshot| {
            refreshes_for_budget(&budget, &budget_awaiting, &workloads)
        })
        .watches_stream(
            secret_changes.map(Ok::<_, kube::runtime::watcher::Error>).boxed(),
            move |secret: SecretSnapshot| refreshes_for_secret(&refreshes_of_secrets, &secret),
        )
        // A finished run frees a slot; queued resources must hear about it.
        .reconcile_on(slot_freed)
        // A new leader looks at every resource.
        .reconcile_all_on(reconcile_all_requested)
        .graceful_shutdown_on(shutdown)
}

/// The running leader election, stopped by [`hand_over`].
struct Election {
    stop: oneshot::Sender<()>,
    task: Option<JoinHandle<()>>,
}

/// Starts leader election through the Lease; without one, this replica leads from the start,
/// in one term.
fn start_election(
    clients: &Clients,
    config: &OperatorConfig,
    context: &Arc<Context>,
    reconcile_all: UnboundedSender<()>,
) -> Election {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = match (&config.leader_election, &clients.lease) {
        (Some(election), Some(lease_client)) => {
            let on_change = leadership_changes(context, clients, config, reconcile_all);
            Some(tokio::spawn(leader::run(
                lease_client.clone(),
                election.clone(),
                clients.identity.clone(),
                clients.leadership.clone(),
                on_change,
                stopped,
            )))
        }
        _ => {
            for change in clients.leadership.poll(Instant::now()) {
                if let Change::Acquired { .. } = change {
                    clients.telemetry.leader.set(1);
                }
            }
            None
        }
    };
    Election { stop, task }
}

/// What a change of leadership does: a new term starts afresh and reconciles everything; a
/// lost one zeroes the leader's gauges.
fn leadership_changes(
    context: &Arc<Context>,
    clients: &Clients,
    config: &OperatorConfig,
    reconcile_all: UnboundedSender<()>,
) -> impl Fn(Change) + Send + Sync + 'static {
    let context = context.clone();
    let identity = clients.identity.clone();
    let lease = lease_name(config).unwrap_or_default();
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
            for reason in WaitReason::ALL {
                context.telemetry.set_waiting(reason.as_str(), 0);
            }
        }
    }
}

/// `namespace/name` of the leader Lease, with leader election.
fn lease_name(config: &OperatorConfig) -> Option<String> {
    config
        .leader_election
        .as_ref()
        .map(|election| format!("{}/{}", election.lease.namespace, election.lease.name))
}

fn log_started(clients: &Clients, config: &OperatorConfig) {
    let namespace = config.scope.watch_namespace.as_deref();
    let lease = lease_name(config);
    info!(server = %clients.server, namespace = namespace.unwrap_or("(all)"), max_concurrent_runs = config.max_concurrent_runs, identity = %clients.identity, leader_election = lease.as_deref().unwrap_or("off"), "servicerefresh operator started");
}

/// Reconciles until shutdown, then until the reconciles in progress have finished.
async fn run_controller(
    controller: Controller<ServiceRefresh>,
    context: Arc<Context>,
    shutdown: Shutdown,
) {
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
}

/// Every reconcile has finished: only now may the Lease go to another replica.
async fn hand_over(election: Election, clients: &Clients) {
    match election.task {
        Some(task) => {
            let _ = election.stop.send(());
            let _ = task.await;
        }
        None => clients.leadership.step_down(),
    }
}
