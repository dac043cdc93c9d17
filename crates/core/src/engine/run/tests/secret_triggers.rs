//! Secret triggers follow the ConfigMap rules: a baseline first, a change of a watched key
//! starts one run, an unwatched key starts none, changes settle, storms stall, a missing
//! Secret stalls with `SecretNotFound`, an operator without `--secret-triggers` stalls with
//! `SecretsNotWatched`; and no Secret value ever reaches the status or an Event.

use serde_json::json;

use super::super::test_support::{ModelCluster, NS, at};
use super::{condition, reasons};
use crate::crd::Phase;
use crate::engine::conditions::{STALLED, TRIGGER_KEYS_MISSING, find};
use crate::engine::{Decision, OperatorScope};

/// A value no status, Event or message may ever contain.
const PLANTED: &str = "cGxhbnRlZC1zZWNyZXQtdmFsdWU=";

fn run_number(cluster: &ModelCluster) -> u64 {
    cluster.status().run.as_ref().map_or(0, |run| run.number)
}

fn step(cluster: &mut ModelCluster) -> Decision {
    let decision = cluster.pass();
    cluster.apply(&decision);
    cluster.roll_out_all();
    decision
}

fn assert_no_planted_value(decision: &Decision) {
    let status = serde_json::to_string(&decision.status).expect("serializes");
    assert!(!status.contains(PLANTED), "the status holds a Secret value: {status}");
    let shown = format!("{:?} {:?}", decision.transitions, decision.plan_objects);
    assert!(!shown.contains(PLANTED), "an output holds a Secret value: {shown}");
}

#[test]
fn a_watched_key_change_starts_one_run_and_an_unwatched_one_none() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {}, "runOnCreate": false, "triggerSettle": "0s",
        "secretTriggers": [{"name": "tls", "keys": ["tls.crt"]}],
    }));
    cluster.add_many(2);
    cluster.set_secret(NS, "tls", &[("tls.crt", PLANTED), ("tls.key", "a2V5")]);
    let created = cluster.pass();
    assert_no_planted_value(&created);
    assert!(created.status.run.is_none());
    let recorded = &created.status.triggers.secrets;
    assert_eq!(recorded.len(), 1);
    assert_eq!((recorded[0].namespace.as_str(), recorded[0].name.as_str()), (NS, "tls"));
    assert!(recorded[0].hash.starts_with("v2-"), "{}", recorded[0].hash);
    assert!(created.status.triggers.config_maps.is_empty());

    cluster.set_secret(NS, "tls", &[("tls.crt", PLANTED), ("tls.key", "b3RoZXI=")]);
    let unwatched = step(&mut cluster);
    assert!(unwatched.transitions.is_empty() && unwatched.plan_objects.is_empty());
    assert_eq!(run_number(&cluster), 0, "an unwatched key starts nothing");

    cluster.set_secret(NS, "tls", &[("tls.crt", "cm90YXRlZA=="), ("tls.key", "b3RoZXI=")]);
    let changed = cluster.pass();
    assert_no_planted_value(&changed);
    let run = changed.status.run.as_ref().expect("a run");
    assert_eq!((run.number, run.reason.as_str()), (1, "SecretChanged"));
    assert_eq!(run.message.as_deref(), Some("Secret arcgis/tls changed"));
    assert_ne!(changed.status.triggers.secrets[0].hash, recorded[0].hash);
    cluster.apply(&changed);
    cluster.run_to_end();
    cluster.pass();
    assert_eq!(run_number(&cluster), 1, "exactly one run");
}

#[test]
fn secret_changes_settle_into_one_run() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {}, "runOnCreate": false, "triggerSettle": "5s",
        "secretTriggers": [{"name": "tls"}],
    }));
    cluster.add_many(1);
    cluster.set_secret(NS, "tls", &[("tls.crt", "djA=")]);
    cluster.pass();
    for second in 1..=4 {
        cluster.now = at(second);
        cluster.set_secret(NS, "tls", &[("tls.crt", &format!("v{second}"))]);
        let decision = step(&mut cluster);
        assert!(decision.plan_objects.is_empty(), "{second}");
        assert_eq!(decision.wake_at, Some(at(second + 5)));
    }
    cluster.now = at(9);
    let settled = cluster.pass();
    let run = settled.status.run.as_ref().expect("a run");
    assert_eq!(run.reason, "SecretChanged");
    cluster.apply(&settled);
    cluster.run_to_end();
    assert_eq!(run_number(&cluster), 1);
}

#[test]
fn secret_storms_stall_like_config_map_storms() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {}, "runOnCreate": false, "triggerSettle": "0s", "maxRunsPerHour": 1,
        "secretTriggers": [{"name": "tls"}],
    }));
    cluster.add_many(1);
    cluster.set_secret(NS, "tls", &[("tls.crt", "djA=")]);
    cluster.pass();
    cluster.now = at(60);
    cluster.set_secret(NS, "tls", &[("tls.crt", "djE=")]);
    cluster.run_to_end();
    assert_eq!(run_number(&cluster), 1);
    cluster.now = at(120);
    cluster.set_secret(NS, "tls", &[("tls.crt", "djI=")]);
    let storm = cluster.pass();
    assert_eq!(reasons(&storm), ["RestartStorm"]);
    let (_, reason, message) = condition(&storm.status, STALLED);
    assert_eq!(reason, "RestartStorm");
    assert!(message.contains("Secret arcgis/tls changed"), "{message}");
}

