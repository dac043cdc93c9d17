//! Unit tests of the run state machine, one rule at a time.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::SignedDuration;
use serde_json::json;

use super::test_support::{Cluster, NS, at};
use super::*;
use crate::crd::{BatchPhase, Phase, RUN_REQUESTED_AT_ANNOTATION, ServiceResult};
use crate::engine::conditions::{READY, RECONCILING};
use crate::engine::{EventSeverity, RestartOutcome};

fn condition<'a>(status: &'a ServiceRefreshStatus, type_: &str) -> (&'a str, &'a str, &'a str) {
    let condition = conditions::find(&status.conditions, type_).expect("condition present");
    (condition.status.as_str(), condition.reason.as_str(), condition.message.as_str())
}

fn reasons(decision: &Decision) -> Vec<&str> {
    decision.events.iter().map(|event| event.reason.as_str()).collect()
}

fn results(status: &ServiceRefreshStatus) -> Vec<(String, Option<ServiceResult>, Option<String>)> {
    status
        .batches
        .iter()
        .flat_map(|batch| batch.services.iter())
        .map(|service| (service.name.clone(), service.result, service.message.clone()))
        .collect()
}

#[test]
fn creation_plans_then_starts_a_batch_then_restarts() {
    let mut cluster = Cluster::new(json!({"selector": {}, "batchSize": 2}));
    let keys = cluster.add_many(3);

    let planned = cluster.pass();
    assert!(planned.restarts.is_empty(), "no restart in the pass that plans");
    assert_eq!(reasons(&planned), ["RunStarted"]);
    assert_eq!(planned.wake_at, Some(at(0)));
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
    assert!(started.restarts.is_empty(), "no restart in the pass that starts the batch");
    assert_eq!(reasons(&started), ["BatchStarted"]);
    assert_eq!(cluster.status().batches[0].phase, BatchPhase::Running);
    assert_eq!(cluster.status().batches[0].start_time, Some(MicroTime(at(5))));

    cluster.now = at(6);
    let restarting = cluster.pass();
    assert_eq!(
        restarting.restarts,
        vec![
            Restart {
                deployment: keys[0].clone(),
                restarted_at: "2026-11-26T18:26:34Z".to_owned(),
                restarted_by: "arcgis/refresh/1-01234567".to_owned(),
            },
            Restart {
                deployment: keys[1].clone(),
                restarted_at: "2026-11-26T18:26:34Z".to_owned(),
                restarted_by: "arcgis/refresh/1-01234567".to_owned(),
            },
        ]
    );
    assert_eq!(restarting.wake_at, Some(at(5) + SignedDuration::from_mins(10)));
    assert!(restarting.events.is_empty());
}

#[test]
fn sub_second_clock_does_not_leak_into_status() {
    let mut cluster = Cluster::new(json!({"selector": {}}));
    cluster.add_many(1);
    cluster.now = at(0) + SignedDuration::from_millis(750);
    cluster.pass();
    let start = cluster.status().run.as_ref().and_then(|run| run.start_time.clone());
    assert_eq!(start, Some(Time(at(0))));
}

#[test]
fn a_full_run_succeeds_and_is_recorded() {
    let mut cluster = Cluster::new(json!({"selector": {}, "batchSize": 2}));
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
    assert!(status.batches.iter().flat_map(|b| b.services.iter()).all(|s| s.generation.is_none()));
    assert_eq!(status.history.len(), 1);
    assert_eq!(status.history[0].phase, Phase::Succeeded);
    assert_eq!(
        condition(status, READY),
        ("True", "Succeeded", "Run 1 succeeded: 5 of 5 Deployments ready, 0 skipped")
    );
    assert_eq!(condition(status, RECONCILING).0, "False");
    assert_eq!(condition(status, STALLED).0, "False");
    assert!(cluster.template_changes.values().all(|&changes| changes == 1));
}

