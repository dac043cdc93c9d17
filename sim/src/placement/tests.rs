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
    assert_eq!(place(&cache, cpu(100), false), Ok("n1".to_string()), "a tie goes to the first");
    add_pod(&store, &mut cache, "a", "n1", "600m");
    add_pod(&store, &mut cache, "b", "n2", "300m");
    assert_eq!(place(&cache, cpu(100), false), Ok("n3".to_string()));
    add_pod(&store, &mut cache, "c", "n3", "500m");
    assert_eq!(place(&cache, cpu(450), false), Ok("n2".to_string()));
}

#[test]
fn a_pod_no_node_takes_gets_the_schedulers_message() {
    let (store, mut cache) = cluster();
    for (name, node) in [("a", "n1"), ("b", "n2"), ("c", "n3")] {
        add_pod(&store, &mut cache, name, node, "800m");
    }
    let error = place(&cache, cpu(300), false).unwrap_err();
    assert_eq!(
        error.to_string(),
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
    let error = place(&cache, cpu(1500), false).unwrap_err();
    assert_eq!(
        error.to_string(),
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
    let error = place(&cache, cpu(300), true).unwrap_err();
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
    let error = place(&cache, cpu(200), false).unwrap_err();
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
    assert!(place(&cache, cpu(500), false).is_err());
    {
        let mut inner = store.lock();
        let pods = GroupResource::new("", "pods");
        let mut done = pod("b", "n2", "800m");
        done["status"]["phase"] = json!("Succeeded");
        inner.commit(&pods, done, EventType::Modified);
        cache.sync(&inner);
    }
    assert_eq!(place(&cache, cpu(500), false), Ok("n2".to_string()));
    {
        let mut inner = store.lock();
        let pods = GroupResource::new("", "pods");
        inner.commit(&pods, pod("a", "n1", "800m"), EventType::Deleted);
        inner.commit(&GroupResource::new("", "nodes"), node("n2", "0", 110), EventType::Modified);
        cache.sync(&inner);
    }
    assert_eq!(place(&cache, cpu(900), false), Ok("n1".to_string()));
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
    assert_eq!(place(&cache, cpu(200), false), Ok("n3".to_string()));
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
