//! The sim's kubelet on nodes with capacity: a pod of a mapped image that
//! no node takes waits `Unschedulable` and is not run until the scheduler
//! binds it, and the rollout of a Deployment of such pods, which follows
//! their readiness, waits for room as a rollout paced by capacity does
//! (crossing its progress deadline) and completes once room frees. A
//! StatefulSet of such pods rolls on their readiness, each old pod going
//! through its grace period first.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use servicerefresh_sim::{KubeletConfig, SimConfig};

const IMAGE: &str = "example.com/kubelet-app";
const PODS: &str = "/api/v1/namespaces/arcgis/pods";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/arcgis/deployments";
const SETS: &str = "/apis/apps/v1/namespaces/arcgis/statefulsets";

fn app() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubelet-app.py")
}

/// One node with 1 CPU, nothing on it, and the app's image run for real.
fn config(root: &Path) -> SimConfig {
    SimConfig {
        nodes: Some(1),
        spare_cpu_millis: Some(1000),
        run_images: [(IMAGE.to_string(), app())].into_iter().collect(),
        kubelet: KubeletConfig { root_dir: Some(root.to_path_buf()), ..KubeletConfig::default() },
        ..SimConfig::default()
    }
}

/// Two replicas of the app (waiting for a signal) requesting 400m each, a
/// surge pod at a time, a progress deadline of 2 s.
fn web() -> Value {
    let mut web = deployment_requesting("web", 2, "400m", 2);
    let container = &mut web["spec"]["template"]["spec"]["containers"][0];
    container["image"] = json!(format!("{IMAGE}:1.0"));
    container["args"] = json!(["sleep"]);
    web["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(2);
    web
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"].as_array()?.iter().find(|condition| condition["type"] == kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_pod_waiting_for_a_node_is_not_run_and_its_rollout_waits_for_room() {
    let root = tempfile::tempdir().expect("kubelet root");
    let (h, c) = sim(config(root.path())).await;
    assert_eq!(c.post(DEPLOYS, &web()).await.status, 201);
    eventually("both replicas to run", || async {
        let d = c.get(&format!("{DEPLOYS}/web")).await.body;
        rollout_complete(&d).then_some(())
    })
    .await;
    assert_eq!(h.container_processes().len(), 2);

    // The restart's surge pod needs 400m where 200m are left.
    let restart =
        json!({"spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}}});
    let patched = c
        .patch(&format!("{DEPLOYS}/web"), "application/merge-patch+json", &restart.to_string())
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let waiting = eventually("the surge pod to wait for a node", || async {
        let pods = c.get(PODS).await.body;
        pods["items"].as_array()?.iter().find(|pod| pod["spec"]["nodeName"].is_null()).cloned()
    })
    .await;
    let waiting_name = waiting["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let scheduled = eventually("its Unschedulable condition", || async {
        let pod = c.get(&format!("{PODS}/{waiting_name}")).await.body;
        condition(&pod, "PodScheduled").filter(|c| c["status"] == "False").cloned()
    })
    .await;
    assert_eq!(scheduled["reason"], "Unschedulable");
    assert_eq!(
        scheduled["message"],
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    );
    let stalled = eventually_within(Duration::from_secs(10), "the deadline to pass", || async {
        let d = c.get(&format!("{DEPLOYS}/web")).await.body;
        condition(&d, "Progressing")
            .is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded")
            .then_some(d)
    })
    .await;
    assert_eq!(stalled["status"]["updatedReplicas"], 1, "{stalled}");
    assert_eq!(stalled["status"]["availableReplicas"], 2, "{stalled}");
    let running: Vec<String> =
        h.container_processes().into_iter().map(|process| process.labels.pod).collect();
    assert_eq!(running.len(), 2, "{running:?}");
    assert!(!running.contains(&waiting_name), "the unbound pod is not run: {running:?}");

    // The node grows: the scheduler binds the pod, the kubelet runs it, and
    // the rollout completes on the pods' readiness.
    let allocatable = json!({"status": {"allocatable": {"cpu": "2"}}}).to_string();
    let grown = c
        .patch("/api/v1/nodes/sim-worker-1/status", "application/merge-patch+json", &allocatable)
        .await;
    assert_eq!(grown.status, 200, "{}", grown.body);
    let bound = eventually("the waiting pod to be bound and run", || async {
        let pod = c.get(&format!("{PODS}/{waiting_name}")).await.body;
        let runs = h.container_processes().iter().any(|process| process.labels.pod == waiting_name);
        (runs && pod["spec"]["nodeName"] == "sim-worker-1").then_some(pod)
    })
    .await;
    assert_eq!(condition(&bound, "PodScheduled").map(|c| c["status"].clone()), Some(json!("True")));
    let done = eventually("the rollout to complete", || async {
        let d = c.get(&format!("{DEPLOYS}/web")).await.body;
        rollout_complete(&d).then_some(d)
    })
    .await;
    let progressing = condition(&done, "Progressing").cloned().unwrap_or_default();
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable", "{done}");
    eventually("the old pods' processes to end", || async {
        (h.container_processes().len() == 2).then_some(())
    })
    .await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_of_real_pods_rolls_on_their_readiness_and_graceful_deletion() {
    let root = tempfile::tempdir().expect("kubelet root");
    let (h, c) = sim(config(root.path())).await;
    let set = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2, "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "containers": [{
                        "name": "db", "image": format!("{IMAGE}:1.0"), "args": ["sleep"],
                        "resources": {"requests": {"cpu": "300m", "memory": "64Mi"}},
                    }],
                },
            },
        },
    });
    assert_eq!(c.post(SETS, &set).await.status, 201);
    let rolled_out = |c: RawHttpClient| async move {
        let set = c.get(&format!("{SETS}/db")).await.body;
        let status = &set["status"];
        (status["readyReplicas"] == 2
            && status["updatedReplicas"] == 2
            && status["currentRevision"] == status["updateRevision"])
            .then_some(set)
    };
    let first = eventually("both pods to run", || rolled_out(c.clone())).await;
    let mut running: Vec<String> =
        h.container_processes().into_iter().map(|process| process.labels.pod).collect();
    running.sort();
    assert_eq!(running, ["db-0", "db-1"]);

    let list = c.get(PODS).await.body;
    let from = list["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string();
    let mut watch = c.watch(&format!("{PODS}?watch=true&resourceVersion={from}")).await;
    let restart =
        json!({"spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}}});
    let patched =
        c.patch(&format!("{SETS}/db"), "application/merge-patch+json", &restart.to_string()).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    // The highest ordinal goes first, through its grace period.
    let terminating =
        watch.until(|event| event["object"]["metadata"]["deletionTimestamp"].is_string()).await;
    assert_eq!(terminating["object"]["metadata"]["name"], "db-1", "{terminating}");
    assert_eq!(terminating["object"]["metadata"]["deletionGracePeriodSeconds"], 2);
    let done = eventually("the restart to finish", || async {
        let set = rolled_out(c.clone()).await?;
        (set["status"]["updateRevision"] != first["status"]["updateRevision"]).then_some(set)
    })
    .await;
    assert_eq!(done["status"]["currentReplicas"], 2, "{}", done["status"]);
    eventually("two processes, of the new pods", || async {
        (h.container_processes().len() == 2).then_some(())
    })
    .await;
    h.shutdown().await;
}
