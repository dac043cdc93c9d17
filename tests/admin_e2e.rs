//! The ArcGIS-compatible job API end to end, through HTTPS requests only: the simulated
//! cluster, the operator and the admin API in-process (with the table-driven authority until
//! the simulated cluster serves TokenReview and SubjectAccessReview), driven the way an
//! ArcGIS admin script drives `refreshAllServices` and polls its job.

mod admin_support;
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use admin_support::{
    ADMIN_TOKEN, AdminHarness, NOBODY_TOKEN, READER_TOKEN, TARGET, fake_authority, grant,
    service_account_token, status_of, tls_connector,
};
use common::{NAMESPACE, wait_for};
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use servicerefresh_core::crd::{Phase, RUN_REQUESTED_AT_ANNOTATION};
use servicerefresh_sim::SimConfig;

const DEADLINE: Duration = Duration::from_secs(120);

/// The shared generated fleet (`common::fleet`), with rollouts of `rollout_ms` ± half.
fn fleet(deployments: usize, fail: usize, rollout_ms: u64) -> SimConfig {
    SimConfig {
        rollout_ms,
        rollout_jitter_ms: rollout_ms / 2,
        ..common::fleet(deployments, fail, 11)
    }
}

/// The target: every Deployment, in batches of `batch_size`; no run on creation, so the
/// first run is the job's.
async fn create_target(harness: &AdminHarness, batch_size: u32) {
    harness
        .cluster
        .create_refresh(
            TARGET,
            json!({"selector": {}, "batchSize": batch_size, "batchTimeout": "1m", "runOnCreate": false}),
        )
        .await;
    wait_for(DEADLINE, "the operator to see the target", || async {
        harness.cluster.status(TARGET).await.filter(|status| status.observed_generation.is_some())
    })
    .await;
}

/// A ServiceRefresh whose suspended run holds the only run slot, so jobs wait SUBMITTED.
async fn hold_the_run_slot(harness: &AdminHarness, deployment: &str) {
    harness
        .cluster
        .create_refresh(
            "blocker",
            json!({"selector": {}, "namePatterns": [deployment], "suspend": true}),
        )
        .await;
    wait_for(DEADLINE, "the blocker's run to hold the slot", || async {
        harness
            .cluster
            .status("blocker")
            .await
            .filter(|status| status.phase == Some(Phase::Suspended))
    })
    .await;
}

