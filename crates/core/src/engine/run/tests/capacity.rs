//! Capacity-aware pacing: a pod of the run waiting unschedulable past the grace holds every
//! further restart, halves the effective batch size and says why; batches that finish with
//! nothing blocked grow it back; a pod that never fits holds nothing past batchTimeout.

use jiff::SignedDuration;
use serde_json::json;

use super::super::test_support::{ModelCluster, at};
use super::super::*;
use super::{condition, events, reasons};
use crate::crd::{Phase, ServiceResult};
use crate::engine::capacity::UNSCHEDULABLE_GRACE;
use crate::engine::conditions::RECONCILING;

fn effective_size(cluster: &ModelCluster) -> Option<u32> {
    cluster.status().run.as_ref()?.pacing.as_ref().map(|pacing| pacing.effective_batch_size)
}

/// A run of `services` with batchSize 4 whose first batch is restarted and rolling.
fn first_batch_rolling(spec: serde_json::Value, services: usize) -> (ModelCluster, Vec<ObjectKey>) {
    let mut cluster = ModelCluster::new(spec);
    let keys = cluster.add_many(services);
    cluster.pass();
    let started = cluster.pass();
    cluster.apply(&started);
    for key in &keys[..4] {
        cluster.start_rollout(key);
    }
    (cluster, keys)
}

#[test]
fn a_blocked_pod_holds_new_batches_halves_the_size_and_finished_batches_grow_it_back() {
    let (mut cluster, keys) = first_batch_rolling(json!({"selector": {}, "batchSize": 4}), 12);
    cluster.block_pod(&keys[3]);

    // Within the grace nothing changes, but the pass looks again when it ends.
    cluster.now = at(1);
    let within = cluster.pass();
    assert_eq!(cluster.status().waiting, None);
    assert!(within.wake_at.is_some_and(|wake| wake <= at(0) + UNSCHEDULABLE_GRACE));

    cluster.now = at(0) + UNSCHEDULABLE_GRACE;
    let blocked = cluster.pass();
    assert_eq!(reasons(&blocked), ["BatchSizeChanged", "WaitingForCapacity"]);
    let notes = events(&blocked);
    assert_eq!(
        notes[0].message,
        "Effective batch size 4 -> 2: a pod waits for room: pod svc-03-7d9f-surge of \
         Deployment arcgis/svc-03 cannot be scheduled: 0/3 nodes are available: 3 \
         Insufficient cpu."
    );
    assert_eq!(effective_size(&cluster), Some(2));
    let (_, reason, message) = condition(cluster.status(), RECONCILING);
    assert_eq!(reason, "WaitingForCapacity");
    assert!(message.contains("0/3 nodes are available: 3 Insufficient cpu."), "{message}");
    assert!(message.contains("effective batch size 2"), "{message}");

    // The rest of batch 1 finishes while the pod waits: no batch starts, the size stays.
    for key in &keys[..3] {
        cluster.roll_out(key);
    }
    cluster.now = at(5);
    let waiting = cluster.pass();
    assert!(waiting.restarts.is_empty());
    assert!(reasons(&waiting).is_empty(), "a block announces itself once");
    assert_eq!(effective_size(&cluster), Some(2));

    // Room comes back: batch 1 ends, batch 2 takes the halved size. Batch 1 saw the block,
    // so its end grows nothing.
    cluster.place_pod(&keys[3]);
    cluster.roll_out(&keys[3]);
    cluster.now = at(6);
    let resumed = cluster.pass();
    cluster.apply(&resumed);
    assert_eq!(cluster.status().waiting, None);
    let restarted: Vec<_> = resumed.restarts.iter().map(|r| r.deployment.clone()).collect();
    assert_eq!(restarted, keys[4..6]);
    assert_eq!(effective_size(&cluster), Some(2));

    // Batch 2 finishes with nothing blocked: one larger.
    cluster.roll_out_all();
    cluster.now = at(7);
    let grown = cluster.pass();
    cluster.apply(&grown);
    assert_eq!(grown.restarts.len(), 3);
    assert!(events(&grown).iter().any(|note| note.message
        == "Effective batch size 2 -> 3: batch 2 finished with no pod waiting for room"));
    assert_eq!(effective_size(&cluster), Some(3));

    // Back at batchSize, the pacing record is gone; every service restarted once.
    cluster.run_to_end();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(status.totals.ready, 12);
    assert!(cluster.template_changes.values().all(|changes| *changes == 1));
    let sizes: Vec<u32> =
        status.batches.iter().filter_map(|b| b.counts.as_ref()).map(|c| c.restarted).collect();
    assert_eq!(
        sizes,
        [4, 2, 3, 3],
        "the sizes of the batches, ending at batchSize 4 would need more"
    );
}

