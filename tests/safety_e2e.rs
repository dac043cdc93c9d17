//! The operator's safety promises against the simulated cluster, one test per defect found
//! by hand: tenancy (no reach into other namespaces unless allowed, honest answers outside
//! the watched namespace), overlapping runs that never wait out a timeout, the in-flight
//! bound after timeouts, sub-second timeouts, and the mistakes that must not pass silently.
#![cfg(feature = "dev")]

mod common;

use std::time::Duration;

use common::{NAMESPACE, Operator, SimCluster, fleet, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, Patch, PostParams};
use serde_json::json;
use servicerefresh_core::crd::{Phase, ServiceRefreshStatus, ServiceResult};
use servicerefresh_core::engine::OperatorScope;
use servicerefresh_operator::controller::OperatorConfig;
use servicerefresh_sim::SimConfig;

const DEADLINE: Duration = Duration::from_secs(90);

/// The generated fleet these tests were written against.
const FLEET_SEED: u64 = 11;

fn operator_with(
    cluster: &SimCluster,
    scope: OperatorScope,
    max_concurrent_runs: usize,
) -> Operator {
    Operator::start_with(
        &cluster.client,
        OperatorConfig {
            scope,
            max_concurrent_runs,
            retry_delay: Duration::from_millis(200),
            ..Default::default()
        },
    )
}

fn condition<'a>(
    status: &'a ServiceRefreshStatus,
    kind: &str,
) -> Option<(&'a str, &'a str, &'a str)> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| (c.status.as_str(), c.reason.as_str(), c.message.as_str()))
}

async fn create_namespace(cluster: &SimCluster, name: &str) {
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    match namespaces.create(&PostParams::default(), &namespace).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => panic!("cannot create namespace {name}: {error}"),
    }
}

async fn create_deployment(cluster: &SimCluster, namespace: &str, name: &str) {
    create_namespace(cluster, namespace).await;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), namespace);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {"sim.gisops.io/rollout-ms": "100"}},
                "spec": {"containers": [{"name": "main", "image": "registry.example/app:1"}]}
            }
        }
    }))
    .expect("valid Deployment");
    deployments.create(&PostParams::default(), &deployment).await.expect("create Deployment");
}

async fn create_config_map(
    cluster: &SimCluster,
    namespace: &str,
    name: &str,
    data: serde_json::Value,
) {
    create_namespace(cluster, namespace).await;
    let config_maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), namespace);
    let config_map: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": name}, "data": data}))
            .expect("ConfigMap");
    config_maps.create(&PostParams::default(), &config_map).await.expect("create ConfigMap");
}

async fn wait_for_stall(cluster: &SimCluster, name: &str, reason: &str) -> ServiceRefreshStatus {
    wait_for(DEADLINE, &format!("{name} to stall with {reason}"), || async {
        cluster.status(name).await.filter(|status| {
            condition(status, "Stalled")
                .is_some_and(|(value, why, _)| value == "True" && why == reason)
        })
    })
    .await
}

