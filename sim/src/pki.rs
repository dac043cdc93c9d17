//! The cluster's certificate authority, as kubeadm makes one: a CA generated
//! when the sim starts (its key lives only in memory and dies with the sim),
//! the API server's serving certificate signed by it, and serving
//! certificates it issues on request for other servers (the operator's admin
//! API), so that clients trusting the one CA file trust them all.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// The names the API server's certificate is valid for: loopback, and the
/// in-cluster names of the `kubernetes` Service (kubeadm's list).
const API_SERVER_DNS_NAMES: [&str; 5] = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused the parameters or failed to sign.
    #[error("generating a certificate: {0}")]
    Generate(#[source] rcgen::Error),
    /// A subject alternative name that is neither an IP address nor a DNS name.
    #[error("{name:?} is not a valid DNS name for a certificate: {source}")]
    Name {
        name: String,
        #[source]
        source: rcgen::Error,
    },
}

/// A serving certificate (with the CA after it, as servers send the chain)
/// and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingCertificate {
    /// The certificate, then the CA certificate.
    pub chain_pem: String,
    /// The PKCS#8 private key.
    pub key_pem: String,
}

/// The cluster CA and the API server's certificate.
pub struct ClusterPki {
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_pem: String,
    api_server: ServingCertificate,
}

impl std::fmt::Debug for ClusterPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPki").finish_non_exhaustive()
    }
}

impl ClusterPki {
    /// A new CA (`CN=kubernetes`, as kubeadm names it) and the API server's
    /// certificate for loopback and the `kubernetes` Service's names.
    pub fn generate() -> Result<Self, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "kubernetes");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyCertSign,
        ];
        let key = KeyPair::generate().map_err(PkiError::Generate)?;
        let ca = CertifiedIssuer::self_signed(params, key).map_err(PkiError::Generate)?;
        let ca_pem = ca.pem();
        let mut pki = ClusterPki {
            ca,
            ca_pem,
            api_server: ServingCertificate { chain_pem: String::new(), key_pem: String::new() },
        };
        let names: Vec<String> = API_SERVER_DNS_NAMES.iter().map(|name| name.to_string()).collect();
        let ips = [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
        pki.api_server = pki.issue("kube-apiserver", &names, &ips)?;
        Ok(pki)
    }

    /// The CA certificate (PEM), what clients trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The API server's serving certificate.
    pub fn api_server(&self) -> &ServingCertificate {
        &self.api_server
    }

    /// A serving certificate signed by the CA, for `dns_names` and `ips`
    /// (the first DNS name, or the first IP, as its common name).
    pub fn issue(
        &self,
        common_name: &str,
        dns_names: &[String],
        ips: &[IpAddr],
    ) -> Result<ServingCertificate, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, common_name);
        for name in dns_names {
            let dns = name
                .clone()
                .try_into()
                .map_err(|source| PkiError::Name { name: name.clone(), source })?;
            params.subject_alt_names.push(SanType::DnsName(dns));
        }
        params.subject_alt_names.extend(ips.iter().copied().map(SanType::IpAddress));
        params.key_usages =
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(PkiError::Generate)?;
        let certificate = params.signed_by(&key, &self.ca).map_err(PkiError::Generate)?;
        Ok(ServingCertificate {
            chain_pem: format!("{}{}", certificate.pem(), self.ca_pem),
            key_pem: key.serialize_pem(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_name_what_was_asked_and_chain_to_the_ca() {
        let pki = ClusterPki::generate().unwrap();
        assert!(pki.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let issued = pki
            .issue(
                "servicerefresh-admin",
                &["servicerefresh-admin.servicerefresh-system.svc".into()],
                &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            )
            .unwrap();
        assert_eq!(issued.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(issued.chain_pem.ends_with(pki.ca_pem()));
        assert!(issued.key_pem.contains("PRIVATE KEY"));
        let refused = pki.issue("x", &["nämé.example".into()], &[]);
        assert!(matches!(refused, Err(PkiError::Name { .. })), "{refused:?}");
    }
}