#[test]
fn a_pass_with_nothing_new_returns_the_identical_status() {
    let mut cluster = Cluster::new(json!({"selector": {}, "batchSize": 2}));
    let keys = cluster.add_many(3);
    cluster.pass();
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);

    // Waiting on rollouts that have not progressed.
    let before = cluster.status().clone();
    cluster.now = at(30);
    let waiting = cluster.pass();
    assert_eq!(waiting.status, before);
    assert!(waiting.events.is_empty() && waiting.restarts.is_empty());

    // Rollouts progressing but not done: still nothing to write.
    cluster.start_rollout(&keys[0]);
    cluster.now = at(31);
    assert_eq!(cluster.pass().status, before);

    // After the run.
    cluster.run_to_end();
    let done = cluster.status().clone();
    cluster.now = at(3_600);
    let later = cluster.pass();
    assert_eq!(later.status, done);
    assert!(later.events.is_empty() && later.restarts.is_empty() && later.wake_at.is_none());
}

#[test]
fn reapplying_an_unchanged_spec_starts_nothing() {
    let mut cluster = Cluster::new(json!({"selector": {}, "trigger": "v1"}));
    cluster.add_many(2);
    cluster.run_to_end();
    let done = cluster.status().clone();

    // A GitOps tool re-applies, another field changes: generation moves, trigger does not.
    cluster.refresh.metadata.generation = Some(2);
    cluster.refresh.spec.batch_size = 5;
    let after = cluster.pass();
    assert!(after.restarts.is_empty() && after.events.is_empty());
    assert_eq!(after.status.run, done.run);
    assert_eq!(after.status.phase, Some(Phase::Succeeded));
    assert_eq!(after.status.observed_generation, Some(2));
    assert_eq!(cluster.pass().status, after.status);
}

#[test]
fn trigger_changes_during_a_run_coalesce_into_one_follow_up() {
    let mut cluster = Cluster::new(json!({"selector": {}, "batchSize": 1, "trigger": "v1"}));
    cluster.add_many(3);
    cluster.pass();
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
    cluster.refresh.metadata.annotations =
        Some(BTreeMap::from([(RUN_REQUESTED_AT_ANNOTATION.to_owned(), "now".to_owned())]));

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

    let follow_up = cluster.pass();
    assert_eq!(reasons(&follow_up), ["RunStarted"]);
    let run = follow_up.status.run.as_ref().expect("run");
    assert_eq!((run.number, run.reason.as_str()), (2, "TriggerChanged"));
    assert_eq!(follow_up.status.triggers.token.as_deref(), Some("v3"));
    assert_eq!(follow_up.status.triggers.run_requested_at.as_deref(), Some("now"));
    cluster.run_to_end();
    assert_eq!(cluster.status().run.as_ref().map(|run| run.number), Some(2));
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
    assert_eq!(cluster.status().history.len(), 2);
    assert!(cluster.pass().events.is_empty(), "no third run");
}

#[test]
fn run_requested_annotation_starts_a_run_and_removal_does_not() {
    let mut cluster = Cluster::new(json!({"selector": {}}));
    cluster.add_many(1);
    cluster.run_to_end();
    cluster.refresh.metadata.annotations = Some(BTreeMap::from([(
        RUN_REQUESTED_AT_ANNOTATION.to_owned(),
        "2026-11-26T19:00:00Z".to_owned(),
    )]));
    let requested = cluster.pass();
    assert_eq!(requested.status.run.as_ref().map(|run| run.reason.as_str()), Some("RunRequested"));
    cluster.run_to_end();
    cluster.refresh.metadata.annotations = None;
    cluster.refresh.spec.trigger = None;
    assert!(cluster.pass().events.is_empty());
    assert_eq!(cluster.status().run.as_ref().map(|run| run.number), Some(2));
}

