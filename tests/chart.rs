//! The Helm chart in `charts/servicerefresh`, rendered with `helm template` (helm 3) and
//! checked on the parsed objects: the restricted Pod Security Standard field by field,
//! least-privilege RBAC in both modes, the PodDisruptionBudget, the operator's command line,
//! the values schema's error messages, and the chart's copy of the CRD.
//!
//! helm comes from `.ci/tools/bin/helm3` (installed by `.ci/install-tools`), else from the PATH.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

const RELEASE: &str = "sr";
const RELEASE_NAMESPACE: &str = "servicerefresh-system";
const FULLNAME: &str = "sr-servicerefresh";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("charts").join("servicerefresh")
}

fn helm() -> PathBuf {
    let installed = root().join(".ci/tools/bin/helm3");
    if installed.is_file() {
        return installed;
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path).map(|dir| dir.join("helm")).find(|helm| helm.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "helm 3 is missing: neither {} nor `helm` on the PATH exists. Run .ci/install-tools first.",
            installed.display()
        )
    })
}

/// helm 4 from `.ci/tools/bin/helm4`, if installed.
fn helm4() -> Option<PathBuf> {
    Some(root().join(".ci/tools/bin/helm4")).filter(|path| path.is_file())
}

/// `helm template` with `--set` values: the rendered objects, or helm's error output.
fn template(sets: &[&str]) -> Result<Vec<Value>, String> {
    template_with(&helm(), sets)
}

fn template_with(helm: &std::path::Path, sets: &[&str]) -> Result<Vec<Value>, String> {
    let mut command = Command::new(helm);
    command.arg("template").arg(RELEASE).arg(chart()).args(["--namespace", RELEASE_NAMESPACE]);
    for set in sets {
        command.args(["--set", set]);
    }
    let output = command.output().expect("helm runs");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let text = String::from_utf8(output.stdout).expect("helm prints UTF-8");
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|err| panic!("helm template {sets:?} printed invalid YAML: {err}\n{text}"));
    Ok(documents.into_iter().filter(|document| !document.is_null()).collect())
}

fn render(sets: &[&str]) -> Vec<Value> {
    template(sets).unwrap_or_else(|err| panic!("helm template {sets:?} failed:\n{err}"))
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|object| object["kind"] == kind).collect()
}

fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(objects, kind);
    assert_eq!(found.len(), 1, "expected exactly one {kind}, found {}", found.len());
    found[0]
}

