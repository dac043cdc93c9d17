//! Unit tests of the run state machine, one rule at a time.

use std::sync::Arc;

use jiff::SignedDuration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use serde_json::json;

use super::test_support::{ModelCluster, NS, at};
use super::*;
use crate::crd::{
    BatchPhase, CANCEL_REQUESTED_AT_ANNOTATION, Phase, RUN_REQUESTED_AT_ANNOTATION, ServiceResult,
    Totals,
};
use crate::engine::DeploymentSnapshot;
use crate::engine::conditions::{READY, RECONCILING, TRIGGER_KEYS_MISSING};
use crate::engine::transitions::{EventSeverity, Transition};

fn condition<'a>(status: &'a ServiceRefreshStatus, type_: &str) -> (&'a str, &'a str, &'a str) {
    let condition = conditions::find(&status.conditions, type_).expect("condition present");
    (condition.status.as_str(), condition.reason.as_str(), condition.message.as_str())
}

fn reasons(decision: &Decision) -> Vec<&'static str> {
    decision
        .transitions
        .iter()
        .filter_map(Transition::event)
        .map(|event| event.reason.as_str())
        .collect()
}

fn events(decision: &Decision) -> Vec<crate::engine::EventNote> {
    decision.transitions.iter().filter_map(Transition::event).collect()
}

fn results(status: &ServiceRefreshStatus) -> Vec<(String, Option<ServiceResult>, Option<String>)> {
    status
        .batches
        .iter()
        .flat_map(|batch| batch.all_services(NS))
        .map(|service| (service.name.clone(), service.result, service.message.clone()))
        .collect()
}

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
    assert_eq!(status.batches.len(), 2);
    assert!(status.batches.iter().all(|batch| batch.phase == BatchPhase::Pending));
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
    let services = &cluster.status().batches[0].services;
    assert_eq!(services[0].generation, Some(2));
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
        status.batches.iter().all(|b| b.services.is_empty() && !b.ready.is_empty()),
        "Ready services are folded"
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

    // Waiting on rollouts that have not progressed.
    let before = cluster.status().clone();
    cluster.now = at(30);
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
        Some(MESSAGE_RESTARTED),
        "within the refresh interval the status stays as written"
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
    assert_eq!(ready.status.batches[0].ready, ["svc-00"], "a Ready service keeps no message");
    assert_eq!(ready.status.phase, Some(Phase::Succeeded));
}

#[test]
fn reapplying_an_unchanged_spec_starts_nothing() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "trigger": "v1"}));
    cluster.add_many(2);
    cluster.run_to_end();
    let done = cluster.status().clone();

    // A GitOps tool re-applies, another field changes: generation moves, trigger does not.
    cluster.refresh.metadata.generation = Some(2);
    cluster.refresh.spec.batch_size = 5;
    let after = cluster.pass();
    assert!(after.restarts.is_empty() && after.transitions.is_empty());
    assert_eq!(after.status.run, done.run);
    assert_eq!(after.status.phase, Some(Phase::Succeeded));
    assert_eq!(after.status.observed_generation, Some(2));
    assert_eq!(cluster.pass().status, after.status);
}

