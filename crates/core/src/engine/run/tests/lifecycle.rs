//! How a run moves: creation, batches, readiness, timeouts, results, the status it writes.

use std::sync::Arc;

use jiff::SignedDuration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use serde_json::json;

use super::super::test_support::{ModelCluster, NS, at};
use super::super::*;
use super::{batch_results, condition, reasons, results};
use crate::crd::{BatchPhase, Phase, ServiceResult, Totals};
use crate::engine::conditions::{READY, RECONCILING};
use crate::engine::{DeploymentSnapshot, Restart};

#[test]
fn creation_plans_then_starts_a_batch_with_its_restarts() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 2}));
    let keys = cluster.add_many(3);

    let planned = cluster.pass();
    assert!(planned.restarts.is_empty(), "no restart in the pass that plans");
    assert_eq!(reasons(&planned), ["RunStarted"]);
    assert_eq!(planned.wake_at, Some(at(0)), "the next pass follows the plan's write at once");
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Running));
    assert_eq!(status.observed_generation, Some(1));
    let run = status.run.as_ref().expect("run");
    assert_eq!(
        (run.id.as_str(), run.number, run.reason.as_str()),
        ("arcgis/refresh/1-01234567", 1, "Created")
    );
    assert!(status.batches.is_empty(), "batches are cut as they start, from the plan");
    assert_eq!(planned.plan_objects.len(), 1, "the plan is written with the run's start");
    assert_eq!(cluster.plan().map(|plan| plan.len()), Some(3));
    assert_eq!(status.totals.services, 3);
    assert_eq!((status.progress.as_deref(), status.batch.as_deref()), (Some("0/3"), Some("1/2")));
    assert_eq!(condition(status, RECONCILING), ("True", "Running", "batch 1 of 2"));

    cluster.now = at(5);
    let started = cluster.pass();
    assert_eq!(reasons(&started), ["BatchStarted"]);
    assert_eq!(cluster.status().batches[0].phase, BatchPhase::Running);
    assert_eq!(cluster.status().batches[0].start_time, Some(MicroTime(at(5))));
    // restartedAt is the run's persisted start, not the batch's: a repeated patch after a
    // crash is byte-identical.
    assert_eq!(
        started.restarts,
        vec![
            Restart {
                deployment: keys[0].clone(),
                restarted_at: "2026-11-26T18:26:29Z".to_owned(),
                restarted_by: "arcgis/refresh/1-01234567".to_owned(),
                record_annotation: "gisops.io/run-01234567".to_owned(),
                resource_version: cluster.deployments[&keys[0]]
                    .snapshot
                    .metadata
                    .resource_version
                    .clone(),
            },
            Restart {
                deployment: keys[1].clone(),
                restarted_at: "2026-11-26T18:26:29Z".to_owned(),
                restarted_by: "arcgis/refresh/1-01234567".to_owned(),
                record_annotation: "gisops.io/run-01234567".to_owned(),
                resource_version: cluster.deployments[&keys[1]]
                    .snapshot
                    .metadata
                    .resource_version
                    .clone(),
            },
        ]
    );
    assert_eq!(started.wake_at, Some(at(5) + SignedDuration::from_mins(10)));
    assert_eq!(started.awaiting, keys[..2].iter().cloned().collect());
    cluster.apply(&started);
    // The patches' outcomes get no status write of their own: the batch's start already
    // names each restart (its uid), and the next pass adopts it from the run mark.
    let services = &cluster.status().batches[0].services;
    assert_eq!((services[0].generation, services[0].message.as_deref()), (None, None));
    assert!(services[0].uid.is_some());
    cluster.now = at(6);
    let adopted = cluster.pass();
    assert!(adopted.restarts.is_empty(), "a restart the Deployment shows is not sent again");
    assert_eq!(&adopted.status, cluster.status(), "an adoption alone is not written");
    cluster.now = at(5) + MESSAGE_REFRESH;
    let refreshed = cluster.pass();
    let services = &refreshed.status.batches[0].services;
    assert_eq!(services[0].generation, Some(2), "it rides along with the next write");
    assert_eq!(services[0].message.as_deref(), Some(MESSAGE_RESTARTED));
}

