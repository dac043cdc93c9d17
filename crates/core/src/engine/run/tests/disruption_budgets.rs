//! PodDisruptionBudget awareness: services one budget covers are never in flight together
//! (a batch ends before the second, and the status says why), a service whose budget allows
//! no disruption waits without an in-flight place until it allows one or `batchTimeout`
//! skips it, and `respectDisruptionBudgets: false` turns it all off.

use serde_json::json;

use super::super::test_support::{ModelCluster, NS, at};
use super::super::*;
use super::{batch_results, condition, events, reasons, results};
use crate::crd::{Phase, ServiceResult};
use crate::engine::conditions::RECONCILING;
use crate::engine::results::reason;

fn restarted(decision: &Decision) -> Vec<String> {
    decision.restarts.iter().map(|restart| restart.deployment.name.clone()).collect()
}

/// A run over `services` Deployments whose plan is made, its first batch not cut yet.
fn planned(spec: serde_json::Value, services: usize) -> (ModelCluster, Vec<ObjectKey>) {
    let mut cluster = ModelCluster::new(spec);
    let keys = cluster.add_many(services);
    (cluster, keys)
}

#[test]
fn services_under_one_budget_go_in_separate_batches_and_the_status_says_why() {
    let (mut cluster, keys) = planned(json!({"selector": {}, "batchSize": 4}), 8);
    cluster.set_budget("shared", &[keys[0].clone(), keys[2].clone()], 1);
    cluster.pass();
    let first = cluster.pass();
    cluster.apply(&first);
    assert_eq!(restarted(&first), ["svc-00", "svc-01"], "the batch ends before svc-02");
    assert_eq!(reasons(&first).last(), Some(&"WaitingForDisruptionBudget"));
    let waiting = cluster.status().waiting.clone().expect("the run says why");
    assert_eq!(waiting.reason, "WaitingForDisruptionBudget");
    assert_eq!(
        waiting.message,
        "Deployment arcgis/svc-02 waits for the next batch: PodDisruptionBudget \
         arcgis/shared also covers Deployment arcgis/svc-00, in flight in batch 1"
    );
    assert_eq!(condition(cluster.status(), RECONCILING).1, "WaitingForDisruptionBudget");

    // svc-01 finishes alone: svc-02 still waits for svc-00.
    cluster.roll_out(&keys[1]);
    cluster.now = at(5);
    assert!(cluster.pass().restarts.is_empty());
    assert_eq!(
        cluster.status().waiting.as_ref().map(|w| w.reason.as_str()),
        Some("WaitingForDisruptionBudget")
    );

    cluster.roll_out(&keys[0]);
    cluster.now = at(6);
    let second = cluster.pass();
    cluster.apply(&second);
    assert_eq!(restarted(&second), ["svc-02", "svc-03", "svc-04", "svc-05"]);
    assert_eq!(cluster.status().waiting, None);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
    assert!(cluster.template_changes.values().all(|changes| *changes == 1));
}

#[test]
fn a_dry_run_cuts_the_batches_a_real_run_would() {
    let (mut cluster, keys) = planned(json!({"selector": {}, "batchSize": 4, "dryRun": true}), 6);
    cluster.set_budget("shared", &[keys[0].clone(), keys[1].clone()], 1);
    cluster.pass();
    cluster.pass();
    let sizes: Vec<usize> = (1..=2).map(|index| batch_results(&cluster, index).len()).collect();
    assert_eq!(sizes, [1, 4]);
}

#[test]
fn a_service_whose_budget_allows_no_disruption_waits_then_restarts_once_it_allows_one() {
    let (mut cluster, keys) = planned(json!({"selector": {}, "batchSize": 2}), 3);
    cluster.set_budget("zero", &[keys[1].clone()], 0);
    cluster.pass();
    let first = cluster.pass();
    cluster.apply(&first);
    assert_eq!(restarted(&first), ["svc-00"]);
    let notes = events(&first);
    let note = notes.iter().find(|note| note.reason.as_str() == "WaitingForDisruptionBudget");
    let expected = "Deployment arcgis/svc-01 is held: PodDisruptionBudget arcgis/zero allows no \
                    disruption now: the disruption budget zero needs 1 healthy pods and has 1 \
                    currently (disruptionsAllowed 0); it is restarted once the budget allows one";
    assert_eq!(note.map(|note| note.message.as_str()), Some(expected));
    assert_eq!(cluster.status().waiting.as_ref().map(|w| w.message.as_str()), Some(expected));
    let (_, _, row_message) = &batch_results(&cluster, 1)[1];
    assert!(row_message.as_deref().is_some_and(|m| m.starts_with("held: PodDisruptionBudget")));

    // The budget stays at zero while svc-00 finishes: still held, nothing announced again.
    cluster.roll_out(&keys[0]);
    cluster.now = at(10);
    let held = cluster.pass();
    assert!(held.restarts.is_empty());
    assert!(reasons(&held).iter().all(|reason| *reason != "WaitingForDisruptionBudget"));

    cluster.allow_disruptions(NS, "zero", 1);
    cluster.now = at(11);
    let allowed = cluster.pass();
    cluster.apply(&allowed);
    assert_eq!(restarted(&allowed), ["svc-01"]);
    assert_eq!(cluster.status().waiting, None);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
}

#[test]
fn a_held_service_takes_no_in_flight_place() {
    let (mut cluster, keys) = planned(json!({"selector": {}, "batchSize": 2}), 4);
    cluster.set_budget("zero", &[keys[0].clone()], 0);
    cluster.pass();
    let first = cluster.pass();
    assert_eq!(restarted(&first), ["svc-01"], "svc-00 waits; svc-01 goes");
}

