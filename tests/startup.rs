//! Starting and stopping the operator process: an API server that accepts connections and
//! never answers, one that refuses them, one that answers 404 to everything, one that refuses
//! the credentials, listen addresses already taken, SIGTERM during the start-up wait, and a
//! second signal during a graceful shutdown that would otherwise take long.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::process::{Kubeconfig, OperatorProcess};
use common::{SimCluster, wait_for};
use serde_json::{Value, json};
use servicerefresh_core::crd::{BatchPhase, Phase};
use servicerefresh_sim::{FaultConfig, SimConfig};
use tokio::net::TcpListener;

/// A TCP server that accepts every connection and never answers; counts connections.
async fn hung_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (address, accepted)
}

/// A plain HTTP server answering 404 to everything, as a web server at the wrong URL would.
async fn not_found_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let app = axum::Router::new()
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "404 page not found\n") });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    address
}

/// An address nothing listens on: connections to it are refused.
async fn refusing_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address")
}

/// `servicerefresh --log-format json run --kubeconfig PATH --metrics-listen 127.0.0.1:0
/// ARGS...` with the default log filter (no RUST_LOG).
fn spawn_json(kubeconfig: &Kubeconfig, identity: &str, args: &[&str]) -> OperatorProcess {
    let mut argv: Vec<String> =
        ["--log-format", "json", "run", "--kubeconfig"].into_iter().map(String::from).collect();
    argv.push(kubeconfig.path.display().to_string());
    argv.extend(["--metrics-listen", "127.0.0.1:0"].map(String::from));
    argv.extend(args.iter().map(|arg| (*arg).to_owned()));
    OperatorProcess::spawn_args(identity, &argv, &[])
}

/// Every line it wrote, parsed; a line that is not JSON fails the test.
fn json_lines(operator: &OperatorProcess) -> Vec<Value> {
    operator
        .lines()
        .iter()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a JSON line: {line}"))
        })
        .collect()
}

