//! The real clients that found the rows of "The simulated cluster, round
//! 2" against the sim: kubectl 1.32 (typed validation, `--validate`
//! strict/warn, metadata rules, immutable ConfigMaps, Secret and Service
//! columns), the official Python client and kr8s (a script under
//! `fixtures`), and Helm installing the chart `helm create` makes.

mod common;

use std::path::Path;
use std::process::Command;

use servicerefresh_sim::{SimConfig, SimHandle};
use tempfile::TempDir;

fn available(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

/// Runs a client with the sim's kubeconfig; (success, stdout, stderr).
async fn run(dir: &Path, program: &str, args: &[&str]) -> (bool, String, String) {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/tools/bin");
    let path = format!("{}:{}", tools.display(), std::env::var("PATH").unwrap_or_default());
    let out = tokio::process::Command::new(program)
        .args(args)
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .env("HOME", dir)
        .env("KUBECACHEDIR", dir.join("cache"))
        .env("PATH", path)
        .output()
        .await
        .expect("client runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The sim, and a fresh directory (removed on drop) holding its kubeconfig.
async fn start(tag: &str) -> (SimHandle, TempDir) {
    let (h, _c) = common::sim(SimConfig::default()).await;
    let dir = tempfile::Builder::new()
        .prefix(&format!("sim-clients-{tag}-"))
        .tempdir()
        .expect("temp dir");
    h.write_kubeconfig(&dir.path().join("kubeconfig")).expect("kubeconfig");
    (h, dir)
}

const BAD_REPLICAS: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: bad}
spec:
  replicas: two
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: bad}}
    spec: {containers: [{name: web, image: nginx}]}
";

const UNKNOWN_FIELD: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: unknown}
data: {a: '1'}
colour: blue
";

const BAD_ANNOTATION: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: annotated
  annotations: {'Bad Key': x}
";

