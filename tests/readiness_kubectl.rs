//! The readiness table against the real `kubectl rollout status`: every crafted Deployment,
//! StatefulSet and DaemonSet state of `crates/core/src/engine/readiness/kubectl_verdicts.yaml`
//! is written verbatim to the simulated cluster (its workload controllers holding off,
//! annotation `sim.gisops.io/frozen`), judged by `kubectl rollout status --watch=false`, and the verdict
//! must be the one the table records, message included, so the table the engine's unit test
//! trusts cannot drift from kubectl. The engine judges the very object kubectl read, too.
//! The kubectl judged is the one on the PATH (put another first to check another version).

mod common;

use std::process::Output;

use common::kubectl::Kubectl;
use common::{NAMESPACE, SimCluster};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams, PostParams};
use serde::Deserialize;
use serde_json::{Value, json};
use servicerefresh_core::crd::WorkloadKind;
use servicerefresh_core::engine::DeploymentSnapshot;
use servicerefresh_core::engine::readiness::{Verdict, ready_message, verdict};
use servicerefresh_sim::SimConfig;

const TABLE: &str = include_str!("../crates/core/src/engine/readiness/kubectl_verdicts.yaml");

#[derive(Debug, Deserialize)]
struct Row {
    name: String,
    #[serde(default)]
    kind: WorkloadKind,
    what: String,
    generation: i64,
    spec: Value,
    #[serde(default)]
    status: Option<Value>,
    kubectl: Recorded,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
struct Recorded {
    result: String,
    message: String,
}

/// Whether a line kubectl printed with exit status 0 says the rollout is done.
fn done(line: &str) -> bool {
    line.ends_with("successfully rolled out")
        || line.starts_with("partitioned roll out complete:")
        || line.starts_with("statefulset rolling update complete")
}

/// What kubectl's exit status and output say, in the table's terms.
fn kubectl_verdict(name: &str, output: &Output) -> Recorded {
    let stdout = String::from_utf8_lossy(&output.stdout).trim_end().to_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).trim_end().to_owned();
    let (result, message) = match output.status.code() {
        Some(0) if done(&stdout) => ("success", stdout),
        Some(0) => ("waiting", stdout),
        Some(1) => match stderr.strip_prefix("error: ") {
            Some(message) => ("failure", message.to_owned()),
            None => panic!("{name}: kubectl failed without an error line: {stderr}"),
        },
        _ => panic!("{name}: kubectl ended with {}: {stdout}\n{stderr}", output.status),
    };
    Recorded { result: result.to_owned(), message }
}

/// The engine's verdict in kubectl's terms, judged at the object's own generation.
fn engine_verdict(kind: WorkloadKind, served: &Value) -> Recorded {
    let snapshot: DeploymentSnapshot =
        serde_json::from_value(served.clone()).expect("the served workload parses");
    let snapshot = DeploymentSnapshot { kind, ..snapshot };
    let (result, message) = match verdict(&snapshot, snapshot.generation()) {
        Verdict::Ready => ("success", ready_message(&snapshot)),
        Verdict::Waiting(message) => ("waiting", message),
        Verdict::Failed(message) => ("failure", message),
    };
    Recorded { result: result.to_owned(), message }
}

/// Creates the row's StatefulSet or DaemonSet, stored without defaults, at the row's
/// generation and with its status, through the API as any client would.
async fn craft_set(cluster: &SimCluster, row: &Row) {
    let labels = json!({"app": row.name});
    let mut spec = json!({
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "main", "image": "registry.example/app:1"}]}
        }
    });
    if row.kind == WorkloadKind::StatefulSet {
        spec["serviceName"] = json!(row.name);
        spec["podManagementPolicy"] = json!("OrderedReady");
    }
    for (field, value) in row.spec.as_object().expect("spec is a map") {
        spec[field] = value.clone();
    }
    let object = json!({
        "apiVersion": "apps/v1", "kind": row.kind.as_str(),
        "metadata": {"name": row.name, "annotations": {
            "sim.gisops.io/frozen": "true", "sim.gisops.io/no-defaults": "true"
        }},
        "spec": spec,
    });
    let base = format!(
        "{}/apis/apps/v1/namespaces/{NAMESPACE}/{}",
        cluster.sim.base_url(),
        row.kind.plural()
    );
    let http = reqwest::Client::new();
    let created = http.post(&base).json(&object).send().await.expect("POST");
    assert_eq!(created.status(), 201, "{}: {}", row.name, created.text().await.unwrap_or_default());
    let merge = |body: Value, url: String| {
        let http = http.clone();
        async move {
            let answer = http
                .patch(&url)
                .header("content-type", "application/merge-patch+json")
                .body(body.to_string())
                .send()
                .await
                .expect("PATCH");
            assert_eq!(answer.status(), 200, "{url}: {}", answer.text().await.unwrap_or_default());
        }
    };
    for step in 1..row.generation {
        // minReadySeconds is a field a StatefulSet may change and kubectl does not read.
        merge(json!({"spec": {"minReadySeconds": step}}), format!("{base}/{}", row.name)).await;
    }
    if let Some(status) = &row.status {
        merge(json!({"status": status}), format!("{base}/{}/status", row.name)).await;
    }
}