#[test]
fn trigger_changes_during_a_run_coalesce_into_one_follow_up() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 1, "trigger": "v1"}));
    cluster.add_many(3);
    cluster.pass();

    cluster.refresh.spec.trigger = Some("v2".to_owned());
    let during = cluster.pass();
    cluster.apply(&during);
    assert_eq!(cluster.status().run.as_ref().map(|run| run.number), Some(1));
    assert_eq!(
        condition(cluster.status(), RECONCILING).2,
        "batch 1 of 3; a follow-up run (TriggerChanged) starts when this run ends"
    );
    cluster.refresh.spec.trigger = Some("v3".to_owned());
    cluster.annotate(RUN_REQUESTED_AT_ANNOTATION, "now");

    cluster.deny_run_slot(vec![]);
    cluster.run_to_end();
    let ended = cluster.status();
    assert_eq!(ended.run.as_ref().map(|run| run.number), Some(1));
    assert_eq!(ended.phase, Some(Phase::Pending), "the follow-up is due");
    assert_eq!(
        condition(ended, RECONCILING),
        (
            "True",
            "Queued",
            "a run (TriggerChanged) is waiting for a free run slot; runs are serialized cluster-wide"
        )
    );

    cluster.run_slot = RunSlot::Granted;
    let follow_up = cluster.pass();
    assert_eq!(reasons(&follow_up), ["RunStarted"]);
    let run = follow_up.status.run.as_ref().expect("run");
    assert_eq!((run.number, run.reason.as_str()), (2, "TriggerChanged"));
    assert_eq!(run.request.as_deref(), Some("now"));
    assert_eq!(
        follow_up.status.triggers.token_digest,
        Some(crate::engine::plan::trigger_digest("v3"))
    );
    assert_eq!(follow_up.status.triggers.run_requested_at.as_deref(), Some("now"));
    cluster.run_to_end();
    assert_eq!(cluster.status().run.as_ref().map(|run| run.number), Some(2));
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
    assert_eq!(cluster.status().history.len(), 2);
    assert_eq!(cluster.status().history[0].request.as_deref(), Some("now"));
    assert!(cluster.pass().transitions.is_empty(), "no third run");
}

#[test]
fn run_requested_annotation_starts_a_run_and_removal_does_not() {
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    cluster.add_many(1);
    cluster.run_to_end();
    cluster.annotate(RUN_REQUESTED_AT_ANNOTATION, "2026-11-26T19:00:00Z");
    let requested = cluster.pass();
    let run = requested.status.run.as_ref().expect("run");
    assert_eq!(run.reason, "RunRequested");
    assert_eq!(run.request.as_deref(), Some("2026-11-26T19:00:00Z"));
    cluster.run_to_end();
    cluster.refresh.metadata.annotations = None;
    cluster.refresh.spec.trigger = None;
    assert!(cluster.pass().transitions.is_empty());
    assert_eq!(cluster.status().run.as_ref().map(|run| run.number), Some(2));
}

#[test]
fn without_a_run_slot_the_run_waits_queued_and_names_the_holders() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "trigger": "t"}));
    cluster.add_many(1);
    cluster.deny_run_slot(vec![crate::engine::SlotHolder {
        key: ObjectKey::new("gis", "other"),
        suspended: true,
    }]);
    let queued = cluster.pass();
    assert!(queued.wants_run_slot);
    assert!(queued.restarts.is_empty() && queued.transitions.is_empty());
    assert_eq!(queued.wake_at, Some(at(0) + crate::engine::QUEUED_RECHECK));
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Pending));
    assert!(status.run.is_none());
    assert_eq!(
        status.triggers.token_digest, None,
        "triggers are recorded only when the run starts"
    );
    assert_eq!(
        condition(status, RECONCILING),
        (
            "True",
            "Queued",
            "a run (Created) is waiting for a free run slot; runs are serialized cluster-wide; \
             slots held by gis/other (suspended)"
        )
    );
    assert_eq!(cluster.pass().status, queued.status);

    cluster.run_slot = RunSlot::Granted;
    let started = cluster.pass();
    assert!(!started.wants_run_slot);
    assert_eq!(cluster.status().phase, Some(Phase::Running));
    assert_eq!(
        cluster.status().triggers.token_digest,
        Some(crate::engine::plan::trigger_digest("t"))
    );
}

#[test]
fn a_stale_deployment_right_after_the_patch_is_not_ready() {
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    let keys = cluster.add_many(1);
    cluster.pass();
    let stale = cluster.view();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    assert_eq!(cluster.status().batches[0].services[0].generation, Some(2));

    // The cache still shows generation 1, fully rolled out, no annotations.
    let decision = cluster.pass_with(&stale);
    assert_eq!(decision.status.batches[0].services[0].result, None);
    assert_eq!(decision.restarts, vec![]);

    // Observed but still rolling.
    cluster.start_rollout(&keys[0]);
    assert_eq!(cluster.pass().status.batches[0].services[0].result, None);
    cluster.roll_out(&keys[0]);
    assert_eq!(cluster.pass().status.batches[0].ready, ["svc-00"]);
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
    let mut cluster = fresh;
    let adopted = cluster.pass();
    assert!(adopted.restarts.is_empty());
    assert_eq!(adopted.status.batches[0].services[0].generation, Some(2));
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
    let status = cluster.status();
    assert_eq!(
        results(status),
        vec![
            ("svc-00".to_owned(), Some(ServiceResult::Ready), None),
            ("svc-01".to_owned(), Some(ServiceResult::Skipped), Some(MESSAGE_PAUSED.to_owned())),
            ("svc-02".to_owned(), Some(ServiceResult::Gone), Some(MESSAGE_GONE.to_owned())),
        ]
    );
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
fn a_deployment_deleted_after_its_restart_is_gone_not_timed_out() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchTimeout": "1m"}));
    let keys = cluster.add_many(1);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.deployments.remove(&keys[0]);
    cluster.now = at(120);
    let gone = cluster.pass();
    assert_eq!(
        results(&gone.status),
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
        results(&replaced.status),
        vec![("svc-00".to_owned(), Some(ServiceResult::Gone), Some(MESSAGE_REPLACED.to_owned()))]
    );
}

