//! The watches of the Secrets `spec.secretTriggers` names, only with `--secret-triggers`: one
//! watch per Secret, in its namespace, with the field selector `metadata.name=NAME` (which a
//! Role's `resourceNames` can grant), never a list of every Secret. A watch starts when a
//! reconcile of a valid resource first needs its Secret, and stops at a later reconcile once
//! no ServiceRefresh names it. Each parses
//! the Secret straight into digests ([`SecretSnapshot`]): no value is held, logged or sent on.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc::{self, UnboundedReceiver, UnboundedSender};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Client, ResourceExt};
use tokio::task::JoinHandle;
use tracing::{debug, info};

use super::answers::log_watch_refusals;
use servicerefresh_core::crd::ServiceRefresh;
use servicerefresh_core::engine::spec::{self, watched_secrets};
use servicerefresh_core::engine::{ObjectKey, OperatorScope, SecretSnapshot, plan};

/// How long a reconcile waits for a new Secret watch's first list before it tries again
/// later; a watch the API server refuses logs why.
const FIRST_LIST_WAIT: Duration = Duration::from_secs(10);

/// The Secret watches and their one-object caches.
pub struct SecretWatches {
    client: Client,
    /// Where resources may reach; `secret_triggers` turns the watches on.
    scope: OperatorScope,
    changes: UnboundedSender<SecretSnapshot>,
    watches: Mutex<HashMap<ObjectKey, SecretWatch>>,
}

struct SecretWatch {
    store: Store<SecretSnapshot>,
    synced: tokio::sync::watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Drop for SecretWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SecretWatches {
    /// Watches on `client` when `scope` says so (`--secret-triggers`); the receiver yields
    /// every changed or deleted Secret, for the controller to route.
    pub fn new(client: Client, scope: OperatorScope) -> (Self, UnboundedReceiver<SecretSnapshot>) {
        let (changes, changed) = mpsc::unbounded();
        (Self { client, scope, changes, watches: Mutex::default() }, changed)
    }

    /// The Secret, when it is watched and exists.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<SecretSnapshot>> {
        let watches = self.lock();
        watches.get(key)?.store.get(&ObjectRef::new(&key.name).within(&key.namespace))
    }

    /// Starts a watch for each Secret `refresh` names (when its spec is valid: a Secret in a
    /// namespace the resource may not reach is never read), stops those no resource in
    /// `refreshes` names any more, and waits until each of `refresh`'s has its first list.
    /// `false` when one has not synced in time: its Secret cannot be judged missing yet.
    pub async fn ensure(
        &self,
        refresh: &ServiceRefresh,
        refreshes: &Store<ServiceRefresh>,
    ) -> bool {
        if !self.scope.secret_triggers {
            return true;
        }
        let own_namespace = plan::own_namespace(refresh);
        let wanted: Vec<ObjectKey> = spec::validate(&refresh.spec, own_namespace, &self.scope)
            .map(|valid| valid.secrets.into_iter().map(|watched| watched.key).collect())
            .unwrap_or_default();
        if wanted.is_empty() && self.lock().is_empty() {
            return true;
        }
        let mut named: BTreeSet<ObjectKey> = refreshes
            .state()
            .iter()
            .filter(|other| other.metadata.deletion_timestamp.is_none())
            .flat_map(|other| watched_secrets(&other.spec, plan::own_namespace(other)))
            .map(|watched| watched.key)
            .collect();
        named.extend(wanted.iter().cloned());
        let waiting: Vec<tokio::sync::watch::Receiver<bool>> = {
            let mut watches = self.lock();
            watches.retain(|key, _| {
                let keep = named.contains(key);
                if !keep {
                    info!(secret = %key, "no ServiceRefresh names this Secret any more; its watch stops");
                }
                keep
            });
            wanted
                .iter()
                .map(|key| {
                    watches.entry(key.clone()).or_insert_with(|| self.start(key)).synced.clone()
                })
                .collect()
        };
        let all_synced = async {
            for mut synced in waiting {
                if synced.wait_for(|synced| *synced).await.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(FIRST_LIST_WAIT, all_synced).await.unwrap_or(false)
    }

    fn start(&self, key: &ObjectKey) -> SecretWatch {
        info!(secret = %key, "watching the Secret a ServiceRefresh names in spec.secretTriggers");
        let api: Api<SecretSnapshot> = Api::namespaced(self.client.clone(), &key.namespace);
        let config = watcher::Config::default()
            .any_semantic()
            .fields(&format!("metadata.name={}", key.name));
        let (store, writer) = reflector::store();
        let (synced_tx, synced) = tokio::sync::watch::channel(false);
        let changes = self.changes.clone();
        let secret = key.to_string();
        let stream = watcher(api, config)
            .default_backoff()
            .inspect(log_watch_refusals("Secret"))
            .inspect(move |event| {
                if let Ok(watcher::Event::InitDone) = event {
                    synced_tx.send_replace(true);
                }
            })
            .reflect(writer)
            .touched_objects()
            .predicate_filter(predicates::resource_version, Default::default());
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(changed) => {
                        debug!(secret = %secret, resource_version = ?changed.resource_version(), "Secret changed");
                        if changes.unbounded_send(changed).is_err() {
                            return;
                        }
                    }
                    // Refusals are logged above; the watcher retries with backoff.
                    Err(_) => continue,
                }
            }
        });
        SecretWatch { store, synced, task }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, SecretWatch>> {
        // Inserts, removals and reads only: a panic cannot leave the map torn.
        self.watches.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
