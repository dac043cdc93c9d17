//! StatefulSets and DaemonSets on nodes with capacity: their pods go
//! through the scheduler (a DaemonSet's to the Node objects, each pinned to
//! its node by affinity), wait `Unschedulable` where no room is, start once
//! bound, and the generated fleet's StatefulSets and DaemonSets fit on nodes
//! sized to them.

mod common;

use common::{RawHttpClient, eventually, sim};
use serde_json::{Value, json};
use servicerefresh_sim::{SimConfig, SimHandle};

const NS: &str = "apps";
const SETS: &str = "/apis/apps/v1/namespaces/apps/statefulsets";
const DAEMONS: &str = "/apis/apps/v1/namespaces/apps/daemonsets";
const PODS: &str = "/api/v1/namespaces/apps/pods";

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn requesting(cpu: &str) -> Value {
    json!([{"name": "main", "image": "busybox:1.36", "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}])
}

fn stateful_set(name: &str, replicas: u64, cpu: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "annotations": {"sim.gisops.io/rollout-ms": "100"}},
        "spec": {
            "replicas": replicas, "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": requesting(cpu)}},
        },
    })
}

fn daemon_set(name: &str, cpu: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "annotations": {"sim.gisops.io/rollout-ms": "100"}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": requesting(cpu)}},
        },
    })
}

/// Three empty nodes with 500m of CPU each.
async fn cluster() -> (SimHandle, RawHttpClient) {
    let (h, c) =
        sim(SimConfig { nodes: Some(3), spare_cpu_millis: Some(1500), ..Default::default() }).await;
    let created = c.post("/api/v1/namespaces", &json!({"metadata": {"name": NS}})).await;
    assert_eq!(created.status, 201);
    (h, c)
}

async fn create(c: &RawHttpClient, path: &str, object: &Value) {
    let created = c.post(path, object).await;
    assert_eq!(created.status, 201, "{}", created.body);
}

async fn pods(c: &RawHttpClient, app: &str) -> Vec<Value> {
    items(&c.get(&format!("{PODS}?labelSelector=app%3D{app}")).await.body)
}

fn condition<'a>(pod: &'a Value, kind: &str) -> Option<&'a Value> {
    pod["status"]["conditions"].as_array()?.iter().find(|condition| condition["type"] == kind)
}

fn is_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|ready| ready["status"] == "True")
}

