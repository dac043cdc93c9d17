//! The garbage collector, as kube-controller-manager's: it follows owner
//! references and
//! - deletes a dependent once none of its owners exists any more
//!   (background propagation: the owner went at once), with the
//!   propagation its own finalizers ask for;
//! - for an owner deleted in the foreground (`foregroundDeletion`
//!   finalizer), deletes its dependents (in the foreground too when they
//!   have dependents of their own) and removes the finalizer once no
//!   dependent with `blockOwnerDeletion` is left;
//! - for an owner deleted with orphan propagation (`orphan` finalizer),
//!   removes the references to it from its dependents, then the finalizer;
//! - removes references to owners that are gone (or waiting for their
//!   dependents) from dependents that still have another owner.
//!
//! Its graph maps owners' uids to their dependents; it is built from the
//! store at start (and after missed events) and kept by the event stream.
//! Owner references whose kind the server does not serve are left alone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::owners::{OwnerRef, is_deleting, owner_refs};
use crate::error::GroupResource;
use crate::registry::ResourceDef;
use crate::state::SimState;
use crate::store::{EventType, StoreInner, StoredEvent};
use crate::util::{metadata_mut, metadata_str};
use crate::write::{
    self, DeleteOptions, DeletePreconditions, FOREGROUND_FINALIZER, ORPHAN_FINALIZER, Propagation,
    WriteOptions, finalizers_of,
};

/// The field manager of the collector's writes (its client is the
/// controller manager's).
const MANAGER: &str = "kube-controller-manager";

/// Where an object lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Identity {
    gr: GroupResource,
    namespace: String,
    name: String,
    uid: String,
}

impl Identity {
    fn of(gr: &GroupResource, object: &Value) -> Identity {
        let field = |key: &str| metadata_str(object, key).unwrap_or("").to_string();
        Identity {
            gr: gr.clone(),
            namespace: field("namespace"),
            name: field("name"),
            uid: field("uid"),
        }
    }
}

/// Dependents by owner uid, and each dependent's owners.
#[derive(Default)]
struct Graph {
    dependents: HashMap<String, HashSet<Identity>>,
    owners: HashMap<Identity, Vec<OwnerRef>>,
}

impl Graph {
    fn set(&mut self, item: Identity, owners: Vec<OwnerRef>) {
        self.remove(&item);
        if owners.is_empty() {
            return;
        }
        for owner in &owners {
            self.dependents.entry(owner.uid.clone()).or_default().insert(item.clone());
        }
        self.owners.insert(item, owners);
    }

    fn remove(&mut self, item: &Identity) {
        if let Some(owners) = self.owners.remove(item) {
            for owner in owners {
                if let Some(dependents) = self.dependents.get_mut(&owner.uid) {
                    dependents.remove(item);
                    if dependents.is_empty() {
                        self.dependents.remove(&owner.uid);
                    }
                }
            }
        }
    }

    fn dependents_of(&self, uid: &str) -> Vec<Identity> {
        self.dependents.get(uid).map(|set| set.iter().cloned().collect()).unwrap_or_default()
    }

    fn has_dependents(&self, uid: &str) -> bool {
        self.dependents.get(uid).is_some_and(|set| !set.is_empty())
    }
}

/// Runs the collector until shutdown.
pub async fn run(sim: Arc<SimState>) {
    let mut collector = Collector { sim: sim.clone(), graph: Graph::default() };
    super::follow_store(
        &sim,
        &mut collector,
        |_, collector| collector.resync(),
        |_, collector, event| collector.on_event(event),
    )
    .await;
}

struct Collector {
    sim: Arc<SimState>,
    graph: Graph,
}

/// How a dependent's owner stands.
enum OwnerState {
    /// Exists, and not waiting for its dependents.
    Solid,
    /// Gone (or another object under its name).
    Dangling,
    /// Being deleted in the foreground.
    Waiting,
}

fn has_finalizer(object: &Value, finalizer: &str) -> bool {
    finalizers_of(object).iter().any(|present| present == finalizer)
}

/// The served resource of an owner reference's kind (any version).
fn resource_of(store: &StoreInner, reference: &OwnerRef) -> Option<Arc<ResourceDef>> {
    let group = reference.group().to_string();
    store.registry.all().find(|def| def.group == group && def.kind == reference.kind).cloned()
}

/// The served resource whose objects are stored under `gr`.
fn def_for(store: &StoreInner, gr: &GroupResource) -> Option<Arc<ResourceDef>> {
    store.registry.all().find(|def| def.storage_gr() == *gr).cloned()
}

impl Collector {
    /// Rebuilds the graph from the store and processes every object.
    fn resync(&mut self) {
        self.graph = Graph::default();
        let everything: Vec<(GroupResource, Arc<Value>)> = {
            let store = self.sim.store.lock();
            store
                .collections
                .iter()
                .flat_map(|(gr, objects)| {
                    objects.values().map(move |object| (gr.clone(), object.clone()))
                })
                .collect()
        };
        for (gr, object) in &everything {
            let owners = owner_refs(object);
            if !owners.is_empty() {
                self.graph.set(Identity::of(gr, object), owners);
            }
        }
        for (gr, object) in &everything {
            let item = Identity::of(gr, object);
            if is_deleting(object) {
                self.process_deleting(&item);
            } else if self.graph.owners.contains_key(&item) {
                self.attempt_to_delete(&item);
            }
        }
    }

