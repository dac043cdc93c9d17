//! `helm install` of charts/servicerefresh into the simulated cluster with authentication and
//! RBAC enforced, in both modes: cluster-wide (ClusterRole) with helm 3.18, namespaced
//! (`watchNamespace: arcgis`, Role and RoleBinding only) with helm 4. Each test checks every
//! object of the release through the API, runs the operator as the chart's pod would (the
//! installed Deployment's args and environment, the chart ServiceAccount's token and nothing
//! more, leader election on as by default) through a full run of 50 Deployments in which no
//! request of the operator is refused, then `helm upgrade` (the new command line runs the next
//! run) and `helm uninstall` (the CRD and the ServiceRefreshes stay, the token dies).
//!
//! The operator's resident memory during the run is printed (`--nocapture`); values.yaml's
//! resource comment records the figures.

mod common;

use std::time::{Duration, Instant};

use common::helm::{
    ChartOperator, FULLNAME, Helm, HelmClient, Mounts, RELEASE, RELEASE_NAMESPACE, container_args,
    operator_container, outside_a_pod,
};
use common::{NAMESPACE, SimCluster};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use servicerefresh_core::crd::{Phase, ServiceRefresh, ServiceRefreshStatus};
use servicerefresh_sim::{SimConfig, SimHandle};

const FLEET: usize = 50;
const DEADLINE: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    ClusterWide,
    Namespaced,
}

impl Mode {
    fn sets(self) -> Vec<&'static str> {
        match self {
            Mode::ClusterWide => vec![],
            Mode::Namespaced => vec!["watchNamespace=arcgis"],
        }
    }
}

async fn start_sim() -> SimHandle {
    servicerefresh_sim::start(SimConfig {
        namespace: NAMESPACE.into(),
        deployments: FLEET,
        rollout_ms: 300,
        rollout_jitter_ms: 100,
        seed: 7,
        ..SimConfig::default()
    })
    .await
    .expect("simulated cluster starts")
}

/// The release Secret of `revision` (helm's storage driver), if it exists.
async fn release_secret(admin: &Client, revision: u32) -> Option<Secret> {
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    secrets.get_opt(&format!("sh.helm.release.v1.{RELEASE}.v{revision}")).await.expect("get")
}

fn label<'a>(labels: &'a Option<std::collections::BTreeMap<String, String>>, key: &str) -> &'a str {
    labels.as_ref().and_then(|labels| labels.get(key)).map(String::as_str).unwrap_or_default()
}

/// Every object the chart creates, read back from the API: the release Secret, the
/// ServiceAccount, the RBAC objects of the mode, the Deployment, the metrics Service, the
/// PodDisruptionBudget and the CRD.
async fn check_release_objects(admin: &Client, mode: Mode) {
    let secret = release_secret(admin, 1).await.expect("the release Secret of revision 1");
    assert_eq!(secret.type_.as_deref(), Some("helm.sh/release.v1"));
    let labels = &secret.metadata.labels;
    assert_eq!(
        (label(labels, "owner"), label(labels, "name"), label(labels, "status")),
        ("helm", RELEASE, "deployed")
    );

    let in_release = |kind: &str, labels: &Option<std::collections::BTreeMap<String, String>>| {
        assert_eq!(label(labels, "app.kubernetes.io/managed-by"), "Helm", "{kind}");
        assert_eq!(label(labels, "app.kubernetes.io/instance"), RELEASE, "{kind}");
    };
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    let account = accounts.get(FULLNAME).await.expect("the ServiceAccount");
    in_release("ServiceAccount", &account.metadata.labels);
    assert_eq!(account.automount_service_account_token, Some(false));

    let subject =
        json!([{"kind": "ServiceAccount", "name": FULLNAME, "namespace": RELEASE_NAMESPACE}]);
    let cluster_roles: Api<ClusterRole> = Api::all(admin.clone());
    let cluster_bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    match mode {
        Mode::ClusterWide => {
            let role = cluster_roles.get(FULLNAME).await.expect("the ClusterRole");
            in_release("ClusterRole", &role.metadata.labels);
            assert!(!role.rules.unwrap_or_default().is_empty());
            let binding = cluster_bindings.get(FULLNAME).await.expect("the ClusterRoleBinding");
            assert_eq!(binding.role_ref.name, FULLNAME);
            assert_eq!(serde_json::to_value(&binding.subjects).expect("JSON"), subject);
        }
        Mode::Namespaced => {
            assert!(cluster_roles.get_opt(FULLNAME).await.expect("get").is_none());
            assert!(cluster_bindings.get_opt(FULLNAME).await.expect("get").is_none());
            let released =
                ListParams::default().labels(&format!("app.kubernetes.io/instance={RELEASE}"));
            assert!(cluster_roles.list(&released).await.expect("list").items.is_empty());
            assert!(cluster_bindings.list(&released).await.expect("list").items.is_empty());
            let roles: Api<Role> = Api::namespaced(admin.clone(), NAMESPACE);
            let role = roles.get(FULLNAME).await.expect("the Role in arcgis");
            in_release("Role", &role.metadata.labels);
            let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), NAMESPACE);
            let binding = bindings.get(FULLNAME).await.expect("the RoleBinding in arcgis");
            assert_eq!(
                (binding.role_ref.kind.as_str(), binding.role_ref.name.as_str()),
                ("Role", FULLNAME)
            );
            assert_eq!(serde_json::to_value(&binding.subjects).expect("JSON"), subject);
        }
    }
    let lease_role = format!("{FULLNAME}-leader-election");
    let roles: Api<Role> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    roles.get(&lease_role).await.expect("the leader election Role");
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    let binding = bindings.get(&lease_role).await.expect("the leader election RoleBinding");
    assert_eq!(serde_json::to_value(&binding.subjects).expect("JSON"), subject);

    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    let deployment = deployments.get(FULLNAME).await.expect("the operator Deployment");
    in_release("Deployment", &deployment.metadata.labels);
    assert_eq!(deployment.spec.replicas, Some(2));
    let services: Api<Service> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    let service = services.get(&format!("{FULLNAME}-metrics")).await.expect("the metrics Service");
    in_release("Service", &service.metadata.labels);
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    let budget = budgets.get(FULLNAME).await.expect("the PodDisruptionBudget");
    in_release("PodDisruptionBudget", &budget.metadata.labels);
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    crds.get("servicerefreshes.gisops.io").await.expect("the CRD, from the chart's crds/");
}