#[test]
fn without_admission_the_run_waits_queued() {
    let mut cluster = Cluster::new(json!({"selector": {}, "trigger": "t"}));
    cluster.add_many(1);
    cluster.may_start_run = false;
    let queued = cluster.pass();
    assert!(queued.restarts.is_empty() && queued.events.is_empty() && queued.wake_at.is_none());
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Pending));
    assert!(status.run.is_none());
    assert_eq!(status.triggers.token, None, "triggers are recorded only when the run starts");
    assert_eq!(condition(status, READY).1, "Queued");
    assert_eq!(condition(status, RECONCILING).0, "True");
    assert_eq!(cluster.pass().status, queued.status);

    cluster.may_start_run = true;
    cluster.pass();
    assert_eq!(cluster.status().phase, Some(Phase::Running));
    assert_eq!(cluster.status().triggers.token.as_deref(), Some("t"));
}

#[test]
fn a_stale_deployment_right_after_the_patch_is_not_ready() {
    let mut cluster = Cluster::new(json!({"selector": {}}));
    let keys = cluster.add_many(1);
    cluster.pass();
    cluster.pass();
    let stale = cluster.snapshot();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    assert_eq!(cluster.status().batches[0].services[0].generation, Some(2));

    // The cache still shows generation 1, fully rolled out, no annotations.
    let decision = cluster.pass_with(&stale);
    assert_eq!(decision.status.batches[0].services[0].result, None);
    // The repeated restart is byte-identical, so the API server ignores it.
    assert_eq!(decision.restarts, vec![]);

    // Observed but still rolling.
    cluster.start_rollout(&keys[0]);
    assert_eq!(cluster.pass().status.batches[0].services[0].result, None);
    cluster.roll_out(&keys[0]);
    assert_eq!(cluster.pass().status.batches[0].services[0].result, Some(ServiceResult::Ready));
}

#[test]
fn a_crash_between_patch_and_status_write_is_adopted_not_repeated() {
    let mut cluster = Cluster::new(json!({"selector": {}}));
    let keys = cluster.add_many(1);
    cluster.pass();
    cluster.pass();
    let stale = cluster.snapshot();
    let restarting = cluster.pass();
    let restart = restarting.restarts[0].clone();
    // The patch goes through, then the operator dies before recording the outcome.
    cluster.patch(&restart);

    // After a restart with a stale cache the same patch is sent again: a no-op.
    let again = cluster.pass_with(&stale);
    assert_eq!(again.restarts, vec![restart.clone()]);
    assert!(matches!(cluster.patch(&again.restarts[0]), RestartOutcome::Patched { generation: 2 }));

    // With a fresh cache the run id on the template is adopted.
    let adopted = cluster.pass();
    assert!(adopted.restarts.is_empty());
    assert_eq!(adopted.status.batches[0].services[0].generation, Some(2));
    assert_eq!(cluster.template_changes.values().copied().collect::<Vec<_>>(), vec![1]);
    cluster.roll_out(&keys[0]);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
}

