//! The HTTP layer on its own: the routes with the table-driven authority, an in-memory
//! cache and a mocked API server (tower-test). Auth is checked before any job lookup, errors
//! have ArcGIS's shape, and `f` picks compact JSON, pretty JSON or a page.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_test::mock;

use super::*;
use crate::Access;
use crate::auth::cached::CachedAuthority;
use crate::auth::fake::StaticAuthority;
use crate::config::TargetRef;
use servicerefresh_core::crd::{RUN_REQUESTED_AT_ANNOTATION, ServiceRefresh};
use servicerefresh_operator::controller::RefreshCache;

const RUNNING_JOB: &str = "j018bcfe568007abc8bccddeeff001122";
const DONE_JOB: &str = "j018bcfe567007fee9eddccbbaa998877";
const PENDING_JOB: &str = "j018bcfe569007000800000000000000f";

type MockHandle =
    mock::Handle<Request<kube::client::Body>, axum::http::Response<kube::client::Body>>;

struct Harness {
    router: Router,
    writer: Arc<Mutex<Writer<ServiceRefresh>>>,
    api_server: MockHandle,
    authority: Arc<StaticAuthority>,
}

fn target_object() -> ServiceRefresh {
    let status = serde_json::from_value(json!({
        "phase": "Running",
        "run": {"id": "arcgis/all/2-abc", "number": 2, "reason": "RunRequested", "request": RUNNING_JOB,
                "startTime": "2023-11-14T22:13:20Z"},
        "batches": [{"index": 1, "phase": "Running", "startTime": "2023-11-14T22:13:21.000000Z", "services": [
            {"name": "svc-<a>", "result": "Failed", "message": "deployment \"svc-<a>\" exceeded its progress deadline"},
            {"name": "svc-b", "message": "Waiting for deployment \"svc-b\" rollout to finish"},
        ]}],
        "triggers": {"runRequestedAt": RUNNING_JOB},
        "history": [{"id": "arcgis/all/1-abc", "number": 1, "reason": "RunRequested", "request": DONE_JOB,
            "phase": "Succeeded", "message": "Run 1 succeeded", "totals": {"services": 2, "ready": 2}}],
        "jobs": [
            {"id": PENDING_JOB, "username": "carol", "submitTime": "2023-11-14T22:13:20.256000Z"},
            {"id": RUNNING_JOB, "username": "alice", "submitTime": "2023-11-14T22:13:20.000000Z"},
            {"id": DONE_JOB, "username": "alice", "submitTime": "2023-11-14T22:13:19.744000Z"},
        ],
    }))
    .expect("status");
    let mut object = ServiceRefresh::fixture("all")
        .annotation(RUN_REQUESTED_AT_ANNOTATION, RUNNING_JOB)
        .status(status)
        .build();
    object.metadata.resource_version = Some("10".into());
    object
}

fn harness(object: Option<ServiceRefresh>) -> Harness {
    harness_with(object, None, None)
}

/// The harness with an external URL and an authority of its own (the table's by default).
fn harness_with(
    object: Option<ServiceRefresh>,
    external_url: Option<&str>,
    authority: Option<Arc<dyn Authority>>,
) -> Harness {
    let (store, mut writer) = reflector::store::<ServiceRefresh>();
    writer.apply_watcher_event(&watcher::Event::Init);
    if let Some(object) = object {
        writer.apply_watcher_event(&watcher::Event::InitApply(object));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    let cache = RefreshCache::default();
    cache.publish(store);
    let (service, api_server) =
        mock::pair::<Request<kube::client::Body>, axum::http::Response<kube::client::Body>>();
    let client = kube::Client::new(service, "arcgis");
    let target = TargetRef { namespace: "arcgis".into(), name: "all".into() };
    let context = JobContext { target: target.clone(), context_root: "/arcgis/admin".into() };
    let table = Arc::new(
        StaticAuthority::default()
            .user("admin-token", "alice", &[Access::Read, Access::Write])
            .user("reader-token", "bob", &[Access::Read])
            .user("nobody-token", "eve", &[]),
    );
    let cached = CachedTarget::new(cache, target);
    let api = AdminApi {
        authority: authority.unwrap_or_else(|| table.clone()),
        failures: FailureLimiter::default(),
        requests: Requests::new(cached.clone(), client, context.clone()),
        cached,
        context,
        external_url: external_url.map(|url| ExternalUrl::parse(url).expect("external URL")),
        body_timeout: Duration::from_secs(10),
    };
    Harness {
        router: router(Arc::new(api)),
        writer: Arc::new(Mutex::new(writer)),
        api_server,
        authority: table,
    }
}

async fn call(router: &Router, request: Request<Body>) -> (StatusCode, String, String) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, content_type, String::from_utf8(bytes.to_vec()).expect("utf-8"))
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).header(header::HOST, "gis.example.com").body(Body::empty()).expect("request")
}

