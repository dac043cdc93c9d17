//! Figures for the engine at fleet scale: the time of one `decide` pass and the size of the
//! status it writes, at 1,000, 5,000 and 10,000 Deployments. Prints; asserts nothing.
//! Run with `cargo bench --bench engine`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
use servicerefresh::crd::{Phase, RESTARTED_BY_ANNOTATION, ServiceRefresh};
use servicerefresh::engine::{
    ObjectKey, Observation, RestartOutcome, decide, record_restart_outcomes,
};

const NAMESPACE: &str = "arcgis";

fn fleet(count: usize) -> BTreeMap<ObjectKey, Deployment> {
    (0..count)
        .map(|i| {
            let name = format!("arcgis-{:08x}-mapserver-{:05}", i * 2_654_435_761 % 0xffff_ffff, i);
            let mut deployment: Deployment = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": NAMESPACE, "generation": 1,
                             "labels": {"app.kubernetes.io/managed-by": "arcgis"}},
                "spec": {"replicas": 2, "selector": {}, "template": {}},
            }))
            .expect("valid Deployment");
            deployment.status = Some(ready_status(1, 2));
            (ObjectKey::new(NAMESPACE, name), deployment)
        })
        .collect()
}

fn ready_status(generation: i64, replicas: i32) -> DeploymentStatus {
    DeploymentStatus {
        observed_generation: Some(generation),
        replicas: Some(replicas),
        updated_replicas: Some(replicas),
        ready_replicas: Some(replicas),
        available_replicas: Some(replicas),
        ..Default::default()
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
    let mut deployments = fleet(count);
    let mut refresh: ServiceRefresh = serde_json::from_value(serde_json::json!({
        "apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
        "metadata": {"name": "bench", "namespace": NAMESPACE, "uid": "0123456789abcdef", "generation": 1},
        "spec": {"selector": {}, "batchSize": 100},
    }))
    .expect("valid ServiceRefresh");
    let hashes = BTreeMap::new();
    let mut now: Timestamp = "2026-11-26T18:00:00Z".parse().expect("valid time");
    let mut figures =
        Figures { passes: 0, slowest_pass: Duration::ZERO, total: Duration::ZERO, status_bytes: 0 };
    loop {
        let snapshot: Vec<Arc<Deployment>> = deployments.values().cloned().map(Arc::new).collect();
        let started = Instant::now();
        let decision = decide(&Observation {
            refresh: &refresh,
            deployments: &snapshot,
            config_map_hashes: &hashes,
            may_start_run: true,
            now,
        });
        let elapsed = started.elapsed();
        figures.passes += 1;
        figures.total += elapsed;
        figures.slowest_pass = figures.slowest_pass.max(elapsed);
        let mut status = decision.status;
        let mut outcomes = Vec::new();
        for restart in &decision.restarts {
            let Some(deployment) = deployments.get_mut(&restart.deployment) else { continue };
            let generation = deployment.metadata.generation.unwrap_or(1) + 1;
            deployment.metadata.generation = Some(generation);
            deployment.spec.template.metadata.get_or_insert_with(Default::default).annotations =
                Some([(RESTARTED_BY_ANNOTATION.to_owned(), restart.restarted_by.clone())].into());
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
                rolled.conditions = Some(vec![serde_json::from_value(serde_json::json!({
                    "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                    "message": format!("ReplicaSet \"{}-5d8f9c7b6\" has timed out progressing.", restart.deployment.name)
                }))
                .expect("valid condition")]);
            }
            deployment.status = Some(rolled);
            outcomes.push((restart.deployment.clone(), RestartOutcome::Patched { generation }));
        }
        record_restart_outcomes(&mut status, &outcomes, NAMESPACE);
        let done = matches!(status.phase, Some(Phase::Succeeded | Phase::Failed));
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