async fn events_about(cluster: &SimCluster, name: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let all = events.list(&ListParams::default()).await.expect("list events");
    all.items
        .into_iter()
        .filter(|event| event.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect()
}

fn changes(cluster: &SimCluster, namespace: &str, name: &str) -> u64 {
    cluster.sim.stats().template_changes.get(&format!("{namespace}/{name}")).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_namespace_is_refused_unless_the_operator_allows_it() {
    let cluster = SimCluster::start(fleet(2, 0, FLEET_SEED)).await;
    create_deployment(&cluster, "kube-system", "coredns").await;
    let operator = operator_with(&cluster, OperatorScope::default(), 1);
    cluster.create_refresh("reach", json!({"selector": {}, "namespaces": ["kube-system"]})).await;
    let stalled = wait_for_stall(&cluster, "reach", "CrossNamespaceRefused").await;
    let (_, _, message) = condition(&stalled, "Stalled").expect("Stalled");
    assert!(message.contains("--allow-cross-namespace"), "{message}");
    assert_eq!(stalled.phase, Some(Phase::Failed));
    assert!(stalled.run.is_none());
    assert_eq!(changes(&cluster, "kube-system", "coredns"), 0, "coredns must not be restarted");
    operator.stop().await;

    let allowed =
        OperatorScope { watch_namespace: None, allow_cross_namespace: true, ..Default::default() };
    let operator = operator_with(&cluster, allowed, 1);
    let status = wait_for(DEADLINE, "the allowed run to end", || async {
        cluster
            .status("reach")
            .await
            .filter(|s| s.run.as_ref().is_some_and(|run| run.end_time.is_some()))
    })
    .await;
    operator.stop().await;
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(changes(&cluster, "kube-system", "coredns"), 1);
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_watched_namespace_the_operator_says_it_cannot_see() {
    let cluster = SimCluster::start(fleet(2, 0, FLEET_SEED)).await;
    create_deployment(&cluster, "other", "elsewhere").await;
    create_config_map(&cluster, "other", "proxy", json!({"https_proxy": "http://p:3128"})).await;
    let watching = OperatorScope {
        watch_namespace: Some(NAMESPACE.to_owned()),
        allow_cross_namespace: true,
        ..Default::default()
    };
    let operator = operator_with(&cluster, watching, 1);
    cluster.create_refresh("far", json!({"selector": {}, "namespaces": ["other"]})).await;
    cluster
        .create_refresh(
            "far-trigger",
            json!({"selector": {}, "configMapTriggers": [{"name": "proxy", "namespace": "other"}]}),
        )
        .await;
    for name in ["far", "far-trigger"] {
        let status = wait_for_stall(&cluster, name, "NamespaceNotWatched").await;
        let (_, _, message) = condition(&status, "Stalled").expect("Stalled");
        assert!(message.contains("watches only namespace \"arcgis\""), "{name}: {message}");
        assert_ne!(status.phase, Some(Phase::Succeeded), "{name} must not report success");
    }
    operator.stop().await;
    assert_eq!(changes(&cluster, "other", "elsewhere"), 0);
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_runs_both_finish_without_waiting_out_a_timeout() {
    // 30 Deployments, so that two runs of 10 in flight each is a bound the fleet could break.
    let cluster = SimCluster::start(fleet(30, 0, FLEET_SEED)).await;
    let names = cluster.all_deployment_names().await;
    let operator = operator_with(&cluster, OperatorScope::default(), 2);
    // A timeout this long would fail the test's deadline if either run waited it out.
    let spec = json!({"selector": {}, "batchSize": 10, "batchTimeout": "10m"});
    cluster.create_refresh("left", spec.clone()).await;
    cluster.create_refresh("right", spec).await;
    let left = cluster.wait_for_run_end("left", DEADLINE).await;
    let right = cluster.wait_for_run_end("right", DEADLINE).await;
    operator.stop().await;
    for status in [&left, &right] {
        assert_eq!(status.phase, Some(Phase::Succeeded), "{:?}", status.run);
        assert_eq!(status.totals.ready, 30);
    }
    for name in &names {
        assert_eq!(changes(&cluster, NAMESPACE, name), 2, "{name}: restarted once by each run");
    }
    let peak = cluster.sim.stats().peak_rolling;
    assert!(peak <= 20, "{peak} rollouts at once: more than batchSize 10 per run");
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_out_rollouts_keep_their_place_so_never_more_than_a_batch_rolls() {
    // Six Deployments never become ready and never reach their progress deadline.
    let config = SimConfig { progress_deadline_seconds: 3_600, ..fleet(60, 6, FLEET_SEED) };
    let cluster = SimCluster::start(config).await;
    let operator = operator_with(&cluster, OperatorScope::default(), 1);
    cluster
        .create_refresh("bounded", json!({"selector": {}, "batchSize": 10, "batchTimeout": "5s"}))
        .await;
    let status = cluster.wait_for_run_end("bounded", DEADLINE).await;
    operator.stop().await;
    let stats = cluster.sim.stats();
    assert!(stats.peak_rolling <= 10, "peak rolling {} exceeds batchSize 10", stats.peak_rolling);
    assert_eq!(status.totals.services, 60);
    assert!(status.totals.failed >= 6, "the stuck ones time out: {:?}", status.totals);
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_below_the_rollouts_says_what_happened_and_warns() {
    let config = SimConfig {
        rollout_ms: 7_000,
        rollout_jitter_ms: 0,
        progress_deadline_seconds: 600,
        ..fleet(4, 0, FLEET_SEED)
    };
    let cluster = SimCluster::start(config).await;
    let names = cluster.all_deployment_names().await;
    // Under the minimum: refused at admission, with the rule's message.
    let refused = cluster
        .refreshes()
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
                "metadata": {"name": "instant"},
                "spec": {"selector": {}, "batchTimeout": "500ms"},
            }))
            .expect("a ServiceRefresh"),
        )
        .await
        .expect_err("500ms is under the 5s minimum");
    assert!(refused.to_string().contains("must be between 5s and 168h"), "{refused}");

    let operator = operator_with(&cluster, OperatorScope::default(), 1);
    cluster
        .create_refresh("quick", json!({"selector": {}, "batchSize": 4, "batchTimeout": "5s"}))
        .await;
    let status = cluster.wait_for_run_end("quick", DEADLINE).await;
    operator.stop().await;
    let view = cluster.run_view("quick").await;
    for service in view.services() {
        assert_eq!(service.result, Some(ServiceResult::TimedOut), "{}", service.key);
        let message = service.message.as_deref().unwrap_or_default();
        assert!(
            message.starts_with("not ready after spec.batchTimeout 5s: "),
            "{}: {message}",
            service.key
        );
    }
    let warning = condition(&status, "BatchTimeoutShort").expect("the timeout is called short");
    assert_eq!((warning.0, warning.1), ("True", "RolloutsOutlastTimeout"));
    assert!(warning.2.starts_with("4 rollouts were still progressing"), "{}", warning.2);
    for name in &names {
        assert_eq!(changes(&cluster, NAMESPACE, name), 1, "{name} was restarted");
    }
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_trigger_is_refused_and_a_long_one_is_recorded_as_a_digest() {
    let cluster = SimCluster::start(fleet(1, 0, FLEET_SEED)).await;
    let huge = "x".repeat(1024 * 1024);
    let refused = cluster
        .refreshes()
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
                "metadata": {"name": "huge", "namespace": NAMESPACE},
                "spec": {"selector": {}, "trigger": huge}
            }))
            .expect("object"),
        )
        .await;
    match refused {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(status.message.contains("spec.trigger"), "{}", status.message);
        }
        other => panic!("a 1 MB trigger must be refused, got {other:?}"),
    }
    let operator = operator_with(&cluster, OperatorScope::default(), 1);
    cluster.create_refresh("long", json!({"selector": {}, "trigger": "y".repeat(1024)})).await;
    let status = cluster.wait_for_run_end("long", DEADLINE).await;
    operator.stop().await;
    let digest = status.triggers.token_digest.clone().expect("digest");
    assert!(digest.len() < 40, "{digest}");
    assert_eq!(status.triggers.token, None);
    let object = cluster.refreshes().get("long").await.expect("get");
    let size = serde_json::to_vec(&object).expect("serializes").len();
    assert!(size < 8 * 1024, "the status does not copy the trigger: {size} bytes");
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_that_matches_nothing_fails_loudly() {
    let cluster = SimCluster::start(fleet(3, 0, FLEET_SEED)).await;
    let operator = operator_with(&cluster, OperatorScope::default(), 1);
    cluster
        .create_refresh("none", json!({"selector": {"matchLabels": {"app": "does-not-exist"}}}))
        .await;
    let status = cluster.wait_for_run_end("none", DEADLINE).await;
    operator.stop().await;
    assert_eq!(status.phase, Some(Phase::Failed));
    let (stalled, reason, message) = condition(&status, "Stalled").expect("Stalled");
    assert_eq!((stalled, reason), ("True", "NothingSelected"));
    assert!(message.contains("app=does-not-exist") && message.contains("arcgis"), "{message}");
    assert_eq!(condition(&status, "Ready").map(|c| c.0), Some("False"));
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_excludes_and_missing_trigger_keys_are_reported() {
    let cluster = SimCluster::start(fleet(3, 0, FLEET_SEED)).await;
    create_config_map(&cluster, NAMESPACE, "proxy", json!({"https_proxy": "http://p:3128"})).await;
    let operator = operator_with(&cluster, OperatorScope::default(), 1);
    cluster
        .create_refresh(
            "typos",
            json!({
                "selector": {}, "exclude": ["arcgis-no-such-service"],
                "configMapTriggers": [{"name": "proxy", "keys": ["https_proxy", "no_proxy"]}]
            }),
        )
        .await;
    let status = cluster.wait_for_run_end("typos", DEADLINE).await;
    operator.stop().await;
    let message = status.run.as_ref().and_then(|run| run.message.clone()).unwrap_or_default();
    assert!(message.contains("arcgis-no-such-service"), "{message}");
    let (missing, _, text) = condition(&status, "TriggerKeysMissing").expect("condition");
    assert_eq!(missing, "True");
    assert!(text.contains("arcgis/proxy[no_proxy]"), "{text}");
    let events = events_about(&cluster, "typos").await;
    let reasons: Vec<&str> = events.iter().filter_map(|e| e.reason.as_deref()).collect();
    assert!(reasons.contains(&"ExcludeUnmatched"), "{reasons:?}");
    assert!(reasons.contains(&"TriggerKeysMissing"), "{reasons:?}");
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_service_shows_what_it_waits_for_and_a_queued_one_who_holds_the_slot() {
    let config = SimConfig {
        rollout_ms: 8_000,
        rollout_jitter_ms: 0,
        progress_deadline_seconds: 30,
        ..fleet(2, 0, FLEET_SEED)
    };
    let cluster = SimCluster::start(config).await;
    let operator = operator_with(&cluster, OperatorScope::default(), 1);
    cluster.create_refresh("slow", json!({"selector": {}, "batchSize": 2})).await;
    let rolling = wait_for(DEADLINE, "a kubectl waiting message", || async {
        cluster.status("slow").await.filter(|status| {
            status.batches.first().is_some_and(|batch| {
                batch.services.iter().any(|s| {
                    s.message.as_deref().is_some_and(|m| m.starts_with("Waiting for deployment"))
                })
            })
        })
    })
    .await;
    assert_eq!(rolling.phase, Some(Phase::Running));
    cluster.create_refresh("waiting", json!({"selector": {}})).await;
    let queued = wait_for(DEADLINE, "the second resource to queue", || async {
        cluster.status("waiting").await.filter(|s| s.phase == Some(Phase::Pending))
    })
    .await;
    let (_, reason, message) = condition(&queued, "Reconciling").expect("Reconciling");
    assert_eq!(reason, "Queued");
    assert!(message.contains("slots held by arcgis/slow"), "{message}");
    operator.stop().await;
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_on_create_false_waits_for_the_configmap_to_change() {
    let cluster = SimCluster::start(fleet(3, 0, FLEET_SEED)).await;
    let names = cluster.all_deployment_names().await;
    create_config_map(&cluster, NAMESPACE, "proxy", json!({"https_proxy": "http://a:3128"})).await;
    let operator = operator_with(&cluster, OperatorScope::default(), 1);
    cluster
        .create_refresh(
            "reloader",
            json!({"selector": {}, "runOnCreate": false, "configMapTriggers": [{"name": "proxy"}]}),
        )
        .await;
    let idle = wait_for(DEADLINE, "creation to be recorded", || async {
        cluster.status("reloader").await.filter(|s| {
            condition(s, "Ready")
                .is_some_and(|(value, reason, _)| value == "True" && reason == "AwaitingTrigger")
        })
    })
    .await;
    assert!(idle.run.is_none());
    assert!(names.iter().all(|name| changes(&cluster, NAMESPACE, name) == 0), "nothing restarted");

    let config_maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let change = Patch::Merge(json!({"data": {"https_proxy": "http://b:3128"}}));
    config_maps.patch("proxy", &Default::default(), &change).await.expect("patch");
    let status = cluster.wait_for_run_end("reloader", DEADLINE).await;
    operator.stop().await;
    let run = status.run.as_ref().expect("run");
    assert_eq!((run.number, run.reason.as_str()), (1, "ConfigMapChanged"));
    assert!(names.iter().all(|name| changes(&cluster, NAMESPACE, name) == 1));
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_recorded_for_a_resource_with_a_very_long_name() {
    let cluster = SimCluster::start(fleet(2, 0, FLEET_SEED)).await;
    let operator = operator_with(&cluster, OperatorScope::default(), 1);
    let name = format!("refresh-{}", "a".repeat(240));
    assert_eq!(name.len(), 248);
    cluster.create_refresh(&name, json!({"selector": {}})).await;
    let status = cluster.wait_for_run_end(&name, DEADLINE).await;
    operator.stop().await;
    assert_eq!(status.phase, Some(Phase::Succeeded));
    let events = events_about(&cluster, &name).await;
    let reasons: Vec<&str> = events.iter().filter_map(|e| e.reason.as_deref()).collect();
    assert!(reasons.contains(&"RunStarted") && reasons.contains(&"RunSucceeded"), "{reasons:?}");
    assert!(events.iter().all(|e| e.metadata.name.as_ref().is_some_and(|n| n.len() <= 253)));
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_resource_mid_run_leaves_no_warning_in_the_log() {
    let config = SimConfig {
        rollout_ms: 1_000,
        rollout_jitter_ms: 0,
        progress_deadline_seconds: 30,
        ..fleet(6, 0, FLEET_SEED)
    };
    let cluster = SimCluster::start(config).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let mut operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_servicerefresh"))
        // The second resource restarts Deployments the first restarted seconds before.
        .args(["run", "--min-restart-interval", "0s", "--log-format", "json", "--kubeconfig"])
        .arg(&kubeconfig)
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(dir.path().join("operator.log")).expect("log file"))
        .kill_on_drop(true)
        .spawn()
        .expect("the operator starts");
    cluster.create_refresh("doomed", json!({"selector": {}, "batchSize": 2})).await;
    wait_for(DEADLINE, "the run to be in its first batch", || async {
        cluster
            .status("doomed")
            .await
            .filter(|s| s.batches.first().is_some_and(|b| b.start_time.is_some()))
    })
    .await;
    cluster.refreshes().delete("doomed", &Default::default()).await.expect("delete");
    // Another resource's whole run afterwards proves the operator went on working and had
    // every chance to log about the deleted one.
    cluster.create_refresh("after", json!({"selector": {}, "batchSize": 6})).await;
    let status = cluster.wait_for_run_end("after", DEADLINE).await;
    assert_eq!(status.phase, Some(Phase::Succeeded));
    let pid = operator.id().expect("running");
    // kill(1) sends the SIGTERM, as a kubelet stopping the pod would.
    let sent = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    assert!(sent.as_ref().is_ok_and(|status| status.success()), "kill -TERM {pid}: {sent:?}");
    let exited = tokio::time::timeout(Duration::from_secs(30), operator.wait())
        .await
        .expect("the operator stops on SIGTERM")
        .expect("the operator's exit status");
    assert!(exited.success(), "SIGTERM ends the operator cleanly: {exited}");
    let output =
        std::fs::read_to_string(dir.path().join("operator.log")).expect("the operator's log");
    let warnings: Vec<&str> = output
        .lines()
        .filter(|line| line.contains("\"level\":\"WARN\"") || line.contains("\"level\":\"ERROR\""))
        .collect();
    assert!(warnings.is_empty(), "warnings after deleting a resource:\n{}", warnings.join("\n"));
    assert!(output.contains("run finished"), "the log shows the lifecycle:\n{output}");
    cluster.sim.shutdown().await;
}
