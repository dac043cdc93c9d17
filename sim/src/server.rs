//! The running server: shared state (store, stats, faults, randomness,
//! configuration), the axum router with the non-resource endpoints
//! (`/version`, health, OpenAPI, `/sim/v1/stats`, `/sim/v1/faults`), request
//! counting and fault injection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::api::{error_response, json_response};
use crate::error::{ApiError, GroupResource};
use crate::hooks;
use crate::store::Store;
use crate::util::Rng;
use crate::{FaultConfig, SimConfig, SimStats};

/// Shared state of one simulated cluster.
#[derive(Debug)]
pub struct Sim {
    /// Objects, events, registry.
    pub store: Store,
    /// Counters.
    pub stats: Mutex<SimStats>,
    /// Current fault configuration.
    pub fault_config: Mutex<FaultConfig>,
    rng: Mutex<Rng>,
    /// Configuration the sim was started with.
    pub config: SimConfig,
    /// Flips to true on shutdown (ends watches).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Listen address.
    pub addr: SocketAddr,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Guarded data is plain counters/config; a panic cannot leave it torn.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sim {
    /// New state.
    pub fn new(
        config: SimConfig,
        addr: SocketAddr,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Sim {
            store: Store::new(config.event_window),
            stats: Mutex::new(SimStats::default()),
            fault_config: Mutex::new(config.faults.clone()),
            rng: Mutex::new(Rng::new(config.seed.wrapping_add(0x5eed))),
            config,
            shutdown,
            addr,
        }
    }

    /// Current faults.
    pub fn faults(&self) -> FaultConfig {
        lock(&self.fault_config).clone()
    }

    /// Replaces the faults.
    pub fn set_faults(&self, f: FaultConfig) {
        *lock(&self.fault_config) = f;
    }

    /// Counts one request.
    pub fn count(&self, verb: &str, resource: &str) {
        *lock(&self.stats).requests.entry(format!("{verb} {resource}")).or_insert(0) += 1;
    }

    /// Mutates the stats.
    pub fn with_stats<R>(&self, f: impl FnOnce(&mut SimStats) -> R) -> R {
        f(&mut lock(&self.stats))
    }

    /// A random fault for a write, per the configured rate.
    pub fn injected_fault(&self, gr: &GroupResource, name: &str) -> Option<ApiError> {
        let rate = self.faults().write_error_rate;
        if rate <= 0.0 {
            return None;
        }
        let mut rng = lock(&self.rng);
        if rng.unit() >= rate {
            return None;
        }
        if rng.below(2) == 0 {
            Some(ApiError::internal("simulated fault: etcdserver: request timed out"))
        } else {
            Some(ApiError::conflict_modified(gr, name))
        }
    }

    /// Random characters.
    pub fn random_string(&self, alphabet: &[u8], n: usize) -> String {
        lock(&self.rng).string(alphabet, n)
    }

    /// Random number below n.
    pub fn random_below(&self, n: u64) -> u64 {
        lock(&self.rng).below(n)
    }

    /// A random UUID.
    pub fn uuid(&self) -> String {
        lock(&self.rng).uuid()
    }
}

/// The router of one simulated cluster.
pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/healthz", get(ok))
        .route("/livez", get(ok))
        .route("/readyz", get(ok))
        .route("/sim/v1/stats", get(stats))
        .route("/sim/v1/faults", get(get_faults).post(set_faults))
        .route("/openapi/v3", get(openapi_root))
        .route("/openapi/v3/{*path}", get(openapi_doc))
        .fallback(crate::api::handle)
        .with_state(sim)
}

async fn version() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "major": "1",
            "minor": "32",
            "gitVersion": "v1.32.0-sim",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.23.4",
            "compiler": "gc",
            "platform": "linux/amd64",
        }),
    )
}

async fn ok() -> &'static str {
    "ok"
}

async fn stats(State(sim): State<Arc<Sim>>) -> Response {
    let s = sim.with_stats(|s| s.clone());
    json_response(StatusCode::OK, &serde_json::to_value(s).unwrap_or(Value::Null))
}

async fn get_faults(State(sim): State<Arc<Sim>>) -> Response {
    json_response(StatusCode::OK, &serde_json::to_value(sim.faults()).unwrap_or(Value::Null))
}

async fn set_faults(State(sim): State<Arc<Sim>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<FaultConfig>(&body) {
        Ok(f) => {
            sim.set_faults(f.clone());
            json_response(StatusCode::OK, &serde_json::to_value(f).unwrap_or(Value::Null))
        }
        Err(e) => error_response(&ApiError::bad_request(format!("invalid fault config: {e}"))),
    }
}

async fn openapi_root(State(sim): State<Arc<Sim>>) -> Response {
    let registry = sim.store.lock().registry.clone();
    let mut r = json_response(StatusCode::OK, &hooks::openapi_root(&registry));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    r
}

async fn openapi_doc(
    State(sim): State<Arc<Sim>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let registry = sim.store.lock().registry.clone();
    match hooks::openapi_doc(&registry, &path) {
        Some(d) => {
            let hashed = query.is_some_and(|q| q.contains("hash="));
            let mut r = json_response(StatusCode::OK, &d);
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(if hashed {
                    "public, immutable"
                } else {
                    "no-cache, private"
                }),
            );
            r
        }
        None => (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
    }
}
