//! Nodes, the scheduler and rollouts paced by capacity (`SimConfig::nodes`):
//! the generated fleet's nodes sized to leave the spare CPU, pods no node
//! takes left `Pending` / `Unschedulable` with the scheduler's message and
//! Event until room frees, a rollout whose surge pod fits nowhere crossing
//! its progress deadline, and restarting many Deployments at once against
//! a few at a time.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use servicerefresh_sim::SimConfig;

const DEPLOYS: &str = "/apis/apps/v1/namespaces/arcgis/deployments";
const PODS: &str = "/api/v1/namespaces/arcgis/pods";
const EVENTS: &str = "/api/v1/namespaces/arcgis/events";

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

/// CPU millicores of a quantity as the tests write them (`250m`, `2`).
fn millis(quantity: &str) -> u64 {
    servicerefresh_sim::cpu_millis(quantity).expect("a CPU quantity")
}

fn condition<'a>(d: &'a Value, kind: &str) -> &'a Value {
    d["status"]["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

fn deadline_exceeded(d: &Value) -> bool {
    condition(d, "Progressing")["reason"] == "ProgressDeadlineExceeded"
}

async fn create(c: &RawHttpClient, d: &Value) {
    let r = c.post(DEPLOYS, d).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn rolled_out(c: &RawHttpClient, name: &str) -> Value {
    eventually_within(Duration::from_secs(30), &format!("{name} rolled out"), || async {
        let d = c.get(&format!("{DEPLOYS}/{name}")).await.body;
        rollout_complete(&d).then_some(d)
    })
    .await
}

async fn pods_of(c: &RawHttpClient, app: &str) -> Vec<Value> {
    items(&c.get(&format!("{PODS}?labelSelector=app%3D{app}")).await.body)
}

fn unbound(pod: &Value) -> bool {
    pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty()
}

async fn restart(c: &RawHttpClient, name: &str, stamp: &str) {
    let patch =
        json!({"spec": {"template": {"metadata": {"annotations": {"restartedAt": stamp}}}}});
    let r = c
        .patch(
            &format!("{DEPLOYS}/{name}"),
            "application/strategic-merge-patch+json",
            &patch.to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Three nodes with `per_node` CPU allocatable each and nothing else on
/// them (no fleet: the spare is all there is).
async fn empty_cluster(per_node: &str) -> (servicerefresh_sim::SimHandle, RawHttpClient) {
    sim(SimConfig {
        nodes: Some(3),
        spare_cpu_millis: Some(3 * millis(per_node)),
        ..Default::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_hold_the_fleet_with_the_spare_cpu_left() {
    let (_h, c) = sim(SimConfig {
        deployments: 60,
        nodes: Some(3),
        spare_cpu_millis: Some(1500),
        ..Default::default()
    })
    .await;
    let nodes = items(&c.get("/api/v1/nodes").await.body);
    let names: Vec<&str> = nodes.iter().map(|n| n["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["sim-worker-1", "sim-worker-2", "sim-worker-3"]);
    let pods = items(&c.get(PODS).await.body);
    let mut requested = 0;
    for pod in &pods {
        let node = pod["spec"]["nodeName"].as_str().expect("every fleet pod runs on a node");
        let host = nodes.iter().find(|n| n["metadata"]["name"] == node).expect("a known node");
        assert_eq!(pod["status"]["hostIP"], host["status"]["addresses"][0]["address"]);
        let cpu = pod["spec"]["containers"][0]["resources"]["requests"]["cpu"].as_str().unwrap();
        assert!((100..=500).contains(&millis(cpu)), "{cpu}");
        requested += millis(cpu);
    }
    let allocatable: u64 =
        nodes.iter().map(|n| millis(n["status"]["allocatable"]["cpu"].as_str().unwrap())).sum();
    // Exactly the spare, up to rounding each node to a millicore.
    assert!((1500..1503).contains(&(allocatable - requested)), "{allocatable} - {requested}");
    for node in &nodes {
        let ready =
            node["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready");
        assert_eq!(ready.unwrap()["status"], "True");
        let name = node["metadata"]["name"].as_str().unwrap();
        let lease = c
            .get(&format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"))
            .await;
        assert_eq!(lease.body["spec"]["holderIdentity"], name);
        // `kubectl describe node` lists a node's pods by field selector.
        let on_node = c
            .get(&format!(
                "/api/v1/pods?fieldSelector=spec.nodeName%3D{name},status.phase!%3DSucceeded,status.phase!%3DFailed"
            ))
            .await;
        assert_eq!(on_node.status, 200, "{}", on_node.body);
        let count = items(&on_node.body).len();
        assert_eq!(count, pods.iter().filter(|p| p["spec"]["nodeName"] == name).count());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_fits_nowhere_waits_unschedulable_until_room_frees() {
    let (_h, c) = empty_cluster("400m").await;
    create(&c, &deployment_requesting("filler", 3, "300m", 600)).await;
    rolled_out(&c, "filler").await;
    let filler = pods_of(&c, "filler").await;
    let mut nodes: Vec<&str> =
        filler.iter().map(|p| p["spec"]["nodeName"].as_str().unwrap()).collect();
    nodes.sort();
    assert_eq!(
        nodes,
        ["sim-worker-1", "sim-worker-2", "sim-worker-3"],
        "spread least allocated first"
    );

    create(&c, &deployment_requesting("late", 1, "200m", 600)).await;
    let pod = eventually("late's pod unschedulable", || async {
        let pods = pods_of(&c, "late").await;
        pods.into_iter().find(|p| condition_of(p, "PodScheduled")["reason"] == "Unschedulable")
    })
    .await;
    assert!(unbound(&pod), "{pod}");
    assert_eq!(pod["status"]["phase"], "Pending");
    let scheduled = condition_of(&pod, "PodScheduled");
    assert_eq!(scheduled["status"], "False");
    let message = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.";
    assert_eq!(scheduled["message"], message);
    let name = pod["metadata"]["name"].as_str().unwrap();
    let events = items(
        &c.get(&format!(
            "{EVENTS}?fieldSelector=involvedObject.name%3D{name},reason%3DFailedScheduling"
        ))
        .await
        .body,
    );
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "Warning");
    assert_eq!(events[0]["message"], message);
    assert_eq!(events[0]["reportingComponent"], "default-scheduler");
    assert_eq!(events[0]["action"], "Scheduling");
    // The events.k8s.io view names the reporting controller as such.
    let new_api = items(
        &c.get(&format!(
            "/apis/events.k8s.io/v1/namespaces/arcgis/events?fieldSelector=regarding.name%3D{name}"
        ))
        .await
        .body,
    );
    assert_eq!(new_api[0]["reportingController"], "default-scheduler");

    // The Deployment counts the pod as updated but not available.
    let late = c.get(&format!("{DEPLOYS}/late")).await.body;
    assert_eq!(late["status"]["updatedReplicas"], 1, "{late}");
    assert_eq!(late["status"].get("availableReplicas"), None, "{late}");
    assert_eq!(late["status"]["unavailableReplicas"], 1, "{late}");
    assert_eq!(condition(&late, "Available")["status"], "False");

    // Room frees: the scheduler binds the pod, which then becomes ready.
    let r = c.merge_patch(&format!("{DEPLOYS}/filler"), r#"{"spec":{"replicas":2}}"#).await;
    assert_eq!(r["spec"]["replicas"], 2);
    rolled_out(&c, "late").await;
    let pod = c.get(&format!("{PODS}/{name}")).await.body;
    assert!(!unbound(&pod), "{pod}");
    assert_eq!(condition_of(&pod, "PodScheduled")["status"], "True");
    assert_eq!(condition_of(&pod, "Ready")["status"], "True");
    let scheduled = items(
        &c.get(&format!("{EVENTS}?fieldSelector=involvedObject.name%3D{name},reason%3DScheduled"))
            .await
            .body,
    );
    let node = pod["spec"]["nodeName"].as_str().unwrap();
    assert_eq!(scheduled[0]["message"], format!("Successfully assigned arcgis/{name} to {node}"));
}

fn condition_of<'a>(pod: &'a Value, kind: &str) -> &'a Value {
    pod["status"]["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_whose_surge_pod_fits_nowhere_crosses_its_progress_deadline() {
    let (_h, c) = empty_cluster("500m").await;
    create(&c, &deployment_requesting("web", 3, "400m", 2)).await;
    rolled_out(&c, "web").await;
    restart(&c, "web", "1").await;
    let stuck = eventually("the deadline crossed", || async {
        let d = c.get(&format!("{DEPLOYS}/web")).await.body;
        deadline_exceeded(&d).then_some(d)
    })
    .await;
    let progressing = condition(&stuck, "Progressing");
    assert_eq!(progressing["status"], "False");
    let status = &stuck["status"];
    // The surge pod exists (updated) but waits; the old pods all stay.
    assert_eq!(
        (
            status["replicas"].as_u64(),
            status["updatedReplicas"].as_u64(),
            status["availableReplicas"].as_u64()
        ),
        (Some(4), Some(1), Some(3)),
        "{stuck}"
    );
    assert_eq!(status.get("unavailableReplicas"), None, "{stuck}");
    assert_eq!(condition(&stuck, "Available")["status"], "True");
    let pods = pods_of(&c, "web").await;
    assert_eq!(pods.iter().filter(|p| unbound(p)).count(), 1);
    assert_eq!(pods.iter().filter(|p| condition_of(p, "Ready")["status"] == "True").count(), 3);

    // A node grows (its kubelet reports more allocatable): the surge pod is
    // bound and the rollout completes; Progressing turns True again.
    let node = c.get("/api/v1/nodes/sim-worker-2").await.body;
    let mut grown = node.clone();
    grown["status"]["allocatable"]["cpu"] = json!("2");
    let r = c.put("/api/v1/nodes/sim-worker-2/status", &grown).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let done = rolled_out(&c, "web").await;
    assert_eq!(condition(&done, "Progressing")["reason"], "NewReplicaSetAvailable");
    assert_eq!(condition(&done, "Progressing")["status"], "True");
}

/// Restarts `names` in groups of `at_once`, each group waited for until
/// complete (watching, so that no passing state is missed); returns how
/// many rollouts crossed their progress deadline on the way and how many
/// pods the scheduler reported unschedulable.
async fn restart_in_groups(
    c: &RawHttpClient,
    names: &[String],
    at_once: usize,
    stamp: &str,
) -> (usize, usize) {
    let failed = |list: Value| items(&list).len();
    let failed_before =
        failed(c.get(&format!("{EVENTS}?fieldSelector=reason%3DFailedScheduling")).await.body);
    let mut exceeded = std::collections::BTreeSet::new();
    for group in names.chunks(at_once) {
        let rv =
            c.get(DEPLOYS).await.body["metadata"]["resourceVersion"].as_str().unwrap().to_string();
        let mut watch = c.watch(&format!("{DEPLOYS}?watch=true&resourceVersion={rv}")).await;
        for name in group {
            restart(c, name, stamp).await;
        }
        let mut done = std::collections::BTreeSet::new();
        while done.len() < group.len() {
            let event =
                watch.next_within(Duration::from_secs(60)).await.expect("the group completes");
            let d = &event["object"];
            let name = d["metadata"]["name"].as_str().unwrap_or("").to_string();
            if !group.contains(&name) {
                continue;
            }
            if deadline_exceeded(d) {
                exceeded.insert(name.clone());
            }
            let restarted =
                d["spec"]["template"]["metadata"]["annotations"]["restartedAt"] == stamp;
            if restarted && rollout_complete(d) {
                done.insert(name);
            }
        }
    }
    let failed_after =
        failed(c.get(&format!("{EVENTS}?fieldSelector=reason%3DFailedScheduling")).await.body);
    (exceeded.len(), failed_after - failed_before)
}

/// The operator's scenario: 60 Deployments on three nodes with 1.5 CPUs to
/// spare, rollouts of 300 ms, a 20 s progress deadline. Restarting ten at
/// once leaves surge pods unschedulable, but room comes back within a
/// second or two as the rollouts that got it finish (as on a real cluster),
/// so none crosses its deadline; restarting two at a time never runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_ten_at_once_leaves_surge_pods_waiting_for_room() {
    let (_h, c) = sim(SimConfig {
        deployments: 60,
        nodes: Some(3),
        spare_cpu_millis: Some(1500),
        rollout_ms: 300,
        progress_deadline_seconds: 20,
        ..Default::default()
    })
    .await;
    let mut fleet = items(&c.get(DEPLOYS).await.body);
    // The largest requests first: those need the most room.
    fleet.sort_by_key(|d| std::cmp::Reverse(cpu_of(d)));
    let names: Vec<String> =
        fleet.iter().map(|d| d["metadata"]["name"].as_str().unwrap().to_string()).collect();

    let (exceeded, unschedulable) = restart_in_groups(&c, &names[..10], 10, "many").await;
    eprintln!("ten at once: {unschedulable} FailedScheduling Events, {exceeded} past the deadline");
    assert!(unschedulable > 0, "ten surge pods at once do not all fit");
    assert_eq!(exceeded, 0, "room comes back long before 20 s");

    let (exceeded, unschedulable) = restart_in_groups(&c, &names[10..20], 2, "few").await;
    eprintln!(
        "two at a time: {unschedulable} FailedScheduling Events, {exceeded} past the deadline"
    );
    assert_eq!((exceeded, unschedulable), (0, 0));
}

fn cpu_of(d: &Value) -> u64 {
    millis(
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
            .as_str()
            .unwrap(),
    )
}

/// Where room comes back only as fast as rollouts finish and that is
/// slower than the deadline: eight Deployments of three 500m pods on three
/// nodes with room for three surge pods, each rollout 3 s (a wave a
/// second), a 2 s deadline. All eight at once: the pods that wait for room
/// wait longer than the deadline, so those rollouts cross it (and complete
/// later, Progressing back to True); two at a time all fit and none does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_that_wait_for_room_longer_than_the_deadline_cross_it() {
    let (_h, c) = empty_cluster("4500m").await;
    let names: Vec<String> = (0..8).map(|index| format!("svc-{index}")).collect();
    for name in &names {
        let mut d = deployment_requesting(name, 3, "500m", 2);
        d["metadata"]["annotations"]["sim.gisops.io/rollout-ms"] = json!("3000");
        create(&c, &d).await;
    }
    for name in &names {
        rolled_out(&c, name).await;
    }
    let (exceeded, unschedulable) = restart_in_groups(&c, &names, 8, "many").await;
    eprintln!(
        "eight at once: {unschedulable} FailedScheduling Events, {exceeded} past the deadline"
    );
    assert!(unschedulable > 0);
    assert!(exceeded > 0, "waiting for room outlasts the deadline");
    // They all completed since: Progressing is True again.
    for name in &names {
        let done = rolled_out(&c, name).await;
        assert_eq!(condition(&done, "Progressing")["reason"], "NewReplicaSetAvailable", "{done}");
    }
    let (exceeded, unschedulable) = restart_in_groups(&c, &names, 2, "few").await;
    eprintln!(
        "two at a time: {unschedulable} FailedScheduling Events, {exceeded} past the deadline"
    );
    assert_eq!((exceeded, unschedulable), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_created_through_the_api_are_scheduled_too() {
    let (_h, c) = empty_cluster("1").await;
    let pod = |name: &str, cpu: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                "resources": {"requests": {"cpu": cpu}}}]}})
    };
    assert_eq!(c.post(PODS, &pod("small", "100m")).await.status, 201);
    assert_eq!(c.post(PODS, &pod("huge", "2")).await.status, 201);
    let small = eventually("small bound", || async {
        let p = c.get(&format!("{PODS}/small")).await.body;
        (!unbound(&p)).then_some(p)
    })
    .await;
    assert_eq!(condition_of(&small, "PodScheduled")["status"], "True");
    let huge = eventually("huge unschedulable", || async {
        let p = c.get(&format!("{PODS}/huge")).await.body;
        (condition_of(&p, "PodScheduled")["reason"] == "Unschedulable").then_some(p)
    })
    .await;
    // Larger than any node's whole allocatable: no eviction could help.
    assert_eq!(
        condition_of(&huge, "PodScheduled")["message"],
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
    assert_eq!(huge["status"]["qosClass"], "Burstable");
}
