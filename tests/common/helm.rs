//! The Helm chart installed into the simulated cluster with RBAC enforced: helm 3 or helm 4
//! (`.ci/tools/bin/helm3`, `helm4`, from `.ci/install-tools`) with the admin kubeconfig, and the
//! operator the chart's Deployment describes. With [`chart_image_sim`] the sim's kubelet runs
//! the chart's pods for real (the operator binary stands in for the chart's image); without
//! it, [`ChartOperator`] starts the operator as a process the way the kubelet would start its
//! container: the Deployment's own command line and environment, with the chart's
//! ServiceAccount token as its only credential.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::Api;
use serde_json::Value;
use servicerefresh_sim::{KubeletConfig, SimConfig, SimHandle};
use tempfile::TempDir;

use super::NAMESPACE;
use super::process::OperatorProcess;

/// The release every test installs, in the namespace README's examples use.
pub const RELEASE: &str = "sr";
pub const RELEASE_NAMESPACE: &str = "servicerefresh-system";
/// The release's objects' name (`<release>-<chart>`), also its ServiceAccount and Lease.
pub const FULLNAME: &str = "sr-servicerefresh";

/// The chart's default image repository (values.yaml `image.repository`).
pub const CHART_IMAGE: &str = "ghcr.io/gisops/servicerefresh";

/// The values the simulated cluster needs beyond the chart's defaults: its pods share the
/// host's network, so each operator binds its own pod IP (`listenHost`, with `POD_IP` from
/// the downward API) instead of 0.0.0.0, where two replicas would clash on one port.
pub const SIM_NETWORK_SETS: [&str; 3] = [
    "listenHost=$(POD_IP)",
    "extraEnv[0].name=POD_IP",
    "extraEnv[0].valueFrom.fieldRef.fieldPath=status.podIP",
];

/// `config` with the sim's kubelet running pods of the chart's image as the operator binary
/// cargo built for the test.
pub fn chart_image_sim(config: SimConfig) -> SimConfig {
    SimConfig {
        run_images: [(CHART_IMAGE.to_owned(), PathBuf::from(env!("CARGO_BIN_EXE_servicerefresh")))]
            .into_iter()
            .collect(),
        kubelet: KubeletConfig { crash_loop_backoff_ms: 500, ..KubeletConfig::default() },
        ..config
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn chart() -> PathBuf {
    root().join("charts").join("servicerefresh")
}

/// A fresh directory named after `tag`, removed on drop.
pub fn scratch(tag: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("servicerefresh-{tag}-"))
        .tempdir()
        .expect("scratch directory")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Helm {
    V3,
    V4,
}

impl Helm {
    pub fn binary(self) -> PathBuf {
        let name = match self {
            Helm::V3 => "helm3",
            Helm::V4 => "helm4",
        };
        let path = root().join(".ci/tools/bin").join(name);
        assert!(path.is_file(), "{} is missing: run .ci/install-tools first", path.display());
        path
    }
}

/// helm with the simulated cluster's admin kubeconfig and a home of its own.
pub struct HelmClient {
    pub helm: Helm,
    home: TempDir,
}

impl HelmClient {
    pub fn new(helm: Helm, sim: &SimHandle) -> Self {
        let home = scratch("helm");
        std::fs::write(home.path().join("kubeconfig"), sim.kubeconfig_yaml(NAMESPACE))
            .expect("kubeconfig written");
        Self { helm, home }
    }

    /// Runs helm with `args`: its standard output, or why it failed.
    pub async fn run(&self, args: &[&str]) -> Result<String, String> {
        let home = self.home.path();
        let output = tokio::process::Command::new(self.helm.binary())
            .args(args)
            .env("KUBECONFIG", home.join("kubeconfig"))
            .env("HOME", home)
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env_remove("HELM_NAMESPACE")
            .env_remove("HELM_KUBECONTEXT")
            .output()
            .await
            .expect("helm runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(format!("{:?} {args:?} failed ({}):\n{stdout}\n{stderr}", self.helm, output.status))
        }
    }

    /// Runs kubectl with the same admin kubeconfig: its standard output, or why it failed.
    pub async fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        let home = self.home.path();
        let output = tokio::process::Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", home.join("kubeconfig"))
            .env("HOME", home)
            .env("KUBECACHEDIR", home.join("kube-cache"))
            .output()
            .await
            .expect("kubectl is installed (see README)");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(format!("kubectl {args:?}: {stdout}{}", String::from_utf8_lossy(&output.stderr)))
        }
    }

    fn release_args<'a>(&self, verb: &'a str, sets: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![verb, RELEASE];
        args.extend(["--namespace", RELEASE_NAMESPACE]);
        for set in sets {
            args.extend(["--set", set]);
        }
        args
    }

    /// `helm install sr charts/servicerefresh --namespace servicerefresh-system
    /// --create-namespace --set ...`, as README says: its output (with the NOTES).
    pub async fn install(&self, sets: &[&str]) -> String {
        let chart = chart().display().to_string();
        let mut args = self.release_args("install", sets);
        args.insert(2, &chart);
        args.push("--create-namespace");
        self.run(&args).await.unwrap_or_else(|error| panic!("{error}"))
    }

    /// `helm upgrade sr charts/servicerefresh --namespace servicerefresh-system --reuse-values
    /// --set ...`: its output.
    pub async fn upgrade(&self, sets: &[&str]) -> String {
        let chart = chart().display().to_string();
        let mut args = self.release_args("upgrade", sets);
        args.insert(2, &chart);
        args.push("--reuse-values");
        self.run(&args).await.unwrap_or_else(|error| panic!("{error}"))
    }

    /// `helm uninstall sr --namespace servicerefresh-system`: its output.
    pub async fn uninstall(&self) -> String {
        let args = self.release_args("uninstall", &[]);
        self.run(&args).await.unwrap_or_else(|error| panic!("{error}"))
    }
}

