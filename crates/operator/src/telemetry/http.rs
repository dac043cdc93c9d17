//! The metrics and probe listener (`--metrics-listen`): `/metrics` in the OpenMetrics text
//! format, `/healthz` (the runtime answers), `/readyz` (the watch caches have synced).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use thiserror::Error;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::Telemetry;

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot listen on {address} for /metrics, /healthz and /readyz")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The running listener.
#[derive(Debug)]
pub struct Server {
    /// Where it listens (with the port chosen, when port 0 was asked for).
    pub address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Server {
    /// Stops listening; requests in progress finish.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Starts serving `telemetry` on `address`.
pub async fn serve(address: SocketAddr, telemetry: Arc<Telemetry>) -> Result<Server, ServeError> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Bind { address, source })?;
    let address = listener.local_addr().map_err(|source| ServeError::Bind { address, source })?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(telemetry);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let graceful = async move {
            let _ = stopped.await;
        };
        if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(graceful).await {
            tracing::error!(%error, "the metrics listener failed");
        }
    });
    Ok(Server { address, stop, task })
}

async fn metrics(State(telemetry): State<Arc<Telemetry>>) -> Response {
    ([(header::CONTENT_TYPE, OPENMETRICS)], telemetry.encode()).into_response()
}

/// Answering at all proves the runtime is responsive.
async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(telemetry): State<Arc<Telemetry>>) -> Response {
    match telemetry.readiness.check() {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}\n")).into_response()
        }
    }
}
