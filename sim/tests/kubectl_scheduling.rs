//! Real kubectl on nodes, the scheduler and PodDisruptionBudgets: `get
//! nodes` (and `-o wide`), `describe node` with its Allocated resources,
//! a pod no node takes in `get pods`, `describe pod` and `get events`,
//! `get pdb` and `describe pdb` with the computed status (every kubectl
//! version installed),
//! and a rollout stuck for room that `rollout status` reports past its
//! progress deadline until a node grows.

mod common;

use std::path::Path;

use common::kubectl::{KubectlBin, installed, matrix};
use common::*;
use serde_json::{Value, json};
use servicerefresh_sim::{SimConfig, SimHandle};

const DEPLOYS: &str = "/apis/apps/v1/namespaces/arcgis/deployments";
const NS: &str = "arcgis";

/// Three nodes with `per_node_millis` of CPU each and nothing on them; the
/// directory (removed on drop) holding the kubeconfig, and its path.
async fn cluster(
    per_node_millis: u64,
) -> (SimHandle, RawHttpClient, tempfile::TempDir, std::path::PathBuf) {
    let (h, c) = sim(SimConfig {
        nodes: Some(3),
        spare_cpu_millis: Some(3 * per_node_millis),
        ..Default::default()
    })
    .await;
    let dir = temp_dir(&format!("scheduling-{}", h.addr().port()));
    let kubeconfig = dir.path().join("kubeconfig");
    h.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    (h, c, dir, kubeconfig)
}

async fn create(c: &RawHttpClient, d: &Value) {
    let r = c.post(DEPLOYS, d).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split_whitespace().map(String::from).collect())
        .collect()
}

/// The first line of `out` containing all of `parts`.
fn line_with<'a>(out: &'a str, parts: &[&str]) -> Option<&'a str> {
    out.lines().find(|line| parts.iter().all(|part| line.contains(part)))
}

async fn rolled_out(kubectl: &KubectlBin, kubeconfig: &Path, name: &str) {
    kubectl
        .ok(
            kubeconfig,
            &["rollout", "status", &format!("deployment/{name}"), "-n", NS, "--timeout=60s"],
        )
        .await;
}