#[test]
fn a_missing_secret_stalls_and_its_keys_are_unknown() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {}, "triggerSettle": "0s", "secretTriggers": [{"name": "tls", "keys": ["ca.crt"]}],
    }));
    cluster.add_many(1);
    let missing = cluster.pass();
    assert!(missing.status.run.is_none());
    assert_eq!(missing.status.phase, Some(Phase::Pending));
    assert_eq!(
        condition(&missing.status, STALLED),
        (
            "True",
            "SecretNotFound",
            "Secret arcgis/tls does not exist; create it or remove it from spec.secretTriggers"
        )
    );
    assert_eq!(reasons(&missing), ["SecretNotFound"]);
    let keys = find(&missing.status.conditions, TRIGGER_KEYS_MISSING).expect("condition");
    assert_eq!((keys.status.as_str(), keys.reason.as_str()), ("Unknown", "SecretNotFound"));
    assert!(keys.message.contains("Secret arcgis/tls does not exist"), "{}", keys.message);

    cluster.set_secret(NS, "tls", &[("tls.crt", PLANTED)]);
    let found = cluster.pass();
    assert_no_planted_value(&found);
    let keys = find(&found.status.conditions, TRIGGER_KEYS_MISSING).expect("condition");
    assert_eq!(keys.status, "True", "ca.crt is still missing");
    assert!(keys.message.contains("Secret arcgis/tls[ca.crt]"), "{}", keys.message);
    assert_eq!(found.status.run.as_ref().map(|run| run.reason.as_str()), Some("Created"));

    // A Secret deleted later stalls again once the run has ended.
    cluster.apply(&found);
    cluster.run_to_end();
    cluster.delete_secret(NS, "tls");
    assert_eq!(condition(&cluster.pass().status, STALLED).1, "SecretNotFound");
}

#[test]
fn without_secret_triggers_enabled_the_resource_stalls_and_reads_no_secret() {
    let mut cluster =
        ModelCluster::new(json!({"selector": {}, "secretTriggers": [{"name": "tls"}]}));
    cluster.scope = OperatorScope::default();
    cluster.add_many(1);
    cluster.set_secret(NS, "tls", &[("tls.crt", PLANTED)]);
    let stalled = cluster.pass();
    assert!(stalled.status.run.is_none() && stalled.restarts.is_empty());
    let (value, reason, message) = condition(&stalled.status, STALLED);
    assert_eq!((value, reason), ("True", "SecretsNotWatched"));
    assert!(message.contains("--secret-triggers"), "{message}");
    assert!(stalled.status.triggers.secrets.is_empty(), "nothing of the Secret recorded");
}

#[test]
fn secret_triggers_obey_the_tenancy_rule() {
    let mut cluster = ModelCluster::new(
        json!({"selector": {}, "secretTriggers": [{"name": "tls", "namespace": "other"}]}),
    );
    cluster.add_many(1);
    let refused = cluster.pass();
    let (_, reason, message) = condition(&refused.status, STALLED);
    assert_eq!(reason, "CrossNamespaceRefused");
    assert!(message.starts_with("spec.secretTriggers[0].namespace:"), "{message}");
}

#[test]
fn a_secret_trigger_added_later_records_its_baseline_and_one_removed_drops_it() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {}, "runOnCreate": false, "triggerSettle": "0s",
    }));
    cluster.add_many(1);
    cluster.set_secret(NS, "tls", &[("tls.crt", PLANTED)]);
    assert!(cluster.pass().status.triggers.secrets.is_empty());
    // Adding a trigger is a spec edit: it starts nothing, but its baseline is recorded.
    cluster.refresh.spec =
        serde_json::from_value(json!({"selector": {}, "runOnCreate": false, "triggerSettle": "0s",
            "secretTriggers": [{"name": "tls", "keys": ["tls.crt"]}]}))
        .expect("spec");
    let added = cluster.pass();
    assert!(added.status.run.is_none(), "a spec edit starts no run");
    assert_eq!(added.status.triggers.secrets.len(), 1, "the baseline is recorded");
    cluster.set_secret(NS, "tls", &[("tls.crt", "cm90YXRlZA==")]);
    let changed = cluster.pass();
    assert_eq!(changed.status.run.as_ref().map(|run| run.reason.as_str()), Some("SecretChanged"));
    cluster.apply(&changed);
    cluster.run_to_end();
    cluster.refresh.spec = serde_json::from_value(
        json!({"selector": {}, "runOnCreate": false, "triggerSettle": "0s"}),
    )
    .expect("spec");
    assert!(cluster.pass().status.triggers.secrets.is_empty(), "an unwatched Secret is dropped");
}