    fn on_event(&mut self, event: &StoredEvent) {
        let item = Identity::of(&event.gr, &event.object);
        let owners = owner_refs(&event.object);
        let previous_owners = event.prev.as_deref().map(owner_refs).unwrap_or_default();
        if event.etype == EventType::Deleted {
            self.graph.remove(&item);
            // Its dependents may have lost their last owner; an owner waiting
            // in the foreground may have lost its last blocking dependent.
            for dependent in self.graph.dependents_of(&item.uid) {
                self.attempt_to_delete(&dependent);
            }
            self.recheck_waiting_owners(&item, &owners);
            return;
        }
        self.graph.set(item.clone(), owners.clone());
        let started_deleting =
            is_deleting(&event.object) && !event.prev.as_deref().is_some_and(is_deleting);
        let finalizers_changed = event
            .prev
            .as_deref()
            .is_some_and(|prev| finalizers_of(prev) != finalizers_of(&event.object));
        if is_deleting(&event.object) && (started_deleting || finalizers_changed) {
            self.process_deleting(&item);
        }
        if !owners.is_empty() && (event.etype == EventType::Added || owners != previous_owners) {
            self.attempt_to_delete(&item);
        }
        if owners != previous_owners {
            self.recheck_waiting_owners(&item, &previous_owners);
        }
    }

    /// Owners (among `owners`) deleted in the foreground may be free to go
    /// once `item` no longer blocks them.
    fn recheck_waiting_owners(&mut self, item: &Identity, owners: &[OwnerRef]) {
        for owner in owners {
            let waiting = {
                let store = self.sim.store.lock();
                self.owner_object(&store, item, owner).filter(|object| {
                    is_deleting(object) && has_finalizer(object, FOREGROUND_FINALIZER)
                })
            };
            if let Some(object) = waiting {
                let gr = {
                    let store = self.sim.store.lock();
                    resource_of(&store, owner).map(|def| def.storage_gr())
                };
                if let Some(gr) = gr {
                    self.process_deleting(&Identity::of(&gr, &object));
                }
            }
        }
    }

    /// The stored owner a reference of `item` points to (matching uid).
    fn owner_object(
        &self,
        store: &StoreInner,
        item: &Identity,
        owner: &OwnerRef,
    ) -> Option<Arc<Value>> {
        let def = resource_of(store, owner)?;
        let namespace = if def.namespaced { item.namespace.as_str() } else { "" };
        store
            .get(&def.storage_gr(), namespace, &owner.name)
            .filter(|object| metadata_str(object, "uid") == Some(owner.uid.as_str()))
    }

    fn current(&self, store: &StoreInner, item: &Identity) -> Option<Arc<Value>> {
        store
            .get(&item.gr, &item.namespace, &item.name)
            .filter(|object| metadata_str(object, "uid") == Some(item.uid.as_str()))
    }

    /// An object being deleted: orphans its dependents, or waits for the
    /// blocking ones (deleting them) before letting it go.
    fn process_deleting(&mut self, item: &Identity) {
        let object = {
            let store = self.sim.store.lock();
            self.current(&store, item)
        };
        let Some(object) = object else {
            return;
        };
        if !is_deleting(&object) {
            return;
        }
        if has_finalizer(&object, ORPHAN_FINALIZER) {
            self.orphan_dependents(item, &object);
            return;
        }
        if !has_finalizer(&object, FOREGROUND_FINALIZER) {
            return;
        }
        let dependents = self.graph.dependents_of(&item.uid);
        let mut blocking = false;
        for dependent in &dependents {
            let blocks = self.graph.owners.get(dependent).is_some_and(|owners| {
                owners.iter().any(|owner| owner.uid == item.uid && owner.block_owner_deletion)
            });
            if blocks {
                blocking = true;
            }
            let being_deleted = {
                let store = self.sim.store.lock();
                self.current(&store, dependent).is_some_and(|object| is_deleting(&object))
            };
            if !being_deleted {
                self.attempt_to_delete(dependent);
            }
        }
        if !blocking {
            self.remove_finalizer(item, FOREGROUND_FINALIZER);
        }
    }

    /// Removes the references to `item` from its dependents, then the
    /// `orphan` finalizer.
    fn orphan_dependents(&mut self, item: &Identity, _object: &Value) {
        for dependent in self.graph.dependents_of(&item.uid) {
            let mut store = self.sim.store.lock();
            let Some(current) = self.current(&store, &dependent) else {
                continue;
            };
            let Some(def) = def_for(&store, &dependent.gr) else {
                continue;
            };
            let mut updated = (*current).clone();
            remove_owner_references(&mut updated, &[item.uid.as_str()]);
            write_update(&mut store, &def, &current, updated);
        }
        self.remove_finalizer(item, ORPHAN_FINALIZER);
    }

