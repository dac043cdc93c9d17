//! What the engine does after the operator crashed, a cache lagged, or another run or person
//! touched a Deployment: never a second restart, never a wrong verdict.

use jiff::SignedDuration;
use serde_json::json;

use super::super::test_support::{ModelCluster, NS, at};
use super::super::*;
use super::{batch_results, reasons, results};
use crate::crd::{Phase, ServiceResult};
use crate::engine::Restart;

#[test]
fn a_stale_deployment_right_after_the_patch_is_not_ready() {
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    let keys = cluster.add_many(1);
    cluster.pass();
    let stale = cluster.view();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    assert_eq!(cluster.status().batches[0].services[0].generation, None, "adopted later");

    // The cache still shows generation 1, fully rolled out, no annotations (the controller
    // lays its memo of accepted patches over it; this pass has none): never Ready, and the
    // restart on record goes out again as it was, its stale precondition refused.
    let decision = cluster.pass_with(&stale);
    assert_eq!(decision.status.batches[0].services[0].result, None);
    assert_eq!(decision.restarts, restarting.restarts);
    assert!(matches!(cluster.patch(&decision.restarts[0]), RestartOutcome::Transient(_)));
    assert_eq!(cluster.deployments[&keys[0]].snapshot.generation(), 2, "restarted once");

    // Observed but still rolling.
    cluster.start_rollout(&keys[0]);
    assert_eq!(cluster.pass().status.batches[0].services[0].result, None);
    cluster.roll_out(&keys[0]);
    cluster.pass();
    assert_eq!(
        batch_results(&cluster, 1),
        [("svc-00".to_owned(), Some(ServiceResult::Ready), None)]
    );
}

#[test]
fn a_crash_after_the_patches_before_the_status_write_repeats_nothing() {
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    let keys = cluster.add_many(1);
    cluster.pass();
    let before_batch = cluster.refresh.status.clone();
    let stale = cluster.view();
    let restarting = cluster.pass();
    let restart = restarting.restarts[0].clone();
    // The patch goes through, then the operator dies before writing the batch's start.
    cluster.patch(&restart);
    cluster.refresh.status = before_batch;

    // Restarted with a stale cache, one second later: the same batch starts again and the
    // same patch goes out. Its resourceVersion precondition is stale, so the API server
    // refuses it; had it none, it would still be byte-identical and change nothing.
    cluster.now = at(1);
    let again = cluster.pass_with(&stale);
    assert_eq!(again.restarts, vec![restart.clone()]);
    assert!(matches!(cluster.patch(&again.restarts[0]), RestartOutcome::Transient(_)));
    let unconditional = Restart { resource_version: None, ..restart.clone() };
    assert!(matches!(cluster.patch(&unconditional), RestartOutcome::Patched { generation: 2 }));

    // With a fresh cache the run id on the template is adopted.
    let mut fresh = ModelCluster::new(json!({"selector": {}}));
    std::mem::swap(&mut fresh.deployments, &mut cluster.deployments);
    fresh.refresh.status = cluster.refresh.status.clone();
    fresh.plans = cluster.plans.clone();
    let mut cluster = fresh;
    let adopted = cluster.pass();
    assert!(adopted.restarts.is_empty());
    assert_eq!(adopted.status.batches[0].services[0].result, None, "awaited, not sent again");
    cluster.roll_out(&keys[0]);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
    assert_eq!(cluster.deployments[&keys[0]].snapshot.generation(), 2, "restarted exactly once");
}

#[test]
fn a_retry_across_a_second_boundary_sends_the_identical_patch() {
    // The run starts 1 ms before a second boundary and the operator dies after the patches
    // but before the status write; the retry runs 2 ms later, in the next second. A
    // restartedAt taken from the clock would differ and restart the Deployment twice.
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    let keys = cluster.add_many(2);
    cluster.now = at(0) + SignedDuration::from_millis(999);
    cluster.pass();
    let persisted = cluster.refresh.status.clone();
    let stale = cluster.view();
    let first = cluster.pass();
    for restart in &first.restarts {
        cluster.patch(restart);
    }
    cluster.refresh.status = persisted;
    cluster.now = at(1) + SignedDuration::from_millis(1);

    let retry = cluster.pass_with(&stale);
    let unconditional = |decision: &Decision| -> Vec<Restart> {
        decision
            .restarts
            .iter()
            .map(|restart| Restart { resource_version: None, ..restart.clone() })
            .collect()
    };
    assert_eq!(unconditional(&retry), unconditional(&first));
    for restart in unconditional(&retry) {
        cluster.patch(&restart);
    }
    for key in &keys {
        assert_eq!(cluster.deployments[key].snapshot.generation(), 2, "{key} restarted once");
    }
}

