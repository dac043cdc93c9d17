//! The scheduler's view of the nodes, as its informer cache keeps it: each
//! node's allocatable CPU, memory and pod slots, its labels, whether it is
//! cordoned, and what the pods bound to it (not yet Succeeded or Failed)
//! request. It
//! follows the store through the retained events since it last looked, and
//! lists the store again when those are gone.
//!
//! It also keeps the scheduling queue's order: the pods waiting for a node
//! (unbound, for `default-scheduler`, not being deleted, not finished),
//! higher `spec.priority` first, then older; and counts the changes that
//! may have made room (a pod leaving a node, a node added or changed, a
//! reservation released), so that waiting pods are tried again only then.
//!
//! A generated fleet too large to get its ReplicaSets and Pods at start-up
//! still occupies its nodes: each such Deployment holds a reservation of its
//! pods' requests on the nodes the fleet placed them on, until its objects
//! are made (its first ReplicaSet appears) or it is deleted.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::resources::{Resources, pod_requests, resource_list};
use crate::error::GroupResource;
use crate::quantity;
use crate::store::{EventType, ObjectKey, StoreInner, StoredEvent};
use crate::util::metadata_str;

/// One node as the scheduler sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    pub name: String,
    /// `status.allocatable` cpu and memory.
    pub allocatable: Resources,
    /// `status.allocatable.pods`.
    pub max_pods: u64,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// What the pods on it (and reservations) request.
    pub requested: Resources,
    /// How many pods are on it (reservations included).
    pub pods: u64,
}

impl NodeView {
    fn new(name: &str) -> NodeView {
        NodeView {
            name: name.to_string(),
            allocatable: Resources::default(),
            max_pods: 0,
            unschedulable: false,
            labels: BTreeMap::new(),
            requested: Resources::default(),
            pods: 0,
        }
    }

    /// Takes allocatable, labels and cordon from a Node object.
    fn read(&mut self, node: &Value) {
        let allocatable = node.pointer("/status/allocatable");
        self.allocatable = resource_list(allocatable);
        self.max_pods = allocatable
            .and_then(|list| list.get("pods"))
            .and_then(|pods| match pods {
                Value::String(text) => quantity::whole_units(text).ok(),
                other => other.as_u64(),
            })
            .unwrap_or(0);
        self.unschedulable =
            node.pointer("/spec/unschedulable").and_then(Value::as_bool).unwrap_or(false);
        self.labels = node
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(key, value)| (key.clone(), value.as_str().unwrap_or("").to_string()))
            .collect();
    }
}

/// A share of a node's requests held for pods that exist only virtually.
pub type Reservation = Vec<(String, Resources)>;

/// A waiting pod's place in the queue: priority (higher first), creation
/// time, then namespace and name.
pub type QueueOrder = (Reverse<i64>, String, ObjectKey);

/// The scheduler's name, as pods ask for it.
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// Whether `pod` waits for this scheduler to place it: unbound, for
/// `default-scheduler`, not being deleted and not finished.
pub fn is_waiting(pod: &Value) -> bool {
    let unbound = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("").is_empty();
    let ours = pod
        .pointer("/spec/schedulerName")
        .and_then(Value::as_str)
        .is_none_or(|name| name == SCHEDULER_NAME);
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    unbound
        && ours
        && pod.pointer("/metadata/deletionTimestamp").is_none()
        && phase != "Succeeded"
        && phase != "Failed"
}

/// Whether the scheduler already tried a pod (it has `PodScheduled`).
fn was_tried(pod: &Value) -> bool {
    pod.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|conditions| {
        conditions.iter().any(|condition| condition["type"] == "PodScheduled")
    })
}

/// The scheduler's cache (see the module documentation).
#[derive(Debug, Default)]
pub struct NodeCache {
    /// The store's resourceVersion this view reflects.
    synced_rv: u64,
    nodes: BTreeMap<String, NodeView>,
    /// Pods counted on a node: (namespace, name) → (node, requests).
    bound: HashMap<ObjectKey, (String, Resources)>,
    /// Deployments (namespace, name) whose pods are not made yet.
    reservations: HashMap<ObjectKey, Reservation>,
    /// Waiting pods in queue order, and whether each was tried.
    waiting: BTreeMap<QueueOrder, bool>,
    /// The queue place of each waiting pod.
    orders: HashMap<ObjectKey, QueueOrder>,
    /// How many changes may have made room so far.
    room_changes: u64,
    /// `room_changes` when every waiting pod was last tried.
    tried_at: u64,
}

