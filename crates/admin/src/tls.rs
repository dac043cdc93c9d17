//! HTTPS for the admin API: the rustls server configuration from PEM files, with the `ring`
//! provider kube's client uses too. The handshakes themselves run in [`crate::serve`].

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

/// Why the certificate or key cannot be used.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read the admin TLS certificate {path}")]
    Certificate {
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("the admin TLS certificate file {path} holds no certificate")]
    NoCertificate { path: String },
    #[error("cannot read the admin TLS private key {path}")]
    Key {
        path: String,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error(
        "the admin TLS certificate {cert} and key {key} do not make a usable TLS configuration"
    )]
    Config {
        cert: String,
        key: String,
        #[source]
        source: rustls::Error,
    },
}

/// The server configuration from a PEM certificate chain and a PEM private key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_path = cert.display().to_string();
    let key_path = key.display().to_string();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .map_err(|source| TlsError::Certificate { path: cert_path.clone(), source })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert_path });
    }
    let private_key = PrivateKeyDer::from_pem_file(key)
        .map_err(|source| TlsError::Key { path: key_path.clone(), source })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config_error =
        |source| TlsError::Config { cert: cert_path.clone(), key: key_path.clone(), source };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(config_error)?;
    // The server speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(name: &str, cert: &str, key: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("servicerefresh-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        (cert_path, key_path)
    }

    #[test]
    fn a_pem_pair_loads_and_bad_files_say_which_file() {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (cert, key) = files("good", &made.cert.pem(), &made.signing_key.serialize_pem());
        let config = server_config(&cert, &key).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);

        let missing = server_config(Path::new("/nonexistent/tls.crt"), &key).unwrap_err();
        assert!(
            matches!(missing, TlsError::Certificate { .. })
                && missing.to_string().contains("/nonexistent/tls.crt")
        );
        let (empty, key_only) = files("empty", "", &made.signing_key.serialize_pem());
        assert!(matches!(
            server_config(&empty, &key_only).unwrap_err(),
            TlsError::NoCertificate { .. }
        ));
        let (cert_only, no_key) = files("nokey", &made.cert.pem(), "");
        assert!(matches!(server_config(&cert_only, &no_key).unwrap_err(), TlsError::Key { .. }));
        let (cert, wrong_key) =
            files("mismatch", &made.cert.pem(), &other.signing_key.serialize_pem());
        let mismatch = server_config(&cert, &wrong_key).unwrap_err();
        assert!(matches!(mismatch, TlsError::Config { .. }), "{mismatch:?}");
        for name in ["good", "empty", "nokey", "mismatch"] {
            let _ = std::fs::remove_dir_all(
                std::env::temp_dir()
                    .join(format!("servicerefresh-tls-{}-{name}", std::process::id())),
            );
        }
    }
}