fn unschedulable_message(pod: &Value) -> Option<String> {
    condition(pod, "PodScheduled")
        .filter(|scheduled| scheduled["reason"] == "Unschedulable")
        .and_then(|scheduled| scheduled["message"].as_str().map(String::from))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_pods_go_to_their_own_nodes_and_wait_there_for_room() {
    let (h, c) = cluster().await;
    // sim-worker-2 has 200m left once this pod runs.
    let filler = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "filler"},
        "spec": {"nodeName": "sim-worker-2", "containers": requesting("300m")},
    });
    create(&c, PODS, &filler).await;
    create(&c, DAEMONS, &daemon_set("agent", "400m")).await;
    let placed = eventually("the agent's pods to be made", || async {
        let pods = pods(&c, "agent").await;
        (pods.len() == 3 && pods.iter().filter(|pod| is_ready(pod)).count() == 2).then_some(pods)
    })
    .await;
    let mut nodes: Vec<&str> =
        placed.iter().filter_map(|pod| pod["spec"]["nodeName"].as_str()).collect();
    nodes.sort();
    assert_eq!(nodes, ["sim-worker-1", "sim-worker-3"], "each bound to the node it is for");
    let waiting =
        placed.iter().find(|pod| pod["spec"]["nodeName"].is_null()).cloned().unwrap_or_default();
    let target = &waiting["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"][0]["matchFields"][0]["values"][0];
    assert_eq!(target, "sim-worker-2");
    assert_eq!(
        unschedulable_message(&waiting).as_deref(),
        Some(
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. \
             preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
        ),
        "{waiting}"
    );
    let daemon = eventually("the DaemonSet's status", || async {
        let daemon = c.get(&format!("{DAEMONS}/agent")).await.body;
        (daemon["status"]["numberReady"] == 2).then_some(daemon)
    })
    .await;
    let status = &daemon["status"];
    assert_eq!(status["desiredNumberScheduled"], 3, "{status}");
    assert_eq!(
        status["currentNumberScheduled"], 3,
        "the waiting pod counts for its node: {status}"
    );
    assert_eq!(status["numberUnavailable"], 1, "{status}");
    // The controller keeps the waiting pod rather than replacing it.
    let waiting_name = waiting["metadata"]["name"].as_str().unwrap_or_default().to_string();
    assert_eq!(c.delete(&format!("{PODS}/filler")).await.status, 200);
    let bound = eventually("the waiting pod to be bound and start", || async {
        let pod = c.get(&format!("{PODS}/{waiting_name}")).await.body;
        is_ready(&pod).then_some(pod)
    })
    .await;
    assert_eq!(bound["spec"]["nodeName"], "sim-worker-2");
    let events = items(&c.get(&format!("/api/v1/namespaces/{NS}/events")).await.body);
    let about = |reason: &str| {
        events.iter().any(|event| {
            event["involvedObject"]["name"] == waiting_name.as_str() && event["reason"] == reason
        })
    };
    assert!(about("FailedScheduling") && about("Scheduled"), "{events:?}");
    eventually("every agent pod to be available", || async {
        let daemon = c.get(&format!("{DAEMONS}/agent")).await.body;
        (daemon["status"]["numberAvailable"] == 3).then_some(())
    })
    .await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_waits_in_order_for_room_for_each_pod() {
    let (h, c) = cluster().await;
    create(&c, DAEMONS, &daemon_set("agent", "300m")).await;
    eventually("an agent on every node", || async {
        let pods = pods(&c, "agent").await;
        (pods.len() == 3 && pods.iter().all(is_ready)).then_some(())
    })
    .await;
    // 200m are left on each node: the first pod waits, the second is not made.
    create(&c, SETS, &stateful_set("db", 2, "400m")).await;
    let first = eventually("db-0 to wait for room", || async {
        let pod = c.get(&format!("{PODS}/db-0")).await.body;
        unschedulable_message(&pod).map(|message| (pod, message))
    })
    .await;
    assert_eq!(
        first.1,
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
    assert_eq!(first.0["status"]["phase"], "Pending");
    assert!(first.0["status"]["containerStatuses"].is_null(), "no kubelet has it: {}", first.0);
    let set = c.get(&format!("{SETS}/db")).await.body;
    assert_eq!(set["status"]["replicas"], 1, "OrderedReady waits for db-0: {set}");
    assert_eq!(c.get(&format!("{PODS}/db-1")).await.status, 404);

    assert_eq!(c.delete(&format!("{DAEMONS}/agent")).await.status, 200);
    let set = eventually("both pods to run once the agents are gone", || async {
        let set = c.get(&format!("{SETS}/db")).await.body;
        (set["status"]["readyReplicas"] == 2).then_some(set)
    })
    .await;
    assert_eq!(set["status"]["availableReplicas"], 2, "{set}");
    for pod in pods(&c, "db").await {
        assert!(
            pod["spec"]["nodeName"].as_str().is_some_and(|node| node.starts_with("sim-worker-")),
            "{pod}"
        );
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_fleet_fits_its_nodes_with_the_spare_left() {
    let config = SimConfig {
        deployments: 12,
        stateful_sets: 4,
        daemon_sets: 2,
        nodes: Some(3),
        spare_cpu_millis: Some(1500),
        ..Default::default()
    };
    let (h, c) = sim(config).await;
    let pods = items(&c.get("/api/v1/namespaces/arcgis/pods").await.body);
    assert!(
        pods.iter().all(|pod| pod["spec"]["nodeName"].is_string() && is_ready(pod)),
        "{pods:?}"
    );
    let nodes = items(&c.get("/api/v1/nodes").await.body);
    let millis = |cpu: &str| match cpu.strip_suffix('m') {
        Some(millis) => millis.parse::<u64>().unwrap_or(0),
        None => cpu.parse::<u64>().unwrap_or(0) * 1000,
    };
    let allocatable: u64 = nodes
        .iter()
        .map(|node| millis(node["status"]["allocatable"]["cpu"].as_str().unwrap_or("0")))
        .sum();
    let requested: u64 = pods
        .iter()
        .map(|pod| {
            millis(
                pod["spec"]["containers"][0]["resources"]["requests"]["cpu"]
                    .as_str()
                    .unwrap_or("0"),
            )
        })
        .sum();
    assert!((1500..=1503).contains(&(allocatable - requested)), "{allocatable} - {requested}");
    for daemon in items(&c.get("/apis/apps/v1/namespaces/arcgis/daemonsets").await.body) {
        let status = &daemon["status"];
        assert_eq!(status["desiredNumberScheduled"], 3, "{status}");
        assert_eq!(status["numberAvailable"], 3, "{status}");
    }
    for set in items(&c.get("/apis/apps/v1/namespaces/arcgis/statefulsets").await.body) {
        assert_eq!(set["status"]["readyReplicas"], set["spec"]["replicas"], "{}", set["status"]);
    }
    h.shutdown().await;
}
