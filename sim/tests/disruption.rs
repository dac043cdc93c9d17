//! The disruption controller: PodDisruptionBudget statuses computed from
//! the ready pods their selectors match (minAvailable and maxUnavailable,
//! integers and percentages), updated as pods and budgets change, with the
//! `DisruptionAllowed` condition and the controller's Events.

mod common;

use common::*;
use serde_json::{Value, json};
use servicerefresh_sim::SimConfig;

const DEPLOYS: &str = "/apis/apps/v1/namespaces/arcgis/deployments";
const PDBS: &str = "/apis/policy/v1/namespaces/arcgis/poddisruptionbudgets";
const PODS: &str = "/api/v1/namespaces/arcgis/pods";
const EVENTS: &str = "/api/v1/namespaces/arcgis/events";

fn budget(name: &str, app: &str, field: &str, value: Value) -> Value {
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {field: value, "selector": {"matchLabels": {"app": app}}},
    })
}

async fn web(c: &RawHttpClient, replicas: u64) {
    let mut d = deployment("web");
    d["spec"]["replicas"] = json!(replicas);
    d["metadata"]["annotations"] = json!({"sim.gisops.io/rollout-ms": "200"});
    let r = c.post(DEPLOYS, &d).await;
    assert_eq!(r.status, 201, "{}", r.body);
    eventually("web rolled out", || async {
        let d = c.get(&format!("{DEPLOYS}/web")).await.body;
        (d["status"]["availableReplicas"] == replicas && d["status"]["replicas"] == replicas)
            .then_some(())
    })
    .await;
}

/// (expectedPods, desiredHealthy, currentHealthy, disruptionsAllowed).
fn figures(status: &Value) -> (i64, i64, i64, i64) {
    let get = |key: &str| status[key].as_i64().unwrap_or(-1);
    (get("expectedPods"), get("desiredHealthy"), get("currentHealthy"), get("disruptionsAllowed"))
}

/// Waits until the budget's status shows `want` for its current generation.
async fn settles(c: &RawHttpClient, name: &str, want: (i64, i64, i64, i64)) -> Value {
    eventually(&format!("{name} at {want:?}"), || async {
        let b = c.get(&format!("{PDBS}/{name}")).await.body;
        let observed = b["status"]["observedGeneration"] == b["metadata"]["generation"];
        (observed && figures(&b["status"]) == want).then_some(b)
    })
    .await
}

