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

#[test]
fn run_help_documents_every_flag() {
    let output = binary().args(["run", "--help"]).output().expect("binary runs");
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--kubeconfig",
        "--watch-namespace",
        "--max-concurrent-runs",
        "--retry-seconds",
        "--log-format",
    ] {
        let line = help
            .lines()
            .find(|l| l.contains(flag))
            .unwrap_or_else(|| panic!("{flag} missing:\n{help}"));
        let documented = line.trim().len() > flag.len() + 12
            || help
                .lines()
                .skip_while(|l| !l.contains(flag))
                .nth(1)
                .is_some_and(|l| !l.trim().is_empty());
        assert!(documented, "{flag} has no description:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_the_crd_exits_with_one_clear_line() {
    let sim = servicerefresh_sim::start(SimConfig { deployments: 0, ..SimConfig::default() })
        .await
        .expect("sim starts");
    let dir = std::env::temp_dir().join(format!("servicerefresh-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = dir.join("kubeconfig");
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
    let _ = std::fs::remove_dir_all(&dir);
}
