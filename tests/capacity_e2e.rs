//! Capacity-aware pacing against the simulated cluster's scheduler, side by side.
//!
//! One node with 1.5 CPUs to spare. The plan (in name order) starts with four small
//! services (one 500m pod each) and goes on with four large ones (three 1500m pods each).
//! Every rollout surges one pod (maxUnavailable 0) and takes 4 s per pod; the progress
//! deadline is 10 s. `batchSize: 4`.
//!
//! - With `capacityAware: false`, the large services go four at once with room for one surge
//!   pod: the others wait for room longer than their deadline and fail on
//!   ProgressDeadlineExceeded. This proves the scenario bites.
//! - With the default, the first batch's fourth small pod waits for room past the grace:
//!   the effective batch size halves before the large services start, shrinks again while
//!   they contend, and the run succeeds with every Deployment restarted once.
//!
//! Why not the 60 Deployments on three nodes with 1.5 CPUs spare and 300 ms
//! rollouts: on a faithful cluster a surge pod that finds no room gets it back as soon as a
//! rollout ahead of it ends, within a second or two, far inside a 20 s deadline, so nothing
//! fails either way (sim/tests/scheduling.rs shows it). Pacing matters where waiting for room
//! outlasts the deadline; a first batch mild enough to survive then teaches the run to go
//! slowly with the services that follow.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{NAMESPACE, Operator, SimCluster, assert_template_changes};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use servicerefresh_core::crd::{Phase, ServiceRefreshStatus};
use servicerefresh_sim::SimConfig;

const RUN_DEADLINE: Duration = Duration::from_secs(240);
const STEP_MS: u64 = 4_000;
const DEADLINE_SECONDS: u64 = 10;

fn deployment(name: &str, replicas: u64, cpu: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "annotations": {"sim.gisops.io/rollout-ms": (replicas * STEP_MS).to_string()},
        },
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": DEADLINE_SECONDS,
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "tier": "gis"}},
                "spec": {"containers": [{
                    "name": "main", "image": "arcgis/service:11.3",
                    "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}},
                }]},
            },
        },
    }))
    .expect("a Deployment")
}

/// The fleet above, created and rolled out, on one node with 1500m to spare.
async fn contended_cluster() -> (SimCluster, Vec<String>) {
    let fleet: Vec<(String, u64, &str)> = (0..4)
        .map(|i| (format!("a-small-{i}"), 1, "500m"))
        .chain((0..4).map(|i| (format!("b-large-{i}"), 3, "1500m")))
        .collect();
    let used: u64 = fleet.iter().map(|(_, replicas, cpu)| replicas * millis(cpu)).sum();
    let cluster = SimCluster::start(SimConfig {
        nodes: Some(1),
        spare_cpu_millis: Some(used + 1_500),
        ..SimConfig::default()
    })
    .await;
    let deployments = cluster.deployments();
    for (name, replicas, cpu) in &fleet {
        deployments
            .create(&PostParams::default(), &deployment(name, *replicas, cpu))
            .await
            .expect("create Deployment");
    }
    let names: Vec<String> = fleet.into_iter().map(|(name, ..)| name).collect();
    common::wait_for(Duration::from_secs(60), "the fleet to roll out", || async {
        let list = deployments.list(&ListParams::default()).await.expect("list");
        list.items
            .iter()
            .all(|d| {
                let status = d.status.clone().unwrap_or_default();
                status.available_replicas == d.spec.replicas
                    && status.updated_replicas == status.available_replicas
            })
            .then_some(())
    })
    .await;
    (cluster, names)
}

fn millis(cpu: &str) -> u64 {
    cpu.trim_end_matches('m').parse().expect("millicores")
}

struct Outcome {
    status: ServiceRefreshStatus,
    seconds: f64,
    /// Every wait message the status showed while the run went.
    waits: BTreeSet<String>,
    events: Vec<(String, String)>,
}

