//! The disruption controller: the status of every PodDisruptionBudget, from
//! the pods its selector matches in its namespace (a null selector matches
//! none, an empty one all), recomputed whenever the budget or one of those
//! pods changes, as `pkg/controller/disruption` computes it:
//! `currentHealthy` (matching pods Ready and not being deleted),
//! `expectedPods` and `desiredHealthy` (`budget`), `disruptionsAllowed`,
//! `observedGeneration`, and the `DisruptionAllowed` condition
//! (`SufficientPods` / `InsufficientPods`; `SyncFailed` with the error when
//! the expected count cannot be had, with `disruptionsAllowed` 0). A
//! percentage (or `maxUnavailable`) counts against the scale of the pods'
//! controllers: a Deployment's `spec.replicas` for pods of its ReplicaSets,
//! a ReplicaSet's, StatefulSet's or ReplicationController's own.
//!
//! Events, from `controllermanager`: `NoPods` when no pod matches,
//! `UnmanagedPods` for matching pods without a controller, and
//! `CalculateExpectedPodCountFailed`, each recorded when the budget is
//! created or its spec changes (the real controller records them on every
//! sync, which its event recorder then counts up).

mod budget;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::events::{EventNote, Recorder, record};
use super::owners::{OwnerRef, owner_refs};
use crate::error::GroupResource;
use crate::selector::LabelSelector;
use crate::state::SimState;
use crate::store::{EventType, ObjectKey, StoreInner, StoredEvent};
use crate::util::{metadata_str, now_rfc3339};
use crate::write::{self, WriteOptions};

fn budgets() -> GroupResource {
    GroupResource::new("policy", "poddisruptionbudgets")
}

fn pods() -> GroupResource {
    GroupResource::new("", "pods")
}

/// A budget's selector; `None` matches no pod (a null selector), and so
/// does one that does not parse (the controller fails to list).
fn selector_of(budget: &Value) -> Result<Option<LabelSelector>, String> {
    match budget.pointer("/spec/selector") {
        None | Some(Value::Null) => Ok(None),
        Some(selector) => LabelSelector::from_json(selector).map(Some),
    }
}

#[derive(Default)]
struct Controller {
    /// Per namespace, per budget name: its selector.
    selectors: HashMap<String, HashMap<String, Result<Option<LabelSelector>, String>>>,
    /// Budgets to sync.
    dirty: BTreeSet<ObjectKey>,
    /// Budgets created or changed since their last sync: they record Events.
    changed: HashSet<ObjectKey>,
}

impl Controller {
    fn track(&mut self, budget: &Value, changed: bool) {
        let key = (
            metadata_str(budget, "namespace").unwrap_or("").to_string(),
            metadata_str(budget, "name").unwrap_or("").to_string(),
        );
        self.selectors.entry(key.0.clone()).or_default().insert(key.1.clone(), selector_of(budget));
        if changed {
            self.changed.insert(key.clone());
        }
        self.dirty.insert(key);
    }

    fn resync(&mut self, store: &StoreInner) {
        self.selectors.clear();
        for budget in store.list(&budgets(), None) {
            self.track(&budget, false);
        }
    }

    fn observe(&mut self, event: &StoredEvent) {
        if event.gr == budgets() {
            if event.etype == EventType::Deleted {
                if let Some(names) = self.selectors.get_mut(&event.namespace) {
                    names.remove(&event.name);
                }
                return;
            }
            let generation = |object: &Value| object.pointer("/metadata/generation").cloned();
            let changed = event
                .prev
                .as_deref()
                .is_none_or(|prev| generation(prev) != generation(&event.object));
            self.track(&event.object, changed);
        } else if event.gr == pods() {
            let Some(names) = self.selectors.get(&event.namespace) else {
                return;
            };
            for (name, selector) in names {
                let matches = |pod: &Value| {
                    selector.as_ref().is_ok_and(|selector| {
                        selector.as_ref().is_some_and(|selector| selector.matches(pod))
                    })
                };
                if matches(&event.object) || event.prev.as_deref().is_some_and(matches) {
                    self.dirty.insert((event.namespace.clone(), name.clone()));
                }
            }
        }
    }

    fn sync_dirty(&mut self, sim: &SimState) {
        let dirty = std::mem::take(&mut self.dirty);
        let mut store = sim.store.lock();
        for key in dirty {
            let changed = self.changed.remove(&key);
            let selector = self.selectors.get(&key.0).and_then(|names| names.get(&key.1));
            if let Some(selector) = selector {
                sync(sim, &mut store, &key, selector, changed);
            }
        }
    }
}

