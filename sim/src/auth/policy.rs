//! The default RBAC policy the real API server bootstraps
//! (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy`), as far as a
//! cluster without nodes and controllers needs it: `cluster-admin` bound to
//! `system:masters`; `system:discovery`, `system:basic-user` and
//! `system:public-info-viewer` bound to the authenticated (and, for the
//! public info, the unauthenticated) users; and `system:auth-delegator`,
//! unbound, for delegated authentication and authorization. Rule lists are
//! sorted, as the policy builder sorts them.

use serde_json::{Value, json};

use super::rbac::RBAC_GROUP;
use super::user::{AUTHENTICATED, SYSTEM_MASTERS, UNAUTHENTICATED};

fn metadata(name: &str) -> Value {
    json!({
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": metadata(name),
        "rules": rules,
    })
}

fn cluster_binding(name: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|group| json!({"apiGroup": RBAC_GROUP, "kind": "Group", "name": group}))
        .collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": metadata(name),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
        "subjects": subjects,
    })
}

/// The default ClusterRoles, then their ClusterRoleBindings.
pub fn bootstrap_policy() -> Vec<Value> {
    vec![
        cluster_role(
            "cluster-admin",
            json!([
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ]),
        ),
        cluster_role(
            "system:discovery",
            json!([{
                "nonResourceURLs": [
                    "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                    "/openapi", "/openapi/*", "/readyz", "/version", "/version/",
                ],
                "verbs": ["get"],
            }]),
        ),
        cluster_role(
            "system:basic-user",
            json!([
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    "verbs": ["create"],
                },
                {
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["selfsubjectreviews"],
                    "verbs": ["create"],
                },
            ]),
        ),
        cluster_role(
            "system:public-info-viewer",
            json!([{
                "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                "verbs": ["get"],
            }]),
        ),
        cluster_role(
            "system:auth-delegator",
            json!([
                {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
                {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
            ]),
        ),
        cluster_binding("cluster-admin", &[SYSTEM_MASTERS]),
        cluster_binding("system:basic-user", &[AUTHENTICATED]),
        cluster_binding("system:discovery", &[AUTHENTICATED]),
        cluster_binding("system:public-info-viewer", &[AUTHENTICATED, UNAUTHENTICATED]),
    ]
}