#[test]
fn a_pod_that_never_fits_times_its_service_out_and_holds_the_run_no_longer() {
    let spec = json!({"selector": {}, "batchSize": 4, "batchTimeout": "60s"});
    let (mut cluster, keys) = first_batch_rolling(spec, 6);
    cluster.block_pod(&keys[0]);
    for key in &keys[1..4] {
        cluster.roll_out(key);
    }
    cluster.now = at(10);
    cluster.pass();
    assert_eq!(condition(cluster.status(), RECONCILING).1, "WaitingForCapacity");

    cluster.now = at(60);
    let timed_out = cluster.pass();
    cluster.apply(&timed_out);
    assert_eq!(cluster.status().waiting, None, "capacity never holds a run for ever");
    let first = &cluster.status().batches[0];
    assert_eq!(first.counts.as_ref().map(|c| c.failed), Some(1));
    assert_eq!(
        cluster.status().results.first().map(|group| group.result),
        Some(ServiceResult::TimedOut)
    );
    // The batch after it starts at the halved size, 2, of which the timed-out rollout still
    // rolling holds one place.
    assert_eq!(cluster.status().batches[1].services.len(), 2);
    assert_eq!(timed_out.restarts.len(), 1);
}

#[test]
fn with_capacity_aware_false_a_blocked_pod_changes_nothing() {
    let spec = json!({"selector": {}, "batchSize": 4, "pacing": {"capacityAware": false}});
    let (mut cluster, keys) = first_batch_rolling(spec, 8);
    cluster.block_pod(&keys[3]);
    cluster.now = at(30);
    let pass = cluster.pass();
    assert!(reasons(&pass).is_empty());
    assert_eq!(cluster.status().waiting, None);
    assert_eq!(effective_size(&cluster), None);
    cluster.roll_out_all();
    let next = cluster.pass();
    assert_eq!(next.restarts.len(), 4, "the next batch takes the full batchSize");
}

#[test]
fn pods_of_another_run_or_not_yet_restarted_workloads_never_block() {
    let (mut cluster, keys) = first_batch_rolling(json!({"selector": {}, "batchSize": 4}), 8);
    // svc-05 is not restarted by this run: its template names no run of it.
    cluster.block_pod(&keys[5]);
    cluster.now = at(0) + SignedDuration::from_secs(30);
    cluster.pass();
    assert_eq!(cluster.status().waiting, None);
    cluster.roll_out_all();
    assert_eq!(cluster.pass().restarts.len(), 4);
}

#[test]
fn a_restart_not_yet_sent_waits_while_a_pod_of_its_batch_finds_no_room() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 4}));
    let keys = cluster.add_many(4);
    cluster.pass();
    let started = cluster.pass();
    for restart in &started.restarts[..3] {
        cluster.patch(restart);
    }
    let mut outcomes: Vec<(ObjectKey, RestartOutcome)> = keys[..3]
        .iter()
        .map(|key| (key.clone(), RestartOutcome::Patched { generation: 2 }))
        .collect();
    outcomes.push((keys[3].clone(), RestartOutcome::Transient("503".to_owned())));
    cluster.record(&outcomes);
    for key in &keys[..3] {
        cluster.start_rollout(key);
    }
    cluster.block_pod(&keys[0]);
    cluster.now = at(0) + UNSCHEDULABLE_GRACE;
    let held = cluster.pass();
    assert!(held.restarts.is_empty(), "svc-03's restart is not retried while svc-00 waits");
    let row = &held.status.batches[0].services[3];
    assert!(
        row.message
            .as_deref()
            .is_some_and(|message| message.starts_with("held: capacity-aware pacing")),
        "{row:?}"
    );
}