#[test]
fn sub_second_clock_does_not_leak_into_whole_second_fields() {
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    cluster.add_many(1);
    cluster.now = at(0) + SignedDuration::from_millis(750);
    cluster.pass();
    let start = cluster.status().run.as_ref().and_then(|run| run.start_time.clone());
    assert_eq!(start, Some(Time(at(0))));
    cluster.now = at(1) + SignedDuration::from_nanos(1_234_567);
    cluster.pass();
    assert_eq!(
        cluster.status().batches[0].start_time,
        Some(MicroTime(at(1) + SignedDuration::from_micros(1_234))),
        "batch times keep microseconds, what the API server stores"
    );
}

#[test]
fn a_full_run_succeeds_and_is_recorded() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 2}));
    cluster.add_many(5);
    cluster.run_to_end();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(
        status.totals,
        Totals { services: 5, restarted: 5, ready: 5, failed: 0, skipped: 0 }
    );
    assert_eq!((status.progress.as_deref(), status.batch.as_deref()), (Some("5/5"), Some("3/3")));
    assert!(
        status
            .batches
            .iter()
            .all(|batch| batch.phase == BatchPhase::Completed && batch.end_time.is_some())
    );
    assert!(
        status
            .batches
            .iter()
            .all(|b| b.services.is_empty()
                && b.counts.as_ref().is_some_and(|counts| counts.ready > 0)),
        "completed batches keep counts, not rows"
    );
    assert_eq!(status.history.len(), 1);
    assert_eq!(status.history[0].phase, Phase::Succeeded);
    assert_eq!(status.history[0].number, 1);
    assert_eq!(
        condition(status, READY),
        ("True", "Succeeded", "Run 1 succeeded: 5 of 5 Deployments ready, 0 skipped")
    );
    assert_eq!(condition(status, RECONCILING).0, "False");
    assert_eq!(condition(status, STALLED).0, "False");
    assert!(cluster.template_changes.values().all(|&changes| changes == 1));
    assert_eq!(cluster.template_changes.len(), 5);
}

#[test]
fn a_decision_holds_a_run_slot_exactly_while_its_run_is_active() {
    // Admission counts slot holders by this: a resource that kept its slot after its run
    // ended would block every queued run, one that dropped it mid-run would let a second
    // run start beside it.
    let mut cluster = ModelCluster::new(json!({"selector": {}, "runOnCreate": false}));
    let keys = cluster.add_many(1);
    let idle = cluster.pass();
    assert!(!idle.holds_run_slot(), "no run yet");
    cluster.annotate(crate::crd::RUN_REQUESTED_AT_ANNOTATION, "now");
    let planned = cluster.pass();
    assert!(planned.holds_run_slot(), "a run planned");
    let restarting = cluster.pass();
    assert!(restarting.holds_run_slot(), "a run restarting");
    cluster.apply(&restarting);
    cluster.roll_out(&keys[0]);
    let ended = cluster.pass();
    assert_eq!(ended.status.phase, Some(Phase::Succeeded));
    assert!(!ended.holds_run_slot(), "the run ended");
}

#[test]
fn the_last_ready_service_starts_the_next_batch_in_the_same_pass() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 2}));
    let keys = cluster.add_many(4);
    cluster.pass();
    let first = cluster.pass();
    cluster.apply(&first);
    cluster.roll_out(&keys[0]);
    cluster.roll_out(&keys[1]);
    let next = cluster.pass();
    assert_eq!(reasons(&next), ["BatchCompleted", "BatchStarted"]);
    assert_eq!(
        next.restarts.iter().map(|restart| restart.deployment.clone()).collect::<Vec<_>>(),
        keys[2..].to_vec()
    );
}

