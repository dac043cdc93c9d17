//! Two operator processes with leader election against the simulated cluster: a standby takes
//! over a run when the leader is killed and when it is stopped gracefully, every Deployment
//! is restarted exactly once across the takeovers, and a leader paused past its Lease sends
//! no write once the standby has taken over.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::process::{Kubeconfig, OperatorProcess, SHORT_LEASE, http_get, lease_holder};
use common::{NAMESPACE, SimCluster, wait_for};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::json;
use servicerefresh_core::crd::{BatchPhase, Phase, ServiceRefreshStatus};
use servicerefresh_sim::SimConfig;

/// The test's Lease duration; the standby must lead within it plus 2 s of the leader's death.
const LEASE: Duration = Duration::from_secs(3);
const DEADLINE: Duration = Duration::from_secs(120);

/// The shared generated fleet (`common::fleet`), none failing, with slower rollouts that
/// outlast a failover and the sim's default progress deadline.
fn fleet(deployments: usize, rollout_ms: u64) -> SimConfig {
    let progress_deadline_seconds = SimConfig::default().progress_deadline_seconds;
    SimConfig {
        rollout_ms,
        rollout_jitter_ms: rollout_ms / 4,
        progress_deadline_seconds,
        ..common::fleet(deployments, 0, 11)
    }
}

async fn wait_for_holder(cluster: &SimCluster, identity: &str, deadline: Duration) -> Duration {
    let started = Instant::now();
    wait_for(deadline, &format!("{identity} to hold the Lease"), || async {
        (lease_holder(&cluster.client).await.as_deref() == Some(identity)).then_some(())
    })
    .await;
    started.elapsed()
}

/// Every Deployment's `metadata.generation`, by name.
async fn generations(cluster: &SimCluster) -> BTreeMap<String, i64> {
    let list = cluster.deployments().list(&ListParams::default()).await.expect("list deployments");
    list.items
        .into_iter()
        .filter_map(|d| Some((d.metadata.name?, d.metadata.generation?)))
        .collect()
}

async fn wait_ready(operator: &OperatorProcess) {
    let address = operator.metrics_address().await;
    wait_for(Duration::from_secs(60), &format!("{} to be ready", operator.identity), || async {
        http_get(&format!("http://{address}/readyz")).await.filter(|(code, _)| *code == 200)
    })
    .await;
}

async fn wait_for_batch(cluster: &SimCluster, name: &str, batch: usize) -> ServiceRefreshStatus {
    wait_for(DEADLINE, &format!("batch {batch} of {name} to run"), || async {
        cluster.status(name).await.filter(|status| {
            status.batches.get(batch - 1).is_some_and(|b| b.phase == BatchPhase::Running)
        })
    })
    .await
}

