//! `GET /sim/v1/metrics`: what the fleet's applications would export for Prometheus to
//! scrape, in the Prometheus text format. One counter, `sim_http_errors_total{namespace,
//! deployment}`: the HTTP errors a Deployment's pods served. A Deployment annotated
//! `sim.gisops.io/errors-per-second: "<rate>"` serves errors at that rate once it has been
//! restarted (its pod template carries `kubectl.kubernetes.io/restartedAt`), as a bad
//! release would; removing the annotation stops them. The counter is integrated scrape by
//! scrape, so it never goes down.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::GroupResource;
use crate::state::SimState;

/// Per-Deployment annotation: HTTP errors per second after a restart.
pub const ERRORS_PER_SECOND_ANNOTATION: &str = "sim.gisops.io/errors-per-second";
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

pub async fn serve(State(sim): State<Arc<SimState>>) -> Response {
    let deployments = sim.store.lock().list(&GroupResource::new("apps", "deployments"), None);
    let now = Instant::now();
    let mut text = String::from(
        "# HELP sim_http_errors_total HTTP errors served by the Deployment's pods.\n\
         # TYPE sim_http_errors_total counter\n",
    );
    let mut counters = sim.app_error_counters();
    for deployment in deployments {
        let meta = |path: &str| deployment.pointer(path).and_then(Value::as_str);
        let (Some(namespace), Some(name)) = (meta("/metadata/namespace"), meta("/metadata/name"))
        else {
            continue;
        };
        let restarted = deployment
            .pointer("/spec/template/metadata/annotations")
            .and_then(|annotations| annotations.get(RESTARTED_AT))
            .is_some();
        let rate = deployment
            .pointer("/metadata/annotations")
            .and_then(|annotations| annotations.get(ERRORS_PER_SECOND_ANNOTATION))
            .and_then(Value::as_str)
            .and_then(|rate| rate.trim().parse::<f64>().ok())
            .filter(|rate| rate.is_finite() && *rate > 0.0 && restarted)
            .unwrap_or(0.0);
        let (total, last) =
            counters.entry((namespace.to_owned(), name.to_owned())).or_insert((0.0, now));
        *total += rate * now.duration_since(*last).as_secs_f64();
        *last = now;
        text.push_str(&format!(
            "sim_http_errors_total{{namespace=\"{namespace}\",deployment=\"{name}\"}} {total}\n"
        ));
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
        .into_response()
}
