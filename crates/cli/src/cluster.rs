//! Reaching the ServiceRefresh a command is about, the way kubectl does: the kubeconfig from
//! `--kubeconfig`, KUBECONFIG or `~/.kube/config` (else the in-cluster config), the context
//! from `--context` or the current one, and the namespace from `-n` or the context. It also
//! turns the API's failures into [`CliError`]s that name the server and the object, telling a
//! missing CRD apart from a missing object.

use std::path::PathBuf;

use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::error::{CliError, root_cause};
use servicerefresh_core::crd::{ServiceRefresh, ServiceRefreshPlan};
use servicerefresh_core::engine::Plan;
use servicerefresh_core::engine::plan::PLAN_OWNER_LABEL;

/// Field manager of the CLI's writes, distinct from the operator's.
pub const FIELD_MANAGER: &str = "servicerefresh-cli";

/// Where to find the cluster, as kubectl's flags say it.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ClusterArgs {
    /// Namespace of the ServiceRefresh. Default: the namespace of the kubeconfig context.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Path to the kubeconfig file. Default: KUBECONFIG, then ~/.kube/config, then the
    /// in-cluster config.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use. Default: the current context.
    #[arg(long)]
    pub context: Option<String>,
}

/// One ServiceRefresh on one cluster.
#[derive(Clone)]
pub struct Target {
    pub api: Api<ServiceRefresh>,
    pub client: Client,
    /// The API server's URL, for messages.
    pub server: String,
    pub namespace: String,
    pub name: String,
}

impl Target {
    /// Builds a client from the flags and points it at the named ServiceRefresh.
    pub async fn connect(args: &ClusterArgs, name: &str) -> Result<Self, CliError> {
        let options = KubeConfigOptions { context: args.context.clone(), ..Default::default() };
        let config = match (&args.kubeconfig, &args.context) {
            (Some(path), _) => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(|source| {
                    CliError::Kubeconfig { path: path.clone(), source: source.into() }
                })?;
                Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(|source| {
                    match &args.context {
                        Some(context) => {
                            CliError::Context { context: context.clone(), source: source.into() }
                        }
                        None => CliError::Kubeconfig { path: path.clone(), source: source.into() },
                    }
                })?
            }
            (None, Some(context)) => Config::from_kubeconfig(&options).await.map_err(|source| {
                CliError::Context { context: context.clone(), source: source.into() }
            })?,
            (None, None) => Config::infer()
                .await
                .map_err(|source| CliError::NoConfig { source: source.into() })?,
        };
        let server = config.cluster_url.to_string().trim_end_matches('/').to_owned();
        let namespace = args.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config)
            .map_err(|source| CliError::Client { server: server.clone(), source: source.into() })?;
        Ok(Self {
            api: Api::namespaced(client.clone(), &namespace),
            client,
            server,
            namespace,
            name: name.to_owned(),
        })
    }

    /// Reads the ServiceRefresh.
    pub async fn get(&self) -> Result<ServiceRefresh, CliError> {
        match self.api.get(&self.name).await {
            Ok(refresh) => Ok(refresh),
            Err(err) => Err(self.classify(err, "read").await),
        }
    }

    /// The plan of `refresh`'s current run, joined from its ServiceRefreshPlan objects.
    /// `None` when it has no run, or its plan objects do not add up (yet).
    pub async fn plan_of(&self, refresh: &ServiceRefresh) -> Result<Option<Plan>, CliError> {
        let reference = refresh.status.as_ref().and_then(|s| s.run.as_ref()?.plan.clone());
        let (Some(reference), Some(uid)) = (reference, refresh.metadata.uid.as_deref()) else {
            return Ok(None);
        };
        let plans: Api<ServiceRefreshPlan> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = ListParams::default().labels(&format!("{PLAN_OWNER_LABEL}={uid}"));
        match plans.list(&params).await {
            Ok(list) => Ok(Plan::from_objects(&reference, &list.items).ok()),
            Err(err) => Err(self.classify(err, "read the plan of").await),
        }
    }

    /// Merge-patches the ServiceRefresh's metadata, on the condition that it is still at
    /// `resource_version`. `Ok(None)` means it changed meanwhile (409 Conflict).
    pub async fn patch_metadata_if_unchanged(
        &self,
        resource_version: Option<&str>,
        annotations: serde_json::Value,
    ) -> Result<Option<ServiceRefresh>, CliError> {
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": resource_version, "annotations": annotations}
        });
        let params =
            PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
        match self.api.patch(&self.name, &params, &Patch::Merge(&patch)).await {
            Ok(refresh) => Ok(Some(refresh)),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
            Err(err) => Err(self.classify(err, "annotate").await),
        }
    }

    /// Turns an API failure into a readable error. A 404 is checked against discovery, so a
    /// missing CRD reads differently from a missing object.
    pub async fn classify(&self, err: kube::Error, action: &'static str) -> CliError {
        match &err {
            kube::Error::Api(status) if status.code == 404 => {
                if self.crd_installed().await {
                    self.not_found()
                } else {
                    CliError::CrdMissing { server: self.server.clone() }
                }
            }
            kube::Error::Api(status) => CliError::Api {
                action,
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                server: self.server.clone(),
                message: if status.message.is_empty() {
                    format!("HTTP {}", status.code)
                } else {
                    status.message.clone()
                },
                source: err.into(),
            },
            _ => CliError::Unreachable {
                server: self.server.clone(),
                cause: root_cause(&err),
                source: err.into(),
            },
        }
    }

    pub fn not_found(&self) -> CliError {
        CliError::NotFound {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            server: self.server.clone(),
        }
    }

    /// Whether discovery lists `servicerefreshes` in gisops.io/v1alpha1.
    async fn crd_installed(&self) -> bool {
        match self.client.list_api_group_resources("gisops.io/v1alpha1").await {
            Ok(list) => list.resources.iter().any(|r| r.name == "servicerefreshes"),
            // Could not tell: say "not found" about the object rather than blame the CRD.
            Err(kube::Error::Api(status)) => status.code != 404,
            Err(_) => true,
        }
    }
}
