//! How late the simulated Deployment controller writes the status changes of
//! a rollout, measured through a real watch and on the sim's own clock
//! (`SimStats::status_delays`): prints the figures, which the machine's load
//! decides, and asserts counts and a generous bound on the sim's clock (no
//! scheduled change written [`WRITTEN_WITHIN`] after it was due), which only
//! a controller that misses its time fails. Run with
//! `cargo test -p servicerefresh-sim --test rollout_timing -- --nocapture`.
//!
//! Each Deployment has 2 replicas and the default 25% surge / 25%
//! unavailable, so a rollout of `ROLLOUT_MS` has two waves: its status changes
//! are due at 0, `ROLLOUT_MS / 2` and `ROLLOUT_MS` after the patch.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use servicerefresh_sim::SimConfig;

const DEPLOYS: &str = "/apis/apps/v1/namespaces/arcgis/deployments";
const ROLLOUT_MS: u64 = 500;
const COUNT: usize = 20;
/// The latest a scheduled status change may be written after it was due, on
/// the sim's clock: four rollouts' length, against a mean under a
/// millisecond (release) and a maximum of ~0.4 s seen in a debug build
/// running beside the other tests of this file.
const WRITTEN_WITHIN: Duration = Duration::from_secs(2);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn summary(label: &str, mut late_ms: Vec<f64>) {
    late_ms.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{label:<28} n={:>3}  min {:>7.2} ms  median {:>7.2} ms  p90 {:>7.2} ms  max {:>7.2} ms",
        late_ms.len(),
        late_ms[0],
        percentile(&late_ms, 0.5),
        percentile(&late_ms, 0.9),
        late_ms[late_ms.len() - 1],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_are_written_when_due() {
    measure_lateness(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_without_replica_sets_are_written_when_due() {
    measure_lateness(false).await;
}

async fn measure_lateness(workload_objects: bool) {
    let (h, c) =
        sim(SimConfig { rollout_ms: ROLLOUT_MS, workload_objects, ..Default::default() }).await;
    for i in 0..COUNT {
        let mut d = deployment(&format!("t{i}"));
        d["metadata"]["annotations"] =
            serde_json::json!({"sim.gisops.io/rollout-ms": ROLLOUT_MS.to_string()});
        assert_eq!(c.post(DEPLOYS, &d).await.status, 201);
    }
    // Every first rollout complete (observedGeneration 1 and all available).
    let list = eventually("first rollouts", || {
        let c = c.clone();
        async move {
            let list = c.get(DEPLOYS).await.body;
            let items = list["items"].as_array()?;
            let done = items.iter().all(|d| {
                d["status"]["observedGeneration"] == 1 && d["status"]["availableReplicas"] == 2
            });
            done.then_some(list)
        }
    })
    .await;
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let mut w = c.watch(&format!("{DEPLOYS}?watch=true&resourceVersion={rv}")).await;

    // Restart them one after another, each 37 ms apart so that the waves of
    // different rollouts do not fall on the same instants.
    let mut patched_at: HashMap<String, Instant> = HashMap::new();
    let patch = r#"{"spec":{"template":{"metadata":{"annotations":{"restartedAt":"now"}}}}}"#;
    let c2 = c.clone();
    let patcher = tokio::spawn(async move {
        let mut times = Vec::new();
        for i in 0..COUNT {
            let name = format!("t{i}");
            let sent = Instant::now();
            let r = c2
                .patch(
                    &format!("{DEPLOYS}/{name}"),
                    "application/strategic-merge-patch+json",
                    patch,
                )
                .await;
            assert_eq!(r.status, 200);
            times.push((name, sent));
            tokio::time::sleep(Duration::from_millis(37)).await;
        }
        times
    });
    // Arrival times of the status changes of generation 2, per Deployment.
    let mut arrivals: HashMap<String, Vec<(Instant, Value)>> = HashMap::new();
    let mut complete = 0;
    while complete < COUNT {
        let ev = w.next().await.expect("watch event before the deadline");
        let now = Instant::now();
        let o = &ev["object"];
        if ev["type"] != "MODIFIED" || o["status"]["observedGeneration"] != 2 {
            continue;
        }
        let name = o["metadata"]["name"].as_str().unwrap().to_string();
        let status = o["status"].clone();
        if status["updatedReplicas"] == 2
            && status["availableReplicas"] == 2
            && status["replicas"] == 2
        {
            complete += 1;
        }
        arrivals.entry(name).or_default().push((now, status));
    }
    for (name, sent) in patcher.await.unwrap() {
        patched_at.insert(name, sent);
    }
    let mut first = Vec::new();
    let mut middle = Vec::new();
    let mut last = Vec::new();
    for (name, changes) in &arrivals {
        assert_eq!(changes.len(), 3, "{name}: three status changes per rollout: {changes:?}");
        let sent = patched_at[name];
        let late = |at: Instant, due_ms: u64| {
            (at.duration_since(sent).as_secs_f64() * 1000.0) - due_ms as f64
        };
        first.push(late(changes[0].0, 0));
        middle.push(late(changes[1].0, ROLLOUT_MS / 2));
        last.push(late(changes[2].0, ROLLOUT_MS));
    }
    println!(
        "status changes of {COUNT} rollouts of {ROLLOUT_MS} ms (ReplicaSets and Pods: {workload_objects}), lateness after due:"
    );
    summary("first (rollout begins)", first);
    summary("second (half way)", middle);
    summary("complete", last);
    let delays = h.stats().status_delays;
    println!(
        "written by the controller after due (on its own clock): n={} mean {:.3} ms max {:.3} ms, per bucket (upper bound µs: count) {:?}",
        delays.count,
        delays.total_us as f64 / delays.count.max(1) as f64 / 1000.0,
        delays.max_us as f64 / 1000.0,
        delays.buckets
    );
    assert!(delays.count >= 2 * COUNT as u64, "two scheduled changes per rollout at least");
    let latest = Duration::from_micros(delays.max_us);
    assert!(
        latest <= WRITTEN_WITHIN,
        "a scheduled status change was written {latest:?} after it was due"
    );
    h.shutdown().await;
}

/// Deployment MODIFIED events a client watching Deployments sees per
/// restart of a generated fleet (the patch itself included): the figure the
/// operator's request budget rests on, which ReplicaSets and Pods must not
/// change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_events_per_rollout() {
    let (h, c) = sim(SimConfig {
        deployments: 30,
        rollout_ms: 150,
        rollout_jitter_ms: 100,
        seed: 7,
        ..Default::default()
    })
    .await;
    let list = c.get(DEPLOYS).await.body;
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let names: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    let mut w = c.watch(&format!("{DEPLOYS}?watch=true&resourceVersion={rv}")).await;
    let patch = r#"{"spec":{"template":{"metadata":{"annotations":{"restartedAt":"now"}}}}}"#;
    for name in &names {
        let r = c
            .patch(&format!("{DEPLOYS}/{name}"), "application/strategic-merge-patch+json", patch)
            .await;
        assert_eq!(r.status, 200);
    }
    let mut modified: HashMap<String, u64> = HashMap::new();
    let mut complete = 0;
    while complete < names.len() {
        let ev = w.next().await.expect("watch event before the deadline");
        let o = &ev["object"];
        assert_eq!(ev["type"], "MODIFIED", "{ev}");
        let name = o["metadata"]["name"].as_str().unwrap().to_string();
        *modified.entry(name).or_default() += 1;
        let want = o["spec"]["replicas"].as_u64().unwrap();
        let s = &o["status"];
        if s["observedGeneration"] == 2
            && s["updatedReplicas"].as_u64() == Some(want)
            && s["availableReplicas"].as_u64() == Some(want)
            && s["replicas"].as_u64() == Some(want)
        {
            complete += 1;
        }
    }
    let total: u64 = modified.values().sum();
    println!(
        "{} rollouts: {total} Deployment MODIFIED events, {:.2} per rollout (patch included)",
        names.len(),
        total as f64 / names.len() as f64
    );
    h.shutdown().await;
}
