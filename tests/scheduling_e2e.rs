//! What starts, queues and holds a run, judged from the simulated cluster's own counters and
//! request log as well as from the status: a ConfigMap change restarts every selected
//! Deployment exactly once more (and a change outside the watched keys none), runs are
//! serialized cluster-wide so that no two runs' rollouts overlap, a dry run restarts nothing,
//! and a suspended run sends no restart patch until it is resumed.

mod common;

use std::time::Duration;

use common::{
    NAMESPACE, Operator, SimCluster, applied_deployment_patches, assert_template_changes, fleet,
    wait_for,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use servicerefresh_core::crd::{BatchPhase, Phase, ServiceRefreshStatus};
use servicerefresh_operator::controller::OperatorConfig;
use servicerefresh_sim::SimConfig;

const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// The generated fleet these tests were written against.
const FLEET_SEED: u64 = 7;

fn reason<'a>(status: &'a ServiceRefreshStatus, kind: &str) -> Option<&'a str> {
    status.conditions.iter().find(|c| c.type_ == kind).map(|c| c.reason.as_str())
}

async fn wait_for_run(cluster: &SimCluster, name: &str, number: u64) -> ServiceRefreshStatus {
    wait_for(RUN_DEADLINE, &format!("run {number} of {name} to end"), || async {
        cluster.status(name).await.filter(|s| {
            s.run.as_ref().is_some_and(|r| r.number >= number)
                && matches!(s.phase, Some(Phase::Succeeded | Phase::Failed))
        })
    })
    .await
}

