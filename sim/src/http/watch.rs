//! Watch streams: newline-delimited JSON events (`ADDED`, `MODIFIED`,
//! `DELETED`, `BOOKMARK`, `ERROR`) started from a resourceVersion (or with
//! synthetic ADDED events for the current state), streaming lists
//! (`sendInitialEvents` ending in an `initial-events-end` bookmark),
//! selector transitions, periodic bookmarks, `timeoutSeconds`, 410 for
//! compacted versions, and fault-injected stream drops.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::request::{ListSelectors, Representation, ResourceRequest, is_true};
use super::response::{partial_metadata, with_cache_control};
use super::table::{self, IncludeObject, TableMetadata};
use crate::error::{ApiError, Cause, GroupResource};
use crate::registry::ResourceDef;
use crate::state::SimState;
use crate::store::{EventType, StoredEvent};
use crate::util::metadata_str;

/// Where a watch starts.
enum Start {
    /// Synthetic ADDED events for these objects, then live; `true` ends the
    /// initial events with the `initial-events-end` bookmark.
    Initial(Vec<Arc<Value>>, bool),
    /// Replay these events, then live.
    Replay(Vec<Arc<StoredEvent>>),
    /// The requested version (first) is compacted; the oldest retained
    /// (second) is what the error reports.
    Expired(u64, u64),
}