    fn remove_finalizer(&mut self, item: &Identity, finalizer: &str) {
        let mut store = self.sim.store.lock();
        let Some(current) = self.current(&store, item) else {
            return;
        };
        if !has_finalizer(&current, finalizer) {
            return;
        }
        let Some(def) = def_for(&store, &item.gr) else {
            return;
        };
        let mut updated = (*current).clone();
        let remaining: Vec<String> =
            finalizers_of(&current).into_iter().filter(|present| present != finalizer).collect();
        if let Some(metadata) = metadata_mut(&mut updated) {
            if remaining.is_empty() {
                metadata.remove("finalizers");
            } else {
                metadata.insert("finalizers".into(), json!(remaining));
            }
        }
        write_update(&mut store, &def, &current, updated);
    }

    /// The collector's decision for a dependent: keep it (a solid owner is
    /// left; references to gone or waiting owners are removed), or delete
    /// it (in the foreground when an owner waits and it has dependents).
    fn attempt_to_delete(&mut self, item: &Identity) {
        let mut store = self.sim.store.lock();
        let Some(object) = self.current(&store, item) else {
            return;
        };
        if is_deleting(&object) {
            // Its own events drive what happens next (no recursion, so that
            // ownership cycles cannot loop).
            return;
        }
        let owners = owner_refs(&object);
        if owners.is_empty() {
            return;
        }
        let mut solid = 0;
        let mut dangling: Vec<String> = Vec::new();
        let mut waiting: Vec<String> = Vec::new();
        for owner in &owners {
            let state = match resource_of(&store, owner) {
                // A kind the server does not serve cannot be checked.
                None => OwnerState::Solid,
                Some(def) => {
                    let namespace = if def.namespaced { item.namespace.as_str() } else { "" };
                    match store.get(&def.storage_gr(), namespace, &owner.name) {
                        Some(found) if metadata_str(&found, "uid") == Some(owner.uid.as_str()) => {
                            if is_deleting(&found) && has_finalizer(&found, FOREGROUND_FINALIZER) {
                                OwnerState::Waiting
                            } else {
                                OwnerState::Solid
                            }
                        }
                        _ => OwnerState::Dangling,
                    }
                }
            };
            match state {
                OwnerState::Solid => solid += 1,
                OwnerState::Dangling => dangling.push(owner.uid.clone()),
                OwnerState::Waiting => waiting.push(owner.uid.clone()),
            }
        }
        let Some(def) = def_for(&store, &item.gr) else {
            return;
        };
        if solid > 0 {
            if dangling.is_empty() && waiting.is_empty() {
                return;
            }
            let gone: Vec<&str> = dangling.iter().chain(&waiting).map(String::as_str).collect();
            let mut updated = (*object).clone();
            remove_owner_references(&mut updated, &gone);
            write_update(&mut store, &def, &object, updated);
            return;
        }
        let propagation = if !waiting.is_empty() && self.graph.has_dependents(&item.uid) {
            Propagation::Foreground
        } else if has_finalizer(&object, ORPHAN_FINALIZER) {
            Propagation::Orphan
        } else if has_finalizer(&object, FOREGROUND_FINALIZER) {
            Propagation::Foreground
        } else {
            Propagation::Background
        };
        let options = DeleteOptions {
            preconditions: DeletePreconditions {
                uid: Some(item.uid.clone()),
                resource_version: None,
            },
            propagation: Some(propagation),
            dry_run: false,
            grace_period_seconds: None,
        };
        if let Err(error) = write::delete(&mut store, &def, &object, &options) {
            tracing::debug!(error = %error, object = %item.name, "garbage collection failed");
        }
    }
}

/// Drops the owner references to these uids.
fn remove_owner_references(object: &mut Value, uids: &[&str]) {
    let Some(metadata) = metadata_mut(object) else {
        return;
    };
    let Some(references) = metadata.get_mut("ownerReferences").and_then(Value::as_array_mut) else {
        return;
    };
    references.retain(|reference| {
        !uids.contains(&reference.get("uid").and_then(Value::as_str).unwrap_or(""))
    });
    if references.is_empty() {
        metadata.remove("ownerReferences");
    }
}

fn write_update(store: &mut StoreInner, def: &ResourceDef, current: &Arc<Value>, updated: Value) {
    let mut updated = updated;
    // Writes are conditional on the state just read, as the collector's
    // patches are.
    if let (Some(metadata), Some(rv)) =
        (metadata_mut(&mut updated), metadata_str(current, "resourceVersion"))
    {
        metadata.insert("resourceVersion".into(), json!(rv));
    }
    if let Err(error) =
        write::update(store, def, current, updated, &WriteOptions::internal(MANAGER))
    {
        tracing::debug!(error = %error, "garbage collector update failed");
    }
}