#[test]
fn a_pass_with_nothing_new_returns_the_identical_status() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 2}));
    let keys = cluster.add_many(3);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);

    // Waiting on rollouts that have not progressed (within the message refresh: the
    // restarts adopted from their run marks ride along with the next write).
    let before = cluster.status().clone();
    cluster.now = at(3);
    let waiting = cluster.pass();
    assert_eq!(waiting.status, before);
    assert!(waiting.transitions.is_empty() && waiting.restarts.is_empty());

    // After the run.
    cluster.start_rollout(&keys[0]);
    cluster.run_to_end();
    let done = cluster.status().clone();
    cluster.now = at(3_600);
    let later = cluster.pass();
    assert_eq!(later.status, done);
    assert!(later.transitions.is_empty() && later.restarts.is_empty() && later.wake_at.is_none());
    assert!(later.awaiting.is_empty());
}

#[test]
fn waiting_messages_show_kubectls_text_and_change_at_most_every_few_seconds() {
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    let keys = cluster.add_many(1);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.start_rollout(&keys[0]);
    cluster.now = at(1);
    let early = cluster.pass();
    assert_eq!(
        early.status.batches[0].services[0].message.as_deref(),
        None,
        "within the refresh interval the status stays as written at the batch's start"
    );
    assert_eq!(early.wake_at, Some(at(0) + batches::MESSAGE_REFRESH));
    cluster.now = at(5);
    let refreshed = cluster.pass();
    assert_eq!(
        refreshed.status.batches[0].services[0].message.as_deref(),
        Some(
            "Waiting for deployment \"svc-00\" rollout to finish: 1 old replicas are pending termination..."
        )
    );
    assert_eq!(refreshed.status.batches[0].message_time, Some(MicroTime(at(5))));
    cluster.roll_out(&keys[0]);
    cluster.now = at(6);
    let ready = cluster.pass();
    assert_eq!(
        batch_results(&cluster, 1),
        [("svc-00".to_owned(), Some(ServiceResult::Ready), None)],
        "a Ready service keeps no message"
    );
    assert_eq!(ready.status.phase, Some(Phase::Succeeded));
}

#[test]
fn a_result_within_a_running_batch_waits_for_the_next_write() {
    // Writing each result alone would cost a status write per service: a Ready service whose
    // batch still rolls is written with the batch's end or the next message refresh.
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 2}));
    let keys = cluster.add_many(2);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.start_rollout(&keys[1]);
    cluster.roll_out(&keys[0]);
    let written = cluster.status().clone();
    cluster.now = at(1);
    let early = cluster.pass();
    assert_eq!(early.status, written, "nothing to write yet");
    assert!(early.transitions.is_empty(), "the result is announced when it is written");
    assert_eq!(early.wake_at, Some(at(0) + batches::MESSAGE_REFRESH));
    cluster.roll_out(&keys[1]);
    let done = cluster.pass();
    assert_eq!(done.status.batches[0].counts.as_ref().map(|counts| counts.ready), Some(2));
    assert!(
        batch_results(&cluster, 1)
            .iter()
            .all(|(_, result, _)| *result == Some(ServiceResult::Ready))
    );
}

#[test]
fn ten_failures_are_all_listed_and_nothing_more_is_promised() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 10}));
    let keys = cluster.add_many(10);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    for key in &keys {
        cluster.fail_rollout(key);
    }
    let ended = cluster.pass();
    assert_eq!(ended.status.phase, Some(Phase::Failed));
    let (_, _, message) = condition(&ended.status, READY);
    assert!(message.contains("10 of 10 Deployments failed"), "{message}");
    assert!(message.contains("svc-09"), "{message}");
    assert!(!message.contains("more"), "{message}");
}

