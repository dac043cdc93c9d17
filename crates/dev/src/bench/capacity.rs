//! The capacity scenario of issue 18, side by side: 60 generated Deployments on three nodes
//! with 1.5 CPUs to spare in total, 300 ms rollouts, a 20 s progress deadline and batches of
//! ten, run once with `capacityAware: false` and once with the default, each on a fresh
//! cluster, beside the capacity-limited ideal.
//!
//! What makes room scarce is what a real cluster does: a deleted pod keeps its requests on
//! its node while it stops (`Terminating`, here [`POD_STOP`], well within the default 30 s
//! grace period). Each Deployment runs one pod requesting [`POD_CPU_MILLIS`], so the spare
//! room (500m a node) takes six surge pods, and every restart holds one of those places for
//! its rollout and its old pod's stop time. Ten restarts at once leave four waiting one stop
//! time; the next batch of ten then waits about two, past the deadline: without pacing,
//! rollouts fail `ProgressDeadlineExceeded`. Capacity-aware pacing halves the batch once
//! pods wait past its grace, so none waits much longer than one stop time.
//!
//! The ideal: every restart holds its pod's request for rollout plus stop time, spread
//! perfectly over the spare CPU (`sum(request) x (rollout + stop) / spare`), less one stop
//! time (the last restarts' old pods stop after the run has ended); or the batches one
//! after another (`ceil(60 / 10) x rollout`) when longer: what no pacing can beat.

use std::collections::HashMap;
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
use super::timeline::{RunRequests, from_operator, resource_of};

const DEPLOYMENTS: usize = 60;
const NODES: usize = 3;
const SPARE_CPU_MILLIS: u64 = 1_500;
const ROLLOUT_MS: u64 = 300;
const PROGRESS_DEADLINE_SECONDS: i32 = 20;
/// The CPU request of each Deployment's pod: two fit in a node's 500m of spare room.
const POD_CPU_MILLIS: u64 = 250;
/// How long a deleted pod holds its room while it stops.
const POD_STOP: Duration = Duration::from_secs(12);

/// One run of the scenario.
#[derive(Debug)]
pub struct CapacityRun {
    pub capacity_aware: bool,
    /// How long a deleted pod held its room.
    pub pod_stop: Duration,
    /// From the create of the ServiceRefresh arriving to the operator's last status write.
    pub elapsed_ms: f64,
    pub ideal_ms: f64,
    pub phase: Option<Phase>,
    pub failed: u32,
    pub restarted: u32,
    /// Pod-template changes the sim counted, over the whole fleet.
    pub template_changes: u64,
    /// Services that failed `ProgressDeadlineExceeded`.
    pub deadline_failures: u32,
    /// Deployments the operator patched, and those it patched more than once (the sim's
    /// request log).
    pub patched: usize,
    pub patched_twice: usize,
    /// `BatchSizeChanged` Events: each change of the effective batch size.
    pub size_changes: usize,
    /// The first shrink's Event message.
    pub first_shrink: Option<String>,
    /// The longest time a pod waited for a node: from the scheduler's first
    /// `FailedScheduling` to its `Scheduled` Event. Beside the 20 s deadline it shows the
    /// scenario's margins.
    pub longest_wait_ms: f64,
}

/// Runs the scenario with `capacityAware: false`, then with the default. `quick` (a smoke
/// test of the bench) leaves out the pod stop time: each run then takes seconds instead of
/// two minutes, and nothing waits long enough to fail.
pub async fn side_by_side(launch: &Launch, quick: bool) -> Result<[CapacityRun; 2], ScenarioError> {
    let stop = if quick { Duration::ZERO } else { POD_STOP };
    if quick {
        super::progress("capacity (quick): no pod stop time, so the scenario does not bite");
    }
    Ok([one_run(launch, false, stop).await?, one_run(launch, true, stop).await?])
}

async fn one_run(
    launch: &Launch,
    capacity_aware: bool,
    stop: Duration,
) -> Result<CapacityRun, ScenarioError> {
    let cluster = BenchCluster::start_with(SimConfig {
        deployments: DEPLOYMENTS,
        rollout_ms: ROLLOUT_MS,
        rollout_jitter_ms: 0,
        progress_deadline_seconds: PROGRESS_DEADLINE_SECONDS,
        nodes: Some(NODES),
        spare_cpu_millis: Some(SPARE_CPU_MILLIS),
        deployment_cpu_millis: Some(POD_CPU_MILLIS),
        deployment_replicas: Some(1),
        pod_stop_time_ms: u64::try_from(stop.as_millis()).unwrap_or(u64::MAX),
        workload_objects: true,
        ..SimConfig::default()
    })
    .await?;
    let result = measure(launch, &cluster, capacity_aware, stop).await;
    cluster.shutdown().await;
    result
}

