//! A throwaway API server with discovery and these OpenAPI documents for
//! `gisops.io/v1alpha1` ServiceRefresh (the project's CRD fixture), `v1`
//! ConfigMap and `apps/v1` Deployment, plus extra routes, and a kubectl
//! pointed at it. Tests only.

use serde_json::{Value, json};

use super::openapi::{ResourceSchema, group_version_document, index_for};
use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

/// The kubectl binary the tests run.
pub const KUBECTL: &str = "/usr/bin/kubectl";

/// A JSON response.
pub fn json_response(v: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

/// The project's CRD fixture.
pub fn crd() -> Value {
    serde_json::from_str(include_str!("../../tests/fixtures/servicerefresh-crd.json"))
        .unwrap_or_default()
}

fn documents() -> Vec<(String, Value)> {
    let sr = ResourceSchema {
        kind: "ServiceRefresh".into(),
        plural: "servicerefreshes".into(),
        namespaced: true,
        status_subresource: true,
        schema: Some(crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()),
    };
    let builtin = |kind: &str, plural: &str| ResourceSchema {
        kind: kind.into(),
        plural: plural.into(),
        namespaced: true,
        status_subresource: kind == "Deployment",
        schema: None,
    };
    vec![
        ("api/v1".into(), group_version_document("", "v1", &[builtin("ConfigMap", "configmaps")])),
        (
            "apis/apps/v1".into(),
            group_version_document("apps", "v1", &[builtin("Deployment", "deployments")]),
        ),
        ("apis/gisops.io/v1alpha1".into(), group_version_document("gisops.io", "v1alpha1", &[sr])),
    ]
}

/// Answers a create with the object, its query string in an annotation.
async fn created(RawQuery(query): RawQuery, body: String) -> Response {
    let mut obj: Value = serde_json::from_str(&body).unwrap_or_default();
    obj["metadata"]["annotations"] = json!({"query": query.unwrap_or_default()});
    (StatusCode::CREATED, [(header::CONTENT_TYPE, "application/json")], obj.to_string())
        .into_response()
}

fn discovery() -> Router {
    let group = |name: &str, version: &str| {
        json!({
            "name": name,
            "versions": [{"groupVersion": format!("{name}/{version}"), "version": version}],
            "preferredVersion": {"groupVersion": format!("{name}/{version}"), "version": version},
        })
    };
    let groups = json!({"kind": "APIGroupList", "apiVersion": "v1",
        "groups": [group("apps", "v1"), group("gisops.io", "v1alpha1")]});
    let verbs = json!(["create", "delete", "get", "list", "patch", "update", "watch"]);
    let core = json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap",
         "verbs": verbs, "shortNames": ["cm"]}]});
    let apps = json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
        {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment",
         "verbs": verbs, "shortNames": ["deploy"], "categories": ["all"]},
        {"name": "deployments/status", "singularName": "", "namespaced": true, "kind": "Deployment",
         "verbs": ["get", "patch", "update"]}]});
    let gisops = json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "gisops.io/v1alpha1", "resources": [
        {"name": "servicerefreshes", "singularName": "servicerefresh", "namespaced": true, "kind": "ServiceRefresh",
         "verbs": verbs, "shortNames": ["sref", "srefs"], "categories": ["gisops"]},
        {"name": "servicerefreshes/status", "singularName": "", "namespaced": true, "kind": "ServiceRefresh",
         "verbs": ["get", "patch", "update"]}]});
    let docs = Arc::new(documents());
    let docs2 = docs.clone();
    Router::new()
        .route(
            "/api",
            get(|| async {
                json_response(json!({"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}))
            }),
        )
        .route("/api/v1", get(move || async move { json_response(core) }))
        .route("/apis", get(move || async move { json_response(groups) }))
        .route("/apis/apps/v1", get(move || async move { json_response(apps) }))
        .route(
            "/apis/gisops.io/v1alpha1",
            get(move || async move { json_response(gisops) }),
        )
        .route(
            "/openapi/v3",
            get(move || async move { json_response(index_for(&docs)) }),
        )
        .route(
            "/openapi/v3/{*path}",
            get(move |Path(path): Path<String>| async move {
                match docs2.iter().find(|(p, _)| *p == path) {
                    Some((_, d)) => json_response(d.clone()),
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }),
        )
        .route(
            "/apis/gisops.io/v1alpha1/namespaces/{ns}/servicerefreshes",
            post(created),
        )
        .route("/api/v1/namespaces/{ns}/configmaps", post(created))
}

type Log = Arc<std::sync::Mutex<Vec<String>>>;

/// GET and PATCH of one existing Deployment and ServiceRefresh; PATCHes
/// are logged as `PATCH <path>?<query> <content-type>`.
fn existing(log: Log) -> Router {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "7", "generation": 1,
                     "uid": "5d0c3f0e-0000-4000-8000-000000000001"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}
    });
    let sr = json!({
        "apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
        "metadata": {"name": "nightly", "namespace": "default", "resourceVersion": "8", "generation": 1,
                     "uid": "5d0c3f0e-0000-4000-8000-000000000002"},
        "spec": {"selector": {}, "batchSize": 10}
    });
    let route = |obj: Value, log: Log| {
        let get_obj = obj.clone();
        get(move || async move { json_response(get_obj) }).patch(
            move |uri: axum::http::Uri, headers: axum::http::HeaderMap| async move {
                let ct = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                if let Ok(mut l) = log.lock() {
                    l.push(format!("PATCH {uri} {ct}"));
                }
                json_response(obj)
            },
        )
    };
    Router::new()
        .route("/apis/apps/v1/namespaces/{ns}/deployments/{name}", route(deployment, log.clone()))
        .route("/apis/gisops.io/v1alpha1/namespaces/{ns}/servicerefreshes/{name}", route(sr, log))
}

