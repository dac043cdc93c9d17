//! The CLI (`start --wait`, `status`, `cancel`, and the kubectl-plugin form) as a user runs
//! it: the real binary against the simulated cluster, with the operator running in-process.
//! Each test waits on conditions with deadlines, never on sleeps.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{NAMESPACE, Operator, SimCluster, fleet, wait_for};
use kube::api::Patch;
use serde_json::{Value, json};
use servicerefresh_core::crd::{
    CANCEL_REQUESTED_AT_ANNOTATION, Phase, RUN_REQUESTED_AT_ANNOTATION,
};
use servicerefresh_sim::SimConfig;
use tempfile::TempDir;
use tokio::process::{Child, Command};

const DEADLINE: Duration = Duration::from_secs(90);
const BINARY: &str = env!("CARGO_BIN_EXE_servicerefresh");

/// The generated fleet these tests were written against.
const FLEET_SEED: u64 = 7;

/// A simulated cluster, the operator, and a kubeconfig for the CLI.
struct Env {
    cluster: SimCluster,
    operator: Operator,
    dir: TempDir,
    kubeconfig: PathBuf,
}

impl Env {
    async fn start(config: SimConfig, test: &str) -> Self {
        let cluster = SimCluster::start(config).await;
        let operator = Operator::start(&cluster.client);
        let dir = tempfile::Builder::new()
            .prefix(&format!("servicerefresh-cli-follow-{test}-"))
            .tempdir()
            .expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        cluster.sim.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        Self { cluster, operator, dir, kubeconfig }
    }

    /// The CLI with this cluster's kubeconfig, its output piped (so no terminal).
    fn cli(&self, args: &[&str]) -> Command {
        cli_with(&self.kubeconfig, args)
    }

    async fn run(&self, args: &[&str]) -> Ran {
        Ran::of(self.cli(args).output().await.expect("the CLI runs"))
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.cli(args).spawn().expect("the CLI starts")
    }

    async fn create_and_finish_first_run(&self, name: &str, spec: Value) {
        self.cluster.create_refresh(name, spec).await;
        self.cluster.wait_for_run_end(name, DEADLINE).await;
    }

    fn template_changes(&self, deployment: &str) -> u64 {
        let stats = self.cluster.sim.stats();
        stats.template_changes.get(&format!("{NAMESPACE}/{deployment}")).copied().unwrap_or(0)
            as u64
    }

    async fn assert_each_restarted(&self, times: u64) {
        for name in self.cluster.all_deployment_names().await {
            assert_eq!(self.template_changes(&name), times, "template changes of {name}");
        }
    }

    async fn annotation(&self, name: &str, key: &str) -> Option<String> {
        let refresh = self.cluster.refreshes().get(name).await.ok()?;
        refresh.metadata.annotations?.get(key).cloned()
    }

    async fn patch(&self, name: &str, patch: Value) {
        self.cluster
            .refreshes()
            .patch(name, &Default::default(), &Patch::Merge(patch))
            .await
            .expect("patch ServiceRefresh");
    }

    async fn shutdown(self) {
        self.operator.stop().await;
        self.cluster.sim.shutdown().await;
    }
}

fn cli_with(kubeconfig: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// What a CLI run printed and how it exited.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn of(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}", self.stdout))
    }

    fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "exit code\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout,
            self.stderr
        );
    }
}

async fn wait_for_annotation(env: &Env, name: &str) -> String {
    wait_for(DEADLINE, "the CLI's run request", || {
        env.annotation(name, RUN_REQUESTED_AT_ANNOTATION)
    })
    .await
}