fn kinds(objects: &[Value]) -> BTreeSet<String> {
    objects.iter().map(|object| object["kind"].as_str().unwrap_or("?").to_owned()).collect()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn operator_container(objects: &[Value]) -> &Value {
    let deployment = one(objects, "Deployment");
    let containers = deployment["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "the operator pod has one container");
    &containers[0]
}

fn args(objects: &[Value]) -> Vec<&str> {
    strings(&operator_container(objects)["args"])
}

const ADMIN: &str =
    "admin.enabled=true,admin.target=arcgis/refresh-all,admin.tls.secretName=sr-tls";
const NAMESPACED_ADMIN: &str = "watchNamespace=arcgis,admin.enabled=true,admin.target=arcgis/refresh-all,admin.tls.secretName=sr-tls,admin.authDelegator=true";

/// The value sets CI also validates with kubernetes-validate, plus the admin API variants.
fn value_sets() -> Vec<Vec<&'static str>> {
    vec![
        vec![],
        vec!["watchNamespace=arcgis"],
        vec!["replicaCount=3"],
        vec!["replicaCount=1", "leaderElection.enabled=false"],
        vec![ADMIN],
        vec![NAMESPACED_ADMIN],
    ]
}

// ---- Pod Security Standard "restricted" -------------------------------------------------

/// Every rule of the restricted profile (which includes baseline), as the Pod Security
/// admission controller checks it, plus the chart's own promises (fixed UID/GID 65532,
/// read-only root filesystem). Returns the violations.
fn restricted_violations(pod: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    let mut fail = |message: String| violations.push(message);
    let pod_security = &pod["securityContext"];

    // baseline: host namespaces, host paths and ports, privileged, hostProcess, sysctls.
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[field] == true {
            fail(format!("spec.{field} is true"));
        }
    }
    if pod_security["windowsOptions"]["hostProcess"] == true {
        fail("spec.securityContext.windowsOptions.hostProcess is true".into());
    }
    const SAFE_SYSCTLS: &[&str] = &[
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    ];
    for sysctl in pod_security["sysctls"].as_array().into_iter().flatten() {
        let name = sysctl["name"].as_str().unwrap_or_default();
        if !SAFE_SYSCTLS.contains(&name) {
            fail(format!("unsafe sysctl {name}"));
        }
    }
    // restricted: only these volume types.
    const VOLUME_TYPES: &[&str] = &[
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        for key in volume.as_object().unwrap().keys().filter(|key| key.as_str() != "name") {
            if !VOLUME_TYPES.contains(&key.as_str()) {
                fail(format!("volume {} has the disallowed type {key}", volume["name"]));
            }
        }
    }
    // baseline: SELinux, AppArmor (pod level).
    check_se_linux(&pod_security["seLinuxOptions"], "spec.securityContext", &mut fail);
    check_app_armor(&pod_security["appArmorProfile"], "spec.securityContext", &mut fail);

    // Pod-level settings the containers inherit.
    let pod_non_root = pod_security["runAsNonRoot"] == true;
    let pod_seccomp = pod_security["seccompProfile"]["type"].as_str();
    // An explicit false is a violation even when every container sets true.
    if pod_security["runAsNonRoot"] == false {
        fail("spec.securityContext.runAsNonRoot is false".into());
    }
    if pod_security["runAsUser"] == 0 {
        fail("spec.securityContext.runAsUser is 0".into());
    }
    if let Some(kind) = pod_seccomp
        && kind != "RuntimeDefault"
        && kind != "Localhost"
    {
        fail(format!("spec.securityContext.seccompProfile.type is {kind}"));
    }

    let containers = ["containers", "initContainers", "ephemeralContainers"]
        .into_iter()
        .flat_map(|field| pod[field].as_array().cloned().unwrap_or_default());
    for container in containers {
        let name = container["name"].as_str().unwrap_or("?").to_owned();
        let security = &container["securityContext"];
        let at = format!("container {name}: securityContext");
        if security["privileged"] == true {
            fail(format!("{at}.privileged is true"));
        }
        if security["windowsOptions"]["hostProcess"] == true {
            fail(format!("{at}.windowsOptions.hostProcess is true"));
        }
        if security["procMount"].as_str().is_some_and(|mount| mount != "Default") {
            fail(format!("{at}.procMount is not Default"));
        }
        check_se_linux(&security["seLinuxOptions"], &at, &mut fail);
        check_app_armor(&security["appArmorProfile"], &at, &mut fail);
        for port in container["ports"].as_array().into_iter().flatten() {
            if port["hostPort"].as_i64().unwrap_or(0) != 0 {
                fail(format!("container {name}: hostPort {}", port["hostPort"]));
            }
        }
        // restricted
        if security["allowPrivilegeEscalation"] != false {
            fail(format!("{at}.allowPrivilegeEscalation is not false"));
        }
        let non_root = match security["runAsNonRoot"].as_bool() {
            Some(value) => value,
            None => pod_non_root,
        };
        if !non_root {
            fail(format!("{at}.runAsNonRoot is not true (nor the pod's)"));
        }
        if security["runAsUser"] == 0 {
            fail(format!("{at}.runAsUser is 0"));
        }
        match security["seccompProfile"]["type"].as_str().or(pod_seccomp) {
            Some("RuntimeDefault" | "Localhost") => {}
            other => fail(format!("{at}.seccompProfile.type is {other:?} (nor set on the pod)")),
        }
        let capabilities = &security["capabilities"];
        if !strings(&capabilities["drop"]).contains(&"ALL") {
            fail(format!("{at}.capabilities.drop does not contain ALL"));
        }
        for added in strings(&capabilities["add"]) {
            if added != "NET_BIND_SERVICE" {
                fail(format!("{at}.capabilities.add contains {added}"));
            }
        }
        // The chart's promises beyond the profile.
        if security["readOnlyRootFilesystem"] != true {
            fail(format!("{at}.readOnlyRootFilesystem is not true"));
        }
        for field in ["runAsUser", "runAsGroup"] {
            let effective = security.get(field).unwrap_or(&pod_security[field]);
            if effective != 65532 {
                fail(format!("{at}.{field} is {effective}, not 65532"));
            }
        }
    }
    violations
}

fn check_se_linux(options: &Value, at: &str, fail: &mut impl FnMut(String)) {
    const TYPES: &[&str] =
        &["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"];
    if let Some(kind) = options["type"].as_str()
        && !TYPES.contains(&kind)
    {
        fail(format!("{at}.seLinuxOptions.type is {kind}"));
    }
    for field in ["user", "role"] {
        if options[field].as_str().is_some_and(|value| !value.is_empty()) {
            fail(format!("{at}.seLinuxOptions.{field} is set"));
        }
    }
}

