//! Canary first and slow start: the canary batch soaks with every canary ready before the
//! next batch; a canary that fails or turns unready ends the run as Failed, whatever
//! `failurePolicy` says, with only the canaries restarted; slow start grows batches 1, 2, 4.

use jiff::SignedDuration;
use serde_json::json;

use super::super::test_support::{ModelCluster, at};
use super::super::*;
use super::{condition, events, reasons, results};
use crate::crd::{Phase, ServiceResult};
use crate::engine::conditions::{RECONCILING, STALLED};

fn canary_spec(policy: &str) -> serde_json::Value {
    json!({
        "selector": {}, "batchSize": 3, "failurePolicy": policy,
        "pacing": {"canary": {"size": 2, "soak": "60s"}},
    })
}

/// Passes (sending every restart) until one restarts something; returns what it restarted.
fn next_restarts(cluster: &mut ModelCluster) -> Vec<ObjectKey> {
    for _ in 0..5 {
        let decision = cluster.pass();
        cluster.apply(&decision);
        if !decision.restarts.is_empty() {
            return decision.restarts.iter().map(|restart| restart.deployment.clone()).collect();
        }
    }
    panic!("no restart within five passes");
}

/// A run of seven services whose canary batch (the first two) rolled out.
fn canaries_rolled_out(policy: &str) -> (ModelCluster, Vec<ObjectKey>) {
    let mut cluster = ModelCluster::new(canary_spec(policy));
    let keys = cluster.add_many(7);
    assert_eq!(next_restarts(&mut cluster), keys[..2], "the canary batch has two services");
    cluster.roll_out_all();
    (cluster, keys)
}

fn restarted(cluster: &ModelCluster) -> Vec<String> {
    cluster.template_changes.keys().map(|(_, key)| key.name.clone()).collect()
}

#[test]
fn the_canaries_soak_ready_before_the_next_batch_starts() {
    let (mut cluster, keys) = canaries_rolled_out("Continue");
    cluster.now = at(5);
    let soaking = cluster.pass();
    assert!(soaking.restarts.is_empty());
    assert_eq!(reasons(&soaking), ["BatchCompleted", "CanarySoak"]);
    let waiting = cluster.status().waiting.clone().expect("the soak is a wait");
    assert_eq!(waiting.reason, "CanarySoak");
    let until = at(65);
    assert_eq!(waiting.until.map(|time| time.0), Some(until));
    assert_eq!(soaking.wake_at, Some(until), "the pass wakes when the soak ends");
    assert!(waiting.message.contains("arcgis/svc-00, arcgis/svc-01"), "{}", waiting.message);
    assert_eq!(soaking.awaiting, keys[..2].iter().cloned().collect());
    assert_eq!(condition(cluster.status(), RECONCILING).1, "CanarySoak");

    // Every pass looks at the canaries again; the wait goes on without a new Event.
    cluster.now = at(30);
    let still = cluster.pass();
    assert!(still.restarts.is_empty() && reasons(&still).is_empty());

    cluster.now = until;
    assert_eq!(next_restarts(&mut cluster), keys[2..5], "then batchSize applies");
    assert_eq!(cluster.status().waiting, None);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
    assert_eq!(restarted(&cluster).len(), 7);
}

#[test]
fn a_canary_turning_unready_during_the_soak_fails_the_run_whatever_the_failure_policy() {
    let (mut cluster, keys) = canaries_rolled_out("Continue");
    cluster.now = at(5);
    cluster.pass();
    let rollout = cluster.deployment_mut(&keys[1]).rollout.as_mut().expect("rolled out");
    rollout.available_replicas = Some(0);
    cluster.now = at(20);
    let ended = cluster.pass();
    assert!(ended.restarts.is_empty());
    assert_eq!(reasons(&ended), ["CanaryFailed", "RunFailed"]);
    let why = "stopped by the canary: Deployment arcgis/svc-01 became unready during the soak: \
               Waiting for deployment \"svc-01\" rollout to finish: 0 of 1 updated replicas are \
               available...";
    assert_eq!(events(&ended)[0].message, why);
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Failed));
    assert_eq!(status.waiting, None);
    let (stalled, reason, message) = condition(status, STALLED);
    assert_eq!((stalled, reason), ("True", "CanaryFailed"));
    assert!(message.starts_with(&format!("Run 1 failed: {why}; 2 of 7")), "{message}");
    assert_eq!(restarted(&cluster), ["svc-00", "svc-01"], "only the canaries were restarted");
    let skipped: Vec<_> = results(&cluster)
        .into_iter()
        .filter(|(_, result, _)| *result == Some(ServiceResult::Skipped))
        .map(|(name, _, _)| name)
        .collect();
    assert_eq!(skipped, ["svc-02", "svc-03", "svc-04", "svc-05", "svc-06"]);
}