#[test]
fn suspend_holds_the_next_batch_but_lets_the_current_one_finish() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 1}));
    let keys = cluster.add_many(2);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.refresh.spec.suspend = true;
    assert_eq!(cluster.pass().status.phase, Some(Phase::Running), "the batch in progress goes on");
    cluster.roll_out(&keys[0]);
    let held = cluster.pass();
    assert_eq!(reasons(&held), ["BatchCompleted", "Suspended"]);
    assert_eq!(held.status.phase, Some(Phase::Suspended));
    assert_eq!(held.status.batches[1].phase, BatchPhase::Pending);
    assert!(held.restarts.is_empty() && held.wake_at.is_none());
    assert_eq!(
        condition(&held.status, RECONCILING),
        ("True", "Suspended", "suspended by spec.suspend before batch 2 of 2")
    );
    assert_eq!(cluster.pass().status, held.status);

    cluster.refresh.spec.suspend = false;
    let resumed = cluster.pass();
    assert_eq!(reasons(&resumed), ["BatchStarted"]);
    assert_eq!(resumed.restarts.len(), 1);
    assert_eq!(resumed.status.phase, Some(Phase::Running));
    cluster.apply(&resumed);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
}

#[test]
fn dry_run_restarts_nothing_and_succeeds_at_once() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 2, "dryRun": true}));
    cluster.add_many(3);
    let decision = cluster.pass();
    assert!(decision.restarts.is_empty());
    assert_eq!(reasons(&decision), ["RunStarted", "RunSucceeded"]);
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert!(status.run.as_ref().is_some_and(|run| run.dry_run && run.end_time.is_some()));
    assert!(status.batches.iter().all(|batch| batch.phase == BatchPhase::Completed));
    assert!(
        results(status).iter().all(|(_, result, message)| *result == Some(ServiceResult::Skipped)
            && message.as_deref() == Some(MESSAGE_DRY_RUN))
    );
    assert_eq!(status.totals.skipped, 3);
    assert_eq!(condition(status, READY).0, "True");
    let finished = decision
        .transitions
        .iter()
        .filter(|transition| matches!(transition, Transition::ServiceFinished { .. }))
        .count();
    assert_eq!(finished, 3, "every planned service reports its result once");
}

#[test]
fn a_selection_that_matches_nothing_fails_and_says_what_it_was() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {"matchLabels": {"app": "none"}},
        "namePatterns": ["arcgis-*"],
    }));
    cluster.add_many(2);
    let decision = cluster.pass();
    assert_eq!(reasons(&decision), ["RunStarted", "RunFailed"]);
    assert_eq!(decision.status.phase, Some(Phase::Failed));
    assert_eq!(
        (decision.status.progress.as_deref(), decision.status.batch.as_deref()),
        (Some("0/0"), Some("0/0"))
    );
    let message = "Run 1 failed: nothing selected: no Deployment matched the selector app=none \
                   in namespace(s) arcgis, name patterns arcgis-*";
    assert_eq!(condition(&decision.status, STALLED), ("True", "NothingSelected", message));
    assert_eq!(condition(&decision.status, READY).0, "False");
    assert_eq!(decision.status.history[0].phase, Phase::Failed);
    assert_eq!(cluster.pass().status, decision.status, "settled");
}