#[test]
fn a_completed_batch_counts_its_skipped_and_failed_services() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 4}));
    let keys = cluster.add_many(4);
    cluster.deployment_mut(&keys[1]).paused = true;
    cluster.deployment_mut(&keys[3]).paused = true;
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.roll_out(&keys[0]);
    cluster.fail_rollout(&keys[2]);
    let completed = cluster.pass();
    let counts: Vec<(usize, usize, usize)> = completed
        .transitions
        .iter()
        .filter_map(|transition| match transition {
            Transition::BatchCompleted { ready, failed, skipped, .. } => {
                Some((*ready, *failed, *skipped))
            }
            _ => None,
        })
        .collect();
    assert_eq!(counts, [(1, 1, 2)]);
}

#[test]
fn a_first_message_and_a_stale_one_wait_for_the_refresh_never_for_the_past() {
    // One service would get its first waiting message now (it had none), another's changed
    // message waits for the refresh.
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 2}));
    let keys = cluster.add_many(2);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.start_rollout(&keys[0]);
    cluster.start_rollout(&keys[1]);
    let status = cluster.refresh.status.as_mut().expect("status");
    status.batches[0].services[0].message = None;
    cluster.now = at(2);
    let decision = cluster.pass();
    // Both wait for the refresh due since the batch's start; never a wake-up in the past.
    assert_eq!(decision.wake_at, Some(at(0) + batches::MESSAGE_REFRESH));
}

#[test]
fn deleted_deployments_are_gone_and_paused_ones_skipped() {
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    let keys = cluster.add_many(3);
    cluster.deployment_mut(&keys[1]).paused = true;
    cluster.pass();
    cluster.deployments.remove(&keys[2]);
    let decision = cluster.pass();
    assert_eq!(
        decision.restarts.iter().map(|r| r.deployment.clone()).collect::<Vec<_>>(),
        vec![keys[0].clone()]
    );
    cluster.apply(&decision);
    cluster.run_to_end();
    assert_eq!(
        results(&cluster),
        vec![
            ("svc-00".to_owned(), Some(ServiceResult::Ready), None),
            ("svc-01".to_owned(), Some(ServiceResult::Skipped), Some(MESSAGE_PAUSED.to_owned())),
            ("svc-02".to_owned(), Some(ServiceResult::Gone), Some(MESSAGE_GONE.to_owned())),
        ]
    );
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Failed));
    assert_eq!(
        status.totals,
        Totals { services: 3, restarted: 1, ready: 1, failed: 1, skipped: 1 }
    );
    let (stalled, reason, message) = condition(status, STALLED);
    assert_eq!((stalled, reason), ("True", "RunFailed"));
    assert_eq!(
        message,
        "Run 1 failed: 1 of 3 Deployments failed: arcgis/svc-02: Gone: Deployment was deleted during the run"
    );
    assert_eq!(condition(status, READY), ("False", "RunFailed", message));
}

