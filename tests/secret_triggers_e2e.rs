//! Secret triggers end to end, with the operator as its own process (`--secret-triggers`) on
//! the simulated cluster: a change to a watched key of a Secret starts exactly one run, a
//! change to a key the trigger does not list starts none; the operator watches that one
//! Secret by name (field selector) and never lists all Secrets; and a value planted in the
//! watched key is found nowhere it could leak: the resource as `kubectl get -o json` shows
//! it, the plan objects, the operator's log, the Events, `/metrics` and the job API. Without
//! `--secret-triggers`, or for a Secret in a namespace the resource may not reach, no Secret is
//! read at all.

mod admin_support;
mod common;

use std::time::Duration;

use admin_support::{TARGET, TestCertificate, grant, service_account_token};
use common::kubectl::Kubectl;
use common::process::{Kubeconfig, OperatorProcess, http_get};
use common::{NAMESPACE, SimCluster, assert_template_changes, fleet, wait_for};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use servicerefresh_core::crd::{Phase, ServiceRefreshPlan};

const SECRET: &str = "arcgis-trust";
/// Refreshes on any change of the Secret and selects nothing: its run shows that the operator
/// has seen a change.
const WITNESS: &str = "witness";
/// The watched key's values: distinctive strings that must never leave the Secret.
const PLANTED: &str = "planted-ca-7f3c9a1e-never-leak";
const ROTATED: &str = "rotated-ca-2b8d4e6f-never-leak";
const RUN_WITHIN: Duration = Duration::from_secs(90);

/// A Secret value as the API server stores and sends it (base64).
fn encoded(value: &str) -> String {
    serde_json::to_value(ByteString(value.as_bytes().to_vec()))
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .expect("base64")
}

fn set_key(key: &str, value: &str) -> Patch<Value> {
    Patch::Merge(json!({"data": {key: encoded(value)}}))
}

