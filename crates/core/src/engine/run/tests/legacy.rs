//! A status an operator version that kept the whole plan in the status wrote, read by this
//! version: its completed batches keep their counts, results and timed-out rows.

use serde_json::json;

use super::super::test_support::ModelCluster;
use crate::crd::{BatchCounts, BatchStatus};

#[test]
fn a_completed_legacy_batch_keeps_its_counts_results_and_timed_out_rollouts() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 4}));
    cluster.add_many(7);
    cluster.pass();
    // Rewritten as an older operator kept it: no plan object, every batch listed.
    let status = cluster.refresh.status.as_mut().expect("status");
    status.run.as_mut().expect("a run").plan = None;
    let legacy: Vec<BatchStatus> = serde_json::from_value(json!([
        {"index": 1, "phase": "Completed", "ready": ["svc-00"], "services": [
            {"name": "svc-01", "generation": 2, "result": "Failed",
             "message": "\"svc-01\" exceeded its deadline"},
            {"name": "svc-02", "generation": 2, "result": "TimedOut",
             "message": "\"svc-02\" still rolling"},
            {"name": "svc-03", "result": "TimedOut", "message": "\"svc-03\" never restarted"},
            {"name": "svc-04", "result": "Skipped", "message": "\"svc-04\" is paused"}
        ]},
        {"index": 2, "phase": "Pending", "services": [{"name": "svc-05"}, {"name": "svc-06"}]}
    ]))
    .expect("legacy batches");
    status.batches = legacy;
    let moved = cluster.pass();

    let first = &moved.status.batches[0];
    assert_eq!(first.positions.as_deref(), Some("0-4"));
    assert_eq!(
        first.counts,
        Some(BatchCounts { ready: 1, restarted: 3, failed: 3, skipped: 1 }),
        "svc-03's restart was never sent"
    );
    let kept: Vec<&str> = first.services.iter().map(|row| row.name.as_str()).collect();
    assert_eq!(kept, ["svc-02"], "only a restarted rollout that timed out is still awaited");
    assert_eq!(first.services[0].position, Some(2), "numbered by its place in the plan");
    let groups: Vec<(&str, &str, &str)> = moved
        .status
        .results
        .iter()
        .map(|group| (group.reason.as_str(), group.positions.as_str(), group.message.as_str()))
        .collect();
    assert_eq!(
        groups,
        [
            ("Failed", "1", "\"svc-01\" exceeded its deadline"),
            ("TimedOut", "2", "\"svc-02\" still rolling"),
            ("TimedOut", "3", "\"svc-03\" never restarted"),
            ("Skipped", "4", "\"svc-04\" is paused"),
        ]
    );
}
