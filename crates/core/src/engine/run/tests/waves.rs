//! Ordered waves: a wave starts only once the one before has ended, a workload belongs to the
//! first wave that matches it, and the status shows each batch's wave.

use super::*;
use crate::crd::BatchPhase;

fn labelled(cluster: &mut ModelCluster, name: &str, tier: &str) {
    let key = cluster.add("arcgis", name, 1);
    let deployment = cluster.deployment_mut(&key);
    let mut labels = deployment.labels();
    labels.insert("tier".to_owned(), tier.to_owned());
    deployment.set_labels(&labels);
}

#[test]
fn waves_run_in_order_each_batched_on_its_own() {
    let mut cluster = ModelCluster::new(serde_json::json!({
        "selector": {}, "batchSize": 2,
        "waves": [{"selector": {"matchLabels": {"tier": "system"}}},
                  {"selector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}}],
    }));
    // Names sort against the waves: the order must come from the waves.
    labelled(&mut cluster, "a-user", "user");
    labelled(&mut cluster, "b-user", "user");
    labelled(&mut cluster, "c-untiered", "");
    labelled(&mut cluster, "z-system", "system");
    let key = cluster.add("arcgis", "d-none", 1);
    cluster.deployment_mut(&key).set_labels(&std::collections::BTreeMap::new());
    cluster.run_to_end();
    let status = cluster.status();
    assert_eq!(status.phase, Some(crate::crd::Phase::Succeeded));
    let plan = cluster.plan().expect("plan");
    let order: Vec<(&str, u32)> =
        plan.entries().iter().map(|entry| (entry.key.name.as_str(), entry.wave)).collect();
    // z-system matches both waves and belongs to the first; d-none matches neither.
    assert_eq!(
        order,
        [("z-system", 0), ("a-user", 1), ("b-user", 1), ("c-untiered", 1), ("d-none", 2)]
    );
    let batches: Vec<(u32, Option<u32>)> =
        status.batches.iter().map(|batch| (batch.index, batch.wave)).collect();
    // A wave of one service is a batch of one: batches never cross a wave.
    assert_eq!(batches, [(1, Some(0)), (2, Some(1)), (3, Some(1)), (4, Some(2))]);
    assert!(status.batches.iter().all(|batch| batch.phase == BatchPhase::Completed));
}

#[test]
fn abort_stops_at_the_wave_that_failed() {
    let mut cluster = ModelCluster::new(serde_json::json!({
        "selector": {}, "batchSize": 5, "failurePolicy": "Abort",
        "waves": [{"selector": {"matchLabels": {"tier": "system"}}}],
    }));
    labelled(&mut cluster, "system-a", "system");
    labelled(&mut cluster, "user-a", "user");
    let failing = ObjectKey::new("arcgis", "system-a");
    // Wave 1 holds only the failing service: its rollout exceeds its deadline on every pass.
    for _ in 0..50 {
        let decision = cluster.pass();
        cluster.apply(&decision);
        cluster.fail_rollout(&failing);
        if cluster.status().phase == Some(crate::crd::Phase::Failed) {
            break;
        }
    }
    let status = cluster.status();
    assert_eq!(status.phase, Some(crate::crd::Phase::Failed));
    assert_eq!(status.batches.len(), 1, "wave 2 never started");
    let results = results(&cluster);
    assert_eq!(results[1].0, "user-a");
    assert_eq!(results[1].1, Some(ServiceResult::Skipped));
}
