//! End-to-end behaviour of the operator against the simulated cluster: full runs, Abort,
//! operator restarts mid-run, API faults, the API requests a run costs, GitOps re-applies and
//! bad input. What starts, queues and holds a run is `scheduling_e2e.rs`; crashes at the
//! worst moment of every batch are `crash_e2e.rs`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{NAMESPACE, Operator, SimCluster, assert_template_changes, fleet, wait_for};
use serde_json::json;
use servicerefresh_core::crd::{BatchPhase, Phase, ServiceRefreshStatus, ServiceResult};
use servicerefresh_core::engine::view::RunView;
use servicerefresh_sim::FaultConfig;

const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// The generated fleet these tests were written against.
const FLEET_SEED: u64 = 7;

fn results(view: &RunView) -> BTreeMap<String, (ServiceResult, Option<String>)> {
    view.services()
        .map(|s| {
            (
                s.key.name.clone(),
                (s.result.expect("every planned service has a result"), s.message.clone()),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_run_restarts_every_deployment_once_in_batches_of_ten() {
    let cluster = SimCluster::start(fleet(137, 3, FLEET_SEED)).await;
    let names = cluster.all_deployment_names().await;
    let failing = cluster.failing_deployments().await;
    assert_eq!((names.len(), failing.len()), (137, 3));
    let operator = Operator::start(&cluster.client);

    cluster
        .create_refresh("full", json!({"selector": {}, "batchSize": 10, "batchTimeout": "1m"}))
        .await;
    let status = cluster.wait_for_run_end("full", RUN_DEADLINE).await;
    operator.stop().await;

    let view = cluster.run_view("full").await;
    assert_eq!(view.batches.len(), 14);
    assert!(view.batches.iter().all(|b| b.phase == BatchPhase::Completed));
    assert!(view.batches[..13].iter().all(|b| b.services.len() == 10));
    assert_eq!(view.batches[13].services.len(), 7);
    let results = results(&view);
    assert_eq!(
        results.keys().cloned().collect::<Vec<_>>(),
        names,
        "plan covers the fleet in name order"
    );
    for name in &names {
        let (result, message) = &results[name];
        if failing.contains(name) {
            assert_eq!(*result, ServiceResult::Failed, "{name}");
            let message = message.as_deref().unwrap_or_default();
            assert!(message.contains("exceeded its progress deadline"), "{name}: {message}");
        } else {
            assert_eq!(*result, ServiceResult::Ready, "{name}");
        }
    }
    assert_eq!(status.phase, Some(Phase::Failed));
    assert_eq!((status.totals.services, status.totals.ready, status.totals.failed), (137, 134, 3));
    assert_eq!(status.progress.as_deref(), Some("134/137"));
    assert_eq!(status.batch.as_deref(), Some("14/14"));

    let stats = cluster.sim.stats();
    assert_template_changes(&cluster.sim, &names, 1);
    assert!(stats.peak_rolling <= 10, "peak rolling {} exceeds the batch size", stats.peak_rolling);
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_stops_after_the_first_failing_batch() {
    let cluster = SimCluster::start(fleet(40, 2, FLEET_SEED)).await;
    let names = cluster.all_deployment_names().await;
    let failing = cluster.failing_deployments().await;
    let first_failing_batch =
        names.iter().position(|n| n == &failing[0]).expect("failing is planned") / 5;
    let operator = Operator::start(&cluster.client);

    cluster
        .create_refresh("abort", json!({"selector": {}, "batchSize": 5, "failurePolicy": "Abort"}))
        .await;
    let status = cluster.wait_for_run_end("abort", RUN_DEADLINE).await;
    operator.stop().await;

    assert_eq!(status.phase, Some(Phase::Failed));
    let stats = cluster.sim.stats();
    let view = cluster.run_view("abort").await;
    let mut services: Vec<_> = view.services().collect();
    services.sort_by_key(|service| service.position);
    assert_eq!(services.len(), names.len(), "every planned service has a result");
    // Batches of 5 cut in plan order: plan position / 5 is the batch.
    for service in services {
        let index = service.position.expect("a planned service has a position") as usize / 5;
        let name = &service.key.name;
        let changes =
            stats.template_changes.get(&format!("{NAMESPACE}/{name}")).copied().unwrap_or(0);
        if index <= first_failing_batch {
            assert_eq!(changes, 1, "{name} in batch {} is restarted", index + 1);
            assert_ne!(service.result, Some(ServiceResult::Skipped));
        } else {
            assert_eq!(
                changes,
                0,
                "{name} in batch {} must not be restarted after the abort",
                index + 1
            );
            assert_eq!(service.result, Some(ServiceResult::Skipped), "{name}");
        }
    }
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_restarts_mid_run_never_restart_a_deployment_twice() {
    let cluster = SimCluster::start(fleet(60, 0, FLEET_SEED)).await;
    let names = cluster.all_deployment_names().await;
    let mut operator = Operator::start(&cluster.client);
    cluster.create_refresh("restarts", json!({"selector": {}, "batchSize": 6})).await;

    // Stop at three different points of the run: gracefully, abruptly, gracefully.
    for (round, batch) in [(0, 2usize), (1, 5), (2, 8)] {
        wait_for(RUN_DEADLINE, &format!("batch {batch} to start"), || async {
            let status = cluster.status("restarts").await?;
            common::batch(&status, batch).map(|_| ())
        })
        .await;
        if round == 1 {
            operator.kill();
        } else {
            operator.stop().await;
        }
        operator = Operator::start(&cluster.client);
    }

    let status = cluster.wait_for_run_end("restarts", RUN_DEADLINE).await;
    operator.stop().await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{:?}", status.run);
    assert_eq!(status.totals.ready, 60);
    assert_template_changes(&cluster.sim, &names, 1);
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_completes_despite_failing_writes_and_dropped_watches() {
    let cluster = SimCluster::start(fleet(50, 0, FLEET_SEED)).await;
    let names = cluster.all_deployment_names().await;
    cluster.sim.set_faults(FaultConfig {
        write_error_rate: 0.05,
        latency_ms: 0,
        watch_drop_every_ms: Some(2000),
    });
    let operator = Operator::start(&cluster.client);
    // The create itself may meet an injected error, as a kubectl user would.
    wait_for(Duration::from_secs(10), "the ServiceRefresh to be created", || async {
        let refresh = serde_json::from_value(json!({
            "apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
            "metadata": {"name": "faults", "namespace": NAMESPACE},
            "spec": {"selector": {}, "batchSize": 10}
        }))
        .ok()?;
        cluster.refreshes().create(&Default::default(), &refresh).await.ok().map(|_| ())
    })
    .await;

    let status = cluster.wait_for_run_end("faults", RUN_DEADLINE).await;
    operator.stop().await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{:?}", status.run);
    assert_eq!(status.totals.ready, 50);
    assert_template_changes(&cluster.sim, &names, 1);
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_costs_one_patch_per_deployment_and_a_few_status_writes_per_batch() {
    let cluster = SimCluster::start(fleet(100, 0, FLEET_SEED)).await;
    cluster.sim.reset_stats();
    let operator = Operator::start(&cluster.client);
    cluster.create_refresh("counts", json!({"selector": {}, "batchSize": 10})).await;
    let status = cluster.wait_for_run_end("counts", RUN_DEADLINE).await;
    operator.stop().await;
    assert_eq!(status.phase, Some(Phase::Succeeded));

    let requests = cluster.sim.stats().requests;
    let count = |key: &str| requests.get(key).copied().unwrap_or(0);
    assert_eq!(count("get deployments"), 0, "no per-Deployment GET: {requests:#?}");
    assert!(count("list deployments") <= 1, "one initial LIST at most: {requests:#?}");
    assert!(
        (100..=105).contains(&count("patch deployments")),
        "about one patch per Deployment: {requests:#?}"
    );
    let status_writes =
        count("patch servicerefreshes/status") + count("update servicerefreshes/status");
    assert!(
        status_writes <= 10 * 4 + 4,
        "a few status writes per batch, got {status_writes}: {requests:#?}"
    );
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reapplying_an_unchanged_spec_starts_nothing_and_a_new_trigger_starts_one_run() {
    let cluster = SimCluster::start(fleet(12, 0, FLEET_SEED)).await;
    let names = cluster.all_deployment_names().await;
    let operator = Operator::start(&cluster.client);
    cluster
        .create_refresh("gitops", json!({"selector": {}, "batchSize": 10, "trigger": "v1"}))
        .await;
    let first = cluster.wait_for_run_end("gitops", RUN_DEADLINE).await;
    assert_eq!(first.phase, Some(Phase::Succeeded));

    // What a GitOps sync does: apply the same manifest again.
    let params = kube::api::PatchParams::apply("argocd").force();
    let same = json!({"apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
                      "metadata": {"name": "gitops"}, "spec": {"selector": {}, "batchSize": 10, "trigger": "v1"}});
    cluster
        .refreshes()
        .patch("gitops", &params, &kube::api::Patch::Apply(&same))
        .await
        .expect("re-apply");
    let changed = json!({"apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
                         "metadata": {"name": "gitops"}, "spec": {"selector": {}, "batchSize": 10, "trigger": "v2"}});
    cluster
        .refreshes()
        .patch("gitops", &params, &kube::api::Patch::Apply(&changed))
        .await
        .expect("apply v2");
    let second = wait_for(RUN_DEADLINE, "the second run to end", || async {
        cluster.status("gitops").await.filter(|s| {
            s.run.as_ref().is_some_and(|r| r.number == 2)
                && matches!(s.phase, Some(Phase::Succeeded | Phase::Failed))
        })
    })
    .await;
    assert_eq!(second.run.as_ref().map(|r| r.reason.as_str()), Some("TriggerChanged"));
    assert_eq!(second.history.len(), 2, "history records both runs: {:?}", second.history);

    // The ad-hoc trigger, as `kubectl annotate ... gisops.io/run-requested-at=...` sets it.
    let annotate = kube::api::Patch::Merge(
        json!({"metadata": {"annotations": {"gisops.io/run-requested-at": "2026-11-26T19:00:00Z"}}}),
    );
    cluster.refreshes().patch("gitops", &Default::default(), &annotate).await.expect("annotate");
    let third = wait_for(RUN_DEADLINE, "the requested run to end", || async {
        cluster.status("gitops").await.filter(|s| {
            s.run.as_ref().is_some_and(|r| r.number == 3)
                && matches!(s.phase, Some(Phase::Succeeded | Phase::Failed))
        })
    })
    .await;
    operator.stop().await;
    assert_eq!(third.run.as_ref().map(|r| r.reason.as_str()), Some("RunRequested"));
    let stats = cluster.sim.stats();
    for name in &names {
        let changes = stats.template_changes.get(&format!("{NAMESPACE}/{name}")).copied();
        assert_eq!(changes, Some(3), "{name}: one template change per run");
    }
    cluster.sim.shutdown().await;
}

fn condition<'a>(
    status: &'a ServiceRefreshStatus,
    kind: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    status.conditions.iter().find(|c| c.type_ == kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_ends_stalled_with_an_actionable_message() {
    let cluster = SimCluster::start(fleet(4, 0, FLEET_SEED)).await;
    let operator = Operator::start(&cluster.client);
    cluster
        .create_refresh(
            "bad-selector",
            json!({"selector": {"matchExpressions": [{"key": "tier", "operator": "Within", "values": ["gis"]}]}}),
        )
        .await;
    cluster
        .create_refresh(
            "missing-configmap",
            json!({"selector": {}, "configMapTriggers": [{"name": "nope"}]}),
        )
        .await;
    for (name, reason, needle) in [
        ("bad-selector", "InvalidSpec", "Within"),
        ("missing-configmap", "ConfigMapNotFound", "arcgis/nope"),
    ] {
        let status = wait_for(RUN_DEADLINE, &format!("{name} to stall"), || async {
            cluster
                .status(name)
                .await
                .filter(|s| condition(s, "Stalled").is_some_and(|c| c.status == "True"))
        })
        .await;
        let stalled = condition(&status, "Stalled").expect("Stalled condition");
        assert_eq!(stalled.reason, reason, "{name}");
        assert!(stalled.message.contains(needle), "{name}: {}", stalled.message);
        assert_eq!(condition(&status, "Ready").map(|c| c.status.as_str()), Some("False"));
    }
    let stats = cluster.sim.stats();
    assert!(
        stats.template_changes.values().all(|&n| n == 0),
        "nothing restarted: {:?}",
        stats.template_changes
    );
    operator.stop().await;
    cluster.sim.shutdown().await;
}
