//! Shared harness of the end-to-end tests: the simulated cluster with the CRD installed,
//! the operator running in-process against it (stoppable and restartable; an operator that
//! ends on its own fails the test with its error or panic), and waiting on conditions with a
//! deadline instead of sleeping.
#![allow(dead_code)]

pub mod helm;
pub mod kubectl;
pub mod monitoring;
pub mod process;

use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures::FutureExt;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use servicerefresh_core::crd::{BatchStatus, Phase, ServiceRefresh, ServiceRefreshStatus};
use servicerefresh_core::engine::view::RunView;
use servicerefresh_operator::controller::{self, Clients, OperatorConfig};
use servicerefresh_sim::{RequestRecord, SimConfig, SimHandle};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const NAMESPACE: &str = "arcgis";

/// A client for a simulated cluster, through the kubeconfig it hands out. Like the clients
/// the operator builds for itself (`Clients::from_config`), it never retries inside the
/// client: an operator started on it must meet every error the API server answers (a 429,
/// a 504) as it does in production, not have kube's default retry policy hide them.
pub async fn sim_client(sim: &SimHandle) -> Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml(NAMESPACE))
        .expect("the sim's kubeconfig parses");
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("the sim's kubeconfig is usable");
    config.default_retry = false;
    Client::try_from(config).expect("client")
}

/// The started batch with number `index` (from 1) of `status`, if it is listed.
pub fn batch(status: &ServiceRefreshStatus, index: usize) -> Option<&BatchStatus> {
    status.batches.iter().find(|batch| batch.index as usize == index)
}

/// Installs the ServiceRefresh CRD, as `kubectl apply -f crds/` would.
pub async fn install_crd(client: &Client) {
    servicerefresh_dev::demo::install_crd(client).await.expect("the CRD installs");
}

/// The simulated cluster with the CRD installed and a client for it.
pub struct SimCluster {
    pub sim: SimHandle,
    pub client: Client,
}

impl SimCluster {
    pub async fn start(config: SimConfig) -> Self {
        let sim = servicerefresh_sim::start(SimConfig { namespace: NAMESPACE.into(), ..config })
            .await
            .expect("simulated cluster starts");
        let client = sim_client(&sim).await;
        install_crd(&client).await;
        Self { sim, client }
    }

    pub fn refreshes(&self) -> Api<ServiceRefresh> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    pub fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    /// The current run of the ServiceRefresh `name` as a person reads it: its batches with
    /// every service named through the run's plan objects.
    pub async fn run_view(&self, name: &str) -> RunView {
        let refresh = self.refreshes().get(name).await.expect("the ServiceRefresh exists");
        let plan = servicerefresh_dev::plans::plan_of(&self.client, &refresh).await;
        let status = refresh.status.unwrap_or_default();
        RunView::new(&status, plan.as_ref(), NAMESPACE)
    }

    /// Names of the Deployments built to fail, sorted.
    pub async fn failing_deployments(&self) -> Vec<String> {
        self.deployment_names(|d| {
            d.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("sim.gisops.io/fail"))
                .is_some_and(|v| v == "true")
        })
        .await
    }

    pub async fn all_deployment_names(&self) -> Vec<String> {
        self.deployment_names(|_| true).await
    }

    async fn deployment_names(&self, keep: impl Fn(&Deployment) -> bool) -> Vec<String> {
        let list = self.deployments().list(&ListParams::default()).await.expect("list deployments");
        let mut names: Vec<String> =
            list.items.into_iter().filter(|d| keep(d)).filter_map(|d| d.metadata.name).collect();
        names.sort();
        names
    }

    pub async fn create_refresh(&self, name: &str, spec: serde_json::Value) -> ServiceRefresh {
        let refresh: ServiceRefresh = serde_json::from_value(json!({
            "apiVersion": "gisops.io/v1alpha1",
            "kind": "ServiceRefresh",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }))
        .expect("valid ServiceRefresh");
        self.refreshes()
            .create(&PostParams::default(), &refresh)
            .await
            .expect("create ServiceRefresh")
    }

    pub async fn status(&self, name: &str) -> Option<ServiceRefreshStatus> {
        self.refreshes().get(name).await.ok().and_then(|r| r.status)
    }

    /// Waits until the named ServiceRefresh's run has ended, and returns its status.
    pub async fn wait_for_run_end(&self, name: &str, deadline: Duration) -> ServiceRefreshStatus {
        wait_for(deadline, &format!("run of {name} to end"), || async {
            self.status(name).await.filter(|s| {
                matches!(s.phase, Some(Phase::Succeeded | Phase::Failed | Phase::Cancelled))
            })
        })
        .await
    }

    /// Applies `spec` (a merge patch of the spec that must not start a run) and waits until
    /// the operator has decided on the new generation: a witness that it reconciled the
    /// resource after everything the test did before, for asserting what did not happen.
    pub async fn reconciled_after_edit(
        &self,
        name: &str,
        spec: serde_json::Value,
    ) -> ServiceRefreshStatus {
        let edit = Patch::Merge(json!({"spec": spec}));
        let edited =
            self.refreshes().patch(name, &PatchParams::default(), &edit).await.expect("edit");
        let generation = edited.metadata.generation;
        wait_for(Duration::from_secs(60), &format!("{name} to observe its edit"), || async {
            self.status(name).await.filter(|s| s.observed_generation >= generation)
        })
        .await
    }
}

