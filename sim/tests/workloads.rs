//! The ReplicaSets and Pods the simulated controllers keep for Deployments:
//! the generated fleet (at start-up, or on first rollout for large fleets),
//! what `helm upgrade --wait` checks during a rollout, pods replaced after a
//! delete, `revisionHistoryLimit`, failing and paused rollouts, scaling, and
//! the frozen fixtures the controller leaves alone.

mod common;

use common::*;
use serde_json::{Value, json};
use servicerefresh_sim::SimConfig;

const DEPLOYS: &str = "/apis/apps/v1/namespaces/arcgis/deployments";
const RS: &str = "/apis/apps/v1/namespaces/arcgis/replicasets";
const PODS: &str = "/api/v1/namespaces/arcgis/pods";
const RESTART: &str = r#"{"spec":{"template":{"metadata":{"annotations":{"restartedAt":"1"}}}}}"#;

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn complete(d: &Value) -> bool {
    let s = &d["status"];
    let want = d["spec"]["replicas"].as_u64().unwrap_or(1);
    s["observedGeneration"] == d["metadata"]["generation"]
        && s["updatedReplicas"].as_u64() == Some(want)
        && s["replicas"].as_u64() == Some(want)
        && s["availableReplicas"].as_u64() == Some(want)
}

async fn rolled_out(c: &RawHttpClient, name: &str) -> Value {
    eventually(&format!("{name} rolled out"), || async {
        let d = c.get(&format!("{DEPLOYS}/{name}")).await.body;
        complete(&d).then_some(d)
    })
    .await
}

