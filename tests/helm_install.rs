//! `helm install` of charts/servicerefresh into the simulated cluster with authentication and
//! RBAC enforced, in both modes: cluster-wide (ClusterRole) with helm 3.18, namespaced
//! (`watchNamespace: arcgis`, Role and RoleBinding only) with helm 4. The operator runs as the
//! chart's pods: the sim's kubelet starts the operator binary for the chart's image
//! (`SimConfig::run_images`), with the Deployment's command line and environment and the chart
//! ServiceAccount's mounted token as its only credential. Each test checks every object of the
//! release through the API, waits for `kubectl rollout status` (availability follows the
//! processes' readiness probes), reads the leader's `kubectl logs`, runs 50 Deployments in which
//! no request of either replica is refused, then `helm upgrade` (a rolling update: the new pods
//! take over the Lease and the new command line runs the next run) and `helm uninstall` (the
//! processes get SIGTERM and end, the CRD and the ServiceRefreshes stay, the token dies).
//!
//! The leader's resident memory during the run is printed (`--nocapture`); values.yaml's
//! resource comment records the figures.

mod common;

use std::time::{Duration, Instant};

use common::helm::{
    FULLNAME, Helm, HelmClient, RELEASE, RELEASE_NAMESPACE, SIM_NETWORK_SETS, chart_image_sim,
    container_args, operator_container,
};
use common::{NAMESPACE, SimCluster, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
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
    /// The values of the mode, and the two the simulated cluster's shared network needs.
    fn sets(self) -> Vec<&'static str> {
        let mut sets = match self {
            Mode::ClusterWide => vec![],
            Mode::Namespaced => vec!["watchNamespace=arcgis"],
        };
        sets.extend(SIM_NETWORK_SETS);
        // The test restarts the same fleet in runs seconds apart.
        sets.push("minRestartInterval=0s");
        sets
    }
}