#[test]
fn batches_time_out_with_the_last_waiting_message() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchTimeout": "90s"}));
    let keys = cluster.add_many(2);
    cluster.pass();
    let restarting = cluster.pass();
    assert_eq!(restarting.wake_at, Some(at(90)));
    // One restart goes through, the other keeps failing transiently.
    cluster.patch(&restarting.restarts[0]);
    cluster.record(&[
        (keys[0].clone(), RestartOutcome::Patched { generation: 2 }),
        (keys[1].clone(), RestartOutcome::Transient("503".to_owned())),
    ]);
    cluster.start_rollout(&keys[0]);
    cluster.now = at(89);
    let waiting = cluster.pass();
    assert_eq!(waiting.restarts.len(), 1, "the transient failure is retried");
    assert_eq!(waiting.wake_at, Some(at(90)));
    cluster.now = at(90);
    let timed_out = cluster.pass();
    assert!(timed_out.restarts.is_empty());
    assert_eq!(
        results(&cluster),
        vec![
            (
                "svc-00".to_owned(),
                Some(ServiceResult::TimedOut),
                Some(
                    "not ready after spec.batchTimeout 90s: Waiting for deployment \"svc-00\" rollout to finish: \
                     1 old replicas are pending termination..."
                        .to_owned()
                )
            ),
            (
                "svc-01".to_owned(),
                Some(ServiceResult::TimedOut),
                Some("not restarted within spec.batchTimeout 90s: the restart patch has not succeeded \
                      (see the operator's log for the API errors)".to_owned())
            ),
        ]
    );
    assert_eq!(timed_out.status.phase, Some(Phase::Failed));
    assert_eq!(
        condition(&timed_out.status, crate::engine::conditions::BATCH_TIMEOUT_SHORT),
        (
            "True",
            "RolloutsOutlastTimeout",
            "1 rollout was still progressing when spec.batchTimeout 90s ran out and recorded \
             TimedOut; the slowest rollout takes longer than that: raise spec.batchTimeout"
        ),
        "svc-00 rolled, svc-01 never started: only the first says the timeout is short"
    );
    assert_eq!(timed_out.status.totals.restarted, 1);
    assert_eq!(timed_out.wake_at, None);
    assert_eq!(
        timed_out.awaiting,
        [keys[0].clone()].into(),
        "the timed-out rollout still rolls, and its end must be heard"
    );
}

#[test]
fn the_short_timeout_warning_counts_rollouts_cut_short_in_earlier_and_running_batches() {
    let mut cluster =
        ModelCluster::new(json!({"selector": {}, "batchSize": 3, "batchTimeout": "90s"}));
    let keys = cluster.add_many(6);
    cluster.pass();
    let first = cluster.pass();
    assert_eq!(first.restarts.len(), 3);
    // Two rollouts outlast the timeout; the third restart never goes through.
    for restart in &first.restarts[..2] {
        cluster.patch(restart);
    }
    cluster.record(&[
        (keys[0].clone(), RestartOutcome::Patched { generation: 2 }),
        (keys[1].clone(), RestartOutcome::Patched { generation: 2 }),
        (keys[2].clone(), RestartOutcome::Transient("503".to_owned())),
    ]);
    cluster.start_rollout(&keys[0]);
    cluster.start_rollout(&keys[1]);
    cluster.now = at(90);
    cluster.pass();
    // The next batch waits for the rollouts still in flight, then starts.
    cluster.roll_out(&keys[0]);
    cluster.roll_out(&keys[1]);
    let second = cluster.pass();
    assert!(!second.restarts.is_empty(), "the second batch starts");
    cluster.apply(&second);
    for key in &keys[3..] {
        cluster.start_rollout(key);
    }
    // A rollout of the running batch already recorded as cut short, as a pass of an operator
    // that stopped before the batch ended left it.
    let status = cluster.refresh.status.as_mut().expect("status");
    let running = status.batches.last_mut().expect("the second batch");
    assert_eq!(running.phase, BatchPhase::Running);
    let row = &mut running.services[0];
    row.result = Some(ServiceResult::TimedOut);
    row.reason = Some(reason::ROLLOUT_TIMED_OUT.to_owned());
    row.message = Some("not ready after spec.batchTimeout 90s: still rolling".to_owned());
    cluster.now = at(100);
    let decision = cluster.pass();
    assert_eq!(
        condition(&decision.status, crate::engine::conditions::BATCH_TIMEOUT_SHORT).2,
        "3 rollouts were still progressing when spec.batchTimeout 90s ran out and recorded \
         TimedOut; the slowest rollout takes longer than that: raise spec.batchTimeout",
        "two of the first batch (the restart never sent is not one), one of the running batch"
    );
}

