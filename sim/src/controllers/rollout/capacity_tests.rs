//! The rollout model with pods no node takes: a rebased plan stalls while
//! its new pods wait, crosses the progress deadline counted from its last
//! progress, and carries on once they are bound.

use serde_json::{Value, json};

use super::status::rfc3339;
use super::tests::n;
use super::*;

const T0: u64 = 1_764_000_000_000;

/// Three replicas with a 5 s progress deadline: the shared fixture, made to cross it soon.
fn deployment(generation: u64, image: &str) -> Value {
    let mut deployment = super::tests::deployment(3, generation, image);
    deployment["spec"]["progressDeadlineSeconds"] = json!(5);
    deployment
}

fn progressing(status: &Value) -> Value {
    status["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Progressing"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// A settled 3-replica Deployment changed at `T0 + 60 s`, rolling in 3 s
/// (maxSurge 1, maxUnavailable 0: a wave a second).
fn restarted() -> (Value, RolloutPlan, u64) {
    let d = deployment(1, "nginx:1");
    let first = begin(&d, None, T0, 3_000, false);
    let mut d2 = deployment(2, "nginx:2");
    d2["status"] = status_at(&d, &first, T0 + 3_000);
    let start = T0 + 60_000;
    let plan = begin(&d2, Some(&first), start, 3_000, false);
    (d2, plan, start)
}

#[test]
fn a_surge_pod_without_a_node_stalls_the_rollout_until_the_deadline() {
    let (d, plan, start) = restarted();
    assert_eq!((plan.max_surge, plan.max_unavailable, plan.wave_ms), (1, 0, 1_000));
    let held = rebase(&plan, start, 1);
    assert_eq!(held.from.new_unbound, 1);
    assert_eq!(held.continues_from, Some(start));
    // Nothing moves at the waves the plan had: the surge pod never gets ready.
    for at in [start + 1_000, start + 3_000, start + 5_000] {
        let s = status_at(&d, &held, at);
        assert_eq!(
            (n(&s, "replicas"), n(&s, "updatedReplicas"), n(&s, "availableReplicas")),
            (4, 1, 3)
        );
        assert_eq!(s.get("unavailableReplicas"), None);
        assert_eq!(progressing(&s)["reason"], "NewReplicaSetCreated");
    }
    // Strictly after the deadline, counted from the last progress.
    assert_eq!(next_change_after(&held, start), Some(start + 5_001));
    let s = status_at(&d, &held, start + 5_001);
    let condition = progressing(&s);
    assert_eq!(
        (condition["status"].as_str(), condition["reason"].as_str()),
        (Some("False"), Some("ProgressDeadlineExceeded"))
    );
    assert_eq!(condition["lastTransitionTime"], rfc3339(start + 5_001));
    assert!(!is_complete(&s, &d));
    assert_eq!(
        next_change_after(&held, start + 5_001),
        None,
        "nothing changes until a node takes the pod"
    );
}

#[test]
fn once_bound_the_pod_becomes_ready_a_wave_later_and_the_rollout_completes() {
    let (d, plan, start) = restarted();
    let held = rebase(&plan, start, 1);
    let bound_at = start + 8_000;
    let resumed = rebase(&held, bound_at, 0);
    assert_eq!(resumed.continues_from, Some(start), "the last progress is still the start");
    let s = status_at(&d, &resumed, bound_at);
    assert_eq!(progressing(&s)["reason"], "ProgressDeadlineExceeded");
    assert_eq!(next_change_after(&resumed, bound_at), Some(bound_at + 1_000));
    // Progress again: Progressing turns back to True.
    let s = status_at(&d, &resumed, bound_at + 1_000);
    assert_eq!(
        (n(&s, "updatedReplicas"), n(&s, "availableReplicas"), n(&s, "replicas")),
        (2, 3, 4)
    );
    let condition = progressing(&s);
    assert_eq!(
        (condition["status"].as_str(), condition["reason"].as_str()),
        (Some("True"), Some("ReplicaSetUpdated"))
    );
    assert_eq!(condition["lastTransitionTime"], rfc3339(bound_at + 1_000));
    let s = status_at(&d, &resumed, bound_at + 3_000);
    assert!(is_complete(&s, &d), "{s}");
    assert_eq!(progressing(&s)["reason"], "NewReplicaSetAvailable");
}

#[test]
fn a_later_pod_without_a_node_stalls_the_rollout_from_that_wave() {
    let (d, plan, start) = restarted();
    // Wave 1 made the surge pod ready and created the second new pod, which
    // no node takes.
    let wave = start + 1_000;
    assert_eq!(
        plan.counts_at(wave),
        PodCounts { old: 2, new_total: 2, new_ready: 1, new_unbound: 0 }
    );
    let held = rebase(&plan, wave, 1);
    assert_eq!(held.continues_from, Some(wave), "wave 1 was progress");
    let s = status_at(&d, &held, wave + 5_000);
    assert_eq!(progressing(&s)["reason"], "ReplicaSetUpdated");
    let s = status_at(&d, &held, wave + 5_001);
    assert_eq!(progressing(&s)["reason"], "ProgressDeadlineExceeded");
    assert_eq!((n(&s, "updatedReplicas"), n(&s, "availableReplicas")), (2, 3));
}