/// Waits for the run of `name` to end, sampling the operator's resident memory meanwhile:
/// the final status and the highest VmRSS seen, in KiB.
async fn run_to_end(
    cluster: &SimCluster,
    operator: &common::process::OperatorProcess,
    name: &str,
    run: u64,
) -> (ServiceRefreshStatus, u64) {
    let mut peak = 0;
    let started = Instant::now();
    loop {
        peak = peak.max(operator.rss_kib().unwrap_or(0));
        if let Some(status) = cluster.status(name).await
            && status.run.as_ref().is_some_and(|current| current.number == run)
            && matches!(status.phase, Some(Phase::Succeeded | Phase::Failed | Phase::Cancelled))
        {
            return (status, peak);
        }
        assert!(
            started.elapsed() < DEADLINE,
            "run {run} of {name} did not end within {DEADLINE:?}; operator log:\n{}",
            operator.lines().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The requests this pod sent (its User-Agent names it) that the API server refused.
fn refused_requests(sim: &SimHandle, pod: &str) -> (usize, Vec<String>) {
    let agent = format!("({pod})");
    let sent: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|request| request.user_agent.as_deref().is_some_and(|ua| ua.ends_with(&agent)))
        .collect();
    let refused = sent
        .iter()
        .filter(|request| matches!(request.code, Some(401 | 403)))
        .map(|request| format!("{} {} -> {:?}", request.verb, request.path, request.code))
        .collect();
    (sent.len(), refused)
}

async fn lease_holder(admin: &Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    leases
        .get_opt(FULLNAME)
        .await
        .expect("get Lease")
        .and_then(|lease| lease.spec)
        .and_then(|spec| spec.holder_identity)
        .filter(|holder| !holder.is_empty())
}

/// Runs the chart's pod `pod` through run `run` of `name`, checks that every Deployment was
/// restarted and that the API server refused none of its requests, stops it gracefully, and
/// returns its peak resident memory in KiB.
async fn operate(cluster: &SimCluster, pod: &str, name: &str, run: u64) -> u64 {
    let container = operator_container(&cluster.client).await;
    let args =
        outside_a_pod(&container_args(&container), &Mounts { tls_cert: None, tls_key: None });
    let mut operator = ChartOperator::start(&cluster.sim, &cluster.client, pod, &args).await;
    let process = &mut operator.process;
    let acquired = process.wait_for_log("leadership acquired", DEADLINE).await;
    assert_eq!(acquired["lease"], format!("{RELEASE_NAMESPACE}/{FULLNAME}"));
    assert_eq!(lease_holder(&cluster.client).await.as_deref(), Some(pod));
    if run == 1 {
        cluster
            .create_refresh(name, json!({"selector": {}, "batchSize": 10, "batchTimeout": "2m"}))
            .await;
    } else {
        cluster
            .refreshes()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"trigger": format!("run-{run}")}})),
            )
            .await
            .expect("change the trigger");
    }
    let (status, peak_kib) = run_to_end(cluster, process, name, run).await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    assert_eq!((status.totals.services, status.totals.ready), (FLEET as u32, FLEET as u32));
    let mut changes = cluster.sim.stats().template_changes;
    changes.retain(|deployment, _| deployment.starts_with(&format!("{NAMESPACE}/")));
    assert_eq!(changes.len(), FLEET, "every Deployment was restarted");
    assert!(changes.values().all(|count| *count == run), "{changes:?}");

    let (sent, refused) = refused_requests(&cluster.sim, pod);
    assert!(sent > FLEET, "{sent} requests from {pod}");
    assert!(refused.is_empty(), "the chart's RBAC refused requests of {pod}: {refused:#?}");
    let forbidden: Vec<String> =
        process.lines().into_iter().filter(|line| line.contains("forbidden")).collect();
    assert!(forbidden.is_empty(), "{forbidden:#?}");

    process.signal("TERM");
    let exited = process.wait_exit(Duration::from_secs(30)).await;
    assert!(exited.success(), "{exited:?}\n{}", process.lines().join("\n"));
    process.wait_for_log("leader Lease released", Duration::from_secs(1)).await;
    assert_eq!(lease_holder(&cluster.client).await, None);
    peak_kib
}