async fn release_the_run_slot(harness: &AdminHarness) {
    harness
        .cluster
        .refreshes()
        .patch(
            "blocker",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await
        .expect("unsuspend the blocker");
}

/// Each service of the job's batches: `(batch, name) -> (result, message)`.
fn job_services(job: &Value) -> BTreeMap<(u64, String), (Value, Value)> {
    let mut services = BTreeMap::new();
    for batch in job["result"]["batches"].as_array().expect("batches") {
        for service in batch["services"].as_array().expect("services") {
            assert_eq!(service["namespace"], NAMESPACE);
            services.insert(
                (
                    batch["index"].as_u64().expect("index"),
                    service["name"].as_str().expect("name").to_owned(),
                ),
                (service["result"].clone(), service["message"].clone()),
            );
        }
    }
    services
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_goes_submitted_executing_completed_and_reports_the_status_results() {
    let harness = AdminHarness::start(fleet(24, 0, 200), fake_authority()).await;
    let names = harness.cluster.all_deployment_names().await;
    create_target(&harness, 10).await;
    hold_the_run_slot(&harness, &names[0]).await;

    // Auth comes first, and the answers are ArcGIS's.
    let refused = harness.submit("not-a-token").await;
    assert_eq!(refused, json!({"error": {"code": 498, "message": "Invalid Token", "details": []}}));
    assert_eq!(harness.submit(READER_TOKEN).await["error"]["code"], 403);
    let refused = harness.post("/services/refreshAllServices", &[("f", "json")]).await;
    assert_eq!(refused["error"]["code"], 499);

    let submitted = harness.submit(ADMIN_TOKEN).await;
    let id = submitted["jobid"].as_str().expect("jobid").to_owned();
    assert!(id.starts_with('j') && id.len() == 33, "{id}");
    assert_eq!(submitted["status"], "SUBMITTED");
    // jobsUrl is relative to the request (no --admin-external-url): resolved against the
    // operation's URL, as clients resolve it, it names the job.
    let operation =
        reqwest::Url::parse(&format!("{}/services/refreshAllServices", harness.base)).expect("URL");
    let jobs_url = operation.join(submitted["jobsUrl"].as_str().expect("jobsUrl")).expect("joins");
    assert_eq!(jobs_url.as_str(), format!("{}/jobs/{id}", harness.base));
    assert_eq!(
        submitted.as_object().map(|o| o.len()),
        Some(3),
        "exactly ArcGIS's fields: {submitted}"
    );
    let annotations =
        harness.cluster.refreshes().get(TARGET).await.expect("target").metadata.annotations;
    assert_eq!(
        annotations.and_then(|a| a.get(RUN_REQUESTED_AT_ANNOTATION).cloned()),
        Some(id.clone())
    );

    // Pending: asking again answers with the same job; it waits for the slot.
    assert_eq!(harness.submit(ADMIN_TOKEN).await["jobid"], id.as_str());
    let pending = harness.job(&id).await;
    assert_eq!(status_of(&pending), "SUBMITTED", "{pending}");
    assert_eq!(pending["username"], "alice");
    assert_eq!(pending["endtime"], 0);
    assert!(pending["starttime"].as_i64().unwrap_or_default() > 0);
    assert_eq!(pending["operationURI"], "/arcgis/admin/services/refreshAllServices");
    let listed = harness.get("/jobs", &[("f", "json"), ("token", READER_TOKEN)]).await;
    assert_eq!(listed["jobs"][0], id.as_str());

    release_the_run_slot(&harness).await;
    let executing =
        harness.wait_job(&id, "the job to execute", |job| status_of(job) != "SUBMITTED").await;
    assert_eq!(status_of(&executing), "EXECUTING", "{executing}");
    assert_eq!(executing["endtime"], 0);
    let done = harness.wait_job(&id, "the job to end", admin_support::is_final).await;
    assert_eq!(status_of(&done), "COMPLETED", "{done}");
    assert!(
        done["endtime"].as_i64().unwrap_or_default()
            >= done["starttime"].as_i64().unwrap_or_default()
    );
    assert!(
        done["updatedtime"].as_i64().unwrap_or_default()
            >= done["endtime"].as_i64().unwrap_or_default()
    );

    // The job's results are the ServiceRefresh's status, service by service.
    let status = harness.cluster.status(TARGET).await.expect("status");
    let run = status.run.as_ref().expect("run");
    assert_eq!(run.request.as_deref(), Some(id.as_str()));
    assert_eq!(status.history[0].request.as_deref(), Some(id.as_str()));
    let view = harness.cluster.run_view(TARGET).await;
    let expected: BTreeMap<(u64, String), (Value, Value)> = view
        .batches
        .iter()
        .flat_map(|batch| {
            batch.services.iter().map(move |service| {
                (
                    (u64::from(batch.index), service.key.name.clone()),
                    (json!(service.result), json!(service.message)),
                )
            })
        })
        .collect();
    assert_eq!(job_services(&done), expected);
    assert_eq!(expected.len(), 24);
    assert_eq!(done["result"]["totals"], serde_json::to_value(&status.totals).expect("totals"));
    assert_eq!(done["result"]["progress"], json!({"done": 24, "total": 24}));
    assert_eq!(done["result"]["run"]["number"], run.number);
    assert_eq!(done["result"]["batches"].as_array().map(Vec::len), Some(3));
    assert!(done["result"]["failures"].as_array().is_some_and(Vec::is_empty));

    // The operator wrote its status many times during the run; the job's ledger entry, which
    // the API wrote under its own field manager, survived every write, and neither manager
    // owns the other's fields.
    let object = harness.cluster.refreshes().get(TARGET).await.expect("target");
    let ledger = &object.status.as_ref().expect("status").jobs;
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!((ledger[0].id.as_str(), ledger[0].username.as_str()), (id.as_str(), "alice"));
    let status_writes = harness
        .cluster
        .sim
        .requests()
        .iter()
        .filter(|r| r.verb == "patch" && r.path.ends_with(&format!("/{TARGET}/status")))
        .count();
    assert!(status_writes > 5, "the run wrote its status {status_writes} times");
    let owned = |manager: &str| -> String {
        object
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .filter(|entry| {
                entry.manager.as_deref() == Some(manager)
                    && entry.subresource.as_deref() == Some("status")
            })
            .map(|entry| serde_json::to_string(&entry.fields_v1).expect("fields"))
            .collect()
    };
    let admin_fields = owned(servicerefresh_admin::requests::FIELD_MANAGER);
    let operator_fields = owned(servicerefresh_operator::controller::FIELD_MANAGER);
    assert!(admin_fields.contains("f:jobs") && !admin_fields.contains("f:phase"), "{admin_fields}");
    assert!(
        operator_fields.contains("f:phase") && !operator_fields.contains("f:jobs"),
        "{operator_fields}"
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoever_may_annotate_can_start_runs_but_cannot_forge_jobs() {
    let harness = AdminHarness::start(fleet(4, 0, 100), fake_authority()).await;
    create_target(&harness, 10).await;
    // What anyone allowed to patch the ServiceRefresh can write: the old ledger annotation,
    // and a request value shaped like a job id or not.
    let forged = json!({"metadata": {"annotations": {
        "gisops.io/admin-jobs": r#"{"jFORGED":{"username":"system:admin","submitted":1}}"#,
        RUN_REQUESTED_AT_ANNOTATION: "jFORGED",
    }}});
    harness
        .cluster
        .refreshes()
        .patch(TARGET, &PatchParams::default(), &Patch::Merge(&forged))
        .await
        .expect("annotate");
    // The request starts a run (the ad-hoc trigger)...
    let status = harness.cluster.wait_for_run_end(TARGET, DEADLINE).await;
    assert_eq!(status.run.as_ref().and_then(|run| run.request.as_deref()), Some("jFORGED"));
    // ...but no job: not listed, not found, no submitter anywhere.
    let listed = harness.get("/jobs", &[("f", "json"), ("token", READER_TOKEN)]).await;
    assert_eq!(listed, json!({"jobs": []}));
    let job = harness.job("jFORGED").await;
    assert_eq!(job["error"]["code"], 404, "{job}");
    let page = harness
        .http
        .get(format!("{}/jobs", harness.base))
        .query(&[("token", READER_TOKEN)])
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("page");
    assert!(!page.contains("system:admin") && !page.contains("jFORGED"), "{page}");
    // A job submitted through the API next to it is listed, with its real submitter.
    let id = harness.submit(ADMIN_TOKEN).await["jobid"].as_str().expect("jobid").to_owned();
    let listed = harness.get("/jobs", &[("f", "json"), ("token", READER_TOKEN)]).await;
    assert_eq!(listed, json!({"jobs": [id]}));
    assert_eq!(harness.job(&id).await["username"], "alice");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_with_two_failing_services_ends_failed_and_names_both() {
    let harness = AdminHarness::start(fleet(12, 2, 150), fake_authority()).await;
    let failing = harness.cluster.failing_deployments().await;
    assert_eq!(failing.len(), 2);
    create_target(&harness, 5).await;
    let id = harness.submit(ADMIN_TOKEN).await["jobid"].as_str().expect("jobid").to_owned();
    let done = harness.wait_job(&id, "the job to end", admin_support::is_final).await;
    assert_eq!(status_of(&done), "FAILED", "{done}");
    let mut failed: Vec<String> = done["result"]["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|service| {
            assert_eq!(service["result"], "Failed");
            assert!(
                service["message"].as_str().unwrap_or_default().contains("progress deadline"),
                "{service}"
            );
            service["name"].as_str().expect("name").to_owned()
        })
        .collect();
    failed.sort();
    assert_eq!(failed, failing);
    let errors: Vec<&str> = done["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|message| message["type"] == "esriJobMessageTypeError")
        .filter_map(|message| message["description"].as_str())
        .collect();
    for name in &failing {
        assert!(
            errors.iter().any(|text| text.starts_with(&format!("{NAMESPACE}/{name}: Failed:"))),
            "{name} in {errors:?}"
        );
    }
    assert_eq!(done["result"]["totals"]["failed"], 2);
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_mid_run_finishes_the_batch_in_flight_and_restarts_no_later_batch() {
    let harness = AdminHarness::start(fleet(20, 0, 600), fake_authority()).await;
    create_target(&harness, 5).await;
    let id = harness.submit(ADMIN_TOKEN).await["jobid"].as_str().expect("jobid").to_owned();
    harness
        .wait_job(&id, "the first batch to roll", |job| {
            status_of(job) == "EXECUTING" && job["result"]["batches"][0]["status"] == "EXECUTING"
        })
        .await;
    // Reading is not enough to cancel.
    let refused = harness
        .post(&format!("/jobs/{id}/cancel"), &[("f", "json"), ("token", NOBODY_TOKEN)])
        .await;
    assert_eq!(refused["error"]["code"], 403);
    let cancelling =
        harness.post(&format!("/jobs/{id}/cancel"), &[("f", "json"), ("token", ADMIN_TOKEN)]).await;
    assert_eq!(status_of(&cancelling), "CANCELLING", "{cancelling}");
    assert_eq!(cancelling["jobid"], id.as_str());
    let cancelled = harness.wait_job(&id, "the job to be cancelled", admin_support::is_final).await;
    assert_eq!(status_of(&cancelled), "CANCELLED", "{cancelled}");
    assert!(
        cancelled["messages"].as_array().expect("messages").iter().any(|m| m["description"]
            .as_str()
            .is_some_and(|text| text.starts_with("Cancel requested"))),
        "{cancelled}"
    );

    // The batch in flight finished; every later service was skipped and never restarted.
    let stats = harness.cluster.sim.stats();
    let services = job_services(&cancelled);
    let skipped: Vec<&String> = services
        .iter()
        .filter(|(_, (result, _))| *result == "Skipped")
        .map(|((_, name), _)| name)
        .collect();
    assert!(skipped.len() >= 5, "at least the last batch is skipped: {services:?}");
    for ((batch, name), (result, message)) in &services {
        let changes =
            stats.template_changes.get(&format!("{NAMESPACE}/{name}")).copied().unwrap_or(0);
        if *result == "Skipped" {
            assert_eq!(changes, 0, "{name} of batch {batch} was skipped yet restarted");
            assert_eq!(*message, "run cancelled");
        } else {
            assert_eq!(*result, "Ready", "{name}");
            assert_eq!(changes, 1, "{name} of batch {batch} restarted once");
        }
    }
    let batches = cancelled["result"]["batches"].as_array().expect("batches");
    let restarted_batches: Vec<u64> = batches
        .iter()
        .filter(|batch| {
            batch["services"].as_array().is_some_and(|s| s.iter().any(|s| s["result"] == "Ready"))
        })
        .filter_map(|batch| batch["index"].as_u64())
        .collect();
    let last_restarted = restarted_batches.last().copied().unwrap_or(0);
    assert!(
        batches.iter().filter(|b| b["index"].as_u64() > Some(last_restarted)).all(|b| {
            b["services"].as_array().is_some_and(|s| s.iter().all(|s| s["result"] == "Skipped"))
        }),
        "no service of a batch after the one in flight was restarted: {cancelled}"
    );
    // A finished job cannot be cancelled again, but asking is harmless.
    let again =
        harness.post(&format!("/jobs/{id}/cancel"), &[("f", "json"), ("token", ADMIN_TOKEN)]).await;
    assert_eq!(status_of(&again), "CANCELLED");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_submitted_job_withdraws_its_request() {
    let harness = AdminHarness::start(fleet(6, 0, 150), fake_authority()).await;
    let names = harness.cluster.all_deployment_names().await;
    create_target(&harness, 10).await;
    hold_the_run_slot(&harness, &names[0]).await;
    let id = harness.submit(ADMIN_TOKEN).await["jobid"].as_str().expect("jobid").to_owned();
    let withdrawn =
        harness.post(&format!("/jobs/{id}/cancel"), &[("f", "json"), ("token", ADMIN_TOKEN)]).await;
    assert_eq!(status_of(&withdrawn), "CANCELLED", "{withdrawn}");
    assert!(withdrawn["endtime"].as_i64().unwrap_or_default() > 0);
    let target = harness.cluster.refreshes().get(TARGET).await.expect("target");
    let annotations = target.metadata.annotations.unwrap_or_default();
    assert!(
        !annotations.contains_key(RUN_REQUESTED_AT_ANNOTATION),
        "the request is withdrawn: {annotations:?}"
    );

    // The next job runs; the withdrawn one stays cancelled and no run served it.
    let next = harness.submit(ADMIN_TOKEN).await["jobid"].as_str().expect("jobid").to_owned();
    assert_ne!(next, id);
    release_the_run_slot(&harness).await;
    let done = harness.wait_job(&next, "the next job to end", admin_support::is_final).await;
    assert_eq!(status_of(&done), "COMPLETED", "{done}");
    assert_eq!(status_of(&harness.job(&id).await), "CANCELLED");
    let status = harness.cluster.status(TARGET).await.expect("status");
    assert_eq!(status.run.as_ref().map(|run| run.number), Some(1), "one run, the next job's");
    assert!(status.history.iter().all(|summary| summary.request.as_deref() != Some(id.as_str())));
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_access_reviews_decide_who_may_read_submit_and_cancel() {
    use servicerefresh_admin::auth::reviews::KubeAuthority;
    let harness = AdminHarness::start_with(fleet(6, 0, 150), |client| {
        std::sync::Arc::new(KubeAuthority::new(client))
    })
    .await;
    create_target(&harness, 10).await;
    let client = harness.cluster.client.clone();
    let admin = service_account_token(&client, "job-admin").await;
    let reader = service_account_token(&client, "job-reader").await;
    let bystander = service_account_token(&client, "bystander").await;
    grant(&client, "job-admin", &["get", "patch"]).await;
    grant(&client, "job-reader", &["get"]).await;

    let submitted = harness.submit(&admin).await;
    assert_eq!(submitted["status"], "SUBMITTED", "{submitted}");
    let id = submitted["jobid"].as_str().expect("jobid").to_owned();
    let job = harness.get(&format!("/jobs/{id}"), &[("f", "json"), ("token", &reader)]).await;
    assert_eq!(job["jobid"], id.as_str());
    assert_eq!(job["username"], format!("system:serviceaccount:{NAMESPACE}:job-admin"));

    // 499, 498 and 403 alike for a job that exists and one that does not.
    let missing = "jffffffffffff00000000000000000000";
    for (token, code) in [(None, 499), (Some("not-a-token"), 498), (Some(bystander.as_str()), 403)]
    {
        let mut query = vec![("f", "json")];
        query.extend(token.map(|token| ("token", token)));
        let existing = harness.get(&format!("/jobs/{id}"), &query).await;
        let absent = harness.get(&format!("/jobs/{missing}"), &query).await;
        assert_eq!(existing, absent, "no leak of the job's existence");
        assert_eq!(existing["error"]["code"], code, "{existing}");
    }
    // Bearer headers work as well as the parameter.
    let via_header = harness
        .http
        .get(format!("{}/jobs/{id}?f=json", harness.base))
        .header("X-Esri-Authorization", format!("Bearer {reader}"))
        .send()
        .await
        .expect("GET")
        .json::<Value>()
        .await
        .expect("JSON");
    assert_eq!(via_header["jobid"], id.as_str());
    // get is not patch: the reader can neither submit nor cancel.
    assert_eq!(harness.submit(&reader).await["error"]["code"], 403);
    let refused =
        harness.post(&format!("/jobs/{id}/cancel"), &[("f", "json"), ("token", &reader)]).await;
    assert_eq!(refused["error"]["code"], 403);
    let done = harness.wait_job_with(&id, &reader, "the job to end", admin_support::is_final).await;
    assert_eq!(status_of(&done), "COMPLETED", "{done}");
    harness.stop().await;
}

/// Waits until the server closes `stream`: a read answers end-of-file or an error.
async fn closed_by_the_server(mut stream: impl tokio::io::AsyncRead + Unpin, what: &str) {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => panic!("the server kept {what} open"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_slow_and_idle_connections_are_closed_and_each_address_is_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpSocket, TcpStream};
    let limits = servicerefresh_admin::ConnectionLimits {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        max_connections: 8,
        max_connections_per_client: 2,
    };
    let harness = AdminHarness::start_limited(fleet(2, 0, 100), |_| fake_authority(), limits).await;
    let address: std::net::SocketAddr = harness
        .base
        .trim_start_matches("https://")
        .split('/')
        .next()
        .expect("host")
        .parse()
        .expect("address");
    let tls = tls_connector(&harness.certificate.pem);
    let name = || rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let from = |last: u8| async move {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.bind(std::net::SocketAddr::from(([127, 0, 0, last], 0))).expect("bind");
        socket.connect(address).await.expect("connect")
    };

    // Silent: connected, never a byte of the TLS handshake.
    closed_by_the_server(
        TcpStream::connect(address).await.expect("connect"),
        "a silent connection",
    )
    .await;
    // Slow: part of a request head, never the rest.
    let mut slow = tls.connect(name(), from(2).await).await.expect("handshake");
    slow.write_all(b"GET /arcgis/admin/jobs HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        .await
        .expect("write");
    closed_by_the_server(slow, "a partial request head").await;
    // Idle: one request answered, then nothing.
    let mut idle = tls.connect(name(), from(3).await).await.expect("handshake");
    idle.write_all(b"GET /arcgis/admin/?f=json HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut answer = [0u8; 256];
    let read = idle.read(&mut answer).await.expect("an answer");
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 200"));
    closed_by_the_server(idle, "an idle kept-alive connection").await;

    // Two connections per address: a third from the same address is closed before its
    // handshake; another address still gets in.
    let _first = tls.connect(name(), from(4).await).await.expect("first");
    let _second = tls.connect(name(), from(4).await).await.expect("second");
    assert!(tls.connect(name(), from(4).await).await.is_err(), "a third from one address");
    let other = tls.connect(name(), from(5).await).await;
    assert!(other.is_ok(), "another address: {:?}", other.err());
    harness.stop().await;
}

#[test]
fn the_admin_api_serves_plain_http_only_when_asked_to() {
    let run = |extra: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_servicerefresh"))
            .args([
                "run",
                "--kubeconfig",
                "/nonexistent/kubeconfig",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .args(["--admin-target", "arcgis/refresh-all"])
            .args(extra)
            .output()
            .expect("servicerefresh runs");
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("--admin-tls-cert") && stderr.contains("--admin-plain-http"),
        "{stderr}"
    );
    let (code, stderr) =
        run(&["--admin-plain-http", "--admin-tls-cert", "c.pem", "--admin-tls-key", "k.pem"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("choose HTTPS or plain HTTP"), "{stderr}");
    // With --admin-plain-http the flags are accepted: start-up goes on to the kubeconfig.
    let (code, stderr) = run(&["--admin-plain-http"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("kubeconfig") && !stderr.contains("admin"), "{stderr}");
}
