//! Shared harness of the end-to-end tests: the simulated cluster with the CRD installed,
//! the operator running in-process against it (stoppable and restartable), and waiting on
//! conditions with a deadline instead of sleeping.
#![allow(dead_code)]

pub mod helm;
pub mod process;

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, CustomResourceExt};
use serde_json::json;
use servicerefresh::controller::{self, Clients, OperatorConfig};
use servicerefresh::crd::{Phase, ServiceRefresh, ServiceRefreshStatus};
use servicerefresh_sim::{SimConfig, SimHandle};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const NAMESPACE: &str = "arcgis";

/// A client for a simulated cluster, through the kubeconfig it hands out, as a user's
/// tools would connect.
pub async fn sim_client(sim: &SimHandle) -> Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml(NAMESPACE))
        .expect("the sim's kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("the sim's kubeconfig is usable");
    Client::try_from(config).expect("client")
}

/// Installs the ServiceRefresh CRD, as `kubectl apply -f crds/` would.
pub async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply("servicerefresh-tests").force();
    crds.patch(ServiceRefresh::crd_name(), &params, &Patch::Apply(servicerefresh::crd::crd()))
        .await
        .expect("the CRD installs");
}

/// The simulated cluster with the CRD installed and a client for it.
pub struct Cluster {
    pub sim: SimHandle,
    pub client: Client,
}

impl Cluster {
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
}

/// The operator running as a task, stoppable like a pod being deleted.
pub struct Operator {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), controller::StartupError>>,
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
        let task = tokio::spawn(controller::run(clients, config, async move {
            let _ = stopped.await;
        }));
        Self { stop: Some(stop), task }
    }

    /// Graceful stop: in-flight reconciles finish, then the operator exits.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let exited = tokio::time::timeout(Duration::from_secs(20), &mut self.task)
            .await
            .expect("the operator stops within 20 s of its shutdown signal");
        exited.expect("the operator did not panic").expect("the operator exits cleanly");
    }

    /// Abrupt stop: the task is dropped wherever it is, like a crashed process.
    pub fn kill(self) {
        self.task.abort();
    }
}

/// Polls `probe` until it yields a value, failing the test at the deadline.
pub async fn wait_for<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(started.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