#[test]
fn timeouts_are_exact_to_the_millisecond_and_never_preempt_the_restarts() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchTimeout": "5s500ms"}));
    let keys = cluster.add_many(1);
    cluster.pass();
    cluster.now = at(0) + SignedDuration::from_millis(900);
    let restarting = cluster.pass();
    assert_eq!(restarting.restarts.len(), 1, "the batch's start sends its restarts");
    cluster.apply(&restarting);
    cluster.start_rollout(&keys[0]);
    cluster.now = at(0) + SignedDuration::from_millis(6_399);
    assert_eq!(
        cluster.pass().status.batches[0].services[0].result,
        None,
        "1 ms before the deadline"
    );
    cluster.now = at(0) + SignedDuration::from_millis(6_400);
    let timed_out = cluster.pass();
    let service = &timed_out.status.batches[0].services[0];
    assert_eq!(service.result, Some(ServiceResult::TimedOut));
    assert!(
        service
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("not ready after spec.batchTimeout 5s500ms:")),
        "{:?}",
        service.message
    );
}

#[test]
fn restart_outcomes_are_recorded() {
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    let keys = cluster.add_many(4);
    cluster.pass();
    cluster.pass();
    let finished = cluster.record(&[
        (keys[0].clone(), RestartOutcome::Patched { generation: 7 }),
        (keys[1].clone(), RestartOutcome::NotFound),
        (
            keys[2].clone(),
            RestartOutcome::Rejected("admission webhook denied the request".to_owned()),
        ),
        (keys[3].clone(), RestartOutcome::Transient("connection reset".to_owned())),
        (ObjectKey::new(NS, "unplanned"), RestartOutcome::NotFound),
    ]);
    assert_eq!(finished.len(), 2, "Gone and Failed are results; the rest are not yet");
    let services = &cluster.status().batches[0].services;
    assert_eq!(
        (services[0].generation, services[0].result),
        (None, None),
        "a patch that went through is adopted by the next pass, not written on its own"
    );
    assert_eq!(
        (services[1].result, services[1].message.as_deref()),
        (Some(ServiceResult::Gone), Some(MESSAGE_GONE))
    );
    assert_eq!(
        (services[2].result, services[2].message.as_deref()),
        (
            Some(ServiceResult::Failed),
            Some("restart rejected: admission webhook denied the request")
        )
    );
    assert_eq!((services[3].result, services[3].generation), (None, None));
    assert_eq!(
        cluster.status().totals,
        Totals { services: 4, restarted: 0, ready: 0, failed: 2, skipped: 0 }
    );
}

#[test]
fn history_keeps_the_ten_newest_runs() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "trigger": "0"}));
    cluster.add_many(1);
    for round in 1..=12 {
        // An hour apart: twelve trigger changes within one would be a restart storm.
        cluster.now += jiff::SignedDuration::from_hours(1);
        cluster.refresh.spec.trigger = Some(round.to_string());
        cluster.run_to_end();
    }
    let history = &cluster.status().history;
    assert_eq!(history.len(), MAX_HISTORY);
    assert_eq!(history[0].id, "arcgis/refresh/12-01234567");
    assert_eq!(history[9].id, "arcgis/refresh/3-01234567");
}

#[test]
fn the_deployment_list_may_hold_unrelated_objects() {
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    cluster.add_many(1);
    cluster.add("elsewhere", "x", 1);
    let mut nameless = DeploymentSnapshot::default();
    nameless.metadata.namespace = Some(NS.to_owned());
    let mut view = cluster.view();
    view.deployments.insert(ObjectKey::new(NS, ""), Arc::new(nameless));
    assert_eq!(cluster.pass_with(&view).status.totals.services, 1);
}

