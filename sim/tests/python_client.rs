//! The Python `kubernetes` client (installed by `.ci/install-tools`) with a
//! ServiceAccount's kubeconfig over TLS: a TokenReview of its own token and
//! SubjectAccessReviews round-trip (`fixtures/python_auth.py`), as an
//! admission webhook or an aggregated API server written in Python would
//! use them. Skipped when the client is not installed.

mod common;

use std::path::Path;

use serde_json::{Value, json};
use servicerefresh_sim::SimConfig;

const SA: &str = "system:serviceaccount:arcgis:reviewer";

fn python_client_installed() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import kubernetes"])
        .output()
        .is_ok_and(|out| out.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_subject_access_reviews_from_python() {
    if !python_client_installed() {
        eprintln!("the Python kubernetes client is not installed (.ci/install-tools): skipping");
        return;
    }
    let (h, admin) = common::sim(SimConfig::default()).await;
    h.create_service_account("arcgis", "reviewer").expect("service account");
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "patcher", "namespace": "arcgis"},
        "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}]});
    let binding = |kind: &str, role: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
        "metadata": {"name": format!("reviewer-{}", role.replace(':', "-")), "namespace": "arcgis"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": if kind == "RoleBinding" { "Role" } else { "ClusterRole" }, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "reviewer", "namespace": "arcgis"}]})
    };
    assert_eq!(
        admin
            .post("/apis/rbac.authorization.k8s.io/v1/namespaces/arcgis/roles", &role)
            .await
            .status,
        201
    );
    let r = admin
        .post(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/arcgis/rolebindings",
            &binding("RoleBinding", "patcher"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = admin
        .post(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            &binding("ClusterRoleBinding", "system:auth-delegator"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    let dir = tempfile::Builder::new().prefix("sim-python-").tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    h.write_service_account_kubeconfig("arcgis", "reviewer", &kubeconfig).expect("kubeconfig");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python_auth.py");
    let out = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(&kubeconfig)
        .output()
        .await
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python failed:\n{stderr}");
    let answer: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");

    assert_eq!(answer["authenticated"], true, "{answer}");
    assert_eq!(answer["username"], SA);
    assert_eq!(
        answer["groups"],
        json!(["system:serviceaccounts", "system:serviceaccounts:arcgis", "system:authenticated"])
    );
    assert!(answer["uid"].as_str().is_some_and(|uid| uid.len() == 36), "{answer}");
    assert_eq!(answer["audiences"], json!(["https://kubernetes.default.svc.cluster.local"]));
    assert_eq!(answer["bogus"], json!({"authenticated": null, "error": "invalid bearer token"}));
    assert_eq!(
        answer["allowed"],
        json!({"allowed": true, "reason": r#"RBAC: allowed by RoleBinding "reviewer-patcher/arcgis" of Role "patcher" to ServiceAccount "reviewer/arcgis""#})
    );
    assert_eq!(answer["denied"], json!({"allowed": false, "reason": null}));
    assert_eq!(answer["self"], json!({"allowed": false}));
    assert_eq!(answer["forbidden"]["status"], 403);
    assert_eq!(
        answer["forbidden"]["body"]["message"],
        format!(
            r#"namespaces is forbidden: User "{SA}" cannot list resource "namespaces" in API group "" at the cluster scope"#
        )
    );
    h.shutdown().await;
}