async fn wait_for_phase(env: &Env, name: &str, phase: Phase) {
    wait_for(DEADLINE, &format!("phase {phase:?}"), || async {
        env.cluster.status(name).await.filter(|s| s.phase == Some(phase))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_wait_follows_the_next_run_not_the_ended_one_with_plain_lines_on_a_pipe() {
    let env = Env::start(fleet(6, 0, FLEET_SEED), "next-run").await;
    // Run 1 has ended Succeeded: its Ready condition already holds, which a naive waiter
    // would take for the new run's.
    env.create_and_finish_first_run("r", json!({"selector": {}, "batchSize": 3})).await;
    env.assert_each_restarted(1).await;

    let ran = env.run(&["start", "r", "--wait"]).await;
    ran.assert_code(0);
    env.assert_each_restarted(2).await;
    assert!(
        ran.stdout.starts_with("run 2 (RunRequested) Succeeded"),
        "summary of run 2:\n{}",
        ran.stdout
    );
    let lines: Vec<&str> = ran.stderr.lines().collect();
    for expected in [
        "run 2 (RunRequested) started: 6 Deployments in 2 batches",
        "batch 1/2 started: 3 Deployments",
        "batch 2/2 started: 3 Deployments",
    ] {
        assert!(lines.contains(&expected), "{expected:?} missing from:\n{}", ran.stderr);
    }
    for batch in ["batch 1/2 completed", "batch 2/2 completed"] {
        let line = lines.iter().find(|l| l.starts_with(batch)).unwrap_or_else(|| {
            panic!("{batch:?} missing from:\n{}", ran.stderr);
        });
        assert!(line.ends_with(": 3 ready, 0 failed, 0 skipped"), "{line}");
    }
    assert!(!ran.stderr.contains('\x1b'), "no escapes without a terminal:\n{}", ran.stderr);
    assert!(!ran.stderr.contains('█') && !ran.stderr.contains('░'), "no bars:\n{}", ran.stderr);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_wait_exits_1_and_names_each_failed_service_with_json_on_stdout() {
    let env = Env::start(fleet(6, 2, FLEET_SEED), "failures").await;
    let failing = env.cluster.failing_deployments().await;
    env.create_and_finish_first_run("r", json!({"selector": {}, "batchSize": 3})).await;

    let ran = env.run(&["start", "r", "--wait", "--output", "json"]).await;
    ran.assert_code(1);
    let result = ran.json();
    assert_eq!(result["outcome"], "Failed");
    assert_eq!(result["exitCode"], 1);
    assert_eq!(result["run"]["number"], 2);
    assert_eq!(result["run"]["phase"], "Failed");
    assert_eq!(result["run"]["request"], result["request"]);
    assert_eq!(result["status"]["run"]["number"], 2);
    assert_eq!(result["status"]["phase"], "Failed");
    assert_eq!(result["run"]["totals"]["failed"], 2);
    // The human summary goes to stderr when stdout carries JSON.
    for name in &failing {
        let line = ran.stderr.lines().find(|l| l.contains(name.as_str())).unwrap_or_else(|| {
            panic!("failed service {name} missing from the summary:\n{}", ran.stderr)
        });
        assert!(
            line.contains("Failed") && line.contains("exceeded its progress deadline"),
            "{line}"
        );
    }
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_wait_exits_2_when_the_timeout_passes_first() {
    let config = SimConfig { progress_deadline_seconds: 600, ..fleet(4, 0, FLEET_SEED) };
    let env = Env::start(config, "timeout").await;
    env.create_and_finish_first_run("r", json!({"selector": {}, "batchSize": 2})).await;
    for name in env.cluster.all_deployment_names().await {
        let slow = json!({"metadata": {"annotations": {"sim.gisops.io/rollout-ms": "600000"}}});
        env.cluster
            .deployments()
            .patch(&name, &Default::default(), &Patch::Merge(slow))
            .await
            .expect("slow rollout");
    }

    let started = Instant::now();
    let ran = env.run(&["start", "r", "--wait", "--timeout", "1s"]).await;
    ran.assert_code(2);
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    assert!(ran.stdout.contains("timed out after 1.0s"), "{}", ran.stdout);
    assert!(ran.stdout.contains("run 2 is at batch 1/2"), "{}", ran.stdout);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_during_a_run_is_followed_as_its_follow_up_run() {
    let env = Env::start(fleet(6, 0, FLEET_SEED), "follow-up").await;
    // Run 1 is planned and held before its first batch, so the request meets an active run.
    env.cluster.create_refresh("r", json!({"selector": {}, "batchSize": 3, "suspend": true})).await;
    wait_for_phase(&env, "r", Phase::Suspended).await;

    let cli = env.spawn(&["start", "r", "--wait", "-o", "json"]);
    wait_for_annotation(&env, "r").await;
    env.patch("r", json!({"spec": {"suspend": false}})).await;
    let ran = Ran::of(cli.wait_with_output().await.expect("the CLI ends"));

    ran.assert_code(0);
    let result = ran.json();
    assert_eq!(result["run"]["number"], 2, "{}", ran.stdout);
    assert_eq!(result["outcome"], "Succeeded");
    assert!(ran.stderr.contains("run 1 is active"), "{}", ran.stderr);
    assert!(ran.stderr.contains("follow-up"), "{}", ran.stderr);
    env.assert_each_restarted(2).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_request_by_another_client_is_followed_and_named() {
    let env = Env::start(fleet(4, 0, FLEET_SEED), "superseded").await;
    env.cluster.create_refresh("r", json!({"selector": {}, "batchSize": 2, "suspend": true})).await;
    wait_for_phase(&env, "r", Phase::Suspended).await;

    let cli = env.spawn(&["start", "r", "--wait", "-o", "json"]);
    let ours = wait_for_annotation(&env, "r").await;
    env.patch("r", json!({"metadata": {"annotations": {RUN_REQUESTED_AT_ANNOTATION: "other"}}}))
        .await;
    env.patch("r", json!({"spec": {"suspend": false}})).await;
    let ran = Ran::of(cli.wait_with_output().await.expect("the CLI ends"));

    ran.assert_code(0);
    let result = ran.json();
    assert_eq!(result["request"], ours.as_str());
    assert_eq!(result["run"]["number"], 2);
    assert_eq!(result["run"]["request"], "other", "the run serving the newer request");
    assert!(ran.stderr.contains("another client"), "{}", ran.stderr);
    assert!(ran.stderr.contains("\"other\""), "{}", ran.stderr);
    let status = env.cluster.status("r").await.expect("status");
    assert_eq!(status.history.len(), 2, "two runs: the coalesced requests made one follow-up");
    env.assert_each_restarted(2).await;
    env.shutdown().await;
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_bars_animate_under_a_terminal() {
    assert!(
        std::process::Command::new("script").arg("--version").output().is_ok(),
        "the `script` utility (util-linux) runs the CLI under a pseudo-terminal"
    );
    let env = Env::start(SimConfig { rollout_ms: 400, ..fleet(6, 0, FLEET_SEED) }, "pty").await;
    env.create_and_finish_first_run("r", json!({"selector": {}, "batchSize": 3})).await;

    let words = [BINARY, "start", "r", "--wait", "--kubeconfig", env.kubeconfig.to_str().unwrap()];
    let line = words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ");
    // `script` gives the CLI a terminal on stdin, stdout and stderr; -e passes its exit code on.
    let output = Command::new("script")
        .args(["-q", "-e", "-c", &format!("stty cols 120 rows 40 2>/dev/null; exec {line}")])
        .arg("/dev/null")
        .env_remove("KUBECONFIG")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("script runs");
    let ran = Ran::of(output);
    ran.assert_code(0);
    assert!(ran.stdout.contains('\x1b'), "ANSI escapes on a terminal:\n{:?}", ran.stdout);
    assert!(
        ran.stdout.contains('█') || ran.stdout.contains('░'),
        "bar characters on a terminal:\n{:?}",
        ran.stdout
    );
    assert!(ran.stdout.contains("/6 services"), "the overall bar:\n{:?}", ran.stdout);
    assert!(ran.stdout.contains("run 2 (RunRequested) Succeeded"), "{:?}", ran.stdout);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_api_errors_exit_3_with_one_clear_line() {
    let env = Env::start(fleet(2, 0, FLEET_SEED), "errors").await;
    env.create_and_finish_first_run("r", json!({"selector": {}})).await;
    let server = env.cluster.sim.base_url();
    let one_line = |ran: &Ran| {
        ran.assert_code(3);
        let lines: Vec<&str> = ran.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line:\n{}", ran.stderr);
        lines[0].to_owned()
    };

    let line = one_line(&env.run(&["start", "nope", "--wait"]).await);
    assert!(line.contains("\"nope\" not found") && line.contains(server.as_str()), "{line}");
    let line = one_line(&env.run(&["status", "r", "-n", "elsewhere"]).await);
    assert!(line.contains("\"r\" not found in namespace \"elsewhere\""), "{line}");
    let line = one_line(&env.run(&["cancel", "r", "--context", "nope"]).await);
    assert!(line.contains("context \"nope\""), "{line}");

    // A kubeconfig pointing at a closed port.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    };
    let unreachable = env.dir.path().join("unreachable");
    let config = std::fs::read_to_string(&env.kubeconfig).expect("kubeconfig");
    let config = config.replace(server.trim_start_matches("http://"), &closed.to_string());
    std::fs::write(&unreachable, config).expect("write kubeconfig");
    let ran = Ran::of(cli_with(&unreachable, &["start", "r", "--wait"]).output().await.unwrap());
    let line = one_line(&ran);
    assert!(line.contains("cannot reach") && line.contains(&closed.to_string()), "{line}");

    // A cluster without the CRD.
    let bare = servicerefresh_sim::start(fleet(0, 0, FLEET_SEED)).await.expect("sim starts");
    let bare_config = env.dir.path().join("bare");
    bare.write_kubeconfig(&bare_config).expect("kubeconfig");
    let ran = Ran::of(cli_with(&bare_config, &["start", "r", "--wait"]).output().await.unwrap());
    let line = one_line(&ran);
    assert!(line.contains("CRD") && line.contains("not installed"), "{line}");
    assert!(line.contains(bare.base_url().as_str()), "{line}");
    bare.shutdown().await;

    // Usage errors of the CLI subcommands.
    let ran = env.run(&["start"]).await;
    ran.assert_code(3);
    assert!(ran.stderr.contains("<NAME>"), "{}", ran.stderr);
    let ran = env.run(&["start", "r", "--timeout", "soon", "--wait"]).await;
    ran.assert_code(3);
    env.assert_each_restarted(1).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_the_plan_table_and_cancel_without_an_active_run_says_so() {
    let env = Env::start(fleet(5, 1, FLEET_SEED), "status").await;
    let failing = env.cluster.failing_deployments().await;
    env.create_and_finish_first_run("r", json!({"selector": {}, "batchSize": 2})).await;

    let ran = env.run(&["status", "r"]).await;
    ran.assert_code(0);
    let table = &ran.stdout;
    let cell = |label: &str| {
        table
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{label} missing:\n{table}"))
            .to_owned()
    };
    assert_eq!(cell("ServiceRefresh:"), "arcgis/r");
    assert_eq!(cell("Phase:"), "Failed");
    assert_eq!(cell("Run:"), "1 (Failed)");
    assert_eq!(cell("Reason:"), "Created");
    assert_eq!(cell("Totals:"), "5 services, 5 restarted, 4 ready, 1 failed, 0 skipped");
    let header = table.lines().find(|l| l.starts_with("BATCH")).expect("batch table");
    for column in ["PHASE", "STARTED", "DURATION", "SERVICE", "RESULT", "MESSAGE"] {
        assert!(header.contains(column), "{header}");
    }
    let rows: Vec<&str> = table.lines().skip_while(|l| !l.starts_with("BATCH")).skip(1).collect();
    assert_eq!(rows.len(), 5, "one row per service:\n{table}");
    assert!(rows[0].starts_with("1/3") && rows[0].contains("Completed"), "{table}");
    let failed = rows.iter().find(|r| r.contains(failing[0].as_str())).expect("failing row");
    assert_eq!(failed.find(failing[0].as_str()), header.find("SERVICE"), "aligned:\n{table}");
    assert_eq!(failed.find("Failed"), header.find("RESULT"), "aligned:\n{table}");
    assert!(failed.contains("exceeded its progress deadline"), "{failed}");

    let ran = env.run(&["status", "r", "-o", "json"]).await;
    ran.assert_code(0);
    assert_eq!(ran.json()["phase"], "Failed");

    let ran = env.run(&["cancel", "r"]).await;
    ran.assert_code(0);
    assert!(ran.stdout.contains("no run is active"), "{}", ran.stdout);
    assert_eq!(env.annotation("r", CANCEL_REQUESTED_AT_ANNOTATION).await, None, "nothing written");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubectl_plugin_form_names_itself_and_reads_the_context_namespace() {
    let env = Env::start(fleet(2, 0, FLEET_SEED), "plugin").await;
    env.create_and_finish_first_run("r", json!({"selector": {}})).await;
    let plugin = env.dir.path().join("kubectl-servicerefresh");
    std::os::unix::fs::symlink(BINARY, &plugin).expect("symlink the plugin");

    let help = std::process::Command::new(&plugin).args(["start", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Usage: kubectl servicerefresh start"), "{help}");
    for flag in ["--namespace", "--kubeconfig", "--context", "--wait", "--timeout", "--output"] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
    let ran = Ran::of(
        std::process::Command::new(&plugin)
            .args(["status", "nope", "--kubeconfig"])
            .arg(&env.kubeconfig)
            .output()
            .unwrap(),
    );
    ran.assert_code(3);
    assert!(ran.stderr.starts_with("kubectl servicerefresh: error:"), "{}", ran.stderr);

    // Through kubectl's plugin dispatch; the namespace comes from the kubeconfig context.
    let path =
        format!("{}:{}", env.dir.path().display(), std::env::var("PATH").unwrap_or_default());
    let ran = Ran::of(
        std::process::Command::new("kubectl")
            .args(["servicerefresh", "status", "r"])
            .env("KUBECONFIG", &env.kubeconfig)
            .env("PATH", path)
            .output()
            .expect("kubectl runs"),
    );
    ran.assert_code(0);
    assert!(ran.stdout.contains("ServiceRefresh:   arcgis/r"), "{}", ran.stdout);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_a_run_ends_it_cancelled_and_start_wait_exits_2() {
    let config = SimConfig {
        rollout_ms: 1500,
        rollout_jitter_ms: 0,
        progress_deadline_seconds: 30,
        ..fleet(6, 0, FLEET_SEED)
    };
    let env = Env::start(config, "cancel").await;
    env.create_and_finish_first_run("r", json!({"selector": {}, "batchSize": 2})).await;

    let cli = env.spawn(&["start", "r", "--wait", "-o", "json"]);
    wait_for(DEADLINE, "run 2's first batch", || async {
        env.cluster.status("r").await.filter(|s| {
            s.run.as_ref().is_some_and(|r| r.number == 2 && r.end_time.is_none())
                && s.batches.first().is_some_and(|b| b.start_time.is_some())
        })
    })
    .await;
    let ran = env.run(&["cancel", "r"]).await;
    ran.assert_code(0);
    assert!(ran.stdout.contains("cancel requested for run 2"), "{}", ran.stdout);

    let ran = Ran::of(cli.wait_with_output().await.expect("the CLI ends"));
    ran.assert_code(2);
    let result = ran.json();
    assert_eq!(result["outcome"], "Cancelled");
    assert_eq!(result["status"]["phase"], "Cancelled");
    let batches = result["status"]["batches"].as_array().expect("batches");
    assert_eq!(batches.len(), 1, "no batch starts after the cancel");
    assert_eq!(batches[0]["counts"]["ready"], 2, "the batch in flight finishes");
    let results = result["status"]["results"].as_array().expect("result groups");
    let cancelled: Vec<&Value> =
        results.iter().filter(|group| group["reason"] == "Cancelled").collect();
    assert_eq!(cancelled.len(), 1, "{results:?}");
    assert_eq!((&cancelled[0]["result"], &cancelled[0]["count"]), (&json!("Skipped"), &json!(4)));
    assert_eq!(cancelled[0]["positions"], "2-5", "the rest is skipped");
    env.shutdown().await;
}
