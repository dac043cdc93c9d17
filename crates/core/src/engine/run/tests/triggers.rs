//! What starts a run and what stops one: the trigger token, the run-requested annotation,
//! ConfigMap contents, runOnCreate, and cancellation.

use serde_json::json;

use super::super::test_support::{ModelCluster, NS};
use super::super::*;
use super::{condition, reasons, results};
use crate::crd::{
    CANCEL_REQUESTED_AT_ANNOTATION, Phase, RUN_REQUESTED_AT_ANNOTATION, ServiceResult,
};
use crate::engine::conditions::{READY, RECONCILING, TRIGGER_KEYS_MISSING};

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
fn config_map_triggers_record_baselines_start_runs_and_stall_when_missing() {
    let mut cluster = ModelCluster::new(
        json!({"selector": {}, "triggerSettle": "0s", "configMapTriggers": [{"name": "proxy"}]}),
    );
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
        "selector": {}, "trigger": "v1", "triggerSettle": "0s", "configMapTriggers": [{"name": "proxy"}],
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
        "selector": {}, "triggerSettle": "0s", "configMapTriggers": [{"name": "proxy", "keys": ["proxy", "noProxy"]}],
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
fn keys_of_a_missing_config_map_are_neither_found_nor_missing() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {}, "configMapTriggers": [{"name": "proxy", "keys": ["proxy"]}],
    }));
    cluster.add_many(1);
    let stalled = cluster.pass();
    assert_eq!(condition(&stalled.status, "Stalled").1, "ConfigMapNotFound");
    let keys =
        conditions::find(&stalled.status.conditions, TRIGGER_KEYS_MISSING).expect("condition");
    assert_eq!((keys.status.as_str(), keys.reason.as_str()), ("Unknown", "ConfigMapNotFound"));
    assert!(keys.message.contains("arcgis/proxy does not exist"), "{}", keys.message);
    assert!(!reasons(&stalled).contains(&"TriggerKeysMissing"), "no Warning about keys");

    cluster.set_config_map(NS, "proxy", &[("proxy", "http://p:3128")]);
    let found = cluster.pass();
    let keys = conditions::find(&found.status.conditions, TRIGGER_KEYS_MISSING).expect("condition");
    assert_eq!((keys.status.as_str(), keys.reason.as_str()), ("False", "KeysFound"));
}

#[test]
fn run_on_create_false_records_triggers_and_waits_for_a_change() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {}, "runOnCreate": false, "trigger": "v1",
        "triggerSettle": "0s", "configMapTriggers": [{"name": "proxy"}],
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
        results(&cluster)[1..].to_vec(),
        vec![
            ("svc-01".to_owned(), Some(ServiceResult::Ready), None),
            ("svc-02".to_owned(), Some(ServiceResult::Skipped), Some(MESSAGE_CANCELLED.to_owned())),
            ("svc-03".to_owned(), Some(ServiceResult::Skipped), Some(MESSAGE_CANCELLED.to_owned())),
            ("svc-04".to_owned(), Some(ServiceResult::Skipped), Some(MESSAGE_CANCELLED.to_owned())),
        ]
    );
    assert_eq!(condition(status, STALLED).1, "RunCancelled");
    assert_eq!(condition(status, READY).0, "False");
    assert_eq!(status.batch.as_deref(), Some("1/3"), "BATCH shows where the run stopped");
    assert_eq!(status.history[0].phase, Phase::Cancelled);
    assert_eq!(
        status.run.as_ref().and_then(|run| run.message.as_deref()),
        Some("Run 1 was cancelled: 2 of 5 Deployments ready, 0 failed, 3 skipped")
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
    assert_eq!(cancelled.status.batch.as_deref(), Some("0/1"), "no batch of one started");
    assert!(cluster.template_changes.is_empty());
}

#[test]
fn a_new_trigger_is_quoted_in_the_run_message_and_cut_when_long() {
    let message_after = |token: &str| {
        let mut cluster = ModelCluster::new(json!({"selector": {}, "trigger": "v1"}));
        let keys = cluster.add_many(1);
        cluster.pass();
        let restarting = cluster.pass();
        cluster.apply(&restarting);
        cluster.roll_out(&keys[0]);
        cluster.run_to_end();
        cluster.refresh.spec.trigger = Some(token.to_owned());
        cluster.pass();
        cluster.status().run.as_ref().and_then(|run| run.message.clone()).unwrap_or_default()
    };
    assert_eq!(message_after("v2"), r#"spec.trigger changed to "v2""#);
    let exactly_64 = "x".repeat(64);
    assert_eq!(message_after(&exactly_64), format!("spec.trigger changed to {exactly_64:?}"));
    let long = "y".repeat(65);
    assert_eq!(message_after(&long), format!("spec.trigger changed to {:?}...", "y".repeat(64)));
}