const FROZEN: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: frozen}
data: {a: '1'}
immutable: true
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_the_real_servers_validation() {
    if !available("kubectl", &["version", "--client"]) {
        eprintln!("kubectl not installed: skipping");
        return;
    }
    let (_h, scratch) = start("kubectl").await;
    let dir = scratch.path().to_path_buf();
    let kubectl = |args: Vec<String>| {
        let dir = dir.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&dir, "kubectl", &args).await
        }
    };
    let file = |name: &str, text: &str| write(&dir, name, text);
    let args = |list: &[&str]| list.iter().map(|arg| arg.to_string()).collect::<Vec<_>>();

    let bad = file("bad.yaml", BAD_REPLICAS);
    let (ok, _, err) = kubectl(args(&["create", "-f", &bad])).await;
    assert!(!ok);
    assert!(
        err.contains("Error from server (BadRequest): error when creating \"") && err.contains(
            "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
        ),
        "{err}"
    );

    let unknown = file("unknown.yaml", UNKNOWN_FIELD);
    let (ok, _, err) = kubectl(args(&["create", "--validate=strict", "-f", &unknown])).await;
    assert!(!ok);
    assert!(
        err.contains("ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"colour\""),
        "{err}"
    );
    let (ok, out, err) = kubectl(args(&["create", "--validate=warn", "-f", &unknown])).await;
    assert!(ok, "{err}");
    assert!(err.contains("Warning: unknown field \"colour\""), "{err}");
    assert!(out.contains("configmap/unknown created"), "{out}");

    let annotated = file("annotated.yaml", BAD_ANNOTATION);
    let (ok, _, err) = kubectl(args(&["apply", "-f", &annotated])).await;
    assert!(!ok);
    assert!(
        err.contains("The ConfigMap \"annotated\" is invalid: metadata.annotations: Invalid value: \"Bad Key\": name part must consist of alphanumeric characters"),
        "{err}"
    );

    let frozen = file("frozen.yaml", FROZEN);
    let (ok, _, err) = kubectl(args(&["apply", "-f", &frozen])).await;
    assert!(ok, "{err}");
    let (ok, _, err) =
        kubectl(args(&["patch", "configmap", "frozen", "-p", r#"{"data":{"a":"2"}}"#])).await;
    assert!(!ok);
    assert!(
        err.contains("The ConfigMap \"frozen\" is invalid: data: Forbidden: field is immutable when `immutable` is set"),
        "{err}"
    );

    let (ok, _, err) =
        kubectl(args(&["create", "secret", "generic", "creds", "--from-literal=password=x"])).await;
    assert!(ok, "{err}");
    let (ok, out, err) = kubectl(args(&["get", "secrets"])).await;
    assert!(ok, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "TYPE", "DATA", "AGE"], "{out}");
    let row: Vec<&str> = out.lines().nth(1).unwrap_or("").split_whitespace().collect();
    assert_eq!(&row[..3], ["creds", "Opaque", "1"], "{out}");

    let (ok, _, err) =
        kubectl(args(&["create", "service", "clusterip", "web", "--tcp=80:8080"])).await;
    assert!(ok, "{err}");
    let (ok, out, err) = kubectl(args(&["get", "services", "-o", "wide"])).await;
    assert!(ok, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]);
    let row: Vec<&str> = out.lines().nth(1).unwrap_or("").split_whitespace().collect();
    assert_eq!(
        (row[0], row[1], row[3], row[4], row[6]),
        ("web", "ClusterIP", "<none>", "80/TCP", "app=web"),
        "{out}"
    );
    assert!(row[2].starts_with("10."), "{out}");

    let (ok, _, err) = kubectl(args(&[
        "create",
        "poddisruptionbudget",
        "web",
        "--selector=app=web",
        "--min-available=1",
    ]))
    .await;
    assert!(ok, "{err}");
    let (ok, out, _) = kubectl(args(&["get", "pdb"])).await;
    assert!(ok);
    assert!(
        out.starts_with("NAME   MIN AVAILABLE   MAX UNAVAILABLE   ALLOWED DISRUPTIONS   AGE"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_and_kr8s() {
    if !available("python3", &["-c", "import kubernetes, kr8s"]) {
        eprintln!(
            "the Python kubernetes client or kr8s is not installed (.ci/install-tools): skipping"
        );
        return;
    }
    let (_h, scratch) = start("python").await;
    let dir = scratch.path().to_path_buf();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python_clients.py");
    let kubeconfig = dir.join("kubeconfig").display().to_string();
    let (ok, out, err) =
        run(&dir, "python3", &[&script.display().to_string(), &kubeconfig, "arcgis"]).await;
    assert!(ok, "python clients failed:\n{out}\n{err}");
    assert!(out.contains("ok: kr8s connects"), "{out}");
}

/// `helm install --wait` of the chart `helm create` makes: a
/// ServiceAccount, a Service, and a Deployment whose ReplicaSet and Pods
/// `--wait` watches until they are ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_installs_the_chart_helm_create_makes() {
    let (_h, scratch) = start("helm").await;
    let dir = scratch.path().to_path_buf();
    let chart = dir.join("demo").display().to_string();
    let (ok, _, err) = run(&dir, "helm", &["create", &chart]).await;
    assert!(ok, "helm create: {err}");
    let (ok, out, err) = run(
        &dir,
        "helm",
        &["install", "demo", &chart, "--namespace", "arcgis", "--wait", "--timeout", "60s"],
    )
    .await;
    assert!(ok, "helm install:\n{out}\n{err}");
    assert!(out.contains("STATUS: deployed"), "{out}");
    let (ok, out, err) = run(&dir, "kubectl", &["get", "service", "demo", "-n", "arcgis"]).await;
    assert!(ok && out.contains("ClusterIP"), "{out}{err}");

    // The rest of a release's life: an upgrade that rolls the Deployment out, a rollback to
    // the first revision, and an uninstall that waits for everything to be gone.
    let (ok, out, err) = run(
        &dir,
        "helm",
        &[
            "upgrade",
            "demo",
            &chart,
            "--namespace",
            "arcgis",
            "--wait",
            "--timeout",
            "60s",
            "--set",
            "replicaCount=2",
        ],
    )
    .await;
    assert!(ok, "helm upgrade:\n{out}\n{err}");
    let (ok, out, err) = run(
        &dir,
        "kubectl",
        &["get", "deployment", "demo", "-n", "arcgis", "-o", "jsonpath={.status.readyReplicas}"],
    )
    .await;
    assert!(ok && out.trim() == "2", "ready replicas after the upgrade: {out}{err}");
    let (ok, out, err) = run(
        &dir,
        "helm",
        &["rollback", "demo", "1", "--namespace", "arcgis", "--wait", "--timeout", "60s"],
    )
    .await;
    assert!(ok, "helm rollback:\n{out}\n{err}");
    let (ok, out, err) = run(&dir, "helm", &["history", "demo", "--namespace", "arcgis"]).await;
    assert!(ok && out.lines().count() == 4, "three revisions after the rollback:\n{out}{err}");
    let (ok, out, err) = run(
        &dir,
        "kubectl",
        &["get", "deployment", "demo", "-n", "arcgis", "-o", "jsonpath={.spec.replicas}"],
    )
    .await;
    assert!(ok && out.trim() == "1", "replicas after the rollback: {out}{err}");
    let (ok, out, err) = run(
        &dir,
        "helm",
        &["uninstall", "demo", "--namespace", "arcgis", "--wait", "--timeout", "60s"],
    )
    .await;
    assert!(ok, "helm uninstall:\n{out}\n{err}");
    let (ok, out, err) =
        run(&dir, "kubectl", &["get", "deployments,services", "-n", "arcgis", "-o", "name"]).await;
    assert!(ok && !out.contains("demo"), "left after the uninstall: {out}{err}");
}