/// A generated fleet of `deployments` Deployments, `fail` of them built to fail, whose
/// rollouts take 150 to 250 ms and fail after a 1 s progress deadline; `seed` picks the names,
/// the failing Deployments and the rollout times.
pub fn fleet(deployments: usize, fail: usize, seed: u64) -> SimConfig {
    SimConfig {
        deployments,
        fail,
        rollout_ms: 150,
        rollout_jitter_ms: 100,
        progress_deadline_seconds: 1,
        seed,
        ..SimConfig::default()
    }
}

/// Asserts, from the sim's own counter, that each named Deployment's pod template changed
/// exactly `times` times.
pub fn assert_template_changes(sim: &SimHandle, names: &[String], times: u64) {
    let stats = sim.stats();
    for name in names {
        let key = format!("{NAMESPACE}/{name}");
        let changes = stats.template_changes.get(&key).copied().unwrap_or(0);
        assert_eq!(changes, times, "{key}: its pod template changed {changes} times");
    }
}

/// How many Deployment patches the sim applied (answered 200) among `requests`: the restart
/// patches, when only the operator patches Deployments.
pub fn applied_deployment_patches(requests: &[RequestRecord]) -> usize {
    requests
        .iter()
        .filter(|r| r.verb == "patch" && r.code == Some(200) && r.path.contains("/deployments/"))
        .count()
}

/// The operator running as a task, stoppable like a pod being deleted. It must not end on its
/// own: if it returns an error, panics or returns early, the test fails with that outcome, at
/// the next [`wait_for`] poll on the thread that started it, at [`Operator::stop`], or when
/// the `Operator` is dropped, whichever comes first.
pub struct Operator {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    exit: Arc<Exit>,
}

/// How an operator task ended, set when it ends.
#[derive(Default)]
struct Exit {
    /// The shutdown signal was sent: ending now is expected.
    stopping: AtomicBool,
    outcome: Mutex<Option<Result<(), String>>>,
}

impl Exit {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Result<(), String>>> {
        self.outcome.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The outcome, if the task ended without having been told to stop.
    fn unexpected(&self) -> Option<String> {
        if self.stopping.load(Ordering::SeqCst) {
            return None;
        }
        match self.lock().as_ref()? {
            Ok(()) => Some("it returned without a shutdown signal".to_owned()),
            Err(failure) => Some(failure.clone()),
        }
    }
}

thread_local! {
    /// The operators the test on this thread runs, for [`wait_for`] to check. A tokio test's
    /// body runs on its own thread, so each test sees only its own.
    static RUNNING: RefCell<Vec<Weak<Exit>>> = const { RefCell::new(Vec::new()) };
}

/// Fails the test if an operator it runs ended on its own.
fn check_operators(what: &str) {
    RUNNING.with(|running| {
        let mut running = running.borrow_mut();
        running.retain(|exit| exit.strong_count() > 0);
        for exit in running.iter().filter_map(Weak::upgrade) {
            if let Some(failure) = exit.unexpected() {
                panic!("the operator ended while the test waited for {what}: {failure}");
            }
        }
    });
}

impl Operator {
    pub fn start(client: &Client) -> Self {
        Self::start_with(
            client,
            OperatorConfig { retry_delay: Duration::from_millis(200), ..Default::default() },
        )
    }

    pub fn start_with(client: &Client, config: OperatorConfig) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let clients = Clients::single(client.clone(), "the simulated cluster");
        let exit = Arc::new(Exit::default());
        let recorded = exit.clone();
        let run = controller::run(clients, config, async move {
            let _ = stopped.await;
        });
        let task = tokio::spawn(async move {
            let outcome = match AssertUnwindSafe(run).catch_unwind().await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(format!("it failed: {}", error_chain(&error))),
                Err(panic) => Err(format!("it panicked: {}", panic_message(&*panic))),
            };
            *recorded.lock() = Some(outcome);
        });
        RUNNING.with(|running| running.borrow_mut().push(Arc::downgrade(&exit)));
        Self { stop: Some(stop), task: Some(task), exit }
    }

    /// Graceful stop: in-flight reconciles finish, then the operator exits, cleanly.
    pub async fn stop(mut self) {
        if let Some(failure) = self.exit.unexpected() {
            panic!("the operator ended before it was stopped: {failure}");
        }
        self.exit.stopping.store(true, Ordering::SeqCst);
        if let Some(stop) = self.stop.take() {
            // Fails only if the task is gone, which the outcome below reports.
            let _ = stop.send(());
        }
        let task = self.task.take().expect("a running operator has its task");
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("the operator stops within 20 s of its shutdown signal")
            .expect("the operator's task was not cancelled");
        let outcome = self.exit.lock().clone();
        assert_eq!(outcome, Some(Ok(())), "the operator exits cleanly");
    }

    /// Abrupt stop: the task is dropped wherever it is, like a crashed process.
    pub fn kill(mut self) {
        if let Some(failure) = self.exit.unexpected() {
            panic!("the operator ended before it was killed: {failure}");
        }
        self.exit.stopping.store(true, Ordering::SeqCst);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        task.abort();
        if let Some(failure) = self.exit.unexpected()
            && !std::thread::panicking()
        {
            panic!("the operator ended on its own: {failure}");
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Polls `probe` until it yields a value, failing the test at the deadline, or at once when
/// an [`Operator`] this test runs ended on its own.
pub async fn wait_for<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        check_operators(what);
        if let Some(value) = probe().await {
            return value;
        }
        assert!(started.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