/// The summed scale of the matching pods' controllers, and the names of
/// the pods without one (`getExpectedScale`).
fn controller_scale(
    store: &StoreInner,
    namespace: &str,
    pods: &[Arc<Value>],
) -> Result<(i64, Vec<String>), String> {
    let mut scales: HashMap<String, i64> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut unmanaged = Vec::new();
    let replicas =
        |object: &Value| object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let controller =
        |object: &Value| owner_refs(object).into_iter().find(|reference| reference.controller);
    for pod in pods {
        let name = metadata_str(pod, "name").unwrap_or("");
        let Some(reference) = controller(pod) else {
            unmanaged.push(name.to_string());
            continue;
        };
        if !seen.insert(reference.uid.clone()) {
            continue;
        }
        let live = |group: &str, resource: &str| {
            store
                .get(&GroupResource::new(group, resource), namespace, &reference.name)
                .filter(|object| metadata_str(object, "uid") == Some(reference.uid.as_str()))
        };
        let found = match reference.kind.as_str() {
            "ReplicaSet" => live("apps", "replicasets").map(|replica_set| {
                // A ReplicaSet of a live Deployment counts as the Deployment.
                let deployment = controller(&replica_set)
                    .filter(|owner| owner.kind == "Deployment")
                    .and_then(|owner| {
                        store
                            .get(&GroupResource::new("apps", "deployments"), namespace, &owner.name)
                            .filter(|deployment| {
                                metadata_str(deployment, "uid") == Some(owner.uid.as_str())
                            })
                    });
                match deployment {
                    Some(deployment) => (
                        metadata_str(&deployment, "uid").unwrap_or("").to_string(),
                        replicas(&deployment),
                    ),
                    None => (reference.uid.clone(), replicas(&replica_set)),
                }
            }),
            "StatefulSet" => {
                live("apps", "statefulsets").map(|set| (reference.uid.clone(), replicas(&set)))
            }
            "ReplicationController" => live("", "replicationcontrollers")
                .map(|controller| (reference.uid.clone(), replicas(&controller))),
            _ => scale_subresource(store, namespace, &reference)?,
        };
        let Some((uid, scale)) = found else {
            return Err(format!("found no controllers for pod {name:?}"));
        };
        // Keyed by the controller found (a ReplicaSet's Deployment).
        scales.insert(uid, scale);
    }
    Ok((scales.values().sum(), unmanaged))
}

/// Any other controller's scale, read as the `/scale` subresource would be
/// (`getScaleController`): its `spec.replicas` when its resource has one,
/// the real messages when the kind is unknown or has no scale.
fn scale_subresource(
    store: &StoreInner,
    namespace: &str,
    reference: &OwnerRef,
) -> Result<Option<(String, i64)>, String> {
    let api_version = reference.api_version.as_str();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let def = store
        .registry
        .all()
        .find(|def| def.group == group && def.version == version && def.kind == reference.kind)
        .cloned()
        .ok_or_else(|| {
            format!("no matches for kind {:?} in version {api_version:?}", reference.kind)
        })?;
    if !def.scale_subresource {
        let resource =
            if group.is_empty() { def.plural.clone() } else { format!("{}.{group}", def.plural) };
        return Err(format!("{resource} does not implement the scale subresource"));
    }
    let found = store
        .get(&def.storage_gr(), namespace, &reference.name)
        .filter(|object| metadata_str(object, "uid") == Some(reference.uid.as_str()));
    Ok(found.map(|object| {
        let replicas = object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
        (reference.uid.clone(), replicas)
    }))
}

