//! The IO shell around the engine: watches ServiceRefreshes, Deployments and trigger
//! ConfigMaps, feeds what it sees to `engine::decide`, sends the restart patches the engine
//! asks for, writes the status back with server-side apply, and records Events. It holds no
//! decision logic of its own and never waits for a rollout inside a reconcile: progress
//! arrives as Deployment watch events that wake the ServiceRefresh that planned them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::crd::{
    Phase, RESTARTED_AT_ANNOTATION, RESTARTED_BY_ANNOTATION, ServiceRefresh, ServiceRefreshStatus,
};
use crate::engine::plan::config_map_hash;
use crate::engine::run::run_owner;
use crate::engine::{
    Decision, EventSeverity, ObjectKey, Observation, Restart, RestartOutcome, decide,
    record_restart_outcomes,
};

/// The one field manager every status write and restart patch is made under.
pub const FIELD_MANAGER: &str = "servicerefresh";

/// How many restart patches of one batch are in flight at once.
const PATCH_CONCURRENCY: usize = 10;

/// How often a queued ServiceRefresh re-checks for a free run slot without being woken.
const QUEUED_RECHECK: Duration = Duration::from_secs(5);

/// Settings of the operator that are not part of any resource.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// Watch only this namespace (ServiceRefreshes, Deployments, ConfigMaps); `None` = all.
    pub namespace: Option<String>,
    /// How many ServiceRefreshes may run at once across the cluster.
    pub max_concurrent_runs: usize,
    /// Delay before retrying a reconcile that hit an API error.
    pub retry_delay: Duration,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self { namespace: None, max_concurrent_runs: 1, retry_delay: Duration::from_secs(2) }
    }
}

/// Why starting the operator failed.
#[derive(Debug, Error)]
pub enum StartupError {
    #[error(
        "the ServiceRefresh CRD (servicerefreshes.gisops.io) is not installed in this cluster; \
         install it with `servicerefresh crd | kubectl apply -f -` (or `kubectl apply -f crds/servicerefresh.yaml`)"
    )]
    CrdMissing,
    #[error("cannot reach the Kubernetes API server: {0}")]
    Unreachable(String),
    #[error("the Kubernetes API server refused to list ServiceRefreshes: {0}")]
    Refused(String),
}

/// Why one reconcile pass did not complete; the pass is retried after a delay.
#[derive(Debug, Error)]
pub enum ReconcileError {
    #[error("writing the status of {object} failed: {source}")]
    StatusWrite { object: String, source: kube::Error },
    #[error("{count} restart patch(es) of {object} failed transiently (first: {first}); retrying")]
    RestartsPending { object: String, count: usize, first: String },
    #[error("ServiceRefresh has no namespace")]
    NotNamespaced,
}

/// Checks that the CRD is installed and the API server answers, with one clear error.
pub async fn preflight(client: &Client) -> Result<(), StartupError> {
    let api: Api<ServiceRefresh> = Api::all(client.clone());
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(StartupError::CrdMissing),
        Err(kube::Error::Api(status)) => Err(StartupError::Refused(status.message.clone())),
        Err(other) => Err(StartupError::Unreachable(other.to_string())),
    }
}

/// Shared state of all reconciles.
struct Context {
    client: Client,
    deployments: Store<Deployment>,
    config_maps: Store<ConfigMap>,
    refreshes: Store<ServiceRefresh>,
    reporter: Reporter,
    admission: Admission,
    written: WrittenStatusMemo,
    /// Wakes queued ServiceRefreshes when a run frees its slot.
    wake_queued: futures::channel::mpsc::UnboundedSender<ObjectRef<ServiceRefresh>>,
    config: OperatorConfig,
}

/// Cluster-wide serialization of runs. The store may lag behind our own status writes, so
/// runs this process admitted are remembered until the store shows them.
#[derive(Default)]
struct Admission {
    admitted: Mutex<HashSet<ObjectRef<ServiceRefresh>>>,
}

