//! The HTTP face of the simulated cluster: the axum router with the
//! non-resource endpoints (`non_resource`), and for `/api` and `/apis` the
//! routing (`routing`) to discovery (`discovery`) and the REST handlers
//! (`handlers`, `watch`), which read requests through `request`, answer
//! through `response`, and render Tables (`table`) and OpenAPI documents.
//!
//! Authentication and authorization (`auth`) are a layer in front of every
//! route; their create-only endpoints are served from there too. The
//! router is served on `tls::SimListener`, one port speaking TLS and plain
//! HTTP.

mod app_metrics;
mod auth;
mod discovery;
mod handlers;
mod non_resource;
mod openapi;
mod request;
mod response;
mod routing;
mod table;
mod tls;
mod watch;

#[cfg(test)]
pub(crate) mod kubectl_harness;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::get;

use crate::state::SimState;

pub use tls::{SimListener, Transport};

/// The routes of one simulated cluster: the non-resource endpoints by path,
/// everything else through resource routing (the real server answers
/// unknown paths there too).
pub fn router(sim: Arc<SimState>) -> Router {
    Router::new()
        .route("/version", get(non_resource::version))
        .route("/version/", get(non_resource::version))
        .route("/healthz", get(non_resource::healthy))
        .route("/livez", get(non_resource::healthy))
        .route("/readyz", get(non_resource::healthy))
        .route("/sim/v1/stats", get(non_resource::stats))
        .route("/sim/v1/metrics", get(app_metrics::serve))
        .route("/sim/v1/faults", get(non_resource::faults).post(non_resource::set_faults))
        .route("/openapi/v2", get(non_resource::openapi_v2))
        .route("/openapi/v3", get(non_resource::openapi_index))
        .route("/openapi/v3/{*path}", get(non_resource::openapi_document))
        .fallback(routing::handle)
        // Last, so that it wraps every route above and the fallback.
        .layer(middleware::from_fn_with_state(sim.clone(), auth::filter))
        .with_state(sim)
}