/// Every form a planted value could take in a text: as written and as base64.
fn leaks(text: &str) -> Vec<String> {
    [PLANTED, ROTATED]
        .into_iter()
        .flat_map(|value| [value.to_owned(), encoded(value)])
        .filter(|form| text.contains(form.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_change_starts_one_run_and_no_value_leaks() {
    let cluster = SimCluster::start(fleet(3, 0, 23)).await;
    let deployments = cluster.all_deployment_names().await;
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let secret = serde_json::from_value(json!({
        "metadata": {"name": SECRET},
        "data": {"ca.crt": encoded(PLANTED), "comment": encoded("first")},
    }))
    .expect("Secret");
    secrets.create(&PostParams::default(), &secret).await.expect("create Secret");
    // A Secret nobody names: the operator must never read it.
    let other = serde_json::from_value(json!({"metadata": {"name": "unrelated"},
                                              "data": {"password": encoded(PLANTED)}}))
    .expect("Secret");
    secrets.create(&PostParams::default(), &other).await.expect("create Secret");

    cluster
        .create_refresh(
            TARGET,
            json!({"selector": {}, "batchSize": 2, "runOnCreate": false, "triggerSettle": "0s",
                   "secretTriggers": [{"name": SECRET, "keys": ["ca.crt"]}]}),
        )
        .await;
    cluster
        .create_refresh(
            WITNESS,
            json!({"selector": {"matchLabels": {"selects": "nothing"}}, "runOnCreate": false,
                   "triggerSettle": "0s", "secretTriggers": [{"name": SECRET}]}),
        )
        .await;

    let token = service_account_token(&cluster.client, "job-admin").await;
    grant(&cluster.client, "job-admin", &["get", "patch"]).await;
    let kubeconfig = Kubeconfig::for_sim(&cluster.sim);
    let certificate = TestCertificate::new();
    let (cert, key) =
        (certificate.cert.display().to_string(), certificate.key.display().to_string());
    let mut operator = OperatorProcess::spawn(
        &kubeconfig.path,
        "secrets-0",
        &[
            "--leader-election=false",
            "--secret-triggers",
            "--min-restart-interval=0s",
            "--admin-listen=127.0.0.1:0",
            &format!("--admin-target={NAMESPACE}/{TARGET}"),
            &format!("--admin-tls-cert={cert}"),
            &format!("--admin-tls-key={key}"),
        ],
    );

    // Both resources record the Secret's baseline: a digest, not the value.
    for name in [TARGET, WITNESS] {
        let status = wait_for(RUN_WITHIN, &format!("{name} to record the Secret"), || async {
            cluster.status(name).await.filter(|status| status.triggers.secrets.len() == 1)
        })
        .await;
        assert!(status.run.is_none(), "runOnCreate is false");
        assert!(status.triggers.secrets[0].hash.starts_with("v2-"));
    }

    // A key the trigger does not list: the witness (all keys) runs, the target does not.
    secrets
        .patch(SECRET, &PatchParams::default(), &set_key("comment", "second"))
        .await
        .expect("change the unwatched key");
    let witnessed = wait_for(RUN_WITHIN, "the witness to run on the change", || async {
        cluster.status(WITNESS).await.filter(|status| status.run.is_some())
    })
    .await;
    assert_eq!(witnessed.run.as_ref().map(|run| run.reason.as_str()), Some("SecretChanged"));
    // Reconciled after the operator saw the change: still no run.
    let unchanged = cluster.reconciled_after_edit(TARGET, json!({"batchSize": 3})).await;
    assert!(unchanged.run.is_none(), "an unwatched key started a run: {:?}", unchanged.run);

    // The watched key: exactly one run, restarting each Deployment once.
    secrets
        .patch(SECRET, &PatchParams::default(), &set_key("ca.crt", ROTATED))
        .await
        .expect("rotate the watched key");
    let ended = cluster.wait_for_run_end(TARGET, RUN_WITHIN).await;
    assert_eq!(ended.phase, Some(Phase::Succeeded));
    let run = ended.run.as_ref().expect("a run");
    assert_eq!((run.number, run.reason.as_str()), (1, "SecretChanged"));
    assert_template_changes(&cluster.sim, &deployments, 1);
    let settled = cluster.reconciled_after_edit(TARGET, json!({"batchSize": 2})).await;
    assert_eq!(settled.run.as_ref().map(|run| run.number), Some(1), "exactly one run");

    // One watch per named Secret, by name; never a list or watch of every Secret.
    let reads: Vec<String> = cluster
        .sim
        .requests()
        .iter()
        .filter(|request| request.path.contains("/secrets") && !request.is_write())
        .filter(|request| {
            request.user_agent.as_deref().is_some_and(|agent| agent.starts_with("servicerefresh"))
        })
        .map(|request| {
            format!("{} {}?{}", request.verb, request.path, request.query.as_deref().unwrap_or(""))
        })
        .collect();
    assert!(!reads.is_empty(), "the operator watched the Secret");
    for read in &reads {
        assert!(
            read.contains(&format!(" /api/v1/namespaces/{NAMESPACE}/secrets?"))
                && read.contains("fieldSelector=metadata.name%3Darcgis-trust"),
            "a Secret read not limited to the named Secret: {read}"
        );
    }

    // The job API: submit a run, read its job and the job list (JSON and pages).
    let line = operator.wait_for_log("admin job API listening", Duration::from_secs(30)).await;
    let base = format!("https://{}/arcgis/admin", line["listen"].as_str().expect("listen"));
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certificate.pem.as_bytes()).expect("PEM"),
        )
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    let submitted: Value = http
        .post(format!("{base}/services/refreshAllServices"))
        .form(&[("f", "json"), ("token", token.as_str())])
        .send()
        .await
        .expect("submit")
        .json()
        .await
        .expect("JSON");
    let job = submitted["jobid"].as_str().expect("a job id").to_owned();
    let mut job_answers = vec![submitted.to_string()];
    let finished = wait_for(RUN_WITHIN, "the job to complete", || async {
        let answer: Value = http
            .get(format!("{base}/jobs/{job}"))
            .query(&[("f", "json"), ("token", token.as_str())])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (answer["status"] == "COMPLETED").then_some(answer)
    })
    .await;
    job_answers.push(finished.to_string());
    for (path, format) in [("jobs", "json"), ("jobs", "html"), (&*format!("jobs/{job}"), "html")] {
        let answer = http
            .get(format!("{base}/{path}"))
            .query(&[("f", format), ("token", token.as_str())])
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("body");
        job_answers.push(answer);
    }

    // Where a value could leak.
    let kubectl = Kubectl::for_sim(&cluster.sim);
    let resources = kubectl.ok(&["get", "servicerefreshes", "-n", NAMESPACE, "-o", "json"]).await;
    assert!(resources.contains("\"secrets\""), "the status records the Secret's digest");
    let plans: Api<ServiceRefreshPlan> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let plans =
        serde_json::to_string(&plans.list(&ListParams::default()).await.expect("plans").items)
            .expect("JSON");
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let events =
        serde_json::to_string(&events.list(&ListParams::default()).await.expect("events").items)
            .expect("JSON");
    let address = operator.metrics_address().await;
    let (code, metrics) = http_get(&format!("http://{address}/metrics")).await.expect("/metrics");
    assert_eq!(code, 200);
    operator.signal("TERM");
    operator.wait_exit(Duration::from_secs(30)).await;
    let logs = operator.lines().join("\n");
    assert!(logs.contains("watching the Secret"), "the log names the watch");

    let places = [
        ("kubectl get servicerefreshes -o json", resources),
        ("the plan objects", plans),
        ("the operator's log", logs),
        ("the Events", events),
        ("/metrics", metrics),
        ("the job API", job_answers.join("\n")),
    ];
    for (place, text) in &places {
        assert!(!text.is_empty(), "{place} is empty");
        assert_eq!(leaks(text), Vec::<String>::new(), "a Secret value in {place}");
    }
    cluster.sim.shutdown().await;
}

/// Whether the operator sent any request for Secrets.
fn secret_requests(cluster: &SimCluster) -> Vec<String> {
    cluster
        .sim
        .requests()
        .iter()
        .filter(|request| request.path.contains("/secrets"))
        .map(|request| format!("{} {}", request.verb, request.path))
        .collect()
}

async fn stalled(cluster: &SimCluster, name: &str) -> (String, String) {
    wait_for(Duration::from_secs(60), &format!("{name} to stall"), || async {
        let status = cluster.status(name).await?;
        status
            .conditions
            .iter()
            .find(|condition| condition.type_ == "Stalled" && condition.status == "True")
            .map(|condition| (condition.reason.clone(), condition.message.clone()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_secret_triggers_or_beyond_its_namespace_no_secret_is_read() {
    let cluster = SimCluster::start(fleet(1, 0, 5)).await;
    // Off: the resource stalls, and the operator asks the API server for no Secret.
    let operator = common::Operator::start(&cluster.client);
    cluster
        .create_refresh("off", json!({"selector": {}, "secretTriggers": [{"name": SECRET}]}))
        .await;
    let (reason, message) = stalled(&cluster, "off").await;
    assert_eq!(reason, "SecretsNotWatched");
    assert!(message.contains("--secret-triggers"), "{message}");
    operator.stop().await;
    assert_eq!(secret_requests(&cluster), Vec::<String>::new());

    // On, but naming a Secret in another namespace without --allow-cross-namespace: refused
    // before anything is watched.
    let config = servicerefresh_operator::controller::OperatorConfig {
        scope: servicerefresh_core::engine::OperatorScope {
            secret_triggers: true,
            ..Default::default()
        },
        retry_delay: Duration::from_millis(200),
        ..Default::default()
    };
    let operator = common::Operator::start_with(&cluster.client, config);
    cluster
        .create_refresh(
            "elsewhere",
            json!({"selector": {}, "secretTriggers": [{"name": SECRET, "namespace": "kube-system"}]}),
        )
        .await;
    let (reason, _) = stalled(&cluster, "elsewhere").await;
    assert_eq!(reason, "CrossNamespaceRefused");
    // A missing Secret in its own namespace is watched, by name only, and stalls.
    cluster
        .create_refresh("missing", json!({"selector": {}, "secretTriggers": [{"name": SECRET}]}))
        .await;
    let (reason, message) = stalled(&cluster, "missing").await;
    assert_eq!(reason, "SecretNotFound");
    assert!(message.contains("Secret arcgis/arcgis-trust does not exist"), "{message}");
    operator.stop().await;
    let requests = secret_requests(&cluster);
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|request| request.contains("/namespaces/arcgis/secrets")),
        "{requests:?}"
    );
    cluster.sim.shutdown().await;
}
