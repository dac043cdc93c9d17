//! Graceful deletion of pods whose status is simulated
//! (`SimConfig::pod_stop_time_ms`): a deleted pod shows `Terminating`
//! (`deletionTimestamp`, `deletionGracePeriodSeconds`) and keeps its room on
//! its node until it is removed, so a pod waiting for that room is bound
//! only then; a shorter grace period or a forced delete removes it sooner;
//! real kubectl shows it `Terminating`.

mod common;

use std::time::Duration;

use common::kubectl::matrix;
use common::*;
use serde_json::Value;
use servicerefresh_sim::{SimConfig, SimHandle};

const DEPLOYS: &str = "/apis/apps/v1/namespaces/arcgis/deployments";
const PODS: &str = "/api/v1/namespaces/arcgis/pods";

/// Three nodes with 400m of CPU each and nothing on them, where a deleted
/// pod takes `stop` to stop.
async fn cluster(stop: Duration) -> (SimHandle, RawHttpClient) {
    sim(SimConfig {
        nodes: Some(3),
        spare_cpu_millis: Some(1200),
        pod_stop_time_ms: u64::try_from(stop.as_millis()).expect("a short stop time"),
        ..Default::default()
    })
    .await
}

async fn create(c: &RawHttpClient, d: &Value) {
    let r = c.post(DEPLOYS, d).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn pods_of(c: &RawHttpClient, app: &str) -> Vec<Value> {
    let list = c.get(&format!("{PODS}?labelSelector=app%3D{app}")).await.body;
    list["items"].as_array().cloned().unwrap_or_default()
}

fn name_of(pod: &Value) -> String {
    pod["metadata"]["name"].as_str().unwrap_or("").to_string()
}

fn node_of(pod: &Value) -> &str {
    pod["spec"]["nodeName"].as_str().unwrap_or("")
}

fn unschedulable(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|conditions| {
        conditions.iter().any(|c| c["type"] == "PodScheduled" && c["reason"] == "Unschedulable")
    })
}