/// `apimeta.SetStatusCondition` of the `DisruptionAllowed` condition.
fn set_condition(
    status: &mut Value,
    allowed: bool,
    reason: &str,
    message: &str,
    generation: &Value,
) {
    let mut conditions: Vec<Value> =
        status.get("conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let wanted = if allowed { "True" } else { "False" };
    let transition = conditions
        .iter()
        .find(|condition| condition["type"] == "DisruptionAllowed" && condition["status"] == wanted)
        .map(|condition| condition["lastTransitionTime"].clone())
        .unwrap_or_else(|| json!(now_rfc3339()));
    conditions.retain(|condition| condition["type"] != "DisruptionAllowed");
    conditions.push(json!({
        "type": "DisruptionAllowed",
        "status": wanted,
        "observedGeneration": generation,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }));
    status["conditions"] = json!(conditions);
}

/// Recomputes and writes one budget's status.
fn sync(
    sim: &SimState,
    store: &mut StoreInner,
    key: &ObjectKey,
    selector: &Result<Option<LabelSelector>, String>,
    changed: bool,
) {
    let Some(budget) = store.get(&budgets(), &key.0, &key.1) else {
        return;
    };
    let spec = budget.get("spec").cloned().unwrap_or_else(|| json!({}));
    let recorder = Recorder::Legacy { component: "controllermanager" };
    let note = |sim: &SimState, store: &mut StoreInner, kind: &str, reason: &str, message: &str| {
        if changed {
            record(sim, store, &budget, &recorder, &EventNote { kind, reason, message });
        }
    };
    let matched: Result<Vec<Arc<Value>>, String> = match selector {
        Ok(Some(selector)) => Ok(store
            .list(&pods(), Some(&key.0))
            .into_iter()
            .filter(|pod| selector.matches(pod))
            .collect()),
        Ok(None) => Ok(Vec::new()),
        Err(error) => Err(error.clone()),
    };
    let generation = budget.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
    let mut status =
        budget.get("status").cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    let computed = matched.and_then(|pods| {
        if pods.is_empty() {
            note(sim, store, "Normal", "NoPods", "No matching pods found");
        }
        let (scale, unmanaged) = if budget::needs_controller_scale(&spec) {
            controller_scale(store, &key.0, &pods).inspect_err(|error| {
                let message = format!("Failed to calculate the number of expected pods: {error}");
                note(sim, store, "Warning", "CalculateExpectedPodCountFailed", &message);
            })?
        } else {
            (0, Vec::new())
        };
        if !unmanaged.is_empty() {
            let message = format!(
                "Pods selected by this PodDisruptionBudget (selector: {}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.",
                go_selector(&spec)
            );
            note(sim, store, "Warning", "UnmanagedPods", &message);
        }
        let (expected, desired) = budget::expected_and_desired(&spec, pods.len() as i64, scale)?;
        let healthy = pods.iter().filter(|pod| budget::is_healthy(pod)).count() as i64;
        Ok((expected, desired, healthy))
    });
    match computed {
        Ok((expected, desired, healthy)) => {
            let allowed = budget::disruptions_allowed(healthy, desired, expected);
            status["disruptionsAllowed"] = json!(allowed);
            status["currentHealthy"] = json!(healthy);
            status["desiredHealthy"] = json!(desired);
            status["expectedPods"] = json!(expected);
            status["observedGeneration"] = generation.clone();
            if let Some(fields) = status.as_object_mut() {
                fields.remove("disruptedPods");
            }
            let reason = if allowed > 0 { "SufficientPods" } else { "InsufficientPods" };
            set_condition(&mut status, allowed > 0, reason, "", &generation);
        }
        Err(error) => {
            // `failSafe`: nothing may be disrupted while the status is unknown.
            status["disruptionsAllowed"] = json!(0);
            let observed = status.get("observedGeneration").cloned().unwrap_or(json!(0));
            set_condition(&mut status, false, "SyncFailed", &error, &observed);
        }
    }
    if budget.get("status") == Some(&status) {
        return;
    }
    let Some(def) = store.registry.get("policy", "v1", "poddisruptionbudgets") else {
        return;
    };
    let options = WriteOptions {
        subresource: Some("status"),
        ..WriteOptions::internal("kube-controller-manager")
    };
    if let Err(error) = write::update(store, &def, &budget, json!({"status": status}), &options) {
        tracing::debug!(error = %error, "PodDisruptionBudget status update failed");
    }
}

/// A label selector as Go's `%v` prints a `*metav1.LabelSelector`.
fn go_selector(spec: &Value) -> String {
    let labels = spec
        .pointer("/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|labels| {
            let pairs: Vec<String> = labels
                .iter()
                .map(|(key, value)| format!("{key}:{}", value.as_str().unwrap_or("")))
                .collect();
            format!("map[{}]", pairs.join(" "))
        })
        .unwrap_or_else(|| "map[]".to_string());
    format!(
        "&LabelSelector{{MatchLabels:{labels},MatchExpressions:[]LabelSelectorRequirement{{}},}}"
    )
}

/// Runs the controller until shutdown.
pub async fn run(sim: Arc<SimState>) {
    let mut controller = Controller::default();
    let mut events = sim.store.lock().subscribe();
    controller.resync(&sim.store.lock());
    controller.sync_dirty(&sim);
    let mut shutdown = sim.shutdown.clone();
    loop {
        tokio::select! {
            received = events.recv() => {
                match received {
                    Ok(event) => controller.observe(&event),
                    Err(RecvError::Lagged(_)) => {
                        events = sim.store.lock().subscribe();
                        controller.resync(&sim.store.lock());
                    }
                    Err(RecvError::Closed) => return,
                }
                loop {
                    match events.try_recv() {
                        Ok(event) => controller.observe(&event),
                        Err(TryRecvError::Lagged(_)) => {
                            events = sim.store.lock().subscribe();
                            controller.resync(&sim.store.lock());
                        }
                        Err(_) => break,
                    }
                }
                if !controller.dirty.is_empty() {
                    controller.sync_dirty(&sim);
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
