//! The real `kubectl` against the sim: get, rollout restart + status,
//! apply of a CRD and a custom resource, printer columns, explain, wait,
//! patch, label, delete.

mod common;

use std::path::Path;

use common::{Kubectl, kubectl_available};
use servicerefresh_sim::SimConfig;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name).display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_end_to_end() {
    if !kubectl_available() {
        eprintln!("kubectl not installed: skipping");
        return;
    }
    let (h, _c) =
        common::sim(SimConfig { deployments: 6, rollout_ms: 500, ..Default::default() }).await;
    let k = Kubectl::for_sim(&h, "e2e");

    let out = k.ok(&["get", "deployments", "-n", "arcgis"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("NAME")
            && lines[0].contains("READY")
            && lines[0].contains("UP-TO-DATE"),
        "{out}"
    );
    assert_eq!(lines.len(), 7, "{out}");
    let name = lines[1].split_whitespace().next().unwrap().to_string();

    let out = k.ok(&["rollout", "restart", &format!("deployment/{name}"), "-n", "arcgis"]).await;
    assert!(out.contains("restarted"), "{out}");
    let out = k
        .ok(&["rollout", "status", &format!("deployment/{name}"), "-n", "arcgis", "--timeout=60s"])
        .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    let out = k
        .ok(&[
            "get",
            &format!("deployment/{name}"),
            "-n",
            "arcgis",
            "-o",
            "jsonpath={.spec.template.metadata.annotations}",
        ])
        .await;
    assert!(out.contains("kubectl.kubernetes.io/restartedAt"), "{out}");

    let out = k.ok(&["apply", "-f", &fixture("widget-crd.yaml")]).await;
    assert!(
        out.contains(
            "customresourcedefinition.apiextensions.k8s.io/widgets.example.sim.io created"
        ),
        "{out}"
    );
    let out = k.ok(&["apply", "-f", &fixture("widget.yaml")]).await;
    assert!(out.contains("widget.example.sim.io/w1 created"), "{out}");
    let out = k.ok(&["apply", "-f", &fixture("widget.yaml")]).await;
    assert!(out.contains("unchanged"), "{out}");
    let out = k.ok(&["get", "widgets", "-n", "arcgis"]).await;
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, vec!["NAME", "SIZE", "PHASE", "AGE"], "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with("w1 "), "{out}");
    let out = k.ok(&["get", "wd", "-n", "arcgis", "-o", "name"]).await;
    assert_eq!(out.trim(), "widget.example.sim.io/w1");
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "-n",
        "arcgis",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Ready"}}"#,
    ])
    .await;
    let out = k
        .ok(&[
            "wait",
            "--for=jsonpath={.status.phase}=Ready",
            "widget/w1",
            "-n",
            "arcgis",
            "--timeout=10s",
        ])
        .await;
    assert!(out.contains("condition met"), "{out}");
    let (ok, _, err) = k
        .run(&[
            "patch",
            "widget",
            "w1",
            "-n",
            "arcgis",
            "--type=merge",
            "-p",
            r#"{"spec":{"size":99}}"#,
        ])
        .await;
    assert!(!ok && err.contains("spec.size"), "{err}");

    let (ok, out, err) = k.run(&["explain", "widget.spec.size"]).await;
    assert!(ok && out.contains("How big the widget is"), "explain: {out} {err}");

    // Typed commands send protobuf bodies.
    k.ok(&["create", "namespace", "team-a"]).await;
    k.ok(&["create", "configmap", "proxy", "-n", "team-a", "--from-literal=url=http://proxy:3128"])
        .await;
    let out =
        k.ok(&["get", "configmap", "proxy", "-n", "team-a", "-o", "jsonpath={.data.url}"]).await;
    assert_eq!(out, "http://proxy:3128");
    k.ok(&["create", "deployment", "web", "-n", "team-a", "--image=nginx:1.27", "--replicas=2"])
        .await;
    let out = k.ok(&["rollout", "status", "deployment/web", "-n", "team-a", "--timeout=60s"]).await;
    assert!(out.contains("successfully rolled out"), "{out}");
    k.ok(&["label", "configmap", "--all", "-n", "team-a", "x=y"]).await;
    let out = k.ok(&["get", "configmap", "-n", "team-a", "-l", "x=y", "-o", "name"]).await;
    assert_eq!(out.trim(), "configmap/proxy");
    k.ok(&["delete", "namespace", "team-a"]).await;
    k.ok(&["delete", "widget", "w1", "-n", "arcgis"]).await;
    let (ok, _, err) = k.run(&["get", "widget", "w1", "-n", "arcgis"]).await;
    assert!(!ok && err.contains("NotFound"), "{err}");
    h.shutdown().await;
}
