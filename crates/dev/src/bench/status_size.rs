//! The size of a large run's status, measured by driving the engine alone over a model
//! fleet (no API server: the status a real run writes is exactly what `decide` returns,
//! with the outcomes that end a service folded in). One Deployment in fifty fails, so failure messages
//! are part of the figure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

use servicerefresh_core::crd::{Phase, ServiceRefresh};
use servicerefresh_core::engine::observed::RolloutStatus;
use servicerefresh_core::engine::{
    DeploymentSnapshot, Observation, OperatorScope, Plan, RestartOutcome, RunSlot, StaticCluster,
    decide, record_restart_outcomes,
};

const NAMESPACE: &str = "arcgis";

/// The status sizes of one run, in bytes of JSON.
#[derive(Clone, Copy, Debug, Default)]
pub struct StatusSizes {
    /// The largest status any pass wrote.
    pub largest: usize,
    /// The status the run ended with.
    pub last: usize,
    pub passes: usize,
    /// Bytes of status and plan objects the run writes, as the operator writes them: the
    /// whole status on each change (server-side apply), once more after a pass whose restart
    /// outcomes end a service (a patch that went through rides along with the next write),
    /// and each plan object once.
    pub written: usize,
    pub restarted: usize,
}

/// A fleet of `count` Deployments named like the sim's, all rolled out.
fn fleet(count: usize) -> Result<StaticCluster, serde_json::Error> {
    let deployments = (0..count)
        .map(|i| {
            let name = format!("arcgis-{:08x}-mapserver-{:05}", i * 2_654_435_761 % 0xffff_ffff, i);
            let mut deployment: DeploymentSnapshot = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1, "uid": format!("uid-{i}"),
                             "labels": {"app.kubernetes.io/managed-by": "arcgis"}},
                "spec": {"replicas": 2, "selector": {}, "template": {}},
            }))?;
            deployment.rollout = Some(rolled_out(1, 2));
            Ok(deployment)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StaticCluster::with_deployments(deployments))
}

fn rolled_out(generation: i64, replicas: i32) -> RolloutStatus {
    RolloutStatus {
        observed_generation: Some(generation),
        replicas: Some(replicas),
        updated_replicas: Some(replicas),
        available_replicas: Some(replicas),
        progressing_reason: None,
        ..RolloutStatus::default()
    }
}

/// What one pass of a model run cost and wrote.
#[derive(Clone, Copy, Debug)]
pub struct PassFigures {
    /// The time `decide` took.
    pub decide: Duration,
    /// The status the pass left on record, in bytes of JSON.
    pub status_bytes: usize,
    /// What the pass wrote: its status when it changed, an outcome write when a restart's
    /// outcome ended a service, and new plan objects, in bytes of JSON.
    pub written_bytes: usize,
    pub restarts: usize,
}

/// The status sizes of a whole run of `count` services in batches of `batch_size`.
pub fn measure(count: usize, batch_size: u32) -> Result<StatusSizes, serde_json::Error> {
    let mut sizes = StatusSizes::default();
    drive_run(count, batch_size, |pass| {
        sizes.passes += 1;
        sizes.largest = sizes.largest.max(pass.status_bytes);
        sizes.last = pass.status_bytes;
        sizes.written += pass.written_bytes;
        sizes.restarted += pass.restarts;
    })?;
    Ok(sizes)
}

/// Drives a whole run of `count` services in batches of `batch_size`, telling `each_pass`
/// what every pass cost; every restart completes by the next pass, one in fifty with
/// `ProgressDeadlineExceeded`. `cargo bench --bench engine` times the passes with it.
pub fn drive_run(
    count: usize,
    batch_size: u32,
    mut each_pass: impl FnMut(PassFigures),
) -> Result<(), serde_json::Error> {
    let mut cluster = fleet(count)?;
    let scope = OperatorScope::default();
    let mut refresh: ServiceRefresh = serde_json::from_value(serde_json::json!({
        "apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
        "metadata": {"name": "bench", "namespace": NAMESPACE, "uid": "0123456789abcdef", "generation": 1},
        "spec": {"selector": {}, "batchSize": batch_size},
    }))?;
    let mut now = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(24 * 365 * 56);
    let mut plan: Option<Plan> = None;
    let mut last_written: Vec<u8> = Vec::new();
    // Each batch takes a few passes; the bound only stops a run that would never end.
    for _ in 0..count * 4 + 100 {
        let started = Instant::now();
        let decision = decide(&Observation {
            refresh: &refresh,
            cluster: &cluster,
            scope: &scope,
            plan: plan.as_ref(),
            run_slot: RunSlot::Granted,
            health_gate: None,
            forbidden: None,
            now,
            min_restart_interval: jiff::SignedDuration::ZERO,
        });
        let decide_time = started.elapsed();
        let mut status = decision.status;
        let mut written_bytes = 0;
        let before_outcomes = serde_json::to_vec(&status)?;
        if before_outcomes != last_written {
            written_bytes += before_outcomes.len();
        }
        for object in &decision.plan_objects {
            written_bytes += serde_json::to_vec(object)?.len();
        }
        if let Some(reference) = status.run.as_ref().and_then(|run| run.plan.as_ref())
            && !decision.plan_objects.is_empty()
        {
            plan = Plan::from_objects(reference, &decision.plan_objects).ok();
        }
        let mut outcomes = Vec::new();
        for restart in &decision.restarts {
            let Some(deployment) = cluster.deployments.get_mut(&restart.deployment) else {
                continue;
            };
            let deployment = Arc::make_mut(deployment);
            let generation = deployment.generation() + 1;
            deployment.metadata.generation = Some(generation);
            deployment.restarted_by = Some(restart.restarted_by.clone());
            let index: usize =
                deployment.name().rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or(0);
            let mut rollout = rolled_out(generation, 2);
            if index.is_multiple_of(50) {
                rollout.available_replicas = Some(1);
                rollout.progressing_reason = Some("ProgressDeadlineExceeded".to_owned());
            }
            deployment.rollout = Some(rollout);
            outcomes.push((restart.deployment.clone(), RestartOutcome::Patched { generation }));
        }
        record_restart_outcomes(&mut status, &outcomes, NAMESPACE);
        let after_outcomes = serde_json::to_vec(&status)?;
        if after_outcomes != before_outcomes {
            written_bytes += after_outcomes.len();
        }
        each_pass(PassFigures {
            decide: decide_time,
            status_bytes: after_outcomes.len(),
            written_bytes,
            restarts: outcomes.len(),
        });
        last_written = after_outcomes;
        let ended =
            matches!(status.phase, Some(Phase::Succeeded | Phase::Failed | Phase::Cancelled));
        refresh.status = Some(status);
        now += SignedDuration::from_secs(1);
        if ended {
            break;
        }
    }
    Ok(())
}
