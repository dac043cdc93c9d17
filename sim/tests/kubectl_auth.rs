//! RBAC through real kubectls, from 1.27 to the installed one: Roles,
//! ClusterRoles and bindings applied with `kubectl apply`, a ServiceAccount
//! token from `kubectl create token`, then with `--token`: `auth can-i`
//! (namespaced, resourceNames, subresources, cluster scope, non-resource
//! URLs, `--list`), `auth whoami`, the real 403 texts of forbidden commands,
//! and 401 without credentials.

mod common;

use std::path::{Path, PathBuf};

use common::kubectl::{self, KubectlBin};
use servicerefresh_sim::SimConfig;

const SA: &str = "system:serviceaccount:arcgis:operator";

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name).display().to_string()
}

struct Kubeconfigs {
    /// The secure side with the admin token.
    admin: PathBuf,
    /// Whether the sim serves `/openapi/v2`, which kubectl before 1.29
    /// reads to validate what it applies.
    openapi_v2: bool,
    /// The secure side without credentials (`--token` adds them).
    anonymous: PathBuf,
    /// The secure side with basic-auth credentials, which no authenticator
    /// of the server takes: an anonymous request (a kubeconfig without any
    /// credentials would make kubectl prompt for them).
    basic: PathBuf,
}

async fn can_i(
    bin: &KubectlBin,
    configs: &Kubeconfigs,
    token: &str,
    args: &[&str],
    expected: bool,
) {
    let mut full = vec!["--token", token, "auth", "can-i"];
    full.extend_from_slice(args);
    let ran = bin.run(&configs.anonymous, &full).await;
    let answer = if expected { "yes" } else { "no" };
    assert_eq!(ran.stdout.trim(), answer, "kubectl {} auth can-i {args:?}:\n{ran}", bin.version);
    assert_eq!(
        ran.code,
        Some(if expected { 0 } else { 1 }),
        "kubectl {} auth can-i {args:?}:\n{ran}",
        bin.version
    );
}

/// A command the ServiceAccount may not run: `message` after kubectl's
/// `Error from server (Forbidden): `, or the whole line when `message`
/// starts with `error:`.
async fn forbidden(
    bin: &KubectlBin,
    configs: &Kubeconfigs,
    token: &str,
    args: &[&str],
    message: &str,
) {
    let mut full = vec!["--token", token];
    full.extend_from_slice(args);
    let ran = bin.run(&configs.anonymous, &full).await;
    assert!(!ran.ok(), "kubectl {} {args:?} succeeded:\n{ran}", bin.version);
    let expected = if message.starts_with("error:") {
        message.to_string()
    } else {
        format!("Error from server (Forbidden): {message}")
    };
    assert!(
        ran.stderr.contains(&expected),
        "kubectl {} {args:?}: wanted {expected}\n{ran}",
        bin.version
    );
}

