//! The watch streams that fill the operator's caches: one per kind (Deployments, the
//! StatefulSets and DaemonSets the operator was told to restart, ConfigMaps, ServiceRefreshes,
//! the Pending pods capacity-aware pacing reads and the PodDisruptionBudgets), each feeding
//! its reflector store, telling [`CacheSync`] when its first list is complete and logging
//! what the API server refuses; and `/readyz`, which follows those first lists.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::NamespaceResourceScope;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Client, Resource};
use tracing::info;

use super::answers::log_watch_refusals;
use super::caches::{Cache, CacheSync, WorkloadStores};
use super::listing::InitialList;
use crate::telemetry::Telemetry;
use servicerefresh_core::crd::{ServiceRefresh, WorkloadKind};
use servicerefresh_core::engine::{
    ConfigMapSnapshot, DeploymentSnapshot, DisruptionBudgetSnapshot, PodSnapshot,
};

/// The reflector stores the watches fill, and how far they got.
pub struct Caches {
    pub workloads: WorkloadStores,
    pub config_maps: Store<ConfigMapSnapshot>,
    pub refreshes: Store<ServiceRefresh>,
    pub pending_pods: Store<PodSnapshot>,
    pub disruption_budgets: Store<DisruptionBudgetSnapshot>,
    pub sync: Arc<CacheSync>,
}

/// A watch stream of changed objects, already reflected into its store.
pub type Changes<K> = BoxStream<'static, Result<K, watcher::Error>>;

/// The changed objects of each watch, for the controller to route. Nothing is watched until
/// they are polled.
pub struct CacheEvents {
    /// Deployments, StatefulSets and DaemonSets, in one stream.
    pub workloads: Changes<DeploymentSnapshot>,
    pub config_maps: Changes<ConfigMapSnapshot>,
    pub refreshes: Changes<ServiceRefresh>,
    pub pending_pods: Changes<PodSnapshot>,
    pub disruption_budgets: Changes<DisruptionBudgetSnapshot>,
}

/// Only Pending pods can be waiting for a node; a pod that leaves the phase leaves the cache
/// (the watch delivers it as deleted).
const PENDING_PODS: &str = "status.phase=Pending";

/// The watches in `namespace` (or all namespaces) and the caches they fill. StatefulSets
/// and DaemonSets are watched only when `extra_kinds` names them: the operator may hold no
/// right to list them, and a cache of them costs memory. Each watch lists what exists as
/// `initial_list` says.
pub fn watch_caches(
    watches: &Client,
    namespace: Option<&str>,
    extra_kinds: &BTreeSet<WorkloadKind>,
    initial_list: InitialList,
) -> (Caches, CacheEvents) {
    let sync = Arc::new(CacheSync::default());

    let mut workload_events = Vec::new();
    let mut workload = |kind: WorkloadKind| {
        let cache = Cache::of_workloads(kind);
        let writer = reflector::store::Writer::new(kind);
        let store = writer.as_reader();
        workload_events.push(
            watch(workload_api(watches, namespace, kind), initial_list.watcher_config())
                .inspect(log_refusals(cache))
                // A list's items carry no kind; the watch knows which one it lists.
                .modify(move |workload: &mut DeploymentSnapshot| workload.kind = kind)
                .reflect(writer)
                .inspect(synced(&sync, cache))
                .touched_objects()
                .boxed(),
        );
        store
    };
    let deployments = workload(WorkloadKind::Deployment);
    let mut extra = |kind: WorkloadKind| {
        if extra_kinds.contains(&kind) {
            Some(workload(kind))
        } else {
            // Never watched: nothing to wait for.
            sync.synced(Cache::of_workloads(kind));
            None
        }
    };
    let stateful_sets = extra(WorkloadKind::StatefulSet);
    let daemon_sets = extra(WorkloadKind::DaemonSet);
    let workloads = WorkloadStores { deployments, stateful_sets, daemon_sets };
    let workload_events = futures::stream::select_all(workload_events).boxed();

    let (config_maps, writer) = reflector::store();
    let config_map_events =
        watch(api_for::<ConfigMapSnapshot>(watches, namespace), initial_list.watcher_config())
            .inspect(log_refusals(Cache::ConfigMaps))
            .reflect(writer)
            .inspect(synced(&sync, Cache::ConfigMaps))
            .touched_objects()
            .predicate_filter(predicates::resource_version, Default::default())
            .boxed();

    let (refreshes, writer) = reflector::store();
    let refresh_events =
        watch(api_for::<ServiceRefresh>(watches, namespace), initial_list.watcher_config())
            .inspect(log_refusals(Cache::ServiceRefreshes))
            .modify(|refresh: &mut ServiceRefresh| refresh.metadata.managed_fields = None)
            .reflect(writer)
            .inspect(synced(&sync, Cache::ServiceRefreshes))
            .touched_objects()
            .boxed();

    let (pending_pods, writer) = reflector::store();
    let pod_config = initial_list.watcher_config().fields(PENDING_PODS);
    let pod_events = watch(api_for::<PodSnapshot>(watches, namespace), pod_config)
        .inspect(log_refusals(Cache::PendingPods))
        .reflect(writer)
        .inspect(synced(&sync, Cache::PendingPods))
        .touched_objects()
        .boxed();

    let (disruption_budgets, writer) = reflector::store();
    let budget_events = watch(
        api_for::<DisruptionBudgetSnapshot>(watches, namespace),
        initial_list.watcher_config(),
    )
    .inspect(log_refusals(Cache::DisruptionBudgets))
    .reflect(writer)
    .inspect(synced(&sync, Cache::DisruptionBudgets))
    .touched_objects()
    .predicate_filter(predicates::resource_version, Default::default())
    .boxed();

    let caches =
        Caches { workloads, config_maps, refreshes, pending_pods, disruption_budgets, sync };
    let events = CacheEvents {
        workloads: workload_events,
        config_maps: config_map_events,
        refreshes: refresh_events,
        pending_pods: pod_events,
        disruption_budgets: budget_events,
    };
    (caches, events)
}

/// An API handle for a namespaced kind, in one namespace or all of them.
fn api_for<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// An API handle for workloads of `kind`, in one namespace or all of them.
fn workload_api(
    client: &Client,
    namespace: Option<&str>,
    kind: WorkloadKind,
) -> Api<DeploymentSnapshot> {
    match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &kind),
        None => Api::all_with(client.clone(), &kind),
    }
}

/// A watch with kube's default backoff, resuming from where it was after a dropped
/// connection and re-listing only when the server says the version expired.
fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(api, config).default_backoff()
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

/// Logs every watch or list the API server refuses, naming the cache
/// ([`log_watch_refusals`]).
fn log_refusals<K>(cache: Cache) -> impl Fn(&Result<watcher::Event<K>, watcher::Error>) + Send {
    log_watch_refusals(cache.name())
}

/// Keeps `/readyz` saying which watch caches are still filling.
pub async fn report_readiness(telemetry: Arc<Telemetry>, sync: Arc<CacheSync>) {
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