#[test]
fn a_deployment_deleted_after_its_restart_is_gone_not_timed_out() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchTimeout": "1m"}));
    let keys = cluster.add_many(1);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.deployments.remove(&keys[0]);
    cluster.now = at(120);
    cluster.pass();
    assert_eq!(
        results(&cluster),
        vec![("svc-00".to_owned(), Some(ServiceResult::Gone), Some(MESSAGE_GONE.to_owned()))]
    );
}

#[test]
fn a_deployment_recreated_after_its_restart_is_gone_at_once() {
    // Argo CD's Replace sync deletes and creates again: the new object starts at generation
    // 1 with fresh pods, so waiting for the old object's generation would only time out.
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchTimeout": "1m"}));
    let keys = cluster.add_many(1);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.deployments.remove(&keys[0]);
    cluster.add(NS, "svc-00", 1);
    let replaced = cluster.pass();
    assert!(replaced.restarts.is_empty());
    assert_eq!(
        results(&cluster),
        vec![("svc-00".to_owned(), Some(ServiceResult::Gone), Some(MESSAGE_REPLACED.to_owned()))]
    );
}

#[test]
fn a_timed_out_rollout_keeps_its_place_in_the_in_flight_budget() {
    let mut cluster =
        ModelCluster::new(json!({"selector": {}, "batchSize": 2, "batchTimeout": "1m"}));
    let keys = cluster.add_many(4);
    cluster.pass();
    let first = cluster.pass();
    cluster.apply(&first);
    cluster.start_rollout(&keys[0]);
    cluster.roll_out(&keys[1]);
    cluster.now = at(60);
    let next = cluster.pass();
    assert_eq!(reasons(&next), ["BatchCompleted", "BatchStarted"]);
    assert_eq!(next.status.batches[0].services[0].result, Some(ServiceResult::TimedOut));
    assert_eq!(next.restarts.len(), 1, "svc-00 still rolls, so one place is free");
    assert!(next.awaiting.contains(&keys[0]));
    cluster.apply(&next);
    let held = &cluster.status().batches[1].services[1];
    assert!(
        held.message.as_deref().is_some_and(|m| m.starts_with("held: 2 rollouts")),
        "{:?}",
        held.message
    );

    cluster.roll_out(&keys[0]);
    let freed = cluster.pass();
    assert_eq!(
        freed.restarts.iter().map(|restart| restart.deployment.clone()).collect::<Vec<_>>(),
        vec![keys[3].clone()]
    );
}

#[test]
fn a_deployment_another_run_is_rolling_out_is_held_then_restarted() {
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    let keys = cluster.add_many(2);
    // Another resource's run restarted svc-00 and is still rolling it out.
    let other = "arcgis/other/4-89abcdef";
    cluster.deployment_mut(&keys[0]).restarted_by = Some(other.to_owned());
    cluster.deployment_mut(&keys[0]).metadata.generation = Some(2);
    cluster.start_rollout(&keys[0]);
    cluster.pass();
    let started = cluster.pass();
    assert_eq!(
        started.restarts.iter().map(|restart| restart.deployment.clone()).collect::<Vec<_>>(),
        vec![keys[1].clone()],
        "the other run's rollout is not patched over"
    );
    assert!(started.awaiting.contains(&keys[0]), "its end must reach this run too");
    cluster.apply(&started);
    assert_eq!(
        cluster.status().batches[0].services[0].message.as_deref(),
        Some(
            "held: run arcgis/other/4-89abcdef is rolling this Deployment out; it is restarted once that rollout ends"
        )
    );
    cluster.roll_out(&keys[0]);
    let after = cluster.pass();
    assert_eq!(after.restarts.len(), 1);
    assert_eq!(after.restarts[0].deployment, keys[0]);
    // The controller writes this status before the patch: the restart must be on it, even
    // though svc-01 still rolls and nothing else in the batch changed.
    let held = &after.status.batches[0].services[0];
    assert_eq!(held.uid, cluster.deployments[&keys[0]].snapshot.metadata.uid, "on record");
    cluster.apply(&after);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
}

