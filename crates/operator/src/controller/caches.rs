//! The operator's view of the cluster: reflector caches of ServiceRefreshes and of lean
//! Workload (Deployment, StatefulSet, DaemonSet), ConfigMap, Pending pod and
//! PodDisruptionBudget snapshots (parsed straight from the watch, never as full objects), the
//! [`ClusterView`] the engine reads them through, and the mappers that route a workload,
//! ConfigMap, pod or budget change to the ServiceRefreshes it concerns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kube::runtime::reflector::{ObjectRef, Store};

use super::secret_watches::SecretWatches;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use servicerefresh_core::crd::{ServiceRefresh, ServiceRefreshSpec, WorkloadKind};
use servicerefresh_core::engine::spec::{WatchedObject, watched_config_maps, watched_secrets};
use servicerefresh_core::engine::{
    ClusterView, ConfigMapSnapshot, DeploymentSnapshot, DisruptionBudgetSnapshot, ObjectKey,
    PodSnapshot, RunId, SecretSnapshot, plan,
};
use servicerefresh_core::policy::awaiting::AwaitIndex;
use servicerefresh_core::policy::patch_memo::PatchMemo;

/// The engine's view of the caches, with this process's own restart patches laid over a
/// Deployment cache that has not caught up with them.
pub struct CachedCluster {
    pub workloads: WorkloadStores,
    pub config_maps: Store<ConfigMapSnapshot>,
    /// Pending pods only (the watch's field selector).
    pub pending_pods: Store<PodSnapshot>,
    pub disruption_budgets: Store<DisruptionBudgetSnapshot>,
    /// The Secrets `spec.secretTriggers` names, one watch each.
    pub secrets: SecretWatches,
    pub patches: PatchMemo,
}

/// The workload caches: Deployments always, StatefulSets and DaemonSets when watched.
#[derive(Clone)]
pub struct WorkloadStores {
    pub deployments: Store<DeploymentSnapshot>,
    pub stateful_sets: Option<Store<DeploymentSnapshot>>,
    pub daemon_sets: Option<Store<DeploymentSnapshot>>,
}

impl WorkloadStores {
    fn get(&self, key: &ObjectKey) -> Option<Arc<DeploymentSnapshot>> {
        self.of(key.kind)?.get(&ObjectRef::new_with(&key.name, key.kind).within(&key.namespace))
    }

    fn of(&self, kind: WorkloadKind) -> Option<&Store<DeploymentSnapshot>> {
        match kind {
            WorkloadKind::Deployment => Some(&self.deployments),
            WorkloadKind::StatefulSet => self.stateful_sets.as_ref(),
            WorkloadKind::DaemonSet => self.daemon_sets.as_ref(),
        }
    }
}

impl ClusterView for CachedCluster {
    fn deployment(&self, key: &ObjectKey) -> Option<Arc<DeploymentSnapshot>> {
        self.patches.overlay(key, self.workloads.get(key))
    }

    fn deployments(&self) -> Vec<Arc<DeploymentSnapshot>> {
        WorkloadKind::ALL
            .into_iter()
            .filter_map(|kind| self.workloads.of(kind))
            .flat_map(Store::state)
            .collect()
    }

    fn config_map(&self, key: &ObjectKey) -> Option<Arc<ConfigMapSnapshot>> {
        self.config_maps.get(&ObjectRef::new(&key.name).within(&key.namespace))
    }

    fn secret(&self, key: &ObjectKey) -> Option<Arc<SecretSnapshot>> {
        self.secrets.get(key)
    }

    fn pending_pods(&self) -> Vec<Arc<PodSnapshot>> {
        self.pending_pods.state()
    }

    fn disruption_budgets(&self) -> Vec<Arc<DisruptionBudgetSnapshot>> {
        self.disruption_budgets.state()
    }
}

/// The watch caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cache {
    Deployments = 0,
    ConfigMaps = 1,
    ServiceRefreshes = 2,
    StatefulSets = 3,
    DaemonSets = 4,
    PendingPods = 5,
    DisruptionBudgets = 6,
}

impl Cache {
    /// How many caches there are.
    pub const COUNT: usize = Cache::ALL.len();