fn post_form(uri: &str, form: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::HOST, "gis.example.com")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .expect("request")
}

/// A 200 answer with `object` as JSON, as the API server sends after a write.
fn ok(object: &ServiceRefresh) -> axum::http::Response<kube::client::Body> {
    axum::http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(serde_json::to_vec(object).expect("serializes")))
        .expect("response")
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|error| panic!("not JSON ({error}): {body}"))
}

#[tokio::test]
async fn refused_requests_say_why_and_never_whether_the_job_exists() {
    let harness = harness(Some(target_object()));
    let existing = format!("/arcgis/admin/jobs/{RUNNING_JOB}?f=json");
    let missing = "/arcgis/admin/jobs/jffffffffffff00000000000000000000?f=json";
    for (token, code) in [(None, 499), (Some("garbage"), 498), (Some("nobody-token"), 403)] {
        let suffix = token.map(|token| format!("&token={token}")).unwrap_or_default();
        let (status_a, type_a, body_a) =
            call(&harness.router, get(&format!("{existing}{suffix}"))).await;
        let (status_b, _, body_b) = call(&harness.router, get(&format!("{missing}{suffix}"))).await;
        assert_eq!(
            (status_a, status_b),
            (StatusCode::OK, StatusCode::OK),
            "ArcGIS answers errors with 200"
        );
        assert_eq!(type_a, "application/json; charset=utf-8");
        assert_eq!(body_a, body_b, "the answer must not depend on the job's existence");
        assert_eq!(json_of(&body_a)["error"]["code"], code, "{body_a}");
    }
    let expected = [
        r#"{"error":{"code":499,"message":"Token Required","details":[]}}"#,
        r#"{"error":{"code":498,"message":"Invalid Token","details":[]}}"#,
    ];
    assert_eq!(call(&harness.router, get(&existing)).await.2, expected[0]);
    assert_eq!(
        call(&harness.router, get(&format!("{existing}&token=garbage"))).await.2,
        expected[1]
    );

    // With the right, the job is there and the missing one answers ArcGIS's error.
    let (_, _, body) = call(&harness.router, get(&format!("{existing}&token=reader-token"))).await;
    assert_eq!(json_of(&body)["status"], "EXECUTING");
    let (_, _, body) = call(&harness.router, get(&format!("{missing}&token=reader-token"))).await;
    assert_eq!(json_of(&body)["error"]["code"], 404);

    // Reading is not enough to submit or cancel, and nothing reaches the API server.
    let refused =
        post_form("/arcgis/admin/services/refreshAllServices", "f=json&token=reader-token");
    assert_eq!(json_of(&call(&harness.router, refused).await.2)["error"]["code"], 403);
    let refused =
        post_form(&format!("/arcgis/admin/jobs/{RUNNING_JOB}/cancel"), "f=json&token=reader-token");
    assert_eq!(json_of(&call(&harness.router, refused).await.2)["error"]["code"], 403);
    let mut api_server = harness.api_server;
    assert!(futures::poll!(Box::pin(api_server.next_request())).is_pending(), "no write was sent");
}

#[tokio::test]
async fn tokens_arrive_as_parameter_esri_header_or_bearer_header() {
    let harness = harness(Some(target_object()));
    let uri = format!("/arcgis/admin/jobs/{RUNNING_JOB}?f=json");
    for (name, value) in
        [("x-esri-authorization", "Bearer reader-token"), ("authorization", "Bearer reader-token")]
    {
        let request = Request::get(&uri).header(name, value).body(Body::empty()).expect("request");
        assert_eq!(json_of(&call(&harness.router, request).await.2)["jobid"], RUNNING_JOB);
    }
    let form = post_form(&format!("/arcgis/admin/jobs/{RUNNING_JOB}"), "f=json&token=reader-token");
    assert_eq!(json_of(&call(&harness.router, form).await.2)["jobid"], RUNNING_JOB);
    assert!(harness.authority.reviews() >= 6);
}