/// How many BatchStarted Events each batch of `name` got.
async fn batch_started_events(cluster: &SimCluster, name: &str) -> BTreeMap<u32, usize> {
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let mut counts = BTreeMap::new();
    for event in events.list(&ListParams::default()).await.expect("list events").items {
        let about_it = event.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name);
        if !about_it || event.reason.as_deref() != Some("BatchStarted") {
            continue;
        }
        let note = event.note.unwrap_or_default();
        let batch = note
            .strip_prefix("Batch ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|number| number.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("unexpected note {note:?}"));
        *counts.entry(batch).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_a_run_after_a_crash_and_after_a_graceful_stop() {
    let cluster = SimCluster::start(fleet(200, 1_000)).await;
    let kubeconfig = Kubeconfig::for_sim(&cluster.sim);
    let mut first = OperatorProcess::spawn(&kubeconfig.path, "op-a", SHORT_LEASE);
    wait_for_holder(&cluster, "op-a", Duration::from_secs(30)).await;
    let mut second = OperatorProcess::spawn(&kubeconfig.path, "op-b", SHORT_LEASE);
    wait_ready(&second).await;
    assert_eq!(lease_holder(&cluster.client).await.as_deref(), Some("op-a"), "the standby waits");
    let generations_before = generations(&cluster).await;

    cluster
        .create_refresh("fleet", json!({"selector": {}, "batchSize": 10, "batchTimeout": "5m"}))
        .await;
    // Mid-batch: batch 3 rolls and its start is on record, Event included.
    wait_for_batch(&cluster, "fleet", 3).await;
    wait_for(DEADLINE, "batch 3's Event", || async {
        batch_started_events(&cluster, "fleet").await.contains_key(&3).then_some(())
    })
    .await;
    first.kill9();
    let crash_takeover = wait_for_holder(&cluster, "op-b", LEASE + Duration::from_secs(10)).await;
    eprintln!("takeover after kill -9: {crash_takeover:?}");

    // The first replica comes back (a restarted pod) and stands by.
    let mut restarted = OperatorProcess::spawn(&kubeconfig.path, "op-a", SHORT_LEASE);
    wait_ready(&restarted).await;
    let running = cluster.status("fleet").await.expect("status");
    assert_eq!(
        running.phase,
        Some(Phase::Running),
        "the run is still going at the second takeover"
    );
    second.signal("TERM");
    let graceful_takeover = wait_for_holder(&cluster, "op-a", Duration::from_secs(10)).await;
    eprintln!("takeover after SIGTERM: {graceful_takeover:?}");
    assert!(second.wait_exit(Duration::from_secs(30)).await.success(), "a clean exit");
    assert!(!second.logged("leader Lease released").is_empty(), "{:?}", second.lines());

    let status = cluster.wait_for_run_end("fleet", DEADLINE).await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{:?}", status.run);
    assert_eq!((status.totals.services, status.totals.ready), (200, 200));
    assert_eq!(status.batches.len(), 20);

    let generations_after = generations(&cluster).await;
    assert_eq!(generations_after.len(), 200);
    for (name, after) in &generations_after {
        assert_eq!(
            Some(after - 1),
            generations_before.get(name).copied(),
            "{name}: one new generation"
        );
    }
    let stats = cluster.sim.stats();
    let names = cluster.all_deployment_names().await;
    assert_eq!(names.len(), 200);
    for name in &names {
        let key = format!("{NAMESPACE}/{name}");
        assert_eq!(stats.template_changes.get(&key).copied(), Some(1), "{key} restarted once");
    }
    assert!(stats.peak_rolling <= 10, "peak rolling {}", stats.peak_rolling);
    let events = batch_started_events(&cluster, "fleet").await;
    assert_eq!(events, (1..=20).map(|batch| (batch, 1)).collect(), "one BatchStarted per batch");

    // Each replica logged the leadership it had.
    assert!(!second.logged("leadership acquired").is_empty());
    assert!(!restarted.logged("leadership acquired").is_empty());
    restarted.signal("TERM");
    assert!(restarted.wait_exit(Duration::from_secs(30)).await.success());
    // The crash and the takeovers happened within the bounds.
    assert!(
        crash_takeover <= LEASE + Duration::from_secs(2),
        "takeover after a crash took {crash_takeover:?}"
    );
    assert!(
        graceful_takeover <= Duration::from_secs(2),
        "takeover after SIGTERM took {graceful_takeover:?}"
    );
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_past_its_lease_writes_nothing_after_the_standby_took_over() {
    let cluster = SimCluster::start(fleet(100, 600)).await;
    let kubeconfig = Kubeconfig::for_sim(&cluster.sim);
    let paused = OperatorProcess::spawn(&kubeconfig.path, "op-a", SHORT_LEASE);
    wait_for_holder(&cluster, "op-a", Duration::from_secs(30)).await;
    let standby = OperatorProcess::spawn(&kubeconfig.path, "op-b", SHORT_LEASE);
    wait_ready(&standby).await;

    cluster
        .create_refresh("fleet", json!({"selector": {}, "batchSize": 10, "batchTimeout": "5m"}))
        .await;
    wait_for_batch(&cluster, "fleet", 2).await;
    paused.signal("STOP");
    let stopped_ms = cluster.sim.now_ms();
    let takeover = wait_for_holder(&cluster, "op-b", LEASE + Duration::from_secs(10)).await;
    eprintln!("takeover after SIGSTOP: {takeover:?}");
    // The moment the standby took over, on the sim's clock: its first Lease write since.
    let took_over_ms = cluster
        .sim
        .requests()
        .iter()
        .find(|r| {
            r.at_ms >= stopped_ms
                && r.is_write()
                && r.path.ends_with("/leases/servicerefresh")
                && r.user_agent.as_deref().is_some_and(|ua| ua.contains("(op-b)"))
                && r.code.is_some_and(|code| code < 300)
        })
        .map(|r| r.at_ms)
        .expect("the standby wrote the Lease");

    paused.signal("CONT");
    let lost = paused.wait_for_log("leadership lost", Duration::from_secs(30)).await;
    eprintln!("the resumed replica logged: {lost}");
    let status = cluster.wait_for_run_end("fleet", DEADLINE).await;
    assert_eq!(status.phase, Some(Phase::Succeeded));
    // Settle: the resumed replica has seen the Lease since (it reads it as a standby).
    let resumed_ms = cluster.sim.now_ms();
    wait_for(Duration::from_secs(30), "the resumed replica to read the Lease again", || async {
        cluster
            .sim
            .requests()
            .iter()
            .any(|r| {
                r.at_ms > resumed_ms
                    && r.user_agent.as_deref().is_some_and(|ua| ua.contains("(op-a)"))
            })
            .then_some(())
    })
    .await;

    let requests = cluster.sim.requests();
    let by = |identity: &str| {
        let tag = format!("({identity})");
        requests.iter().filter(move |r| r.user_agent.as_deref().is_some_and(|ua| ua.contains(&tag)))
    };
    assert!(
        by("op-a")
            .any(|r| r.is_write() && r.path.contains("/deployments/") && r.at_ms < stopped_ms),
        "the paused replica led and restarted Deployments before it was paused"
    );
    // The fence is checked right before a write leaves, so a replica stopped between that
    // check and the send delivers the write when it resumes. What keeps that write harmless is
    // the restart's resourceVersion precondition: the API server refuses it (409). A resumed
    // replica must never change anything after the takeover.
    let late: Vec<_> = by("op-a").filter(|r| r.is_write() && r.at_ms >= took_over_ms).collect();
    let accepted: Vec<_> = late.iter().filter(|r| r.code.is_none_or(|code| code < 400)).collect();
    assert!(
        accepted.is_empty(),
        "writes accepted after the takeover at {took_over_ms} ms: {accepted:#?}"
    );
    assert!(
        late.iter().all(|r| r.code == Some(409) && r.path.contains("/deployments/")),
        "only a restart already past the fence may arrive late, refused by its precondition: {late:#?}"
    );
    assert!(
        by("op-b").any(|r| r.is_write() && r.path.contains("/deployments/")),
        "the standby restarted the rest"
    );

    let stats = cluster.sim.stats();
    assert!(stats.template_changes.values().all(|&changes| changes == 1), "each restarted once");
    assert_eq!(stats.template_changes.len(), 100);
    drop(paused);
    drop(standby);
    cluster.sim.shutdown().await;
}