fn errors(operator: &OperatorProcess) -> Vec<Value> {
    operator
        .lines()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["level"] == "ERROR")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswering_server_is_given_up_on_within_the_startup_timeout_naming_its_url() {
    let (address, _) = hung_server().await;
    let url = format!("http://{address}/");
    let kubeconfig = Kubeconfig::for_server(&url);
    let started = Instant::now();
    let mut operator = OperatorProcess::spawn(
        &kubeconfig.path,
        "op-hung",
        &["--leader-election=false", "--startup-timeout", "3s"],
    );
    let status = operator.wait_exit(Duration::from_secs(30)).await;
    let took = started.elapsed();
    assert!(!status.success());
    assert!(took < Duration::from_secs(3 + 5), "gave up after {took:?}");
    let fatal = errors(&operator);
    assert_eq!(fatal.len(), 1, "one line: {:?}", operator.lines());
    let message = fatal[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("cannot reach the Kubernetes API server at {url}")),
        "{message}"
    );
    assert_eq!(fatal[0]["fatal"], true, "JSON log format applies to fatal errors too");
    let causes = fatal[0]["causes"].to_string();
    assert!(causes.contains("no answer within"), "{causes}");

    // The same in text: one `error:` line.
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_servicerefresh"))
            .args(["run", "--kubeconfig"])
            .arg(&kubeconfig.path)
            .args([
                "--leader-election=false",
                "--startup-timeout",
                "2s",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "warn")
            .output()
            .expect("runs")
    })
    .await
    .expect("joined");
    assert!(started.elapsed() < Duration::from_secs(2 + 5));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|line| line.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains(&url) && lines[0].contains("no answer within"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_server_is_retried_for_the_whole_startup_timeout_one_line_per_attempt() {
    let url = format!("http://{}/", refusing_address().await);
    let kubeconfig = Kubeconfig::for_server(&url);
    let mut operator = spawn_json(
        &kubeconfig,
        "op-refused",
        &["--leader-election=false", "--startup-timeout", "5s"],
    );
    let status = operator.wait_exit(Duration::from_secs(60)).await;
    assert!(!status.success());
    let lines = json_lines(&operator);

    // Each failed attempt: one WARN line of the operator's, naming the server and the cause,
    // and none of kube's own.
    let retries: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"].as_str().is_some_and(|m| m.contains("not reachable yet")))
        .collect();
    // Retries after 0.2, 0.6, 1.4 and 3 s, and the last one when the 5 s are up.
    assert!(retries.len() >= 3, "{lines:#?}");
    for retry in &retries {
        assert_eq!(retry["level"], "WARN", "{retry}");
        let message = retry["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(&format!("API server {url} not reachable yet")), "{message}");
        assert!(message.contains("(connection refused)"), "{message}");
        assert_eq!(retry["cause"], "connection refused", "{retry}");
    }
    let (last, earlier) = retries.split_last().expect("retries");
    assert!(last["message"].as_str().unwrap_or_default().contains("; last try in "), "{last}");
    for retry in earlier {
        let message = retry["message"].as_str().unwrap_or_default();
        assert!(message.contains("; retrying in ") && message.contains(", giving up in "));
    }
    let from_kube: Vec<&Value> = lines
        .iter()
        .filter(|line| line["target"].as_str().is_some_and(|t| t.starts_with("kube")))
        .collect();
    assert!(from_kube.is_empty(), "kube's own lines: {from_kube:#?}");

    // Then one fatal line, with the time really spent: the whole timeout.
    let fatal = errors(&operator);
    assert_eq!(fatal.len(), 1, "{lines:#?}");
    let message = fatal[0]["message"].as_str().unwrap_or_default();
    let waited: f64 = message
        .split_once("(gave up after ")
        .and_then(|(_, rest)| rest.strip_suffix("s)"))
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("no time spent in {message:?}"));
    assert!(waited >= 5.0, "gave up after {waited} s of a 5 s start-up timeout: {message}");
    assert_eq!(fatal[0]["causes"][0], "connection refused", "{}", fatal[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_one_readable_line_with_the_code_and_a_hint() {
    let cluster = SimCluster::start(SimConfig::default()).await;
    // The sim's own address, with a token it never issued: 401 to every request.
    let kubeconfig = Kubeconfig::for_server(&cluster.sim.base_url());
    let mut operator = spawn_json(&kubeconfig, "op-401", &[]);
    let status = operator.wait_exit(Duration::from_secs(60)).await;
    assert!(!status.success());
    let fatal = errors(&operator);
    assert_eq!(fatal.len(), 1, "{:#?}", operator.lines());
    let message = fatal[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("refused the operator's credentials (401 Unauthorized)")
            && message.ends_with("; check the ServiceAccount token or kubeconfig"),
        "{message}"
    );
    for line in operator.lines() {
        assert!(!line.contains("Status {") && !line.contains("ListMeta"), "a debug dump: {line}");
    }
    assert_eq!(
        operator.lines().len(),
        2,
        "the listener's line and the error: {:#?}",
        operator.lines()
    );
    cluster.sim.shutdown().await;
}

/// `servicerefresh run ARGS...` against a server that never answers, in text: its standard
/// error once it exited.
async fn run_text(kubeconfig: &Kubeconfig, args: &[String]) -> String {
    let path = kubeconfig.path.clone();
    let args = args.to_vec();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_servicerefresh"))
            .args(["run", "--kubeconfig"])
            .arg(&path)
            .args(&args)
            .env_remove("RUST_LOG")
            .env("POD_NAME", "op-listen")
            .output()
            .expect("runs")
    })
    .await
    .expect("joined");
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_listen_address_names_the_flag_that_changes_it() {
    let (server, _) = hung_server().await;
    let kubeconfig = Kubeconfig::for_server(&format!("http://{server}"));
    let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = taken.local_addr().expect("address");

    let stderr = run_text(&kubeconfig, &["--metrics-listen".into(), address.to_string()]).await;
    let expected = format!(
        "error: cannot listen on {address} for /metrics, /healthz and /readyz (address in use); \
         choose another with --metrics-listen"
    );
    let errors: Vec<&str> = stderr.lines().filter(|line| line.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].starts_with(&expected), "{stderr}");

    let admin = [
        "--metrics-listen",
        "127.0.0.1:0",
        "--admin-listen",
        &address.to_string(),
        "--admin-target",
        "arcgis/fleet",
        "--admin-plain-http",
    ]
    .map(String::from);
    let stderr = run_text(&kubeconfig, &admin).await;
    let expected = format!(
        "error: cannot listen on {address} for the admin API (address in use); choose another \
         with --admin-listen"
    );
    let errors: Vec<&str> = stderr.lines().filter(|line| line.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].starts_with(&expected), "{stderr}");
    drop(taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_answering_404_is_not_a_kubernetes_api_server() {
    let address = not_found_server().await;
    let kubeconfig = Kubeconfig::for_server(&format!("http://{address}"));
    let mut operator =
        OperatorProcess::spawn(&kubeconfig.path, "op-404", &["--leader-election=false"]);
    let status = operator.wait_exit(Duration::from_secs(30)).await;
    assert!(!status.success());
    let fatal = errors(&operator);
    assert_eq!(fatal.len(), 1, "{:?}", operator.lines());
    let message = fatal[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("does not look like a Kubernetes API server"), "{message}");
    assert!(message.contains("404"), "{message}");
    assert!(!message.contains("CRD"), "not a missing CRD: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_the_startup_wait_exits_within_the_shutdown_deadline() {
    let (address, accepted) = hung_server().await;
    let kubeconfig = Kubeconfig::for_server(&format!("http://{address}"));
    let mut operator = OperatorProcess::spawn(
        &kubeconfig.path,
        "op-term",
        &["--leader-election=false", "--startup-timeout", "10m", "--shutdown-timeout", "5s"],
    );
    wait_for(Duration::from_secs(30), "the operator to connect", || async {
        (accepted.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    let signalled = Instant::now();
    operator.signal("TERM");
    let status = operator.wait_exit(Duration::from_secs(30)).await;
    let took = signalled.elapsed();
    assert!(took < Duration::from_secs(5), "exited {took:?} after SIGTERM");
    assert!(status.success(), "a requested stop is a clean exit: {status:?}");
    assert!(!operator.logged("shutting down: finishing reconciles in progress").is_empty());
    assert!(errors(&operator).is_empty(), "{:?}", operator.lines());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_ends_a_slow_graceful_shutdown_at_once() {
    let cluster = SimCluster::start(SimConfig {
        deployments: 20,
        rollout_ms: 300,
        rollout_jitter_ms: 50,
        seed: 3,
        ..SimConfig::default()
    })
    .await;
    let kubeconfig = Kubeconfig::for_sim(&cluster.sim);
    let mut operator = OperatorProcess::spawn(
        &kubeconfig.path,
        "op-slow",
        &["--leader-election=false", "--request-timeout", "2m", "--shutdown-timeout", "2m"],
    );
    cluster.create_refresh("fleet", json!({"selector": {}, "batchSize": 5})).await;
    wait_for(Duration::from_secs(60), "batch 1 to run", || async {
        cluster.status("fleet").await.filter(|s| {
            s.phase == Some(Phase::Running)
                && s.batches.first().is_some_and(|b| b.phase == BatchPhase::Running)
        })
    })
    .await;
    // From now on the API server takes a minute to answer: the next write of the reconcile
    // that a finished rollout triggers hangs, and a graceful shutdown would wait for it.
    let slow_from = cluster.sim.now_ms();
    cluster.sim.set_faults(FaultConfig { latency_ms: 60_000, ..FaultConfig::default() });
    wait_for(Duration::from_secs(60), "a write of the operator to hang", || async {
        cluster
            .sim
            .requests()
            .iter()
            .any(|r| {
                r.at_ms >= slow_from
                    && r.is_write()
                    && r.code.is_none()
                    && r.user_agent.as_deref().is_some_and(|ua| ua.contains("(op-slow)"))
            })
            .then_some(())
    })
    .await;
    operator.signal("TERM");
    operator
        .wait_for_log("shutting down: finishing reconciles in progress", Duration::from_secs(10))
        .await;
    let second = Instant::now();
    operator.signal("TERM");
    let status = operator.wait_exit(Duration::from_secs(30)).await;
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "exited {:?} after the second signal",
        second.elapsed()
    );
    assert_eq!(status.code(), Some(130), "{:?}", operator.lines());
    assert!(!operator.logged("second signal: exiting at once").is_empty());
    cluster.sim.set_faults(FaultConfig::default());
    cluster.sim.shutdown().await;
}
