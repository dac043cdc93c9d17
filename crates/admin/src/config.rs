//! The admin API's flags (`servicerefresh run --admin-*`) and the settings they make: the
//! listen address, the ServiceRefresh that `refreshAllServices` runs, the URL prefix and the
//! external URL, the transport (HTTPS with a certificate, or plain HTTP only when explicitly
//! asked for), and the connection limits. Every combination that cannot work is refused here,
//! at start-up, with a message saying what to pass instead.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

/// ArcGIS Enterprise's admin context root, the default URL prefix.
pub const DEFAULT_CONTEXT_ROOT: &str = "/arcgis/admin";
/// Default of `--admin-header-read-timeout`.
pub const DEFAULT_HEADER_READ_TIMEOUT: &str = "10s";
/// Default of `--admin-idle-timeout`.
pub const DEFAULT_IDLE_TIMEOUT: &str = "60s";
/// Default of `--admin-max-connections`: with the ~30 KiB a held connection costs, about
/// 15 MiB at the cap, well inside the chart's 128Mi memory limit.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 512;
/// Default of `--admin-max-connections-per-client`: room for a proxy's connection pool or a
/// few browsers behind one NAT address, far below the total.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: u32 = 64;

/// Flags of the admin API, flattened into `servicerefresh run`.
#[derive(clap::Args, Clone, Debug)]
pub struct AdminArgs {
    /// Serve the ArcGIS-compatible job API (POST <root>/services/refreshAllServices,
    /// <root>/jobs/<jobid>) on this address, e.g. 0.0.0.0:8443. Off by default.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// The ServiceRefresh (NAMESPACE/NAME) that refreshAllServices runs. Required with
    /// --admin-listen.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub admin_target: Option<String>,
    /// URL prefix of the job API, like ArcGIS Enterprise's context root.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONTEXT_ROOT)]
    pub admin_context_root: String,
    /// PEM certificate chain of the HTTPS listener.
    #[arg(long, value_name = "FILE")]
    pub admin_tls_cert: Option<PathBuf>,
    /// PEM private key of the HTTPS listener (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE")]
    pub admin_tls_key: Option<PathBuf>,
    /// Serve the job API over plain HTTP instead of HTTPS. Tokens then cross the network in
    /// clear text: only for a listener on loopback or behind a TLS-terminating proxy.
    #[arg(long)]
    pub admin_plain_http: bool,
    /// The URL clients reach the context root at, e.g. https://gis.example.com/arcgis/admin:
    /// the base of the absolute `jobsUrl` answers and the only origin whose browser posts are
    /// accepted. Without it, `jobsUrl` is relative to the request and posts must come from
    /// the Host they were sent to.
    #[arg(long, value_name = "URL")]
    pub admin_external_url: Option<String>,
    /// How long a client may take from connecting to the end of its request headers (TLS
    /// handshake included), and to send a form body; also how long the headers of each later
    /// request on a kept-alive connection may take.
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_HEADER_READ_TIMEOUT, value_parser = parse_duration)]
    pub admin_header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request before it is closed.
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_IDLE_TIMEOUT, value_parser = parse_duration)]
    pub admin_idle_timeout: Duration,
    /// Connections the job API holds at once; further ones are closed at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..))]
    pub admin_max_connections: u32,
    /// Connections one client address may hold at once; further ones are closed at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_CLIENT, value_parser = clap::value_parser!(u32).range(1..))]
    pub admin_max_connections_per_client: u32,
}

impl Default for AdminArgs {
    fn default() -> Self {
        Self {
            admin_listen: None,
            admin_target: None,
            admin_context_root: DEFAULT_CONTEXT_ROOT.to_owned(),
            admin_tls_cert: None,
            admin_tls_key: None,
            admin_plain_http: false,
            admin_external_url: None,
            admin_header_read_timeout: ConnectionLimits::default().header_read_timeout,
            admin_idle_timeout: ConnectionLimits::default().idle_timeout,
            admin_max_connections: DEFAULT_MAX_CONNECTIONS,
            admin_max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        }
    }
}

/// A duration such as `10s`, `2m` or `1m30s`, at least one second.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration: jiff::SignedDuration = text
        .parse()
        .map_err(|error| format!("{text:?} is not a duration such as 10s or 2m: {error}"))?;
    let duration =
        Duration::try_from(duration).map_err(|_| format!("{text:?} must not be negative"))?;
    if duration < Duration::from_secs(1) {
        return Err(format!("{text:?} is shorter than one second"));
    }
    Ok(duration)
}