impl Admission {
    /// Whether `me` may start a run, given every cached ServiceRefresh. Holding the lock
    /// across the check and the admission keeps two concurrent reconciles from both starting.
    fn try_admit(
        &self,
        me: &ObjectRef<ServiceRefresh>,
        all: &[Arc<ServiceRefresh>],
        limit: usize,
    ) -> bool {
        let Ok(mut admitted) = self.admitted.lock() else {
            return false;
        };
        let cached: HashMap<ObjectRef<ServiceRefresh>, bool> = all
            .iter()
            .map(|sr| (ObjectRef::from_obj(sr.as_ref()), holds_run_slot(sr.status.as_ref())))
            .collect();
        // An admission matters only until the cache shows the run it started; one whose
        // resource is gone from the cache was deleted and must not keep its slot.
        admitted.retain(|key| cached.get(key) == Some(&false));
        let mut active: HashSet<ObjectRef<ServiceRefresh>> =
            cached.into_iter().filter_map(|(key, holds)| holds.then_some(key)).collect();
        active.extend(admitted.iter().cloned());
        active.remove(me);
        if active.len() < limit {
            admitted.insert(me.clone());
            true
        } else {
            false
        }
    }

    fn release(&self, me: &ObjectRef<ServiceRefresh>) {
        if let Ok(mut admitted) = self.admitted.lock() {
            admitted.remove(me);
        }
    }
}

/// Whether the pass would start a new run if admission allowed it.
fn starts_a_run(observation: &Observation<'_>) -> bool {
    let run_number = |status: Option<&ServiceRefreshStatus>| {
        status.and_then(|s| s.run.as_ref()).map(|run| run.number)
    };
    let decision = decide(observation);
    run_number(Some(&decision.status)) != run_number(observation.refresh.status.as_ref())
}

fn holds_run_slot(status: Option<&ServiceRefreshStatus>) -> bool {
    matches!(status.and_then(|s| s.phase), Some(Phase::Running | Phase::Suspended))
}

/// The status we last wrote per object, with the status it replaced. When the cache still
/// shows the replaced status (our write's watch event has not arrived yet), the engine gets
/// the written one, so a Deployment event racing ahead cannot make us repeat work.
#[derive(Default)]
struct WrittenStatusMemo {
    by_uid: Mutex<HashMap<String, (Option<ServiceRefreshStatus>, ServiceRefreshStatus)>>,
}

impl WrittenStatusMemo {
    fn freshest(&self, refresh: &ServiceRefresh) -> Option<ServiceRefreshStatus> {
        let uid = refresh.uid()?;
        let mut memo = self.by_uid.lock().ok()?;
        match memo.get(&uid) {
            Some((before, after)) if *before == refresh.status => Some(after.clone()),
            Some(_) => {
                memo.remove(&uid);
                None
            }
            None => None,
        }
    }

    fn remember(
        &self,
        refresh: &ServiceRefresh,
        before: Option<ServiceRefreshStatus>,
        after: ServiceRefreshStatus,
    ) {
        if let (Some(uid), Ok(mut memo)) = (refresh.uid(), self.by_uid.lock()) {
            memo.insert(uid, (before, after));
        }
    }
}

/// Drops everything the engine does not read from a cached Deployment; at 10,000
/// Deployments the pod specs and managedFields would dominate memory.
pub fn strip_deployment(deployment: &mut Deployment) {
    let meta = &mut deployment.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    meta.owner_references = None;
    meta.finalizers = None;
    let spec = &mut deployment.spec;
    spec.strategy = None;
    spec.selector = Default::default();
    spec.revision_history_limit = None;
    let template_meta = spec.template.metadata.get_or_insert_with(Default::default);
    template_meta.labels = None;
    if let Some(annotations) = template_meta.annotations.as_mut() {
        annotations.retain(|key, _| key == RESTARTED_BY_ANNOTATION);
    }
    spec.template.spec = None;
}

fn deployment_owner(deployment: &Deployment) -> Option<ObjectRef<ServiceRefresh>> {
    let restarted_by = deployment
        .spec
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(RESTARTED_BY_ANNOTATION)?;
    let (namespace, name) = run_owner(restarted_by)?;
    Some(ObjectRef::new(&name).within(&namespace))
}

fn trigger_config_map_refs(
    refreshes: &Store<ServiceRefresh>,
    config_map: &ConfigMap,
) -> Vec<ObjectRef<ServiceRefresh>> {
    let (Some(cm_ns), cm_name) = (config_map.namespace(), config_map.name_any()) else {
        return Vec::new();
    };
    refreshes
        .state()
        .iter()
        .filter(|sr| {
            let own = sr.namespace().unwrap_or_default();
            sr.spec
                .config_map_triggers
                .iter()
                .any(|t| t.name == cm_name && t.namespace.as_deref().unwrap_or(&own) == cm_ns)
        })
        .map(|sr| ObjectRef::from_obj(sr.as_ref()))
        .collect()
}

