//! StatefulSets and DaemonSets as restart targets, end to end on the simulated cluster: a
//! mixed fleet restarts each workload exactly once (counted from the sim's request log) and
//! never holds more than `batchSize` in flight (checked on every status version a watch
//! delivers); a StatefulSet with `updateStrategy: OnDelete` ends Skipped, saying why; a
//! resource listing a kind the operator does not watch ends Stalled. Ordered waves: no
//! restart patch of a wave-2 workload reaches the API server before every wave-1 workload's
//! rollout has completed (from the sim's request log and its own order of Deployment
//! changes), and `failurePolicy: Abort` stops the run in the wave that failed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{NAMESPACE, Operator, SimCluster, fleet, wait_for};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use servicerefresh_core::crd::{
    Phase, RESTARTED_BY_ANNOTATION, ServiceRefresh, ServiceResult, WorkloadKind,
};
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

/// Labels the named Deployments `tier=TIER` (metadata only: nothing rolls out).
async fn label(cluster: &SimCluster, names: &[String], tier: &str) {
    for name in names {
        let labels = json!({"metadata": {"labels": {"tier": tier}}});
        cluster
            .deployments()
            .patch(name, &PatchParams::default(), &Patch::Merge(labels))
            .await
            .expect("label the Deployment");
    }
}

/// The restart patches the API server applied, in arrival order: (ms since the sim started,
/// Deployment name).
fn restart_patches(cluster: &SimCluster, from: usize) -> Vec<(u64, String)> {
    cluster.sim.requests()[from..]
        .iter()
        .filter(|r| r.verb == "patch" && r.code == Some(200) && !r.path.ends_with("/status"))
        .filter_map(|r| {
            let (_, name) = r.path.rsplit_once("/deployments/")?;
            Some((r.at_ms, name.to_owned()))
        })
        .collect()
}

/// Whether a Deployment's rollout of the run is complete, as `kubectl rollout status` says:
/// restarted by a run, its generation observed, every replica updated and available.
fn restarted_and_complete(deployment: &Deployment) -> bool {
    let wanted = deployment.spec.replicas.unwrap_or(1);
    let Some(status) = &deployment.status else { return false };
    restarted(deployment)
        && status.observed_generation >= deployment.metadata.generation
        && status.updated_replicas.unwrap_or(0) == wanted
        && status.available_replicas.unwrap_or(0) == wanted
        && status.replicas.unwrap_or(0) == wanted
}

/// Whether a run's restart is on the Deployment's pod template.
fn restarted(deployment: &Deployment) -> bool {
    deployment
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|meta| meta.annotations.as_ref())
        .is_some_and(|annotations| annotations.contains_key(RESTARTED_BY_ANNOTATION))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wave_starts_only_after_every_workload_of_the_wave_before_is_ready() {
    let cluster = SimCluster::start(fleet(6, 0, 31)).await;
    let names = cluster.all_deployment_names().await;
    // The later names go first, so plan order cannot come from the names.
    let (users, system) = names.split_at(3);
    label(&cluster, system, "system").await;
    label(&cluster, users, "user").await;

    // Every Deployment change in the API server's order (one watch delivers them by
    // resourceVersion), with when the test received it.
    // The sim's clock, for the figures in a failure message.
    let (base, base_ms) = (std::time::Instant::now(), cluster.sim.now_ms());
    let sim_ms = move || base_ms + base.elapsed().as_millis() as u64;
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let (watching, watched) = tokio::sync::oneshot::channel();
    let changes = tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()));
        let mut watching = Some(watching);
        let mut seen = Vec::new();
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::InitDone) => {
                    if let Some(watching) = watching.take() {
                        let _ = watching.send(());
                    }
                }
                Ok(watcher::Event::Apply(deployment) | watcher::Event::InitApply(deployment)) => {
                    seen.push((sim_ms(), deployment));
                }
                Ok(_) | Err(_) => {}
            }
            if names_done(&seen) == 6 {
                return seen;
            }
        }
        seen
    });
    watched.await.expect("the Deployment watch lists");
    let before = cluster.sim.requests().len();

    let operator = Operator::start(&cluster.client);
    cluster
        .create_refresh(
            "waves",
            json!({"selector": {}, "batchSize": 2, "batchTimeout": "60s",
                   "waves": [{"selector": {"matchLabels": {"tier": "system"}}}]}),
        )
        .await;
    let status = cluster.wait_for_run_end("waves", Duration::from_secs(90)).await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    let waves: Vec<Option<u32>> = status.batches.iter().map(|batch| batch.wave).collect();
    assert_eq!(waves, [Some(0), Some(0), Some(1), Some(1)], "two batches per wave");

    // From the request log: every wave-1 restart arrived before any wave-2 restart.
    let patches = restart_patches(&cluster, before);
    let patched: BTreeSet<&String> = patches.iter().map(|(_, name)| name).collect();
    assert_eq!(patches.len(), 6, "one restart each: {patches:?}");
    assert_eq!(patched.len(), 6);
    let last_system = patches.iter().filter(|(_, n)| system.contains(n)).map(|(at, _)| *at).max();
    let first_user = patches.iter().filter(|(_, n)| users.contains(n)).map(|(at, _)| *at).min();
    assert!(last_system <= first_user, "a wave-2 restart before a wave-1 one: {patches:?}");

    // From the API server's order of changes: the first wave-2 Deployment carrying the
    // restart comes after every wave-1 Deployment completed its rollout.
    let seen = tokio::time::timeout(Duration::from_secs(60), changes)
        .await
        .expect("the watch saw every rollout complete")
        .expect("watch task");
    let position = |keep: &dyn Fn(&Deployment) -> bool| {
        seen.iter().position(|(_, deployment)| keep(deployment))
    };
    let first_user_restart =
        position(&|d| users.contains(d.metadata.name.as_ref().expect("name")) && restarted(d))
            .expect("wave 2 restarted");
    for name in system {
        let complete =
            position(&|d| d.metadata.name.as_ref() == Some(name) && restarted_and_complete(d))
                .unwrap_or_else(|| panic!("{name} completed its rollout"));
        assert!(
            complete < first_user_restart,
            "{name} completed at change {complete} (at {} ms), after wave 2 began at change \
             {first_user_restart} (at {} ms)",
            seen[complete].0,
            seen[first_user_restart].0
        );
    }
    operator.stop().await;
    cluster.sim.shutdown().await;
}

