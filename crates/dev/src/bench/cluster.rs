//! The simulated cluster a scenario runs against: started in this process with the sim's
//! ReplicaSet and Pod emulation off and exact rollout times (so the sim's own work stays
//! small and every rollout takes the same time), with the CRD installed, a kubeconfig on
//! disk for the operator process and kubectl, and the benchmark's own client, whose requests
//! the request log tells apart from the operator's by their User-Agent.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use http::HeaderValue;
use http::header::USER_AGENT;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use servicerefresh_sim::{SimConfig, SimHandle};
use tempfile::TempDir;
use thiserror::Error;

use servicerefresh_core::crd::{Phase, ServiceRefresh, ServiceRefreshStatus};

/// The namespace of the generated fleet and of the benchmark's ServiceRefreshes.
pub const NAMESPACE: &str = "arcgis";
/// The label the benchmark puts on the Deployments a run selects out of a larger fleet.
pub const PICK_LABEL: &str = "bench.gisops.io/picked";
/// The benchmark's User-Agent.
const AGENT: &str = "servicerefresh-bench";

#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("cannot start the simulated cluster")]
    Sim(#[source] servicerefresh_sim::SimError),
    #[error("cannot configure a client for the simulated cluster")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    #[error("cannot create a temporary directory for the kubeconfig")]
    Scratch(#[source] std::io::Error),
    #[error("cannot write the kubeconfig {0}")]
    Write(PathBuf, #[source] std::io::Error),
    #[error("the simulated API refused a request")]
    Api(#[from] kube::Error),
    #[error("the benchmark's ServiceRefresh manifest does not parse")]
    Manifest(#[source] serde_json::Error),
    #[error("the run did not end within {0:?}")]
    Timeout(Duration),
    #[error("the watch on the ServiceRefresh ended before the run did")]
    WatchEnded,
}

/// A running simulated cluster with its kubeconfig and the benchmark's client.
pub struct BenchCluster {
    pub sim: SimHandle,
    pub client: Client,
    dir: TempDir,
}

impl BenchCluster {
    /// Starts a cluster with `deployments` Deployments whose rollouts take exactly
    /// `rollout_ms`, and installs the CRD.
    pub async fn start(deployments: usize, rollout_ms: u64) -> Result<Self, ClusterError> {
        Self::start_with(SimConfig {
            deployments,
            rollout_ms,
            rollout_jitter_ms: 0,
            workload_objects: false,
            ..SimConfig::default()
        })
        .await
    }

    /// Starts a cluster as `config` says, in the benchmark's namespace, and installs the CRD.
    pub async fn start_with(config: SimConfig) -> Result<Self, ClusterError> {
        let sim = servicerefresh_sim::start(SimConfig { namespace: NAMESPACE.into(), ..config })
            .await
            .map_err(ClusterError::Sim)?;
        let dir = tempfile::Builder::new()
            .prefix("servicerefresh-bench-")
            .tempdir()
            .map_err(ClusterError::Scratch)?;
        let yaml = sim.kubeconfig_yaml(NAMESPACE);
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, &yaml).map_err(|error| ClusterError::Write(path.clone(), error))?;
        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&yaml).map_err(ClusterError::Kubeconfig)?;
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(ClusterError::Kubeconfig)?;
        config.headers.push((USER_AGENT, HeaderValue::from_static(AGENT)));
        let client = Client::try_from(config)?;
        // Both CRDs: a run writes its plan into ServiceRefreshPlan objects.
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let params = PatchParams::apply(AGENT).force();
        for crd in servicerefresh_core::crd::crds() {
            let name = crd.metadata.name.clone().unwrap_or_default();
            crds.patch(&name, &params, &Patch::Apply(crd)).await?;
        }
        Ok(Self { sim, client, dir })
    }

    /// The kubeconfig file for the operator process and kubectl.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// A directory for kubectl's caches, removed with the cluster.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// The names of the fleet's Deployments, sorted (the order a plan restarts them in).
    pub async fn deployment_names(&self) -> Result<Vec<String>, ClusterError> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), NAMESPACE);
        let mut names: Vec<String> = api
            .list_metadata(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|deployment| deployment.metadata.name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// Labels `names` with [`PICK_LABEL`], so a selector on it picks exactly them.
    pub async fn pick(&self, names: &[String]) -> Result<(), ClusterError> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), NAMESPACE);
        let patch = json!({"metadata": {"labels": {PICK_LABEL: "true"}}});
        for name in names {
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
        Ok(())
    }

    /// Creates the ServiceRefresh `name` with batches of `batch_size`, selecting every
    /// Deployment or only the picked ones; returns when the create was answered.
    pub async fn apply(
        &self,
        name: &str,
        batch_size: u32,
        picked_only: bool,
    ) -> Result<(), ClusterError> {
        let selector =
            if picked_only { json!({"matchLabels": {PICK_LABEL: "true"}}) } else { json!({}) };
        self.apply_spec(name, json!({"selector": selector, "batchSize": batch_size})).await
    }

    /// Creates the ServiceRefresh `name` with `spec`; returns when the create was answered.
    pub async fn apply_spec(
        &self,
        name: &str,
        spec: serde_json::Value,
    ) -> Result<(), ClusterError> {
        let refresh: ServiceRefresh = serde_json::from_value(json!({
            "apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": spec,
        }))
        .map_err(ClusterError::Manifest)?;
        self.refreshes().create(&PostParams::default(), &refresh).await?;
        Ok(())
    }

    /// Deletes the ServiceRefresh `name`.
    pub async fn delete(&self, name: &str) -> Result<(), ClusterError> {
        self.refreshes().delete(name, &DeleteParams::default()).await?;
        Ok(())
    }

    /// Follows the ServiceRefresh `name` through a watch until its run ends; returns the
    /// final status and when the watch delivered it.
    pub async fn wait_for_end(
        &self,
        name: &str,
        deadline: Duration,
    ) -> Result<(ServiceRefreshStatus, Instant), ClusterError> {
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut events = watcher::watcher(self.refreshes(), config).boxed();
        let follow = async {
            while let Some(event) = events.next().await {
                let Ok(watcher::Event::Apply(refresh) | watcher::Event::InitApply(refresh)) = event
                else {
                    continue;
                };
                let Some(status) = refresh.status else { continue };
                if status.run.as_ref().is_some_and(|run| run.end_time.is_some())
                    && matches!(
                        status.phase,
                        Some(Phase::Succeeded | Phase::Failed | Phase::Cancelled)
                    )
                {
                    return Ok((status, Instant::now()));
                }
            }
            Err(ClusterError::WatchEnded)
        };
        tokio::time::timeout(deadline, follow).await.map_err(|_| ClusterError::Timeout(deadline))?
    }

    /// The plan of the ServiceRefresh `name`'s current run.
    pub async fn plan_of(&self, name: &str) -> Option<servicerefresh_core::engine::Plan> {
        let refresh = self.refreshes().get(name).await.ok()?;
        crate::plans::plan_of(&self.client, &refresh).await
    }

    fn refreshes(&self) -> Api<ServiceRefresh> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    /// Stops the sim and removes the kubeconfig.
    pub async fn shutdown(self) {
        self.sim.shutdown().await;
    }
}