async fn run(cluster: &SimCluster, spec: serde_json::Value) -> Outcome {
    let operator = Operator::start(&cluster.client);
    let started = Instant::now();
    cluster.create_refresh("nightly", spec).await;
    let waits = std::sync::Mutex::new(BTreeSet::new());
    let status = common::wait_for(RUN_DEADLINE, "the run to end", || async {
        let status = cluster.status("nightly").await?;
        if let Some(waiting) = &status.waiting {
            let seen = format!("{}: {}", waiting.reason, waiting.message);
            waits.lock().expect("not poisoned").insert(seen);
        }
        matches!(status.phase, Some(Phase::Succeeded | Phase::Failed)).then_some(status)
    })
    .await;
    let waits = waits.into_inner().expect("not poisoned");
    let seconds = started.elapsed().as_secs_f64();
    operator.stop().await;
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let events = events
        .list(&ListParams::default())
        .await
        .expect("list Events")
        .items
        .into_iter()
        .filter(|event| {
            event.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("ServiceRefresh")
        })
        .map(|event| (event.reason.unwrap_or_default(), event.note.unwrap_or_default()))
        .collect();
    Outcome { status, seconds, waits, events }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_capacity_awareness_the_large_services_cross_their_deadline() {
    let (cluster, names) = contended_cluster().await;
    let spec = json!({"selector": {}, "batchSize": 4, "pacing": {"capacityAware": false}});
    let outcome = run(&cluster, spec).await;
    eprintln!(
        "capacityAware false: {:?} in {:.1} s, {} ready, {} failed; results {:#?}",
        outcome.status.phase,
        outcome.seconds,
        outcome.status.totals.ready,
        outcome.status.totals.failed,
        outcome.status.results
    );
    assert_eq!(outcome.status.phase, Some(Phase::Failed));
    assert!(outcome.status.totals.failed > 0);
    assert!(
        outcome.status.results.iter().any(|group| group.message.contains("progress deadline")),
        "{:#?}",
        outcome.status.results
    );
    assert!(outcome.waits.is_empty(), "{:?}", outcome.waits);
    assert!(outcome.events.iter().all(|(reason, _)| reason != "BatchSizeChanged"));
    assert_template_changes(&cluster.sim, &names, 1);
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_aware_pacing_shrinks_the_batches_and_every_service_succeeds() {
    let (cluster, names) = contended_cluster().await;
    let outcome = run(&cluster, json!({"selector": {}, "batchSize": 4})).await;
    let sizes: Vec<_> = outcome
        .events
        .iter()
        .filter(|(reason, _)| reason == "BatchSizeChanged")
        .map(|(_, note)| note.clone())
        .collect();
    eprintln!(
        "capacity-aware: {:?} in {:.1} s, {} ready, {} failed\nsize changes: {sizes:#?}\nwaits: {:#?}",
        outcome.status.phase,
        outcome.seconds,
        outcome.status.totals.ready,
        outcome.status.totals.failed,
        outcome.waits
    );
    assert_eq!(outcome.status.phase, Some(Phase::Succeeded), "{:#?}", outcome.status.results);
    assert_eq!((outcome.status.totals.ready, outcome.status.totals.failed), (8, 0));
    assert_template_changes(&cluster.sim, &names, 1);
    // The status and the Events explain each shrink with the scheduler's words.
    assert!(
        outcome.waits.iter().any(|wait| wait.starts_with("WaitingForCapacity: ")
            && wait.contains("0/1 nodes are available: 1 Insufficient cpu.")),
        "{:?}",
        outcome.waits
    );
    assert!(
        sizes.first().is_some_and(|note| note
            .starts_with("Effective batch size 4 -> 2: a pod waits for room: pod a-small-")
            && note.contains("Insufficient cpu")),
        "{sizes:?}"
    );
    assert!(outcome.events.iter().any(|(reason, _)| reason == "WaitingForCapacity"));
    cluster.sim.shutdown().await;
}