async fn measure(
    launch: &Launch,
    cluster: &BenchCluster,
    capacity_aware: bool,
    stop: Duration,
) -> Result<CapacityRun, ScenarioError> {
    let ideal_ms = ideal_ms(cluster, stop).await?;
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
    let mut patches: HashMap<String, usize> = HashMap::new();
    for record in run.during.iter().filter(|record| {
        from_operator(record)
            && record.verb == "patch"
            && resource_of(&record.path).as_deref() == Some("deployments")
    }) {
        let name = record.path.rsplit('/').next().unwrap_or_default();
        *patches.entry(name.to_owned()).or_default() += 1;
    }
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let all_events =
        events.list(&ListParams::default()).await.map_err(super::cluster::ClusterError::Api)?.items;
    let mut size_events: Vec<&Event> = all_events
        .iter()
        .filter(|event| event.reason.as_deref() == Some("BatchSizeChanged"))
        .collect();
    size_events.sort_by_key(|event| event.event_time.as_ref().map(|time| time.0));
    let deadline_failures = status
        .results
        .iter()
        .filter(|group| group.reason == "ProgressDeadlineExceeded")
        .map(|group| group.count)
        .sum();
    Ok(CapacityRun {
        capacity_aware,
        pod_stop: stop,
        elapsed_ms: (last_write.at_ms - run.created.at_ms) as f64,
        ideal_ms,
        phase: status.phase,
        failed: status.totals.failed,
        restarted: status.totals.restarted,
        template_changes: cluster.sim.stats().template_changes.values().sum(),
        deadline_failures,
        patched: patches.len(),
        patched_twice: patches.values().filter(|count| **count > 1).count(),
        size_changes: size_events.len(),
        first_shrink: size_events.first().and_then(|event| event.note.clone()),
        longest_wait_ms: longest_wait_for_a_node(&all_events),
    })
}

/// The longest wait of a pod for a node, from the scheduler's Events (`eventTime`).
fn longest_wait_for_a_node(events: &[Event]) -> f64 {
    let mut first_refused: HashMap<&str, jiff::Timestamp> = HashMap::new();
    let mut bound: HashMap<&str, jiff::Timestamp> = HashMap::new();
    for event in events {
        let (Some(pod), Some(at)) = (
            event.regarding.as_ref().and_then(|regarding| regarding.name.as_deref()),
            event.event_time.as_ref().map(|time| time.0),
        ) else {
            continue;
        };
        match event.reason.as_deref() {
            Some("FailedScheduling") => {
                let first = first_refused.entry(pod).or_insert(at);
                *first = (*first).min(at);
            }
            Some("Scheduled") => {
                bound.insert(pod, at);
            }
            _ => {}
        }
    }
    first_refused
        .iter()
        .filter_map(|(pod, refused)| Some(bound.get(pod)?.duration_since(*refused)))
        .map(|waited| waited.as_secs_f64() * 1000.0)
        .fold(0.0, f64::max)
}

/// The capacity-limited ideal of the module's opening, from the fleet's CPU requests.
async fn ideal_ms(cluster: &BenchCluster, stop: Duration) -> Result<f64, ScenarioError> {
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let deployments =
        api.list(&ListParams::default()).await.map_err(super::cluster::ClusterError::Api)?;
    let requested: u64 = deployments.items.iter().map(cpu_request_millis).sum();
    let stop_ms = stop.as_secs_f64() * 1000.0;
    let hold_ms = ROLLOUT_MS as f64 + stop_ms;
    let by_room = requested as f64 * hold_ms / SPARE_CPU_MILLIS as f64 - stop_ms;
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
    let stop = runs[0].pod_stop.as_secs_f64();
    report.note(
        "capacity.idealSeconds",
        &format!(
            "capacity 60 x 300 ms, 3 nodes, 1500m spare, {stop} s pod stop: capacity-limited ideal"
        ),
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
        let deadline = f64::from(run.deadline_failures);
        let patched = run.patched as f64;
        let twice = run.patched_twice as f64;
        if run.capacity_aware {
            let exactly = |report: &mut Report, name: &str, what: &str, value: f64, want: f64| {
                checked.check(report, &id(name), &label(what), value, "", Target::Exactly(want));
            };
            exactly(report, "failed", "failures", failed, 0.0);
            exactly(report, "patched", "Deployments restarted (request log)", patched, 60.0);
            exactly(report, "patchedTwice", "Deployments restarted twice", twice, 0.0);
        } else {
            report.note(&id("failed"), &label("failures"), failed, "");
            report.note(&id("patched"), &label("Deployments restarted (request log)"), patched, "");
        }
        report.note(&id("deadlineFailures"), &label("ProgressDeadlineExceeded"), deadline, "");
        report.note(
            &id("restarted"),
            &label("Deployments restarted (status)"),
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
            &id("longestWaitSeconds"),
            &label("longest wait of a pod for a node (deadline 20 s)"),
            run.longest_wait_ms / 1000.0,
            "s",
        );
        report.note(
            &id("sizeChanges"),
            &label("effective batch size changes"),
            run.size_changes as f64,
            "",
        );
        if let Some(message) = &run.first_shrink {
            super::progress(&format!("capacity ({words}): first BatchSizeChanged: {message}"));
        }
        if run.capacity_aware && run.phase != Some(Phase::Succeeded) {
            super::progress(&format!("warning: the capacity-aware run ended {:?}", run.phase));
        }
        if !run.capacity_aware && run.deadline_failures == 0 {
            super::progress("warning: without capacity-aware pacing nothing failed: no bite");
        }
    }
}