#[test]
fn a_completed_batch_counts_ready_services_and_groups_the_rest_by_cause() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "namespaces": ["arcgis", "gis"]}));
    cluster.allow_cross_namespace();
    let keys = cluster.add_many(2);
    cluster.add("gis", "svc-x", 1);
    cluster.pass();
    let first = cluster.pass();
    cluster.apply(&first);
    cluster.fail_rollout(&keys[1]);
    cluster.roll_out_all();
    cluster.fail_rollout(&keys[1]);
    let done = cluster.pass();
    let batch = &done.status.batches[0];
    assert_eq!(
        batch.counts,
        Some(crate::crd::BatchCounts { ready: 2, restarted: 3, failed: 1, skipped: 0 })
    );
    assert!(batch.services.is_empty(), "no row of a completed batch but those still in flight");
    assert_eq!(done.status.results.len(), 1);
    let failed = &done.status.results[0];
    assert_eq!(
        (failed.result, failed.reason.as_str()),
        (ServiceResult::Failed, "ProgressDeadlineExceeded")
    );
    assert_eq!((failed.count, failed.positions.as_str()), (1, "1"));
    assert_eq!(failed.examples, ["svc-01"]);
    let view = cluster.run_view();
    let names: Vec<String> =
        view.batches[0].services.iter().map(|service| service.key.to_string()).collect();
    assert_eq!(names, ["arcgis/svc-00", "arcgis/svc-01", "gis/svc-x"], "plan order");
    assert_eq!(done.status.totals.ready, 2);
    assert_eq!(done.status.progress.as_deref(), Some("2/3"));
}

#[test]
fn five_thousand_services_fit_the_status_budget() {
    let mut cluster =
        ModelCluster::new(json!({"selector": {}, "batchSize": 100, "batchTimeout": "1m"}));
    for i in 0..5_000 {
        cluster.add(NS, &format!("arcgis-service-{i:04}-mapserver-0123456789"), 1);
    }
    cluster.pass();
    // The first batch never rolls out and times out, which puts long messages in the status.
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.now = at(61);
    cluster.pass();
    cluster.run_to_end();
    let status = cluster.status();
    assert_eq!(
        status.totals,
        Totals { services: 5_000, restarted: 5_000, ready: 4_900, failed: 100, skipped: 0 }
    );
    let size = serde_json::to_vec(status).expect("status serializes").len();
    assert!(size < 512 * 1024, "status is {size} bytes");
    let message = status.run.as_ref().and_then(|run| run.message.as_deref()).unwrap_or_default();
    assert!(message.ends_with("; and 90 more"), "{message}");
}

#[test]
fn the_admin_job_ledger_is_carried_through_every_pass_unchanged() {
    // status.jobs belongs to the admin job API: the engine builds each status from the
    // observed one and must hand it back untouched, run after run.
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 1}));
    cluster.add_many(2);
    let jobs: Vec<crate::crd::AdminJob> = serde_json::from_value(json!([
        {"id": "j018bcfe568007abc8bccddeeff001122", "username": "alice",
         "submitTime": "2023-11-14T22:13:20.000000Z"},
        {"id": "j018bcfe567007fee9eddccbbaa998877", "username": "bob",
         "submitTime": "2023-11-14T22:13:19.744000Z", "withdrawTime": "2023-11-14T22:13:21.000000Z"},
    ]))
    .expect("jobs");
    cluster.refresh.status.get_or_insert_default().jobs = jobs.clone();
    cluster.run_to_end();
    assert_eq!(cluster.status().jobs, jobs);
    for value in ["a", "b"] {
        cluster.annotate(crate::crd::RUN_REQUESTED_AT_ANNOTATION, value);
        cluster.run_to_end();
        assert_eq!(cluster.status().jobs, jobs, "after the run requested with {value}");
    }
    assert!(cluster.status().history.len() >= 3);
}

