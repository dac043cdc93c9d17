//! The capacity scenario of issue 18, side by side: 60 generated Deployments on three nodes
//! with 1.5 CPUs to spare in total, 300 ms rollouts, a 20 s progress deadline and batches of
//! ten, run once with `capacityAware: false` and once with the default, each on a fresh
//! cluster, beside the capacity-limited ideal.
//!
//! The ideal: every generated Deployment (1 to 3 replicas, `maxSurge: 25%`, which rounds up
//! to one pod) surges one pod of its CPU request for its whole rollout, so the fleet needs
//! `sum(request) x rollout` CPU-milliseconds of spare room; spread perfectly over the spare
//! CPU that takes `sum(request) x rollout / spare`. The ideal is that, or the batches one
//! after another (`ceil(60 / 10) x rollout`) when longer: what no pacing can beat, ignoring
//! how the room is split across nodes.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::json;
use servicerefresh_core::crd::Phase;
use servicerefresh_sim::SimConfig;

use super::cluster::{BenchCluster, NAMESPACE};
use super::figures::{Report, Target};
use super::operator::{Launch, OperatorProcess};
use super::record::Checked;
use super::scenarios::{BATCH_SIZE, ScenarioError};
use super::timeline::RunRequests;

const DEPLOYMENTS: usize = 60;
const NODES: usize = 3;
const SPARE_CPU_MILLIS: u64 = 1_500;
const ROLLOUT_MS: u64 = 300;
const PROGRESS_DEADLINE_SECONDS: i32 = 20;

/// One run of the scenario.
#[derive(Debug)]
pub struct CapacityRun {
    pub capacity_aware: bool,
    /// From the create of the ServiceRefresh arriving to the operator's last status write.
    pub elapsed_ms: f64,
    pub ideal_ms: f64,
    pub phase: Option<Phase>,
    pub failed: u32,
    pub restarted: u32,
    /// Pod-template changes the sim counted, over the whole fleet.
    pub template_changes: u64,
    /// `BatchSizeChanged` Events: each change of the effective batch size.
    pub size_changes: usize,
}

/// Runs the scenario with `capacityAware: false`, then with the default.
pub async fn side_by_side(launch: &Launch) -> Result<[CapacityRun; 2], ScenarioError> {
    Ok([one_run(launch, false).await?, one_run(launch, true).await?])
}

async fn one_run(launch: &Launch, capacity_aware: bool) -> Result<CapacityRun, ScenarioError> {
    let cluster = BenchCluster::start_with(SimConfig {
        deployments: DEPLOYMENTS,
        rollout_ms: ROLLOUT_MS,
        rollout_jitter_ms: 0,
        progress_deadline_seconds: PROGRESS_DEADLINE_SECONDS,
        nodes: Some(NODES),
        spare_cpu_millis: Some(SPARE_CPU_MILLIS),
        workload_objects: true,
        ..SimConfig::default()
    })
    .await?;
    let result = measure(launch, &cluster, capacity_aware).await;
    cluster.shutdown().await;
    result
}

async fn measure(
    launch: &Launch,
    cluster: &BenchCluster,
    capacity_aware: bool,
) -> Result<CapacityRun, ScenarioError> {
    let ideal_ms = ideal_ms(cluster).await?;
    let operator = OperatorProcess::spawn(launch, &cluster.kubeconfig(), NAMESPACE)?;
    operator.wait_ready(Duration::from_secs(120)).await?;
    // The leader election's first acquisition happens right after the caches sync.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let since = cluster.sim.now_ms();
    let spec = json!({
        "selector": {}, "batchSize": BATCH_SIZE,
        "pacing": {"capacityAware": capacity_aware},
    });
    cluster.apply_spec("bench-capacity", spec).await?;
    let (status, _) = cluster.wait_for_end("bench-capacity", Duration::from_secs(600)).await?;
    operator.stop().await;

    let records = cluster.sim.requests();
    let run = RunRequests::since(&records, since).ok_or(ScenarioError::Missing("the create"))?;
    let last_write = run.last_status_write().ok_or(ScenarioError::Missing("a status write"))?;
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let size_changes = events
        .list(&ListParams::default())
        .await
        .map_err(super::cluster::ClusterError::Api)?
        .items
        .iter()
        .filter(|event| event.reason.as_deref() == Some("BatchSizeChanged"))
        .count();
    Ok(CapacityRun {
        capacity_aware,
        elapsed_ms: (last_write.at_ms - run.created.at_ms) as f64,
        ideal_ms,
        phase: status.phase,
        failed: status.totals.failed,
        restarted: status.totals.restarted,
        template_changes: cluster.sim.stats().template_changes.values().sum(),
        size_changes,
    })
}

/// The capacity-limited ideal of the module's opening, from the fleet's CPU requests.
async fn ideal_ms(cluster: &BenchCluster) -> Result<f64, ScenarioError> {
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let deployments =
        api.list(&ListParams::default()).await.map_err(super::cluster::ClusterError::Api)?;
    let requested: u64 = deployments.items.iter().map(cpu_request_millis).sum();
    let by_room = (requested * ROLLOUT_MS) as f64 / SPARE_CPU_MILLIS as f64;
    let by_batches =
        (deployments.items.len().div_ceil(BATCH_SIZE as usize) as u64 * ROLLOUT_MS) as f64;
    Ok(by_room.max(by_batches))
}

/// The CPU one pod of `deployment` requests, in millicores.
fn cpu_request_millis(deployment: &Deployment) -> u64 {
    let containers = deployment
        .spec
        .template
        .spec
        .as_ref()
        .map(|pod| pod.containers.as_slice())
        .unwrap_or_default();
    containers
        .iter()
        .filter_map(|container| container.resources.as_ref()?.requests.as_ref()?.get("cpu"))
        .filter_map(|quantity| servicerefresh_sim::cpu_millis(&quantity.0).ok())
        .sum()
}

/// The two runs as the report's figures: run time, failures and restarts of each, beside
/// the ideal.
pub fn record(report: &mut Report, checked: Checked, runs: &[CapacityRun; 2]) {
    let ideal = runs[0].ideal_ms;
    report.note(
        "capacity.idealSeconds",
        "capacity 60 x 300 ms, 3 nodes, 1500m spare: capacity-limited ideal",
        ideal / 1000.0,
        "s",
    );
    for run in runs {
        let (key, words) = if run.capacity_aware {
            ("default", "capacityAware (default)")
        } else {
            ("unpaced", "capacityAware false")
        };
        let id = |name: &str| format!("capacity.{key}.{name}");
        let label = |what: &str| format!("capacity, {words}: {what}");
        report.note(&id("seconds"), &label("run time"), run.elapsed_ms / 1000.0, "s");
        report.note(&id("ratio"), &label("run time / ideal"), run.elapsed_ms / ideal, "");
        let failed = f64::from(run.failed);
        if run.capacity_aware {
            checked.check(
                report,
                &id("failed"),
                &label("failures"),
                failed,
                "",
                Target::Exactly(0.0),
            );
        } else {
            report.note(&id("failed"), &label("failures"), failed, "");
        }
        report.note(
            &id("restarted"),
            &label("Deployments restarted"),
            f64::from(run.restarted),
            "",
        );
        report.note(
            &id("templateChanges"),
            &label("pod-template changes (sim)"),
            run.template_changes as f64,
            "",
        );
        report.note(
            &id("sizeChanges"),
            &label("effective batch size changes"),
            run.size_changes as f64,
            "",
        );
        if run.capacity_aware && run.phase != Some(Phase::Succeeded) {
            super::progress(&format!("warning: the capacity-aware run ended {:?}", run.phase));
        }
    }
}