const UNSCHEDULABLE: &str = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_waiting_pods_and_budgets_through_kubectl() {
    let bins = matrix("scheduling");
    let Some(newest) = bins.first() else {
        eprintln!("kubectl not installed: skipping");
        return;
    };
    let (_h, c, _dir, kubeconfig) = cluster(400).await;
    create(&c, &deployment_requesting("filler", 3, "300m", 600)).await;
    rolled_out(newest, &kubeconfig, "filler").await;
    create(&c, &deployment_requesting("late", 1, "200m", 600)).await;
    let pod = eventually("late's pod unschedulable", || async {
        let pods = c.get("/api/v1/namespaces/arcgis/pods?labelSelector=app%3Dlate").await.body;
        let pod = pods["items"][0].clone();
        let reason = pod["status"]["conditions"]
            .as_array()
            .and_then(|conditions| conditions.iter().find(|c| c["type"] == "PodScheduled"))
            .map(|condition| condition["reason"].clone());
        (reason == Some(json!("Unschedulable"))).then_some(pod)
    })
    .await;
    let pod_name = pod["metadata"]["name"].as_str().unwrap().to_string();
    for (name, field, value) in
        [("min", "--min-available", "2"), ("max", "--max-unavailable", "34%")]
    {
        newest
            .ok(
                &kubeconfig,
                &[
                    "create",
                    "pdb",
                    name,
                    "-n",
                    NS,
                    "--selector=app=filler",
                    &format!("{field}={value}"),
                ],
            )
            .await;
    }
    eventually("the budgets' status", || async {
        let b = c.get("/apis/policy/v1/namespaces/arcgis/poddisruptionbudgets/max").await.body;
        (b["status"]["disruptionsAllowed"] == 2).then_some(())
    })
    .await;

    for kubectl in &bins {
        let version = &kubectl.version;
        let out = kubectl.ok(&kubeconfig, &["get", "nodes"]).await;
        let table = rows(&out);
        assert_eq!(table[0], ["NAME", "STATUS", "ROLES", "AGE", "VERSION"], "{version}: {out}");
        assert_eq!(table.len(), 4, "{version}: {out}");
        for (index, row) in table[1..].iter().enumerate() {
            assert_eq!(row[0], format!("sim-worker-{}", index + 1), "{version}: {out}");
            assert_eq!(
                (row[1].as_str(), row[2].as_str(), row[4].as_str()),
                ("Ready", "<none>", "v1.32.0")
            );
        }
        let out = kubectl.ok(&kubeconfig, &["get", "nodes", "-o", "wide"]).await;
        assert!(
            out.lines().next().unwrap_or("").split_whitespace().eq([
                "NAME",
                "STATUS",
                "ROLES",
                "AGE",
                "VERSION",
                "INTERNAL-IP",
                "EXTERNAL-IP",
                "OS-IMAGE",
                "KERNEL-VERSION",
                "CONTAINER-RUNTIME"
            ]),
            "{version}: {out}"
        );
        let first = line_with(&out, &["sim-worker-1"]).unwrap_or("");
        for part in [
            "10.0.0.11",
            "<none>",
            "Debian GNU/Linux 12 (bookworm)",
            "6.1.0-28-cloud-amd64",
            "containerd://1.7.24",
        ] {
            assert!(first.contains(part), "{version}: {part} in {out}");
        }

        // The node with the filler pod and its share of the node.
        let out = kubectl.ok(&kubeconfig, &["describe", "node", "sim-worker-1"]).await;
        for part in [
            "Name:               sim-worker-1",
            "Roles:              <none>",
            "kubernetes.io/hostname=sim-worker-1",
            "HolderIdentity:  sim-worker-1",
            "Unschedulable:      false",
            "InternalIP:  10.0.0.11",
            "Kubelet Version:            v1.32.0",
            "PodCIDR:                      10.244.1.0/24",
            "Allocated resources:",
        ] {
            assert!(out.contains(part), "{version}: {part:?} in\n{out}");
        }
        assert!(
            line_with(&out, &["Ready", "True", "KubeletReady", "kubelet is posting ready status"])
                .is_some(),
            "{version}: {out}"
        );
        assert!(
            line_with(&out, &["Non-terminated Pods:", "(1 in total)"]).is_some(),
            "{version}: {out}"
        );
        assert!(line_with(&out, &["cpu", "400m"]).is_some(), "{version}: allocatable in {out}");
        assert!(
            line_with(&out, &["cpu", "300m (75%)", "0 (0%)"]).is_some(),
            "{version}: allocated in {out}"
        );
        assert!(
            line_with(&out, &["arcgis", "filler-", "300m (75%)"]).is_some(),
            "{version}: the pod in {out}"
        );

        let out = kubectl
            .ok(&kubeconfig, &["get", "pods", "-n", NS, "-l", "app=late", "-o", "wide"])
            .await;
        let table = rows(&out);
        assert_eq!(
            table[0][..7],
            ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"],
            "{version}: {out}"
        );
        assert_eq!(
            (table[1][1].as_str(), table[1][2].as_str()),
            ("0/1", "Pending"),
            "{version}: {out}"
        );
        assert_eq!(
            (table[1][5].as_str(), table[1][6].as_str()),
            ("<none>", "<none>"),
            "{version}: {out}"
        );

        let out = kubectl.ok(&kubeconfig, &["describe", "pod", &pod_name, "-n", NS]).await;
        assert!(line_with(&out, &["Status:", "Pending"]).is_some(), "{version}: {out}");
        assert!(line_with(&out, &["Node:", "<none>"]).is_some(), "{version}: {out}");
        assert!(line_with(&out, &["PodScheduled", "False"]).is_some(), "{version}: {out}");
        let event = line_with(&out, &["Warning", "FailedScheduling", "default-scheduler"]);
        assert!(event.is_some_and(|line| line.ends_with(UNSCHEDULABLE)), "{version}: {out}");

        let out = kubectl
            .ok(
                &kubeconfig,
                &["get", "events", "-n", NS, "--field-selector", "reason=FailedScheduling"],
            )
            .await;
        let line = line_with(&out, &["Warning", "FailedScheduling", &format!("pod/{pod_name}")]);
        assert!(line.is_some_and(|line| line.ends_with(UNSCHEDULABLE)), "{version}: {out}");

        let out = kubectl.ok(&kubeconfig, &["get", "pdb", "-n", NS]).await;
        let table = rows(&out);
        assert_eq!(
            table[0],
            ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
        );
        assert_eq!(table[1][..4], ["max", "N/A", "34%", "2"], "{version}: {out}");
        assert_eq!(table[2][..4], ["min", "2", "N/A", "1"], "{version}: {out}");

        let out = kubectl.ok(&kubeconfig, &["describe", "pdb", "min", "-n", NS]).await;
        for expected in [
            ["Name:", "min"],
            ["Namespace:", NS],
            ["Min available:", "2"],
            ["Selector:", "app=filler"],
            ["Allowed disruptions:", "1"],
            ["Current:", "3"],
            ["Desired:", "2"],
            ["Total:", "3"],
        ] {
            assert!(line_with(&out, &expected).is_some(), "{version}: {expected:?} in {out}");
        }
        let out = kubectl.ok(&kubeconfig, &["describe", "pdb", "max", "-n", NS]).await;
        assert!(line_with(&out, &["Max unavailable:", "34%"]).is_some(), "{version}: {out}");
        assert!(line_with(&out, &["Allowed disruptions:", "2"]).is_some(), "{version}: {out}");
    }

    // Room frees: the pod is bound, runs, and says so.
    newest.ok(&kubeconfig, &["scale", "deployment/filler", "-n", NS, "--replicas=2"]).await;
    rolled_out(newest, &kubeconfig, "late").await;
    let out = newest.ok(&kubeconfig, &["describe", "pod", &pod_name, "-n", NS]).await;
    assert!(line_with(&out, &["Status:", "Running"]).is_some(), "{out}");
    assert!(
        line_with(
            &out,
            &["Normal", "Scheduled", "default-scheduler", "Successfully assigned arcgis/"]
        )
        .is_some(),
        "{out}"
    );
    let out = newest.ok(&kubeconfig, &["get", "pdb", "min", "-n", NS]).await;
    assert_eq!(rows(&out)[1][..4], ["min", "2", "N/A", "0"], "two filler pods left: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_stuck_for_room_exceeds_its_progress_deadline_until_a_node_grows() {
    let Some(kubectl) = installed("stuck") else {
        eprintln!("kubectl not installed: skipping");
        return;
    };
    let (_h, c, _dir, kubeconfig) = cluster(500).await;
    create(&c, &deployment_requesting("web", 3, "400m", 2)).await;
    rolled_out(&kubectl, &kubeconfig, "web").await;
    kubectl.ok(&kubeconfig, &["rollout", "restart", "deployment/web", "-n", NS]).await;
    let ran = kubectl
        .run(&kubeconfig, &["rollout", "status", "deployment/web", "-n", NS, "--timeout=30s"])
        .await;
    assert!(!ran.ok(), "{ran}");
    assert!(ran.stderr.contains("deployment \"web\" exceeded its progress deadline"), "{ran}");
    let out = kubectl.ok(&kubeconfig, &["get", "pods", "-n", NS, "-l", "app=web"]).await;
    let table = rows(&out);
    assert_eq!(table.iter().filter(|row| row[2] == "Pending").count(), 1, "the surge pod: {out}");
    assert_eq!(table.iter().filter(|row| row[2] == "Running").count(), 3, "{out}");
    let out = kubectl.ok(&kubeconfig, &["get", "deployment", "web", "-n", NS]).await;
    assert_eq!(rows(&out)[1][1..4], ["3/3", "1", "3"], "{out}");

    // Cordoned, a node takes no pod, whatever room it has; uncordoned, its
    // room goes to the surge pod and the rollout completes.
    kubectl.ok(&kubeconfig, &["cordon", "sim-worker-1"]).await;
    let out = kubectl.ok(&kubeconfig, &["get", "node", "sim-worker-1"]).await;
    assert_eq!(rows(&out)[1][1], "Ready,SchedulingDisabled", "{out}");
    let cordoned = "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.";
    eventually("the cordon in the pod's message", || async {
        let pods = c.get("/api/v1/namespaces/arcgis/pods?labelSelector=app%3Dweb").await.body;
        let pods = pods["items"].as_array().cloned().unwrap_or_default();
        pods.iter()
            .flat_map(|pod| pod["status"]["conditions"].as_array().cloned().unwrap_or_default())
            .any(|condition| condition["message"] == cordoned)
            .then_some(())
    })
    .await;
    kubectl
        .ok(
            &kubeconfig,
            &[
                "patch",
                "node",
                "sim-worker-1",
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"allocatable":{"cpu":"2"}}}"#,
            ],
        )
        .await;
    kubectl.ok(&kubeconfig, &["uncordon", "sim-worker-1"]).await;
    // `rollout status` reports the deadline until the rollout progresses
    // again (the surge pod ready a wave after it is bound).
    eventually("progress again", || async {
        let d = c.get(&format!("{DEPLOYS}/web")).await.body;
        let conditions = d["status"]["conditions"].as_array().cloned().unwrap_or_default();
        conditions.iter().any(|c| c["type"] == "Progressing" && c["status"] == "True").then_some(())
    })
    .await;
    let out = kubectl
        .ok(&kubeconfig, &["rollout", "status", "deployment/web", "-n", NS, "--timeout=30s"])
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");
}
