//! The object store: every object of every resource, one cluster-wide
//! monotonically increasing resourceVersion, the retained window of watch
//! events (older ones are compacted, giving 410 Expired), the live event
//! broadcast that watches subscribe to, and the list snapshots behind
//! `continue` tokens.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::GroupResource;
use crate::registry::Registry;

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// ADDED
    Added,
    /// MODIFIED
    Modified,
    /// DELETED
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
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
    /// Object name.
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
pub type ObjKey = (String, String);

/// The mutable state behind the store lock.
#[derive(Debug)]
pub struct StoreInner {
    /// Last assigned resourceVersion.
    pub rv: u64,
    /// Objects per resource.
    pub collections: HashMap<GroupResource, BTreeMap<ObjKey, Arc<Value>>>,
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
    next_snapshot: u64,
    tx: broadcast::Sender<Arc<StoredEvent>>,
}

/// The store (a mutex around [`StoreInner`]).
#[derive(Debug)]
pub struct Store {
    inner: Mutex<StoreInner>,
}

const MAX_SNAPSHOTS: usize = 64;

impl Store {
    /// An empty store retaining `window` events.
    pub fn new(window: usize) -> Self {
        let (tx, _) = broadcast::channel(65_536);
        Store {
            inner: Mutex::new(StoreInner {
                rv: 1,
                collections: HashMap::new(),
                events: VecDeque::new(),
                window: window.max(1),
                compacted_rv: 1,
                registry: Registry::new(),
                snapshots: VecDeque::new(),
                next_snapshot: 1,
                tx,
            }),
        }
    }

    /// Locks the store.
    pub fn lock(&self) -> MutexGuard<'_, StoreInner> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a single insert/remove), so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StoreInner {
    /// One object.
    pub fn get(&self, gr: &GroupResource, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.collections.get(gr).and_then(|c| c.get(&(ns.to_string(), name.to_string()))).cloned()
    }

    /// All objects of a resource, optionally in one namespace, in key order.
    pub fn list(&self, gr: &GroupResource, ns: Option<&str>) -> Vec<Arc<Value>> {
        let Some(c) = self.collections.get(gr) else {
            return Vec::new();
        };
        match ns {
            Some(ns) => c
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
            None => c.values().cloned().collect(),
        }
    }

    /// Commits a change: assigns the next resourceVersion, stores (or
    /// removes, for `Deleted`) the object, records and broadcasts the event.
    pub fn commit(&mut self, gr: &GroupResource, mut obj: Value, etype: EventType) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        let ns =
            obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string();
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let obj = Arc::new(obj);
        let coll = self.collections.entry(gr.clone()).or_default();
        let key = (ns.clone(), name.clone());
        let prev = if etype == EventType::Deleted {
            coll.remove(&key)
        } else {
            coll.insert(key, obj.clone())
        };
        let ev = Arc::new(StoredEvent {
            rv,
            gr: gr.clone(),
            namespace: ns,
            name,
            etype,
            object: obj.clone(),
            prev,
        });
        self.events.push_back(ev.clone());
        while self.events.len() > self.window {
            if let Some(old) = self.events.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
        // No receivers is fine: nobody watches.
        let _ = self.tx.send(ev);
        obj
    }

    /// Events after `from_rv` plus a live receiver, or `Err(oldest)` when
    /// `from_rv` is older than the retained window.
    pub fn watch_from(&self, from_rv: u64) -> Result<(Vec<Arc<StoredEvent>>, EventReceiver), u64> {
        if from_rv < self.compacted_rv {
            return Err(self.compacted_rv + 1);
        }
        let backlog = self.events.iter().filter(|e| e.rv > from_rv).cloned().collect();
        Ok((backlog, self.tx.subscribe()))
    }

    /// A live receiver only.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoredEvent>> {
        self.tx.subscribe()
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
            .find(|s| s.id == id && s.rv >= self.compacted_rv)
            .map(|s| (s.rv, s.items.clone()))
    }
}
