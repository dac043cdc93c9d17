//! Shared helpers of the sim behaviour tests: starting a sim, a raw JSON HTTP
//! client (`RawHttpClient`, named apart from the engine's model cluster and the
//! simulated cluster itself), and a watch reader that waits for events with a
//! deadline.

#![allow(dead_code)]

pub mod kubectl;

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use servicerefresh_sim::{SimConfig, SimHandle};
use tempfile::TempDir;

pub const DEADLINE: Duration = Duration::from_secs(15);

pub async fn sim(config: SimConfig) -> (SimHandle, RawHttpClient) {
    let h = servicerefresh_sim::start(config).await.expect("sim starts");
    let c = RawHttpClient::with_token(h.base_url(), &h.admin_token());
    (h, c)
}

/// Plain HTTP against the sim, for asserting exact status codes and bodies
/// that typed clients would hide.
#[derive(Clone)]
pub struct RawHttpClient {
    pub base: String,
    pub http: reqwest::Client,
    /// The bearer token every request carries, if any.
    pub token: Option<String>,
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
}

impl RawHttpClient {
    /// A client that sends `Authorization: Bearer <token>` with every request.
    pub fn with_token(base: String, token: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        let value =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("token");
        headers.insert(reqwest::header::AUTHORIZATION, value);
        let http = reqwest::Client::builder().default_headers(headers).build().expect("client");
        RawHttpClient { base, http, token: Some(token.to_string()) }
    }

    /// A client without credentials.
    pub fn anonymous(base: String) -> Self {
        RawHttpClient { base, http: reqwest::Client::new(), token: None }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<String>,
    ) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(m, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.header("content-type", content_type).body(b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp { status, body }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, "", None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, "application/json", Some(body.to_string())).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send("PUT", path, "application/json", Some(body.to_string())).await
    }

    pub async fn patch(&self, path: &str, content_type: &str, body: &str) -> Resp {
        self.send("PATCH", path, content_type, Some(body.to_string())).await
    }

    /// Installs the Widget CRD fixture; the response status.
    pub async fn create_widget_crd(&self) -> u16 {
        self.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", &widget_crd())
            .await
            .status
    }

    /// A merge patch; its response body.
    pub async fn merge_patch(&self, path: &str, body: &str) -> Value {
        self.patch(path, "application/merge-patch+json", body).await.body
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, "", None).await
    }

    /// Opens a watch; returns a reader of its events.
    pub async fn watch(&self, path: &str) -> Watch {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.expect("watch request");
        let status = r.status().as_u16();
        Watch { status, stream: Box::pin(r.bytes_stream()), buf: Vec::new() }
    }
}

pub struct Watch {
    pub status: u16,
    stream:
        std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes_alias::Bytes>> + Send>>,
    buf: Vec<u8>,
}

mod bytes_alias {
    pub use axum::body::Bytes;
}

impl Watch {
    /// The next event, or None when the stream ends (or the deadline passes).
    pub async fn next(&mut self) -> Option<Value> {
        self.next_within(DEADLINE).await
    }

    pub async fn next_within(&mut self, d: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).expect("event json"));
            }
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                Ok(Some(Err(_))) | Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Skips events until one satisfies `pred`.
    pub async fn until(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Value {
        loop {
            let ev = self.next().await.expect("watch event before the deadline");
            if pred(&ev) {
                return ev;
            }
        }
    }
}

pub fn rv(v: &Value) -> u64 {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .expect("resourceVersion")
}

pub fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [
                    {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
                     "env": [{"name": "A", "value": "1"}]},
                    {"name": "side", "image": "busybox:1.36"}
                ]}
            }
        }
    })
}

/// A Deployment of `replicas` pods requesting `cpu` each, rolling out in
/// 300 ms with maxSurge 1 and maxUnavailable 0 (so every replacement needs
/// room for one more pod), and the given progress deadline.
pub fn deployment_requesting(name: &str, replicas: u64, cpu: &str, deadline_seconds: u64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "annotations": {"sim.gisops.io/rollout-ms": "300"}},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": deadline_seconds,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "main",
                    "image": "nginx:1.27",
                    "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}},
                }]},
            },
        },
    })
}

/// Whether a Deployment's status shows its current generation rolled out
/// (the controller's completeness test).
pub fn rollout_complete(d: &Value) -> bool {
    let s = &d["status"];
    let want = d["spec"]["replicas"].as_u64().unwrap_or(1);
    s["observedGeneration"] == d["metadata"]["generation"]
        && s["updatedReplicas"].as_u64() == Some(want)
        && s["replicas"].as_u64() == Some(want)
        && s["availableReplicas"].as_u64() == Some(want)
}

pub fn widget_crd() -> Value {
    let text = include_str!("../fixtures/widget-crd.yaml");
    serde_saphyr::from_str(text).expect("crd yaml")
}

/// Waits until `f` returns Some, polling the sim (no sleeps as sync: each
/// iteration re-checks the condition; the pause only paces the loop).
pub async fn eventually<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_within(DEADLINE, what, f).await
}

/// [`eventually`] with a deadline of its own.
pub async fn eventually_within<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The real `kubectl` with its own kubeconfig, home and cache.
pub struct Kubectl {
    pub dir: TempDir,
}

impl Kubectl {
    /// A kubectl for the sim `h`, in a fresh directory named after `tag`.
    pub fn for_sim(h: &SimHandle, tag: &str) -> Kubectl {
        let dir = temp_dir(tag);
        h.write_kubeconfig(&dir.path().join("kubeconfig")).expect("kubeconfig");
        Kubectl { dir }
    }

    pub async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = tokio::process::Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("HOME", self.dir.path())
            .env("KUBECACHEDIR", self.dir.path().join("cache"))
            .output()
            .await
            .expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "kubectl {args:?} failed:\nstdout: {out}\nstderr: {err}");
        out
    }

    /// Runs a command that must fail; its stderr.
    pub async fn fails(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(!ok, "kubectl {args:?} succeeded:\nstdout: {out}");
        err
    }
}

pub fn kubectl_available() -> bool {
    std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A fresh directory named after `tag`, removed on drop.
pub fn temp_dir(tag: &str) -> TempDir {
    tempfile::Builder::new().prefix(&format!("sim-kubectl-{tag}-")).tempdir().expect("temp dir")
}
