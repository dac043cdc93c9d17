//! The scheduler's arithmetic: which node takes a pod, the messages of pods
//! no node takes, and the cache following the store.

use serde_json::{Value, json};

use super::*;
use crate::error::GroupResource;
use crate::store::{EventType, Store};

fn node(name: &str, cpu: &str, pods: u64) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name},
        "spec": {},
        "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": pods.to_string()}},
    })
}

fn pod(name: &str, node: &str, cpu: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"nodeName": node, "containers": [
            {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "100Mi"}}}
        ]},
        "status": {"phase": "Running"},
    })
}

fn cpu(millis: u64) -> Resources {
    Resources { cpu_millis: millis, memory_bytes: 100 * 1024 * 1024 }
}

/// A pod asking for `requests` and nothing else.
fn needs(requests: Resources) -> Needs {
    Needs { requests, ..Needs::default() }
}

/// A store with three 1-CPU nodes and a cache following it.
fn cluster() -> (Store, NodeCache) {
    let store = Store::new(100);
    {
        let mut inner = store.lock();
        for name in ["n1", "n2", "n3"] {
            inner.commit(&GroupResource::new("", "nodes"), node(name, "1", 110), EventType::Added);
        }
    }
    let mut cache = NodeCache::default();
    cache.sync(&store.lock());
    (store, cache)
}

fn add_pod(store: &Store, cache: &mut NodeCache, name: &str, node: &str, cpu: &str) {
    let mut inner = store.lock();
    inner.commit(&GroupResource::new("", "pods"), pod(name, node, cpu), EventType::Added);
    cache.sync(&inner);
}

#[test]
fn pods_go_to_the_least_allocated_node() {
    let (store, mut cache) = cluster();
    assert_eq!(place(&cache, &needs(cpu(100))), Ok("n1".to_string()), "a tie goes to the first");
    add_pod(&store, &mut cache, "a", "n1", "600m");
    add_pod(&store, &mut cache, "b", "n2", "300m");
    assert_eq!(place(&cache, &needs(cpu(100))), Ok("n3".to_string()));
    add_pod(&store, &mut cache, "c", "n3", "500m");
    assert_eq!(place(&cache, &needs(cpu(450))), Ok("n2".to_string()));
}

#[test]
fn a_pod_no_node_takes_gets_the_schedulers_message() {
    let (store, mut cache) = cluster();
    for (name, node) in [("a", "n1"), ("b", "n2"), ("c", "n3")] {
        add_pod(&store, &mut cache, name, node, "800m");
    }
    let error = place(&cache, &needs(cpu(300))).unwrap_err();
    assert_eq!(
        error.to_string(),
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
    let error = place(&cache, &needs(cpu(1500))).unwrap_err();
    assert_eq!(
        error.to_string(),
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
    let error = place(&cache, &Needs { preemption_never: true, ..needs(cpu(300)) }).unwrap_err();
    assert!(
        error.to_string().ends_with(" preemption: not eligible due to preemptionPolicy=Never.")
    );
}

#[test]
fn reasons_are_counted_per_node_and_sorted() {
    let store = Store::new(100);
    let mut cache = NodeCache::default();
    {
        let mut inner = store.lock();
        let nodes = GroupResource::new("", "nodes");
        inner.commit(&nodes, node("n1", "1", 1), EventType::Added);
        let mut cordoned = node("n2", "4", 110);
        cordoned["spec"]["unschedulable"] = json!(true);
        inner.commit(&nodes, cordoned, EventType::Added);
        inner.commit(&nodes, node("n3", "100m", 110), EventType::Added);
        let pods = GroupResource::new("", "pods");
        inner.commit(&pods, pod("a", "n1", "100m"), EventType::Added);
        cache.sync(&inner);
    }
    let error = place(&cache, &needs(cpu(200))).unwrap_err();
    assert_eq!(
        error.to_string(),
        "0/3 nodes are available: 1 Insufficient cpu, 1 Too many pods, 1 node(s) were unschedulable. \
         preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
    );
}

#[test]
fn the_cache_follows_deletions_terminal_pods_and_node_changes() {
    let (store, mut cache) = cluster();
    for (name, node) in [("a", "n1"), ("b", "n2"), ("c", "n3")] {
        add_pod(&store, &mut cache, name, node, "800m");
    }
    assert!(place(&cache, &needs(cpu(500))).is_err());
    {
        let mut inner = store.lock();
        let pods = GroupResource::new("", "pods");
        let mut done = pod("b", "n2", "800m");
        done["status"]["phase"] = json!("Succeeded");
        inner.commit(&pods, done, EventType::Modified);
        cache.sync(&inner);
    }
    assert_eq!(place(&cache, &needs(cpu(500))), Ok("n2".to_string()));
    {
        let mut inner = store.lock();
        let pods = GroupResource::new("", "pods");
        inner.commit(&pods, pod("a", "n1", "800m"), EventType::Deleted);
        inner.commit(&GroupResource::new("", "nodes"), node("n2", "0", 110), EventType::Modified);
        cache.sync(&inner);
    }
    assert_eq!(place(&cache, &needs(cpu(900))), Ok("n1".to_string()));
    // A cache that fell behind the retained events lists the store again.
    let mut late = NodeCache::default();
    {
        let mut inner = store.lock();
        inner.compact();
        late.sync(&inner);
    }
    assert_eq!(late.nodes().map(|node| node.requested.cpu_millis).sum::<u64>(), 800);
}

#[test]
fn reservations_hold_room_until_the_deployment_gets_objects() {
    let (store, mut cache) = cluster();
    let key = ("ns".to_string(), "web".to_string());
    cache.reserve(key.clone(), vec![("n1".into(), cpu(900)), ("n2".into(), cpu(900))]);
    assert_eq!(place(&cache, &needs(cpu(200))), Ok("n3".to_string()));
    {
        let mut inner = store.lock();
        let rs = json!({"metadata": {"name": "web-abc", "namespace": "ns", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u", "controller": true}
        ]}});
        inner.commit(&GroupResource::new("apps", "replicasets"), rs, EventType::Added);
        cache.sync(&inner);
    }
    assert_eq!(cache.take_reservation(&key), None, "released by the ReplicaSet");
    assert!(cache.nodes().all(|node| node.requested == Resources::default()));
}

/// A pod asking for 200m, with `spec` fields beside its containers.
fn constrained(spec: Value) -> Needs {
    let mut pod = pod("d", "", "200m");
    if let (Some(fields), Some(extra)) = (pod["spec"].as_object_mut(), spec.as_object()) {
        fields.remove("nodeName");
        fields.extend(extra.clone());
    }
    Needs::of(&pod)
}

/// A DaemonSet's pod for `node`: pinned by `matchFields`, tolerating a cordon.
fn daemon_pod(node: &str) -> Needs {
    constrained(json!({
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [node]}
            ]}]
        }}},
        "tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}],
    }))
}