fn check_app_armor(profile: &Value, at: &str, fail: &mut impl FnMut(String)) {
    if let Some(kind) = profile["type"].as_str()
        && kind != "RuntimeDefault"
        && kind != "Localhost"
    {
        fail(format!("{at}.appArmorProfile.type is {kind}"));
    }
}

#[test]
fn the_operator_pod_meets_the_restricted_pod_security_standard() {
    for sets in value_sets() {
        let objects = render(&sets);
        let deployment = one(&objects, "Deployment");
        let template = &deployment["spec"]["template"];
        let violations = restricted_violations(&template["spec"]);
        assert!(
            violations.is_empty(),
            "with {sets:?} the pod breaks `restricted`:\n{violations:#?}"
        );
        // baseline: AppArmor annotations, where set, name a permitted profile.
        if let Some(annotations) = template["metadata"]["annotations"].as_object() {
            for (key, value) in annotations {
                if key.starts_with("container.apparmor.security.beta.kubernetes.io/") {
                    let value = value.as_str().unwrap_or_default();
                    assert!(value == "runtime/default" || value.starts_with("localhost/"));
                }
            }
        }
        // The pod mounts a token for the API server; the ServiceAccount does not by default.
        assert_eq!(template["spec"]["automountServiceAccountToken"], true, "{sets:?}");
        assert_eq!(one(&objects, "ServiceAccount")["automountServiceAccountToken"], false);
    }
}

#[test]
fn the_pss_check_catches_each_broken_rule() {
    let objects = render(&[ADMIN]);
    let pod = &one(&objects, "Deployment")["spec"]["template"]["spec"];
    let breakages: &[(&str, Value)] = &[
        ("/hostNetwork", json!(true)),
        ("/securityContext/runAsNonRoot", json!(false)),
        ("/securityContext/seccompProfile/type", json!("Unconfined")),
        ("/containers/0/securityContext/allowPrivilegeEscalation", json!(true)),
        ("/containers/0/securityContext/capabilities/drop", json!(["NET_RAW"])),
        ("/containers/0/securityContext/capabilities/add", json!(["SYS_ADMIN"])),
        ("/containers/0/securityContext/privileged", json!(true)),
        ("/containers/0/securityContext/readOnlyRootFilesystem", json!(false)),
        ("/containers/0/securityContext/runAsUser", json!(0)),
        ("/containers/0/securityContext/seccompProfile/type", json!("Unconfined")),
        ("/volumes/0", json!({"name": "host", "hostPath": {"path": "/"}})),
    ];
    for (pointer, value) in breakages {
        let mut broken = pod.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        match broken.pointer_mut(parent) {
            Some(Value::Object(fields)) => {
                fields.insert(key.to_owned(), value.clone());
            }
            Some(Value::Array(items)) => items[key.parse::<usize>().unwrap()] = value.clone(),
            _ => panic!("{parent} is not in the rendered pod"),
        }
        assert!(!restricted_violations(&broken).is_empty(), "{pointer} = {value} went unnoticed");
    }
}

// ---- RBAC -------------------------------------------------------------------------------

