//! The health gate on real Prometheus and Alertmanager (started by the tests on loopback):
//! a batch whose Deployment serves errors after its restart holds the run at that batch with
//! `HealthGateFailing` and the query's samples, the run resumes when the errors stop, ends as
//! Failed under `failurePolicy: Abort` when they outlast the gate's timeout, and an
//! unreachable Prometheus holds the run saying so.

mod common;

use std::time::Duration;

use common::monitoring::{ERROR_QUERY, Monitoring};
use common::{NAMESPACE, Operator, SimCluster, assert_template_changes, fleet, wait_for};
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use servicerefresh_core::crd::{Phase, ServiceRefreshStatus};
use servicerefresh_operator::controller::{MonitoringDefaults, OperatorConfig};
use servicerefresh_sim::SimConfig;

const ERRORS_PER_SECOND: &str = "sim.gisops.io/errors-per-second";

/// A fleet of `count` Deployments whose first (in plan order) serves errors once restarted,
/// with a rollout long enough for Prometheus to see the errors before its batch is ready.
async fn fleet_with_a_bad_release(count: usize, seed: u64) -> (SimCluster, Vec<String>) {
    // A progress deadline the slow rollout stays within.
    let config = SimConfig { progress_deadline_seconds: 60, ..fleet(count, 0, seed) };
    let cluster = SimCluster::start(config).await;
    let names = cluster.all_deployment_names().await;
    let annotate = Patch::Merge(json!({"metadata": {"annotations": {
        ERRORS_PER_SECOND: "20",
        "sim.gisops.io/rollout-ms": "6000",
    }}}));
    cluster
        .deployments()
        .patch(&names[0], &PatchParams::default(), &annotate)
        .await
        .expect("annotate the bad release");
    (cluster, names)
}

fn operator(cluster: &SimCluster, monitoring: MonitoringDefaults) -> Operator {
    Operator::start_with(
        &cluster.client,
        OperatorConfig {
            retry_delay: Duration::from_millis(200),
            monitoring,
            ..Default::default()
        },
    )
}

async fn waiting_message_containing(
    cluster: &SimCluster,
    name: &str,
    parts: &[&str],
) -> ServiceRefreshStatus {
    let what = format!("{name} to wait with HealthGateFailing naming {parts:?}");
    wait_for(Duration::from_secs(90), &what, || async {
        cluster.status(name).await.filter(|status| {
            status.waiting.as_ref().is_some_and(|waiting| {
                waiting.reason == "HealthGateFailing"
                    && parts.iter().all(|part| waiting.message.contains(part))
            })
        })
    })
    .await
}

