//! The admin API's flags (`servicerefresh run --admin-*`) and the settings they make: the
//! listen address, the ServiceRefresh that `refreshAllServices` runs, the URL prefix, and the
//! transport (HTTPS with a certificate, or plain HTTP only when explicitly asked for). Every
//! combination that cannot work is refused here, at start-up, with a message saying what to
//! pass instead.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

/// ArcGIS Enterprise's admin context root, the default URL prefix.
pub const DEFAULT_CONTEXT_ROOT: &str = "/arcgis/admin";

/// Flags of the admin API, flattened into `servicerefresh run`.
#[derive(clap::Args, Clone, Debug, Default)]
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
        let segment_ok = |segment: &str| {
            !segment.is_empty()
                && segment.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
        };
        if !text[1..].split('/').all(segment_ok) {
            return Err(invalid("each segment must be letters, digits, '-', '.', '_' or '~'"));
        }
        Ok(Self(text.to_owned()))
    }

    /// The prefix, empty for the server's root.
    pub fn as_str(&self) -> &str {
        &self.0
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
        Ok(Some(AdminSettings { listen, target, context_root, transport }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(flags: &[&str]) -> Result<AdminArgs, clap::Error> {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            admin: AdminArgs,
        }
        use clap::Parser;
        Wrapper::try_parse_from(std::iter::once("run").chain(flags.iter().copied()))
            .map(|w| w.admin)
    }

    #[test]
    fn off_by_default_and_https_when_given_a_certificate() {
        assert_eq!(args(&[]).unwrap().settings(), Ok(None));
        let settings = args(&[
            "--admin-listen=0.0.0.0:8443",
            "--admin-target=arcgis/refresh-all",
            "--admin-tls-cert=/tls/tls.crt",
            "--admin-tls-key=/tls/tls.key",
        ])
        .unwrap()
        .settings()
        .unwrap()
        .unwrap();
        assert_eq!(settings.target.to_string(), "arcgis/refresh-all");
        assert_eq!(settings.context_root.as_str(), "/arcgis/admin");
        assert_eq!(settings.transport.scheme(), "https");
    }

    #[test]
    fn plain_http_only_when_asked_and_never_with_a_certificate() {
        let base = ["--admin-listen=127.0.0.1:0", "--admin-target=arcgis/x"];
        assert_eq!(args(&base).unwrap().settings(), Err(ConfigError::NoTransport));
        let plain = args(&[base[0], base[1], "--admin-plain-http"]).unwrap().settings().unwrap();
        assert_eq!(plain.unwrap().transport, Transport::PlainHttp);
        let both = args(&[
            base[0],
            base[1],
            "--admin-plain-http",
            "--admin-tls-cert=c",
            "--admin-tls-key=k",
        ]);
        assert_eq!(both.unwrap().settings(), Err(ConfigError::BothTransports));
        let half = args(&[base[0], base[1], "--admin-tls-cert=c"]);
        assert_eq!(half.unwrap().settings(), Err(ConfigError::HalfTls));
        assert!(ConfigError::NoTransport.to_string().contains("--admin-plain-http"));
    }

    #[test]
    fn target_and_context_root_are_checked() {
        assert!(TargetRef::parse("arcgis/refresh-all").is_ok());
        for bad in ["refresh-all", "arcgis/", "/x", "Arcgis/x", "a/b/c", "a.b/x"] {
            assert!(TargetRef::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ContextRoot::parse("/").unwrap().as_str(), "");
        assert_eq!(ContextRoot::parse("/gis/admin").unwrap().as_str(), "/gis/admin");
        for bad in ["admin", "/admin/", "/a//b", "/a b", "/{x}"] {
            assert!(ContextRoot::parse(bad).is_err(), "{bad}");
        }
        let missing = args(&["--admin-listen=127.0.0.1:0", "--admin-plain-http"]).unwrap();
        assert_eq!(missing.settings(), Err(ConfigError::MissingTarget));
        let stray = args(&["--admin-target=arcgis/x"]).unwrap();
        assert_eq!(stray.settings(), Err(ConfigError::WithoutListen { flag: "--admin-target" }));
    }
}