async fn start_sim() -> SimHandle {
    servicerefresh_sim::start(chart_image_sim(SimConfig {
        namespace: NAMESPACE.into(),
        deployments: FLEET,
        rollout_ms: 300,
        rollout_jitter_ms: 100,
        seed: 7,
        ..SimConfig::default()
    }))
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

/// The operator pods of the release that are not being deleted, by name.
async fn operator_pods(admin: &Client) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    let selector =
        format!("app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator");
    let mut list: Vec<Pod> = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .collect();
    list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    list
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// `kubectl rollout status`, as the chart's NOTES say: it returns once both replicas are
/// available, which the readiness probes of the running operators decide.
async fn rolled_out(helm: &HelmClient) {
    let deployment = format!("deployment/{FULLNAME}");
    let status = helm
        .kubectl(&["-n", RELEASE_NAMESPACE, "rollout", "status", &deployment, "--timeout=120s"])
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(status.contains("successfully rolled out"), "{status}");
}

/// The resident set size of a process in KiB (`VmRSS`), while it runs.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The process the kubelet runs for pod `pod`.
fn process_of(sim: &SimHandle, pod: &str) -> Option<u32> {
    sim.container_processes()
        .into_iter()
        .find(|process| process.labels.namespace == RELEASE_NAMESPACE && process.labels.pod == pod)
        .map(|process| process.pid)
}

/// Waits for the run of `name` to end, sampling the leader's resident memory meanwhile: the
/// final status and the highest VmRSS seen, in KiB.
async fn run_to_end(
    cluster: &SimCluster,
    leader: u32,
    name: &str,
    run: u64,
) -> (ServiceRefreshStatus, u64) {
    let mut peak = 0;
    let started = Instant::now();
    loop {
        peak = peak.max(rss_kib(leader).unwrap_or(0));
        if let Some(status) = cluster.status(name).await
            && status.run.as_ref().is_some_and(|current| current.number == run)
            && matches!(status.phase, Some(Phase::Succeeded | Phase::Failed | Phase::Cancelled))
        {
            return (status, peak);
        }
        assert!(
            started.elapsed() < DEADLINE,
            "run {run} of {name} did not end within {DEADLINE:?}"
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

/// The JSON lines of `kubectl logs <pod>` whose `message` is `message`.
async fn logged(helm: &HelmClient, pod: &str, message: &str) -> Vec<Value> {
    let logs = helm.kubectl(&["-n", RELEASE_NAMESPACE, "logs", pod]).await.unwrap_or_default();
    logs.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == message)
        .collect()
}

/// Runs run `run` of `name` on the installed operator pods: one of them leads (its `kubectl
/// logs` says so), every Deployment is restarted, neither replica's requests are refused.
/// Returns the leader's peak resident memory in KiB.
async fn operate(cluster: &SimCluster, helm: &HelmClient, name: &str, run: u64) -> u64 {
    let pods: Vec<String> = operator_pods(&cluster.client).await.iter().map(name_of).collect();
    assert_eq!(pods.len(), 2, "{pods:?}");
    let leader = wait_for(DEADLINE, "one of the pods to lead", || async {
        lease_holder(&cluster.client).await.filter(|holder| pods.contains(holder))
    })
    .await;
    let acquired = wait_for(DEADLINE, "kubectl logs to show the leadership", || async {
        logged(helm, &leader, "leadership acquired").await.into_iter().next()
    })
    .await;
    assert_eq!(acquired["lease"], format!("{RELEASE_NAMESPACE}/{FULLNAME}"));
    let pid = process_of(&cluster.sim, &leader).expect("the leader's process runs");
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
    let (status, peak_kib) = run_to_end(cluster, pid, name, run).await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{status:#?}");
    assert_eq!((status.totals.services, status.totals.ready), (FLEET as u32, FLEET as u32));
    let mut changes = cluster.sim.stats().template_changes;
    changes.retain(|deployment, _| deployment.starts_with(&format!("{NAMESPACE}/")));
    assert_eq!(changes.len(), FLEET, "every Deployment was restarted");
    assert!(changes.values().all(|count| *count == run), "{changes:?}");
    for pod in &pods {
        let (sent, refused) = refused_requests(&cluster.sim, pod);
        assert!(sent > 0, "{pod} talked to the API server");
        assert!(refused.is_empty(), "the chart's RBAC refused requests of {pod}: {refused:#?}");
    }
    let (sent, _) = refused_requests(&cluster.sim, &leader);
    assert!(sent > FLEET, "{sent} requests from the leader {leader}");
    let logs = helm.kubectl(&["-n", RELEASE_NAMESPACE, "logs", &leader]).await.unwrap_or_default();
    assert!(!logs.contains("forbidden"), "{logs}");
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

    // The pods run: each replica on its own IP, its readiness probe answered by its own
    // operator, and `kubectl rollout status` sees the Deployment available.
    let cluster = SimCluster { sim, client: admin.clone() };
    rolled_out(&helm).await;
    let pods = operator_pods(&admin).await;
    let ips: Vec<String> = pods
        .iter()
        .map(|pod| pod.status.as_ref().and_then(|status| status.pod_ip.clone()).unwrap_or_default())
        .collect();
    assert!(ips.len() == 2 && ips[0] != ips[1], "{ips:?}");
    for pod in &pods {
        let pid = process_of(&cluster.sim, &name_of(pod)).expect("a process per pod");
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let ip = pod.status.as_ref().and_then(|status| status.pod_ip.clone()).unwrap_or_default();
        assert!(
            cmdline.split('\0').any(|arg| arg == format!("--metrics-listen={ip}:8080")),
            "{cmdline:?}"
        );
    }
    let peak_kib = operate(&cluster, &helm, "refresh-all", 1).await;
    eprintln!(
        "{:?} {mode:?}: the operator's peak RSS during a run of {FLEET} Deployments: {:.1} MiB (debug build)",
        helm.helm,
        peak_kib as f64 / 1024.0
    );

    // Upgrade as README says: the CRD first (helm never upgrades it), then the release; a new
    // revision, a rolling update of the pods, and the new command line runs the next run.
    let crds = common::helm::chart().join("crds").display().to_string();
    let applied =
        helm.kubectl(&["apply", "-f", &crds]).await.unwrap_or_else(|error| panic!("{error}"));
    assert!(applied.contains("servicerefreshes.gisops.io"), "{applied}");
    let old_pids: Vec<u32> =
        cluster.sim.container_processes().iter().map(|process| process.pid).collect();
    let upgraded = helm.upgrade(&["maxConcurrentRuns=2"]).await;
    assert!(upgraded.contains("REVISION: 2"), "{upgraded}");
    let secret = release_secret(&admin, 2).await.expect("the release Secret of revision 2");
    assert_eq!(label(&secret.metadata.labels, "status"), "deployed");
    let previous = release_secret(&admin, 1).await.expect("revision 1 is kept");
    assert_eq!(label(&previous.metadata.labels, "status"), "superseded");
    let args = container_args(&operator_container(&admin).await);
    assert!(args.contains(&"--max-concurrent-runs=2".to_owned()), "{args:?}");
    assert_eq!(args.iter().any(|arg| arg == "--watch-namespace=arcgis"), mode == Mode::Namespaced);
    rolled_out(&helm).await;
    wait_for(DEADLINE, "the old pods' processes to end", || async {
        let running: Vec<u32> =
            cluster.sim.container_processes().iter().map(|process| process.pid).collect();
        (old_pids.iter().all(|pid| !running.contains(pid)) && running.len() == 2).then_some(())
    })
    .await;
    for process in cluster.sim.container_processes() {
        let cmdline =
            std::fs::read_to_string(format!("/proc/{}/cmdline", process.pid)).unwrap_or_default();
        assert!(cmdline.split('\0').any(|arg| arg == "--max-concurrent-runs=2"), "{cmdline:?}");
    }
    operate(&cluster, &helm, "refresh-all", 2).await;
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
    // The pods get SIGTERM and every process ends. (The leader cannot hand the Lease back:
    // helm deletes the ServiceAccount and the Lease Role together with the Deployment, as on
    // a real cluster, so the Lease expires instead.)
    wait_for(DEADLINE, "the operator processes to end", || async {
        cluster.sim.container_processes().is_empty().then_some(())
    })
    .await;
    wait_for(DEADLINE, "the operator pods to be gone", || async {
        let pods: Api<Pod> = Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
        pods.list(&ListParams::default())
            .await
            .ok()
            .filter(|list| list.items.is_empty())
            .map(|_| ())
    })
    .await;
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