    const ALL: [Cache; 7] = [
        Cache::Deployments,
        Cache::ConfigMaps,
        Cache::ServiceRefreshes,
        Cache::StatefulSets,
        Cache::DaemonSets,
        Cache::PendingPods,
        Cache::DisruptionBudgets,
    ];

    /// The caches a reconcile reads (an unwatched kind's counts as synced from the start).
    pub const CLUSTER: [Cache; 6] = [
        Cache::Deployments,
        Cache::StatefulSets,
        Cache::DaemonSets,
        Cache::ConfigMaps,
        Cache::PendingPods,
        Cache::DisruptionBudgets,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cache::Deployments => "Deployments",
            Cache::ConfigMaps => "ConfigMaps",
            Cache::ServiceRefreshes => "ServiceRefreshes",
            Cache::StatefulSets => "StatefulSets",
            Cache::DaemonSets => "DaemonSets",
            Cache::PendingPods => "PendingPods",
            Cache::DisruptionBudgets => "DisruptionBudgets",
        }
    }

    /// The cache of workloads of `kind`.
    pub fn of_workloads(kind: WorkloadKind) -> Self {
        match kind {
            WorkloadKind::Deployment => Cache::Deployments,
            WorkloadKind::StatefulSet => Cache::StatefulSets,
            WorkloadKind::DaemonSet => Cache::DaemonSets,
        }
    }
}

/// Which caches hold their first complete list, told by the watch streams themselves. Any
/// number of tasks may wait on it: `Store::wait_until_ready` wakes only the last of several
/// concurrent waiters (its one-shot channel keeps a single waker), so a reconcile and the
/// readiness probe waiting together could leave one of them asleep for ever.
pub struct CacheSync {
    synced: tokio::sync::watch::Sender<[bool; Cache::COUNT]>,
}

impl Default for CacheSync {
    fn default() -> Self {
        Self { synced: tokio::sync::watch::Sender::new([false; Cache::COUNT]) }
    }
}

impl CacheSync {
    /// `cache` received its first complete list.
    pub fn synced(&self, cache: Cache) {
        self.synced
            .send_if_modified(|synced| !std::mem::replace(&mut synced[cache as usize], true));
    }

    /// Waits until every one of `caches` has synced.
    pub async fn wait_for(&self, caches: &[Cache]) {
        let mut synced = self.synced.subscribe();
        let _ = synced.wait_for(|synced| caches.iter().all(|cache| synced[*cache as usize])).await;
    }

    /// The caches still filling, by name.
    pub fn pending(&self) -> Vec<&'static str> {
        let synced = *self.synced.borrow();
        Cache::ALL.into_iter().filter(|cache| !synced[*cache as usize]).map(Cache::name).collect()
    }

    /// Resolves on every change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<[bool; Cache::COUNT]> {
        self.synced.subscribe()
    }
}

/// When the Deployment watch last delivered an event for each Deployment a run restarted or
/// waits on, on the monotonic clock: the start of the time between a batch's last ready
/// event and the next batch's patches. One small entry per such Deployment seen since start
/// (deleted ones included, which a fleet of thousands can afford).
#[derive(Default)]
pub struct WatchDeliveries {
    at: Mutex<HashMap<ObjectKey, Instant>>,
}

impl WatchDeliveries {
    pub fn record(&self, deployment: ObjectKey, at: Instant) {
        self.lock().insert(deployment, at);
    }