/// The operator container of the installed Deployment.
pub async fn operator_container(admin: &Client) -> Value {
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    let deployment = deployments.get(FULLNAME).await.expect("the chart's Deployment exists");
    let deployment = serde_json::to_value(deployment).expect("Deployment as JSON");
    let containers = deployment["spec"]["template"]["spec"]["containers"].as_array().cloned();
    let containers = containers.expect("containers");
    assert_eq!(containers.len(), 1, "the operator pod has one container");
    containers[0].clone()
}

/// The container's args, as the chart rendered them into the installed Deployment.
pub fn container_args(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .expect("the container has args")
        .iter()
        .map(|arg| arg.as_str().expect("string args").to_owned())
        .collect()
}

/// Where a pod's files are on this machine: the admin API's certificate and key, which the
/// chart mounts from a Secret at /tls.
pub struct Mounts<'a> {
    pub tls_cert: Option<&'a Path>,
    pub tls_key: Option<&'a Path>,
}

/// The chart's command line with only what cannot apply outside a pod replaced: listeners on
/// 0.0.0.0 and fixed ports become 127.0.0.1:0 (the port is logged), and files mounted into the
/// pod become their copies here. Everything else is passed through unchanged; a flag naming
/// another in-pod path fails the test, so a chart change cannot slip past it.
pub fn outside_a_pod(args: &[String], mounts: &Mounts<'_>) -> Vec<String> {
    args.iter()
        .map(|arg| {
            let (flag, value) = arg.split_once('=').unwrap_or((arg.as_str(), ""));
            let file = |path: Option<&Path>| {
                let path = path.unwrap_or_else(|| panic!("{arg}: no local copy of {value}"));
                format!("{flag}={}", path.display())
            };
            match flag {
                "--metrics-listen" | "--admin-listen" => format!("{flag}=127.0.0.1:0"),
                "--admin-tls-cert" => file(mounts.tls_cert),
                "--admin-tls-key" => file(mounts.tls_key),
                // A URL path, not a file.
                "--admin-context-root" => arg.clone(),
                _ => {
                    assert!(!value.starts_with('/'), "{arg}: an in-pod path the test cannot map");
                    arg.clone()
                }
            }
        })
        .collect()
}

/// The container's environment as the kubelet resolves it for a pod named `pod`: literal
/// values, and the downward API's `metadata.name` and `metadata.namespace`.
pub fn container_env(container: &Value, pod: &str) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for variable in container["env"].as_array().into_iter().flatten() {
        let name = variable["name"].as_str().expect("env name").to_owned();
        let value = if let Some(value) = variable["value"].as_str() {
            value.to_owned()
        } else {
            match variable["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => pod.to_owned(),
                Some("metadata.namespace") => RELEASE_NAMESPACE.to_owned(),
                other => panic!("env {name}: cannot resolve {other:?} outside a pod"),
            }
        };
        env.push((name, value));
    }
    env
}

/// The operator as the chart's pod would run it, authenticated only by a token of the chart's
/// ServiceAccount (the kubeconfig stands in for the mounted token and the in-cluster config).
pub struct ChartOperator {
    pub process: OperatorProcess,
    /// The ServiceAccount kubeconfig the process uses.
    pub kubeconfig: PathBuf,
    _scratch: TempDir,
}

impl ChartOperator {
    /// Starts pod `pod` of the installed Deployment, with `args` (from [`outside_a_pod`]).
    pub async fn start(sim: &SimHandle, admin: &Client, pod: &str, args: &[String]) -> Self {
        let container = operator_container(admin).await;
        let dir = scratch("operator");
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_service_account_kubeconfig(RELEASE_NAMESPACE, FULLNAME, &kubeconfig)
            .expect("a kubeconfig with the chart ServiceAccount's token");
        let mut env = container_env(&container, pod);
        assert!(
            env.iter().all(|(name, _)| name != "KUBECONFIG"),
            "the chart sets no KUBECONFIG: in a pod the operator uses the in-cluster config"
        );
        env.push(("KUBECONFIG".to_owned(), kubeconfig.display().to_string()));
        let env: Vec<(&str, &str)> =
            env.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        let process = OperatorProcess::spawn_args(pod, args, &env);
        Self { process, kubeconfig, _scratch: dir }
    }
}