/// Starts a watch and returns the streaming response.
pub fn start(sim: Arc<SimState>, request: &ResourceRequest) -> Result<Response, ApiError> {
    let target = &request.target;
    let query = &request.query;
    let selectors = ListSelectors::from_query(&target.def, query)?;
    let bookmarks = is_true(query, "allowWatchBookmarks");
    let send_initial = match query.get("sendInitialEvents").map(String::as_str) {
        Some("true") | Some("1") => true,
        Some("false") | Some("0") | Some("") | None => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "sendInitialEvents: invalid value {other:?}"
            )));
        }
    };
    let requested_rv = query.get("resourceVersion").cloned().unwrap_or_default();
    if send_initial {
        let rv_match = query.get("resourceVersionMatch").map(String::as_str).unwrap_or("");
        if rv_match != "NotOlderThan" || !bookmarks {
            let mut causes = Vec::new();
            if rv_match != "NotOlderThan" {
                causes.push(Cause::new(
                    "FieldValueForbidden",
                    "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                    "resourceVersionMatch",
                ));
            }
            if !bookmarks {
                causes.push(Cause::new(
                    "FieldValueForbidden",
                    "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
                    "allowWatchBookmarks",
                ));
            }
            return Err(ApiError::invalid("ListOptions", "meta.k8s.io", "", &causes));
        }
    }
    let timeout = match query.get("timeoutSeconds").and_then(|seconds| seconds.parse::<u64>().ok())
    {
        Some(seconds) if seconds > 0 => Duration::from_secs(seconds),
        // Spread like the real server's default (30 to 60 minutes), so that
        // a client's watches do not all end at once.
        _ => Duration::from_secs(1800 + sim.rng.with(|rng| rng.below(1800))),
    };
    let gr = target.def.storage_gr();
    let namespace = target.namespace.clone();
    let (start, live_events, start_rv) = {
        let store = sim.store.lock();
        let current = store.rv;
        if send_initial || requested_rv.is_empty() || requested_rv == "0" {
            let objects: Vec<Arc<Value>> = store
                .list(&gr, namespace.as_deref())
                .into_iter()
                .filter(|object| selectors.matches(object))
                .collect();
            (Start::Initial(objects, send_initial), Some(store.subscribe()), current)
        } else {
            let from: u64 = requested_rv.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "resourceVersion: Invalid value: {requested_rv:?}: must be a valid resource version"
                ))
            })?;
            match store.watch_from(from) {
                Ok((backlog, live_events)) => {
                    (Start::Replay(backlog), Some(live_events), current.max(from))
                }
                Err(oldest) => (Start::Expired(from, oldest), None, current),
            }
        }
    };
    let (sender, receiver) = mpsc::channel::<Bytes>(256);
    let drop_after = sim.faults().watch_drop_every_ms.map(Duration::from_millis);
    let bookmark_every = Duration::from_millis(sim.config.bookmark_interval_ms.max(10));
    let mut shutdown = sim.shutdown.clone();
    let representation = match request.representation {
        Representation::Table => {
            let crd = sim.store.lock().defining_crd(&target.def);
            // An unsupported includeObject makes every event a plain object.
            match table::include_object(query.get("includeObject").map(String::as_str)) {
                Ok(include) => EventObjects::Table { crd, include },
                Err(_) => EventObjects::Object,
            }
        }
        Representation::Metadata => EventObjects::Metadata,
        Representation::Object => EventObjects::Object,
    };
    let watcher =
        Watcher { def: target.def.clone(), gr, namespace, selectors, representation, sender };
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        let drop_at = drop_after.map(|after| tokio::time::Instant::now() + after);
        let mut last_rv = start_rv;
        match start {
            Start::Expired(from, oldest) => {
                let error =
                    ApiError::expired(format!("too old resource version: {from} ({oldest})"));
                let _ =
                    watcher.send_raw(json!({"type": "ERROR", "object": error.to_status()})).await;
                return;
            }
            Start::Initial(objects, streaming) => {
                for object in objects {
                    if !watcher.send("ADDED", &object).await {
                        return;
                    }
                }
                if streaming && !watcher.bookmark(last_rv, true).await {
                    return;
                }
            }
            Start::Replay(events) => {
                for event in events {
                    last_rv = last_rv.max(event.rv);
                    if !watcher.event(&event).await {
                        return;
                    }
                }
            }
        }
        let Some(mut live_events) = live_events else {
            return;
        };
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + bookmark_every, bookmark_every);
        loop {
            let dropped = async {
                match drop_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = live_events.recv() => match received {
                    Ok(event) => {
                        if event.rv <= last_rv {
                            continue;
                        }
                        last_rv = event.rv;
                        if !watcher.event(&event).await {
                            return;
                        }
                    }
                    // A lagging watch ends; the client re-watches, as after
                    // any dropped connection.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if bookmarks => {
                    if !watcher.bookmark(last_rv, false).await {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = dropped => return,
                _ = shutdown.changed() => return,
                _ = watcher.sender.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|line| (Ok::<Bytes, Infallible>(line), receiver))
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(with_cache_control(response, "no-cache, private"))
}

/// How a watch renders the objects of its events.
enum EventObjects {
    /// The object as the resource version serves it.
    Object,
    /// A one-row Table (`crd` is the defining CRD of a custom resource).
    Table { crd: Option<Arc<Value>>, include: IncludeObject },
    /// PartialObjectMetadata.
    Metadata,
}

/// One running watch: what it selects and where its lines go.
struct Watcher {
    def: Arc<ResourceDef>,
    gr: GroupResource,
    namespace: Option<String>,
    selectors: ListSelectors,
    representation: EventObjects,
    sender: mpsc::Sender<Bytes>,
}

impl Watcher {
    fn matches(&self, object: &Value) -> bool {
        if let Some(namespace) = &self.namespace
            && metadata_str(object, "namespace") != Some(namespace.as_str())
        {
            return false;
        }
        self.selectors.matches(object)
    }

    /// Sends a stored event as this watch sees it: a change that moves an
    /// object into or out of the selection is an ADDED or DELETED.
    /// Returns false once the client is gone.
    async fn event(&self, event: &StoredEvent) -> bool {
        if event.gr != self.gr {
            return true;
        }
        let now_matches = self.matches(&event.object);
        let matched_before = event.prev.as_ref().is_some_and(|prev| self.matches(prev));
        let kind = match event.etype {
            EventType::Added if now_matches => "ADDED",
            EventType::Modified => match (matched_before, now_matches) {
                (true, true) => "MODIFIED",
                (false, true) => "ADDED",
                (true, false) => "DELETED",
                (false, false) => return true,
            },
            EventType::Deleted if now_matches => "DELETED",
            _ => return true,
        };
        self.send(kind, &event.object).await
    }

    async fn send(&self, kind: &str, stored: &Arc<Value>) -> bool {
        let object = match &self.representation {
            EventObjects::Metadata => partial_metadata(stored),
            EventObjects::Table { crd, include } => {
                let rv = metadata_str(stored, "resourceVersion").unwrap_or("");
                table::resource_table(
                    &self.def,
                    crd.as_deref(),
                    std::slice::from_ref(stored),
                    TableMetadata::Object(rv),
                    *include,
                )
            }
            EventObjects::Object => self.def.to_served(stored),
        };
        self.send_raw(json!({"type": kind, "object": object})).await
    }

    async fn bookmark(&self, rv: u64, initial_events_end: bool) -> bool {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end && let Some(fields) = metadata.as_object_mut() {
            fields.insert("annotations".into(), json!({"k8s.io/initial-events-end": "true"}));
        }
        let object = match self.representation {
            EventObjects::Metadata => {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata})
            }
            _ => {
                json!({"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": metadata})
            }
        };
        self.send_raw(json!({"type": "BOOKMARK", "object": object})).await
    }

    async fn send_raw(&self, line: Value) -> bool {
        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        self.sender.send(Bytes::from(bytes)).await.is_ok()
    }
}