#[test]
fn an_overlapping_run_that_patched_over_ours_still_completes_ours() {
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    let keys = cluster.add_many(1);
    cluster.pass();
    let started = cluster.pass();
    cluster.apply(&started);
    // Another run (a stale cache on its side) patched the same Deployment after us.
    let mut other = started.restarts[0].clone();
    other.restarted_by = "arcgis/other/1-89abcdef".to_owned();
    other.record_annotation = "gisops.io/run-89abcdef".to_owned();
    other.resource_version = None;
    other.restarted_at = "2026-11-26T18:30:00Z".to_owned();
    cluster.patch(&other);
    cluster.roll_out(&keys[0]);
    let done = cluster.pass();
    assert_eq!(
        batch_results(&cluster, 1),
        [("svc-00".to_owned(), Some(ServiceResult::Ready), None)]
    );
    assert!(done.restarts.is_empty());
}

#[test]
fn an_exclusion_cannot_hide_a_restart_whose_record_was_lost() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 1}));
    let keys = cluster.add_many(2);
    cluster.pass();
    let planned = cluster.refresh.status.clone();
    let started = cluster.pass();
    cluster.apply(&started);
    // The status write of the batch's start is lost; then svc-00 is excluded.
    cluster.refresh.status = planned;
    cluster.refresh.spec.exclude = vec!["svc-00".to_owned()];
    cluster.start_rollout(&keys[0]);
    let next = cluster.pass();
    assert!(next.restarts.is_empty(), "svc-00 still rolls; batch 2 must wait for it");
    assert_eq!(next.status.batches[0].services[0].result, None);
    assert_eq!(next.status.batches[0].services[0].generation, Some(2), "adopted");
    cluster.roll_out(&keys[0]);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
}

#[test]
fn a_restart_lost_in_a_later_batch_keeps_its_place_in_the_budget() {
    // Batch 1 holds a paused Deployment, batch 2 another. One pass skips the paused one,
    // starts batch 2 and patches its Deployment, and its status never lands (the controller
    // writes a batch's start before its patches, so only a status restored from a backup or
    // written by an older operator looks like this). Meanwhile the first one is unpaused. The persisted status still shows
    // batch 1 pending, but batch 2's rollout is under way: restarting the first now would
    // put two rollouts in flight with batchSize 1.
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 1}));
    let keys = cluster.add_many(2);
    cluster.deployment_mut(&keys[0]).paused = true;
    cluster.pass();
    let persisted = cluster.refresh.status.clone();
    let lost = cluster.pass();
    assert_eq!(lost.restarts.len(), 1, "batch 2 started in the lost pass");
    cluster.patch(&lost.restarts[0]);
    cluster.start_rollout(&keys[1]);
    cluster.refresh.status = persisted;
    cluster.deployment_mut(&keys[0]).paused = false;

    let after_crash = cluster.pass();
    assert_eq!(after_crash.restarts, vec![], "held while batch 2's rollout is in flight");
    cluster.apply(&after_crash);
    cluster.roll_out(&keys[1]);
    let freed = cluster.pass();
    assert_eq!(freed.restarts.len(), 1);
    assert_eq!(freed.restarts[0].deployment, keys[0]);
    cluster.apply(&freed);
    cluster.roll_out(&keys[0]);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
    assert_eq!(cluster.deployments[&keys[1]].snapshot.generation(), 2, "restarted exactly once");
}

