//! A missing RBAC grant stalls the run once instead of failing the fleet: the operator runs
//! on the simulated cluster as a ServiceAccount whose ClusterRole lacks `patch` on
//! Deployments. The run must show one `Stalled=True Forbidden` naming the verb, resource,
//! API group and namespace, with one Warning Event, mark no Deployment failed and restart
//! nothing; once the grant is back, it must resume by itself (a Role change causes no event
//! on the resource) and succeed, each Deployment restarted exactly once.

mod common;

use std::time::Duration;

use common::{NAMESPACE, Operator, SimCluster, assert_template_changes, fleet, wait_for};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use servicerefresh_core::crd::Phase;
use servicerefresh_core::engine::conditions::{self, STALLED};
use servicerefresh_operator::controller::OperatorConfig;

const ACCOUNT: &str = "servicerefresh";
const ROLE: &str = "servicerefresh-forbidden-test";
const DEPLOYMENTS: usize = 8;

/// Everything the operator needs, with `deployment_verbs` on Deployments.
fn rules(deployment_verbs: &[&str]) -> Value {
    json!([
        {"apiGroups": [""], "resources": ["*"], "verbs": ["*"]},
        {"apiGroups": ["gisops.io", "events.k8s.io", "coordination.k8s.io",
                       "authentication.k8s.io", "authorization.k8s.io", "policy"],
         "resources": ["*"], "verbs": ["*"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": deployment_verbs},
        {"apiGroups": ["apps"], "resources": ["replicasets", "statefulsets", "daemonsets"],
         "verbs": ["get", "list", "watch"]},
    ])
}

async fn set_rules(admin: &Client, deployment_verbs: &[&str]) {
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    let patch = Patch::Merge(json!({"rules": rules(deployment_verbs)}));
    roles.patch(ROLE, &PatchParams::default(), &patch).await.expect("patch the ClusterRole");
}

/// A client that authenticates as the ServiceAccount, with exactly its rights.
async fn account_client(cluster: &SimCluster, admin: &Client) -> Client {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), NAMESPACE);
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": ACCOUNT}})).expect("account");
    accounts.create(&PostParams::default(), &account).await.expect("create the ServiceAccount");
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": ROLE},
        "rules": rules(&["get", "list", "watch", "patch"]),
    }))
    .expect("role");
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    roles.create(&PostParams::default(), &role).await.expect("create the ClusterRole");
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": ROLE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}],
    }))
    .expect("binding");
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    bindings.create(&PostParams::default(), &binding).await.expect("create the binding");

    let yaml = cluster
        .sim
        .service_account_kubeconfig_yaml(NAMESPACE, ACCOUNT)
        .expect("a kubeconfig for the ServiceAccount");
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig parses");
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("kubeconfig usable");
    config.default_retry = false;
    Client::try_from(config).expect("client")
}

/// The Forbidden Events recorded on the ServiceRefresh: their notes.
async fn forbidden_events(admin: &Client) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(admin.clone(), NAMESPACE);
    events
        .list(&ListParams::default())
        .await
        .expect("list Events")
        .items
        .into_iter()
        .filter(|event| event.reason.as_deref() == Some("Forbidden"))
        .map(|event| event.note.unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_patch_grant_stalls_the_run_once_and_it_resumes_when_granted() {
    let cluster = SimCluster::start(fleet(DEPLOYMENTS, 0, 22)).await;
    let admin = cluster.client.clone();
    let client = account_client(&cluster, &admin).await;
    set_rules(&admin, &["get", "list", "watch"]).await;
    let operator = Operator::start_with(
        &client,
        OperatorConfig { retry_delay: Duration::from_millis(200), ..Default::default() },
    );
    cluster.create_refresh("refresh", json!({"selector": {}, "batchSize": 4})).await;

    let stalled = wait_for(Duration::from_secs(60), "the Forbidden stall", || async {
        let status = cluster.status("refresh").await?;
        let stalled = conditions::find(&status.conditions, STALLED)?;
        (stalled.status == "True" && stalled.reason == "Forbidden")
            .then(|| (status.clone(), stalled.clone()))
    })
    .await;
    let (status, condition) = stalled;
    for part in ["patch deployments", "API group \"apps\"", "namespace \"arcgis\""] {
        assert!(condition.message.contains(part), "{part} in {:?}", condition.message);
    }
    assert_eq!(status.phase, Some(Phase::Running), "the run holds, it does not end");
    assert_eq!(status.totals.failed, 0, "no Deployment fails for a missing permission");
    let events = wait_for(Duration::from_secs(30), "the Forbidden Event", || async {
        let events = forbidden_events(&admin).await;
        (!events.is_empty()).then_some(events)
    })
    .await;
    assert_eq!(events.len(), 1, "one Warning: {events:?}");
    assert_eq!(events[0], condition.message, "the Event has the condition's words");
    let names = cluster.all_deployment_names().await;
    assert_template_changes(&cluster.sim, &names, 0);

    // The grant is restored; nothing touches the ServiceRefresh, so the operator's own
    // retry must find out.
    set_rules(&admin, &["get", "list", "watch", "patch"]).await;
    let status = cluster.wait_for_run_end("refresh", Duration::from_secs(120)).await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    assert_eq!(status.totals.failed, 0);
    assert_eq!(status.totals.restarted as usize, DEPLOYMENTS);
    assert_template_changes(&cluster.sim, &names, 1);
    let stalled = conditions::find(&status.conditions, STALLED).expect("Stalled");
    assert_eq!(stalled.status, "False");
    assert_eq!(forbidden_events(&admin).await.len(), 1, "the stall was announced once");
    operator.stop().await;
}