/// What one connection may cost: how long it may stay without sending a request, and how
/// many the API holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: u32,
    pub max_connections_per_client: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        }
    }
}

/// The ServiceRefresh a job runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetRef {
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for TargetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl TargetRef {
    /// Parses `NAMESPACE/NAME`, each a Kubernetes object name.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let invalid = || ConfigError::Target { value: text.to_owned() };
        let (namespace, name) = text.split_once('/').ok_or_else(invalid)?;
        let valid = |part: &str| {
            !part.is_empty()
                && part.len() <= 253
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                && part.starts_with(|c: char| c.is_ascii_alphanumeric())
                && part.ends_with(|c: char| c.is_ascii_alphanumeric())
        };
        if !valid(namespace) || !valid(name) || namespace.contains('.') {
            return Err(invalid());
        }
        Ok(Self { namespace: namespace.to_owned(), name: name.to_owned() })
    }
}

/// The URL prefix of the API: empty (the API at the server's root) or `/segment[/segment...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextRoot(String);

impl ContextRoot {
    /// Validates a prefix such as `/arcgis/admin`; `/` puts the API at the server's root.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let invalid =
            |reason: &'static str| ConfigError::ContextRoot { value: text.to_owned(), reason };
        if text == "/" {
            return Ok(Self(String::new()));
        }
        if !text.starts_with('/') {
            return Err(invalid("it must start with /"));
        }
        if text.ends_with('/') {
            return Err(invalid("it must not end with /"));
        }
        check_segments(&text[1..]).map_err(invalid)?;
        Ok(Self(text.to_owned()))
    }

    /// The prefix, empty for the server's root.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks the segments of a canonical URL path (without its leading `/`): no empty, `.` or
/// `..` segment, no percent-encoding, only unreserved characters. A path a browser or proxy
/// would rewrite is refused rather than served under two names.
fn check_segments(path: &str) -> Result<(), &'static str> {
    for segment in path.split('/') {
        match segment {
            "" => return Err("it must not have empty segments (//)"),
            "." | ".." => return Err("it must not have '.' or '..' segments"),
            _ if segment.contains('%') => return Err("it must not be percent-encoded"),
            _ if !segment.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)) => {
                return Err("each segment must be letters, digits, '-', '.', '_' or '~'");
            }
            _ => {}
        }
    }
    Ok(())
}

/// The URL clients reach the context root at, without a trailing slash, e.g.
/// `https://gis.example.com/arcgis/admin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalUrl {
    base: String,
    origin: String,
}

impl ExternalUrl {
    /// Parses an absolute `http` or `https` URL with a host, no user, query or fragment, and
    /// a canonical path.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let invalid =
            |reason: &'static str| ConfigError::ExternalUrl { value: text.to_owned(), reason };
        let trimmed = text.strip_suffix('/').unwrap_or(text);
        if trimmed.contains(['?', '#']) {
            return Err(invalid("it must not have a query or a fragment"));
        }
        let uri: http::Uri = trimmed.parse().map_err(|_| invalid("it is not a URL"))?;
        let scheme = match uri.scheme_str() {
            Some(scheme @ ("http" | "https")) => scheme,
            _ => return Err(invalid("it must start with https:// or http://")),
        };
        let authority = uri.authority().ok_or_else(|| invalid("it must name a host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("it must not carry a user name"));
        }
        let path = uri.path();
        if path != "/" && !path.is_empty() {
            check_segments(&path[1..]).map_err(invalid)?;
        }
        let origin = format!("{scheme}://{}", authority.as_str().to_ascii_lowercase());
        let path = if path == "/" { "" } else { path };
        Ok(Self { base: format!("{origin}{path}"), origin })
    }

    /// The URL of the context root, e.g. `https://gis.example.com/arcgis/admin`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `scheme://host[:port]`, lower-case, as browsers send it in `Origin`.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl Default for ContextRoot {
    fn default() -> Self {
        Self(DEFAULT_CONTEXT_ROOT.to_owned())
    }
}

