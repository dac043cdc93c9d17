//! Canary first and slow start on the simulated cluster, with the operator in-process.
//!
//! - A canary whose rollout fails (the sim's `sim.gisops.io/fail` knob on that Deployment)
//!   ends the run as Failed, reason `CanaryFailed`, under `failurePolicy: Continue`, with
//!   only the canaries restarted: the sim's own count of pod-template changes shows it.
//! - A healthy canary soaks (`status.waiting` shows `CanarySoak` with its end) and the run
//!   then succeeds; under slow start the status's batches grow 1, 2, … up to `batchSize`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{NAMESPACE, Operator, SimCluster, assert_template_changes, fleet};
use kube::api::{Patch, PatchParams};
use serde_json::json;
use servicerefresh_core::crd::{Phase, ServiceRefreshStatus};
use servicerefresh_core::engine::conditions::{STALLED, find};
use servicerefresh_core::engine::positions::PositionSet;

const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// A settled fleet of `deployments`, its names in plan order (by name).
async fn settled_fleet(deployments: usize, seed: u64) -> (SimCluster, Vec<String>) {
    let cluster = SimCluster::start(fleet(deployments, 0, seed)).await;
    let names = cluster.all_deployment_names().await;
    assert_eq!(names.len(), deployments);
    (cluster, names)
}

/// The number of services of each batch the status lists, in order.
fn batch_sizes(status: &ServiceRefreshStatus) -> Vec<u64> {
    status
        .batches
        .iter()
        .map(|batch| {
            let positions = batch.positions.as_deref().unwrap_or_default();
            PositionSet::parse(positions).expect("batch positions").len()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_canary_ends_the_run_with_only_the_canaries_restarted() {
    let (cluster, names) = settled_fleet(6, 18).await;
    // The first Deployment in plan order, a canary, cannot roll out.
    let knob = Patch::Merge(json!({"metadata": {"annotations": {"sim.gisops.io/fail": "true"}}}));
    cluster.deployments().patch(&names[0], &PatchParams::default(), &knob).await.expect("patch");

    let operator = Operator::start(&cluster.client);
    cluster
        .create_refresh(
            "nightly",
            json!({
                "selector": {}, "batchSize": 3, "failurePolicy": "Continue",
                "pacing": {"canary": {"size": 2, "soak": "30s"}},
            }),
        )
        .await;
    let status = cluster.wait_for_run_end("nightly", RUN_DEADLINE).await;
    operator.stop().await;

    assert_eq!(status.phase, Some(Phase::Failed));
    let stalled = find(&status.conditions, STALLED).expect("Stalled");
    assert_eq!((stalled.status.as_str(), stalled.reason.as_str()), ("True", "CanaryFailed"));
    let canary = format!("{NAMESPACE}/{}", names[0]);
    assert!(
        stalled.message.contains(&format!("{}: Failed: deployment {:?}", canary, names[0])),
        "{}",
        stalled.message
    );
    let skipped = status.results.iter().find(|group| group.reason == "CanaryFailed");
    let skipped = skipped.expect("the services after the canary are skipped for it");
    assert_eq!((skipped.count, skipped.positions.as_str()), (4, "2-5"));
    assert!(
        skipped
            .message
            .starts_with(&format!("stopped by the canary: Deployment {canary} ended Failed")),
        "{}",
        skipped.message
    );
    assert_eq!(batch_sizes(&status), [2]);
    assert_template_changes(&cluster.sim, &names[..2], 1);
    assert_template_changes(&cluster.sim, &names[2..], 0);
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_canary_soaks_then_slow_start_grows_the_batches_and_the_run_succeeds() {
    let (cluster, names) = settled_fleet(8, 19).await;
    let operator = Operator::start(&cluster.client);
    cluster
        .create_refresh(
            "nightly",
            json!({
                "selector": {}, "batchSize": 3,
                "pacing": {"canary": {"size": 1, "soak": "4s"}, "slowStart": true},
            }),
        )
        .await;
    let waits = std::sync::Mutex::new(BTreeSet::new());
    let status = common::wait_for(RUN_DEADLINE, "the run to end", || async {
        let status = cluster.status("nightly").await?;
        if let Some(waiting) = &status.waiting {
            let until = waiting.until.is_some();
            waits.lock().expect("not poisoned").insert((waiting.reason.clone(), until));
        }
        matches!(status.phase, Some(Phase::Succeeded | Phase::Failed)).then_some(status)
    })
    .await;
    operator.stop().await;

    assert_eq!(status.phase, Some(Phase::Succeeded), "{:#?}", status.results);
    let waits = waits.into_inner().expect("not poisoned");
    assert!(waits.contains(&("CanarySoak".to_owned(), true)), "{waits:?}");
    // The canary, then 1, 2, then batchSize, and the rest.
    assert_eq!(batch_sizes(&status), [1, 1, 2, 3, 1]);
    let canary_end = status.batches[0].end_time.as_ref().expect("canary ended").0;
    let second_start = status.batches[1].start_time.as_ref().expect("batch 2 started").0;
    assert!(
        second_start.duration_since(canary_end) >= jiff::SignedDuration::from_secs(4),
        "batch 2 started {canary_end} → {second_start}, inside the soak"
    );
    assert_template_changes(&cluster.sim, &names, 1);
    cluster.sim.shutdown().await;
}