fn pods() -> GroupResource {
    GroupResource::new("", "pods")
}

fn nodes() -> GroupResource {
    GroupResource::new("", "nodes")
}

/// The node a pod is bound to, if it still occupies it (bound and not in a
/// terminal phase).
fn occupied_node(pod: &Value) -> Option<&str> {
    let node =
        pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|node| !node.is_empty())?;
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    (phase != "Succeeded" && phase != "Failed").then_some(node)
}

/// The Deployment controlling a ReplicaSet, from its owner references.
fn controlling_deployment(replica_set: &Value) -> Option<&str> {
    replica_set.pointer("/metadata/ownerReferences")?.as_array()?.iter().find_map(|reference| {
        let controller = reference.get("controller").and_then(Value::as_bool) == Some(true);
        let deployment = reference.get("kind").and_then(Value::as_str) == Some("Deployment");
        (controller && deployment).then(|| reference.get("name").and_then(Value::as_str)).flatten()
    })
}

impl NodeCache {
    /// Brings the view up to the store's current state.
    pub fn sync(&mut self, store: &StoreInner) {
        if self.synced_rv == store.rv {
            return;
        }
        if self.synced_rv < store.compacted_rv {
            self.rescan(store);
        } else {
            let start = store.events.partition_point(|event| event.rv <= self.synced_rv);
            for event in store.events.range(start..) {
                self.apply(event);
            }
        }
        self.synced_rv = store.rv;
    }