#[test]
fn excluded_names_that_match_nothing_are_reported() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "exclude": ["svc-01", "svc-typo"]}));
    cluster.add_many(2);
    let decision = cluster.pass();
    let warnings: Vec<_> = events(&decision)
        .into_iter()
        .filter(|event| event.severity == EventSeverity::Warning)
        .collect();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].reason.as_str(), "ExcludeUnmatched");
    assert_eq!(
        warnings[0].message,
        "spec.exclude names no Deployment in namespace(s) arcgis: svc-typo"
    );
    let message = decision.status.run.as_ref().and_then(|run| run.message.clone());
    assert_eq!(
        message.as_deref(),
        Some("ServiceRefresh created; spec.exclude names no existing Deployment: svc-typo")
    );
    assert_eq!(decision.status.totals.services, 1);
}

#[test]
fn abort_skips_every_batch_not_started() {
    let mut cluster =
        ModelCluster::new(json!({"selector": {}, "batchSize": 2, "failurePolicy": "Abort"}));
    let keys = cluster.add_many(5);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.fail_rollout(&keys[0]);
    cluster.roll_out(&keys[1]);
    let aborted = cluster.pass();
    assert!(aborted.restarts.is_empty());
    assert_eq!(reasons(&aborted), ["BatchCompleted", "RunFailed"]);
    assert_eq!(events(&aborted)[0].severity, EventSeverity::Warning);
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Failed));
    let skipped = "not started: run aborted after failures in batch 1".to_owned();
    assert_eq!(
        results(status),
        vec![
            (
                "svc-00".to_owned(),
                Some(ServiceResult::Failed),
                Some("deployment \"svc-00\" exceeded its progress deadline".to_owned())
            ),
            ("svc-01".to_owned(), Some(ServiceResult::Ready), None),
            ("svc-02".to_owned(), Some(ServiceResult::Skipped), Some(skipped.clone())),
            ("svc-03".to_owned(), Some(ServiceResult::Skipped), Some(skipped.clone())),
            ("svc-04".to_owned(), Some(ServiceResult::Skipped), Some(skipped)),
        ]
    );
    assert!(status.batches.iter().skip(1).all(|batch| batch.start_time.is_none()));
    assert_eq!(
        status.totals,
        Totals { services: 5, restarted: 2, ready: 1, failed: 1, skipped: 3 }
    );
    assert_eq!(condition(status, STALLED).1, "RunFailed");
}

#[test]
fn continue_goes_on_after_a_failure() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 1}));
    let keys = cluster.add_many(2);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.fail_rollout(&keys[0]);
    let next = cluster.pass();
    assert_eq!(reasons(&next), ["BatchCompleted", "BatchStarted"]);
    cluster.apply(&next);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Failed));
    assert_eq!(cluster.status().totals.ready, 1);
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
        results(&timed_out.status),
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
    assert_eq!(timed_out.status.totals.restarted, 1);
    assert_eq!(timed_out.wake_at, None);
    assert_eq!(
        timed_out.awaiting,
        [keys[0].clone()].into(),
        "the timed-out rollout still rolls, and its end must be heard"
    );
}

#[test]
fn sub_second_timeouts_are_exact_and_never_preempt_the_restarts() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchTimeout": "500ms"}));
    let keys = cluster.add_many(1);
    cluster.pass();
    cluster.now = at(0) + SignedDuration::from_millis(900);
    let restarting = cluster.pass();
    assert_eq!(restarting.restarts.len(), 1, "the batch's start sends its restarts");
    cluster.apply(&restarting);
    cluster.start_rollout(&keys[0]);
    cluster.now = at(0) + SignedDuration::from_millis(1_399);
    assert_eq!(
        cluster.pass().status.batches[0].services[0].result,
        None,
        "1 ms before the deadline"
    );
    cluster.now = at(0) + SignedDuration::from_millis(1_400);
    let timed_out = cluster.pass();
    let service = &timed_out.status.batches[0].services[0];
    assert_eq!(service.result, Some(ServiceResult::TimedOut));
    assert!(
        service
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("not ready after spec.batchTimeout 500ms:")),
        "{:?}",
        service.message
    );
}