fn allowed_condition(budget: &Value) -> Value {
    budget["status"]["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == "DisruptionAllowed"))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn events_for(c: &RawHttpClient, name: &str, reason: &str) -> Vec<Value> {
    let list = c
        .get(&format!("{EVENTS}?fieldSelector=involvedObject.name%3D{name},reason%3D{reason}"))
        .await
        .body;
    list["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_count_the_ready_pods_they_select() {
    let (_h, c) = sim(SimConfig::default()).await;
    web(&c, 3).await;
    for (name, field, value) in [
        ("min-int", "minAvailable", json!(2)),
        ("min-percent", "minAvailable", json!("50%")),
        ("max-int", "maxUnavailable", json!(1)),
        ("max-percent", "maxUnavailable", json!("34%")),
        ("all", "minAvailable", json!("100%")),
    ] {
        let r = c.post(PDBS, &budget(name, "web", field, value)).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let min_int = settles(&c, "min-int", (3, 2, 3, 1)).await;
    let condition = allowed_condition(&min_int);
    assert_eq!(condition["status"], "True");
    assert_eq!(condition["reason"], "SufficientPods");
    assert_eq!(condition["message"], "");
    assert_eq!(condition["observedGeneration"], 1);
    assert!(condition["lastTransitionTime"].is_string());
    // 50% of 3 rounds up: two must stay.
    settles(&c, "min-percent", (3, 2, 3, 1)).await;
    settles(&c, "max-int", (3, 2, 3, 1)).await;
    // 34% of 3 may be unavailable, rounded up: two; one must stay.
    settles(&c, "max-percent", (3, 1, 3, 2)).await;
    let all = settles(&c, "all", (3, 3, 3, 0)).await;
    let condition = allowed_condition(&all);
    assert_eq!(
        (condition["status"].as_str(), condition["reason"].as_str()),
        (Some("False"), Some("InsufficientPods"))
    );

    // A budget that selects nothing allows nothing, and says so.
    let r = c.post(PDBS, &budget("nothing", "nothing", "minAvailable", json!(1))).await;
    assert_eq!(r.status, 201);
    let nothing = settles(&c, "nothing", (0, 1, 0, 0)).await;
    assert_eq!(allowed_condition(&nothing)["reason"], "InsufficientPods");
    let events = eventually("NoPods", || async {
        let events = events_for(&c, "nothing", "NoPods").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events[0]["message"], "No matching pods found");
    assert_eq!(events[0]["type"], "Normal");
    assert_eq!(events[0]["source"]["component"], "controllermanager");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_follow_their_pods_and_their_spec() {
    let (_h, c) = sim(SimConfig::default()).await;
    web(&c, 3).await;
    c.post(PDBS, &budget("min-int", "web", "minAvailable", json!(2))).await;
    c.post(PDBS, &budget("max-percent", "web", "maxUnavailable", json!("34%"))).await;
    settles(&c, "min-int", (3, 2, 3, 1)).await;

    // Scaled to one pod: one expected, two wanted, none may go.
    let r = c.merge_patch(&format!("{DEPLOYS}/web"), r#"{"spec":{"replicas":1}}"#).await;
    assert_eq!(r["spec"]["replicas"], 1);
    let min_int = settles(&c, "min-int", (1, 2, 1, 0)).await;
    assert_eq!(allowed_condition(&min_int)["reason"], "InsufficientPods");
    // 34% of one, rounded up, is the one pod: none must stay, it may go.
    settles(&c, "max-percent", (1, 0, 1, 1)).await;

    // A new spec is a new generation, observed in the status.
    let r = c.merge_patch(&format!("{PDBS}/min-int"), r#"{"spec":{"minAvailable":1}}"#).await;
    assert_eq!(r["metadata"]["generation"], 2);
    let min_int = settles(&c, "min-int", (1, 1, 1, 0)).await;
    assert_eq!(min_int["status"]["observedGeneration"], 2);
    assert_eq!(allowed_condition(&min_int)["observedGeneration"], 2);
    // Back to three ready pods: one may go.
    c.merge_patch(&format!("{DEPLOYS}/web"), r#"{"spec":{"replicas":3}}"#).await;
    let min_int = settles(&c, "min-int", (3, 1, 3, 2)).await;
    let condition = allowed_condition(&min_int);
    assert_eq!(
        (condition["status"].as_str(), condition["reason"].as_str()),
        (Some("True"), Some("SufficientPods"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_without_a_known_controller() {
    let (_h, c) = sim(SimConfig::default()).await;
    // A bare pod: unmanaged, so a percentage budget expects nothing of it.
    let bare = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bare", "labels": {"app": "bare"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}});
    assert_eq!(c.post(PODS, &bare).await.status, 201);
    c.post(PDBS, &budget("bare", "bare", "maxUnavailable", json!(1))).await;
    settles(&c, "bare", (0, 0, 0, 0)).await;
    let events = eventually("UnmanagedPods", || async {
        let events = events_for(&c, "bare", "UnmanagedPods").await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events[0]["type"], "Warning");
    assert!(
        events[0]["message"].as_str().unwrap().starts_with(
            "Pods selected by this PodDisruptionBudget (selector: &LabelSelector{MatchLabels:map[app:bare],"
        ),
        "{}",
        events[0]["message"]
    );

    // A pod controlled by something without a scale: the budget cannot be
    // computed, and allows nothing.
    let owner = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}});
    let owner = c.post("/api/v1/namespaces/arcgis/configmaps", &owner).await.body;
    let owned = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "owned", "labels": {"app": "owned"}, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"],
            "controller": true}]},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}});
    assert_eq!(c.post(PODS, &owned).await.status, 201);
    c.post(PDBS, &budget("owned", "owned", "minAvailable", json!("50%"))).await;
    let failed = eventually("SyncFailed", || async {
        let b = c.get(&format!("{PDBS}/owned")).await.body;
        (allowed_condition(&b)["reason"] == "SyncFailed").then_some(b)
    })
    .await;
    let condition = allowed_condition(&failed);
    assert_eq!(condition["status"], "False");
    assert_eq!(condition["message"], "configmaps does not implement the scale subresource");
    assert_eq!(failed["status"]["disruptionsAllowed"], 0);
    let events = events_for(&c, "owned", "CalculateExpectedPodCountFailed").await;
    assert_eq!(
        events[0]["message"],
        "Failed to calculate the number of expected pods: configmaps does not implement the scale subresource"
    );
}
