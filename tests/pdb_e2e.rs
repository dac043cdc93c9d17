//! PodDisruptionBudget awareness on the simulated cluster, whose disruption controller
//! computes each budget's `status.disruptionsAllowed` from the pods it covers.
//!
//! - Two Deployments under one budget are never in the same batch: the second is restarted
//!   only after the first's rollout ended (the sim's request log orders their patches), and
//!   the status said why it waited.
//! - A Deployment whose budget allows no disruption is held, with its reason in the status
//!   and in `kubectl get sref`'s REASON column, and restarted once the budget allows one.
//! - With `respectDisruptionBudgets: false` the same Deployment is restarted at once.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::kubectl::Kubectl;
use common::{NAMESPACE, Operator, SimCluster, assert_template_changes};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use servicerefresh_core::crd::{Phase, ServiceRefreshStatus, ServiceResult};
use servicerefresh_sim::SimConfig;

const RUN_DEADLINE: Duration = Duration::from_secs(120);
/// How long each rollout takes in the sim: long enough that two overlapping ones would show.
const ROLLOUT_MS: u64 = 1_500;

fn deployment(name: &str, replicas: u32, group: Option<&str>) -> Deployment {
    let mut labels = json!({"app": name});
    if let Some(group) = group {
        labels["budget"] = json!(group);
    }
    serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": {"app": name},
            "annotations": {"sim.gisops.io/rollout-ms": ROLLOUT_MS.to_string()},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "arcgis/service:11.3"}]},
            },
        },
    }))
    .expect("a Deployment")
}

fn budget(name: &str, min_available: u32) -> PodDisruptionBudget {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"budget": name}}},
    }))
    .expect("a PodDisruptionBudget")
}

/// A cluster with `fleet` (name, replicas, budget) rolled out and `budgets` (name,
/// minAvailable) computed by the disruption controller.
async fn cluster(fleet: &[(&str, u32, Option<&str>)], budgets: &[(&str, u32)]) -> SimCluster {
    let cluster = SimCluster::start(SimConfig::default()).await;
    let deployments = cluster.deployments();
    for (name, replicas, group) in fleet {
        deployments
            .create(&PostParams::default(), &deployment(name, *replicas, *group))
            .await
            .expect("create Deployment");
    }
    let api = budgets_api(&cluster);
    for (name, min_available) in budgets {
        api.create(&PostParams::default(), &budget(name, *min_available))
            .await
            .expect("create PodDisruptionBudget");
    }
    common::wait_for(Duration::from_secs(60), "the fleet to roll out", || async {
        let list = deployments.list(&ListParams::default()).await.expect("list");
        list.items
            .iter()
            .all(|d| d.status.as_ref().and_then(|s| s.available_replicas) == d.spec.replicas)
            .then_some(())
    })
    .await;
    // Every budget's status counts the fleet's pods before a run looks at it.
    common::wait_for(Duration::from_secs(30), "the budgets' status", || async {
        let list = api.list(&ListParams::default()).await.expect("list budgets");
        list.items
            .iter()
            .all(|b| b.status.as_ref().is_some_and(|s| s.expected_pods.unwrap_or(0) > 0))
            .then_some(())
    })
    .await;
    cluster
}

fn budgets_api(cluster: &SimCluster) -> Api<PodDisruptionBudget> {
    Api::namespaced(cluster.client.clone(), NAMESPACE)
}

/// Polls the run until it ends, collecting every wait the status showed.
async fn run_to_end(cluster: &SimCluster, name: &str) -> (ServiceRefreshStatus, BTreeSet<String>) {
    let waits = std::sync::Mutex::new(BTreeSet::new());
    let status = common::wait_for(RUN_DEADLINE, "the run to end", || async {
        let status = cluster.status(name).await?;
        if let Some(waiting) = &status.waiting {
            let seen = format!("{}: {}", waiting.reason, waiting.message);
            waits.lock().expect("not poisoned").insert(seen);
        }
        matches!(status.phase, Some(Phase::Succeeded | Phase::Failed)).then_some(status)
    })
    .await;
    (status, waits.into_inner().expect("not poisoned"))
}

/// When the sim accepted each Deployment's restart patch, in ms since it started.
fn patched_at(cluster: &SimCluster) -> Vec<(String, u64)> {
    cluster
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.verb == "patch" && r.code == Some(200) && r.path.contains("/deployments/"))
        .map(|r| (r.path.rsplit('/').next().unwrap_or_default().to_owned(), r.at_ms))
        .collect()
}