#[test]
fn an_invalid_spec_stalls_and_holds_the_active_run() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchTimeout": "10x"}));
    cluster.add_many(2);
    let stalled = cluster.pass();
    assert!(stalled.restarts.is_empty());
    assert_eq!(reasons(&stalled), ["InvalidSpec"]);
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Failed));
    assert!(status.run.is_none());
    assert_eq!(
        condition(status, STALLED),
        (
            "True",
            "InvalidSpec",
            r#"spec.batchTimeout "10x" is not a duration such as 90s, 10m or 1h30m"#
        )
    );
    assert_eq!(condition(status, READY).0, "False");
    assert_eq!(condition(status, RECONCILING).0, "False");
    let again = cluster.pass();
    assert!(again.transitions.is_empty(), "the stall is announced once");
    assert_eq!(again.status, stalled.status);

    cluster.refresh.spec.batch_timeout = "10m".to_owned();
    cluster.pass();
    assert_eq!(cluster.status().phase, Some(Phase::Running));

    cluster.refresh.spec.selector.match_expressions =
        Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
            key: "app".to_owned(),
            operator: "Foo".to_owned(),
            values: None,
        }]);
    let held = cluster.pass();
    assert!(held.restarts.is_empty());
    assert_eq!(held.status.phase, Some(Phase::Running), "the active run holds where it is");
    assert_eq!(held.status.batches, cluster.status().batches);
    assert_eq!(
        condition(&held.status, STALLED).2,
        r#"spec.selector.matchExpressions[0].operator: "Foo" is not one of In, NotIn, Exists, DoesNotExist"#
    );
    cluster.refresh.spec.selector.match_expressions = None;
    assert_eq!(cluster.pass().restarts.len(), 2, "resumes once fixed");
}

#[test]
fn other_namespaces_are_refused_unless_the_operator_allows_them() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "namespaces": ["kube-system"]}));
    cluster.add("kube-system", "coredns", 2);
    let refused = cluster.pass();
    assert!(refused.restarts.is_empty() && refused.status.run.is_none());
    assert_eq!(reasons(&refused), ["CrossNamespaceRefused"]);
    assert_eq!(condition(&refused.status, STALLED).1, "CrossNamespaceRefused");
    assert!(condition(&refused.status, STALLED).2.contains("--allow-cross-namespace"));
    assert_eq!(refused.status.phase, Some(Phase::Failed));

    cluster.allow_cross_namespace();
    cluster.pass();
    let restarting = cluster.pass();
    assert_eq!(restarting.restarts[0].deployment, ObjectKey::new("kube-system", "coredns"));
}

#[test]
fn a_namespace_the_operator_does_not_watch_is_reported_not_found_empty() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {},
        "namespaces": ["other"],
        "configMapTriggers": [{"name": "proxy", "namespace": "other"}],
    }));
    cluster.scope = crate::engine::OperatorScope {
        watch_namespace: Some(NS.to_owned()),
        allow_cross_namespace: true,
    };
    let refused = cluster.pass();
    assert_eq!(condition(&refused.status, STALLED).1, "NamespaceNotWatched");
    assert_eq!(
        condition(&refused.status, STALLED).2,
        "spec.namespaces[0]: the operator watches only namespace \"arcgis\" (--watch-namespace), \
         so it cannot see anything in namespace \"other\""
    );
    assert_ne!(refused.status.phase, Some(Phase::Succeeded));
}