#[test]
fn ten_thousand_failures_with_the_longest_names_fit_the_status_budget() {
    // The worst case the status must survive: every service of a large fleet fails, with
    // names as long as Kubernetes allows and messages that differ from service to service.
    let mut cluster =
        ModelCluster::new(json!({"selector": {}, "batchSize": 100, "batchTimeout": "1m"}));
    let keys: Vec<ObjectKey> = (0..10_000)
        .map(|i| {
            let name = format!("{i:05}-{}", "x".repeat(247));
            // Replica counts vary, so the kubectl messages (and their numbers) vary too.
            cluster.add(NS, &name, 1 + (i % 7))
        })
        .collect();
    cluster.pass();
    let mut largest = 0;
    for _ in 0..100 {
        let decision = cluster.pass();
        cluster.apply(&decision);
        for key in &keys {
            if cluster.deployments[key].snapshot.generation() == 2 {
                cluster.start_rollout(key);
            }
        }
        cluster.now += SignedDuration::from_secs(61);
        largest = largest.max(serde_json::to_vec(cluster.status()).expect("serializes").len());
    }
    cluster.pass();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Failed));
    assert_eq!(status.totals.failed, 10_000);
    let size = serde_json::to_vec(status).expect("status serializes").len();
    largest = largest.max(size);
    eprintln!("status of 10,000 failed services: {size} bytes at the end, {largest} at most");
    assert!(largest < 512 * 1024, "the status reached {largest} bytes");
    // Every failed service is still named, through the plan.
    let view = cluster.run_view();
    assert_eq!(view.failures().len(), 10_000);
}

#[test]
fn a_batch_whose_every_service_is_skipped_is_not_announced_as_started() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 2}));
    let keys = cluster.add_many(4);
    cluster.deployment_mut(&keys[0]).paused = true;
    cluster.deployment_mut(&keys[1]).paused = true;
    cluster.pass();
    let first = cluster.pass();
    let notes = super::events(&first);
    let started: Vec<&str> = notes
        .iter()
        .filter(|note| note.reason.as_str() == "BatchStarted")
        .map(|note| note.message.as_str())
        .collect();
    assert_eq!(started, ["Batch 2 of 2 started: 2 Deployments"], "batch 1 restarted nothing");
    let skipped = notes.iter().find(|note| note.reason.as_str() == "BatchCompleted");
    assert_eq!(
        skipped.map(|note| note.message.as_str()),
        Some("Batch 1 of 2 skipped: 2 Deployments, none restarted")
    );
}

#[test]
fn a_run_of_more_batches_than_the_status_keeps_ends() {
    // Completing a batch folds the oldest ones into `earlierBatches` once more than 100 are
    // kept; the pass goes on with the right batch.
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 1}));
    cluster.add_many(103);
    cluster.run_to_end();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(status.totals.ready, 103);
    assert!(status.batches.len() <= 100 && status.earlier_batches.is_some());
}

#[test]
fn a_run_whose_plan_was_deleted_waits_out_the_cache_lag_then_skips_what_it_cannot_name() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 2}));
    let keys = cluster.add_many(5);
    cluster.pass();
    let first = cluster.pass();
    cluster.apply(&first);
    cluster.roll_out(&keys[0]);
    cluster.roll_out(&keys[1]);
    // The plan objects are gone from the caches: maybe not seen yet, maybe deleted.
    cluster.plans.clear();
    cluster.now = at(10);
    let waiting = cluster.pass();
    assert!(waiting.restarts.is_empty());
    assert_eq!(waiting.status.phase, Some(Phase::Running));
    assert_eq!(waiting.wake_at, Some(at(11)), "looks again each second");
    cluster.now = at(29);
    assert_eq!(cluster.pass().wake_at, Some(at(30)), "until the caches' lag is over");
    // 30 s after the run started, a plan written before the status would have been seen.
    cluster.now = at(30);
    let ended = cluster.pass();
    assert!(ended.restarts.is_empty());
    let lost: Vec<(ServiceResult, &str, u32, &str)> = ended
        .status
        .results
        .iter()
        .map(|group| (group.result, group.reason.as_str(), group.count, group.positions.as_str()))
        .collect();
    assert_eq!(lost, [(ServiceResult::Skipped, "PlanLost", 3, "2-4")]);
    assert_ne!(ended.status.phase, Some(Phase::Running), "the run ended");
}