/// The batch (from 1) of each Deployment of the run, named through its plan.
async fn batch_of(cluster: &SimCluster, name: &str) -> Option<u32> {
    let view = cluster.run_view("nightly").await;
    view.batches
        .iter()
        .find(|batch| batch.services.iter().any(|service| service.key.name == name))
        .map(|batch| batch.index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deployments_under_one_budget_never_roll_out_together() {
    let fleet = [
        ("svc-a", 1, Some("shared")),
        ("svc-b", 1, Some("shared")),
        ("svc-c", 1, None),
        ("svc-d", 1, None),
    ];
    let cluster = cluster(&fleet, &[("shared", 0)]).await;
    let operator = Operator::start(&cluster.client);
    cluster.create_refresh("nightly", json!({"selector": {}, "batchSize": 4})).await;
    let (status, waits) = run_to_end(&cluster, "nightly").await;
    operator.stop().await;

    assert_eq!(status.phase, Some(Phase::Succeeded), "{:#?}", status.results);
    assert_eq!(status.totals.ready, 4);
    let (a, b) = (batch_of(&cluster, "svc-a").await, batch_of(&cluster, "svc-b").await);
    assert!(a.is_some() && a != b, "svc-a in batch {a:?}, svc-b in {b:?}");
    let patches = patched_at(&cluster);
    let at = |name: &str| {
        let times: Vec<u64> = patches.iter().filter(|(n, _)| n == name).map(|(_, t)| *t).collect();
        assert_eq!(times.len(), 1, "{name} patched once: {patches:?}");
        times[0]
    };
    // svc-b's restart waits for svc-a's rollout, which the sim takes ROLLOUT_MS to finish.
    assert!(at("svc-b") >= at("svc-a") + ROLLOUT_MS, "{patches:?}");
    assert!(
        waits.iter().any(|wait| wait
            == "WaitingForDisruptionBudget: Deployment arcgis/svc-b waits for the next batch: \
                PodDisruptionBudget arcgis/shared also covers Deployment arcgis/svc-a, in \
                flight in batch 1"),
        "{waits:#?}"
    );
    let names: Vec<String> = fleet.iter().map(|(name, ..)| (*name).to_owned()).collect();
    assert_template_changes(&cluster.sim, &names, 1);
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_whose_budget_allows_no_disruption_waits_until_it_allows_one() {
    let cluster = cluster(&[("svc-a", 2, Some("zero")), ("svc-b", 1, None)], &[("zero", 2)]).await;
    let operator = Operator::start(&cluster.client);
    let spec = json!({"selector": {}, "batchSize": 2, "batchTimeout": "5m"});
    cluster.create_refresh("nightly", spec).await;

    let held = common::wait_for(RUN_DEADLINE, "svc-a to be held", || async {
        let status = cluster.status("nightly").await?;
        let waiting = status.waiting.clone()?;
        let b_ready = status
            .batches
            .first()?
            .services
            .iter()
            .any(|row| row.name == "svc-b" && row.result == Some(ServiceResult::Ready));
        (waiting.reason == "WaitingForDisruptionBudget" && b_ready).then_some(waiting)
    })
    .await;
    assert_eq!(
        held.message,
        "Deployment arcgis/svc-a is held: PodDisruptionBudget arcgis/zero allows no disruption \
         now: the disruption budget zero needs 2 healthy pods and has 2 currently \
         (disruptionsAllowed 0); it is restarted once the budget allows one"
    );
    let table = Kubectl::for_sim(&cluster.sim).ok(&["get", "sref", "-n", NAMESPACE]).await;
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(row.contains("WaitingForDisruptionBudget"), "{table}");
    assert_template_changes(&cluster.sim, &["svc-a".to_owned()], 0);

    let allow = Patch::Merge(json!({"spec": {"minAvailable": 1}}));
    budgets_api(&cluster)
        .patch("zero", &PatchParams::default(), &allow)
        .await
        .expect("lower minAvailable");
    let (status, _) = run_to_end(&cluster, "nightly").await;
    operator.stop().await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{:#?}", status.results);
    assert_eq!(status.totals.ready, 2);
    assert_eq!(status.waiting, None);
    assert_template_changes(&cluster.sim, &["svc-a".to_owned(), "svc-b".to_owned()], 1);
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_respect_disruption_budgets_false_it_is_restarted_at_once() {
    let cluster = cluster(&[("svc-a", 2, Some("zero")), ("svc-b", 1, None)], &[("zero", 2)]).await;
    let operator = Operator::start(&cluster.client);
    let spec = json!({"selector": {}, "batchSize": 2,
                      "pacing": {"respectDisruptionBudgets": false}});
    cluster.create_refresh("nightly", spec).await;
    let (status, waits) = run_to_end(&cluster, "nightly").await;
    operator.stop().await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{:#?}", status.results);
    assert_eq!(status.totals.ready, 2);
    assert!(waits.is_empty(), "{waits:#?}");
    assert_eq!(batch_of(&cluster, "svc-a").await, Some(1));
    assert_template_changes(&cluster.sim, &["svc-a".to_owned(), "svc-b".to_owned()], 1);
    cluster.sim.shutdown().await;
}
