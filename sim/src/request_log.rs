//! The request log: every request the simulated API server received, in order, with when it
//! arrived (milliseconds on the sim's monotonic clock since it started), its Kubernetes verb,
//! path and query, User-Agent and response code (`None` while the answer is still pending). Tests read
//! it through [`crate::SimHandle::requests`] or `GET /sim/v1/requests` to attribute each
//! request to the client that sent it, as an audit log would. It keeps the latest
//! [`CAPACITY`] requests, so a long-running `servicerefresh sim` does not grow without bound.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};

/// One request as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// Arrival, in ms since the sim started (monotonic).
    pub at_ms: u64,
    /// The Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`); the lower-case HTTP method outside the resource API.
    pub verb: String,
    pub path: String,
    /// The query string, as sent (`limit=500&continue=...`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub user_agent: Option<String>,
    /// The response status code; `None` while the request is being answered.
    pub code: Option<u16>,
    /// The request body's length as its `Content-Length` declared it (0 without one): what a
    /// client wrote to the API server, for the bytes-written figures.
    #[serde(default)]
    pub body_bytes: u64,
}

impl RequestRecord {
    /// A request that changes state.
    pub fn is_write(&self) -> bool {
        matches!(self.verb.as_str(), "create" | "update" | "patch" | "delete" | "deletecollection")
    }
}

/// How many requests the log keeps (the oldest go first).
pub const CAPACITY: usize = 200_000;

#[derive(Debug, Default)]
struct Records {
    /// The number of requests dropped from the front.
    dropped: usize,
    kept: VecDeque<RequestRecord>,
}

/// The log of one simulated cluster.
#[derive(Debug)]
pub struct RequestLog {
    started: Instant,
    records: Mutex<Records>,
}

impl Default for RequestLog {
    fn default() -> Self {
        Self { started: Instant::now(), records: Mutex::new(Records::default()) }
    }
}

impl RequestLog {
    /// Every request kept, in arrival order.
    pub fn snapshot(&self) -> Vec<RequestRecord> {
        self.lock().kept.iter().cloned().collect()
    }

    /// Milliseconds since the sim started, on the clock the records use.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Appends a record; returns its number, for [`Self::answered`].
    fn push(&self, record: RequestRecord) -> usize {
        let mut records = self.lock();
        if records.kept.len() == CAPACITY {
            records.kept.pop_front();
            records.dropped += 1;
        }
        records.kept.push_back(record);
        records.dropped + records.kept.len() - 1
    }

    fn answered(&self, number: usize, code: u16) {
        let mut records = self.lock();
        if let Some(index) = number.checked_sub(records.dropped)
            && let Some(record) = records.kept.get_mut(index)
        {
            record.code = Some(code);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        // Records are pushed or updated whole; a panic cannot leave the list torn.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Adds `GET /sim/v1/requests` to `app` and logs every request `app` serves.
pub fn wire(app: Router, log: Arc<RequestLog>) -> Router {
    app.merge(Router::new().route("/sim/v1/requests", get(serve)).with_state(log.clone()))
        .layer(middleware::from_fn_with_state(log, record))
}

async fn serve(State(log): State<Arc<RequestLog>>) -> Response {
    let body = serde_json::to_vec(&log.snapshot()).unwrap_or_default();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap_or_default()
}

async fn record(State(log): State<Arc<RequestLog>>, request: Request, next: Next) -> Response {
    let entry = RequestRecord {
        at_ms: log.now_ms(),
        verb: kube_request_info::verb(
            request.method().as_str(),
            request.uri().path(),
            request.uri().query(),
        ),
        path: request.uri().path().to_owned(),
        query: request.uri().query().map(str::to_owned),
        user_agent: request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|agent| agent.to_str().ok())
            .map(str::to_owned),
        code: None,
        body_bytes: request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|length| length.to_str().ok()?.parse().ok())
            .unwrap_or(0),
    };
    let number = log.push(entry);
    let response = next.run(request).await;
    log.answered(number, response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str) -> RequestRecord {
        RequestRecord {
            at_ms: 0,
            verb: "get".into(),
            path: path.into(),
            query: None,
            user_agent: None,
            code: None,
            body_bytes: 0,
        }
    }

    #[test]
    fn answers_land_on_their_request_and_the_oldest_requests_go_first() {
        let log = RequestLog::default();
        let first = log.push(record("/a"));
        let second = log.push(record("/b"));
        log.answered(second, 404);
        assert_eq!(log.snapshot().iter().map(|r| r.code).collect::<Vec<_>>(), [None, Some(404)]);
        for _ in 0..CAPACITY {
            log.push(record("/c"));
        }
        log.answered(first, 200);
        let kept = log.snapshot();
        assert_eq!(kept.len(), CAPACITY);
        assert!(kept.iter().all(|r| r.path == "/c"));
    }
}