    /// The latest delivery among `deployments`.
    pub fn latest<'a>(
        &self,
        deployments: impl IntoIterator<Item = &'a ObjectKey>,
    ) -> Option<Instant> {
        let at = self.lock();
        deployments.into_iter().filter_map(|key| at.get(key).copied()).max()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, Instant>> {
        // Single inserts and reads: a panic cannot leave the map torn.
        self.at.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn refresh_ref(key: &ObjectKey) -> ObjectRef<ServiceRefresh> {
    ObjectRef::new(&key.name).within(&key.namespace)
}

/// The ServiceRefreshes a Deployment change concerns: the run named on its pod template,
/// and every resource whose last pass said it waits on this Deployment (another run may
/// have overwritten the name since).
pub fn refreshes_for_deployment(
    deployment: &DeploymentSnapshot,
    awaiting: &AwaitIndex,
) -> Vec<ObjectRef<ServiceRefresh>> {
    let mut owners: Vec<ObjectRef<ServiceRefresh>> =
        awaiting.waiting_on(&deployment.key()).iter().map(refresh_ref).collect();
    if let Some(run) = deployment.restarted_by.as_deref().and_then(|id| id.parse::<RunId>().ok()) {
        let owner = refresh_ref(&run.owner);
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    owners
}

/// The ServiceRefresh whose run created this pod (its template's `restarted-by`): a pod
/// that cannot be scheduled, or can again, changes how that run paces.
pub fn refreshes_for_pod(pod: &PodSnapshot) -> Vec<ObjectRef<ServiceRefresh>> {
    pod.restarted_by
        .as_deref()
        .and_then(|id| id.parse::<RunId>().ok())
        .map(|run| refresh_ref(&run.owner))
        .into_iter()
        .collect()
}

/// The ServiceRefreshes waiting on a workload this budget covers: a budget that allows a
/// disruption again releases a held restart.
pub fn refreshes_for_budget(
    budget: &DisruptionBudgetSnapshot,
    awaiting: &AwaitIndex,
    workloads: &WorkloadStores,
) -> Vec<ObjectRef<ServiceRefresh>> {
    let namespace = budget.metadata.namespace.as_deref().unwrap_or_default();
    let mut owners: Vec<ObjectRef<ServiceRefresh>> = Vec::new();
    for key in awaiting.awaited_in(namespace) {
        if !workloads.get(&key).is_some_and(|workload| budget.covers(&workload)) {
            continue;
        }
        for owner in awaiting.waiting_on(&key).iter().map(refresh_ref) {
            if !owners.contains(&owner) {
                owners.push(owner);
            }
        }
    }
    owners
}

/// The ServiceRefreshes whose `configMapTriggers` name this ConfigMap.
pub fn refreshes_for_config_map(
    refreshes: &Store<ServiceRefresh>,
    config_map: &ConfigMapSnapshot,
) -> Vec<ObjectRef<ServiceRefresh>> {
    refreshes_naming(refreshes, &config_map.metadata, watched_config_maps)
}

/// The ServiceRefreshes whose `secretTriggers` name this Secret.
pub fn refreshes_for_secret(
    refreshes: &Store<ServiceRefresh>,
    secret: &SecretSnapshot,
) -> Vec<ObjectRef<ServiceRefresh>> {
    refreshes_naming(refreshes, &secret.metadata, watched_secrets)
}

/// The ServiceRefreshes among whose `watched` triggers the object of `metadata` is.
fn refreshes_naming(
    refreshes: &Store<ServiceRefresh>,
    metadata: &ObjectMeta,
    watched: fn(&ServiceRefreshSpec, &str) -> Vec<WatchedObject>,
) -> Vec<ObjectRef<ServiceRefresh>> {
    let (Some(namespace), Some(name)) = (metadata.namespace.as_deref(), metadata.name.as_deref())
    else {
        return Vec::new();
    };
    let changed = ObjectKey::new(namespace, name);
    refreshes
        .state()
        .iter()
        .filter(|refresh| {
            watched(&refresh.spec, plan::own_namespace(refresh))
                .iter()
                .any(|object| object.key == changed)
        })
        .map(|refresh| ObjectRef::from_obj(refresh.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[tokio::test]
    async fn every_waiter_hears_that_the_caches_synced() {
        let sync = Arc::new(CacheSync::default());
        assert_eq!(
            sync.pending(),
            [
                "Deployments",
                "ConfigMaps",
                "ServiceRefreshes",
                "StatefulSets",
                "DaemonSets",
                "PendingPods",
                "DisruptionBudgets"
            ]
        );
        sync.synced(Cache::StatefulSets);
        sync.synced(Cache::DaemonSets);
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let sync = sync.clone();
                tokio::spawn(async move {
                    sync.wait_for(&[Cache::Deployments, Cache::ConfigMaps]).await
                })
            })
            .collect();
        tokio::task::yield_now().await;
        sync.synced(Cache::Deployments);
        sync.synced(Cache::ConfigMaps);
        for waiter in waiters {
            tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
                .await
                .expect("every waiter wakes")
                .expect("no panic");
        }
        assert_eq!(sync.pending(), ["ServiceRefreshes", "PendingPods", "DisruptionBudgets"]);
    }

    #[test]
    fn the_latest_delivery_of_a_batch_is_its_last_event() {
        let deliveries = WatchDeliveries::default();
        let start = Instant::now();
        let a = ObjectKey::new("arcgis", "a");
        let b = ObjectKey::new("arcgis", "b");
        assert_eq!(deliveries.latest([&a, &b]), None);
        deliveries.record(a.clone(), start);
        deliveries.record(b.clone(), start + std::time::Duration::from_millis(5));
        deliveries.record(a.clone(), start + std::time::Duration::from_millis(9));
        assert_eq!(deliveries.latest([&a, &b]), Some(start + std::time::Duration::from_millis(9)));
        assert_eq!(deliveries.latest([&b]), Some(start + std::time::Duration::from_millis(5)));
    }

    #[test]
    fn a_deployment_change_reaches_its_named_run_and_every_waiting_one() {
        let awaiting = AwaitIndex::default();
        let mut deployment = DeploymentSnapshot::default();
        deployment.metadata.namespace = Some("arcgis".to_owned());
        deployment.metadata.name = Some("d".to_owned());
        assert!(refreshes_for_deployment(&deployment, &awaiting).is_empty());

        deployment.restarted_by = Some("arcgis/b/2-0123abcd".to_owned());
        awaiting.set(&ObjectKey::new("arcgis", "a"), &BTreeSet::from([deployment.key()]));
        let owners = refreshes_for_deployment(&deployment, &awaiting);
        assert_eq!(
            owners,
            vec![ObjectRef::new("a").within("arcgis"), ObjectRef::new("b").within("arcgis")]
        );

        deployment.restarted_by = Some("arcgis/a/1-0123abcd".to_owned());
        assert_eq!(refreshes_for_deployment(&deployment, &awaiting).len(), 1, "no duplicates");

        deployment.restarted_by = Some("not a run id".to_owned());
        assert_eq!(refreshes_for_deployment(&deployment, &awaiting).len(), 1);
    }

    #[test]
    fn a_budget_change_reaches_the_resources_waiting_on_a_workload_it_covers() {
        let mut writer = kube::runtime::reflector::store::Writer::new(WorkloadKind::Deployment);
        for (name, app) in [("web", "web"), ("geo", "geo")] {
            let workload: DeploymentSnapshot = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "arcgis"},
                "spec": {"template": {"metadata": {"labels": {"app": app}}}},
            }))
            .expect("a Deployment");
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(workload));
        }
        let workloads = WorkloadStores {
            deployments: writer.as_reader(),
            stateful_sets: None,
            daemon_sets: None,
        };
        let awaiting = AwaitIndex::default();
        awaiting.set(
            &ObjectKey::new("arcgis", "nightly"),
            &BTreeSet::from([ObjectKey::new("arcgis", "web")]),
        );
        awaiting.set(
            &ObjectKey::new("arcgis", "maps"),
            &BTreeSet::from([ObjectKey::new("arcgis", "geo")]),
        );
        let budget: DisruptionBudgetSnapshot = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-pdb", "namespace": "arcgis"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}},
        }))
        .expect("a budget");
        assert_eq!(
            refreshes_for_budget(&budget, &awaiting, &workloads),
            vec![ObjectRef::new("nightly").within("arcgis")]
        );
        let mut elsewhere = budget.clone();
        elsewhere.metadata.namespace = Some("other".to_owned());
        assert!(refreshes_for_budget(&elsewhere, &awaiting, &workloads).is_empty());
    }

    #[test]
    fn a_pod_change_reaches_the_run_that_created_it() {
        let mut pod = PodSnapshot::default();
        assert!(refreshes_for_pod(&pod).is_empty(), "a pod no run created concerns none");
        pod.restarted_by = Some("arcgis/b/2-0123abcd".to_owned());
        assert_eq!(refreshes_for_pod(&pod), vec![ObjectRef::new("b").within("arcgis")]);
    }
}