#[test]
fn deleted_deployments_are_gone_and_paused_ones_skipped() {
    let mut cluster = Cluster::new(json!({"selector": {}}));
    let keys = cluster.add_many(3);
    cluster.deployments.get_mut(&keys[1]).expect("exists").spec.paused = Some(true);
    cluster.pass();
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
fn suspend_holds_the_next_batch_but_lets_the_current_one_finish() {
    let mut cluster = Cluster::new(json!({"selector": {}, "batchSize": 1}));
    let keys = cluster.add_many(2);
    cluster.pass();
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
    assert_eq!(resumed.status.phase, Some(Phase::Running));
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
}

#[test]
fn dry_run_restarts_nothing_and_succeeds_at_once() {
    let mut cluster = Cluster::new(json!({"selector": {}, "batchSize": 2, "dryRun": true}));
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
}

#[test]
fn an_empty_plan_succeeds_at_once() {
    let mut cluster = Cluster::new(json!({"selector": {"matchLabels": {"app": "none"}}}));
    cluster.add_many(2);
    let decision = cluster.pass();
    assert_eq!(reasons(&decision), ["RunStarted", "RunSucceeded"]);
    assert_eq!(decision.status.phase, Some(Phase::Succeeded));
    assert_eq!(
        (decision.status.progress.as_deref(), decision.status.batch.as_deref()),
        (Some("0/0"), Some("0/0"))
    );
    assert_eq!(
        condition(&decision.status, READY).2,
        "Run 1 succeeded: no Deployment matched the selector, name patterns and namespaces"
    );
}

#[test]
fn abort_skips_every_batch_not_started() {
    let mut cluster =
        Cluster::new(json!({"selector": {}, "batchSize": 2, "failurePolicy": "Abort"}));
    let keys = cluster.add_many(5);
    cluster.pass();
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.fail_rollout(&keys[0]);
    cluster.roll_out(&keys[1]);
    let aborted = cluster.pass();
    assert!(aborted.restarts.is_empty());
    assert_eq!(reasons(&aborted), ["BatchCompleted", "RunFailed"]);
    assert_eq!(aborted.events[0].severity, EventSeverity::Warning);
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
    let mut cluster = Cluster::new(json!({"selector": {}, "batchSize": 1}));
    let keys = cluster.add_many(2);
    cluster.pass();
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.fail_rollout(&keys[0]);
    let next = cluster.pass();
    assert_eq!(reasons(&next), ["BatchCompleted", "BatchStarted"]);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Failed));
    assert_eq!(cluster.status().totals.ready, 1);
}

#[test]
fn batches_time_out_with_the_last_waiting_message() {
    let mut cluster = Cluster::new(json!({"selector": {}, "batchTimeout": "90s"}));
    let keys = cluster.add_many(2);
    cluster.pass();
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
                Some("not restarted within spec.batchTimeout 90s: the restart patch did not go through".to_owned())
            ),
        ]
    );
    assert_eq!(timed_out.status.phase, Some(Phase::Failed));
    assert_eq!(timed_out.status.totals.restarted, 1);
    assert_eq!(timed_out.wake_at, None);
}

