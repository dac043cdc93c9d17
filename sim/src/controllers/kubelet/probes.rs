//! The kubelet's probes of a running container: `httpGet` (against the pod
//! IP unless `host` says otherwise, success for 200-399, HTTPS without
//! verifying the certificate, `kube-probe/<version>` as the User-Agent),
//! `tcpSocket` (a connection) and `exec` (a command in the container's
//! environment, success for exit 0), each within `timeoutSeconds`; and the
//! thresholds that turn single results into the probe's verdict
//! (`successThreshold`, `failureThreshold`, with the defaults of the API).
//! `grpc` probes are not run: they count as failures. A prober task runs one
//! probe of a running container on its period and reports each change of
//! its verdict.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::backoff::go_duration;
use crate::pod_logs::ContainerLog;
use crate::runtime::{Launch, ProcessLabels};
use crate::state::SimState;

/// The User-Agent of the kubelet's HTTP probes.
const USER_AGENT: &str = "kube-probe/1.32";

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Startup,
    Readiness,
    Liveness,
}

impl ProbeKind {
    /// The container field.
    pub fn field(self) -> &'static str {
        match self {
            ProbeKind::Startup => "startupProbe",
            ProbeKind::Readiness => "readinessProbe",
            ProbeKind::Liveness => "livenessProbe",
        }
    }

    /// The verdict before the first result: readiness and startup fail,
    /// liveness passes.
    pub fn initial(self) -> bool {
        self == ProbeKind::Liveness
    }
}

/// A probe's timing and thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    /// From the probe's fields with the API's defaults (period 10 s, timeout
    /// 1 s, thresholds 1 and 3).
    pub fn of(probe: &Value) -> Self {
        let seconds = |key: &str, default: u64| {
            Duration::from_secs(probe.get(key).and_then(Value::as_u64).unwrap_or(default))
        };
        let count = |key: &str, default: u32| {
            probe
                .get(key)
                .and_then(Value::as_u64)
                .and_then(|count| u32::try_from(count).ok())
                .filter(|count| *count > 0)
                .unwrap_or(default)
        };
        Timing {
            initial_delay: seconds("initialDelaySeconds", 0),
            period: seconds("periodSeconds", 10).max(Duration::from_secs(1)),
            timeout: seconds("timeoutSeconds", 1).max(Duration::from_secs(1)),
            success_threshold: count("successThreshold", 1),
            failure_threshold: count("failureThreshold", 3),
        }
    }
}

/// Consecutive results, and the verdict they make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub passing: bool,
    successes: u32,
    failures: u32,
}

impl Verdict {
    pub fn new(kind: ProbeKind) -> Self {
        Verdict { passing: kind.initial(), successes: 0, failures: 0 }
    }

    /// Records one result; true when the verdict changed.
    pub fn record(&mut self, ok: bool, timing: &Timing) -> bool {
        if ok {
            self.failures = 0;
            self.successes += 1;
            if !self.passing && self.successes >= timing.success_threshold {
                self.passing = true;
                return true;
            }
        } else {
            self.successes = 0;
            self.failures += 1;
            if self.passing && self.failures >= timing.failure_threshold {
                self.passing = false;
                return true;
            }
        }
        false
    }
}

/// Where a probe looks: the pod's IP and the container's named ports.
#[derive(Debug, Clone)]
pub struct Target {
    pub pod_ip: String,
    pub container: Value,
}

impl Target {
    /// A probe's `port`: a number, or the name of a container port.
    fn port(&self, port: Option<&Value>) -> Result<u16, String> {
        match port {
            Some(Value::Number(number)) => number
                .as_u64()
                .and_then(|port| u16::try_from(port).ok())
                .ok_or_else(|| format!("invalid port number: {number}")),
            Some(Value::String(name)) => {
                if let Ok(number) = name.parse::<u16>() {
                    return Ok(number);
                }
                self.container
                    .get("ports")
                    .and_then(Value::as_array)
                    .and_then(|ports| ports.iter().find(|port| port["name"] == name.as_str()))
                    .and_then(|port| port.get("containerPort").and_then(Value::as_u64))
                    .and_then(|port| u16::try_from(port).ok())
                    .ok_or_else(|| {
                        format!(
                            "couldn't find port: {name} in {}",
                            self.container["name"].as_str().unwrap_or("")
                        )
                    })
            }
            _ => Err("missing port".into()),
        }
    }

    fn host(&self, action: &Value) -> String {
        action
            .get("host")
            .and_then(Value::as_str)
            .filter(|host| !host.is_empty())
            .unwrap_or(&self.pod_ip)
            .to_string()
    }
}

/// Runs one probe; the failure's message (as the kubelet's `Unhealthy`
/// events word it) when it fails.
pub async fn probe_once(
    probe: &Value,
    target: &Target,
    timeout: Duration,
    exec: impl AsyncFnOnce(Vec<String>, Duration) -> Result<i32, String>,
) -> Result<(), String> {
    if let Some(action) = probe.get("httpGet") {
        return tokio::time::timeout(timeout, http_get(action, target))
            .await
            .unwrap_or_else(|_| {
                Err("Get: context deadline exceeded (Client.Timeout exceeded while awaiting headers)".into())
            });
    }
    if let Some(action) = probe.get("tcpSocket") {
        let port = target.port(action.get("port"))?;
        let address = format!("{}:{port}", target.host(action));
        return match tokio::time::timeout(timeout, TcpStream::connect(&address)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("dial tcp {address}: connect: {error}")),
            Err(_) => Err(format!("dial tcp {address}: i/o timeout")),
        };
    }
    if let Some(action) = probe.get("exec") {
        let command: Vec<String> = action
            .get("command")
            .and_then(Value::as_array)
            .map(|words| words.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default();
        return match exec(command, timeout).await? {
            0 => Ok(()),
            code => Err(format!("command failed with exit code {code}")),
        };
    }
    Err("the sim's kubelet does not run grpc probes".into())
}