#[test]
fn config_map_triggers_record_baselines_start_runs_and_stall_when_missing() {
    let mut cluster =
        ModelCluster::new(json!({"selector": {}, "configMapTriggers": [{"name": "proxy"}]}));
    cluster.add_many(1);
    let missing = cluster.pass();
    assert!(missing.status.run.is_none());
    assert_eq!(
        condition(&missing.status, STALLED),
        (
            "True",
            "ConfigMapNotFound",
            "ConfigMap arcgis/proxy does not exist; create it or remove it from spec.configMapTriggers"
        )
    );
    assert_eq!(missing.status.phase, Some(Phase::Pending));

    cluster.set_config_map(NS, "proxy", &[("proxy", "http://p:3128")]);
    cluster.run_to_end();
    let first_digest = cluster.status().triggers.config_maps[0].hash.clone();

    // A newly watched ConfigMap only records its baseline.
    cluster
        .refresh
        .spec
        .config_map_triggers
        .push(serde_json::from_value(json!({"name": "certs"})).expect("trigger"));
    cluster.set_config_map(NS, "certs", &[("ca.crt", "x")]);
    let baseline = cluster.pass();
    assert!(baseline.transitions.is_empty());
    assert_eq!(baseline.status.run.as_ref().map(|run| run.number), Some(1));
    assert_eq!(baseline.status.triggers.config_maps.len(), 2);
    assert_eq!(cluster.pass().status, baseline.status);

    cluster.set_config_map(NS, "proxy", &[("proxy", "http://q:3128")]);
    let changed = cluster.pass();
    let run = changed.status.run.as_ref().expect("run");
    assert_eq!((run.number, run.reason.as_str()), (2, "ConfigMapChanged"));
    assert_eq!(run.message.as_deref(), Some("ConfigMap arcgis/proxy changed"));
    assert_ne!(
        changed.status.triggers.config_maps[1].hash, first_digest,
        "the new content is recorded"
    );
    cluster.run_to_end();
    assert!(cluster.pass().transitions.is_empty(), "a recorded change starts no second run");

    // Deleted after the run: stalled, nothing starts; recreated with new content: a run.
    cluster.delete_config_map(NS, "proxy");
    let gone = cluster.pass();
    assert_eq!(reasons(&gone), ["ConfigMapNotFound"]);
    assert_eq!(gone.status.phase, Some(Phase::Succeeded));
    cluster.set_config_map(NS, "proxy", &[("proxy", "http://r:3128")]);
    assert_eq!(cluster.pass().status.run.as_ref().map(|run| run.number), Some(3));
}

#[test]
fn digests_of_an_earlier_format_are_replaced_without_a_run() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {}, "trigger": "v1", "configMapTriggers": [{"name": "proxy"}],
    }));
    cluster.add_many(1);
    cluster.set_config_map(NS, "proxy", &[("proxy", "http://p:3128")]);
    cluster.run_to_end();
    // What an earlier operator version wrote: the token itself and an unprefixed digest.
    let status = cluster.refresh.status.as_mut().expect("status");
    status.triggers.token_digest = None;
    status.triggers.token = Some("v1".to_owned());
    status.triggers.config_maps[0].hash = "4cf309c7eb48439e".to_owned();
    let upgraded = cluster.pass();
    assert!(upgraded.transitions.is_empty(), "no run: nothing changed but the format");
    assert!(!crate::engine::plan::is_legacy_digest(&upgraded.status.triggers.config_maps[0].hash));
    cluster.refresh.spec.trigger = Some("v2".to_owned());
    assert_eq!(reasons(&cluster.pass()), ["RunStarted"]);
    assert_eq!(cluster.status().triggers.token, None, "the legacy copy is dropped");
}

#[test]
fn a_long_trigger_is_recorded_as_a_fixed_size_digest() {
    let token = "x".repeat(1024);
    let mut cluster = ModelCluster::new(json!({"selector": {}, "trigger": token}));
    cluster.add_many(1);
    cluster.pass();
    let triggers = &cluster.status().triggers;
    assert_eq!(triggers.token, None);
    assert_eq!(triggers.token_digest.as_ref().map(String::len), Some(24));
    let size = serde_json::to_vec(cluster.status()).expect("serializes").len();
    assert!(size < 2_000, "the status does not carry the token: {size} bytes");
    let message =
        cluster.status().run.as_ref().and_then(|run| run.message.clone()).unwrap_or_default();
    assert_eq!(message, "ServiceRefresh created");
}

