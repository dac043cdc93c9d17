//! The object store: every object of every resource, the registry of served
//! resources, one cluster-wide monotonically increasing resourceVersion, the
//! retained window of watch events (older ones are compacted, giving 410
//! Expired), the live event broadcast that watches and controllers subscribe
//! to, and the list snapshots behind `continue` tokens. It stores what it is
//! given: the rules of a valid write live in the write pipeline above it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::GroupResource;
use crate::registry::{Registry, ResourceDef};
use crate::util::metadata_str;

/// What a committed change did to its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The object was created.
    Added,
    /// The object was changed.
    Modified,
    /// The object was removed.
    Deleted,
}

/// One committed change.
#[derive(Debug)]
pub struct StoredEvent {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// Resource of the object.
    pub gr: GroupResource,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    pub name: String,
    /// Kind of change.
    pub etype: EventType,
    /// The object after the change (for DELETED: its last state, new RV).
    pub object: Arc<Value>,
    /// The object before the change.
    pub prev: Option<Arc<Value>>,
}

/// A list snapshot for `continue`.
#[derive(Debug)]
pub struct Snapshot {
    /// Snapshot id in the token.
    pub id: u64,
    /// resourceVersion of the list.
    pub rv: u64,
    /// Every matching item, in order.
    pub items: Arc<Vec<Arc<Value>>>,
}

/// A live event subscription.
pub type EventReceiver = broadcast::Receiver<Arc<StoredEvent>>;

/// Object key: (namespace or "", name).
pub type ObjectKey = (String, String);

/// The mutable state behind the store lock.
#[derive(Debug)]
pub struct StoreInner {
    /// Last assigned resourceVersion.
    pub rv: u64,
    /// Objects per resource.
    pub collections: HashMap<GroupResource, BTreeMap<ObjectKey, Arc<Value>>>,
    /// Retained events, oldest first.
    pub events: VecDeque<Arc<StoredEvent>>,
    /// How many events to retain.
    pub window: usize,
    /// Highest resourceVersion no longer in the window.
    pub compacted_rv: u64,
    /// The served resources.
    pub registry: Registry,
    /// Recent list snapshots.
    pub snapshots: VecDeque<Snapshot>,
    /// The image repositories the sim's kubelet runs for real: a pod with
    /// such an image, once bound to a node, is deleted gracefully (the
    /// kubelet confirms the deletion); other pods go at once.
    pub kubelet_repositories: std::collections::BTreeSet<String>,
    /// Pods whose status is simulated are deleted gracefully too (the sim's
    /// `pod_stop_time_ms` is not 0): the pod-stop controller confirms them.
    pub simulated_pods_stop: bool,
    next_snapshot: u64,
    live_events: broadcast::Sender<Arc<StoredEvent>>,
}

/// The store (a mutex around [`StoreInner`]).
#[derive(Debug)]
pub struct Store {
    inner: Mutex<StoreInner>,
}

/// List snapshots kept for `continue` tokens; an older token gets 410, as
/// a token past etcd's compaction does.
const MAX_SNAPSHOTS: usize = 64;

impl Store {
    /// An empty store retaining `window` events.
    pub fn new(window: usize) -> Self {
        // Large enough that a watch or controller only lags (and resyncs)
        // under a burst far beyond what the tests and demos produce.
        let (live_events, _) = broadcast::channel(65_536);
        Store {
            inner: Mutex::new(StoreInner {
                rv: 1,
                collections: HashMap::new(),
                events: VecDeque::new(),
                window: window.max(1),
                compacted_rv: 1,
                registry: Registry::default(),
                snapshots: VecDeque::new(),
                kubelet_repositories: std::collections::BTreeSet::new(),
                simulated_pods_stop: false,
                next_snapshot: 1,
                live_events,
            }),
        }
    }

    /// Locks the store.
    pub fn lock(&self) -> MutexGuard<'_, StoreInner> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a single insert/remove), so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl StoreInner {
    /// One object (`namespace` is "" for cluster-scoped ones).
    pub fn get(&self, gr: &GroupResource, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.collections
            .get(gr)
            .and_then(|objects| objects.get(&(namespace.to_string(), name.to_string())))
            .cloned()
    }

