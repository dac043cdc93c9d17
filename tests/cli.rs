//! The `servicerefresh` binary as a user meets it: help text, the CRD printer, and the
//! one-line error when the CRD is not installed.

use std::process::Command;

use servicerefresh_sim::SimConfig;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_servicerefresh"))
}

#[test]
fn crd_subcommand_prints_the_committed_crd() {
    let output = binary().arg("crd").output().expect("binary runs");
    assert!(output.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/servicerefresh.yaml"))
            .expect("committed CRD");
    assert!(
        String::from_utf8_lossy(&output.stdout) == committed,
        "`servicerefresh crd` differs from crds/servicerefresh.yaml: run `cargo run -q -- crd > crds/servicerefresh.yaml`"
    );
}

/// Each option of a clap help text, by its flags (`--kubeconfig`, `-n`), with its
/// description: the text after the signature on the same line (short help), or the lines
/// below it up to the first blank line (long help, which puts defaults and possible values
/// after that blank line).
fn options(help: &str) -> Vec<(Vec<String>, String)> {
    let lines: Vec<&str> = help.lines().collect();
    let is_option = |line: &str| {
        let line = line.trim_start();
        line.starts_with("--")
            || (line.starts_with('-') && line.chars().nth(1).is_some_and(char::is_alphanumeric))
    };
    let mut options = Vec::new();
    for (index, line) in lines.iter().enumerate().filter(|(_, line)| is_option(line)) {
        let line = line.trim();
        let (signature, same_line) = line.split_once("  ").unwrap_or((line, ""));
        let flags = signature
            .split([',', ' ', '='])
            .filter(|word| word.starts_with('-'))
            .map(str::to_owned)
            .collect();
        let below = lines[index + 1..]
            .iter()
            .map(|line| line.trim())
            .take_while(|line| !line.is_empty() && !is_option(line))
            .collect::<Vec<_>>()
            .join(" ");
        let description = if same_line.trim().is_empty() { below } else { same_line.trim().into() };
        options.push((flags, description));
    }
    options
}

#[test]
fn run_help_documents_every_flag() {
    let output = binary().args(["run", "--help"]).output().expect("binary runs");
    assert!(output.status.success(), "run --help exits 0: {output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    let options = options(&help);
    for flag in [
        "--kubeconfig",
        "--watch-namespace",
        "--max-concurrent-runs",
        "--retry-seconds",
        "--log-format",
        "--leader-election",
        "--metrics-listen",
    ] {
        assert!(
            options.iter().any(|(flags, _)| flags.iter().any(|f| f == flag)),
            "{flag} missing:\n{help}"
        );
    }
    assert!(options.len() >= 20, "every option is found: {options:?}");
    assert!(options.iter().any(|(flags, _)| flags.iter().any(|f| f == "--initial-list")));
    assert!(help.contains("[possible values: paged, cached, streaming]"), "{help}");
    for (flags, description) in &options {
        // A description is words, not just a default or a list of values.
        assert!(
            description.split_whitespace().count() >= 3 && !description.starts_with('['),
            "{flags:?} has no description:\n{help}"
        );
    }
}

#[test]
fn an_unknown_way_to_list_is_refused_before_anything_connects() {
    for (args, env) in
        [(vec!["run", "--initial-list=everything"], None), (vec!["run"], Some("everything"))]
    {
        let mut command = binary();
        command.args(&args).env_remove("SERVICEREFRESH_INITIAL_LIST");
        if let Some(value) = env {
            command.env("SERVICEREFRESH_INITIAL_LIST", value);
        }
        let output = command.output().expect("binary runs");
        assert_eq!(output.status.code(), Some(2), "a usage error: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("invalid value 'everything' for '--initial-list")
                && stderr.contains("[possible values: paged, cached, streaming]"),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_the_crd_exits_with_one_clear_line() {
    let sim = servicerefresh_sim::start(SimConfig { deployments: 0, ..SimConfig::default() })
        .await
        .expect("sim starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");

    let output = tokio::task::spawn_blocking(move || {
        binary()
            .args(["run", "--kubeconfig"])
            .arg(&kubeconfig)
            .env("RUST_LOG", "off")
            .output()
            .expect("binary runs")
    })
    .await
    .expect("joined");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line, got:\n{stderr}");
    assert!(lines[0].contains("CRD") && lines[0].contains("kubectl apply"), "{stderr}");
    sim.shutdown().await;
}

/// `servicerefresh sim` started with its files in `dir` and `args`: the child, and what it
/// printed up to its `try:` line.
fn start_sim(dir: &std::path::Path, args: &[&str]) -> (std::process::Child, Vec<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = binary()
        .args(["sim", "--deployments", "2", "--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("servicerefresh sim starts");
    let mut printed = Vec::new();
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    for line in stdout.lines() {
        let line = line.expect("a line");
        let last = line.starts_with("try:");
        printed.push(line);
        if last {
            break;
        }
    }
    (child, printed)
}

/// kubectl with `kubeconfig` and a home in `dir`: its output, or its error output.
fn kubectl(
    dir: &std::path::Path,
    kubeconfig: &std::path::Path,
    args: &[&str],
) -> Result<String, String> {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env("HOME", dir)
        .env("KUBECACHEDIR", dir.join("kube-cache"))
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl is installed (see README)");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_writes_https_kubeconfigs_for_real_identities_and_issues_certificates() {
    let dir = std::env::temp_dir().join(format!("servicerefresh-cli-sim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (mut child, printed) = start_sim(
        &dir,
        &[
            "--kubeconfig-for",
            "tenants/viewer=viewer.kubeconfig",
            "--issue-certificate",
            "tls",
            "--certificate-dns-name",
            "sr-servicerefresh-admin.servicerefresh-system.svc",
        ],
    );
    let text = printed.join("\n");
    let https = printed
        .iter()
        .find_map(|line| line.strip_prefix("HTTPS (authenticated, as a real API server): "))
        .unwrap_or_else(|| panic!("the HTTPS address is printed:\n{text}"));
    assert!(https.starts_with("https://127.0.0.1:"), "{text}");
    for expected in [
        "kubeconfig written to sim.kubeconfig",
        "cluster CA certificate: sim-ca.crt",
        "HTTPS kubeconfig (kubernetes-admin): sim-https.kubeconfig",
        "HTTPS kubeconfig (system:serviceaccount:tenants:viewer): viewer.kubeconfig",
        "serving certificate for localhost, sr-servicerefresh-admin.servicerefresh-system.svc, 127.0.0.1, ::1: tls/tls.crt and tls/tls.key (CA: tls/ca.crt)",
    ] {
        assert!(text.contains(expected), "{expected:?} is printed:\n{text}");
    }

    let whoami = |kubeconfig: &str| {
        kubectl(
            &dir,
            &dir.join(kubeconfig),
            &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
        )
    };
    assert_eq!(whoami("sim-https.kubeconfig").as_deref(), Ok("kubernetes-admin"));
    assert_eq!(whoami("viewer.kubeconfig").as_deref(), Ok("system:serviceaccount:tenants:viewer"));
    let https_config = std::fs::read_to_string(dir.join("sim-https.kubeconfig")).expect("written");
    assert!(
        https_config.contains(&format!("server: {https}"))
            && https_config.contains("certificate-authority-data:")
    );
    let refused =
        kubectl(&dir, &dir.join("viewer.kubeconfig"), &["get", "deployments", "-n", "arcgis"]);
    let refused = refused.expect_err("RBAC gives the ServiceAccount nothing");
    assert!(
        refused.contains("Error from server (Forbidden): deployments.apps is forbidden: User \"system:serviceaccount:tenants:viewer\" cannot list resource \"deployments\" in API group \"apps\" in the namespace \"arcgis\""),
        "{refused}"
    );
    let admin = kubectl(
        &dir,
        &dir.join("sim-https.kubeconfig"),
        &["get", "deployments", "-n", "arcgis", "-o", "name"],
    );
    assert_eq!(admin.map(|names| names.lines().count()), Ok(2));

    // The certificate serves HTTPS that curl trusts with the CA file, by every name it has.
    let tls = dir.join("tls");
    let key = std::fs::metadata(tls.join("tls.key")).expect("the key");
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777, 0o600);
    let (address, server) = serve_tls_once_per_request(&tls).await;
    let port = address.port();
    for (url, resolve) in [
        (format!("https://localhost:{port}/"), None),
        (format!("https://127.0.0.1:{port}/"), None),
        (
            format!("https://sr-servicerefresh-admin.servicerefresh-system.svc:{port}/"),
            Some(format!("sr-servicerefresh-admin.servicerefresh-system.svc:{port}:127.0.0.1")),
        ),
    ] {
        let mut curl = tokio::process::Command::new("curl");
        curl.args(["-sS", "--fail", "--cacert"]).arg(tls.join("ca.crt")).arg(&url);
        if let Some(resolve) = resolve {
            curl.args(["--resolve", &resolve]);
        }
        let output = curl.output().await.expect("curl runs");
        assert!(output.status.success(), "{url}: {}", String::from_utf8_lossy(&output.stderr));
        assert_eq!(String::from_utf8_lossy(&output.stdout), "ok");
    }
    server.abort();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A loopback HTTPS server with `dir`'s tls.crt and tls.key that answers `ok` to every
/// connection.
async fn serve_tls_once_per_request(
    dir: &std::path::Path,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("tls.crt"))
        .expect("tls.crt")
        .collect::<Result<_, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(dir.join("tls.key")).expect("tls.key");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("the issued certificate and key match");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else { return };
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (address, server)
}
