//! Pacing in the run: trigger changes settle into one run, a storm of trigger-started runs
//! stalls the resource until a person requests a run, a Deployment waits out the minimum
//! restart interval unless the run is forced, and runs keep to the maintenance windows.

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::super::test_support::{ModelCluster, at};
use super::{condition, reasons};
use crate::crd::{FORCE_ANNOTATION, Phase, RUN_REQUESTED_AT_ANNOTATION};
use crate::engine::conditions::{RECONCILING, STALLED};
use crate::engine::{Decision, ObjectKey};

fn step(cluster: &mut ModelCluster) -> Decision {
    let decision = cluster.pass();
    cluster.apply(&decision);
    cluster.roll_out_all();
    decision
}

fn run_number(cluster: &ModelCluster) -> u64 {
    cluster.status().run.as_ref().map_or(0, |run| run.number)
}

fn restarts_of(cluster: &ModelCluster, key: &ObjectKey) -> u32 {
    cluster
        .template_changes
        .iter()
        .filter(|((_, restarted), _)| restarted == key)
        .map(|(_, count)| count)
        .sum()
}

fn utc(text: &str) -> Timestamp {
    text.parse().expect("a timestamp")
}

#[test]
fn a_config_map_storm_settles_into_exactly_one_run() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {}, "runOnCreate": false, "triggerSettle": "5s",
        "configMapTriggers": [{"name": "proxy"}],
    }));
    cluster.add_many(2);
    cluster.set_config_map("arcgis", "proxy", &[("proxy", "v0")]);
    cluster.pass();
    for second in 1..=20 {
        cluster.now = at(second);
        cluster.set_config_map("arcgis", "proxy", &[("proxy", &format!("v{second}"))]);
        let decision = step(&mut cluster);
        assert!(decision.restarts.is_empty() && decision.plan_objects.is_empty(), "{second}");
        assert_eq!(decision.wake_at, Some(at(second + 5)), "woken when the change settles");
        let settling = cluster.status().triggers.settling.as_ref().expect("settling");
        assert_eq!(settling.since.0, at(second));
    }
    cluster.now = at(24);
    assert!(step(&mut cluster).plan_objects.is_empty(), "not settled a second early");
    cluster.now = at(25);
    let settled = cluster.pass();
    let run = settled.status.run.as_ref().expect("a run");
    assert_eq!((run.number, run.reason.as_str()), (1, "ConfigMapChanged"));
    assert_eq!(settled.status.triggers.settling, None, "the run took the change along");
    cluster.run_to_end();
    cluster.now = at(60);
    cluster.pass();
    assert_eq!(run_number(&cluster), 1, "exactly one run");
}

#[test]
fn trigger_runs_beyond_max_runs_per_hour_stall_until_a_person_requests_a_run() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {}, "runOnCreate": false, "trigger": "0", "maxRunsPerHour": 2,
    }));
    let keys = cluster.add_many(1);
    cluster.pass();
    for round in 1..=2 {
        cluster.now = at(round * 60);
        cluster.refresh.spec.trigger = Some(round.to_string());
        cluster.run_to_end();
    }
    assert_eq!(run_number(&cluster), 2);

    cluster.now = at(180);
    cluster.refresh.spec.trigger = Some("3".into());
    let storm = cluster.pass();
    assert!(storm.plan_objects.is_empty());
    assert_eq!(reasons(&storm), ["RestartStorm"]);
    let (stalled, reason, message) = condition(&storm.status, STALLED);
    assert_eq!((stalled, reason), ("True", "RestartStorm"));
    assert!(message.contains("spec.trigger changed to \"3\""), "{message}");
    assert!(message.contains("gisops.io/run-requested-at"), "{message}");

    // The hour passing does not clear it: a person has to look.
    cluster.now = at(3 * 3600);
    cluster.refresh.spec.trigger = Some("4".into());
    let later = cluster.pass();
    assert_eq!(condition(&later.status, STALLED).1, "RestartStorm");
    assert!(later.plan_objects.is_empty() && reasons(&later).is_empty(), "announced once");

    cluster.annotate(RUN_REQUESTED_AT_ANNOTATION, "looked-at-it");
    let requested = cluster.pass();
    let run = requested.status.run.as_ref().expect("run");
    assert_eq!(run.number, 3);
    assert_eq!(requested.status.triggers.storm, None);
    cluster.run_to_end();
    assert_eq!(condition(cluster.status(), STALLED).0, "False");
    assert_eq!(restarts_of(&cluster, &keys[0]), 3);
}