/// A rule as a comparable line: `group resource [names] verbs`.
fn rule_lines(role: &Value) -> BTreeSet<String> {
    role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| {
            let mut verbs = strings(&rule["verbs"]);
            verbs.sort();
            let names = strings(&rule["resourceNames"]);
            let groups = strings(&rule["apiGroups"]);
            let resources = strings(&rule["resources"]);
            groups
                .iter()
                .flat_map(|group| resources.iter().map(move |resource| (*group, *resource)))
                .map(|(group, resource)| {
                    let group = if group.is_empty() { "core" } else { group };
                    let names =
                        if names.is_empty() { String::new() } else { format!(" {names:?}") };
                    format!("{group} {resource}{names}: {}", verbs.join(","))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn lines(expected: &[&str]) -> BTreeSet<String> {
    expected.iter().map(|line| (*line).to_owned()).collect()
}

const OPERATOR_RULES: &[&str] = &[
    "gisops.io servicerefreshes: list,watch",
    "gisops.io servicerefreshes/status: patch",
    "apps deployments: list,patch,watch",
    "core configmaps: list,watch",
    "core pods: list,watch",
    "policy poddisruptionbudgets: list,watch",
    "events.k8s.io events: create",
    "gisops.io servicerefreshplans: create,list,patch",
];
const ADMIN_RULES: &[&str] = &["gisops.io servicerefreshes: patch"];
const AUTH_RULES: &[&str] = &[
    "authentication.k8s.io tokenreviews: create",
    "authorization.k8s.io subjectaccessreviews: create",
];
const LEASE_RULES: &[&str] = &[
    "coordination.k8s.io leases: create",
    "coordination.k8s.io leases [\"sr-servicerefresh\"]: get,patch",
];

#[test]
fn rbac_has_no_wildcard_no_secrets_and_no_update() {
    for sets in value_sets() {
        let objects = render(&sets);
        let roles = objects
            .iter()
            .filter(|object| object["kind"] == "Role" || object["kind"] == "ClusterRole");
        for role in roles {
            for rule in role["rules"].as_array().unwrap() {
                let at = format!("{sets:?} {} {}: {rule}", role["kind"], role["metadata"]["name"]);
                for field in ["apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"]
                {
                    assert!(
                        !strings(&rule[field]).iter().any(|item| item.contains('*')),
                        "wildcard in {at}"
                    );
                }
                assert!(!strings(&rule["resources"]).contains(&"secrets"), "Secrets in {at}");
                for verb in
                    ["update", "delete", "deletecollection", "escalate", "bind", "impersonate"]
                {
                    assert!(!strings(&rule["verbs"]).contains(&verb), "{verb} in {at}");
                }
            }
        }
        for binding in of_kind(&objects, "ClusterRoleBinding")
            .into_iter()
            .chain(of_kind(&objects, "RoleBinding"))
        {
            let role = binding["roleRef"]["name"].as_str().unwrap();
            assert!(
                role != "cluster-admin" && role != "admin" && role != "edit",
                "{sets:?} binds {role}"
            );
        }
    }
}

#[test]
fn cluster_wide_mode_grants_exactly_the_operators_verbs() {
    let objects = render(&[]);
    let cluster_role = one(&objects, "ClusterRole");
    assert_eq!(rule_lines(cluster_role), lines(OPERATOR_RULES));
    let binding = one(&objects, "ClusterRoleBinding");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": FULLNAME})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": FULLNAME, "namespace": RELEASE_NAMESPACE}])
    );
    // Leader election: a Role in the release namespace only.
    let lease_role = one(&objects, "Role");
    assert_eq!(lease_role["metadata"]["namespace"], RELEASE_NAMESPACE);
    assert_eq!(rule_lines(lease_role), lines(LEASE_RULES));
    assert!(!args(&objects).iter().any(|arg| arg.starts_with("--watch-namespace")));

    let with_admin = render(&[ADMIN]);
    let expected: Vec<&str> = [OPERATOR_RULES, ADMIN_RULES, AUTH_RULES].concat();
    assert_eq!(rule_lines(one(&with_admin, "ClusterRole")), lines(&expected));
}

#[test]
fn statefulsets_and_daemonsets_are_granted_and_watched_only_when_enabled() {
    let off = render(&[]);
    assert!(!args(&off).iter().any(|arg| arg.starts_with("--workload-kinds")));
    let sets_rule = "apps statefulsets: list,patch,watch";
    let daemons_rule = "apps daemonsets: list,patch,watch";

    let sets_only = render(&["workloadKinds.statefulSets=true"]);
    let expected: Vec<&str> = [OPERATOR_RULES, &[sets_rule]].concat();
    assert_eq!(rule_lines(one(&sets_only, "ClusterRole")), lines(&expected));
    assert!(args(&sets_only).contains(&"--workload-kinds=Deployment,StatefulSet"));

    let both = render(&[
        "workloadKinds.statefulSets=true",
        "workloadKinds.daemonSets=true",
        "watchNamespace=arcgis",
    ]);
    let role = of_kind(&both, "Role")
        .into_iter()
        .find(|role| role["metadata"]["namespace"] == "arcgis")
        .expect("the operator's Role");
    let expected: Vec<&str> = [OPERATOR_RULES, &[sets_rule, daemons_rule]].concat();
    assert_eq!(rule_lines(role), lines(&expected));
    assert!(args(&both).contains(&"--workload-kinds=Deployment,StatefulSet,DaemonSet"));
}