fn api_for<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the operator until `shutdown` resolves. Reconciles finish before it returns.
pub async fn run(
    client: Client,
    config: OperatorConfig,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), StartupError> {
    preflight(&client).await?;
    let ns = config.namespace.as_deref();

    let (deploy_reader, deploy_writer) = reflector::store();
    let deployment_events = watcher(api_for::<Deployment>(&client, ns))
        .modify(strip_deployment)
        .reflect(deploy_writer)
        .touched_objects();

    let (cm_reader, cm_writer) = reflector::store();
    let config_map_events = watcher(api_for::<ConfigMap>(&client, ns))
        .modify(|cm: &mut ConfigMap| {
            // Only the content is hashed; kubectl's last-applied copy would double the memory.
            cm.metadata.managed_fields = None;
            cm.metadata.annotations = None;
        })
        .reflect(cm_writer)
        .touched_objects()
        .predicate_filter(predicates::resource_version, Default::default());

    let (sr_reader, sr_writer) = reflector::store();
    let refresh_events = watcher(api_for::<ServiceRefresh>(&client, ns))
        .modify(|sr: &mut ServiceRefresh| sr.metadata.managed_fields = None)
        .reflect(sr_writer)
        .touched_objects();

    let (wake_queued, slot_freed) = futures::channel::mpsc::unbounded();
    let reporter = Reporter { controller: FIELD_MANAGER.into(), instance: None };
    let context = Arc::new(Context {
        client: client.clone(),
        deployments: deploy_reader.clone(),
        config_maps: cm_reader.clone(),
        refreshes: sr_reader.clone(),
        reporter,
        admission: Admission::default(),
        written: WrittenStatusMemo::default(),
        wake_queued,
        config: config.clone(),
    });

    let sr_for_cm = sr_reader.clone();
    // Rollouts emit a burst of Deployment events; debouncing folds a burst into one pass.
    let controller_config =
        kube::runtime::controller::Config::default().debounce(Duration::from_millis(100));
    let controller = Controller::for_stream(refresh_events, sr_reader.clone())
        .with_config(controller_config)
        .watches_stream(deployment_events, |d: Deployment| deployment_owner(&d))
        .watches_stream(config_map_events, move |cm: ConfigMap| {
            trigger_config_map_refs(&sr_for_cm, &cm)
        })
        // A finished run frees a slot; queued resources must hear about it.
        .reconcile_on(slot_freed)
        .graceful_shutdown_on(shutdown);

    info!("servicerefresh operator starting");
    controller
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => debug!(%object, "reconciled"),
                Err(err) => warn!(error = %err, "reconcile failed"),
            }
        })
        .await;
    info!("servicerefresh operator stopped");
    Ok(())
}

fn watcher<K>(
    api: Api<K>,
) -> impl Stream<Item = Result<kube::runtime::watcher::Event<K>, kube::runtime::watcher::Error>> + Send
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default,
{
    kube::runtime::watcher(api, kube::runtime::watcher::Config::default().any_semantic())
        .default_backoff()
}

