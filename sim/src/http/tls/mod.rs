//! The sim's listener: one port that speaks TLS, as a real API server's
//! secure port does, and plain HTTP, as the insecure port real servers had
//! until 1.20 did. The first byte of a connection tells them apart (a TLS
//! handshake starts with 0x16); TLS handshakes run in tasks of their own,
//! so that a slow client never holds up the others.
//!
//! The server certificate (for `127.0.0.1`, `::1`, `localhost` and the
//! in-cluster `kubernetes.default.svc` names) is the cluster CA's (`pki`),
//! made when the sim starts; kubeconfigs for the secure port carry that CA
//! as `certificate-authority-data`. Handlers learn which side a request came
//! in on from its [`Transport`] connect info.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::pki::ServingCertificate;

/// How long a new connection may take to send its first byte and finish
/// a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which side of the port a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    /// TLS (the secure port), as opposed to plain HTTP.
    pub secure: bool,
}

impl Connected<IncomingStream<'_, SimListener>> for Transport {
    fn connect_info(stream: IncomingStream<'_, SimListener>) -> Self {
        Transport { secure: matches!(stream.io(), Connection::Tls(_)) }
    }
}

/// An accepted connection, plain or TLS.
pub enum Connection {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Connection::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Connection::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Connection::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Connection::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Connection::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Connection::Plain(stream) => stream.is_write_vectored(),
            Connection::Tls(stream) => stream.is_write_vectored(),
        }
    }
}

/// The TLS server configuration of the API server's certificate.
fn acceptor(certificate: &ServingCertificate) -> io::Result<TlsAcceptor> {
    let invalid = |error: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidData, error.to_string())
    };
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(certificate.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|error| invalid(&error))?;
    let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes())
        .map_err(|error| invalid(&error))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| invalid(&error))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| invalid(&error))?;
    // HTTP/1.1 only: the router is served without HTTP/2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The listener `axum::serve` runs on.
pub struct SimListener {
    connections: mpsc::Receiver<(Connection, SocketAddr)>,
    local: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl SimListener {
    /// Takes over a bound TCP listener, serving `certificate` on TLS.
    pub fn new(tcp: TcpListener, certificate: &ServingCertificate) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let tls = acceptor(certificate)?;
        let (sender, connections) = mpsc::channel(64);
        let acceptor = tokio::spawn(accept_loop(tcp, tls, sender));
        Ok(SimListener { connections, local, acceptor })
    }
}

impl Drop for SimListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn accept_loop(
    tcp: TcpListener,
    tls: TlsAcceptor,
    sender: mpsc::Sender<(Connection, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (tls, sender) = (tls.clone(), sender.clone());
        tokio::spawn(async move {
            let mut first = [0u8; 1];
            let secure =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
                    Ok(Ok(1)) => first[0] == 0x16,
                    _ => return,
                };
            let connection = if secure {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                    Ok(Ok(stream)) => Connection::Tls(Box::new(stream)),
                    Ok(Err(error)) => {
                        tracing::debug!(%error, %peer, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                }
            } else {
                Connection::Plain(stream)
            };
            let _ = sender.send((connection, peer)).await;
        });
    }
}

impl Listener for SimListener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(accepted) => accepted,
            // The accept loop is gone: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
