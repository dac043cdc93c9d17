//! Figures for the engine at fleet scale: the time of one `decide` pass and the size of the
//! status it writes, at 1,000, 5,000 and 10,000 Deployments. Prints; asserts nothing.
//! Run with `cargo bench --bench engine`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use servicerefresh::crd::{Phase, ServiceRefresh};
use servicerefresh::engine::observed::RolloutStatus;
use servicerefresh::engine::{
    DeploymentSnapshot, Observation, OperatorScope, RestartOutcome, RunSlot, StaticCluster, decide,
    record_restart_outcomes,
};

const NAMESPACE: &str = "arcgis";

fn fleet(count: usize) -> StaticCluster {
    StaticCluster::with_deployments((0..count).map(|i| {
        let name = format!("arcgis-{:08x}-mapserver-{:05}", i * 2_654_435_761 % 0xffff_ffff, i);
        let mut deployment: DeploymentSnapshot = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1,
                         "labels": {"app.kubernetes.io/managed-by": "arcgis"}},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
        }))
        .expect("valid Deployment");
        deployment.rollout = Some(ready_status(1, 2));
        deployment
    }))
}

fn ready_status(generation: i64, replicas: i32) -> RolloutStatus {
    RolloutStatus {
        observed_generation: Some(generation),
        replicas: Some(replicas),
        updated_replicas: Some(replicas),
        available_replicas: Some(replicas),
        progressing_reason: None,
    }
}

struct Figures {
    passes: usize,
    slowest_pass: Duration,
    total: Duration,
    status_bytes: usize,
}

/// Drives one whole run; every 50th Deployment fails, so messages are in the status too.
fn drive_run(count: usize) -> Figures {
    let mut cluster = fleet(count);
    let scope = OperatorScope::default();
    let mut refresh: ServiceRefresh = serde_json::from_value(serde_json::json!({
        "apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
        "metadata": {"name": "bench", "namespace": NAMESPACE, "uid": "0123456789abcdef", "generation": 1},
        "spec": {"selector": {}, "batchSize": 100},
    }))
    .expect("valid ServiceRefresh");
    let mut now: Timestamp = "2026-11-26T18:00:00Z".parse().expect("valid time");
    let mut figures =
        Figures { passes: 0, slowest_pass: Duration::ZERO, total: Duration::ZERO, status_bytes: 0 };
    loop {
        let started = Instant::now();
        let decision = decide(&Observation {
            refresh: &refresh,
            cluster: &cluster,
            scope: &scope,
            run_slot: RunSlot::Granted,
            now,
        });
        let elapsed = started.elapsed();
        figures.passes += 1;
        figures.total += elapsed;
        figures.slowest_pass = figures.slowest_pass.max(elapsed);
        let mut status = decision.status;
        let mut outcomes = Vec::new();
        for restart in &decision.restarts {
            let Some(deployment) = cluster.deployments.get_mut(&restart.deployment) else {
                continue;
            };
            let deployment = Arc::make_mut(deployment);
            let generation = deployment.metadata.generation.unwrap_or(1) + 1;
            deployment.metadata.generation = Some(generation);
            deployment.restarted_by = Some(restart.restarted_by.clone());
            let index: usize = restart
                .deployment
                .name
                .rsplit('-')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let mut rolled = ready_status(generation, 2);
            if index.is_multiple_of(50) {
                rolled.available_replicas = Some(1);
                rolled.progressing_reason = Some("ProgressDeadlineExceeded".to_owned());
            }
            deployment.rollout = Some(rolled);
            outcomes.push((restart.deployment.clone(), RestartOutcome::Patched { generation }));
        }
        record_restart_outcomes(&mut status, &outcomes, NAMESPACE);
        let done =
            matches!(status.phase, Some(Phase::Succeeded | Phase::Failed | Phase::Cancelled));
        refresh.status = Some(status);
        now += jiff::SignedDuration::from_secs(1);
        if done || figures.passes > 100_000 {
            break;
        }
    }
    figures.status_bytes = serde_json::to_vec(&refresh.status).map(|v| v.len()).unwrap_or(0);
    figures
}

fn main() {
    println!(
        "{:>8} {:>8} {:>14} {:>14} {:>14}",
        "services", "passes", "mean pass", "slowest pass", "status bytes"
    );
    for count in [1_000, 5_000, 10_000] {
        let figures = drive_run(count);
        println!(
            "{:>8} {:>8} {:>14?} {:>14?} {:>10} KiB",
            count,
            figures.passes,
            figures.total / figures.passes.max(1) as u32,
            figures.slowest_pass,
            figures.status_bytes / 1024,
        );
    }
    println!("status budget: 512 KiB at 5,000 services (the API server's object limit is 1.5 MiB)");
}