/// A kubectl configured for a running throwaway server.
pub struct Kubectl {
    dir: tempfile::TempDir,
    log: Log,
}

impl Kubectl {
    /// Serves discovery, the documents and `extra` on a loopback port;
    /// `None` (the test is skipped) when kubectl is not installed.
    pub async fn start(extra: Router) -> Option<Self> {
        Self::start_logged(extra, Arc::default()).await
    }

    /// [`Kubectl::start`] plus one existing Deployment (`web`) and
    /// ServiceRefresh (`nightly`) in `default`, with GET and a logging
    /// PATCH (see [`Kubectl::log`]).
    pub async fn start_with_existing() -> Option<Self> {
        let log: Log = Arc::default();
        Self::start_logged(existing(log.clone()), log).await
    }

    async fn start_logged(extra: Router, log: Log) -> Option<Self> {
        if !std::path::Path::new(KUBECTL).exists() {
            eprintln!("{KUBECTL} not installed; skipping");
            return None;
        }
        let app = discovery().merge(extra);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok()?;
        let addr = listener.local_addr().ok()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::Builder::new().prefix("sim-kubectl-").tempdir().ok()?;
        std::fs::write(
            dir.path().join("kubeconfig"),
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: http://{addr}\nusers:\n- name: sim\n  user: {{}}\ncontexts:\n- name: sim\n  context: {{cluster: sim, user: sim, namespace: default}}\ncurrent-context: sim\n"
            ),
        )
        .ok()?;
        Some(Self { dir, log })
    }

    /// The PATCH requests served so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Writes a file next to the kubeconfig and returns its path.
    pub fn write(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap_or_default();
        path.to_string_lossy().into_owned()
    }

    /// Runs kubectl: (success, stdout, stderr).
    pub async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::process::Command::new(KUBECTL)
            .args(args)
            .arg("--kubeconfig")
            .arg(self.dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .output()
            .await;
        match out {
            Ok(out) => (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ),
            Err(e) => (false, String::new(), e.to_string()),
        }
    }
}