#[test]
fn a_restart_unconfirmed_at_the_timeout_holds_its_place_until_the_cache_can_show_it() {
    // The first patch fails; its retry goes through just before the batch times out, but
    // the status write recording it is lost, and at the timeout the cache still lags behind
    // the patch. The engine cannot tell "never restarted" from "not seen yet": the next batch
    // must not start its restart beside a rollout that may be under way.
    let mut cluster =
        ModelCluster::new(json!({"selector": {}, "batchSize": 1, "batchTimeout": "60s"}));
    let keys = cluster.add_many(2);
    cluster.pass();
    let first_try = cluster.pass();
    assert_eq!(first_try.restarts.len(), 1);
    // Transient failure: nothing reaches the Deployment.
    cluster.record(&[(keys[0].clone(), RestartOutcome::Transient("503".to_owned()))]);
    let before_patch = cluster.view();

    cluster.now = at(50);
    let retry = cluster.pass();
    let persisted = cluster.refresh.status.clone();
    assert_eq!(retry.restarts.len(), 1);
    cluster.patch(&retry.restarts[0]);
    cluster.start_rollout(&keys[0]);
    cluster.refresh.status = persisted; // the write recording the patch is lost

    cluster.now = at(60);
    let timeout = cluster.pass_with(&before_patch);
    assert_eq!(timeout.status.batches[0].services[0].result, Some(ServiceResult::TimedOut));
    assert_eq!(timeout.restarts, vec![], "held: the restart in batch 1 is unconfirmed");
    let wake_at = timeout.wake_at.expect("comes back when the cache can be trusted");
    assert!(wake_at <= at(90), "{wake_at}");

    // The cache catches up and shows the rollout: the place stays held until it completes.
    cluster.now = at(70);
    assert_eq!(cluster.pass().restarts, vec![]);
    cluster.roll_out(&keys[0]);
    let freed = cluster.pass();
    assert_eq!(freed.restarts.len(), 1);
    assert_eq!(freed.restarts[0].deployment, keys[1]);
}

#[test]
fn a_restart_that_never_landed_frees_its_place_once_the_cache_can_be_trusted() {
    let mut cluster =
        ModelCluster::new(json!({"selector": {}, "batchSize": 1, "batchTimeout": "60s"}));
    let keys = cluster.add_many(2);
    cluster.pass();
    cluster.pass();
    cluster.record(&[(keys[0].clone(), RestartOutcome::Transient("503".to_owned()))]);

    cluster.now = at(60);
    let timeout = cluster.pass();
    assert_eq!(timeout.status.batches[0].services[0].result, Some(ServiceResult::TimedOut));
    assert_eq!(timeout.restarts, vec![]);
    assert_eq!(timeout.wake_at, Some(at(90)));
    cluster.now = at(89);
    assert_eq!(cluster.pass().restarts, vec![]);
    cluster.now = at(90);
    let freed = cluster.pass();
    assert_eq!(freed.restarts.len(), 1);
    assert_eq!(freed.restarts[0].deployment, keys[1]);
}

#[test]
fn a_service_held_until_its_batch_timed_out_holds_no_place_after_it() {
    // Never restarted (another run was rolling it out the whole batch), so nothing of this run
    // can be rolling: the next batch starts its restarts at once, not after the grace period
    // kept for restarts sent but never confirmed.
    let mut cluster =
        ModelCluster::new(json!({"selector": {}, "batchSize": 1, "batchTimeout": "60s"}));
    let keys = cluster.add_many(2);
    let other = "arcgis/other/4-89abcdef";
    cluster.deployment_mut(&keys[0]).restarted_by = Some(other.to_owned());
    cluster.deployment_mut(&keys[0]).metadata.generation = Some(2);
    cluster.start_rollout(&keys[0]);
    cluster.pass();
    assert_eq!(cluster.pass().restarts, vec![], "held for the other run");
    cluster.now = at(60);
    let timed_out = cluster.pass();
    assert_eq!(results(&cluster)[0].1, Some(ServiceResult::TimedOut));
    assert!(
        timed_out.status.batches[0].services.is_empty(),
        "it holds no place: a completed batch keeps no row for it"
    );
    assert_eq!(timed_out.restarts.len(), 1, "batch 2 starts at once");
    assert_eq!(timed_out.restarts[0].deployment, keys[1]);
}
