//! Notifications on the simulated cluster (`spec.notify`): a local receiver gets the run's
//! CloudEvents in order, each signed with the key from a Secret; a Slack-form receiver whose
//! URL is in a Secret gets its text; a receiver nobody answers for changes nothing in the
//! run and is counted as failed in `/metrics`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::process::{Kubeconfig, OperatorProcess, SHORT_LEASE, http_get};
use common::{NAMESPACE, SimCluster, assert_template_changes, wait_for};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use servicerefresh_core::crd::Phase;
use servicerefresh_sim::SimConfig;

const SIGNING_KEY: &str = "a-key-only-the-receiver-knows";
const DEADLINE: Duration = Duration::from_secs(120);

/// What a receiver was sent: the path, the content type, the signature header and the body.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    content_type: Option<String>,
    signature: Option<String>,
    body: Vec<u8>,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

async fn hook(
    State(inbox): State<Inbox>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    inbox.lock().expect("inbox").push(Received {
        path,
        content_type: header("content-type"),
        signature: header("x-servicerefresh-signature"),
        body: body.to_vec(),
    });
    StatusCode::ACCEPTED
}

/// A receiver on a loopback port that keeps everything it is sent.
async fn receiver() -> (String, Inbox) {
    let inbox = Inbox::default();
    let app = Router::new().route("/{path}", post(hook)).with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), inbox)
}

fn received(inbox: &Inbox, path: &str) -> Vec<Received> {
    inbox.lock().expect("inbox").iter().filter(|r| r.path == path).cloned().collect()
}

fn verify(received: &Received) {
    let signature = received.signature.as_deref().expect("a signed request");
    let hex = signature.strip_prefix("sha256=").expect("sha256=<hex>");
    let tag: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SIGNING_KEY.as_bytes());
    ring::hmac::verify(&key, &received.body, &tag).expect("the signature matches the body");
}

/// `servicerefresh_notifications_total{result="..."}` from the operator's /metrics.
async fn notifications(address: std::net::SocketAddr, result: &str) -> f64 {
    let (_, text) = http_get(&format!("http://{address}/metrics")).await.expect("/metrics");
    let series = format!("servicerefresh_notifications_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_get_the_runs_cloud_events_in_order_signed_and_a_dead_one_changes_nothing() {
    let cluster = SimCluster::start(SimConfig {
        deployments: 12,
        fail: 2,
        rollout_ms: 150,
        rollout_jitter_ms: 100,
        progress_deadline_seconds: 1,
        seed: 8,
        ..SimConfig::default()
    })
    .await;
    let (base, inbox) = receiver().await;
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hooks", "namespace": NAMESPACE},
        "stringData": {"signing-key": SIGNING_KEY, "slack-url": format!("{base}/slack")},
    }))
    .expect("a Secret");
    Api::<Secret>::namespaced(cluster.client.clone(), NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the Secret");
    let kubeconfig = Kubeconfig::for_sim(&cluster.sim);
    let operator = OperatorProcess::spawn(&kubeconfig.path, "op-notify", SHORT_LEASE);
    let metrics = operator.metrics_address().await;

    cluster
        .create_refresh(
            "fleet",
            json!({
                "selector": {}, "batchSize": 5, "batchTimeout": "1m", "failurePolicy": "Continue",
                "notify": {"webhooks": [
                    {"url": format!("{base}/events"),
                     "signingKeySecretRef": {"name": "hooks", "key": "signing-key"}},
                    {"urlSecretRef": {"name": "hooks", "key": "slack-url"}, "format": "Slack",
                     "events": ["RunFinished"]},
                    {"url": "http://127.0.0.1:1/nobody-listens"},
                ]},
            }),
        )
        .await;
    let status = cluster.wait_for_run_end("fleet", DEADLINE).await;
    assert_eq!(status.phase, Some(Phase::Failed), "two Deployments are built to fail");
    assert_eq!(status.totals.services, 12);
    assert_eq!(status.totals.ready + status.totals.failed, 12, "a dead receiver holds nothing");
    assert_template_changes(&cluster.sim, &cluster.all_deployment_names().await, 1);

    let events = wait_for(Duration::from_secs(30), "the run.finished CloudEvent", || async {
        let events = received(&inbox, "events");
        events.iter().any(|r| r.body.windows(12).any(|w| w == b"run.finished")).then_some(events)
    })
    .await;
    let parsed: Vec<Value> =
        events.iter().map(|r| serde_json::from_slice(&r.body).expect("JSON")).collect();
    let types: Vec<&str> = parsed.iter().map(|e| e["type"].as_str().expect("type")).collect();
    eprintln!("CloudEvents received: {types:?}");
    assert_eq!(types.first(), Some(&"io.gisops.servicerefresh.run.started"), "{types:?}");
    assert_eq!(types.last(), Some(&"io.gisops.servicerefresh.run.finished"), "{types:?}");
    assert!(types.contains(&"io.gisops.servicerefresh.batch.failed"), "{types:?}");
    let batches: Vec<u64> = parsed
        .iter()
        .filter(|e| e["type"] == "io.gisops.servicerefresh.batch.failed")
        .map(|e| e["data"]["batch"].as_u64().expect("batch"))
        .collect();
    assert!(batches.windows(2).all(|pair| pair[0] < pair[1]), "in order: {batches:?}");
    let ids: std::collections::BTreeSet<_> = parsed.iter().map(|e| e["id"].to_string()).collect();
    assert_eq!(ids.len(), parsed.len(), "each event is sent once, with its own id");
    for (event, request) in parsed.iter().zip(&events) {
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(
            event["source"],
            format!("/apis/gisops.io/v1alpha1/namespaces/{NAMESPACE}/servicerefreshes/fleet")
        );
        assert!(
            request
                .content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("application/cloudevents+json")),
            "{:?}",
            request.content_type
        );
        verify(request);
    }
    assert_eq!(parsed.last().expect("finished")["data"]["phase"], "Failed");

    let slack = wait_for(Duration::from_secs(30), "the Slack text", || async {
        Some(received(&inbox, "slack")).filter(|slack| !slack.is_empty())
    })
    .await;
    assert_eq!(slack.len(), 1, "the Slack receiver asked for RunFinished only");
    let text: Value = serde_json::from_slice(&slack[0].body).expect("JSON");
    let text = text["text"].as_str().expect("text");
    assert!(text.starts_with(&format!("ServiceRefresh {NAMESPACE}/fleet: ")), "{text}");
    assert!(slack[0].signature.is_none(), "no signing key, no signature");

    // The dead receiver: every notification it was due is counted as failed, none delivered.
    let due = parsed.len() as f64;
    wait_for(
        Duration::from_secs(60),
        "the dead receiver's notifications counted as failed",
        || async { (notifications(metrics, "failed").await >= due).then_some(()) },
    )
    .await;
    assert_eq!(notifications(metrics, "failed").await, due);
    assert_eq!(notifications(metrics, "delivered").await, due + 1.0);
    let logs = operator.lines().join("\n");
    assert!(!logs.contains("/slack") && !logs.contains(SIGNING_KEY), "no URL path or key in logs");
    drop(operator);
    cluster.sim.shutdown().await;
}
