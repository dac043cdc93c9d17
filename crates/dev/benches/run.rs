//! Figures for a whole run on the simulated cluster: wall time against the ideal (every
//! rollout takes exactly `--rollout-ms`, so a run of N batches ideally takes N times that),
//! and the API requests the operator spent per restarted Deployment. Prints; asserts nothing.
//! Run with `cargo bench --bench run`.

use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, CustomResourceExt};
use servicerefresh_core::crd::{Phase, ServiceRefresh};
use servicerefresh_operator::controller::{self, Clients, OperatorConfig};
use servicerefresh_sim::{SimConfig, SimHandle};

const ROLLOUT_MS: u64 = 300;

/// A client for the simulated cluster, with the CRD installed.
async fn connect(sim: &SimHandle) -> Client {
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml("arcgis")).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let client = Client::try_from(config).expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        ServiceRefresh::crd_name(),
        &PatchParams::apply("bench").force(),
        &Patch::Apply(servicerefresh_core::crd::crd()),
    )
    .await
    .expect("CRD installs");
    client
}

async fn one_run(deployments: usize, batch_size: u32) {
    let sim = servicerefresh_sim::start(SimConfig {
        namespace: "arcgis".into(),
        deployments,
        rollout_ms: ROLLOUT_MS,
        rollout_jitter_ms: 0,
        ..SimConfig::default()
    })
    .await
    .expect("sim starts");
    let client = connect(&sim).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let clients = Clients::single(client.clone(), sim.base_url());
    let operator = tokio::spawn(controller::run(clients, OperatorConfig::default(), async move {
        let _ = stopped.await;
    }));
    sim.reset_stats();
    let refreshes: Api<ServiceRefresh> = Api::namespaced(client.clone(), "arcgis");
    let refresh: ServiceRefresh = serde_json::from_value(serde_json::json!({
        "apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
        "metadata": {"name": "bench"}, "spec": {"selector": {}, "batchSize": batch_size}
    }))
    .expect("valid ServiceRefresh");
    let started = Instant::now();
    refreshes.create(&PostParams::default(), &refresh).await.expect("create");
    loop {
        let phase =
            refreshes.get_status("bench").await.ok().and_then(|r| r.status).and_then(|s| s.phase);
        if matches!(phase, Some(Phase::Succeeded | Phase::Failed)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    let _ = operator.await;
    let stats = sim.stats();
    sim.shutdown().await;
    let count = |key: &str| stats.requests.get(key).copied().unwrap_or(0);
    let batches = deployments.div_ceil(batch_size as usize);
    let ideal = Duration::from_millis(ROLLOUT_MS * batches as u64);
    println!(
        "{:>6} {:>6} {:>8} {:>10.2?} {:>10.2?} {:>12.0?} {:>8} {:>8} {:>8.2}",
        deployments,
        batch_size,
        batches,
        elapsed,
        ideal,
        (elapsed.saturating_sub(ideal)) / batches as u32,
        count("patch deployments"),
        count("patch servicerefreshes/status"),
        count("patch deployments") as f64 / deployments as f64,
    );
}

#[tokio::main]
async fn main() {
    println!(
        "{:>6} {:>6} {:>8} {:>10} {:>10} {:>12} {:>8} {:>8} {:>8}",
        "deps",
        "batch",
        "batches",
        "actual",
        "ideal",
        "overhead/b",
        "patches",
        "status",
        "patch/dep"
    );
    for (deployments, batch_size) in [(100, 10), (300, 10), (300, 50)] {
        one_run(deployments, batch_size).await;
    }
}