/// The index in the sim's request log the next request will get.
fn log_mark(cluster: &SimCluster) -> usize {
    cluster.sim.requests().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_trigger_configmap_restarts_every_deployment_once_more() {
    let cluster = SimCluster::start(fleet(8, 0, FLEET_SEED)).await;
    let names = cluster.all_deployment_names().await;
    let config_maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let proxy: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "proxy-settings"}, "data": {"https_proxy": "http://proxy-a:3128", "unrelated": "1"}
    }))
    .expect("valid ConfigMap");
    config_maps.create(&Default::default(), &proxy).await.expect("create ConfigMap");
    let operator = Operator::start(&cluster.client);
    cluster
        .create_refresh(
            "on-proxy-change",
            json!({"selector": {}, "configMapTriggers": [{"name": "proxy-settings", "keys": ["https_proxy"]}]}),
        )
        .await;
    let first = wait_for_run(&cluster, "on-proxy-change", 1).await;
    assert_eq!(first.run.as_ref().map(|r| r.number), Some(1));
    assert_template_changes(&cluster.sim, &names, 1);

    // A key outside `keys` changes nothing: the operator has decided on a later edit and
    // still no run started, nothing was restarted.
    let patch = Patch::Merge(json!({"data": {"unrelated": "2"}}));
    config_maps.patch("proxy-settings", &PatchParams::default(), &patch).await.expect("patch");
    let settled = cluster.reconciled_after_edit("on-proxy-change", json!({"batchSize": 9})).await;
    assert_eq!(settled.run.as_ref().map(|r| r.number), Some(1), "{:?}", settled.run);
    assert_template_changes(&cluster.sim, &names, 1);

    // The watched key starts run 2, which restarts each Deployment exactly once more.
    let before = log_mark(&cluster);
    let patch = Patch::Merge(json!({"data": {"https_proxy": "http://proxy-b:3128"}}));
    config_maps.patch("proxy-settings", &PatchParams::default(), &patch).await.expect("patch");
    let second = wait_for_run(&cluster, "on-proxy-change", 2).await;
    let run = second.run.as_ref().expect("run");
    assert_eq!((run.number, run.reason.as_str()), (2, "ConfigMapChanged"));
    assert_eq!(second.phase, Some(Phase::Succeeded));
    assert_template_changes(&cluster.sim, &names, 2);
    assert_eq!(applied_deployment_patches(&cluster.sim.requests()[before..]), names.len());

    // Once it has run, the change is spent: a later decision starts no third run.
    let settled = cluster.reconciled_after_edit("on-proxy-change", json!({"batchSize": 8})).await;
    operator.stop().await;
    assert_eq!(settled.run.as_ref().map(|r| r.number), Some(2), "{:?}", settled.run);
    assert_template_changes(&cluster.sim, &names, 2);
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_serialized_and_never_overlap_on_the_cluster() {
    let cluster = SimCluster::start(fleet(20, 0, FLEET_SEED)).await;
    let names = cluster.all_deployment_names().await;
    let operator = Operator::start(&cluster.client);
    cluster.create_refresh("first", json!({"selector": {}, "batchSize": 5})).await;
    wait_for(RUN_DEADLINE, "the first run to start", || async {
        cluster.status("first").await.filter(|s| s.phase == Some(Phase::Running))
    })
    .await;
    cluster.create_refresh("second", json!({"selector": {}, "batchSize": 5})).await;
    let queued = wait_for(RUN_DEADLINE, "the second to be queued", || async {
        cluster.status("second").await.filter(|s| s.phase == Some(Phase::Pending))
    })
    .await;
    assert_eq!(reason(&queued, "Reconciling"), Some("Queued"));
    let first = cluster.wait_for_run_end("first", RUN_DEADLINE).await;
    let second = cluster.wait_for_run_end("second", RUN_DEADLINE).await;
    operator.stop().await;
    assert_eq!((first.phase, second.phase), (Some(Phase::Succeeded), Some(Phase::Succeeded)));
    let first_end = first.run.and_then(|r| r.end_time).expect("first ended");
    let second_start = second.run.and_then(|r| r.start_time).expect("second started");
    assert!(second_start >= first_end, "the second run starts after the first ends");

    // From the cluster: each run restarted every Deployment once, never more than one batch
    // rolled at a time, and every restart before the first run's final status write was the
    // first run's (the second sent none while it waited).
    assert_template_changes(&cluster.sim, &names, 2);
    let stats = cluster.sim.stats();
    assert!(
        stats.peak_rolling <= 5,
        "{} rollouts at once: the runs overlapped",
        stats.peak_rolling
    );
    let requests = cluster.sim.requests();
    let first_status = "/servicerefreshes/first/status";
    let first_done = requests
        .iter()
        .rposition(|r| r.verb == "patch" && r.path.ends_with(first_status) && r.code == Some(200))
        .expect("the first run's status writes");
    assert_eq!(applied_deployment_patches(&requests[..first_done]), names.len());
    assert_eq!(applied_deployment_patches(&requests[first_done..]), names.len());
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plans_and_restarts_nothing_and_suspend_holds_before_the_first_batch() {
    let cluster = SimCluster::start(fleet(12, 0, FLEET_SEED)).await;
    let names = cluster.all_deployment_names().await;
    let operator = Operator::start_with(
        &cluster.client,
        OperatorConfig {
            max_concurrent_runs: 2,
            retry_delay: Duration::from_millis(200),
            ..Default::default()
        },
    );
    let before_dry = log_mark(&cluster);
    cluster.create_refresh("dry", json!({"selector": {}, "batchSize": 5, "dryRun": true})).await;
    let dry = cluster.wait_for_run_end("dry", RUN_DEADLINE).await;
    assert_eq!(dry.phase, Some(Phase::Succeeded));
    assert_eq!((dry.batches.len(), dry.totals.skipped, dry.totals.restarted), (3, 12, 0));
    assert_eq!(dry.batch.as_deref(), Some("3/3"), "a dry run shows the batches it would cut");
    assert_template_changes(&cluster.sim, &names, 0);
    assert_eq!(applied_deployment_patches(&cluster.sim.requests()[before_dry..]), 0);

    let before_held = log_mark(&cluster);
    cluster.create_refresh("held", json!({"selector": {}, "batchSize": 5, "suspend": true})).await;
    let held = wait_for(RUN_DEADLINE, "the run to be suspended", || async {
        cluster.status("held").await.filter(|s| s.phase == Some(Phase::Suspended))
    })
    .await;
    let view = cluster.run_view("held").await;
    assert_eq!(view.not_started.len(), 12, "the plan is recorded while suspended");
    assert!(held.batches.is_empty(), "no batch starts while suspended");
    assert_eq!(held.batch.as_deref(), Some("1/3"));
    // A later decision while suspended still sends nothing.
    cluster.reconciled_after_edit("held", json!({"batchTimeout": "9m"})).await;
    let requests = cluster.sim.requests();
    assert_eq!(applied_deployment_patches(&requests[before_held..]), 0, "no patch while held");
    assert_template_changes(&cluster.sim, &names, 0);

    let resume = Patch::Merge(json!({"spec": {"suspend": false}}));
    cluster.refreshes().patch("held", &PatchParams::default(), &resume).await.expect("resume");
    let done = cluster.wait_for_run_end("held", RUN_DEADLINE).await;
    operator.stop().await;
    assert_eq!(done.phase, Some(Phase::Succeeded));
    assert_eq!(done.totals.ready, 12);
    assert_template_changes(&cluster.sim, &names, 1);
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspending_mid_run_finishes_the_batch_in_flight_and_sends_nothing_more() {
    // Rollouts long enough to suspend during batch 1, within their progress deadline.
    let config = SimConfig {
        rollout_ms: 1_500,
        rollout_jitter_ms: 0,
        progress_deadline_seconds: 600,
        ..fleet(12, 0, FLEET_SEED)
    };
    let cluster = SimCluster::start(config).await;
    let names = cluster.all_deployment_names().await;
    let operator = Operator::start(&cluster.client);
    cluster.create_refresh("paused", json!({"selector": {}, "batchSize": 4})).await;
    // The plan's status write can show batch 1 running before its restart patches went
    // out (the next pass sends them): wait for both.
    wait_for(RUN_DEADLINE, "batch 1 to run", || async {
        let status = cluster.status("paused").await?;
        let patched = applied_deployment_patches(&cluster.sim.requests()) == 4;
        (status.batches.first()?.phase == BatchPhase::Running && patched).then_some(())
    })
    .await;
    let suspended_at = log_mark(&cluster);
    let suspend = Patch::Merge(json!({"spec": {"suspend": true}}));
    cluster.refreshes().patch("paused", &PatchParams::default(), &suspend).await.expect("suspend");
    let held = wait_for(RUN_DEADLINE, "batch 1 to finish under suspension", || async {
        cluster.status("paused").await.filter(|s| {
            s.phase == Some(Phase::Suspended)
                && s.batches.first().is_some_and(|b| b.phase == BatchPhase::Completed)
        })
    })
    .await;
    assert_eq!(held.batches.len(), 1, "batch 2 never started");
    cluster.reconciled_after_edit("paused", json!({"batchTimeout": "9m"})).await;
    let requests = cluster.sim.requests();
    assert_eq!(applied_deployment_patches(&requests[suspended_at..]), 0, "no patch while held");
    let view = cluster.run_view("paused").await;
    let batch_one: Vec<String> =
        view.batches[0].services.iter().map(|s| s.key.name.clone()).collect();
    let rest: Vec<String> = names.iter().filter(|n| !batch_one.contains(n)).cloned().collect();
    assert_eq!(batch_one.len(), 4);
    assert_template_changes(&cluster.sim, &batch_one, 1);
    assert_template_changes(&cluster.sim, &rest, 0);

    let resume = Patch::Merge(json!({"spec": {"suspend": false}}));
    cluster.refreshes().patch("paused", &PatchParams::default(), &resume).await.expect("resume");
    let done = cluster.wait_for_run_end("paused", RUN_DEADLINE).await;
    operator.stop().await;
    assert_eq!(done.phase, Some(Phase::Succeeded), "{:?}", done.run);
    assert_template_changes(&cluster.sim, &names, 1);
    cluster.sim.shutdown().await;
}
