//! The built-in resources the simulated server serves, with the scope,
//! names and subresources the real API server registers for them.

use super::ResourceDef;

/// One built-in resource at `v1` (every built-in the sim serves is `v1`);
/// the exceptions to the shared defaults are set by the caller.
fn builtin(
    group: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short_names: &[&str],
    categories: &[&str],
    status_subresource: bool,
) -> ResourceDef {
    ResourceDef {
        group: group.into(),
        version: "v1".into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short_names.iter().map(|name| name.to_string()).collect(),
        categories: categories.iter().map(|category| category.to_string()).collect(),
        status_subresource,
        scale_subresource: false,
        crd: None,
        schema: None,
        unconditional_update: true,
        return_deleted_object: false,
        has_generation: false,
    }
}

/// The built-in resources; their groups appear in `/apis` in this order.
pub fn builtin_resource_defs() -> Vec<ResourceDef> {
    let mut namespaces = builtin("", "namespaces", "Namespace", false, &["ns"], &[], true);
    namespaces.return_deleted_object = true;
    let config_maps = builtin("", "configmaps", "ConfigMap", true, &["cm"], &[], false);
    let core_events = builtin("", "events", "Event", true, &["ev"], &[], false);
    let secrets = builtin("", "secrets", "Secret", true, &[], &[], false);
    let mut pods = builtin("", "pods", "Pod", true, &["po"], &["all"], true);
    pods.return_deleted_object = true;
    let nodes = builtin("", "nodes", "Node", false, &["no"], &[], true);
    let mut deployments =
        builtin("apps", "deployments", "Deployment", true, &["deploy"], &["all"], true);
    deployments.has_generation = true;
    deployments.scale_subresource = true;
    let mut replica_sets =
        builtin("apps", "replicasets", "ReplicaSet", true, &["rs"], &["all"], true);
    replica_sets.has_generation = true;
    let mut stateful_sets =
        builtin("apps", "statefulsets", "StatefulSet", true, &["sts"], &["all"], true);
    stateful_sets.has_generation = true;
    stateful_sets.scale_subresource = true;
    let mut daemon_sets = builtin("apps", "daemonsets", "DaemonSet", true, &["ds"], &["all"], true);
    daemon_sets.has_generation = true;
    let controller_revisions =
        builtin("apps", "controllerrevisions", "ControllerRevision", true, &[], &[], false);
    let events = builtin("events.k8s.io", "events", "Event", true, &["ev"], &[], false);
    let leases = builtin("coordination.k8s.io", "leases", "Lease", true, &[], &[], false);
    let mut crds = builtin(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        &["api-extensions"],
        true,
    );
    crds.has_generation = true;
    crds.unconditional_update = false;
    crds.return_deleted_object = true;
    let mut defs = vec![
        namespaces,
        config_maps,
        core_events,
        secrets,
        pods,
        nodes,
        controller_revisions,
        daemon_sets,
        deployments,
        replica_sets,
        stateful_sets,
        events,
        leases,
        crds,
    ];
    defs.extend(chart_resource_defs());
    defs.extend(access_control_defs());
    defs
}

/// Services and PodDisruptionBudgets: what a Helm chart needs beyond the
/// kinds above (ServiceAccounts and the RBAC kinds come with the
/// authorizer).
fn chart_resource_defs() -> Vec<ResourceDef> {
    let services = builtin("", "services", "Service", true, &["svc"], &["all"], true);
    let mut pod_disruption_budgets =
        builtin("policy", "poddisruptionbudgets", "PodDisruptionBudget", true, &["pdb"], &[], true);
    pod_disruption_budgets.has_generation = true;
    vec![services, pod_disruption_budgets]
}

/// Authentication and authorization: ServiceAccounts (with their
/// `token` subresource, see `ResourceDef::create_subresource`), the four
/// RBAC kinds, and the create-only reviews (`ResourceDef::is_review`),
/// whose groups follow the built-in ones in `/apis`.
fn access_control_defs() -> Vec<ResourceDef> {
    let mut service_accounts =
        builtin("", "serviceaccounts", "ServiceAccount", true, &["sa"], &[], false);
    service_accounts.return_deleted_object = true;
    let rbac = |plural: &str, kind: &str, namespaced: bool| {
        builtin("rbac.authorization.k8s.io", plural, kind, namespaced, &[], &[], false)
    };
    let authentication = |plural: &str, kind: &str| {
        builtin("authentication.k8s.io", plural, kind, false, &[], &[], false)
    };
    let authorization = |plural: &str, kind: &str, namespaced: bool| {
        builtin("authorization.k8s.io", plural, kind, namespaced, &[], &[], false)
    };
    vec![
        service_accounts,
        authentication("tokenreviews", "TokenReview"),
        authentication("selfsubjectreviews", "SelfSubjectReview"),
        authorization("localsubjectaccessreviews", "LocalSubjectAccessReview", true),
        authorization("selfsubjectaccessreviews", "SelfSubjectAccessReview", false),
        authorization("selfsubjectrulesreviews", "SelfSubjectRulesReview", false),
        authorization("subjectaccessreviews", "SubjectAccessReview", false),
        rbac("clusterrolebindings", "ClusterRoleBinding", false),
        rbac("clusterroles", "ClusterRole", false),
        rbac("rolebindings", "RoleBinding", true),
        rbac("roles", "Role", true),
    ]
}