    /// All objects of a resource, optionally in one namespace, in key order.
    pub fn list(&self, gr: &GroupResource, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let Some(objects) = self.collections.get(gr) else {
            return Vec::new();
        };
        match namespace {
            Some(namespace) => objects
                .range((namespace.to_string(), String::new())..)
                .take_while(|((object_namespace, _), _)| object_namespace == namespace)
                .map(|(_, object)| object.clone())
                .collect(),
            None => objects.values().cloned().collect(),
        }
    }

    /// The objects of a resource in one namespace whose names start with
    /// `prefix`, in name order (how controllers find the ReplicaSets and
    /// Pods they name after their owners without scanning a namespace).
    pub fn list_prefix(
        &self,
        gr: &GroupResource,
        namespace: &str,
        prefix: &str,
    ) -> Vec<Arc<Value>> {
        let Some(objects) = self.collections.get(gr) else {
            return Vec::new();
        };
        objects
            .range((namespace.to_string(), prefix.to_string())..)
            .take_while(|((object_namespace, name), _)| {
                object_namespace == namespace && name.starts_with(prefix)
            })
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// The CRD object that defines a custom resource (`None` for built-ins).
    pub fn defining_crd(&self, def: &ResourceDef) -> Option<Arc<Value>> {
        let crd_name = def.crd.as_deref()?;
        self.get(
            &GroupResource::new("apiextensions.k8s.io", "customresourcedefinitions"),
            "",
            crd_name,
        )
    }

    /// Commits a change: assigns the next resourceVersion, stores (or
    /// removes, for `Deleted`) the object, records and broadcasts the event.
    pub fn commit(
        &mut self,
        gr: &GroupResource,
        mut object: Value,
        etype: EventType,
    ) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        let namespace = metadata_str(&object, "namespace").unwrap_or("").to_string();
        let name = metadata_str(&object, "name").unwrap_or("").to_string();
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let object = Arc::new(object);
        let objects = self.collections.entry(gr.clone()).or_default();
        let key = (namespace.clone(), name.clone());
        let prev = if etype == EventType::Deleted {
            objects.remove(&key)
        } else {
            objects.insert(key, object.clone())
        };
        let event = Arc::new(StoredEvent {
            rv,
            gr: gr.clone(),
            namespace,
            name,
            etype,
            object: object.clone(),
            prev,
        });
        self.events.push_back(event.clone());
        while self.events.len() > self.window {
            if let Some(oldest) = self.events.pop_front() {
                self.compacted_rv = oldest.rv;
            }
        }
        // Sending fails only when nobody subscribes, which is fine.
        let _ = self.live_events.send(event);
        object
    }

    /// Forgets the retained events, as a freshly started server's watch
    /// cache starts from a list: watching from an older version is 410.
    pub fn compact(&mut self) {
        self.events.clear();
        self.compacted_rv = self.rv;
    }

    /// Events after `from_rv` plus a live receiver, or `Err(oldest)` when
    /// `from_rv` is older than the retained window.
    pub fn watch_from(&self, from_rv: u64) -> Result<(Vec<Arc<StoredEvent>>, EventReceiver), u64> {
        if from_rv < self.compacted_rv {
            return Err(self.compacted_rv + 1);
        }
        let backlog = self.events.iter().filter(|event| event.rv > from_rv).cloned().collect();
        Ok((backlog, self.live_events.subscribe()))
    }

    /// A live receiver only.
    pub fn subscribe(&self) -> EventReceiver {
        self.live_events.subscribe()
    }

    /// Saves a list snapshot and returns its id.
    pub fn save_snapshot(&mut self, items: Arc<Vec<Arc<Value>>>) -> u64 {
        let id = self.next_snapshot;
        self.next_snapshot += 1;
        self.snapshots.push_back(Snapshot { id, rv: self.rv, items });
        while self.snapshots.len() > MAX_SNAPSHOTS {
            self.snapshots.pop_front();
        }
        id
    }

    /// A saved snapshot by id.
    pub fn snapshot(&self, id: u64) -> Option<(u64, Arc<Vec<Arc<Value>>>)> {
        self.snapshots
            .iter()
            .find(|snapshot| snapshot.id == id && snapshot.rv >= self.compacted_rv)
            .map(|snapshot| (snapshot.rv, snapshot.items.clone()))
    }
}
