//! The admin API's connections: the accept loop (axum-server, over rustls with the `ring`
//! provider or over plain TCP), the caps on connections held at once in all and per client
//! address, and the timeouts that close connections which send nothing useful. An
//! unauthenticated client can then hold at most `max_connections_per_client` connections,
//! each for at most the header-read or idle timeout, and all clients together at most
//! `max_connections`: the memory the API spends on connections is bounded whatever arrives.
//!
//! axum-server fits: its rustls acceptor bounds the TLS handshake, its
//! `first_request_timeout` bounds the time until the first request's headers are read
//! (covering hyper's protocol detection, which hyper's own timer does not), hyper's
//! `header_read_timeout` (which in hyper 1 starts as soon as a connection waits for its next
//! request) is the idle timeout, and an acceptor of our own admits or closes each connection
//! before its handshake.

use std::collections::HashMap;
use std::future::{Future, Ready};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::Handle;
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tracing::debug;

use super::config::ConnectionLimits;

/// Largest request head (and read buffer) of a connection: far above any token ArcGIS
/// clients send in a query string, and it bounds what one connection can make us hold.
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;
/// How long the requests in progress may take to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The connections held: in all, and per client address.
#[derive(Debug)]
pub struct ConnectionGate {
    limits: ConnectionLimits,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    total: u32,
    by_client: HashMap<IpAddr, u32>,
}

/// Why a connection was closed at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections` are held.
    Full,
    /// This client address holds `max_connections_per_client`.
    ClientFull,
}

impl ConnectionGate {
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self { limits, held: Mutex::default() })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `client`, or says why not. The pass frees its place when
    /// dropped.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> Result<Pass, Refusal> {
        let mut held = self.held();
        if held.total >= self.limits.max_connections {
            return Err(Refusal::Full);
        }
        let of_client = held.by_client.entry(client).or_default();
        if *of_client >= self.limits.max_connections_per_client {
            return Err(Refusal::ClientFull);
        }
        *of_client += 1;
        held.total += 1;
        Ok(Pass { gate: self.clone(), client })
    }

    /// Connections held now, in all.
    pub fn total(&self) -> u32 {
        self.held().total
    }
}

/// A place among the held connections.
#[derive(Debug)]
pub struct Pass {
    gate: Arc<ConnectionGate>,
    client: IpAddr,
}

impl Drop for Pass {
    fn drop(&mut self) {
        let mut held = self.gate.held();
        held.total = held.total.saturating_sub(1);
        if let Some(count) = held.by_client.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.by_client.remove(&self.client);
            }
        }
    }
}

/// Admits each accepted TCP connection through the gate before anything else is spent on it
/// (no TLS handshake, no buffer): a refused one is closed at once.
#[derive(Clone, Debug)]
pub struct GateAcceptor {
    gate: Arc<ConnectionGate>,
}

impl<S> Accept<TcpStream, S> for GateAcceptor {
    type Stream = Admitted;
    type Service = S;
    type Future = Ready<io::Result<(Admitted, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admitted = stream
            .peer_addr()
            .and_then(|peer| {
                self.gate.admit(peer.ip()).map_err(|refusal| {
                    io::Error::other(format!("{peer}: connection refused ({refusal:?})"))
                })
            })
            .map(|pass| (Admitted { stream, _pass: pass }, service));
        std::future::ready(admitted)
    }
}

/// A connection that holds its place until it closes.
#[derive(Debug)]
pub struct Admitted {
    stream: TcpStream,
    _pass: Pass,
}

impl AsyncRead for Admitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, over TLS when `tls` is given;
/// requests in progress then get [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: std::net::TcpListener,
    tls: Option<Arc<ServerConfig>>,
    limits: ConnectionLimits,
    gate: Arc<ConnectionGate>,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let handle: Handle<SocketAddr> = Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    let gate = GateAcceptor { gate };
    let mut server = axum_server::from_tcp(listener)?
        .handle(handle)
        .http1_only()
        .first_request_timeout(limits.header_read_timeout)
        .accept_error_handler(|peer, error| debug!(?peer, %error, "admin API: connection closed"));
    server
        .http_builder()
        .http1()
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        Some(config) => {
            let acceptor = RustlsAcceptor::new(RustlsConfig::from_config(config))
                .handshake_timeout(limits.header_read_timeout)
                .acceptor(gate);
            server.acceptor(acceptor).serve(service).await
        }
        None => server.acceptor(gate).serve(service).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_caps_each_client_and_the_total_and_frees_places() {
        let gate = ConnectionGate::new(ConnectionLimits {
            max_connections: 3,
            max_connections_per_client: 2,
            ..ConnectionLimits::default()
        });
        let (a, b, c): (IpAddr, IpAddr, IpAddr) =
            ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap(), "::1".parse().unwrap());
        let first = gate.admit(a).unwrap();
        let _second = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Refusal::ClientFull);
        let _third = gate.admit(b).unwrap();
        assert_eq!(gate.admit(c).unwrap_err(), Refusal::Full);
        assert_eq!(gate.total(), 3);
        drop(first);
        assert_eq!(gate.total(), 2);
        let _again = gate.admit(a).unwrap();
        assert_eq!(gate.admit(b).unwrap_err(), Refusal::Full);
    }
}
