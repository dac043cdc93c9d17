//! The ServiceAccount controller's part the sim needs: every namespace
//! gets a `default` ServiceAccount once it is created (as
//! kube-controller-manager's `serviceaccount-controller` does), and gets it
//! back when it is deleted while the namespace lives.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::error::GroupResource;
use crate::state::SimState;
use crate::store::EventType;
use crate::write::{self, WriteOptions};

/// The ServiceAccount every namespace has.
pub fn default_service_account(namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": namespace},
    })
}

/// Creates `default` in `namespace` unless it exists or the namespace is
/// gone or terminating.
fn ensure_default(sim: &SimState, namespace: &str) {
    let mut store = sim.store.lock();
    let live = store
        .get(&GroupResource::new("", "namespaces"), "", namespace)
        .is_some_and(|found| found.pointer("/metadata/deletionTimestamp").is_none());
    let accounts = GroupResource::new("", "serviceaccounts");
    if !live || store.get(&accounts, namespace, "default").is_some() {
        return;
    }
    let Some(def) = store.registry.get("", "v1", "serviceaccounts") else {
        return;
    };
    let options = WriteOptions::internal("kube-controller-manager");
    let account = default_service_account(namespace);
    if let Err(error) =
        write::create(&mut store, &sim.rng, &def, Some(namespace), account, &options)
    {
        tracing::debug!(%error, namespace, "creating the default ServiceAccount");
    }
}

/// Runs until shutdown.
pub async fn run(sim: Arc<SimState>) {
    let mut events = sim.store.lock().subscribe();
    let mut shutdown = sim.shutdown.clone();
    let (namespaces, accounts) =
        (GroupResource::new("", "namespaces"), GroupResource::new("", "serviceaccounts"));
    loop {
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) => {
                    if event.gr == namespaces && event.etype == EventType::Added {
                        ensure_default(&sim, &event.name);
                    } else if event.gr == accounts && event.etype == EventType::Deleted && event.name == "default" {
                        ensure_default(&sim, &event.namespace);
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    events = sim.store.lock().subscribe();
                    let names: Vec<String> = sim
                        .store
                        .lock()
                        .collections
                        .get(&namespaces)
                        .map(|all| all.keys().map(|(_, name)| name.clone()).collect())
                        .unwrap_or_default();
                    for name in names {
                        ensure_default(&sim, &name);
                    }
                }
                Err(RecvError::Closed) => return,
            },
            _ = shutdown.changed() => return,
        }
    }
}
