//! The health gate between batches: asked for after a batch, holding while a check fails,
//! opening when they pass, and ending the run per failurePolicy at its timeout.

use jiff::SignedDuration;
use serde_json::json;

use super::super::test_support::{ModelCluster, at};
use super::{condition, events, reasons, results};
use crate::crd::{Phase, ServiceResult};
use crate::engine::EventSeverity;
use crate::engine::conditions::RECONCILING;
use crate::engine::health_gate::{CheckResult, GateCheck, GateResult};

const SAMPLES: &str = "query `sum by (deployment) (rate(sim_http_errors_total[30s])) > 0` \
                       returned 1 sample at or above 0: {deployment=\"svc-0\"} 2.5";

fn gated(policy: &str) -> ModelCluster {
    let mut cluster = ModelCluster::new(json!({
        "selector": {}, "batchSize": 1, "failurePolicy": policy,
        "healthGate": {"timeout": "1m", "prometheus": {"url": "http://prometheus:9090", "query": "up"}},
    }));
    cluster.add_many(3);
    cluster
}

fn outcome(cluster: &ModelCluster, passed: bool) -> GateResult {
    GateResult {
        checked_at: cluster.now,
        checks: vec![CheckResult {
            check: GateCheck::Prometheus,
            passed,
            detail: if passed { "no sample".to_owned() } else { SAMPLES.to_owned() },
        }],
    }
}

/// Runs the first batch to its end; returns when the pass after it asked for a check.
fn through_first_batch(cluster: &mut ModelCluster) {
    cluster.pass();
    cluster.now = at(1);
    let started = cluster.pass();
    assert_eq!(started.restarts.len(), 1);
    cluster.apply(&started);
    cluster.roll_out_all();
    cluster.now = at(10);
    let completed = cluster.pass();
    assert!(completed.restarts.is_empty(), "no batch starts before the gate is checked");
    assert!(completed.wants_health_check, "the gate asks the shell for a check");
    assert!(completed.status.waiting.is_none(), "nothing fails yet");
}

#[test]
fn a_failing_check_holds_the_run_with_its_result_until_it_passes() {
    let mut cluster = gated("Continue");
    through_first_batch(&mut cluster);

    cluster.health_gate = Some(outcome(&cluster, false));
    let held = cluster.pass();
    assert!(held.restarts.is_empty() && !held.wants_health_check);
    assert_eq!(reasons(&held), ["HealthGateFailing"]);
    let waiting = cluster.status().waiting.clone().expect("waiting");
    assert_eq!(waiting.reason, "HealthGateFailing");
    let message =
        format!("health gate after batch 1 failing for 0s (timeout 1m): prometheus: {SAMPLES}");
    assert_eq!(waiting.message, message);
    assert_eq!(condition(cluster.status(), RECONCILING), ("True", "HealthGateFailing", &*message));
    assert_eq!(held.wake_at, Some(at(15)), "the outcome is checked again when it goes stale");

    // A stale outcome: the shell checks again; the wait stands meanwhile, with no new Event.
    cluster.now = at(20);
    let stale = cluster.pass();
    assert!(stale.wants_health_check && stale.restarts.is_empty());
    assert!(reasons(&stale).is_empty());
    assert_eq!(stale.status.waiting.as_ref().map(|w| w.reason.as_str()), Some("HealthGateFailing"));

    cluster.health_gate = Some(outcome(&cluster, false));
    let still = cluster.pass();
    assert!(reasons(&still).is_empty(), "a continuing wait is announced once");
    assert!(cluster.status().waiting.as_ref().expect("waiting").message.contains("for 10s"));

    cluster.now = at(30);
    cluster.health_gate = Some(outcome(&cluster, true));
    let resumed = cluster.pass();
    assert_eq!(resumed.restarts.len(), 1, "the next batch starts once the checks pass");
    assert_eq!(reasons(&resumed), ["BatchStarted"]);
    assert!(cluster.status().waiting.is_none());
}

#[test]
fn a_gate_failing_past_its_timeout_ends_an_abort_run_as_failed() {
    let mut cluster = gated("Abort");
    through_first_batch(&mut cluster);
    cluster.now = at(70);
    cluster.health_gate = Some(outcome(&cluster, false));
    let ended = cluster.pass();
    assert!(ended.restarts.is_empty());
    assert_eq!(reasons(&ended), ["RunFailed"]);
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Failed));
    let message = status.run.as_ref().and_then(|run| run.message.clone()).expect("message");
    assert!(
        message.starts_with(
            "Run 1 failed: health gate after batch 1 still failing after 1m: prometheus: query"
        ),
        "{message}"
    );
    assert!(message.ends_with("; 1 of 3 Deployments ready, 2 skipped"), "{message}");
    let skipped: Vec<_> = results(&cluster)
        .into_iter()
        .filter(|(_, result, _)| *result == Some(ServiceResult::Skipped))
        .collect();
    assert_eq!(skipped.len(), 2);
    assert!(status.results.iter().all(|group| group.reason == "HealthGateTimedOut"));
}

#[test]
fn a_gate_failing_past_its_timeout_lets_a_continue_run_go_on_with_a_warning() {
    let mut cluster = gated("Continue");
    through_first_batch(&mut cluster);
    cluster.now = at(70);
    cluster.health_gate = Some(outcome(&cluster, false));
    let next = cluster.pass();
    assert_eq!(next.restarts.len(), 1);
    let warning = events(&next)
        .into_iter()
        .find(|event| event.reason.as_str() == "HealthGateTimedOut")
        .expect("a warning");
    assert_eq!(warning.severity, EventSeverity::Warning);
    assert!(warning.message.ends_with("failurePolicy Continue starts the next batch"));
}

#[test]
fn an_outcome_from_before_the_batch_ended_does_not_open_the_gate() {
    let mut cluster = gated("Continue");
    cluster.health_gate = Some(outcome(&cluster, true));
    through_first_batch(&mut cluster);
    cluster.now = at(10) + SignedDuration::from_millis(500);
    assert!(cluster.pass().wants_health_check);
}

#[test]
fn the_last_batch_ends_the_run_without_a_gate() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {}, "batchSize": 5,
        "healthGate": {"alertmanager": {"matchers": ["severity=\"critical\""]}},
    }));
    cluster.add_many(2);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
}