#[test]
fn missing_trigger_keys_are_a_condition_and_an_event() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {}, "configMapTriggers": [{"name": "proxy", "keys": ["proxy", "noProxy"]}],
    }));
    cluster.add_many(1);
    cluster.set_config_map(NS, "proxy", &[("proxy", "http://p:3128")]);
    let first = cluster.pass();
    assert!(reasons(&first).contains(&"TriggerKeysMissing"));
    let missing =
        conditions::find(&first.status.conditions, TRIGGER_KEYS_MISSING).expect("condition");
    assert_eq!(missing.status, "True");
    assert!(missing.message.contains("arcgis/proxy[noProxy]"), "{}", missing.message);
    cluster.run_to_end();
    assert!(!reasons(&cluster.pass()).contains(&"TriggerKeysMissing"), "announced once");

    cluster.set_config_map(NS, "proxy", &[("proxy", "http://p:3128"), ("noProxy", "svc")]);
    let found = cluster.pass();
    let condition =
        conditions::find(&found.status.conditions, TRIGGER_KEYS_MISSING).expect("condition");
    assert_eq!(condition.status, "False");
    assert_eq!(reasons(&found), ["RunStarted"], "a key that appears is a content change");
}

#[test]
fn run_on_create_false_records_triggers_and_waits_for_a_change() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {}, "runOnCreate": false, "trigger": "v1",
        "configMapTriggers": [{"name": "proxy"}],
    }));
    cluster.add_many(2);
    cluster.set_config_map(NS, "proxy", &[("proxy", "http://p:3128")]);
    let created = cluster.pass();
    assert!(created.restarts.is_empty() && created.transitions.is_empty());
    assert!(created.status.run.is_none());
    assert_eq!(created.status.phase, None);
    assert_eq!(
        condition(&created.status, READY),
        (
            "True",
            "AwaitingTrigger",
            "runOnCreate is false: no run yet; a change to a trigger starts the first one"
        )
    );
    assert_eq!(created.status.triggers.config_maps.len(), 1);
    assert!(created.status.triggers.recorded_at.is_some());
    assert_eq!(cluster.pass().status, created.status, "nothing more happens");

    // Flipping the flag is a spec edit and starts nothing either.
    cluster.refresh.spec.run_on_create = true;
    assert!(cluster.pass().transitions.is_empty());

    cluster.set_config_map(NS, "proxy", &[("proxy", "http://q:3128")]);
    let changed = cluster.pass();
    let run = changed.status.run.as_ref().expect("run");
    assert_eq!((run.number, run.reason.as_str()), (1, "ConfigMapChanged"));
}

#[test]
fn cancelling_finishes_the_batch_in_flight_and_skips_the_rest() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 2}));
    let keys = cluster.add_many(5);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.annotate(CANCEL_REQUESTED_AT_ANNOTATION, "stop-1");
    let cancelling = cluster.pass();
    assert_eq!(reasons(&cancelling), ["CancelRequested"]);
    assert!(cancelling.restarts.is_empty());
    let run = cancelling.status.run.as_ref().expect("run");
    assert_eq!(run.cancel_request.as_deref(), Some("stop-1"));
    assert_eq!(
        condition(&cancelling.status, RECONCILING).2,
        "batch 1 of 3; cancel requested: the batch in flight finishes, then the run ends"
    );
    cluster.roll_out(&keys[0]);
    cluster.roll_out(&keys[1]);
    let cancelled = cluster.pass();
    assert_eq!(reasons(&cancelled), ["BatchCompleted", "RunCancelled"]);
    assert!(cancelled.restarts.is_empty(), "no batch starts after a cancel");
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Cancelled));
    assert_eq!(
        results(status)[1..].to_vec(),
        vec![
            ("svc-01".to_owned(), Some(ServiceResult::Ready), None),
            ("svc-02".to_owned(), Some(ServiceResult::Skipped), Some(MESSAGE_CANCELLED.to_owned())),
            ("svc-03".to_owned(), Some(ServiceResult::Skipped), Some(MESSAGE_CANCELLED.to_owned())),
            ("svc-04".to_owned(), Some(ServiceResult::Skipped), Some(MESSAGE_CANCELLED.to_owned())),
        ]
    );
    assert_eq!(condition(status, STALLED).1, "RunCancelled");
    assert_eq!(condition(status, READY).0, "False");
    assert_eq!(status.history[0].phase, Phase::Cancelled);
    assert_eq!(
        status.run.as_ref().and_then(|run| run.message.as_deref()),
        Some("Run 1 was cancelled: cancelled: 2 of 5 Deployments ready, 0 failed, 3 skipped")
    );
    assert!(cluster.pass().transitions.is_empty(), "settled");
    assert_eq!(cluster.template_changes.len(), 2);
}

