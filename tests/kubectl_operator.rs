//! kubectl as a real client of the simulated cluster with the operator running: install
//! the CRD and an example ServiceRefresh with `kubectl apply`, watch it with `kubectl get`,
//! and block on it with `kubectl wait`, as a user following the README would.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::{NAMESPACE, Operator, sim_client};
use servicerefresh_sim::SimConfig;

fn kubectl(kubeconfig: &PathBuf, args: &[&str]) -> Output {
    Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .expect("kubectl is installed (see README)")
}

fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kubectl failed: {}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_get_and_wait_on_a_servicerefresh() {
    let sim = servicerefresh_sim::start(SimConfig {
        namespace: NAMESPACE.into(),
        deployments: 15,
        rollout_ms: 150,
        rollout_jitter_ms: 50,
        ..SimConfig::default()
    })
    .await
    .expect("sim starts");
    let dir = std::env::temp_dir().join(format!("servicerefresh-kubectl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = dir.join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).expect("kubeconfig written");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let crd = root.join("crds/servicerefresh.yaml");
    let example = root.join("examples/servicerefresh.yaml");

    let cfg = kubeconfig.clone();
    let crd_path = crd.to_string_lossy().into_owned();
    let out = tokio::task::spawn_blocking(move || ok(&kubectl(&cfg, &["apply", "-f", &crd_path])))
        .await
        .expect("kubectl ran");
    assert!(out.contains("servicerefreshes.gisops.io"), "{out}");

    let client = sim_client(&sim).await;
    let operator = Operator::start(&client);

    let cfg = kubeconfig.clone();
    let explained = tokio::task::spawn_blocking(move || {
        ok(&kubectl(&cfg, &["explain", "servicerefresh.spec.batchSize"]))
    })
    .await
    .expect("kubectl ran");
    assert!(explained.contains("Number of Deployments restarted together"), "{explained}");

    let cfg = kubeconfig.clone();
    let example_path = example.to_string_lossy().into_owned();
    let (applied, waited, table) = tokio::task::spawn_blocking(move || {
        let applied = ok(&kubectl(&cfg, &["apply", "-f", &example_path]));
        let waited = ok(&kubectl(
            &cfg,
            &[
                "wait",
                "--for=condition=Ready",
                "servicerefresh/refresh-after-proxy-change",
                "-n",
                NAMESPACE,
                "--timeout=60s",
            ],
        ));
        let table = ok(&kubectl(&cfg, &["get", "sref", "-n", NAMESPACE]));
        (applied, waited, table)
    })
    .await
    .expect("kubectl ran");
    operator.stop().await;

    assert!(
        applied.contains("servicerefresh.gisops.io/refresh-after-proxy-change created"),
        "{applied}"
    );
    assert!(waited.contains("condition met"), "{waited}");
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAME", "PHASE", "PROGRESS", "BATCH", "FAILED", "AGE"], "{table}");
    let row: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(
        &row[..5],
        ["refresh-after-proxy-change", "Succeeded", "15/15", "2/2", "0"],
        "{table}"
    );
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