/// `filler`'s three 300m pods (one per node) and `late`'s 200m pod, which
/// no node has room for; returns `late`'s pod.
async fn full_nodes_and_a_waiting_pod(c: &RawHttpClient) -> Value {
    create(c, &deployment_requesting("filler", 3, "300m", 600)).await;
    eventually("filler rolled out", || async {
        let d = c.get(&format!("{DEPLOYS}/filler")).await.body;
        rollout_complete(&d).then_some(())
    })
    .await;
    create(c, &deployment_requesting("late", 1, "200m", 600)).await;
    eventually("late's pod unschedulable", || async {
        pods_of(c, "late").await.into_iter().find(unschedulable)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminating_pod_holds_its_room_until_it_is_gone() {
    let (_h, c) = cluster(Duration::from_secs(1)).await;
    let late = full_nodes_and_a_waiting_pod(&c).await;
    let late_name = name_of(&late);
    let list = c.get(PODS).await.body;
    let mut watch = c
        .watch(&format!(
            "{PODS}?watch=true&resourceVersion={}",
            list["metadata"]["resourceVersion"].as_str().unwrap()
        ))
        .await;
    assert_eq!(watch.status, 200);

    // Scaled down, the ReplicaSet deletes one pod: it terminates first.
    c.merge_patch(&format!("{DEPLOYS}/filler"), r#"{"spec":{"replicas":2}}"#).await;
    let terminating = watch
        .until(|event| {
            event["type"] == "MODIFIED"
                && event["object"]["metadata"]["deletionTimestamp"].is_string()
        })
        .await["object"]
        .clone();
    let victim = name_of(&terminating);
    assert!(victim.starts_with("filler-"), "{terminating}");
    assert_eq!(terminating["metadata"]["deletionGracePeriodSeconds"], 30, "{terminating}");
    assert_eq!(terminating["status"]["phase"], "Running", "still running while it stops");

    // Nothing binds `late` before the terminating pod is gone; then it is bound.
    let mut removed = false;
    let bound = loop {
        let event = watch.next().await.expect("a pod event before the deadline");
        let object = &event["object"];
        if event["type"] == "DELETED" && name_of(object) == victim {
            removed = true;
        }
        if name_of(object) == late_name && !node_of(object).is_empty() {
            break object.clone();
        }
    };
    assert!(removed, "late was bound while {victim} still held its room: {bound}");
    assert_eq!(node_of(&bound), node_of(&terminating), "the room it left: {bound}");
    eventually("late rolled out", || async {
        let d = c.get(&format!("{DEPLOYS}/late")).await.body;
        rollout_complete(&d).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_grace_period_or_a_forced_delete_removes_the_pod_sooner() {
    // A stop time no test waits for: only the grace period can end it.
    let (_h, c) = cluster(Duration::from_secs(600)).await;
    create(&c, &deployment_requesting("web", 3, "300m", 600)).await;
    let pods = eventually("three web pods bound", || async {
        let pods = pods_of(&c, "web").await;
        (pods.len() == 3 && pods.iter().all(|p| !node_of(p).is_empty())).then_some(pods)
    })
    .await;

    // A delete without options: the pod's grace period (30 s), Terminating.
    let first = name_of(&pods[0]);
    let r = c.delete(&format!("{PODS}/{first}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["metadata"]["deletionGracePeriodSeconds"], 30, "{}", r.body);
    assert!(r.body["metadata"]["deletionTimestamp"].is_string(), "{}", r.body);
    let stored = c.get(&format!("{PODS}/{first}")).await;
    assert_eq!(stored.status, 200, "still there while it stops: {}", stored.body);
    // A later delete shortens it to 1 s: the pod goes then, not at the stop time.
    let r = c.delete(&format!("{PODS}/{first}?gracePeriodSeconds=1")).await;
    assert_eq!(r.body["metadata"]["deletionGracePeriodSeconds"], 1, "{}", r.body);
    eventually_within(Duration::from_secs(30), "the pod gone after its grace period", || async {
        (c.get(&format!("{PODS}/{first}")).await.status == 404).then_some(())
    })
    .await;

    // Grace period 0 (kubectl's --grace-period=0 --force): gone at once.
    let second = name_of(&pods[1]);
    let r = c.delete(&format!("{PODS}/{second}?gracePeriodSeconds=0")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(c.get(&format!("{PODS}/{second}")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_shows_a_deleted_pod_terminating() {
    let bins = matrix("terminating");
    if bins.is_empty() {
        eprintln!("kubectl not installed: skipping");
        return;
    }
    let (h, c) = cluster(Duration::from_secs(600)).await;
    let dir = temp_dir(&format!("terminating-{}", h.addr().port()));
    let kubeconfig = dir.path().join("kubeconfig");
    h.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    create(&c, &deployment_requesting("web", 1, "300m", 600)).await;
    let pod = eventually("web's pod ready", || async {
        pods_of(&c, "web").await.into_iter().find(|p| {
            p["status"]["conditions"].as_array().is_some_and(|conditions| {
                conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
    })
    .await;
    let name = name_of(&pod);
    let newest = &bins[0];
    newest.ok(&kubeconfig, &["delete", "pod", &name, "-n", "arcgis", "--wait=false"]).await;
    for kubectl in &bins {
        let out = kubectl.ok(&kubeconfig, &["get", "pod", &name, "-n", "arcgis"]).await;
        let row: Vec<&str> = out.lines().nth(1).unwrap_or("").split_whitespace().collect();
        assert_eq!(row[..3], [name.as_str(), "1/1", "Terminating"], "{}: {out}", kubectl.version);
    }
    let out = newest
        .run(&kubeconfig, &["delete", "pod", &name, "-n", "arcgis", "--grace-period=0", "--force"])
        .await;
    assert!(out.ok(), "{out}");
    assert_eq!(c.get(&format!("{PODS}/{name}")).await.status, 404, "removed at once");
}
