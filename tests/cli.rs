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
    for (flags, description) in &options {
        // A description is words, not just a default or a list of values.
        assert!(
            description.split_whitespace().count() >= 3 && !description.starts_with('['),
            "{flags:?} has no description:\n{help}"
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