#[test]
fn a_deployment_restarted_within_the_interval_waits_unless_the_run_is_forced() {
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    cluster.min_restart_interval = SignedDuration::from_mins(5);
    let keys = cluster.add_many(2);
    cluster.run_to_end();
    let first_end = cluster.status().run.as_ref().and_then(|run| run.end_time.clone());
    assert_eq!(first_end.map(|time| time.0), Some(at(0)));

    cluster.now = at(60);
    cluster.annotate(RUN_REQUESTED_AT_ANNOTATION, "again");
    step(&mut cluster);
    let held = step(&mut cluster);
    assert!(held.restarts.is_empty());
    let waiting = held.status.waiting.as_ref().expect("waiting");
    assert_eq!(waiting.reason, "RestartInterval");
    // The first run ended at second 0 (stored in whole seconds, so before second 1).
    assert_eq!(waiting.until.as_ref().map(|time| time.0), Some(at(301)));
    assert!(waiting.message.contains("--min-restart-interval"), "{}", waiting.message);
    assert_eq!(condition(&held.status, RECONCILING).1, "RestartInterval");
    assert_eq!(held.wake_at, Some(at(301)));
    assert_eq!(reasons(&held), ["RestartInterval"]);

    cluster.now = at(300);
    assert!(step(&mut cluster).restarts.is_empty());
    cluster.now = at(301);
    assert_eq!(step(&mut cluster).restarts.len(), 2);
    cluster.run_to_end();

    // Forced: at once, whatever the interval says.
    cluster.now = at(310);
    cluster.annotate(FORCE_ANNOTATION, "true");
    cluster.annotate(RUN_REQUESTED_AT_ANNOTATION, "forced");
    step(&mut cluster);
    assert!(cluster.status().run.as_ref().is_some_and(|run| run.force));
    assert_eq!(step(&mut cluster).restarts.len(), 2);
    cluster.run_to_end();
    // A later run that is not requested with force waits again.
    cluster.annotate(RUN_REQUESTED_AT_ANNOTATION, "plain");
    cluster.refresh.metadata.annotations.as_mut().map(|notes| notes.remove(FORCE_ANNOTATION));
    step(&mut cluster);
    assert!(!cluster.status().run.as_ref().is_some_and(|run| run.force));
    assert!(step(&mut cluster).restarts.is_empty());
    for key in &keys {
        assert_eq!(restarts_of(&cluster, key), 3, "{key}");
    }
}

/// 2026-11-26 (the model's day, a Thursday) from 20:00 to 20:10 UTC, every day.
fn ten_minute_window(extra: serde_json::Value) -> ModelCluster {
    let mut spec = json!({
        "selector": {}, "trigger": "0", "batchSize": 1,
        "schedule": {"timeZone": "UTC", "windows": [{"start": "20:00", "end": "20:10"}]},
    });
    if let (Some(spec), serde_json::Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
    ModelCluster::new(spec)
}

#[test]
fn a_run_triggered_outside_a_window_waits_for_it_and_triggers_coalesce() {
    let mut cluster = ten_minute_window(json!({}));
    cluster.add_many(2);
    let created = step(&mut cluster);
    assert!(created.plan_objects.is_empty() && created.restarts.is_empty());
    let waiting = created.status.waiting.as_ref().expect("waiting");
    assert_eq!(waiting.reason, "OutsideWindow");
    assert_eq!(waiting.until.as_ref().map(|time| time.0), Some(utc("2026-11-26T20:00:00Z")));
    assert!(waiting.message.contains("Thu 2026-11-26 20:00:00 UTC"), "{}", waiting.message);
    assert_eq!(created.status.phase, Some(Phase::Pending));
    assert_eq!(condition(&created.status, RECONCILING).1, "OutsideWindow");
    assert_eq!(created.wake_at, Some(utc("2026-11-26T20:00:00Z")));

    cluster.now = at(60);
    cluster.refresh.spec.trigger = Some("1".into());
    cluster.annotate(RUN_REQUESTED_AT_ANNOTATION, "please");
    let still = step(&mut cluster);
    assert!(still.plan_objects.is_empty());
    assert_eq!(still.status.waiting.as_ref().map(|w| w.since.0), Some(at(0)), "one wait");

    cluster.now = utc("2026-11-26T20:00:00Z");
    cluster.run_to_end();
    assert_eq!(run_number(&cluster), 1, "every trigger outside the window made one run");
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
    assert_eq!(cluster.status().waiting, None);
}

#[test]
fn a_window_closing_mid_run_pauses_after_the_batch_in_flight_and_resumes_at_the_next() {
    let mut cluster = ten_minute_window(json!({}));
    let keys = cluster.add_many(3);
    cluster.now = utc("2026-11-26T20:09:00Z");
    step(&mut cluster);
    let first = step(&mut cluster);
    assert_eq!(first.restarts.len(), 1, "batch 1 starts inside the window");

    // The window closes while batch 1 rolls out: it finishes, batch 2 waits.
    cluster.now = utc("2026-11-26T20:10:00Z");
    let paused = step(&mut cluster);
    assert!(paused.restarts.is_empty());
    let waiting = paused.status.waiting.as_ref().expect("waiting");
    assert_eq!(waiting.reason, "OutsideWindow");
    assert_eq!(waiting.until.as_ref().map(|time| time.0), Some(utc("2026-11-27T20:00:00Z")));
    assert_eq!(paused.status.batches.len(), 1, "batch 2 has not started");
    assert_eq!(paused.status.batch.as_deref(), Some("2/3"), "it is the next");
    assert_eq!(paused.status.totals.ready, 1);
    assert_eq!(paused.status.phase, Some(Phase::Running));

    // A restarted operator sees the same status and holds just the same.
    cluster.now = utc("2026-11-27T19:59:59Z");
    let restarted_operator = step(&mut cluster);
    assert!(restarted_operator.restarts.is_empty());
    assert_eq!(restarted_operator.status, paused.status);

    cluster.now = utc("2026-11-27T20:00:00Z");
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
    assert_eq!(run_number(&cluster), 1);
    for key in &keys {
        assert_eq!(restarts_of(&cluster, key), 1, "{key} restarted exactly once");
    }
}