#[tokio::test]
async fn f_selects_compact_json_pretty_json_or_a_page() {
    let harness = harness(Some(target_object()));
    let uri = |f: &str| format!("/arcgis/admin/jobs/{RUNNING_JOB}?token=reader-token{f}");
    let (_, _, compact) = call(&harness.router, get(&uri("&f=json"))).await;
    assert!(!compact.contains('\n') && compact.starts_with(r#"{"jobid":""#), "{compact}");
    let (_, _, pretty) = call(&harness.router, get(&uri("&f=pjson"))).await;
    assert!(pretty.starts_with("{\n  \"jobid\": "), "{pretty}");
    assert_eq!(json_of(&compact), json_of(&pretty));
    let job = json_of(&compact);
    assert_eq!(job["result"]["batches"][0]["services"][0]["result"], "Failed");
    assert_eq!(job["username"], "alice");

    // ArcGIS's default is html: the page has the status, a progress bar and the batch table.
    for suffix in ["", "&f=html", "&f=HTML"] {
        let (status, content_type, page) = call(&harness.router, get(&uri(suffix))).await;
        assert_eq!((status, content_type.as_str()), (StatusCode::OK, "text/html; charset=utf-8"));
        assert!(
            page.contains(r#"<span id="status" class="status EXECUTING">EXECUTING</span>"#),
            "{page}"
        );
        assert!(page.contains(r#"id="progress""#) && page.contains(r#"<table id="batches""#));
        assert!(page.contains("svc-&#60;a&#62;") || page.contains("svc-&lt;a&gt;"), "escaped");
        assert!(page.contains("exceeded its progress deadline"));
        assert!(page.contains(r#"http-equiv="refresh""#), "a running job's page reloads itself");
    }
    let (_, _, bad) = call(&harness.router, get(&uri("&f=xml"))).await;
    assert_eq!(json_of(&bad)["error"]["code"], 400);
}

#[tokio::test]
async fn jobs_list_the_pending_current_and_history_newest_first() {
    let harness = harness(Some(target_object()));
    let (_, _, body) =
        call(&harness.router, get("/arcgis/admin/jobs?f=json&token=reader-token")).await;
    assert_eq!(
        json_of(&body),
        json!({"jobs": [RUNNING_JOB, DONE_JOB]}),
        "the ledger's served jobs"
    );
    let (_, _, page) = call(&harness.router, get("/arcgis/admin/jobs?token=reader-token")).await;
    assert!(
        page.contains(&format!("/arcgis/admin/jobs/{DONE_JOB}?f=html&#38;token=reader-token")),
        "{page}"
    );
    let (_, _, done) = call(
        &harness.router,
        get(&format!("/arcgis/admin/jobs/{DONE_JOB}?f=json&token=reader-token")),
    )
    .await;
    assert_eq!(json_of(&done)["status"], "COMPLETED");
}

#[tokio::test]
async fn operation_page_unknown_paths_and_get_on_operations() {
    let harness = harness(Some(target_object()));
    let (_, _, page) =
        call(&harness.router, get("/arcgis/admin/services/refreshAllServices?token=admin-token"))
            .await;
    assert!(page.contains(r#"<form id="refresh-form" method="post" action="/arcgis/admin/services/refreshAllServices">"#), "{page}");
    assert!(page.contains(r#"<input type="hidden" name="token" value="admin-token">"#));
    let (_, _, body) = call(
        &harness.router,
        get("/arcgis/admin/services/refreshAllServices?f=json&token=admin-token"),
    )
    .await;
    assert_eq!(json_of(&body)["error"]["code"], 405);
    let (_, _, body) =
        call(&harness.router, get("/arcgis/admin/nothing/here?f=json&token=reader-token")).await;
    assert_eq!(
        json_of(&body),
        json!({"error": {"code": 404, "message": "Could not find resource or operation 'nothing/here' on the system.", "details": []}})
    );
    // Without a token a page asks for one.
    let (_, _, page) = call(&harness.router, get("/arcgis/admin/jobs")).await;
    assert!(page.contains("Token Required") && page.contains(r#"<form id="token-form""#), "{page}");
    // The root answers with and without its trailing slash.
    for root in
        ["/arcgis/admin?f=json&token=reader-token", "/arcgis/admin/?f=json&token=reader-token"]
    {
        let (_, _, body) = call(&harness.router, get(root)).await;
        assert_eq!(
            json_of(&body)["operations"][0],
            "services/refreshAllServices",
            "{root}: {body}"
        );
    }
    // Outside the context root there is nothing.
    let (status, _, _) = call(&harness.router, get("/other")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The target with PENDING_JOB waiting for a run.
fn pending_object() -> ServiceRefresh {
    let mut pending = target_object();
    let annotations = pending.metadata.annotations.get_or_insert_default();
    annotations.insert(RUN_REQUESTED_AT_ANNOTATION.into(), PENDING_JOB.into());
    pending
}

#[tokio::test]
async fn a_pending_job_is_answered_again_instead_of_overwritten() {
    let harness = harness(Some(pending_object()));
    let submit = post_form("/arcgis/admin/services/refreshAllServices", "f=json&token=admin-token");
    let (_, _, body) = call(&harness.router, submit).await;
    assert_eq!(
        json_of(&body),
        json!({
            "jobsUrl": format!("../jobs/{PENDING_JOB}"),
            "jobid": PENDING_JOB,
            "status": "SUBMITTED",
        }),
        "without --admin-external-url, jobsUrl is relative to the request's path"
    );
    let mut api_server = harness.api_server;
    assert!(futures::poll!(Box::pin(api_server.next_request())).is_pending(), "nothing written");
}

#[tokio::test]
async fn the_host_header_never_makes_urls() {
    let evil = |request: Request<Body>| {
        let (mut parts, body) = request.into_parts();
        parts.headers.insert(header::HOST, "evil.example".parse().expect("header"));
        Request::from_parts(parts, body)
    };
    let submit =
        || evil(post_form("/arcgis/admin/services/refreshAllServices", "f=json&token=admin-token"));
    let relative = harness(Some(pending_object()));
    let (_, _, body) = call(&relative.router, submit()).await;
    assert_eq!(json_of(&body)["jobsUrl"], format!("../jobs/{PENDING_JOB}"));
    let external =
        harness_with(Some(pending_object()), Some("https://gis.example.com/arcgis/admin/"), None);
    let (_, _, body) = call(&external.router, submit()).await;
    assert_eq!(
        json_of(&body)["jobsUrl"],
        format!("https://gis.example.com/arcgis/admin/jobs/{PENDING_JOB}")
    );
    // The redirect of a page is a path: no host in it either.
    let page = evil(post_form("/arcgis/admin/services/refreshAllServices", "token=admin-token"));
    let response = external.router.clone().oneshot(page).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[header::LOCATION],
        format!("/arcgis/admin/jobs/{PENDING_JOB}?f=html&token=admin-token").as_str()
    );
}

#[tokio::test]
async fn browsers_may_not_post_from_a_foreign_origin() {
    let harness = harness(Some(pending_object()));
    let from = |origin: Option<&str>, referer: Option<&str>, path: &str| {
        let mut request = post_form(path, "f=json&token=admin-token");
        if let Some(origin) = origin {
            request.headers_mut().insert(header::ORIGIN, origin.parse().expect("header"));
        }
        if let Some(referer) = referer {
            request.headers_mut().insert(header::REFERER, referer.parse().expect("header"));
        }
        request
    };
    let submit = "/arcgis/admin/services/refreshAllServices";
    let cancel = format!("/arcgis/admin/jobs/{RUNNING_JOB}/cancel");
    for (origin, referer, path) in [
        (Some("https://evil.example"), None, submit),
        (Some("null"), None, submit),
        (None, Some("https://evil.example/page"), submit),
        (
            Some("https://evil.example"),
            Some("https://gis.example.com/arcgis/admin"),
            cancel.as_str(),
        ),
    ] {
        let error = json_of(&call(&harness.router, from(origin, referer, path)).await.2);
        assert_eq!(error["error"]["code"], 403, "{origin:?} {referer:?}: {error}");
        assert_eq!(error["error"]["details"][0], "The request came from a page of another origin.");
    }
    // Our own pages, and scripts (no Origin, no Referer), may post.
    for (origin, referer) in [
        (Some("https://gis.example.com"), None),
        (None, Some("https://gis.example.com/arcgis/admin/services/refreshAllServices?f=html")),
        (None, None),
    ] {
        let answer = json_of(&call(&harness.router, from(origin, referer, submit)).await.2);
        assert_eq!(answer["jobid"], PENDING_JOB, "{origin:?} {referer:?}: {answer}");
    }
    // Reading is never refused for its origin.
    let mut read = get(&format!("/arcgis/admin/jobs/{RUNNING_JOB}?f=json&token=reader-token"));
    read.headers_mut().insert(header::ORIGIN, "https://evil.example".parse().expect("header"));
    assert_eq!(json_of(&call(&harness.router, read).await.2)["jobid"], RUNNING_JOB);
    let mut api_server = harness.api_server;
    assert!(futures::poll!(Box::pin(api_server.next_request())).is_pending(), "nothing written");
}

#[tokio::test]
async fn an_address_that_keeps_sending_invalid_tokens_costs_a_bounded_number_of_reviews() {
    let table = Arc::new(StaticAuthority::default().user("reader-token", "bob", &[Access::Read]));
    let cached: Arc<dyn Authority> = Arc::new(CachedAuthority::new(table.clone()));
    let harness = harness_with(Some(target_object()), None, Some(cached));
    let from = |client: &str, token: &str| {
        let mut request = get(&format!("/arcgis/admin/jobs/{RUNNING_JOB}?f=json&token={token}"));
        let address: SocketAddr = format!("{client}:40000").parse().expect("address");
        request.extensions_mut().insert(ConnectInfo(address));
        request
    };
    // The reader's token is known before the flood.
    assert_eq!(
        json_of(&call(&harness.router, from("127.0.0.2", "reader-token")).await.2)["jobid"],
        RUNNING_JOB
    );
    let mut codes = std::collections::BTreeMap::<i64, usize>::new();
    for n in 0..200 {
        let answer = call(&harness.router, from("127.0.0.2", &format!("guess-{n}"))).await.2;
        *codes.entry(json_of(&answer)["error"]["code"].as_i64().unwrap_or(0)).or_default() += 1;
    }
    let limit = crate::auth::limiter::MAX_FAILURES as usize;
    assert_eq!(codes, [(429, 200 - limit), (498, limit)].into_iter().collect());
    assert_eq!(table.reviews(), 2 + limit, "the reader's two reviews and one per allowed guess");
    // The known token still works from that address; another address is not stopped.
    assert_eq!(
        json_of(&call(&harness.router, from("127.0.0.2", "reader-token")).await.2)["jobid"],
        RUNNING_JOB
    );
    let other = json_of(&call(&harness.router, from("127.0.0.3", "guess-x")).await.2);
    assert_eq!(other["error"]["code"], 498);
    let stopped =
        harness.router.clone().oneshot(from("127.0.0.2", "guess-y")).await.expect("infallible");
    let wait: u64 =
        stopped.headers()[header::RETRY_AFTER].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
}

#[tokio::test]
async fn submitting_writes_the_request_conditionally_and_answers_with_the_new_job() {
    let mut idle = target_object();
    // The running job's run ended; nothing is pending.
    let status = idle.status.as_mut().expect("status");
    if let Some(run) = status.run.as_mut() {
        run.end_time = run.start_time.clone();
    }
    let harness = harness(Some(idle.clone()));
    let writer = harness.writer.clone();
    let mut api_server = harness.api_server;
    let server = tokio::spawn(async move {
        let (request, send) = api_server.next_request().await.expect("the patch");
        assert_eq!(request.method(), "PATCH");
        assert_eq!(
            request.uri().path(),
            "/apis/gisops.io/v1alpha1/namespaces/arcgis/servicerefreshes/all"
        );
        assert_eq!(request.headers()[header::CONTENT_TYPE], "application/merge-patch+json");
        let body: Value =
            serde_json::from_slice(&request.into_body().collect_bytes().await.expect("body"))
                .expect("json");
        assert_eq!(
            body["metadata"]["resourceVersion"], "10",
            "conditional on the version decided from"
        );
        assert_eq!(
            body["metadata"]["annotations"].as_object().map(|a| a.len()),
            Some(1),
            "the request alone: {body}"
        );
        let id = body["metadata"]["annotations"][RUN_REQUESTED_AT_ANNOTATION]
            .as_str()
            .expect("id")
            .to_owned();
        assert!(crate::ledger::is_job_id(&id), "{id}");
        let mut written = idle.clone();
        written
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(RUN_REQUESTED_AT_ANNOTATION.into(), id.clone());
        written.metadata.resource_version = Some("11".into());
        send.send_response(ok(&written));

        // Then the job and its submitter go to the status, under the API's field manager.
        let (request, send) = api_server.next_request().await.expect("the ledger apply");
        assert_eq!(request.method(), "PATCH");
        assert_eq!(
            request.uri().path(),
            "/apis/gisops.io/v1alpha1/namespaces/arcgis/servicerefreshes/all/status"
        );
        assert_eq!(request.headers()[header::CONTENT_TYPE], "application/apply-patch+yaml");
        let query = request.uri().query().unwrap_or_default().to_owned();
        assert!(query.contains("fieldManager=servicerefresh-admin"), "{query}");
        let body: Value =
            serde_json::from_slice(&request.into_body().collect_bytes().await.expect("body"))
                .expect("json");
        assert_eq!(
            body["metadata"]["resourceVersion"], "11",
            "conditional on the annotated object"
        );
        assert_eq!(body["status"]["jobs"][0]["id"], id.as_str());
        assert_eq!(body["status"]["jobs"][0]["username"], "alice");
        assert_eq!(body["status"].as_object().map(|status| status.len()), Some(1), "{body}");
        let mut recorded = written.clone();
        recorded.status.get_or_insert_default().jobs =
            serde_json::from_value(body["status"]["jobs"].clone()).expect("jobs");
        recorded.metadata.resource_version = Some("12".into());
        // The watch delivers the writes to the cache, as it would after real ones.
        writer
            .lock()
            .expect("writer")
            .apply_watcher_event(&watcher::Event::Apply(recorded.clone()));
        send.send_response(ok(&recorded));
        id
    });
    let submit =
        post_form("/arcgis/admin/services/refreshAllServices", "f=pjson&token=admin-token");
    let (_, _, body) = call(&harness.router, submit).await;
    let id = server.await.expect("mock API server");
    let answer = json_of(&body);
    assert_eq!(answer["jobid"], id.as_str());
    assert_eq!(answer["status"], "SUBMITTED");
    assert_eq!(answer["jobsUrl"], format!("../jobs/{id}"));
    // Read-your-writes: the job is there at once.
    let (_, _, job) =
        call(&harness.router, get(&format!("/arcgis/admin/jobs/{id}?f=json&token=reader-token")))
            .await;
    assert_eq!(json_of(&job)["status"], "SUBMITTED");
}

#[tokio::test]
async fn finished_jobs_cannot_be_cancelled_and_a_missing_target_is_reported() {
    let harness = harness(Some(target_object()));
    let cancel =
        post_form(&format!("/arcgis/admin/jobs/{DONE_JOB}/cancel"), "f=json&token=admin-token");
    let error = json_of(&call(&harness.router, cancel).await.2);
    assert_eq!(error["error"]["code"], 400);
    assert!(
        error["error"]["details"][0].as_str().unwrap_or_default().contains("COMPLETED"),
        "{error}"
    );

    let empty = self::harness(None);
    let (_, _, body) = call(
        &empty.router,
        get(&format!("/arcgis/admin/jobs/{RUNNING_JOB}?f=json&token=reader-token")),
    )
    .await;
    let error = json_of(&body);
    assert_eq!(error["error"]["code"], 500);
    assert!(
        error["error"]["details"][0].as_str().unwrap_or_default().contains("arcgis/all"),
        "{error}"
    );
}