async fn events_with_reason(cluster: &SimCluster, reason: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let list = events.list(&ListParams::default()).await.expect("list events");
    list.items.into_iter().filter(|event| event.reason.as_deref() == Some(reason)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_raising_errors_holds_at_the_gate_with_the_query_result_and_resumes_when_they_fall()
{
    let (cluster, names) = fleet_with_a_bad_release(3, 19).await;
    let Some(monitoring) = Monitoring::start(&cluster.sim.base_url()).await else {
        return;
    };
    let _operator = operator(&cluster, MonitoringDefaults::default());
    cluster
        .create_refresh(
            "gated",
            json!({
                "selector": {}, "batchSize": 1,
                "healthGate": {
                    "timeout": "5m",
                    "prometheus": {"url": monitoring.prometheus_url, "query": ERROR_QUERY},
                    "alertmanager": {"url": monitoring.alertmanager_url,
                                     "matchers": ["alertname=\"SimHighErrorRate\""]},
                },
            }),
        )
        .await;

    let deployment_label = format!("deployment=\"{}\"", names[0]);
    let held = waiting_message_containing(
        &cluster,
        "gated",
        &["health gate after batch 1", "prometheus: query `", &deployment_label, "alertmanager: 1 active alerts matching alertname=\"SimHighErrorRate\": SimHighErrorRate{"],
    )
    .await;
    assert_eq!(held.batches.len(), 1, "no batch starts while the gate fails: {held:#?}");
    assert_eq!(held.phase, Some(Phase::Running));
    let reconciling = held
        .conditions
        .iter()
        .find(|condition| condition.type_ == "Reconciling")
        .expect("a Reconciling condition");
    assert_eq!(reconciling.reason, "HealthGateFailing");
    assert_template_changes(&cluster.sim, &names[1..], 0);
    // The Event follows the status write that records the wait, so it may lag the status.
    let announced = wait_for(Duration::from_secs(30), "the HealthGateFailing Event", || async {
        Some(events_with_reason(&cluster, "HealthGateFailing").await)
            .filter(|announced| !announced.is_empty())
    })
    .await;
    assert_eq!(announced.len(), 1, "the wait is announced once: {announced:#?}");
    assert!(announced[0].message.as_deref().is_some_and(|m| m.contains(&deployment_label)));

    // The errors stop: the rate falls to nothing, the alert resolves, the run goes on.
    let fix = Patch::Merge(json!({"metadata": {"annotations": {ERRORS_PER_SECOND: null}}}));
    cluster.deployments().patch(&names[0], &PatchParams::default(), &fix).await.expect("fix");
    let resumed = wait_for(Duration::from_secs(120), "the run to resume", || async {
        let status = cluster.status("gated").await?;
        (status.batches.len() > 1 || status.waiting.is_none()).then_some(status)
    })
    .await;
    assert!(resumed.waiting.is_none(), "{resumed:#?}");
    let ended = cluster.wait_for_run_end("gated", Duration::from_secs(120)).await;
    assert_eq!(
        ended.phase,
        Some(Phase::Succeeded),
        "logs in {}: {ended:#?}",
        monitoring.logs().display()
    );
    assert!(ended.waiting.is_none());
    assert_template_changes(&cluster.sim, &names, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_outlasting_the_gate_timeout_end_an_abort_run_as_failed() {
    let (cluster, names) = fleet_with_a_bad_release(2, 23).await;
    let Some(monitoring) = Monitoring::start(&cluster.sim.base_url()).await else {
        return;
    };
    // The URL comes from the operator's --prometheus-url.
    let defaults = MonitoringDefaults {
        prometheus_url: Some(monitoring.prometheus_url.clone()),
        alertmanager_url: None,
    };
    let _operator = operator(&cluster, defaults);
    cluster
        .create_refresh(
            "gated",
            json!({
                "selector": {}, "batchSize": 1, "failurePolicy": "Abort",
                "healthGate": {"timeout": "10s", "prometheus": {"query": ERROR_QUERY}},
            }),
        )
        .await;
    let ended = cluster.wait_for_run_end("gated", Duration::from_secs(120)).await;
    assert_eq!(ended.phase, Some(Phase::Failed), "{ended:#?}");
    let message = ended.run.as_ref().and_then(|run| run.message.clone()).unwrap_or_default();
    assert!(
        message.starts_with(
            "Run 1 failed: health gate after batch 1 still failing after 10s: prometheus: query `"
        ),
        "{message}"
    );
    assert!(message.ends_with("; 1 of 2 Deployments ready, 1 skipped"), "{message}");
    assert_eq!(ended.results.len(), 1);
    assert_eq!(ended.results[0].reason, "HealthGateTimedOut");
    assert_template_changes(&cluster.sim, &names[..1], 1);
    assert_template_changes(&cluster.sim, &names[1..], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_prometheus_holds_the_run_saying_so() {
    let cluster = SimCluster::start(fleet(2, 0, 29)).await;
    let names = cluster.all_deployment_names().await;
    let _operator = operator(&cluster, MonitoringDefaults::default());
    // Nothing listens on a port just released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a port")
        .port();
    let url = format!("http://127.0.0.1:{closed}");
    cluster
        .create_refresh(
            "gated",
            json!({
                "selector": {}, "batchSize": 1,
                "healthGate": {"timeout": "5m", "prometheus": {"url": url, "query": "up"}},
            }),
        )
        .await;
    let held = waiting_message_containing(
        &cluster,
        "gated",
        &[&format!("prometheus: Prometheus at {url} is unreachable: "), "Connection refused"],
    )
    .await;
    assert_eq!(held.batches.len(), 1);
    assert_template_changes(&cluster.sim, &names[1..], 0);
}