#[test]
fn secrets_are_granted_and_watched_only_when_enabled_and_only_by_name() {
    let off = render(&[]);
    assert!(!args(&off).contains(&"--secret-triggers"));
    assert!(
        !off.iter().any(|object| object["metadata"]["name"] == "sr-servicerefresh-secret-triggers"),
        "no Secret grant without secretTriggers.enabled"
    );

    let secret_roles = |objects: &[Value]| -> Vec<(String, BTreeSet<String>)> {
        of_kind(objects, "Role")
            .into_iter()
            .filter(|role| role["metadata"]["name"] == "sr-servicerefresh-secret-triggers")
            .map(|role| {
                (role["metadata"]["namespace"].as_str().unwrap().to_owned(), rule_lines(role))
            })
            .collect()
    };
    let named_rule = "core secrets [\"arcgis-trust\", \"portal-tls\"]: list,watch";
    // Cluster-wide: a Role (never a ClusterRole rule) in each listed namespace.
    let cluster_wide = render(&[
        "secretTriggers.enabled=true",
        "secretTriggers.names={arcgis-trust,portal-tls}",
        "secretTriggers.namespaces={arcgis,portal}",
    ]);
    assert!(args(&cluster_wide).contains(&"--secret-triggers"));
    assert_eq!(
        secret_roles(&cluster_wide),
        [("arcgis".to_owned(), lines(&[named_rule])), ("portal".to_owned(), lines(&[named_rule]))]
    );
    assert_eq!(rule_lines(one(&cluster_wide, "ClusterRole")), lines(OPERATOR_RULES));
    let bindings: Vec<&Value> = of_kind(&cluster_wide, "RoleBinding")
        .into_iter()
        .filter(|binding| binding["metadata"]["name"] == "sr-servicerefresh-secret-triggers")
        .collect();
    assert_eq!(bindings.len(), 2);
    for binding in bindings {
        assert_eq!(binding["roleRef"]["name"], "sr-servicerefresh-secret-triggers");
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": FULLNAME, "namespace": RELEASE_NAMESPACE}])
        );
    }

    // Namespaced: the watched namespace by default.
    let namespaced = render(&[
        "watchNamespace=arcgis",
        "secretTriggers.enabled=true",
        "secretTriggers.names={arcgis-trust,portal-tls}",
    ]);
    assert_eq!(secret_roles(&namespaced), [("arcgis".to_owned(), lines(&[named_rule]))]);
}

#[test]
fn secrets_that_gates_and_webhooks_refer_to_are_granted_get_by_name_only_when_listed() {
    let refs_roles = |objects: &[Value]| -> Vec<(String, BTreeSet<String>)> {
        of_kind(objects, "Role")
            .into_iter()
            .filter(|role| role["metadata"]["name"] == "sr-servicerefresh-secret-refs")
            .map(|role| {
                (role["metadata"]["namespace"].as_str().unwrap().to_owned(), rule_lines(role))
            })
            .collect()
    };
    assert!(refs_roles(&render(&[])).is_empty(), "no Secret is granted by default");
    let get_rule = "core secrets [\"monitoring-token\", \"servicerefresh-hooks\"]: get";
    let cluster_wide = render(&[
        "secretRefs.names={monitoring-token,servicerefresh-hooks}",
        "secretRefs.namespaces={arcgis,portal}",
    ]);
    assert_eq!(
        refs_roles(&cluster_wide),
        [("arcgis".to_owned(), lines(&[get_rule])), ("portal".to_owned(), lines(&[get_rule]))]
    );
    assert_eq!(rule_lines(one(&cluster_wide, "ClusterRole")), lines(OPERATOR_RULES));
    let bindings: Vec<&Value> = of_kind(&cluster_wide, "RoleBinding")
        .into_iter()
        .filter(|binding| binding["metadata"]["name"] == "sr-servicerefresh-secret-refs")
        .collect();
    assert_eq!(bindings.len(), 2);
    for binding in bindings {
        assert_eq!(binding["roleRef"]["name"], "sr-servicerefresh-secret-refs");
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": FULLNAME, "namespace": RELEASE_NAMESPACE}])
        );
    }
    let namespaced = render(&[
        "watchNamespace=arcgis",
        "secretRefs.names={monitoring-token,servicerefresh-hooks}",
    ]);
    assert_eq!(refs_roles(&namespaced), [("arcgis".to_owned(), lines(&[get_rule]))]);
}

const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "Namespace",
    "PriorityClass",
    "StorageClass",
    "PersistentVolume",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "APIService",
    "IngressClass",
    "RuntimeClass",
];