async fn install_run_upgrade_uninstall(helm: Helm, mode: Mode) {
    let sim = start_sim().await;
    let admin = common::sim_client(&sim).await;
    let helm = HelmClient::new(helm, &sim);

    // Install, as README's "Install with Helm" says.
    let notes = helm.install(&mode.sets()).await;
    assert!(notes.contains("STATUS: deployed"), "{notes}");
    assert!(
        notes.contains(&format!(
            "kubectl -n {RELEASE_NAMESPACE} rollout status deployment/{FULLNAME}"
        )),
        "{notes}"
    );
    let scope = match mode {
        Mode::ClusterWide => "watching all namespaces.",
        Mode::Namespaced => "watching namespace arcgis only.",
    };
    assert!(notes.contains(scope), "{notes}");
    assert!(notes.contains(&format!("Lease {RELEASE_NAMESPACE}/{FULLNAME}")), "{notes}");
    check_release_objects(&admin, mode).await;

    let args = container_args(&operator_container(&admin).await);
    assert_eq!(
        args.iter().any(|arg| arg == "--watch-namespace=arcgis"),
        mode == Mode::Namespaced,
        "{args:?}"
    );
    assert!(args.contains(&"--leader-election=true".to_owned()), "{args:?}");

    let cluster = SimCluster { sim, client: admin.clone() };
    let pod = format!("{FULLNAME}-5d8f7c9b4-x2k7p");
    let peak_kib = operate(&cluster, &pod, "refresh-all", 1).await;
    eprintln!(
        "{:?} {mode:?}: the operator's peak RSS during a run of {FLEET} Deployments: {:.1} MiB (debug build)",
        helm.helm,
        peak_kib as f64 / 1024.0
    );

    // Upgrade as README says: the CRD first (helm never upgrades it), then the release; a new
    // revision, and the new command line runs the next run.
    let crds = common::helm::chart().join("crds").display().to_string();
    let applied =
        helm.kubectl(&["apply", "-f", &crds]).await.unwrap_or_else(|error| panic!("{error}"));
    assert!(applied.contains("servicerefreshes.gisops.io"), "{applied}");
    let upgraded = helm.upgrade(&["maxConcurrentRuns=2"]).await;
    assert!(upgraded.contains("REVISION: 2"), "{upgraded}");
    let secret = release_secret(&admin, 2).await.expect("the release Secret of revision 2");
    assert_eq!(label(&secret.metadata.labels, "status"), "deployed");
    let previous = release_secret(&admin, 1).await.expect("revision 1 is kept");
    assert_eq!(label(&previous.metadata.labels, "status"), "superseded");
    let args = container_args(&operator_container(&admin).await);
    assert!(args.contains(&"--max-concurrent-runs=2".to_owned()), "{args:?}");
    assert_eq!(args.iter().any(|arg| arg == "--watch-namespace=arcgis"), mode == Mode::Namespaced);
    operate(&cluster, &format!("{FULLNAME}-7b9d6f5c8-q4m2n"), "refresh-all", 2).await;
    let kubeconfig = {
        let yaml = cluster
            .sim
            .service_account_kubeconfig_yaml(RELEASE_NAMESPACE, FULLNAME)
            .expect("kubeconfig");
        kube::config::Kubeconfig::from_yaml(&yaml).expect("parses")
    };

    // Uninstall: the operator and its rights go; the CRD and the ServiceRefreshes stay.
    let uninstalled = helm.uninstall().await;
    assert!(uninstalled.contains(&format!("release \"{RELEASE}\" uninstalled")), "{uninstalled}");
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    let release_secrets = ListParams::default().labels(&format!("owner=helm,name={RELEASE}"));
    assert!(secrets.list(&release_secrets).await.expect("list").items.is_empty());
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    assert!(accounts.get_opt(FULLNAME).await.expect("get").is_none());
    let released = ListParams::default().labels(&format!("app.kubernetes.io/instance={RELEASE}"));
    let cluster_roles: Api<ClusterRole> = Api::all(admin.clone());
    assert!(cluster_roles.list(&released).await.expect("list").items.is_empty());
    let cluster_bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    assert!(cluster_bindings.list(&released).await.expect("list").items.is_empty());
    for namespace in [RELEASE_NAMESPACE, NAMESPACE] {
        let roles: Api<Role> = Api::namespaced(admin.clone(), namespace);
        assert!(roles.list(&released).await.expect("list").items.is_empty(), "{namespace}");
        let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), namespace);
        assert!(bindings.list(&released).await.expect("list").items.is_empty(), "{namespace}");
    }
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    assert!(deployments.get_opt(FULLNAME).await.expect("get").is_none());
    let services: Api<Service> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    assert!(services.list(&released).await.expect("list").items.is_empty());
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    assert!(budgets.get_opt(FULLNAME).await.expect("get").is_none());
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    crds.get("servicerefreshes.gisops.io").await.expect("the CRD stays");
    let kept = cluster.refreshes().get("refresh-all").await.expect("the ServiceRefresh stays");
    let status = kept.status.expect("with its status");
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(status.history.len(), 2, "and its history");

    // The ServiceAccount's token died with it.
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let client = Client::try_from(config).expect("client");
    let refreshes: Api<ServiceRefresh> = Api::namespaced(client, NAMESPACE);
    match refreshes.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 401, "{status:?}"),
        other => panic!("the uninstalled ServiceAccount's token still works: {other:?}"),
    }
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_wide_install_with_helm_3_runs_50_deployments_with_only_its_service_account() {
    install_run_upgrade_uninstall(Helm::V3, Mode::ClusterWide).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaced_install_with_helm_4_runs_50_deployments_with_only_its_role() {
    install_run_upgrade_uninstall(Helm::V4, Mode::Namespaced).await;
}

/// The figures of values.yaml's resource comment: the operator's resident memory once its
/// caches synced and at its peak during one run over every Deployment (batches of 100), by
/// fleet size. Figures, not pass/fail; for the release build run
/// `cargo test --release --test helm_install -- --ignored --nocapture memory`
/// (`SERVICEREFRESH_MEMORY_FLEETS=50,2000` picks the sizes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figures for values.yaml; minutes long"]
async fn memory_by_fleet_size() {
    use common::process::{Kubeconfig, OperatorProcess};
    let fleets = std::env::var("SERVICEREFRESH_MEMORY_FLEETS")
        .unwrap_or_else(|_| "50,500,2000,5000,10000".to_owned());
    let mut table = vec!["Deployments   caches synced   peak during the run".to_owned()];
    for fleet in fleets.split(',').map(|n| n.trim().parse::<usize>().expect("a number")) {
        let cluster = SimCluster::start(SimConfig {
            deployments: fleet,
            rollout_ms: 300,
            rollout_jitter_ms: 100,
            seed: 7,
            ..SimConfig::default()
        })
        .await;
        let kubeconfig = Kubeconfig::for_sim(&cluster.sim);
        let operator =
            OperatorProcess::spawn(&kubeconfig.path, "memory", &["--leader-election=false"]);
        operator.wait_for_log("watch caches synced: ready", DEADLINE).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let synced = operator.rss_kib().expect("VmRSS");
        cluster
            .create_refresh("all", json!({"selector": {}, "batchSize": 100, "batchTimeout": "10m"}))
            .await;
        let mut peak = 0;
        loop {
            peak = peak.max(operator.rss_kib().expect("VmRSS"));
            let status = cluster.status("all").await;
            if status.and_then(|status| status.phase).is_some_and(|phase| phase == Phase::Succeeded)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        table.push(format!(
            "{fleet:>11}   {:>9.0} MiB   {:>15.0} MiB",
            synced as f64 / 1024.0,
            peak as f64 / 1024.0
        ));
        drop(operator);
        cluster.sim.shutdown().await;
    }
    eprintln!("{}", table.join("\n"));
}
