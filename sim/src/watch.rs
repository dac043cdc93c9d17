//! Watch streams: newline-delimited JSON events (`ADDED`, `MODIFIED`,
//! `DELETED`, `BOOKMARK`, `ERROR`), started from a resourceVersion (or with
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

use crate::api::{Query, Selectors, Target, present, storage_gr};
use crate::error::ApiError;
use crate::hooks;
use crate::server::Sim;
use crate::store::{EventType, StoredEvent};

enum Start {
    /// Synthetic ADDED events for these objects, then live.
    Initial(Vec<Arc<Value>>, bool),
    /// Replay these events, then live.
    Replay(Vec<Arc<StoredEvent>>),
    /// The requested version is compacted.
    Expired(u64, u64),
}

/// Starts a watch and returns the streaming response.
pub fn start(
    sim: Arc<Sim>,
    t: &Target,
    q: &Query,
    table: bool,
    metadata: bool,
) -> Result<Response, ApiError> {
    let sel = Selectors::parse(&t.def, q)?;
    let bookmarks =
        matches!(q.get("allowWatchBookmarks").map(String::as_str), Some("true") | Some("1"));
    let send_initial = match q.get("sendInitialEvents").map(String::as_str) {
        Some("true") | Some("1") => true,
        Some("false") | Some("0") | Some("") | None => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "sendInitialEvents: invalid value {other:?}"
            )));
        }
    };
    let rv_param = q.get("resourceVersion").cloned().unwrap_or_default();
    if send_initial {
        let rvm = q.get("resourceVersionMatch").map(String::as_str).unwrap_or("");
        if rvm != "NotOlderThan" || !bookmarks {
            let (kind, group) = ("ListOptions", "meta.k8s.io");
            let mut causes = Vec::new();
            if rvm != "NotOlderThan" {
                causes.push(crate::error::Cause::new(
                    "FieldValueForbidden",
                    "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                    "resourceVersionMatch",
                ));
            }
            if !bookmarks {
                causes.push(crate::error::Cause::new(
                    "FieldValueForbidden",
                    "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
                    "allowWatchBookmarks",
                ));
            }
            return Err(ApiError::invalid(kind, group, "", &causes));
        }
    }
    let timeout = match q.get("timeoutSeconds").and_then(|s| s.parse::<u64>().ok()) {
        Some(s) if s > 0 => Duration::from_secs(s),
        _ => Duration::from_secs(1800 + sim.random_below(1800)),
    };
    let gr = storage_gr(&t.def);
    let ns = t.namespace.clone();
    let (start, rx, start_rv) = {
        let st = sim.store.lock();
        let current = st.rv;
        if send_initial || rv_param.is_empty() || rv_param == "0" {
            let objs: Vec<Arc<Value>> =
                st.list(&gr, ns.as_deref()).into_iter().filter(|o| sel.matches(o)).collect();
            (Start::Initial(objs, send_initial), Some(st.subscribe()), current)
        } else {
            let from: u64 = rv_param.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "resourceVersion: Invalid value: {rv_param:?}: must be a valid resource version"
                ))
            })?;
            match st.watch_from(from) {
                Ok((backlog, rx)) => (Start::Replay(backlog), Some(rx), current.max(from)),
                Err(oldest) => (Start::Expired(from, oldest), None, current),
            }
        }
    };
    let (tx, out_rx) = mpsc::channel::<Bytes>(256);
    let def = t.def.clone();
    let drop_after = sim.faults().watch_drop_every_ms.map(Duration::from_millis);
    let bookmark_every = Duration::from_millis(sim.config.bookmark_interval_ms.max(10));
    let mut shutdown = sim.shutdown.clone();
    let crd = if table { crate::api::crd_object(&sim, &t.def) } else { None };
    let include = q.get("includeObject").cloned();
    tokio::spawn(async move {
        let w = Watcher { def: def.clone(), gr, ns, sel, table, crd, include, metadata, tx };
        let deadline = tokio::time::Instant::now() + timeout;
        let drop_at = drop_after.map(|d| tokio::time::Instant::now() + d);
        let mut last_rv = start_rv;
        match start {
            Start::Expired(from, oldest) => {
                let e = ApiError::expired(format!("too old resource version: {from} ({oldest})"));
                let _ = w.send_raw(json!({"type": "ERROR", "object": e.to_status()})).await;
                return;
            }
            Start::Initial(objs, streaming) => {
                for o in objs {
                    if !w.send("ADDED", &o).await {
                        return;
                    }
                }
                if streaming && !w.bookmark(last_rv, true).await {
                    return;
                }
            }
            Start::Replay(events) => {
                for ev in events {
                    last_rv = last_rv.max(ev.rv);
                    if !w.event(&ev).await {
                        return;
                    }
                }
            }
        }
        let Some(mut rx) = rx else {
            return;
        };
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + bookmark_every, bookmark_every);
        loop {
            let drop_sleep = async {
                match drop_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(ev) => {
                        if ev.rv <= last_rv {
                            continue;
                        }
                        last_rv = ev.rv;
                        if !w.event(&ev).await {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if bookmarks => {
                    if !w.bookmark(last_rv, false).await {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = drop_sleep => return,
                _ = shutdown.changed() => return,
                _ = w.tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(out_rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    Ok(r)
}

struct Watcher {
    def: Arc<crate::registry::ResourceDef>,
    gr: crate::error::GroupResource,
    ns: Option<String>,
    sel: Selectors,
    table: bool,
    crd: Option<Arc<Value>>,
    include: Option<String>,
    metadata: bool,
    tx: mpsc::Sender<Bytes>,
}

impl Watcher {
    fn matches(&self, o: &Value) -> bool {
        if let Some(ns) = &self.ns
            && o.pointer("/metadata/namespace").and_then(Value::as_str) != Some(ns.as_str())
        {
            return false;
        }
        self.sel.matches(o)
    }

    async fn event(&self, ev: &StoredEvent) -> bool {
        if ev.gr != self.gr {
            return true;
        }
        let cur = self.matches(&ev.object);
        let prev = ev.prev.as_ref().is_some_and(|p| self.matches(p));
        let kind = match ev.etype {
            EventType::Added if cur => "ADDED",
            EventType::Modified => match (prev, cur) {
                (true, true) => "MODIFIED",
                (false, true) => "ADDED",
                (true, false) => "DELETED",
                (false, false) => return true,
            },
            EventType::Deleted if cur => "DELETED",
            _ => return true,
        };
        self.send(kind, &ev.object).await
    }

    async fn send(&self, kind: &str, obj: &Arc<Value>) -> bool {
        let object = if self.metadata {
            crate::api::partial_metadata(obj)
        } else if self.table {
            let rv = obj.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
            hooks::table(
                &self.def,
                self.crd.as_deref(),
                std::slice::from_ref(obj),
                rv,
                self.include.as_deref(),
            )
            .unwrap_or_else(|_| present(&self.def, obj))
        } else {
            present(&self.def, obj)
        };
        self.send_raw(json!({"type": kind, "object": object})).await
    }

    async fn bookmark(&self, rv: u64, initial_end: bool) -> bool {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end && let Some(m) = meta.as_object_mut() {
            m.insert("annotations".into(), json!({"k8s.io/initial-events-end": "true"}));
        }
        let obj = if self.metadata {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta})
        } else {
            json!({"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": meta})
        };
        self.send_raw(json!({"type": "BOOKMARK", "object": obj})).await
    }

    async fn send_raw(&self, v: Value) -> bool {
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        self.tx.send(Bytes::from(line)).await.is_ok()
    }
}
