//! Shared harness of the admin API's end-to-end tests: the simulated cluster and the operator
//! (from `common`), the admin server in-process over HTTPS with a certificate made for the
//! test (rcgen), and an HTTP client trusting exactly that certificate.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use servicerefresh_admin::auth::fake::StaticAuthority;
use servicerefresh_admin::{
    Access, AdminServer, AdminSettings, Authority, ConnectionLimits, TargetRef, Transport,
};
use servicerefresh_operator::controller::{OperatorConfig, RefreshCache};
use servicerefresh_sim::SimConfig;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::common::{NAMESPACE, Operator, SimCluster, wait_for};

/// The ServiceRefresh the API runs.
pub const TARGET: &str = "refresh-all";
/// Tokens of the fake authority: patch and get, get only, nothing.
pub const ADMIN_TOKEN: &str = "admin-token";
pub const READER_TOKEN: &str = "reader-token";
pub const NOBODY_TOKEN: &str = "nobody-token";

/// The fake authority the tests use until the simulated cluster serves TokenReview.
pub fn fake_authority() -> Arc<dyn Authority> {
    Arc::new(
        StaticAuthority::default()
            .user(ADMIN_TOKEN, "alice", &[Access::Read, Access::Write])
            .user(READER_TOKEN, "bob", &[Access::Read])
            .user(NOBODY_TOKEN, "eve", &[]),
    )
}

/// A self-signed certificate for 127.0.0.1 and localhost, written to a fresh directory.
pub struct TestCertificate {
    pub dir: TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub pem: String,
}

impl TestCertificate {
    pub fn new() -> Self {
        let made = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("certificate");
        let dir = tempfile::Builder::new()
            .prefix("servicerefresh-admin-")
            .tempdir()
            .expect("certificate directory");
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        let pem = made.cert.pem();
        std::fs::write(&cert, &pem).expect("write certificate");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
        Self { dir, cert, key, pem }
    }
}

/// A TLS client configuration trusting exactly the certificates of `pem`.
pub fn tls_connector(pem: &str) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(certificate.expect("PEM certificate")).expect("the test certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// The cluster, the operator and the admin API over HTTPS.
pub struct AdminHarness {
    pub cluster: SimCluster,
    pub operator: Option<Operator>,
    /// E.g. `https://127.0.0.1:40123/arcgis/admin`.
    pub base: String,
    pub http: reqwest::Client,
    pub certificate: TestCertificate,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl AdminHarness {
    /// Starts the simulated cluster with `sim`, the operator, and the API with `authority`.
    pub async fn start(sim: SimConfig, authority: Arc<dyn Authority>) -> Self {
        Self::start_with(sim, move |_| authority).await
    }

    /// Like [`start`](Self::start), with the authority made from the cluster's client.
    pub async fn start_with(
        sim: SimConfig,
        authority: impl FnOnce(kube::Client) -> Arc<dyn Authority>,
    ) -> Self {
        Self::start_limited(sim, authority, ConnectionLimits::default()).await
    }

    /// Like [`start_with`](Self::start_with), with these connection limits.
    pub async fn start_limited(
        sim: SimConfig,
        authority: impl FnOnce(kube::Client) -> Arc<dyn Authority>,
        limits: ConnectionLimits,
    ) -> Self {
        let cluster = SimCluster::start(sim).await;
        let authority = authority(cluster.client.clone());
        let cache = RefreshCache::default();
        let operator = Operator::start_with(
            &cluster.client,
            OperatorConfig {
                retry_delay: Duration::from_millis(200),
                refresh_cache: cache.clone(),
                ..Default::default()
            },
        );
        let certificate = TestCertificate::new();
        let mut settings = AdminSettings::new(
            "127.0.0.1:0".parse().expect("address"),
            TargetRef { namespace: NAMESPACE.to_owned(), name: TARGET.to_owned() },
            Transport::Tls { cert: certificate.cert.clone(), key: certificate.key.clone() },
        );
        settings.limits = limits;
        let server = AdminServer::bind(settings, cluster.client.clone(), cache, authority)
            .await
            .expect("the admin API binds");
        let base = server.base_url();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            server
                .serve(async move {
                    let _ = stopped.await;
                })
                .await
                .expect("the admin API serves");
        });
        let http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(certificate.pem.as_bytes()).expect("PEM"),
            )
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        Self {
            cluster,
            operator: Some(operator),
            base,
            http,
            certificate,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// POSTs a form to `path` below the context root and parses the JSON answer.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let response =
            self.http.post(format!("{}{path}", self.base)).form(form).send().await.expect("POST");
        assert_eq!(response.status(), 200, "POST {path}");
        response.json().await.expect("JSON answer")
    }

    /// GETs `path` below the context root with `query` and parses the JSON answer.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let response =
            self.http.get(format!("{}{path}", self.base)).query(query).send().await.expect("GET");
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON answer")
    }

    /// Submits a job with `token` and returns the answer.
    pub async fn submit(&self, token: &str) -> Value {
        self.post("/services/refreshAllServices", &[("f", "json"), ("token", token)]).await
    }

    /// The job `id` as JSON.
    pub async fn job(&self, id: &str) -> Value {
        self.get(&format!("/jobs/{id}"), &[("f", "json"), ("token", READER_TOKEN)]).await
    }

    /// Polls the job until `accept` takes it, failing at the deadline.
    pub async fn wait_job(&self, id: &str, what: &str, accept: impl Fn(&Value) -> bool) -> Value {
        self.wait_job_with(id, READER_TOKEN, what, accept).await
    }

    /// Polls the job with `token` until `accept` takes it, failing at the deadline.
    pub async fn wait_job_with(
        &self,
        id: &str,
        token: &str,
        what: &str,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_for(Duration::from_secs(120), what, || async {
            let job = self.get(&format!("/jobs/{id}"), &[("f", "json"), ("token", token)]).await;
            accept(&job).then_some(job)
        })
        .await
    }

    /// Stops the API and the operator, then the cluster.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("the admin API stops")
                .expect("the admin API did not panic");
        }
        if let Some(operator) = self.operator.take() {
            operator.stop().await;
        }
        self.cluster.sim.shutdown().await;
    }
}

/// The status text of a job.
pub fn status_of(job: &Value) -> &str {
    job["status"].as_str().unwrap_or_default()
}

/// Whether a job has ended: COMPLETED, FAILED or CANCELLED.
pub fn is_final(job: &Value) -> bool {
    matches!(status_of(job), "COMPLETED" | "FAILED" | "CANCELLED")
}

/// A token for ServiceAccount `name`, from the TokenRequest API.
pub async fn service_account_token(client: &kube::Client, name: &str) -> String {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    use kube::api::{Api, PostParams};
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), NAMESPACE);
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("account");
    accounts.create(&PostParams::default(), &account).await.expect("create ServiceAccount");
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let issued = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("TokenRequest");
    issued.status.and_then(|status| status.token).expect("a token")
}

/// Grants ServiceAccount `account` the `verbs` on the target ServiceRefresh.
pub async fn grant(client: &kube::Client, account: &str, verbs: &[&str]) {
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    use kube::api::{Api, PostParams};
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": format!("{account}-jobs")},
        "rules": [{"apiGroups": ["gisops.io"], "resources": ["servicerefreshes"], "resourceNames": [TARGET], "verbs": verbs}],
    }))
    .expect("role");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("{account}-jobs")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": format!("{account}-jobs")},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}],
    }))
    .expect("binding");
    Api::<Role>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &role)
        .await
        .expect("create Role");
    Api::<RoleBinding>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &binding)
        .await
        .expect("create RoleBinding");
}