#[test]
fn a_cancel_with_no_active_run_changes_nothing_and_says_so() {
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    cluster.add_many(1);
    cluster.run_to_end();
    let done = cluster.status().clone();
    cluster.annotate(CANCEL_REQUESTED_AT_ANNOTATION, "late");
    let ignored = cluster.pass();
    assert_eq!(reasons(&ignored), ["NoActiveRun"]);
    assert_eq!(ignored.status.run, done.run);
    assert_eq!(ignored.status.phase, Some(Phase::Succeeded));
    assert!(cluster.pass().transitions.is_empty(), "each request is answered once");
}

#[test]
fn a_cancel_before_the_first_batch_skips_everything() {
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    cluster.add_many(2);
    cluster.pass();
    cluster.annotate(CANCEL_REQUESTED_AT_ANNOTATION, "now");
    let cancelled = cluster.pass();
    assert!(cancelled.restarts.is_empty());
    assert_eq!(cancelled.status.phase, Some(Phase::Cancelled));
    assert_eq!(cancelled.status.totals.skipped, 2);
    assert!(cluster.template_changes.is_empty());
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
    assert_eq!(done.status.batches[0].ready, ["svc-00"]);
    assert!(done.restarts.is_empty());
}

#[test]
fn spec_edits_reach_only_batches_not_started() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 2}));
    let keys = cluster.add_many(7);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);

    cluster.refresh.spec.batch_size = 3;
    cluster.refresh.spec.exclude = vec!["svc-00".to_owned(), "svc-06".to_owned()];
    let edited = cluster.pass();
    let shape: Vec<(u32, BatchPhase, usize)> =
        edited.status.batches.iter().map(|b| (b.index, b.phase, b.services.len())).collect();
    assert_eq!(
        shape,
        vec![(1, BatchPhase::Running, 2), (2, BatchPhase::Pending, 3), (3, BatchPhase::Pending, 2)]
    );
    assert_eq!(edited.status.batches[0].services[0].result, None, "svc-00 was already restarted");
    let last = &edited.status.batches[2].services[1];
    assert_eq!((last.name.as_str(), last.result), ("svc-06", Some(ServiceResult::Skipped)));
    assert_eq!(last.message.as_deref(), Some(MESSAGE_EXCLUDED));
    assert_eq!(cluster.pass().status, edited.status);

    cluster.run_to_end();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(
        status.totals,
        Totals { services: 7, restarted: 6, ready: 6, failed: 0, skipped: 1 }
    );
    assert!(
        !cluster
            .template_changes
            .contains_key(&("arcgis/refresh/1-01234567".to_owned(), keys[6].clone()))
    );
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
fn services_outside_the_own_namespace_keep_theirs() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "namespaces": ["arcgis", "other"]}));
    cluster.allow_cross_namespace();
    cluster.add(NS, "a", 1);
    let other = cluster.add("other", "b", 2);
    cluster.pass();
    let services = &cluster.status().batches[0].services;
    assert_eq!(services[0].namespace, None);
    assert_eq!(services[1].namespace.as_deref(), Some("other"));
    let restarting = cluster.pass();
    assert_eq!(restarting.restarts[1].deployment, other);
    cluster.apply(&restarting);
    cluster.run_to_end();
    assert_eq!(cluster.status().totals.ready, 2);
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
    assert_eq!(services[0].generation, Some(7));
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
        Totals { services: 4, restarted: 1, ready: 0, failed: 2, skipped: 0 }
    );
}

#[test]
fn history_keeps_the_ten_newest_runs() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "trigger": "0"}));
    cluster.add_many(1);
    for round in 1..=12 {
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
fn a_completed_batch_lists_ready_services_by_name_and_keeps_the_rest() {
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
    assert_eq!(batch.ready, ["svc-00", "gis/svc-x"]);
    assert_eq!(batch.services.len(), 1);
    assert_eq!(batch.services[0].result, Some(ServiceResult::Failed));
    let names: Vec<String> = batch
        .all_services(NS)
        .into_iter()
        .map(|service| format!("{:?}/{}", service.namespace, service.name))
        .collect();
    assert_eq!(names, ["None/svc-00", "None/svc-01", "Some(\"gis\")/svc-x"], "plan order");
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