#[test]
fn a_failed_canary_rollout_ends_the_run_before_abort_or_continue_would() {
    for policy in ["Continue", "Abort"] {
        let mut cluster = ModelCluster::new(canary_spec(policy));
        let keys = cluster.add_many(5);
        next_restarts(&mut cluster);
        cluster.roll_out(&keys[0]);
        cluster.fail_rollout(&keys[1]);
        let ended = cluster.pass();
        assert!(ended.restarts.is_empty(), "{policy}");
        assert!(reasons(&ended).contains(&"CanaryFailed"), "{policy}");
        let status = cluster.status();
        assert_eq!(status.phase, Some(Phase::Failed));
        assert_eq!(condition(status, STALLED).1, "CanaryFailed");
        let (_, _, message) = condition(status, STALLED);
        assert!(
            message
                .contains("svc-01: Failed: deployment \"svc-01\" exceeded its progress deadline"),
            "{message}"
        );
        assert_eq!(restarted(&cluster), ["svc-00", "svc-01"]);
        let skipped = &status.results.iter().find(|group| group.reason == "CanaryFailed");
        let skipped = skipped.expect("the rest are skipped for the canary");
        assert_eq!((skipped.count, skipped.positions.as_str()), (3, "2-4"));
        assert!(
            skipped.message.starts_with(
                "stopped by the canary: Deployment arcgis/svc-01 ended Failed \
                 (ProgressDeadlineExceeded)"
            ),
            "{}",
            skipped.message
        );
    }
}

#[test]
fn a_fleet_no_larger_than_the_canary_ends_without_a_soak() {
    let mut cluster = ModelCluster::new(canary_spec("Continue"));
    let keys = cluster.add_many(2);
    assert_eq!(next_restarts(&mut cluster), keys);
    cluster.roll_out_all();
    cluster.pass();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
}

#[test]
fn slow_start_grows_batches_one_two_four_up_to_the_batch_size() {
    let mut cluster =
        ModelCluster::new(json!({"selector": {}, "batchSize": 4, "pacing": {"slowStart": true}}));
    cluster.add_many(12);
    let mut sizes = Vec::new();
    for _ in 0..5 {
        sizes.push(next_restarts(&mut cluster).len());
        cluster.roll_out_all();
    }
    assert_eq!(sizes, [1, 2, 4, 4, 1]);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
}

#[test]
fn slow_start_after_the_canary_and_a_dry_run_shows_the_same_batches() {
    let spec = json!({
        "selector": {}, "batchSize": 4,
        "pacing": {"slowStart": true, "canary": {"size": 3, "soak": "0s"}},
    });
    let mut cluster = ModelCluster::new(spec.clone());
    cluster.add_many(10);
    let mut sizes = Vec::new();
    for _ in 0..4 {
        sizes.push(next_restarts(&mut cluster).len());
        cluster.roll_out_all();
        cluster.now += SignedDuration::from_secs(1);
    }
    assert_eq!(sizes, [3, 1, 2, 4]);

    let mut dry = spec;
    dry["dryRun"] = json!(true);
    let mut planned = ModelCluster::new(dry);
    planned.add_many(10);
    planned.run_to_end();
    let positions: Vec<_> = planned
        .status()
        .batches
        .iter()
        .map(|batch| batch.positions.clone().unwrap_or_default())
        .collect();
    assert_eq!(positions, ["0-2", "3", "4-5", "6-9"]);
}

#[test]
fn batch_n_of_m_counts_the_batches_the_canary_and_slow_start_make() {
    let spec = json!({
        "selector": {}, "batchSize": 4,
        "pacing": {"slowStart": true, "canary": {"size": 3, "soak": "0s"}},
    });
    let mut cluster = ModelCluster::new(spec);
    cluster.add_many(10);
    let mut shown = Vec::new();
    for _ in 0..4 {
        next_restarts(&mut cluster);
        shown.push(cluster.status().batch.clone().unwrap_or_default());
        cluster.roll_out_all();
        cluster.now += SignedDuration::from_secs(1);
    }
    // 3 canaries, then 1, 2, 4: four batches, where batchSize alone would say three.
    assert_eq!(shown, ["1/4", "2/4", "3/4", "4/4"]);
    let run = cluster.status().run.clone().expect("a run");
    assert_eq!((run.canary_size, run.slow_start), (Some(3), true), "recorded for BATCH");
    cluster.run_to_end();
    assert_eq!(cluster.status().batch.as_deref(), Some("4/4"));
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
}
