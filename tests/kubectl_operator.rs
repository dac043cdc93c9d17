//! kubectl as a real client of the simulated cluster with the operator running: install
//! the CRD and an example ServiceRefresh with `kubectl apply`, watch it with `kubectl get`,
//! and block on it with `kubectl wait`, as a user following the README would. The printer
//! columns `kubectl get` shows are checked against what the cluster itself counts: the pod
//! template changes of each Deployment and the rollout state of each.

mod common;

use std::path::PathBuf;

use common::kubectl::Kubectl;
use common::{NAMESPACE, Operator, sim_client};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams};
use servicerefresh_sim::{SimConfig, SimHandle};

const EXAMPLE: &str = "refresh-after-proxy-change";
/// The example's selector and batch size.
const SELECTOR: &str = "app.kubernetes.io/managed-by=arcgis";
const BATCH_SIZE: usize = 10;

/// The columns of `kubectl get sref` the cluster's own state predicts.
#[derive(Debug, PartialEq, Eq)]
struct Columns {
    progress: String,
    batch: String,
    failed: String,
}

/// What the columns must say after a run that restarted every selected Deployment, the
/// `runs`-th run: derived from the sim's template-change counter and each Deployment's own
/// status, never from the ServiceRefresh's.
async fn columns_from_the_cluster(sim: &SimHandle, client: &kube::Client, runs: u64) -> Columns {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let selected =
        deployments.list(&ListParams::default().labels(SELECTOR)).await.expect("list").items;
    let stats = sim.stats();
    let (mut ready, mut failed) = (0, 0);
    for deployment in &selected {
        let name = deployment.metadata.name.clone().unwrap_or_default();
        let changes = stats.template_changes.get(&format!("{NAMESPACE}/{name}")).copied();
        assert_eq!(changes, Some(runs), "{name}: one pod template change per run");
        let status = deployment.status.clone().unwrap_or_default();
        let observed = status.observed_generation == deployment.metadata.generation;
        let desired = deployment.spec.replicas.unwrap_or(1);
        let exceeded = status.conditions.iter().flatten().any(|condition| {
            condition.type_.as_deref() == Some("Progressing")
                && condition.reason.as_deref() == Some("ProgressDeadlineExceeded")
        });
        if observed && exceeded {
            failed += 1;
        } else if observed
            && status.updated_replicas == Some(desired)
            && status.replicas == Some(desired)
            && status.available_replicas == Some(desired)
        {
            ready += 1;
        }
    }
    let batches = selected.len().div_ceil(BATCH_SIZE);
    Columns {
        progress: format!("{ready}/{}", selected.len()),
        batch: format!("{batches}/{batches}"),
        failed: failed.to_string(),
    }
}

/// The example's row of `kubectl get sref`, checked against the header.
async fn printed_columns(kubectl: &Kubectl) -> (String, Columns) {
    let table = kubectl.ok(&["get", "sref", "-n", NAMESPACE]).await;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "PHASE", "PROGRESS", "BATCH", "WAITING", "FAILED", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    // An ended run waits for nothing: its WAITING cell is `<none>` or blank, by kubectl version.
    assert!(row.len() == 7 || row.len() == 6, "{table}");
    assert_eq!(row[0], EXAMPLE, "{table}");
    let columns = Columns {
        progress: row[2].to_owned(),
        batch: row[3].to_owned(),
        failed: row[row.len() - 2].to_owned(),
    };
    (row[1].to_owned(), columns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_get_and_wait_on_a_servicerefresh() {
    let sim = servicerefresh_sim::start(SimConfig {
        namespace: NAMESPACE.into(),
        deployments: 15,
        rollout_ms: 150,
        rollout_jitter_ms: 50,
        progress_deadline_seconds: 1,
        ..SimConfig::default()
    })
    .await
    .expect("sim starts");
    let kubectl = Kubectl::for_sim(&sim);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let crd = root.join("crds/servicerefresh.yaml").to_string_lossy().into_owned();
    let example = root.join("examples/servicerefresh.yaml").to_string_lossy().into_owned();

    let out = kubectl.ok(&["apply", "-f", &crd]).await;
    assert!(out.contains("servicerefreshes.gisops.io"), "{out}");
    let client = sim_client(&sim).await;
    let operator = Operator::start(&client);
    let explained = kubectl.ok(&["explain", "servicerefresh.spec.batchSize"]).await;
    assert!(explained.contains("Number of Deployments restarted together"), "{explained}");

    let applied = kubectl.ok(&["apply", "-f", &example]).await;
    assert!(applied.contains(&format!("servicerefresh.gisops.io/{EXAMPLE} created")), "{applied}");
    let target = format!("servicerefresh/{EXAMPLE}");
    let waited = kubectl
        .ok(&["wait", "--for=condition=Ready", &target, "-n", NAMESPACE, "--timeout=60s"])
        .await;
    assert!(waited.contains("condition met"), "{waited}");
    let (phase, printed) = printed_columns(&kubectl).await;
    assert_eq!(phase, "Succeeded");
    let expected = columns_from_the_cluster(&sim, &client, 1).await;
    assert_eq!(printed, expected);
    assert_eq!(expected.progress, "15/15", "the cluster itself says every service rolled out");

    // A second run in which two services fail: the columns still agree with the cluster.
    let names = kubectl.ok(&["get", "deploy", "-n", NAMESPACE, "-l", SELECTOR, "-o", "name"]).await;
    let doomed: Vec<&str> = names.lines().take(2).collect();
    assert_eq!(doomed.len(), 2, "{names}");
    for deployment in &doomed {
        kubectl.ok(&["annotate", deployment, "-n", NAMESPACE, "sim.gisops.io/fail=true"]).await;
    }
    let retrigger = r#"{"spec":{"trigger":"proxy-2026-12-01"}}"#;
    kubectl.ok(&["patch", &target, "-n", NAMESPACE, "--type", "merge", "-p", retrigger]).await;
    let waited = kubectl
        .ok(&["wait", "--for=condition=Stalled", &target, "-n", NAMESPACE, "--timeout=60s"])
        .await;
    assert!(waited.contains("condition met"), "{waited}");
    let (phase, printed) = printed_columns(&kubectl).await;
    operator.stop().await;
    assert_eq!(phase, "Failed");
    let expected = columns_from_the_cluster(&sim, &client, 2).await;
    assert_eq!(printed, expected);
    assert_eq!((expected.progress.as_str(), expected.failed.as_str()), ("13/15", "2"));
    sim.shutdown().await;
}