/// How many Deployments in `seen` have completed a rollout of the run.
fn names_done(seen: &[(u64, Deployment)]) -> usize {
    seen.iter()
        .filter(|(_, deployment)| restarted_and_complete(deployment))
        .filter_map(|(_, deployment)| deployment.metadata.name.as_deref())
        .collect::<BTreeSet<_>>()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_stops_the_run_in_the_wave_that_failed() {
    let cluster = SimCluster::start(fleet(4, 1, 7)).await;
    let failing = cluster.failing_deployments().await;
    assert_eq!(failing.len(), 1);
    let healthy: Vec<String> = cluster
        .all_deployment_names()
        .await
        .into_iter()
        .filter(|name| !failing.contains(name))
        .collect();
    // Wave 1: the failing Deployment and a healthy one; wave 2: the other two.
    let system: Vec<String> = failing.iter().chain(&healthy[..1]).cloned().collect();
    let users = &healthy[1..];
    label(&cluster, &system, "system").await;
    label(&cluster, users, "user").await;
    let before = cluster.sim.requests().len();

    let operator = Operator::start(&cluster.client);
    cluster
        .create_refresh(
            "abort",
            json!({"selector": {}, "batchSize": 2, "batchTimeout": "30s", "failurePolicy": "Abort",
                   "waves": [{"selector": {"matchLabels": {"tier": "system"}}}]}),
        )
        .await;
    let status = cluster.wait_for_run_end("abort", Duration::from_secs(90)).await;
    assert_eq!(status.phase, Some(Phase::Failed), "{status:#?}");
    let patched: BTreeSet<String> =
        restart_patches(&cluster, before).into_iter().map(|(_, name)| name).collect();
    assert_eq!(patched, system.iter().cloned().collect(), "wave 2 was never restarted");
    assert!(status.batches.iter().all(|batch| batch.wave == Some(0)), "no batch of wave 2");

    let view = cluster.run_view("abort").await;
    for name in users {
        let service = view.service(&ObjectKey::new(NAMESPACE, name)).expect("planned");
        assert_eq!(service.result, Some(ServiceResult::Skipped), "{name}");
        assert_eq!(service.reason.as_deref(), Some("Aborted"), "{name}");
    }
    let failed = view.service(&ObjectKey::new(NAMESPACE, &failing[0])).expect("planned");
    assert_eq!(failed.result, Some(ServiceResult::Failed));
    operator.stop().await;
    cluster.sim.shutdown().await;
}
