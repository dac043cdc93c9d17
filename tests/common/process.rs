//! The operator as a separate process (`servicerefresh run`), as a pod runs it: started with
//! its own identity, read through its JSON log lines, scraped over HTTP, and stopped with real
//! signals (SIGTERM, SIGSTOP/SIGCONT, SIGKILL).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::Value;
use servicerefresh_sim::SimHandle;
use tempfile::TempDir;

use super::{NAMESPACE, wait_for};

/// A kubeconfig for `sim` in a fresh temporary directory, removed on drop.
pub struct Kubeconfig {
    dir: TempDir,
    pub path: PathBuf,
}

impl Kubeconfig {
    pub fn for_sim(sim: &SimHandle) -> Self {
        Self::with_yaml(&sim.kubeconfig_yaml(NAMESPACE))
    }

    /// A kubeconfig whose cluster is at `url`.
    pub fn for_server(url: &str) -> Self {
        Self::with_yaml(&format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {url}\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: {NAMESPACE}\ncurrent-context: c\n"
        ))
    }

    /// The temporary directory holding it, for the files of the client that uses it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn with_yaml(yaml: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("servicerefresh-test-")
            .tempdir()
            .expect("temporary directory");
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, yaml).expect("kubeconfig written");
        Self { dir, path }
    }
}

/// Flags of a replica with leader election on a short Lease (3 s, renew deadline 2 s).
pub const SHORT_LEASE: &[&str] = &[
    "--leader-election=true",
    "--lease-namespace",
    NAMESPACE,
    "--lease-duration",
    "3s",
    "--lease-renew-deadline",
    "2s",
];

/// `servicerefresh run` in its own process.
pub struct OperatorProcess {
    pub identity: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    exited: Option<ExitStatus>,
}

impl OperatorProcess {
    /// Starts `servicerefresh --log-format json run --kubeconfig PATH --metrics-listen
    /// 127.0.0.1:0 ARGS...` with `POD_NAME=identity`.
    pub fn spawn(kubeconfig: &Path, identity: &str, args: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_servicerefresh"));
        command
            .args(["--log-format", "json", "run", "--kubeconfig"])
            .arg(kubeconfig)
            .args(["--metrics-listen", "127.0.0.1:0", "--retry-seconds", "1"])
            .args(args)
            .env("POD_NAME", identity)
            .env_remove("POD_NAMESPACE")
            .env_remove("SERVICEREFRESH_KUBECONFIG")
            .env("RUST_LOG", "info");
        Self::spawn_command(command, identity)
    }

    /// Starts `servicerefresh ARGS...` exactly as given (a pod's command line), with
    /// `POD_NAME=identity` and the environment `env`; nothing else of the test's environment
    /// that the operator reads (KUBECONFIG, POD_NAMESPACE, RUST_LOG, ...) is passed on.
    pub fn spawn_args(identity: &str, args: &[String], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_servicerefresh"));
        command
            .args(args)
            .env("POD_NAME", identity)
            .env_remove("POD_NAMESPACE")
            .env_remove("KUBECONFIG")
            .env_remove("SERVICEREFRESH_KUBECONFIG")
            .env_remove("RUST_LOG")
            .envs(env.iter().copied());
        Self::spawn_command(command, identity)
    }

    fn spawn_command(mut command: Command, identity: &str) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the operator binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = lines.clone();
        let name = identity.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("SERVICEREFRESH_TEST_ECHO").is_some() {
                    eprintln!("[{name}] {line}");
                }
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        Self { identity: identity.to_owned(), child, lines, exited: None }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident set size in KiB (`VmRSS` in /proc/PID/status), while it runs (Linux).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Whether it has exited (without waiting).
    pub fn has_exited(&mut self) -> bool {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited.is_some()
    }

    /// Every line it wrote to standard error so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Its JSON log lines whose `message` is `message`.
    pub fn logged(&self, message: &str) -> Vec<Value> {
        self.lines()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["message"] == message)
            .collect()
    }

    /// Waits for a JSON log line with this `message`.
    pub async fn wait_for_log(&self, message: &str, deadline: Duration) -> Value {
        wait_for(deadline, &format!("{} to log {message:?}", self.identity), || async {
            self.logged(message).into_iter().next()
        })
        .await
    }

    /// The address of its /metrics listener, from its log.
    pub async fn metrics_address(&self) -> SocketAddr {
        let line = self
            .wait_for_log("serving /metrics, /healthz and /readyz", Duration::from_secs(30))
            .await;
        line["address"].as_str().and_then(|a| a.parse().ok()).expect("a listen address")
    }

    /// Sends a signal (`TERM`, `STOP`, `CONT`, `INT`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", self.pid());
    }

    /// SIGKILL, like a node dying: nothing runs after it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        self.exited = self.child.wait().ok();
    }

    /// Waits for it to exit.
    pub async fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        if let Some(status) = self.exited {
            return status;
        }
        let child = &mut self.child;
        let identity = self.identity.clone();
        let status = wait_for(deadline, &format!("{identity} to exit"), || {
            let status = child.try_wait().ok().flatten();
            async move { status }
        })
        .await;
        self.exited = Some(status);
        status
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if self.exited.is_none() {
            // SIGKILL ends it even while stopped (SIGSTOP): no process outlives its test.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// GET `url` over plain HTTP: the status code and the body.
pub async fn http_get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// The holder of the leader Lease `servicerefresh` in the test namespace, if any.
pub async fn lease_holder(client: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    leases
        .get_opt("servicerefresh")
        .await
        .ok()
        .flatten()
        .and_then(|lease| lease.spec)
        .and_then(|spec| spec.holder_identity)
        .filter(|holder| !holder.is_empty())
}
