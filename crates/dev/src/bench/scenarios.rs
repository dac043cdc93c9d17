//! The measured scenarios, each on a fresh simulated cluster with the operator in its own
//! process: a whole run of a fleet (time against the ideal, batch handoffs, requests, CPU),
//! and the footprint with a large fleet in the cluster (resident memory, apply to first
//! restart patch).

use std::collections::BTreeMap;
use std::time::Duration;

use thiserror::Error;

use super::cluster::{BenchCluster, ClusterError};
use super::operator::{Launch, Memory, OperatorError, OperatorProcess};
use super::timeline::{self, ReadyTimes, RunRequests, SimClock};
use servicerefresh_core::crd::Phase;

/// Batches of ten, as ArcGIS's own refreshAllServices restarts them.
pub const BATCH_SIZE: u32 = 10;

#[derive(Debug, Error)]
pub enum ScenarioError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Operator(#[from] OperatorError),
    #[error("the request log lacks {0}")]
    Missing(&'static str),
}

/// What a whole run measured.
#[derive(Debug)]
pub struct RunFigures {
    pub deployments: usize,
    pub batches: usize,
    /// From the create of the ServiceRefresh arriving at the sim to the operator's last
    /// status write arriving, in ms.
    pub elapsed_ms: f64,
    /// Every rollout taking exactly its time, batch after batch.
    pub ideal_ms: f64,
    /// From the create arriving to the first restart patch arriving, in ms.
    pub apply_to_first_patch_ms: f64,
    /// Per batch boundary, in ms (see [`timeline::handoffs`]).
    pub handoffs_ms: Vec<f64>,
    /// Per batch boundary, its two parts in ms (see [`timeline::handoff_parts`]).
    pub handoff_parts_ms: Vec<(f64, f64)>,
    /// Per batch: patch spread and rollout as observed (see [`timeline::batch_times`]).
    pub batch_times: Vec<timeline::BatchTimes>,
    pub rollout_ms: u64,
    pub phase: Option<Phase>,
    pub restarted: u32,
    /// The operator's requests over its whole life (start-up lists included), by
    /// `verb resource`.
    pub requests: BTreeMap<String, u64>,
    /// Operator CPU seconds from just before the create to the end of the run.
    pub cpu_seconds: f64,
    pub memory: Memory,
    /// Request-body bytes of every write the operator sent during the run.
    pub bytes_written: u64,
    /// Of which the status writes'.
    pub status_bytes_written: u64,
}

impl RunFigures {
    /// The operator's count of `verb resource`.
    pub fn count(&self, key: &str) -> u64 {
        self.requests.get(key).copied().unwrap_or(0)
    }
}

/// Runs `deployments` through one ServiceRefresh, every rollout taking `rollout_ms`.
pub async fn whole_run(
    launch: &Launch,
    deployments: usize,
    rollout_ms: u64,
) -> Result<RunFigures, ScenarioError> {
    let cluster = BenchCluster::start(deployments, rollout_ms).await?;
    let result = measure_run(launch, &cluster, deployments, rollout_ms).await;
    cluster.shutdown().await;
    result
}

async fn measure_run(
    launch: &Launch,
    cluster: &BenchCluster,
    deployments: usize,
    rollout_ms: u64,
) -> Result<RunFigures, ScenarioError> {
    let ready = ReadyTimes::watch(cluster.client.clone()).await;
    let operator =
        OperatorProcess::spawn(launch, &cluster.kubeconfig(), super::cluster::NAMESPACE)?;
    operator.wait_ready(Duration::from_secs(120)).await?;
    // The leader election's first acquisition happens right after the caches sync.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let clock = SimClock::calibrate(&cluster.sim);
    let batches = deployments.div_ceil(BATCH_SIZE as usize);
    let ideal_ms = (batches as u64 * rollout_ms) as f64;
    let cpu_before = operator.cpu_seconds()?;
    let since = cluster.sim.now_ms();
    cluster.apply("bench", BATCH_SIZE, false).await?;
    let deadline = Duration::from_millis(ideal_ms as u64 * 4) + Duration::from_secs(60);
    let (status, _) = cluster.wait_for_end("bench", deadline).await?;
    let plan = cluster.plan_of("bench").await;
    let cpu_seconds = operator.cpu_seconds()? - cpu_before;
    let memory = operator.memory()?;
    operator.stop().await;

    let records = cluster.sim.requests();
    let run = RunRequests::since(&records, since).ok_or(ScenarioError::Missing("the create"))?;
    let first_patch = run.first_patch().ok_or(ScenarioError::Missing("a restart patch"))?;
    let last_write = run.last_status_write().ok_or(ScenarioError::Missing("a status write"))?;
    let (bytes_written, status_bytes_written) = run.bytes_written();
    Ok(RunFigures {
        deployments,
        batches,
        elapsed_ms: (last_write.at_ms - run.created.at_ms) as f64,
        ideal_ms,
        apply_to_first_patch_ms: (first_patch.at_ms - run.created.at_ms) as f64,
        handoffs_ms: timeline::handoffs(&status, plan.as_ref(), &run, &ready, &clock),
        handoff_parts_ms: timeline::handoff_parts(&status, plan.as_ref(), &run, &ready, &clock),
        batch_times: timeline::batch_times(&status, plan.as_ref(), &run, &ready, &clock),
        rollout_ms,
        phase: status.phase,
        restarted: status.totals.restarted,
        requests: timeline::operator_counts(&records),
        cpu_seconds,
        memory,
        bytes_written,
        status_bytes_written,
    })
}

/// What the footprint scenario measured.
#[derive(Debug)]
pub struct FootprintFigures {
    pub fleet: usize,
    pub picked: usize,
    /// Once the caches synced, before any run.
    pub synced: Memory,
    /// After a run of the picked Deployments.
    pub after_run: Memory,
    /// Create to first restart patch for the run of the picked Deployments, in ms.
    pub apply_picked_ms: f64,
    /// Create to first restart patch for a run planning the whole fleet, in ms.
    pub apply_whole_fleet_ms: Option<f64>,
    /// After planning the whole fleet too.
    pub after_whole_fleet_plan: Option<Memory>,
    pub phase: Option<Phase>,
}

/// A fleet of `fleet` Deployments in the cluster, a run restarting `picked` of them (spread
/// over the fleet), then, when `plan_whole_fleet`, a run planning all of them, deleted
/// after its first restart patch.
pub async fn footprint(
    launch: &Launch,
    fleet: usize,
    picked: usize,
    rollout_ms: u64,
    plan_whole_fleet: bool,
) -> Result<FootprintFigures, ScenarioError> {
    let cluster = BenchCluster::start(fleet, rollout_ms).await?;
    let result = measure_footprint(launch, &cluster, fleet, picked, plan_whole_fleet).await;
    cluster.shutdown().await;
    result
}

async fn measure_footprint(
    launch: &Launch,
    cluster: &BenchCluster,
    fleet: usize,
    picked: usize,
    plan_whole_fleet: bool,
) -> Result<FootprintFigures, ScenarioError> {
    let names = cluster.deployment_names().await?;
    let step = (names.len() / picked.max(1)).max(1);
    let chosen: Vec<String> = names.iter().step_by(step).take(picked).cloned().collect();
    cluster.pick(&chosen).await?;
    let operator =
        OperatorProcess::spawn(launch, &cluster.kubeconfig(), super::cluster::NAMESPACE)?;
    operator.wait_ready(Duration::from_secs(300)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let synced = operator.memory()?;

    let since = cluster.sim.now_ms();
    cluster.apply("bench", BATCH_SIZE, true).await?;
    let (status, _) = cluster.wait_for_end("bench", Duration::from_secs(300)).await?;
    // Memory settles after the last write's buffers are freed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_run = operator.memory()?;
    let records = cluster.sim.requests();
    let run = RunRequests::since(&records, since).ok_or(ScenarioError::Missing("the create"))?;
    let first = run.first_patch().ok_or(ScenarioError::Missing("a restart patch"))?;
    let apply_picked_ms = (first.at_ms - run.created.at_ms) as f64;

    let (mut apply_whole_fleet_ms, mut after_whole_fleet_plan) = (None, None);
    if plan_whole_fleet {
        let since = cluster.sim.now_ms();
        cluster.apply("bench-all", BATCH_SIZE, false).await?;
        let waited = std::time::Instant::now();
        while waited.elapsed() < Duration::from_secs(60) {
            let records = cluster.sim.requests();
            if let Some(run) = RunRequests::since(&records, since)
                && let Some(first) = run.first_patch()
            {
                apply_whole_fleet_ms = Some((first.at_ms - run.created.at_ms) as f64);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        after_whole_fleet_plan = Some(operator.memory()?);
        cluster.delete("bench-all").await?;
    }
    operator.stop().await;
    Ok(FootprintFigures {
        fleet,
        picked: chosen.len(),
        synced,
        after_run,
        apply_picked_ms,
        apply_whole_fleet_ms,
        after_whole_fleet_plan,
        phase: status.phase,
    })
}