    /// The nodes, by name.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeView> {
        self.nodes.values()
    }

    /// How many nodes there are.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Whether any pod waited for a node when the view was last synced.
    pub fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// The waiting pods to try now, in queue order: all of them when room
    /// may have appeared since they were last tried, else those never
    /// tried. Marks them tried.
    pub fn due_waiting(&mut self) -> Vec<ObjectKey> {
        let all = self.room_changes != self.tried_at;
        self.tried_at = self.room_changes;
        self.waiting
            .iter_mut()
            .filter(|(_, tried)| all || !**tried)
            .map(|((_, _, key), tried)| {
                *tried = true;
                key.clone()
            })
            .collect()
    }

    /// Notes that something may have made room.
    fn room_changed(&mut self) {
        self.room_changes += 1;
    }

    /// Holds `shares` on their nodes for the Deployment `key` until its
    /// objects are made.
    pub fn reserve(&mut self, key: ObjectKey, shares: Reservation) {
        for (node, requests) in &shares {
            self.charge(node, *requests, 1, true);
        }
        self.reservations.insert(key, shares);
    }

    /// Releases the Deployment's reservation and returns where its pods are.
    pub fn take_reservation(&mut self, key: &ObjectKey) -> Option<Reservation> {
        let shares = self.reservations.remove(key)?;
        for (node, requests) in &shares {
            self.charge(node, *requests, 1, false);
        }
        self.room_changed();
        Some(shares)
    }

    /// Puts a pod in (or takes it out of) the queue.
    fn queue_pod(&mut self, key: &ObjectKey, pod: Option<&Value>) {
        if let Some(order) = self.orders.remove(key) {
            self.waiting.remove(&order);
        }
        let Some(pod) = pod.filter(|pod| is_waiting(pod)) else {
            return;
        };
        let priority = pod.pointer("/spec/priority").and_then(Value::as_i64).unwrap_or(0);
        let created = metadata_str(pod, "creationTimestamp").unwrap_or("").to_string();
        let order = (Reverse(priority), created, key.clone());
        self.waiting.insert(order.clone(), was_tried(pod));
        self.orders.insert(key.clone(), order);
    }

    /// Adds (or removes) requests and pod slots on a node.
    fn charge(&mut self, node: &str, requests: Resources, pods: u64, add: bool) {
        let view = self.nodes.entry(node.to_string()).or_insert_with(|| NodeView::new(node));
        if add {
            view.requested += requests;
            view.pods += pods;
        } else {
            view.requested = view.requested.saturating_sub(requests);
            view.pods = view.pods.saturating_sub(pods);
        }
    }

    /// Lists nodes and pods again; keeps the reservations of Deployments
    /// that still exist without ReplicaSets.
    fn rescan(&mut self, store: &StoreInner) {
        let reservations = std::mem::take(&mut self.reservations);
        self.nodes.clear();
        self.bound.clear();
        self.waiting.clear();
        self.orders.clear();
        self.room_changed();
        for node in store.list(&nodes(), None) {
            let name = metadata_str(&node, "name").unwrap_or("");
            self.nodes.entry(name.to_string()).or_insert_with(|| NodeView::new(name)).read(&node);
        }
        for pod in store.list(&pods(), None) {
            self.track_pod(&pod);
        }
        let deployments = GroupResource::new("apps", "deployments");
        let replica_sets = store.list(&GroupResource::new("apps", "replicasets"), None);
        for (key, shares) in reservations {
            let exists = store.get(&deployments, &key.0, &key.1).is_some();
            let has_objects = replica_sets.iter().any(|rs| {
                metadata_str(rs, "namespace") == Some(key.0.as_str())
                    && controlling_deployment(rs) == Some(key.1.as_str())
            });
            if exists && !has_objects {
                self.reserve(key, shares);
            }
        }
        // Nodes that only reservations named (none exist) are not nodes.
        self.nodes.retain(|_, view| view.max_pods > 0 || view.allocatable != Resources::default());
    }

    /// Counts a pod on its node if it occupies one, or queues it if it
    /// waits for one.
    fn track_pod(&mut self, pod: &Value) {
        let key = (
            metadata_str(pod, "namespace").unwrap_or("").to_string(),
            metadata_str(pod, "name").unwrap_or("").to_string(),
        );
        self.queue_pod(&key, Some(pod));
        let Some(node) = occupied_node(pod) else {
            return;
        };
        let requests = pod_requests(pod);
        self.charge(node, requests, 1, true);
        self.bound.insert(key, (node.to_string(), requests));
    }

    fn apply(&mut self, event: &StoredEvent) {
        let key = (event.namespace.clone(), event.name.clone());
        if event.gr == pods() {
            let still_on =
                (event.etype != EventType::Deleted).then(|| occupied_node(&event.object)).flatten();
            // A bound pod keeps its requests (no in-place resize).
            if let (Some(node), Some((counted, _))) = (still_on, self.bound.get(&key))
                && node == counted
            {
                return;
            }
            if let Some((node, requests)) = self.bound.remove(&key) {
                self.charge(&node, requests, 1, false);
                self.room_changed();
            }
            if event.etype == EventType::Deleted {
                self.queue_pod(&key, None);
            } else {
                self.track_pod(&event.object);
            }
        } else if event.gr == nodes() {
            if event.etype == EventType::Deleted {
                self.nodes.remove(&event.name);
            } else {
                self.room_changed();
                let name = event.name.clone();
                let fresh = !self.nodes.contains_key(&name);
                let view = self.nodes.entry(name.clone()).or_insert_with(|| NodeView::new(&name));
                view.read(&event.object);
                if fresh {
                    // Pods bound to a node before it (re)appeared count on it.
                    let held = self.bound.values().chain(self.reservations.values().flatten());
                    let (requested, pods) = held
                        .filter(|(node, _)| *node == name)
                        .fold((Resources::default(), 0), |(sum, count), (_, requests)| {
                            (sum + *requests, count + 1)
                        });
                    view.requested = requested;
                    view.pods = pods;
                }
            }
        } else if event.gr == GroupResource::new("apps", "deployments")
            && event.etype == EventType::Deleted
        {
            self.take_reservation(&key);
        } else if event.gr == GroupResource::new("apps", "replicasets")
            && event.etype == EventType::Added
            && let Some(deployment) = controlling_deployment(&event.object)
        {
            self.take_reservation(&(event.namespace.clone(), deployment.to_string()));
        }
    }
}
