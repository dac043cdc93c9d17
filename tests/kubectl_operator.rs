//! kubectl as a real client of the simulated cluster with the operator running: install
//! the CRD and an example ServiceRefresh with `kubectl apply`, watch it with `kubectl get`,
//! and block on it with `kubectl wait`, as a user following the README would. The printer
//! columns `kubectl get` shows are checked against what the cluster itself counts: the pod
//! template changes of each Deployment and the rollout state of each.

mod common;

use std::path::PathBuf;
use std::time::Duration;

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

/// The example's row of `kubectl get sref`, checked against the header: the phase, the
/// columns, and the REASON column.
async fn printed_columns(kubectl: &Kubectl) -> (String, Columns, String) {
    let table = kubectl.ok(&["get", "sref", "-n", NAMESPACE]).await;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    let expected = ["NAME", "PHASE", "PROGRESS", "BATCH", "FAILED", "REASON", "AGE"];
    assert_eq!(header, expected, "{table}");
    let row: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(row.len(), 7, "{table}");
    assert_eq!(row[0], EXAMPLE, "{table}");
    let columns = Columns {
        progress: row[2].to_owned(),
        batch: row[3].to_owned(),
        failed: row[4].to_owned(),
    };
    (row[1].to_owned(), columns, row[5].to_owned())
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
    let (phase, printed, reason) = printed_columns(&kubectl).await;
    assert_eq!((phase.as_str(), reason.as_str()), ("Succeeded", "Succeeded"));
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
    // Reconciling=False: what returns on either outcome, as the README recommends.
    let ended = "--for=condition=Reconciling=False";
    let waited = kubectl.ok(&["wait", ended, &target, "-n", NAMESPACE, "--timeout=60s"]).await;
    assert!(waited.contains("condition met"), "{waited}");
    let (phase, printed, reason) = printed_columns(&kubectl).await;
    let wide = kubectl.ok(&["get", "sref", "-n", NAMESPACE, "-o", "wide"]).await;
    operator.stop().await;
    assert_eq!((phase.as_str(), reason.as_str()), ("Failed", "RunFailed"));
    assert!(wide.lines().next().unwrap_or_default().contains("MESSAGE"), "{wide}");
    assert!(wide.contains("2 of 15 Deployments failed"), "-o wide shows the message: {wide}");
    let expected = columns_from_the_cluster(&sim, &client, 2).await;
    assert_eq!(printed, expected);
    assert_eq!((expected.progress.as_str(), expected.failed.as_str()), ("13/15", "2"));
    sim.shutdown().await;
}

/// The columns of `kubectl get sref NAME`, by header.
async fn row_of(kubectl: &Kubectl, name: &str, wide: bool) -> Vec<(String, String)> {
    let mut args = vec!["get", "sref", name, "-n", NAMESPACE];
    if wide {
        args.extend(["-o", "wide"]);
    }
    let table = kubectl.ok(&args).await;
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let row = lines.next().unwrap_or_default();
    // kubectl aligns every column at its header's first character.
    let starts: Vec<usize> = header
        .char_indices()
        .filter(|(at, c)| !c.is_whitespace() && (*at == 0 || header[..*at].ends_with(' ')))
        .map(|(at, _)| at)
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(index, &start)| {
            let end = starts.get(index + 1).copied().unwrap_or(usize::MAX);
            let cell = |text: &str| {
                text.get(start..end.min(text.len())).unwrap_or_default().trim().to_owned()
            };
            (cell(header), cell(row))
        })
        .collect()
}

fn column<'a>(row: &'a [(String, String)], name: &str) -> &'a str {
    row.iter()
        .find(|(header, _)| header == name)
        .map(|(_, value)| value.as_str())
        .unwrap_or_else(|| panic!("no column {name} in {row:?}"))
}

/// A resource stalled before any run says so in the default columns, and after a cancel
/// mid-run BATCH shows the batch the run stopped at out of the batches it was heading for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_shows_a_stall_before_any_run_and_where_a_cancel_stopped() {
    let cluster = common::SimCluster::start(SimConfig {
        deployments: 20,
        rollout_ms: 700,
        rollout_jitter_ms: 100,
        progress_deadline_seconds: 30,
        ..SimConfig::default()
    })
    .await;
    let kubectl = Kubectl::for_sim(&cluster.sim);
    let operator = Operator::start(&cluster.client);

    cluster
        .create_refresh(
            "stalled",
            serde_json::json!({"selector": {}, "configMapTriggers": [{"name": "missing"}]}),
        )
        .await;
    common::wait_for(Duration::from_secs(30), "the ConfigMapNotFound stall", || async {
        let status = cluster.status("stalled").await?;
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True" && c.reason == "ConfigMapNotFound")
            .then_some(())
    })
    .await;
    let row = row_of(&kubectl, "stalled", false).await;
    assert_eq!(column(&row, "PHASE"), "Pending", "{row:?}");
    assert_eq!(column(&row, "REASON"), "ConfigMapNotFound", "{row:?}");
    let wide = row_of(&kubectl, "stalled", true).await;
    assert!(
        column(&wide, "MESSAGE").contains("ConfigMap arcgis/missing does not exist"),
        "{wide:?}"
    );

    cluster.create_refresh("cancelled", serde_json::json!({"selector": {}, "batchSize": 2})).await;
    common::wait_for(Duration::from_secs(60), "the run's second batch", || async {
        let status = cluster.status("cancelled").await?;
        status.batches.iter().any(|batch| batch.index >= 2).then_some(())
    })
    .await;
    kubectl
        .ok(&[
            "annotate",
            "sref",
            "cancelled",
            "-n",
            NAMESPACE,
            "gisops.io/cancel-requested-at=now",
        ])
        .await;
    let status = cluster.wait_for_run_end("cancelled", Duration::from_secs(60)).await;
    assert_eq!(status.phase, Some(servicerefresh_core::crd::Phase::Cancelled));
    let stopped_at = status.batches.last().map_or(0, |batch| batch.index);
    assert!((2..10).contains(&stopped_at), "cancelled mid-run: {stopped_at}");
    let row = row_of(&kubectl, "cancelled", false).await;
    operator.stop().await;
    assert_eq!(column(&row, "PHASE"), "Cancelled", "{row:?}");
    assert_eq!(column(&row, "BATCH"), format!("{stopped_at}/10"), "{row:?}");
    assert_eq!(column(&row, "REASON"), "RunCancelled", "{row:?}");
    cluster.sim.shutdown().await;
}
