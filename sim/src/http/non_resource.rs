//! The non-resource endpoints: `/version` (and `/version/`, which kr8s
//! asks for), the health checks, the OpenAPI v2 and v3 documents, and the sim's own `/sim/v1/stats` and `/sim/v1/faults`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::openapi;
use super::response::{error_response, json_response, not_found_text, with_cache_control};
use crate::error::ApiError;
use crate::state::SimState;
use crate::{FaultConfig, FaultMix};

/// `/version`, as a v1.32 server reports it.
pub async fn version() -> Response {
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

/// `/healthz`, `/livez`, `/readyz`.
pub async fn healthy() -> &'static str {
    "ok"
}

/// `GET /sim/v1/stats`.
pub async fn stats(State(sim): State<Arc<SimState>>) -> Response {
    let stats = sim.with_stats(|stats| stats.clone());
    json_response(StatusCode::OK, &serde_json::to_value(stats).unwrap_or(Value::Null))
}

/// The fault knobs as `/sim/v1/faults` serves and takes them: the fields of
/// [`FaultConfig`] and [`FaultMix`] in one object (a body with only the
/// former, as before the mix existed, leaves the mix at its defaults).
#[derive(serde::Serialize, serde::Deserialize)]
struct Faults {
    #[serde(flatten)]
    config: FaultConfig,
    #[serde(flatten)]
    mix: FaultMix,
}

/// `GET /sim/v1/faults`.
pub async fn faults(State(sim): State<Arc<SimState>>) -> Response {
    let faults = Faults { config: sim.faults(), mix: sim.fault_mix() };
    json_response(StatusCode::OK, &serde_json::to_value(faults).unwrap_or(Value::Null))
}

/// `POST /sim/v1/faults`: replaces the fault configuration and mix.
pub async fn set_faults(State(sim): State<Arc<SimState>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(faults) => {
            sim.set_faults(faults.config.clone());
            sim.set_fault_mix(faults.mix.clone());
            json_response(StatusCode::OK, &serde_json::to_value(faults).unwrap_or(Value::Null))
        }
        Err(error) => {
            error_response(&ApiError::bad_request(format!("invalid fault config: {error}")))
        }
    }
}

/// `GET /openapi/v2`: the Swagger 2.0 document, as protobuf when the
/// client asks for it (client-go asks for nothing else), else JSON.
pub async fn openapi_v2(State(sim): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    let registry = sim.store.lock().registry.clone();
    let document = openapi::swagger_document(&registry);
    let accept = headers.get(header::ACCEPT).and_then(|value| value.to_str().ok()).unwrap_or("");
    if accept.contains("protobuf") {
        let mut response = Response::new(Body::from(openapi::encode_protobuf(&document)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
        );
        return with_cache_control(response, "no-cache, private");
    }
    with_cache_control(json_response(StatusCode::OK, &document), "no-cache, private")
}

/// `GET /openapi/v3`: the index of group-version documents.
pub async fn openapi_index(State(sim): State<Arc<SimState>>) -> Response {
    let registry = sim.store.lock().registry.clone();
    with_cache_control(
        json_response(StatusCode::OK, &openapi::served_index(&registry)),
        "no-cache, private",
    )
}

/// `GET /openapi/v3/<group-version path>`: one document; a request with
/// the index's `?hash=` may be cached for good.
pub async fn openapi_document(
    State(sim): State<Arc<SimState>>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let registry = sim.store.lock().registry.clone();
    match openapi::served_document(&registry, &path) {
        Some(document) => {
            let hashed = query.is_some_and(|query| query.contains("hash="));
            let cache_control = if hashed { "public, immutable" } else { "no-cache, private" };
            with_cache_control(json_response(StatusCode::OK, &document), cache_control)
        }
        None => not_found_text(),
    }
}