async fn reconcile(
    refresh: Arc<ServiceRefresh>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    if refresh.metadata.deletion_timestamp.is_some() {
        ctx.admission.release(&ObjectRef::from_obj(refresh.as_ref()));
        return Ok(Action::await_change());
    }
    let namespace = refresh.namespace().ok_or(ReconcileError::NotNamespaced)?;
    let me = ObjectRef::from_obj(refresh.as_ref());
    // Plans and readiness verdicts read the caches, so they must be complete first. The
    // controller drives the streams that fill them, so this resolves after the first list.
    let _ = ctx.deployments.wait_until_ready().await;
    let _ = ctx.config_maps.wait_until_ready().await;

    let mut refresh_view = (*refresh).clone();
    if let Some(fresher) = ctx.written.freshest(&refresh) {
        refresh_view.status = Some(fresher);
    }
    let before = refresh_view.status.clone();

    let deployments = ctx.deployments.state();
    let config_map_hashes = observe_config_maps(&ctx.config_maps, &refresh_view, &namespace);
    let now = Timestamp::now();
    let mut observation = Observation {
        refresh: &refresh_view,
        deployments: &deployments,
        config_map_hashes: &config_map_hashes,
        may_start_run: true,
        now,
    };
    // Ask for a run slot only when this pass would start a run: an idle resource holding a
    // slot even briefly could turn another resource away with nothing left to wake it.
    if !holds_run_slot(before.as_ref()) && starts_a_run(&observation) {
        observation.may_start_run =
            ctx.admission.try_admit(&me, &ctx.refreshes.state(), ctx.config.max_concurrent_runs);
    }
    let pass = reconcile_pass(&ctx.client, &observation).await?;
    if pass.status_written {
        ctx.written.remember(&refresh, refresh.status.clone(), pass.status.clone());
    }

    if !holds_run_slot(Some(&pass.status)) {
        ctx.admission.release(&me);
        if holds_run_slot(before.as_ref()) {
            for queued in ctx.refreshes.state().iter().filter(|sr| {
                matches!(sr.status.as_ref().and_then(|s| s.phase), Some(Phase::Pending))
            }) {
                let _ = ctx.wake_queued.unbounded_send(ObjectRef::from_obj(queued.as_ref()));
            }
        }
    }
    publish_events(&ctx.client, &ctx.reporter, &refresh, &pass.events).await;

    if let Some(first) = pass.transient_failures.first() {
        return Err(ReconcileError::RestartsPending {
            object: me.to_string(),
            count: pass.transient_failures.len(),
            first: first.clone(),
        });
    }
    let wake_in = pass.wake_at.map(|at| {
        let wait = Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or_default();
        wait.max(Duration::from_millis(10))
    });
    // Queued: a finished run wakes us, but its wake-up can race our own Pending write into
    // the cache, so look again after a while as well.
    let wake_in = match pass.status.phase {
        Some(Phase::Pending) => Some(wake_in.map_or(QUEUED_RECHECK, |w| w.min(QUEUED_RECHECK))),
        _ => wake_in,
    };
    Ok(wake_in.map_or_else(Action::await_change, Action::requeue))
}

/// What one pass did, for the controller's bookkeeping.
#[derive(Debug)]
pub struct PassResult {
    /// The status after the pass (written, or unchanged).
    pub status: ServiceRefreshStatus,
    /// Whether the status differed and was written.
    pub status_written: bool,
    /// Events the engine asked to record.
    pub events: Vec<crate::engine::EventNote>,
    /// When to look again without a watch event.
    pub wake_at: Option<Timestamp>,
    /// Messages of restart patches that failed transiently and will be retried.
    pub transient_failures: Vec<String>,
}

/// One reconcile pass against the API: decide, send the restart patches, fold their
/// outcomes into the status, and write the status only if it changed. Everything the pass
/// reads comes from `observation`; every request it makes goes through `client`.
pub async fn reconcile_pass(
    client: &Client,
    observation: &Observation<'_>,
) -> Result<PassResult, ReconcileError> {
    let refresh = observation.refresh;
    let namespace = refresh.namespace().ok_or(ReconcileError::NotNamespaced)?;
    let Decision { mut status, restarts, events, wake_at } = decide(observation);
    let outcomes = send_restarts(client, &restarts).await;
    let transient_failures = outcomes
        .iter()
        .filter_map(|(_, outcome)| match outcome {
            RestartOutcome::Transient(message) => Some(message.clone()),
            _ => None,
        })
        .collect();
    record_restart_outcomes(&mut status, &outcomes, &namespace);
    let status_written = Some(&status) != refresh.status.as_ref();
    if status_written {
        write_status(client, refresh, &status).await?;
    }
    Ok(PassResult { status, status_written, events, wake_at, transient_failures })
}

fn error_policy(
    _refresh: Arc<ServiceRefresh>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    warn!(%error, "reconcile will be retried");
    Action::requeue(ctx.config.retry_delay)
}

fn observe_config_maps(
    store: &Store<ConfigMap>,
    refresh: &ServiceRefresh,
    own_namespace: &str,
) -> BTreeMap<ObjectKey, Option<String>> {
    refresh
        .spec
        .config_map_triggers
        .iter()
        .map(|trigger| {
            let namespace = trigger.namespace.clone().unwrap_or_else(|| own_namespace.to_owned());
            let key = ObjectKey::new(namespace.clone(), trigger.name.clone());
            let hash = store
                .get(&ObjectRef::new(&trigger.name).within(&namespace))
                .map(|cm| config_map_hash(&cm, &trigger.keys));
            (key, hash)
        })
        .collect()
}