async fn check(bin: &KubectlBin, configs: &Kubeconfigs) {
    let version = &bin.version;
    let rbac = fixture("rbac.yaml");
    let mut apply = vec!["apply", "-f", rbac.as_str()];
    if kubectl::minor(bin) < 29 && !configs.openapi_v2 {
        apply.push("--validate=false");
    }
    let applied = bin.ok(&configs.admin, &apply).await;
    assert!(applied.contains("role.rbac.authorization.k8s.io/restarter"), "{version}: {applied}");
    let token = bin.ok(&configs.admin, &["create", "token", "operator", "-n", "arcgis"]).await;
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "{version}: a JWT: {token}");

    // What the ServiceAccount may do.
    for (args, expected) in [
        (&["patch", "deployments", "-n", "arcgis"][..], true),
        (&["delete", "deployments", "-n", "arcgis"][..], false),
        (&["patch", "deployments", "-n", "default"][..], false),
        (&["list", "deployments.apps", "-n", "default"][..], true),
        (&["get", "deployments", "--subresource=status", "-n", "arcgis"][..], true),
        (&["patch", "deployments", "--subresource=status", "-n", "arcgis"][..], false),
        (&["get", "configmaps/proxy-settings", "-n", "arcgis"][..], true),
        (&["get", "configmaps/other-settings", "-n", "arcgis"][..], false),
        (&["list", "configmaps", "-n", "arcgis"][..], false),
        (&["list", "namespaces"][..], true),
        (&["delete", "namespaces"][..], false),
        (&["get", "/metrics"][..], true),
        (&["get", "/logs/kube-apiserver.log"][..], true),
        (&["get", "/debug/pprof"][..], false),
        (&["create", "selfsubjectaccessreviews.authorization.k8s.io"][..], true),
    ] {
        can_i(bin, configs, token, args, expected).await;
    }
    let list = bin
        .ok(&configs.anonymous, &["--token", token, "auth", "can-i", "--list", "-n", "arcgis"])
        .await;
    let row = |resource: &str| {
        list.lines().find(|line| line.starts_with(resource)).unwrap_or("").to_string()
    };
    let deployments = row("deployments.apps ");
    assert!(deployments.contains("[get list watch patch]"), "{version}: {list}");
    assert!(row("configmaps ").contains("[proxy-settings]"), "{version}: {list}");
    assert!(list.contains("[/metrics]") && list.contains("[/logs/*]"), "{version}: {list}");

    // Who the token is.
    let whoami = bin.run(&configs.anonymous, &["--token", token, "auth", "whoami"]).await;
    if kubectl::minor(bin) >= 28 {
        assert!(whoami.ok(), "{version}: {whoami}");
        assert!(
            whoami.stdout.contains(&format!("Username   {SA}"))
                || whoami
                    .stdout
                    .lines()
                    .any(|line| line.starts_with("Username") && line.ends_with(SA)),
            "{version}: {whoami}"
        );
        assert!(
            whoami.stdout.contains(
                "[system:serviceaccounts system:serviceaccounts:arcgis system:authenticated]"
            ),
            "{version}: {whoami}"
        );
        assert!(
            whoami.stdout.contains("authentication.kubernetes.io/credential-id"),
            "{version}: {whoami}"
        );
    } else {
        // kubectl 1.27 asks authentication.k8s.io/v1beta1 and v1alpha1, which a
        // 1.32 server does not serve by default.
        assert!(
            whoami.stderr.contains("the selfsubjectreviews API is not enabled in the cluster"),
            "{version}: {whoami}"
        );
    }
    let admin = bin
        .run(&configs.admin, &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"])
        .await;
    if kubectl::minor(bin) >= 28 {
        assert_eq!(admin.stdout, "kubernetes-admin", "{version}: {admin}");
    }

    // What it may not do, in the real server's words.
    forbidden(
        bin,
        configs,
        token,
        &["get", "deployments", "-n", "kube-system"],
        &format!(r#"deployments.apps is forbidden: User "{SA}" cannot list resource "deployments" in API group "apps" in the namespace "kube-system""#),
    )
    .await;
    forbidden(
        bin,
        configs,
        token,
        &["get", "deployment", "web", "-n", "kube-system"],
        &format!(r#"deployments.apps "web" is forbidden: User "{SA}" cannot get resource "deployments" in API group "apps" in the namespace "kube-system""#),
    )
    .await;
    forbidden(
        bin,
        configs,
        token,
        &["patch", "deployment", "web", "-n", "default", "-p", r#"{"metadata":{"labels":{"restarted":"yes"}}}"#],
        &format!(r#"deployments.apps "web" is forbidden: User "{SA}" cannot patch resource "deployments" in API group "apps" in the namespace "default""#),
    )
    .await;
    forbidden(
        bin,
        configs,
        token,
        &["get", "clusterroles"],
        &format!(r#"clusterroles.rbac.authorization.k8s.io is forbidden: User "{SA}" cannot list resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope"#),
    )
    .await;
    forbidden(
        bin,
        configs,
        token,
        &["get", "--raw", "/debug/pprof"],
        &format!(r#"forbidden: User "{SA}" cannot get path "/debug/pprof""#),
    )
    .await;
    forbidden(
        bin,
        configs,
        token,
        &["create", "token", "operator", "-n", "arcgis"],
        &format!(r#"error: failed to create token: serviceaccounts "operator" is forbidden: User "{SA}" cannot create resource "serviceaccounts/token" in API group "" in the namespace "arcgis""#),
    )
    .await;
    // And what it may.
    let listed = bin
        .ok(&configs.anonymous, &["--token", token, "get", "deployments", "-n", "default"])
        .await;
    assert!(listed.contains("web"), "{version}: {listed}");

    // Without credentials.
    let anonymous = bin.run(&configs.basic, &["get", "pods"]).await;
    assert!(!anonymous.ok());
    assert!(
        anonymous.stderr.contains("error: You must be logged in to the server (Unauthorized)"),
        "{version}: {anonymous}"
    );
    let expired = bin.run(&configs.anonymous, &["--token", "not-a-token", "get", "pods"]).await;
    assert!(expired.stderr.contains("(Unauthorized)"), "{version}: {expired}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_matrix() {
    let bins = kubectl::matrix("auth");
    if bins.is_empty() {
        eprintln!("no kubectl installed: skipping");
        return;
    }
    let (h, _c) = common::sim(SimConfig::default()).await;
    let dir = tempfile::Builder::new().prefix("sim-kubectl-auth-").tempdir().expect("temp dir");
    let mut configs = Kubeconfigs {
        admin: dir.path().join("admin"),
        openapi_v2: false,
        anonymous: dir.path().join("anonymous"),
        basic: dir.path().join("basic"),
    };
    std::fs::write(
        &configs.admin,
        h.secure_kubeconfig_yaml("admin", Some(&h.admin_token()), "arcgis"),
    )
    .expect("kubeconfig");
    let anonymous = h.secure_kubeconfig_yaml("anonymous", None, "arcgis");
    std::fs::write(&configs.anonymous, &anonymous).expect("kubeconfig");
    let basic =
        anonymous.replace("  user: {}", "  user:\n    username: nobody\n    password: nothing");
    assert_ne!(basic, anonymous);
    std::fs::write(&configs.basic, basic).expect("kubeconfig");
    configs.openapi_v2 = bins[0].run(&configs.admin, &["get", "--raw", "/openapi/v2"]).await.ok();
    bins[0]
        .ok(&configs.admin, &["create", "deployment", "web", "--image=nginx:1.27", "-n", "default"])
        .await;
    bins[0]
        .ok(
            &configs.admin,
            &["create", "deployment", "web", "--image=nginx:1.27", "-n", "kube-system"],
        )
        .await;
    for bin in &bins {
        check(bin, &configs).await;
    }
    eprintln!(
        "checked kubectl {:?}",
        bins.iter().map(|bin| bin.version.as_str()).collect::<Vec<_>>()
    );
    h.shutdown().await;
}
