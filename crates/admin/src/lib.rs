//! The ArcGIS-compatible job API (`servicerefresh run --admin-listen ADDR`), so that scripts
//! and admin pages written for ArcGIS Enterprise on Kubernetes' `POST
//! <root>/admin/services/refreshAllServices` switch by changing only the base URL. A job is
//! a run of one ServiceRefresh (`--admin-target`), requested through the same annotations the
//! CLI writes; its state is read from the operator's ServiceRefresh cache. This module owns
//! the server's assembly and life; the submodules own the flags ([`config`]), HTTPS
//! ([`tls`]), connections and their limits ([`serve`]), callers and rights ([`auth`]), the
//! cache reads ([`cache`]), the job view ([`jobs`]), what the API remembers itself
//! ([`ledger`]), the writes ([`requests`]), request parameters ([`params`]), answers and
//! errors ([`respond`]), pages ([`pages`]) and the routes ([`routes`]).

pub mod auth;
pub mod cache;
pub mod config;
pub mod jobs;
pub mod ledger;
pub mod pages;
pub mod params;
pub mod requests;
pub mod respond;
pub mod routes;
pub mod serve;
pub mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use thiserror::Error;
use tracing::info;

pub use auth::{Access, Authority, Caller};
pub use config::{
    AdminArgs, AdminSettings, ConnectionLimits, ContextRoot, ExternalUrl, TargetRef, Transport,
};

use auth::limiter::FailureLimiter;
use cache::CachedTarget;
use jobs::JobContext;
use requests::Requests;
use routes::AdminApi;
use serve::ConnectionGate;
use servicerefresh_operator::controller::RefreshCache;
use tls::TlsError;

/// Why the admin API could not start or stopped serving.
#[derive(Debug, Error)]
pub enum AdminError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr} for the admin API")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("the admin API stopped serving")]
    Serve(#[source] io::Error),
}

/// The admin API, bound and ready to serve.
pub struct AdminServer {
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    local: SocketAddr,
    router: axum::Router,
    gate: Arc<ConnectionGate>,
    settings: AdminSettings,
}

impl AdminServer {
    /// Loads the certificate and binds the listener, so start-up fails at once on a bad
    /// certificate or a taken port. `client` sends the annotation patches and the ledger
    /// writes; `authority` checks tokens and rights.
    pub async fn bind(
        settings: AdminSettings,
        client: kube::Client,
        cache: RefreshCache,
        authority: Arc<dyn Authority>,
    ) -> Result<Self, AdminError> {
        let tls = match &settings.transport {
            Transport::Tls { cert, key } => Some(tls::server_config(cert, key)?),
            Transport::PlainHttp => None,
        };
        let addr = settings.listen;
        let bind_error = |source| AdminError::Bind { addr, source };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .and_then(|l| l.into_std())
            .map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let context = JobContext {
            target: settings.target.clone(),
            context_root: settings.context_root.as_str().to_owned(),
        };
        let cached = CachedTarget::new(cache, settings.target.clone());
        let api = AdminApi {
            authority,
            failures: FailureLimiter::default(),
            requests: Requests::new(cached.clone(), client, context.clone()),
            cached,
            context,
            external_url: settings.external_url.clone(),
            body_timeout: settings.limits.header_read_timeout,
        };
        let router = routes::router(Arc::new(api));
        let gate = ConnectionGate::new(settings.limits);
        Ok(Self { listener, tls, local, router, gate, settings })
    }

    /// The address it listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The connections it holds, for tests and diagnostics.
    pub fn connections(&self) -> Arc<ConnectionGate> {
        self.gate.clone()
    }

    /// The base URL of the API on its local address, e.g. `https://127.0.0.1:8443/arcgis/admin`.
    pub fn base_url(&self) -> String {
        format!(
            "{}://{}{}",
            self.settings.transport.scheme(),
            self.local,
            self.settings.context_root.as_str()
        )
    }

    /// Serves until `shutdown` resolves; requests in progress finish first.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AdminError> {
        let limits = self.settings.limits;
        info!(
            listen = %self.local, scheme = self.settings.transport.scheme(),
            root = self.settings.context_root.as_str(), target = %self.settings.target,
            max_connections = limits.max_connections,
            max_connections_per_client = limits.max_connections_per_client,
            header_read_timeout = ?limits.header_read_timeout, idle_timeout = ?limits.idle_timeout,
            "admin job API listening"
        );
        serve::serve(self.listener, self.tls, limits, self.gate, self.router, shutdown)
            .await
            .map_err(AdminError::Serve)
    }
}