/// ReplicaSets of a Deployment (by its selector), by revision.
async fn replica_sets_of(c: &RawHttpClient, d: &Value) -> Vec<Value> {
    let labels: Vec<String> = d["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect();
    let list = c.get(&format!("{RS}?labelSelector={}", labels.join(","))).await.body;
    let mut sets = items(&list);
    sets.sort_by_key(|rs| {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .and_then(|r| r.parse::<u64>().ok())
    });
    sets
}

async fn pods_of(c: &RawHttpClient, rs: &Value) -> Vec<Value> {
    let hash = rs["metadata"]["labels"]["pod-template-hash"].as_str().unwrap();
    items(&c.get(&format!("{PODS}?labelSelector=pod-template-hash%3D{hash}")).await.body)
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

#[tokio::test]
async fn a_small_generated_fleet_starts_with_its_replica_sets_and_pods() {
    let (h, c) = sim(SimConfig { deployments: 5, ..Default::default() }).await;
    let deployments = items(&c.get(DEPLOYS).await.body);
    assert_eq!(deployments.len(), 5);
    let mut pods_total = 0;
    for d in &deployments {
        assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
        let sets = replica_sets_of(&c, d).await;
        assert_eq!(sets.len(), 1, "{d}");
        let rs = &sets[0];
        let replicas = d["spec"]["replicas"].as_u64().unwrap();
        assert_eq!(rs["spec"]["replicas"], replicas);
        assert_eq!(rs["status"]["readyReplicas"], replicas);
        assert_eq!(rs["metadata"]["ownerReferences"][0]["uid"], d["metadata"]["uid"]);
        let pods = pods_of(&c, rs).await;
        assert_eq!(pods.len() as u64, replicas);
        assert!(pods.iter().all(|p| ready(p) && p["status"]["phase"] == "Running"));
        pods_total += pods.len();
    }
    assert_eq!(items(&c.get(PODS).await.body).len(), pods_total);
    // A deleted pod of a settled Deployment is replaced; the Deployment's
    // status is not rewritten.
    let d = &deployments[0];
    let rs = replica_sets_of(&c, d).await.remove(0);
    let victim = pods_of(&c, &rs).await.remove(0);
    let victim = victim["metadata"]["name"].as_str().unwrap().to_string();
    assert_eq!(c.delete(&format!("{PODS}/{victim}")).await.status, 200);
    let replicas = d["spec"]["replicas"].as_u64().unwrap() as usize;
    eventually("the pod replaced", || async {
        let pods = pods_of(&c, &rs).await;
        (pods.len() == replicas
            && pods.iter().all(|p| p["metadata"]["name"] != victim.as_str() && ready(p)))
        .then_some(())
    })
    .await;
    let name = d["metadata"]["name"].as_str().unwrap();
    let now = c.get(&format!("{DEPLOYS}/{name}")).await.body;
    assert_eq!(now["metadata"]["resourceVersion"], d["metadata"]["resourceVersion"]);
    h.shutdown().await;
}

#[tokio::test]
async fn a_large_fleet_gets_its_objects_on_first_rollout() {
    let (h, c) = sim(SimConfig {
        deployments: 4,
        fleet_objects_limit: 3,
        rollout_ms: 200,
        ..Default::default()
    })
    .await;
    assert!(items(&c.get(RS).await.body).is_empty());
    assert!(items(&c.get(PODS).await.body).is_empty());
    let d = items(&c.get(DEPLOYS).await.body).remove(0);
    let name = d["metadata"]["name"].as_str().unwrap();
    let replicas = d["spec"]["replicas"].as_u64().unwrap();
    let r = c
        .patch(&format!("{DEPLOYS}/{name}"), "application/strategic-merge-patch+json", RESTART)
        .await;
    assert_eq!(r.status, 200);
    let d = rolled_out(&c, name).await;
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");
    let sets = replica_sets_of(&c, &d).await;
    assert_eq!(sets.len(), 2);
    // The pods it ran before became revision 1's ReplicaSet, scaled away.
    assert_eq!(sets[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
    assert_eq!(sets[0]["spec"]["replicas"], 0);
    assert!(sets[0]["spec"]["template"]["metadata"].get("annotations").is_none());
    assert_eq!(sets[1]["spec"]["replicas"], replicas);
    assert_eq!(sets[1]["spec"]["template"]["metadata"]["annotations"]["restartedAt"], "1");
    assert_eq!(pods_of(&c, &sets[1]).await.len() as u64, replicas);
    assert_eq!(items(&c.get(PODS).await.body).len() as u64, replicas);
    h.shutdown().await;
}

#[tokio::test]
async fn without_workload_objects_there_are_none() {
    let (h, c) = sim(SimConfig {
        deployments: 2,
        workload_objects: false,
        rollout_ms: 100,
        ..Default::default()
    })
    .await;
    c.post(DEPLOYS, &deployment("web")).await;
    let d = rolled_out(&c, "web").await;
    assert!(d["metadata"].get("annotations").is_none(), "{d}");
    assert!(items(&c.get(RS).await.body).is_empty());
    assert!(items(&c.get(PODS).await.body).is_empty());
    h.shutdown().await;
}

/// What `helm upgrade --wait` checks for a Deployment: its new ReplicaSet
/// (the one whose template matches, ignoring the hash label) has at least
/// `replicas - maxUnavailable` ready pods.
async fn helm_would_wait(c: &RawHttpClient, name: &str) -> bool {
    let d = c.get(&format!("{DEPLOYS}/{name}")).await.body;
    let mut template = d["spec"]["template"].clone();
    let sets = replica_sets_of(c, &d).await;
    let new_rs = sets.iter().find(|rs| {
        let mut theirs = rs["spec"]["template"].clone();
        theirs["metadata"]["labels"].as_object_mut().map(|l| l.remove("pod-template-hash"));
        template["metadata"]["labels"].as_object_mut().map(|l| l.remove("pod-template-hash"));
        theirs == template
    });
    let Some(new_rs) = new_rs else {
        return true;
    };
    let expected = d["spec"]["replicas"].as_u64().unwrap(); // maxUnavailable 0 with 2 replicas
    new_rs["status"]["readyReplicas"].as_u64().unwrap_or(0) < expected
}

#[tokio::test]
async fn the_replica_sets_follow_the_rollout_as_helm_wait_sees_it() {
    let (h, c) = sim(SimConfig { rollout_ms: 400, ..Default::default() }).await;
    let list = c.get(DEPLOYS).await.body;
    let mut w = c
        .watch(&format!(
            "{RS}?watch=true&resourceVersion={}",
            list["metadata"]["resourceVersion"].as_str().unwrap()
        ))
        .await;
    c.post(DEPLOYS, &deployment("web")).await;
    rolled_out(&c, "web").await;
    assert!(!helm_would_wait(&c, "web").await);
    c.patch(&format!("{DEPLOYS}/web"), "application/strategic-merge-patch+json", RESTART).await;
    // The new ReplicaSet's ready count climbs 0 -> 1 -> 2 as the rollout goes.
    let mut new_ready = Vec::new();
    let new_name = loop {
        let ev = w.next().await.expect("a ReplicaSet event");
        let rs = &ev["object"];
        if rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] != "2" {
            continue;
        }
        let ready = rs["status"]["readyReplicas"].as_u64().unwrap_or(0);
        if new_ready.last() != Some(&ready)
            && rs["status"]["observedGeneration"] == rs["metadata"]["generation"]
        {
            new_ready.push(ready);
        }
        if ready == 2 {
            break rs["metadata"]["name"].as_str().unwrap_or("").to_string();
        }
    };
    assert_eq!(new_ready, [0, 1, 2]);
    let d = rolled_out(&c, "web").await;
    assert!(!helm_would_wait(&c, "web").await);
    assert_eq!(
        d["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Progressing")
            .unwrap()["message"],
        format!("ReplicaSet \"{new_name}\" has successfully progressed.")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_deleted_pod_is_replaced_and_history_is_limited() {
    let (h, c) = sim(SimConfig { rollout_ms: 100, ..Default::default() }).await;
    let mut d = deployment("web");
    d["spec"]["revisionHistoryLimit"] = json!(1);
    c.post(DEPLOYS, &d).await;
    let d = rolled_out(&c, "web").await;
    let rs = replica_sets_of(&c, &d).await.remove(0);
    let pods = pods_of(&c, &rs).await;
    let victim = pods[0]["metadata"]["name"].as_str().unwrap().to_string();
    assert_eq!(c.delete(&format!("{PODS}/{victim}")).await.status, 200);
    let pods = eventually("a replacement pod", || async {
        let pods = pods_of(&c, &rs).await;
        (pods.len() == 2
            && pods.iter().all(|p| p["metadata"]["name"] != victim.as_str() && ready(p)))
        .then_some(pods)
    })
    .await;
    assert_eq!(pods.len(), 2);
    // Three more rollouts: the new ReplicaSet and one old one remain.
    for round in 2..=4 {
        let patch = format!(
            r#"{{"spec":{{"template":{{"metadata":{{"annotations":{{"round":"{round}"}}}}}}}}}}"#
        );
        c.patch(&format!("{DEPLOYS}/web"), "application/strategic-merge-patch+json", &patch).await;
        let d = rolled_out(&c, "web").await;
        assert_eq!(
            d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
            round.to_string()
        );
    }
    let d = c.get(&format!("{DEPLOYS}/web")).await.body;
    let sets = eventually("old ReplicaSets cleaned up", || async {
        let sets = replica_sets_of(&c, &d).await;
        (sets.len() == 2).then_some(sets)
    })
    .await;
    let revisions: Vec<&str> = sets
        .iter()
        .map(|rs| {
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str().unwrap()
        })
        .collect();
    assert_eq!(revisions, ["3", "4"]);
    assert_eq!(items(&c.get(PODS).await.body).len(), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn failing_paused_and_scaled_deployments() {
    let (h, c) = sim(SimConfig { rollout_ms: 100, ..Default::default() }).await;
    // A failing rollout's new pods run but never become ready.
    let mut bad = deployment("bad");
    bad["metadata"]["annotations"] = json!({"sim.gisops.io/fail": "true"});
    c.post(DEPLOYS, &bad).await;
    let rs = eventually("the failing ReplicaSet's pods", || async {
        let d = c.get(&format!("{DEPLOYS}/bad")).await.body;
        let rs = replica_sets_of(&c, &d).await.pop()?;
        let pods = pods_of(&c, &rs).await;
        (pods.len() == 2 && pods.iter().all(|p| p["status"]["phase"] == "Running")).then_some(rs)
    })
    .await;
    let pods = pods_of(&c, &rs).await;
    assert!(pods.iter().all(|p| !ready(p)));
    assert!(rs["status"].get("readyReplicas").is_none(), "{rs}");

    // Paused: a template change makes no new ReplicaSet until resumed.
    let mut paused = deployment("paused");
    paused["spec"]["paused"] = json!(false);
    c.post(DEPLOYS, &paused).await;
    rolled_out(&c, "paused").await;
    c.patch(
        &format!("{DEPLOYS}/paused"),
        "application/merge-patch+json",
        r#"{"spec":{"paused":true}}"#,
    )
    .await;
    c.patch(&format!("{DEPLOYS}/paused"), "application/strategic-merge-patch+json", RESTART).await;
    let d = eventually("the paused status", || async {
        let d = c.get(&format!("{DEPLOYS}/paused")).await.body;
        (d["status"]["observedGeneration"] == 3).then_some(d)
    })
    .await;
    assert_eq!(replica_sets_of(&c, &d).await.len(), 1);
    c.patch(
        &format!("{DEPLOYS}/paused"),
        "application/merge-patch+json",
        r#"{"spec":{"paused":false}}"#,
    )
    .await;
    let d = rolled_out(&c, "paused").await;
    let sets = replica_sets_of(&c, &d).await;
    assert_eq!(sets.len(), 2);
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");

    // Scaling changes the size of the same ReplicaSet.
    c.patch(
        &format!("{DEPLOYS}/paused"),
        "application/merge-patch+json",
        r#"{"spec":{"replicas":4}}"#,
    )
    .await;
    let d = rolled_out(&c, "paused").await;
    let sets = replica_sets_of(&c, &d).await;
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[1]["spec"]["replicas"], 4);
    assert_eq!(
        sets[1]["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"],
        "4"
    );
    assert_eq!(pods_of(&c, &sets[1]).await.len(), 4);
    let events = items(
        &c.get("/api/v1/namespaces/arcgis/events?fieldSelector=involvedObject.name%3Dpaused")
            .await
            .body,
    );
    let name = sets[1]["metadata"]["name"].as_str().unwrap();
    assert!(
        events.iter().any(|e| e["message"] == format!("Scaled up replica set {name} from 2 to 4")),
        "{events:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_frozen_deployment_keeps_the_status_clients_write() {
    let (h, c) = sim(SimConfig { rollout_ms: 100, ..Default::default() }).await;
    let mut frozen = deployment("fixture");
    frozen["metadata"]["annotations"] =
        json!({"sim.gisops.io/frozen": "true", "sim.gisops.io/no-defaults": "true"});
    frozen["spec"].as_object_mut().expect("spec").remove("replicas");
    assert_eq!(c.post(DEPLOYS, &frozen).await.status, 201);
    // The controller handles events in order: once a Deployment created later has rolled
    // out, it has seen the frozen one and left it alone.
    c.post(DEPLOYS, &deployment("witness")).await;
    rolled_out(&c, "witness").await;
    let stored = c.get(&format!("{DEPLOYS}/fixture")).await.body;
    let status = stored["status"].as_object();
    assert!(status.is_none_or(|s| s.is_empty()), "no status from the controller: {stored}");
    assert_eq!(stored["spec"].get("replicas"), None, "stored without defaults: {stored}");
    assert_eq!(stored["spec"].get("strategy"), None);
    assert!(replica_sets_of(&c, &stored).await.is_empty(), "no ReplicaSets");

    let status = json!({
        "observedGeneration": 1, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1,
        "conditions": [
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
        ]
    });
    let body = json!({"status": status}).to_string();
    let written =
        c.patch(&format!("{DEPLOYS}/fixture/status"), "application/merge-patch+json", &body).await;
    assert_eq!(written.status, 200, "{}", written.body);
    // A spec change bumps the generation; the controller still writes nothing.
    let resized = c.merge_patch(&format!("{DEPLOYS}/fixture"), r#"{"spec":{"paused":true}}"#).await;
    assert_eq!(resized["metadata"]["generation"], 2);
    c.merge_patch(&format!("{DEPLOYS}/witness"), RESTART).await;
    rolled_out(&c, "witness").await;
    let stored = c.get(&format!("{DEPLOYS}/fixture")).await.body;
    assert_eq!(stored["status"], status, "exactly as written");

    // Without the knobs the same object is defaulted and rolled out.
    let mut plain = deployment("plain");
    plain["spec"].as_object_mut().expect("spec").remove("replicas");
    c.post(DEPLOYS, &plain).await;
    let plain = rolled_out(&c, "plain").await;
    assert_eq!(plain["spec"]["replicas"], 1);
    h.shutdown().await;
}