#[test]
fn a_service_still_held_at_batch_timeout_is_skipped_for_its_budget() {
    let spec = json!({"selector": {}, "batchSize": 2, "batchTimeout": "60s"});
    let (mut cluster, keys) = planned(spec, 3);
    cluster.set_budget("zero", &[keys[1].clone()], 0);
    cluster.pass();
    let first = cluster.pass();
    cluster.apply(&first);
    cluster.roll_out(&keys[0]);
    cluster.now = at(60);
    let timed_out = cluster.pass();
    cluster.apply(&timed_out);
    assert_eq!(restarted(&timed_out), ["svc-02"], "the next batch goes on");
    let (_, result, message) = &results(&cluster)[1];
    assert_eq!(*result, Some(ServiceResult::Skipped));
    assert!(
        message.as_deref().is_some_and(|m| m.starts_with(
            "not restarted within spec.batchTimeout 60s: held: PodDisruptionBudget arcgis/zero"
        )),
        "{message:?}"
    );
    let group = cluster.status().results.first().expect("a result group");
    assert_eq!(group.reason, reason::DISRUPTION_BUDGET);
    cluster.run_to_end();
    assert!(!cluster.template_changes.keys().any(|(_, key)| *key == keys[1]));
}

#[test]
fn a_rollout_outliving_its_batch_holds_its_budget_in_the_next() {
    let spec = json!({"selector": {}, "batchSize": 2, "batchTimeout": "60s"});
    let (mut cluster, keys) = planned(spec, 4);
    cluster.set_budget("shared", &[keys[0].clone(), keys[2].clone()], 1);
    cluster.pass();
    let first = cluster.pass();
    cluster.apply(&first);
    cluster.start_rollout(&keys[0]);
    cluster.roll_out(&keys[1]);
    cluster.now = at(60);
    let next = cluster.pass();
    cluster.apply(&next);
    assert!(!restarted(&next).contains(&"svc-02".to_owned()), "svc-00 still rolls");
    assert!(
        cluster.status().waiting.as_ref().is_some_and(|w| w.message.contains("also covers")),
        "{:?}",
        cluster.status().waiting
    );

    // Passes after the one that ended batch 1 still find svc-00 in flight under the budget.
    cluster.now = at(61);
    let later = cluster.pass();
    cluster.apply(&later);
    assert!(!restarted(&later).contains(&"svc-02".to_owned()), "svc-00 still rolls");
    cluster.roll_out(&keys[0]);
    cluster.now = at(62);
    assert!(restarted(&cluster.pass()).contains(&"svc-02".to_owned()), "svc-00 rolled out");
}

#[test]
fn with_respect_disruption_budgets_false_budgets_change_nothing() {
    let spec =
        json!({"selector": {}, "batchSize": 4, "pacing": {"respectDisruptionBudgets": false}});
    let (mut cluster, keys) = planned(spec, 4);
    cluster.set_budget("shared", &[keys[0].clone(), keys[1].clone()], 0);
    cluster.pass();
    let first = cluster.pass();
    assert_eq!(restarted(&first).len(), 4);
    assert_eq!(cluster.status().waiting, None);
}

#[test]
fn a_paused_service_under_a_budget_at_zero_is_skipped_as_paused_without_a_wait() {
    let (mut cluster, keys) = planned(json!({"selector": {}, "batchSize": 2}), 2);
    cluster.set_budget("zero", &[keys[0].clone()], 0);
    cluster.deployment_mut(&keys[0]).paused = true;
    cluster.pass();
    let first = cluster.pass();
    assert_eq!(restarted(&first), ["svc-01"]);
    assert_eq!(cluster.status().waiting, None);
    assert!(reasons(&first).iter().all(|reason| *reason != "WaitingForDisruptionBudget"));
}

#[test]
fn a_batch_a_budget_cuts_short_waits_for_it_and_one_its_wave_cuts_short_does_not() {
    let spec = json!({"selector": {}, "batchSize": 4,
        "waves": [{"selector": {"matchLabels": {"tier": "system"}}}]});
    let mut cluster = ModelCluster::new(spec);
    let mut tiered = |name: &str, tier: &str| {
        let key = cluster.add(NS, name, 1);
        let deployment = cluster.deployment_mut(&key);
        let mut labels = deployment.labels();
        labels.insert("tier".to_owned(), tier.to_owned());
        deployment.set_labels(&labels);
        key
    };
    let system = [tiered("a-sys", "system"), tiered("b-sys", "system"), tiered("c-sys", "system")];
    let user = tiered("d-user", "user");
    cluster.set_budget("shared", &[system[0].clone(), system[2].clone()], 1);
    cluster.set_budget("across", &[system[2].clone(), user], 1);
    cluster.pass();
    let first = cluster.pass();
    cluster.apply(&first);
    assert_eq!(restarted(&first), ["a-sys", "b-sys"]);
    let waiting = cluster.status().waiting.clone().expect("the budget cut batch 1 short");
    assert!(
        waiting.message.starts_with("Deployment arcgis/c-sys waits for the next batch"),
        "{}",
        waiting.message
    );

    // Batch 2 holds only c-sys because its wave ends there, not for the budget it shares
    // with d-user of the next wave.
    cluster.roll_out(&system[0]);
    cluster.roll_out(&system[1]);
    cluster.now = at(5);
    let second = cluster.pass();
    cluster.apply(&second);
    assert_eq!(restarted(&second), ["c-sys"]);
    assert_eq!(cluster.status().waiting, None);
}