#[test]
fn namespaced_mode_renders_no_cluster_scoped_object() {
    let objects = render(&["watchNamespace=arcgis"]);
    let cluster_scoped: Vec<_> = kinds(&objects)
        .into_iter()
        .filter(|kind| CLUSTER_SCOPED_KINDS.contains(&kind.as_str()))
        .collect();
    assert!(cluster_scoped.is_empty(), "namespaced mode renders {cluster_scoped:?}");
    for object in &objects {
        assert!(
            object["metadata"]["namespace"].is_string(),
            "{} {} has no namespace",
            object["kind"],
            object["metadata"]["name"]
        );
    }
    // The operator's own rights: in the watched namespace only.
    let roles = of_kind(&objects, "Role");
    let operator_role = roles
        .iter()
        .find(|role| role["metadata"]["namespace"] == "arcgis")
        .expect("a Role in arcgis");
    assert_eq!(rule_lines(operator_role), lines(OPERATOR_RULES));
    let binding = of_kind(&objects, "RoleBinding")
        .into_iter()
        .find(|b| b["metadata"]["namespace"] == "arcgis")
        .unwrap();
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["subjects"][0]["namespace"], RELEASE_NAMESPACE);
    // Leader election: the Lease in the release namespace.
    let lease_role =
        roles.iter().find(|role| role["metadata"]["namespace"] == RELEASE_NAMESPACE).unwrap();
    assert_eq!(rule_lines(lease_role), lines(LEASE_RULES));
    assert!(args(&objects).contains(&"--watch-namespace=arcgis"));
}

#[test]
fn the_namespaced_admin_api_needs_the_auth_delegator_opt_in() {
    let err = template(&["watchNamespace=arcgis,admin.enabled=true,admin.target=arcgis/refresh-all,admin.tls.secretName=sr-tls"])
        .expect_err("admin API in namespaced mode without admin.authDelegator renders");
    assert!(err.contains("admin.authDelegator=true") && err.contains("TokenReview"), "{err}");

    let objects = render(&[NAMESPACED_ADMIN]);
    // The one cluster-scoped object of namespaced mode: a binding to system:auth-delegator.
    let cluster_scoped: Vec<&Value> = objects
        .iter()
        .filter(|object| {
            CLUSTER_SCOPED_KINDS.contains(&object["kind"].as_str().unwrap_or_default())
        })
        .collect();
    assert_eq!(cluster_scoped.len(), 1, "{cluster_scoped:#?}");
    assert_eq!(cluster_scoped[0]["kind"], "ClusterRoleBinding");
    assert_eq!(cluster_scoped[0]["roleRef"]["name"], "system:auth-delegator");
    let operator_role = of_kind(&objects, "Role")
        .into_iter()
        .find(|role| role["metadata"]["namespace"] == "arcgis")
        .unwrap();
    let expected: Vec<&str> = [OPERATOR_RULES, ADMIN_RULES].concat();
    assert_eq!(rule_lines(operator_role), lines(&expected));
}

#[test]
fn leader_election_off_renders_no_lease_role() {
    let objects = render(&["replicaCount=1", "leaderElection.enabled=false"]);
    assert!(of_kind(&objects, "Role").is_empty());
    assert!(of_kind(&objects, "RoleBinding").is_empty());
    assert!(args(&objects).contains(&"--leader-election=false"));
}

// ---- Workload ---------------------------------------------------------------------------

#[test]
fn a_pod_disruption_budget_exists_iff_more_than_one_replica() {
    for (replicas, expected) in [(1, false), (2, true), (3, true)] {
        let set = format!("replicaCount={replicas}");
        let objects = render(&[&set]);
        assert_eq!(one(&objects, "Deployment")["spec"]["replicas"], replicas);
        let budgets = of_kind(&objects, "PodDisruptionBudget");
        assert_eq!(
            !budgets.is_empty(),
            expected,
            "replicaCount={replicas}: {} PDBs",
            budgets.len()
        );
        if expected {
            assert_eq!(budgets[0]["spec"]["maxUnavailable"], 1);
            let pod_labels = &one(&objects, "Deployment")["spec"]["template"]["metadata"]["labels"];
            for (key, value) in budgets[0]["spec"]["selector"]["matchLabels"].as_object().unwrap() {
                assert_eq!(&pod_labels[key], value, "the PDB selects the operator pods");
            }
        }
    }
    // The default: two replicas with leader election.
    let objects = render(&[]);
    assert_eq!(one(&objects, "Deployment")["spec"]["replicas"], 2);
    assert_eq!(of_kind(&objects, "PodDisruptionBudget").len(), 1);
}

