//! The run as the CLI and the job API read it back: services found by key, failures, a
//! running batch's counts and a batch's members through the plan.

use serde_json::json;

use super::super::test_support::ModelCluster;
use crate::crd::{BatchCounts, BatchPhase, ServiceResult};
use crate::engine::ObjectKey;
use crate::engine::view::batch_members;

#[test]
fn a_running_batch_is_read_back_with_its_counts_failures_and_members() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 4}));
    let keys = cluster.add_many(4);
    cluster.deployment_mut(&keys[1]).paused = true;
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.roll_out(&keys[0]);
    cluster.fail_rollout(&keys[2]);
    cluster.start_rollout(&keys[3]);
    // Results are written with the next message refresh.
    cluster.now += super::super::batches::MESSAGE_REFRESH;
    cluster.pass();

    let view = cluster.run_view();
    let batch = &view.batches[0];
    assert_eq!(batch.phase, BatchPhase::Running, "svc-03 still rolls out");
    assert_eq!(
        batch.counts,
        BatchCounts { ready: 1, skipped: 1, failed: 1, restarted: 0 },
        "counted from the rows while the batch runs"
    );
    let failures: Vec<&str> =
        view.failures().iter().map(|service| service.key.name.as_str()).collect();
    assert_eq!(failures, ["svc-02"]);
    let found = |key: &ObjectKey| view.service(key).map(|service| service.result);
    assert_eq!(found(&keys[1]), Some(Some(ServiceResult::Skipped)));
    assert_eq!(found(&keys[3]), Some(None), "still rolling: no result yet");
    assert_eq!(found(&ObjectKey::new("arcgis", "unknown")), None);

    let plan = cluster.plan().expect("the run's plan");
    assert_eq!(batch_members(&cluster.status().batches[0], &plan), keys);
}