/// Creates the row's Deployment, brings it to the row's generation and writes its status.
async fn craft(cluster: &SimCluster, row: &Row) {
    if !row.kind.is_deployment() {
        return craft_set(cluster, row).await;
    }
    let mut annotations = json!({"sim.gisops.io/frozen": "true"});
    if row.spec.get("replicas").is_none() {
        // A real server always defaults spec.replicas; only the sim's knob keeps it absent.
        annotations["sim.gisops.io/no-defaults"] = json!("true");
    }
    let labels = json!({"app": row.name});
    let mut spec = json!({
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "main", "image": "registry.example/app:1"}]}
        }
    });
    for (field, value) in row.spec.as_object().expect("spec is a map") {
        spec[field] = value.clone();
    }
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": row.name, "annotations": annotations},
        "spec": spec,
    }))
    .expect("a valid Deployment");
    let api = cluster.deployments();
    api.create(&PostParams::default(), &deployment).await.expect("create the Deployment");
    for step in 1..row.generation {
        // Any spec change bumps the generation; this field is one kubectl does not read.
        let bump = Patch::Merge(json!({"spec": {"minReadySeconds": step}}));
        api.patch(&row.name, &PatchParams::default(), &bump).await.expect("bump the generation");
    }
    if let Some(status) = &row.status {
        let write = Patch::Merge(json!({"status": status}));
        api.patch_status(&row.name, &PatchParams::default(), &write).await.expect("write status");
    }
}

/// The workload exactly as the API serves it, as raw JSON.
async fn served(cluster: &SimCluster, row: &Row) -> Value {
    let url = format!(
        "{}/apis/apps/v1/namespaces/{NAMESPACE}/{}/{}",
        cluster.sim.base_url(),
        row.kind.plural(),
        row.name
    );
    let response = reqwest::get(&url).await.expect("GET the workload");
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_status_gives_the_recorded_verdict_on_every_crafted_state() {
    let rows: Vec<Row> = serde_saphyr::from_str(TABLE).expect("the table parses");
    assert_eq!(rows.len(), 42 + 14 + 8);
    let cluster = SimCluster::start(SimConfig { deployments: 0, ..SimConfig::default() }).await;
    let kubectl = Kubectl::for_sim(&cluster.sim);
    let mut mismatches = Vec::new();
    for row in &rows {
        craft(&cluster, row).await;
        let object = served(&cluster, row).await;
        // The state kubectl judges is exactly the row's: no controller or default changed it.
        assert_eq!(object["metadata"]["generation"], row.generation, "{}", row.name);
        for field in ["replicas", "updateStrategy"] {
            assert_eq!(object["spec"].get(field), row.spec.get(field), "{}: {field}", row.name);
        }
        let status = object.get("status").filter(|s| s.as_object().is_some_and(|s| !s.is_empty()));
        assert_eq!(status, row.status.as_ref(), "{}: the status as written", row.name);

        let target = format!("{}/{}", row.kind.as_str().to_lowercase(), row.name);
        let output = kubectl.run(&["rollout", "status", &target, "--watch=false"]).await;
        let real = kubectl_verdict(&row.name, &output);
        if real != row.kubectl {
            mismatches.push(format!(
                "{} ({}): the table records {:?}, kubectl says {real:?}",
                row.name, row.what, row.kubectl
            ));
        }
        let engine = engine_verdict(row.kind, &object);
        if engine != real {
            mismatches.push(format!(
                "{} ({}): kubectl says {real:?}, the engine {engine:?}",
                row.name, row.what
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    cluster.sim.shutdown().await;
}