async fn http_get(action: &Value, target: &Target) -> Result<(), String> {
    let port = target.port(action.get("port"))?;
    let host = target.host(action);
    let path = action.get("path").and_then(Value::as_str).unwrap_or("/");
    let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
    let https = action.get("scheme").and_then(Value::as_str) == Some("HTTPS");
    let scheme = if https { "https" } else { "http" };
    let url = format!("{scheme}://{host}:{port}{path}");
    let stream = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|error| format!("Get \"{url}\": dial tcp {host}:{port}: connect: {error}"))?;
    let mut request = hyper::Request::get(path.as_str())
        .header("Host", format!("{host}:{port}"))
        .header("User-Agent", USER_AGENT)
        .header("Accept", "*/*");
    for header in action.get("httpHeaders").and_then(Value::as_array).into_iter().flatten() {
        if let (Some(name), Some(value)) = (header["name"].as_str(), header["value"].as_str()) {
            request = request.header(name, value);
        }
    }
    let request = request.body(Empty::<Bytes>::new()).map_err(|error| error.to_string())?;
    let code = if https {
        let server_name = ServerName::try_from(host.clone()).map_err(|error| error.to_string())?;
        let stream = tls_connector()
            .connect(server_name, stream)
            .await
            .map_err(|error| format!("Get \"{url}\": {error}"))?;
        send(stream, request).await
    } else {
        send(stream, request).await
    }
    .map_err(|error| format!("Get \"{url}\": {error}"))?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

async fn send(
    stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    request: hyper::Request<Empty<Bytes>>,
) -> Result<u16, String> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| error.to_string())?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(|error| error.to_string());
    driver.abort();
    Ok(response?.status().as_u16())
}

/// The kubelet probes HTTPS without verifying the server's certificate.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_connector() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map(|builder| {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth()
        });
    match config {
        Ok(config) => tokio_rustls::TlsConnector::from(Arc::new(config)),
        // The ring provider supports the default versions; this cannot fail.
        Err(_) => tokio_rustls::TlsConnector::from(Arc::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        )),
    }
}

/// How an exec probe runs a command "in the container".
#[derive(Clone)]
pub struct ExecContext {
    pub sim: Arc<SimState>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub labels: ProcessLabels,
}

impl ExecContext {
    async fn run(&self, command: Vec<String>, timeout: Duration) -> Result<i32, String> {
        let mut words = command.into_iter();
        let program = words.next().ok_or("exec probe without a command")?;
        let launch = Launch {
            program,
            args: words.collect(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            labels: self.labels.clone(),
            log: ContainerLog::detached(),
        };
        let mut process =
            self.sim.runtime.start(launch).await.map_err(|error| error.to_string())?;
        match tokio::time::timeout(timeout, process.wait()).await {
            Ok(exit) => Ok(exit.code),
            Err(_) => Err(format!("command timed out after {}", go_duration(timeout))),
        }
    }
}

/// Runs one probe on its period and sends each change of its verdict (and
/// the first verdict of a startup or readiness probe).
pub async fn prober(
    kind: ProbeKind,
    probe: Value,
    target: Target,
    exec: ExecContext,
    verdicts: mpsc::UnboundedSender<(ProbeKind, bool)>,
) {
    let timing = Timing::of(&probe);
    let mut verdict = Verdict::new(kind);
    tokio::time::sleep(timing.initial_delay).await;
    let mut next = Instant::now();
    loop {
        let result = probe_once(&probe, &target, timing.timeout, async |command, timeout| {
            exec.run(command, timeout).await
        })
        .await;
        if let Err(message) = &result {
            tracing::debug!(?kind, %message, "probe failed");
        }
        if verdict.record(result.is_ok(), &timing)
            && verdicts.send((kind, verdict.passing)).is_err()
        {
            return;
        }
        next += timing.period;
        tokio::time::sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::net::SocketAddr;

    /// The address a probe of `target` would connect to (for messages and tests).
    fn probe_address(target: &Target, action: &Value) -> Option<SocketAddr> {
        let port = target.port(action.get("port")).ok()?;
        format!("{}:{port}", target.host(action)).parse().ok()
    }

    #[test]
    fn thresholds_turn_results_into_a_verdict() {
        let timing = Timing::of(&json!({"successThreshold": 2, "failureThreshold": 2}));
        let mut readiness = Verdict::new(ProbeKind::Readiness);
        assert!(!readiness.passing);
        assert!(!readiness.record(true, &timing));
        assert!(readiness.record(true, &timing) && readiness.passing);
        assert!(!readiness.record(false, &timing));
        assert!(!readiness.record(true, &timing), "a success resets the failures");
        assert!(!readiness.record(false, &timing));
        assert!(readiness.record(false, &timing) && !readiness.passing);
        assert!(Verdict::new(ProbeKind::Liveness).passing);
        assert_eq!(Timing::of(&json!({})).period, Duration::from_secs(10));
    }

    #[test]
    fn named_ports_resolve_from_the_container() {
        let target = Target {
            pod_ip: "127.1.2.3".into(),
            container: json!({"name": "app", "ports": [{"name": "metrics", "containerPort": 8080}]}),
        };
        assert_eq!(
            probe_address(&target, &json!({"port": "metrics"})),
            Some("127.1.2.3:8080".parse().unwrap())
        );
        assert_eq!(
            probe_address(&target, &json!({"port": 9090, "host": "127.0.0.1"})),
            Some("127.0.0.1:9090".parse().unwrap())
        );
        assert_eq!(probe_address(&target, &json!({"port": "admin"})), None);
    }
}
