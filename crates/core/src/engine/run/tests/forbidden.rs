//! A restart the API server forbids (403): the run stalls once with the refused permission,
//! holds its batch without failing anyone, probes once per back-off, and resumes with a
//! fresh batch clock once a probe goes through.

use serde_json::json;

use super::*;
use crate::engine::Forbidden;
use crate::engine::forbidden::FORBIDDEN;
use crate::engine::run::test_support::at;

fn refused_until(seconds: i64) -> Forbidden {
    Forbidden {
        verb: "patch".into(),
        resource: "deployments".into(),
        group: "apps".into(),
        namespace: "arcgis".into(),
        retry_at: at(seconds),
    }
}

#[test]
fn a_forbidden_restart_stalls_the_run_once_fails_nobody_and_resumes_after_the_grant() {
    let mut cluster =
        ModelCluster::new(json!({"selector": {}, "batchSize": 3, "batchTimeout": "60s"}));
    let keys = cluster.add_many(6);
    cluster.pass();
    let first = cluster.pass();
    assert_eq!(first.restarts.len(), 3);
    // Every patch of the batch is refused; the shell records the refusal.
    let refused: Vec<_> = first
        .restarts
        .iter()
        .map(|restart| (restart.deployment.clone(), RestartOutcome::Forbidden("403".into())))
        .collect();
    assert!(cluster.record(&refused).is_empty(), "nobody gets a result");
    cluster.forbidden = Some(refused_until(2));

    cluster.now = at(1);
    let stalled = cluster.pass();
    assert!(stalled.restarts.is_empty(), "nothing is sent before the back-off ran out");
    let (value, reason, message) = condition(&stalled.status, STALLED);
    assert_eq!((value, reason), ("True", FORBIDDEN));
    assert!(message.contains("patch deployments"), "{message}");
    assert_eq!(reasons(&stalled), ["Forbidden"], "announced once");
    assert_eq!(stalled.wake_at, Some(at(2)));
    assert_eq!(stalled.status.totals.failed, 0);

    // Past the batch timeout, the retry is due: exactly one probe goes out, still refused.
    cluster.forbidden = Some(refused_until(100));
    cluster.now = at(100);
    let probe = cluster.pass();
    assert_eq!(probe.restarts.len(), 1, "one probe per back-off");
    assert_eq!(probe.restarts[0].deployment, keys[0]);
    assert!(reasons(&probe).is_empty(), "the stall is not announced again");
    cluster.record(&[(keys[0].clone(), RestartOutcome::Forbidden("403".into()))]);
    cluster.forbidden = Some(refused_until(200));
    cluster.now = at(150);
    let held = cluster.pass();
    assert!(held.restarts.is_empty());
    // Each service waiting to be sent says why, naming the refused permission.
    let messages: Vec<Option<&str>> =
        held.status.batches[0].services.iter().map(|row| row.message.as_deref()).collect();
    let hold = "held: the API server forbids patch deployments.apps in namespace arcgis; \
                retried until it is granted";
    assert_eq!(messages, [Some(hold); 3], "{messages:?}");
    assert!(
        results(&cluster).iter().all(|(_, result, _)| result.is_none()),
        "no service fails while the permission is missing: {:?}",
        results(&cluster)
    );

    // The grant is restored: the next probe goes through and the shell forgets the refusal.
    cluster.forbidden = Some(refused_until(200));
    cluster.now = at(200);
    let probe = cluster.pass();
    assert_eq!(probe.restarts.len(), 1);
    cluster.apply(&probe);
    cluster.forbidden = None;
    let resumed = cluster.pass();
    assert_eq!(resumed.restarts.len(), 2, "the rest of the batch goes out");
    let (value, reason, _) = condition(&resumed.status, STALLED);
    assert_eq!((value, reason), ("False", "Running"));
    let batch = &resumed.status.batches[0];
    assert_eq!(batch.start_time.as_ref().map(|time| time.0), Some(at(200)), "a fresh clock");
    cluster.apply(&resumed);
    cluster.roll_out_all();
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
    assert_eq!(cluster.status().totals.failed, 0);
    assert_eq!(cluster.status().totals.restarted, 6);
}

#[test]
fn no_run_starts_while_a_refused_write_waits_for_its_retry() {
    let mut cluster = ModelCluster::new(json!({"selector": {}}));
    cluster.add_many(2);
    cluster.forbidden = Some(refused_until(10));
    let held = cluster.pass();
    assert!(held.plan_objects.is_empty() && held.restarts.is_empty());
    assert_eq!(condition(&held.status, STALLED).1, FORBIDDEN);
    assert_eq!(held.wake_at, Some(at(10)));
    cluster.forbidden = None;
    cluster.now = at(10);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
}