#[test]
fn an_invalid_spec_stalls_and_holds_the_active_run() {
    let mut cluster = Cluster::new(json!({"selector": {}, "batchTimeout": "10x"}));
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
    assert!(again.events.is_empty(), "the stall is announced once");
    assert_eq!(again.status, stalled.status);

    cluster.refresh.spec.batch_timeout = "10m".to_owned();
    cluster.pass();
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
fn config_map_triggers_record_baselines_start_runs_and_stall_when_missing() {
    let mut cluster =
        Cluster::new(json!({"selector": {}, "configMapTriggers": [{"name": "proxy"}]}));
    cluster.add_many(1);
    let proxy = ObjectKey::new(NS, "proxy");
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

    cluster.config_map_hashes.insert(proxy.clone(), Some("h1".to_owned()));
    cluster.run_to_end();
    assert_eq!(cluster.status().triggers.config_maps[0].hash, "h1");

    // A newly watched ConfigMap only records its baseline.
    cluster
        .refresh
        .spec
        .config_map_triggers
        .push(serde_json::from_value(json!({"name": "certs"})).expect("trigger"));
    cluster.config_map_hashes.insert(ObjectKey::new(NS, "certs"), Some("c1".to_owned()));
    let baseline = cluster.pass();
    assert!(baseline.events.is_empty());
    assert_eq!(baseline.status.run.as_ref().map(|run| run.number), Some(1));
    assert_eq!(baseline.status.triggers.config_maps.len(), 2);
    assert_eq!(cluster.pass().status, baseline.status);

    cluster.config_map_hashes.insert(proxy.clone(), Some("h2".to_owned()));
    let changed = cluster.pass();
    let run = changed.status.run.as_ref().expect("run");
    assert_eq!((run.number, run.reason.as_str()), (2, "ConfigMapChanged"));
    assert_eq!(run.message.as_deref(), Some("ConfigMap arcgis/proxy changed"));
    cluster.run_to_end();

    // Deleted after the run: stalled, nothing starts; recreated with new content: a run.
    cluster.config_map_hashes.insert(proxy.clone(), None);
    let gone = cluster.pass();
    assert_eq!(reasons(&gone), ["ConfigMapNotFound"]);
    assert_eq!(gone.status.phase, Some(Phase::Succeeded));
    cluster.config_map_hashes.insert(proxy, Some("h3".to_owned()));
    assert_eq!(cluster.pass().status.run.as_ref().map(|run| run.number), Some(3));
}

#[test]
fn spec_edits_reach_only_batches_not_started() {
    let mut cluster = Cluster::new(json!({"selector": {}, "batchSize": 2}));
    let keys = cluster.add_many(7);
    cluster.pass();
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
fn services_outside_the_own_namespace_keep_theirs() {
    let mut cluster = Cluster::new(json!({"selector": {}, "namespaces": ["arcgis", "other"]}));
    cluster.add(NS, "a", 1);
    let other = cluster.add("other", "b", 2);
    cluster.pass();
    let services = &cluster.status().batches[0].services;
    assert_eq!(services[0].namespace, None);
    assert_eq!(services[1].namespace.as_deref(), Some("other"));
    cluster.pass();
    let restarting = cluster.pass();
    assert_eq!(restarting.restarts[1].deployment, other);
    cluster.run_to_end();
    assert_eq!(cluster.status().totals.ready, 2);
}

#[test]
fn restart_outcomes_are_recorded() {
    let mut cluster = Cluster::new(json!({"selector": {}}));
    let keys = cluster.add_many(4);
    cluster.pass();
    cluster.pass();
    cluster.pass();
    cluster.record(&[
        (keys[0].clone(), RestartOutcome::Patched { generation: 7 }),
        (keys[1].clone(), RestartOutcome::NotFound),
        (
            keys[2].clone(),
            RestartOutcome::Rejected("admission webhook denied the request".to_owned()),
        ),
        (keys[3].clone(), RestartOutcome::Transient("connection reset".to_owned())),
        (ObjectKey::new(NS, "unplanned"), RestartOutcome::NotFound),
    ]);
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
fn run_owner_parses_run_ids() {
    assert_eq!(
        run_owner("arcgis/refresh/12-01234567"),
        Some(("arcgis".to_owned(), "refresh".to_owned()))
    );
    assert_eq!(run_owner("ns/name/1-nouid"), Some(("ns".to_owned(), "name".to_owned())));
    for bad in [
        "",
        "arcgis",
        "arcgis/refresh",
        "arcgis/refresh/x-1",
        "/refresh/1-a",
        "arcgis//1-a",
        "a/b/1",
    ] {
        assert_eq!(run_owner(bad), None, "{bad}");
    }
    let mut cluster = Cluster::new(json!({"selector": {}}));
    cluster.refresh.metadata.uid = None;
    assert_eq!(run_id(&cluster.refresh, 3), "arcgis/refresh/3-nouid");
    assert_eq!(
        run_owner(&run_id(&cluster.refresh, 3)),
        Some((NS.to_owned(), "refresh".to_owned()))
    );
}

#[test]
fn history_keeps_the_ten_newest_runs() {
    let mut cluster = Cluster::new(json!({"selector": {}, "trigger": "0"}));
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
    let mut cluster = Cluster::new(json!({"selector": {}}));
    cluster.add_many(1);
    cluster.add("elsewhere", "x", 1);
    let mut nameless = Deployment::default();
    nameless.metadata.namespace = Some(NS.to_owned());
    let mut snapshot = cluster.snapshot();
    snapshot.push(Arc::new(nameless));
    assert_eq!(cluster.pass_with(&snapshot).status.totals.services, 1);
}

#[test]
fn five_thousand_services_fit_the_status_budget() {
    let mut cluster = Cluster::new(json!({"selector": {}, "batchSize": 100, "batchTimeout": "1m"}));
    for i in 0..5_000 {
        cluster.add(NS, &format!("arcgis-service-{i:04}-mapserver-0123456789"), 1);
    }
    cluster.pass();
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