/// The restart patch: only the two pod-template annotations, as a JSON merge patch.
pub fn restart_patch(restart: &Restart) -> serde_json::Value {
    json!({
        "spec": {"template": {"metadata": {"annotations": {
            RESTARTED_AT_ANNOTATION: restart.restarted_at,
            RESTARTED_BY_ANNOTATION: restart.restarted_by,
        }}}}
    })
}

async fn send_restarts(client: &Client, restarts: &[Restart]) -> Vec<(ObjectKey, RestartOutcome)> {
    futures::stream::iter(restarts.iter().cloned())
        .map(|restart| {
            let client = client.clone();
            async move {
                let api: Api<Deployment> = Api::namespaced(client, &restart.deployment.namespace);
                let params =
                    PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
                let result = api
                    .patch(
                        &restart.deployment.name,
                        &params,
                        &Patch::Merge(restart_patch(&restart)),
                    )
                    .await;
                let outcome = classify_patch_result(result);
                if let RestartOutcome::Patched { generation } = &outcome {
                    info!(deployment = %restart.deployment, generation, "restarted");
                }
                (restart.deployment, outcome)
            }
        })
        .buffered(PATCH_CONCURRENCY)
        .collect()
        .await
}

/// Maps a patch response to what it means for the run.
pub fn classify_patch_result(result: Result<Deployment, kube::Error>) -> RestartOutcome {
    match result {
        Ok(deployment) => RestartOutcome::Patched {
            generation: deployment.metadata.generation.unwrap_or_default(),
        },
        Err(kube::Error::Api(status)) => match status.code {
            404 => RestartOutcome::NotFound,
            400 | 403 | 422 => RestartOutcome::Rejected(status.message.clone()),
            _ => RestartOutcome::Transient(format!("{} ({})", status.message, status.code)),
        },
        Err(other) => RestartOutcome::Transient(other.to_string()),
    }
}

/// The server-side apply body for the status subresource.
pub fn status_apply_body(status: &ServiceRefreshStatus) -> serde_json::Value {
    json!({
        "apiVersion": "gisops.io/v1alpha1",
        "kind": "ServiceRefresh",
        "status": status,
    })
}

async fn write_status(
    client: &Client,
    refresh: &ServiceRefresh,
    status: &ServiceRefreshStatus,
) -> Result<(), ReconcileError> {
    let namespace = refresh.namespace().ok_or(ReconcileError::NotNamespaced)?;
    let api: Api<ServiceRefresh> = Api::namespaced(client.clone(), &namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&refresh.name_any(), &params, &Patch::Apply(status_apply_body(status)))
        .await
        .map(|_| ())
        .map_err(|source| ReconcileError::StatusWrite {
            object: format!("{namespace}/{}", refresh.name_any()),
            source,
        })
}

async fn publish_events(
    client: &Client,
    reporter: &Reporter,
    refresh: &ServiceRefresh,
    events: &[crate::engine::EventNote],
) {
    if events.is_empty() {
        return;
    }
    // A fresh recorder per pass: kube's recorder folds events with the same reason into one
    // series keyed without the message, which would hide "batch 2 started" behind "batch 1".
    // The engine emits each transition once, so there is nothing to fold.
    let recorder = Recorder::new(client.clone(), reporter.clone());
    let reference: ObjectReference = refresh.object_ref(&());
    for note in events {
        let event = Event {
            type_: match note.severity {
                EventSeverity::Normal => EventType::Normal,
                EventSeverity::Warning => EventType::Warning,
            },
            reason: note.reason.clone(),
            note: Some(note.message.chars().take(1000).collect()),
            action: "Refresh".into(),
            secondary: None,
        };
        // Events are best effort: losing one must not fail or repeat the reconcile.
        if let Err(err) = recorder.publish(&event, &reference).await {
            warn!(error = %err, reason = %note.reason, "could not record event");
        }
    }
}

/// Builds a client from an explicit kubeconfig file, or else from KUBECONFIG / the in-cluster
/// config, with one readable error.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> Result<Client, StartupError> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|err| {
                StartupError::Unreachable(format!(
                    "cannot read kubeconfig {}: {err}",
                    path.display()
                ))
            })?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .map_err(|err| StartupError::Unreachable(err.to_string()))?
        }
        None => kube::Config::infer().await.map_err(|err| {
            StartupError::Unreachable(format!(
                "no cluster configured (set KUBECONFIG or run in a pod): {err}"
            ))
        })?,
    };
    Client::try_from(config).map_err(|err| StartupError::Unreachable(err.to_string()))
}
