//! StatefulSets and DaemonSets as restart targets, end to end on the simulated cluster: a
//! mixed fleet restarts each workload exactly once (counted from the sim's request log) and
//! never holds more than `batchSize` in flight (checked on every status version a watch
//! delivers); a StatefulSet with `updateStrategy: OnDelete` ends Skipped, saying why; a
//! resource listing a kind the operator does not watch ends Stalled.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{NAMESPACE, Operator, SimCluster, fleet, wait_for};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use servicerefresh_core::crd::{Phase, ServiceRefresh, ServiceResult, WorkloadKind};
use servicerefresh_core::engine::{ObjectKey, OperatorScope};
use servicerefresh_operator::controller::OperatorConfig;
use servicerefresh_sim::SimConfig;

const BATCH_SIZE: usize = 3;

fn all_kinds() -> OperatorConfig {
    OperatorConfig {
        retry_delay: Duration::from_millis(200),
        scope: OperatorScope {
            extra_kinds: BTreeSet::from([WorkloadKind::StatefulSet, WorkloadKind::DaemonSet]),
            ..OperatorScope::default()
        },
        ..Default::default()
    }
}

/// The names of the fleet's workloads of `kind`.
async fn names(cluster: &SimCluster, kind: WorkloadKind) -> Vec<String> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps", "v1", kind.as_str()),
        kind.plural(),
    );
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), NAMESPACE, &resource);
    let mut names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|object| object.metadata.name)
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_fleet_restarts_each_workload_once_within_the_batch_size() {
    let cluster =
        SimCluster::start(SimConfig { stateful_sets: 3, daemon_sets: 2, ..fleet(5, 0, 17) }).await;
    let stateful_sets = names(&cluster, WorkloadKind::StatefulSet).await;
    let daemon_sets = names(&cluster, WorkloadKind::DaemonSet).await;
    let deployments = cluster.all_deployment_names().await;
    assert_eq!((deployments.len(), stateful_sets.len(), daemon_sets.len()), (5, 3, 2));

    // One StatefulSet a template patch cannot roll: it must be left alone, saying why.
    let on_delete = stateful_sets[0].clone();
    let sets: Api<DynamicObject> = Api::namespaced_with(
        cluster.client.clone(),
        NAMESPACE,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apps", "v1", "StatefulSet"),
            "statefulsets",
        ),
    );
    let strategy = json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}});
    sets.patch(&on_delete, &PatchParams::default(), &Patch::Merge(strategy))
        .await
        .expect("switch to OnDelete");
    let before = cluster.sim.requests().len();

    // Every status version the API server stores, in order.
    let versions = tokio::spawn(
        watcher(cluster.refreshes(), watcher::Config::default().fields("metadata.name=mixed"))
            .applied_objects()
            .take_while(|refresh| {
                let ended =
                    refresh.as_ref().ok().and_then(|r| r.status.as_ref()).is_some_and(|status| {
                        matches!(status.phase, Some(Phase::Succeeded | Phase::Failed))
                    });
                std::future::ready(!ended)
            })
            .try_collect::<Vec<ServiceRefresh>>(),
    );
    let operator = Operator::start_with(&cluster.client, all_kinds());
    cluster
        .create_refresh(
            "mixed",
            json!({"selector": {}, "batchSize": BATCH_SIZE, "batchTimeout": "60s",
                   "kinds": ["Deployment", "StatefulSet", "DaemonSet"]}),
        )
        .await;
    let status = cluster.wait_for_run_end("mixed", Duration::from_secs(90)).await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    assert_eq!((status.totals.ready, status.totals.skipped), (9, 1), "{:?}", status.totals);

    // Restarted exactly once each, as the API server saw it; the OnDelete one never.
    let mut patched: BTreeMap<(String, String), usize> = BTreeMap::new();
    for request in &cluster.sim.requests()[before..] {
        if request.verb != "patch" || request.code != Some(200) || request.path.ends_with("/status")
        {
            continue;
        }
        let mut parts = request.path.rsplit('/');
        let (Some(name), Some(plural)) = (parts.next(), parts.next()) else { continue };
        if ["deployments", "statefulsets", "daemonsets"].contains(&plural) {
            *patched.entry((plural.to_owned(), name.to_owned())).or_default() += 1;
        }
    }
    let mut expected: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (plural, names) in [
        ("deployments", &deployments),
        ("statefulsets", &stateful_sets),
        ("daemonsets", &daemon_sets),
    ] {
        for name in names.iter().filter(|name| **name != on_delete) {
            expected.insert((plural.to_owned(), name.clone()), 1);
        }
    }
    assert_eq!(patched, expected, "one restart patch per workload");

    // The in-flight budget: services restarted and without a result, in every stored status.
    let versions = versions.await.expect("watch task").expect("watch");
    assert!(versions.len() > 3, "the watch saw the run progress");
    for refresh in &versions {
        let Some(status) = &refresh.status else { continue };
        let in_flight = status
            .batches
            .iter()
            .flat_map(|batch| &batch.services)
            .filter(|row| row.result.is_none() && row.generation.is_some())
            .count();
        assert!(in_flight <= BATCH_SIZE, "{in_flight} in flight: {status:#?}");
    }

    // Every row names its kind; the OnDelete StatefulSet says why it was skipped.
    let view = cluster.run_view("mixed").await;
    let services: Vec<_> = view.services().collect();
    assert_eq!(services.len(), 10);
    let skipped = view
        .service(&ObjectKey::workload(WorkloadKind::StatefulSet, NAMESPACE, &on_delete))
        .expect("the OnDelete StatefulSet is in the plan");
    assert_eq!(skipped.result, Some(ServiceResult::Skipped));
    assert_eq!(skipped.reason.as_deref(), Some("OnDeleteStrategy"));
    let message = skipped.message.as_deref().unwrap_or_default();
    assert!(message.contains("this StatefulSet has updateStrategy OnDelete"), "{message}");
    for kind in WorkloadKind::ALL {
        assert!(services.iter().any(|service| service.key.kind == kind), "no {kind} in the run");
    }
    operator.stop().await;
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_the_operator_does_not_watch_stalls_the_resource() {
    let cluster = SimCluster::start(SimConfig { stateful_sets: 1, ..fleet(1, 0, 5) }).await;
    let operator = Operator::start(&cluster.client);
    cluster.create_refresh("sets", json!({"selector": {}, "kinds": ["StatefulSet"]})).await;
    let stalled = wait_for(Duration::from_secs(30), "the resource to stall", || async {
        let status = cluster.status("sets").await?;
        status.conditions.iter().find(|c| c.type_ == "Stalled" && c.status == "True").cloned()
    })
    .await;
    assert_eq!(stalled.reason, "KindNotWatched");
    assert!(
        stalled.message.contains("--workload-kinds including StatefulSet"),
        "{}",
        stalled.message
    );
    let patches = cluster
        .sim
        .requests()
        .iter()
        .filter(|r| r.verb == "patch" && r.path.contains("/statefulsets/"))
        .count();
    assert_eq!(patches, 0, "nothing restarted");
    operator.stop().await;
    cluster.sim.shutdown().await;
}
