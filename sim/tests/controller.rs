//! The simulated Deployment controller: the generated fleet, rollouts after
//! pod-template changes, failures past the progress deadline, and stats.

mod common;

use common::*;
use serde_json::{Value, json};
use servicerefresh_sim::SimConfig;

const DEPLOYS: &str = "/apis/apps/v1/namespaces/arcgis/deployments";

fn complete(d: &Value) -> bool {
    let s = &d["status"];
    let want = d["spec"]["replicas"].as_u64().unwrap_or(1);
    s["observedGeneration"] == d["metadata"]["generation"]
        && s["updatedReplicas"].as_u64() == Some(want)
        && s["replicas"].as_u64() == Some(want)
        && s["availableReplicas"].as_u64() == Some(want)
}

fn condition<'a>(d: &'a Value, t: &str) -> Option<&'a Value> {
    d["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == t)
}

#[tokio::test]
async fn generated_fleet_is_rolled_out_and_deterministic() {
    let (h, c) = sim(SimConfig {
        deployments: 12,
        fail: 2,
        seed: 7,
        progress_deadline_seconds: 30,
        ..Default::default()
    })
    .await;
    let list = c.get(DEPLOYS).await.body;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 12);
    let re_name = |n: &str| {
        let parts: Vec<&str> = n.split('-').collect();
        parts.len() == 4 && parts[0] == "arcgis" && parts[3].len() == 5
    };
    let mut failing = 0;
    for d in items {
        let name = d["metadata"]["name"].as_str().unwrap();
        assert!(re_name(name), "{name}");
        assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/managed-by"], "arcgis");
        assert!(d["metadata"]["labels"]["arcgis/service-type"].is_string());
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 30);
        assert!(complete(d), "{name} starts rolled out: {}", d["status"]);
        assert_eq!(condition(d, "Available").unwrap()["status"], "True");
        assert_eq!(condition(d, "Progressing").unwrap()["reason"], "NewReplicaSetAvailable");
        if d["metadata"]["annotations"]["sim.gisops.io/fail"] == "true" {
            failing += 1;
        }
    }
    assert_eq!(failing, 2);
    let ns = c.get("/api/v1/namespaces").await.body;
    let names: Vec<&str> = ns["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["arcgis", "default", "kube-system"]);
    // Same seed, same fleet.
    let (h2, c2) = sim(SimConfig { deployments: 12, fail: 2, seed: 7, ..Default::default() }).await;
    let l2 = c2.get(DEPLOYS).await.body;
    let n1: Vec<&Value> = items.iter().map(|d| &d["metadata"]["name"]).collect();
    let n2: Vec<&Value> =
        l2["items"].as_array().unwrap().iter().map(|d| &d["metadata"]["name"]).collect();
    assert_eq!(n1, n2);
    h.shutdown().await;
    h2.shutdown().await;
}

#[tokio::test]
async fn restart_rolls_out_and_is_counted() {
    let (h, c) = sim(SimConfig { deployments: 4, rollout_ms: 1000, ..Default::default() }).await;
    let list = c.get(DEPLOYS).await.body;
    let d = list["items"][0].clone();
    let name = d["metadata"]["name"].as_str().unwrap().to_string();
    let mut w = c
        .watch(&format!(
            "{DEPLOYS}?watch=true&fieldSelector=metadata.name%3D{name}&resourceVersion={}",
            list["metadata"]["resourceVersion"].as_str().unwrap()
        ))
        .await;
    let p = r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-01-01T00:00:00Z"}}}}}"#;
    let r = c
        .patch(
            &format!("{DEPLOYS}/{name}?fieldManager=kubectl-rollout"),
            "application/strategic-merge-patch+json",
            p,
        )
        .await
        .body;
    assert_eq!(r["metadata"]["generation"], 2);
    // Watch until the controller reports the rollout complete.
    let mut saw_progress = false;
    let done = w
        .until(|e| {
            let o = &e["object"];
            if o["status"]["observedGeneration"] == 2 && !complete(o) {
                saw_progress = true;
            }
            complete(o) && o["status"]["observedGeneration"] == 2
        })
        .await;
    assert!(saw_progress, "intermediate rollout status observed");
    assert_eq!(
        condition(&done["object"], "Progressing").unwrap()["reason"],
        "NewReplicaSetAvailable"
    );
    let stats = h.stats();
    assert_eq!(stats.template_changes.get(&format!("arcgis/{name}")), Some(&1));
    assert!(stats.peak_rolling >= 1);
    let s = h.stats();
    assert_eq!(s.rolling_now, 0);
    // A new Deployment rolls out too and gets its defaults.
    let created = c.post(DEPLOYS, &deployment("fresh")).await.body;
    assert_eq!(created["spec"]["progressDeadlineSeconds"], 600);
    let d = eventually("fresh available", || {
        let c = c.clone();
        async move {
            let d = c.get(&format!("{DEPLOYS}/fresh")).await.body;
            complete(&d).then_some(d)
        }
    })
    .await;
    assert_eq!(condition(&d, "Available").unwrap()["status"], "True");
    // Controller status writes are owned by kube-controller-manager.
    let mf = d["metadata"]["managedFields"].as_array().unwrap();
    assert!(
        mf.iter()
            .any(|m| m["manager"] == "kube-controller-manager" && m["subresource"] == "status")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn failing_deployment_exceeds_progress_deadline() {
    let (h, c) = sim(SimConfig { deployments: 0, ..Default::default() }).await;
    let mut d = deployment("bad");
    d["metadata"]["annotations"] =
        json!({"sim.gisops.io/fail": "true", "sim.gisops.io/rollout-ms": "100"});
    d["spec"]["progressDeadlineSeconds"] = json!(1);
    c.post(DEPLOYS, &d).await;
    let mut w = c.watch(&format!("{DEPLOYS}?watch=true&fieldSelector=metadata.name%3Dbad")).await;
    let ev = w
        .until(|e| {
            condition(&e["object"], "Progressing")
                .is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded")
        })
        .await;
    let p = condition(&ev["object"], "Progressing").unwrap();
    assert_eq!(p["status"], "False");
    assert!(!complete(&ev["object"]));
    h.shutdown().await;
}