#[test]
fn the_operator_gets_the_contracted_command_line() {
    let objects = render(&[]);
    let expected = [
        "run",
        "--log-format=json",
        "--max-concurrent-runs=1",
        "--min-restart-interval=5m",
        "--initial-list=paged",
        "--leader-election=true",
        "--lease-name=sr-servicerefresh",
        "--lease-namespace=servicerefresh-system",
        "--lease-duration=15s",
        "--lease-renew-deadline=10s",
        "--metrics-listen=0.0.0.0:8080",
    ];
    assert_eq!(args(&objects), expected);
    let container = operator_container(&objects);
    assert_eq!(
        container["env"],
        json!([
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        ])
    );
    assert_eq!(
        container["image"], "ghcr.io/gisops/servicerefresh:0.1.0",
        "the tag defaults to appVersion"
    );
    assert_eq!(
        container["ports"],
        json!([{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "metrics"})
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "metrics"})
    );
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "50m", "memory": "48Mi"}, "limits": {"memory": "128Mi"}})
    );
    let service = one(&objects, "Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    assert!(of_kind(&objects, "ServiceMonitor").is_empty(), "the ServiceMonitor is opt-in");

    let admin = render(&[
        ADMIN,
        "allowCrossNamespace=true",
        "logFormat=text",
        "maxConcurrentRuns=3",
        "healthGate.prometheusUrl=http://prometheus.monitoring:9090",
        "healthGate.alertmanagerUrl=https://alertmanager.monitoring:9093",
    ]);
    let admin_args = args(&admin);
    for arg in [
        "--prometheus-url=http://prometheus.monitoring:9090",
        "--alertmanager-url=https://alertmanager.monitoring:9093",
        "--log-format=text",
        "--max-concurrent-runs=3",
        "--allow-cross-namespace",
        "--admin-listen=0.0.0.0:8443",
        "--admin-target=arcgis/refresh-all",
        "--admin-context-root=/arcgis/admin",
        "--admin-tls-cert=/tls/tls.crt",
        "--admin-tls-key=/tls/tls.key",
        "--admin-header-read-timeout=10s",
        "--admin-idle-timeout=60s",
        "--admin-max-connections=512",
        "--admin-max-connections-per-client=64",
    ] {
        assert!(admin_args.contains(&arg), "{arg} missing from {admin_args:?}");
    }
    assert!(
        !admin_args.iter().any(|arg| arg.starts_with("--admin-external-url")),
        "no external URL unless set: {admin_args:?}"
    );
    let external = render(&[ADMIN, "admin.externalUrl=https://gis.example.com/arcgis/admin"]);
    assert!(
        args(&external).contains(&"--admin-external-url=https://gis.example.com/arcgis/admin"),
        "{:?}",
        args(&external)
    );
    let services = of_kind(&admin, "Service");
    let admin_service =
        services.iter().find(|s| s["metadata"]["name"] == "sr-servicerefresh-admin").unwrap();
    assert_eq!(admin_service["spec"]["ports"][0]["targetPort"], "admin");
    let mount = &operator_container(&admin)["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/tls");
    assert_eq!(mount["readOnly"], true);

    // Where pods share a network (the simulated cluster), each binds its own IP.
    let own_ip = render(&[
        ADMIN,
        "listenHost=$(POD_IP)",
        "extraEnv[0].name=POD_IP",
        "extraEnv[0].valueFrom.fieldRef.fieldPath=status.podIP",
    ]);
    let own_ip_args = args(&own_ip);
    for arg in ["--metrics-listen=$(POD_IP):8080", "--admin-listen=$(POD_IP):8443"] {
        assert!(own_ip_args.contains(&arg), "{arg} missing from {own_ip_args:?}");
    }
    assert_eq!(
        operator_container(&own_ip)["env"][2],
        json!({"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    );

    let monitored = render(&["metrics.serviceMonitor.enabled=true"]);
    assert_eq!(one(&monitored, "ServiceMonitor")["spec"]["endpoints"][0]["port"], "metrics");
}

// ---- Values schema ----------------------------------------------------------------------

#[test]
fn bad_values_fail_with_a_message_naming_the_value() {
    let cases = [
        ("replicaCount=two", "replicaCount"),
        ("logFormat=xml", "logFormat"),
        ("maxConcurrentRuns=0", "maxConcurrentRuns"),
        ("minRestartInterval=often", "minRestartInterval"),
        ("initialList=everything", "initialList"),
        ("healthGate.prometheusUrl=prometheus:9090", "prometheusUrl"),
        ("replicaCunt=2", "replicaCunt"),
        ("watchNamespace=Not_A_Namespace", "watchNamespace"),
        ("leaderElection.leaseDuration=soon", "leaseDuration"),
        ("replicaCount=2,leaderElection.enabled=false", "leaderElection.enabled"),
        ("watchNamespace=arcgis,allowCrossNamespace=true", "allowCrossNamespace"),
        ("admin.enabled=true,admin.tls.secretName=sr-tls", "admin.target"),
        ("admin.enabled=true,admin.target=arcgis/refresh-all", "admin.tls.secretName"),
        ("admin.contextRoot=/arcgis admin", "contextRoot"),
        ("admin.contextRoot=/arcgis/admin/", "contextRoot"),
        ("admin.contextRoot=/arcgis/../admin", "contextRoot"),
        ("admin.contextRoot=/arcgis/./admin", "contextRoot"),
        ("admin.contextRoot=/arcgis//admin", "contextRoot"),
        ("admin.contextRoot=/arcgis/%2e%2e", "contextRoot"),
        ("admin.externalUrl=gis.example.com", "externalUrl"),
        ("admin.externalUrl=https://gis.example.com/a?b", "externalUrl"),
        ("admin.idleTimeout=forever", "idleTimeout"),
        ("admin.maxConnections=0", "maxConnections"),
        ("admin.target=refresh-all", "admin.target"),
        ("metrics.port=70000", "metrics.port"),
        ("metrics.service.type=Ingress", "metrics.service.type"),
        ("image.pullPolicy=Sometimes", "image.pullPolicy"),
        ("leaderElection.leaseName=Bad_Name", "leaderElection.leaseName"),
        ("resources.limit.memory=1Gi", "limit"),
        ("terminationGracePeriodSeconds=-1", "terminationGracePeriodSeconds"),
        ("extraArgs=--retry-seconds=5", "extraArgs"),
        ("podLabels.team=1", "podLabels.team"),
        ("secretTriggers.names={Bad_Name}", "secretTriggers.names"),
        ("secretTriggers.enabled=yes", "secretTriggers.enabled"),
        ("secretTriggers.enabled=true,secretTriggers.namespaces={arcgis}", "secretTriggers.names"),
        ("secretTriggers.enabled=true,secretTriggers.names={tls}", "secretTriggers.namespaces"),
        (
            "secretTriggers.enabled=true,secretTriggers.names={tls},watchNamespace=arcgis,secretTriggers.namespaces={other}",
            "secretTriggers.namespaces",
        ),
        ("secretRefs.names={Bad_Name}", "secretRefs.names"),
        ("secretRefs.names={hooks}", "secretRefs.namespaces"),
        (
            "secretRefs.names={hooks},watchNamespace=arcgis,secretRefs.namespaces={other}",
            "secretRefs.namespaces",
        ),
    ];
    let helms: Vec<PathBuf> = std::iter::once(helm()).chain(helm4()).collect();
    for helm in &helms {
        for (set, field) in cases {
            // helm 3 names a value by its dotted path, helm 4 by its JSON pointer.
            let pointer = format!("/{}", field.replace('.', "/"));
            match template_with(helm, &[set]) {
                Ok(_) => panic!("{} template --set {set} rendered", helm.display()),
                Err(err) => assert!(
                    err.contains(field) || err.contains(&pointer),
                    "{}: the error for --set {set} does not name {field}:\n{err}",
                    helm.display()
                ),
            }
        }
    }
}

// ---- CRD --------------------------------------------------------------------------------

#[test]
fn the_charts_crd_is_the_committed_crd() {
    let committed = std::fs::read(root().join("crds/servicerefresh.yaml")).unwrap();
    let in_chart = std::fs::read(chart().join("crds/servicerefresh.yaml")).unwrap();
    assert!(
        committed == in_chart,
        "charts/servicerefresh/crds/servicerefresh.yaml differs from crds/servicerefresh.yaml: \
         cp crds/servicerefresh.yaml charts/servicerefresh/crds/"
    );
}

// ---- Flux ---------------------------------------------------------------------------------

/// README's Flux example: a Kustomization that waits for the ServiceRefreshes' kstatus health,
/// after the operator's release.
#[test]
fn the_flux_example_waits_for_the_runs() {
    let text = std::fs::read_to_string(root().join("examples/flux/kustomization.yaml")).unwrap();
    let kustomization: Value = serde_saphyr::from_str(&text).expect("the example parses");
    assert_eq!(kustomization["apiVersion"], "kustomize.toolkit.fluxcd.io/v1");
    assert_eq!(kustomization["kind"], "Kustomization");
    let spec = &kustomization["spec"];
    assert_eq!(spec["wait"], true, "kstatus health checks of every applied object");
    assert!(spec["timeout"].as_str().is_some_and(|timeout| timeout.ends_with('m')));
    assert_eq!(spec["dependsOn"][0]["name"], "servicerefresh-operator");
    for reason in ["Ready", "Reconciling", "Stalled", "AwaitingTrigger", "RunCancelled"] {
        assert!(text.contains(reason), "the example's comment explains {reason}");
    }
}