#[test]
fn a_daemon_pod_goes_to_its_node_only_and_tolerates_a_cordon() {
    let (store, mut cache) = cluster();
    assert_eq!(place(&cache, &daemon_pod("n2")), Ok("n2".to_string()), "not the least allocated");
    add_pod(&store, &mut cache, "a", "n2", "900m");
    let error = place(&cache, &daemon_pod("n2")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. \
         preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling."
    );
    {
        let mut inner = store.lock();
        let mut cordoned = node("n3", "1", 110);
        cordoned["spec"]["unschedulable"] = json!(true);
        inner.commit(&GroupResource::new("", "nodes"), cordoned, EventType::Modified);
        cache.sync(&inner);
    }
    assert_eq!(place(&cache, &daemon_pod("n3")), Ok("n3".to_string()), "the cordon is tolerated");
    assert_eq!(place(&cache, &needs(cpu(100))), Ok("n1".to_string()), "others keep off it");
    let conflicting = constrained(json!({
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": ["n1"]},
                {"key": "metadata.name", "operator": "In", "values": ["n2"]}
            ]}]
        }}},
    }));
    assert_eq!(
        place(&cache, &conflicting).unwrap_err().to_string(),
        "0/3 nodes are available: pod affinity terms conflict. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
}

#[test]
fn node_selectors_and_label_expressions_filter_nodes() {
    let store = Store::new(100);
    let mut cache = NodeCache::default();
    {
        let mut inner = store.lock();
        let nodes = GroupResource::new("", "nodes");
        for (name, zone, cores) in [("n1", "a", "4"), ("n2", "b", "8"), ("n3", "b", "16")] {
            let mut labelled = node(name, "1", 110);
            labelled["metadata"]["labels"] = json!({"zone": zone, "cores": cores});
            inner.commit(&nodes, labelled, EventType::Added);
        }
        cache.sync(&inner);
    }
    let expressions = |expressions: Value| {
        constrained(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": expressions}]
            }}}}),
        )
    };
    assert_eq!(
        place(&cache, &constrained(json!({"nodeSelector": {"zone": "b"}}))),
        Ok("n2".into())
    );
    let big = expressions(json!([{"key": "cores", "operator": "Gt", "values": ["8"]}]));
    assert_eq!(place(&cache, &big), Ok("n3".into()));
    let not_b = expressions(json!([{"key": "zone", "operator": "NotIn", "values": ["b"]}]));
    assert_eq!(place(&cache, &not_b), Ok("n1".into()));
    let nowhere = expressions(json!([{"key": "gpu", "operator": "Exists"}]));
    assert_eq!(
        place(&cache, &nowhere).unwrap_err().to_string(),
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
}