/// How the listener talks to clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS with this certificate chain and key (PEM files).
    Tls { cert: PathBuf, key: PathBuf },
    /// Plain HTTP, only with `--admin-plain-http`.
    PlainHttp,
}

impl Transport {
    /// The URL scheme clients use.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Tls { .. } => "https",
            Self::PlainHttp => "http",
        }
    }
}

/// Everything the admin API needs from the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    pub target: TargetRef,
    pub context_root: ContextRoot,
    pub transport: Transport,
    pub external_url: Option<ExternalUrl>,
    pub limits: ConnectionLimits,
}

impl AdminSettings {
    /// Settings for `target` on `listen` with `transport`, everything else by default.
    pub fn new(listen: SocketAddr, target: TargetRef, transport: Transport) -> Self {
        Self {
            listen,
            target,
            context_root: ContextRoot::default(),
            transport,
            external_url: None,
            limits: ConnectionLimits::default(),
        }
    }
}

/// A combination of admin flags that cannot work.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "--admin-listen needs --admin-target NAMESPACE/NAME: the ServiceRefresh that refreshAllServices runs"
    )]
    MissingTarget,
    #[error("--admin-target {value:?} is not NAMESPACE/NAME (e.g. arcgis/refresh-all)")]
    Target { value: String },
    #[error(
        "--admin-context-root {value:?} is not a URL path prefix: {reason} (e.g. /arcgis/admin)"
    )]
    ContextRoot { value: String, reason: &'static str },
    #[error(
        "--admin-external-url {value:?} is not usable: {reason} (e.g. https://gis.example.com/arcgis/admin)"
    )]
    ExternalUrl { value: String, reason: &'static str },
    #[error(
        "the admin API serves HTTPS: pass --admin-tls-cert and --admin-tls-key (PEM files), or \
         --admin-plain-http to serve plain HTTP (tokens then cross the network unencrypted)"
    )]
    NoTransport,
    #[error("--admin-tls-cert needs --admin-tls-key, and --admin-tls-key needs --admin-tls-cert")]
    HalfTls,
    #[error(
        "--admin-plain-http contradicts --admin-tls-cert/--admin-tls-key: choose HTTPS or plain HTTP"
    )]
    BothTransports,
    #[error("{flag} is only used with --admin-listen ADDR, which is not set")]
    WithoutListen { flag: &'static str },
}

impl AdminArgs {
    /// The settings, or `None` when the admin API is off.
    pub fn settings(&self) -> Result<Option<AdminSettings>, ConfigError> {
        let Some(listen) = self.admin_listen else {
            let stray = [
                ("--admin-target", self.admin_target.is_some()),
                ("--admin-tls-cert", self.admin_tls_cert.is_some()),
                ("--admin-tls-key", self.admin_tls_key.is_some()),
                ("--admin-plain-http", self.admin_plain_http),
                ("--admin-external-url", self.admin_external_url.is_some()),
            ];
            return match stray.into_iter().find(|(_, given)| *given) {
                Some((flag, _)) => Err(ConfigError::WithoutListen { flag }),
                None => Ok(None),
            };
        };
        let target =
            TargetRef::parse(self.admin_target.as_deref().ok_or(ConfigError::MissingTarget)?)?;
        let context_root = ContextRoot::parse(&self.admin_context_root)?;
        let transport = match (&self.admin_tls_cert, &self.admin_tls_key, self.admin_plain_http) {
            (Some(_), _, true) | (_, Some(_), true) => return Err(ConfigError::BothTransports),
            (Some(cert), Some(key), false) => {
                Transport::Tls { cert: cert.clone(), key: key.clone() }
            }
            (Some(_), None, false) | (None, Some(_), false) => return Err(ConfigError::HalfTls),
            (None, None, true) => Transport::PlainHttp,
            (None, None, false) => return Err(ConfigError::NoTransport),
        };
        let external_url =
            self.admin_external_url.as_deref().map(ExternalUrl::parse).transpose()?;
        let limits = ConnectionLimits {
            header_read_timeout: self.admin_header_read_timeout,
            idle_timeout: self.admin_idle_timeout,
            max_connections: self.admin_max_connections,
            max_connections_per_client: self.admin_max_connections_per_client,
        };
        Ok(Some(AdminSettings { listen, target, context_root, transport, external_url, limits }))
    }
}

#[cfg(test)]
mod tests;
