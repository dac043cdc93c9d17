//! Leave one rule out: proof that the chart grants the operator exactly the rights it needs.
//!
//! In each mode (cluster-wide with helm 3, namespaced with helm 4) the chart is installed with
//! the admin job API enabled and a short Lease; the namespaced install also enables the
//! StatefulSet and DaemonSet restart targets (`workloadKinds`), so their rules are proven
//! too, and the cluster-wide one shows the chart grants nothing on them when they are off, and the operator runs as the chart's pod would:
//! the installed Deployment's command line and environment, with the chart ServiceAccount's
//! token as its only credential. The cluster-wide install enables Secret triggers
//! (`secretTriggers`, one named Secret), so the Role naming that Secret is proven too, and the
//! namespaced one shows that without them the chart grants nothing on Secrets. A probe walks through everything the operator does:
//!
//! 1. it takes the leader Lease (created afresh: each probe starts with no Lease),
//! 2. its watch caches sync,
//! 3. a ServiceRefresh created after that runs to success (4 Deployments in 2 batches; in
//!    namespaced mode also a StatefulSet and a DaemonSet, in 3 batches),
//! 4. the run is on record as Events,
//! 5. a change to its trigger ConfigMap starts and finishes a second run,
//! 6. a PodDisruptionBudget created after the caches synced, allowing no disruption, holds a
//!    third run until it allows one (the budget watch),
//! 7. a pod of a restart that no node can take shows in the status as `WaitingForCapacity`
//!    (the Pending-pod watch),
//! 8. with Secret triggers, a change to its trigger Secret starts and finishes a fourth run,
//! 9. a job submitted through the admin API (TokenReview, SubjectAccessReview, the request
//!    annotation) completes.
//!
//! With every rule in place the probe passes and the operator logs no refusal. Then, for each
//! verb of each rule of the release's Roles and ClusterRoles (read from the cluster, so a rule
//! added to the chart is covered without touching this test), the rule is patched out, the
//! probe runs again and must fail at some step, with a log line quoting the API server's 403
//! for exactly that verb and resource; the rule is then put back. In namespaced mode the admin
//! API's reviews come from the `system:auth-delegator` binding, which is left out as a whole.
//! The table of what failed is printed (run with `--nocapture`).

mod admin_support;
mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use admin_support::TestCertificate;
use common::helm::{
    ChartOperator, FULLNAME, Helm, HelmClient, Mounts, RELEASE, RELEASE_NAMESPACE, container_args,
    operator_container, outside_a_pod,
};
use common::process::OperatorProcess;
use common::{NAMESPACE, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use servicerefresh_core::crd::{Phase, ServiceRefresh};
use servicerefresh_sim::{SimConfig, SimHandle};

/// The ServiceRefresh of every probe, also the admin API's target.
const PROBE: &str = "probe";
const TRIGGER: &str = "probe-trigger";
/// The trigger Secret of the mode with Secret triggers on.
const SECRET_TRIGGER: &str = "probe-secret";
/// The budget over the fleet's Deployments, created anew by each probe.
const BUDGET: &str = "probe-budget";
/// A Deployment whose pods fit on no node, and the ServiceRefresh that restarts it.
const TOO_BIG: &str = "probe-too-big";
const CAPACITY_PROBE: &str = "probe-capacity";
/// The ServiceAccount that submits admin API jobs (get and patch on the target).
const JOBS_ACCOUNT: &str = "jobs-admin";
const DEPLOYMENTS: u32 = 4;
/// StatefulSets and DaemonSets of the fleet in the mode with those kinds on.
const STATEFUL_SETS: u32 = 1;
const DAEMON_SETS: u32 = 1;

// How long each step may take before it counts as failed. A passing probe takes about 3 s;
// these leave room for a loaded machine.
const LEADS_WITHIN: Duration = Duration::from_secs(8);
const SYNCED_WITHIN: Duration = Duration::from_secs(8);
const RUN_WITHIN: Duration = Duration::from_secs(12);
const EVENTS_WITHIN: Duration = Duration::from_secs(5);
const JOB_WITHIN: Duration = Duration::from_secs(12);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    ClusterWide,
    Namespaced,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Leads,
    CachesSync,
    FirstRun,
    Events,
    ConfigMapRun,
    SecretRun,
    DisruptionBudget,
    Capacity,
    AdminJob,
}

impl Mode {
    /// Whether the install enables StatefulSets and DaemonSets as restart targets.
    fn all_kinds(self) -> bool {
        self == Mode::Namespaced
    }

    /// Whether the install enables Secret triggers.
    fn secret_triggers(self) -> bool {
        self == Mode::ClusterWide
    }

    /// How many services each run restarts.
    fn services(self) -> u32 {
        if self.all_kinds() { DEPLOYMENTS + STATEFUL_SETS + DAEMON_SETS } else { DEPLOYMENTS }
    }
}

impl Step {
    fn describe(self) -> &'static str {
        match self {
            Step::Leads => "take the leader Lease",
            Step::CachesSync => "sync the watch caches",
            Step::FirstRun => "run a new ServiceRefresh",
            Step::Events => "record the run's Events",
            Step::ConfigMapRun => "start a run on a ConfigMap change",
            Step::SecretRun => "start a run on a Secret change",
            Step::DisruptionBudget => "hold a run for a PodDisruptionBudget created later",
            Step::Capacity => "see a restarted pod no node takes",
            Step::AdminJob => "complete an admin API job",
        }
    }
}

/// Where a rule lives.
#[derive(Clone, Debug)]
enum RbacObject {
    ClusterRole(String),
    Role { namespace: String, name: String },
}

impl RbacObject {
    fn describe(&self) -> String {
        match self {
            RbacObject::ClusterRole(name) => format!("ClusterRole {name}"),
            RbacObject::Role { namespace, name } => format!("Role {namespace}/{name}"),
        }
    }

    async fn rules(&self, admin: &Client) -> Vec<Value> {
        let object = match self {
            RbacObject::ClusterRole(name) => {
                let roles: Api<ClusterRole> = Api::all(admin.clone());
                serde_json::to_value(roles.get(name).await.expect("get ClusterRole"))
            }
            RbacObject::Role { namespace, name } => {
                let roles: Api<Role> = Api::namespaced(admin.clone(), namespace);
                serde_json::to_value(roles.get(name).await.expect("get Role"))
            }
        };
        object.expect("JSON")["rules"].as_array().cloned().unwrap_or_default()
    }

    async fn set_rules(&self, admin: &Client, rules: &[Value]) {
        let patch = Patch::Merge(json!({"rules": rules}));
        let params = PatchParams::default();
        match self {
            RbacObject::ClusterRole(name) => {
                let roles: Api<ClusterRole> = Api::all(admin.clone());
                roles.patch(name, &params, &patch).await.map(drop)
            }
            RbacObject::Role { namespace, name } => {
                let roles: Api<Role> = Api::namespaced(admin.clone(), namespace);
                roles.patch(name, &params, &patch).await.map(drop)
            }
        }
        .unwrap_or_else(|error| panic!("patch the rules of {}: {error}", self.describe()));
    }
}

/// One right the chart grants: a verb of a rule, or (namespaced mode) the binding to the
/// built-in `system:auth-delegator`.
#[derive(Clone, Debug)]
enum Grant {
    Verb {
        object: RbacObject,
        rule: usize,
        verb: String,
        group: String,
        resource: String,
        names: Vec<String>,
    },
    Binding {
        name: String,
        role: String,
    },
}

impl Grant {
    fn describe(&self) -> String {
        match self {
            Grant::Verb { object, verb, group, resource, names, .. } => {
                let group = if group.is_empty() { "core" } else { group };
                let names = if names.is_empty() { String::new() } else { format!(" {names:?}") };
                format!("{}: {group} {resource}{names} {verb}", object.describe())
            }
            Grant::Binding { name, role } => format!("ClusterRoleBinding {name} (to {role})"),
        }
    }

    /// The part of the API server's 403 message that names the refused request.
    fn refusal(&self) -> String {
        match self {
            // A server-side apply that creates its object is authorized as a create too, and
            // refused as the handler words it: `<resource>.<group> "<name>" is forbidden`.
            Grant::Verb { verb, group, resource, .. }
                if verb == "create" && resource == "servicerefreshplans" =>
            {
                format!("{resource}.{group} \"")
            }
            Grant::Verb { verb, group, resource, .. } => {
                format!("cannot {verb} resource \"{resource}\" in API group \"{group}\"")
            }
            Grant::Binding { .. } => {
                "cannot create resource \"tokenreviews\" in API group \"authentication.k8s.io\""
                    .to_owned()
            }
        }
    }
}

/// A log line of the operator that quotes a refusal.
#[derive(Clone, Debug)]
struct Refusal {
    message: String,
    text: String,
}

/// What became of one probe.
#[derive(Debug)]
struct Outcome {
    failed: Option<(Step, String)>,
    refusals: Vec<Refusal>,
}

impl Outcome {
    /// The first refusal that names `grant`'s request.
    fn refusal_of(&self, grant: &Grant) -> Option<&Refusal> {
        let wanted = grant.refusal();
        self.refusals.iter().find(|refusal| refusal.text.contains(&wanted))
    }
}

/// The operator's JSON log lines that quote a 401 or 403 answer.
fn refusals(lines: &[String]) -> Vec<Refusal> {
    lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|line| {
            let fields = line.as_object()?;
            let text = fields
                .values()
                .filter_map(Value::as_str)
                .find(|text| text.contains("is forbidden") || text.contains("Unauthorized"))?;
            let mut message = fields.get("message")?.as_str()?.to_owned();
            // What the line says failed, when the 403 is only its cause.
            if let Some(error) = fields.get("error").and_then(Value::as_str)
                && error != text
            {
                message = format!("{message} ({error})");
            }
            Some(Refusal { message, text: text.to_owned() })
        })
        .collect()
}

/// The cluster with the release installed, and what a probe needs.
struct Lab {
    sim: SimHandle,
    admin: Client,
    mode: Mode,
    /// The chart pod's command line, runnable here.
    args: Vec<String>,
    _certificate: TestCertificate,
    http: reqwest::Client,
    jobs_token: String,
    round: usize,
}

impl Lab {
    async fn start(mode: Mode) -> Self {
        let sim = servicerefresh_sim::start(SimConfig {
            namespace: NAMESPACE.into(),
            deployments: DEPLOYMENTS as usize,
            stateful_sets: if mode.all_kinds() { STATEFUL_SETS as usize } else { 0 },
            daemon_sets: if mode.all_kinds() { DAEMON_SETS as usize } else { 0 },
            rollout_ms: 150,
            seed: 3,
            // One node with room for every pod but the one that asks for 64 CPUs.
            nodes: Some(1),
            spare_cpu_millis: Some(8_000),
            ..SimConfig::default()
        })
        .await
        .expect("simulated cluster starts");
        let admin = common::sim_client(&sim).await;
        let mut sets = vec![
            "leaderElection.leaseDuration=3s",
            "leaderElection.renewDeadline=2s",
            "admin.enabled=true",
            "admin.target=arcgis/probe",
            "admin.tls.secretName=sr-admin-tls",
            // Each probe restarts the same fleet seconds after the last one.
            "minRestartInterval=0s",
        ];
        let helm = match mode {
            Mode::ClusterWide => {
                sets.extend([
                    "secretTriggers.enabled=true",
                    "secretTriggers.names={probe-secret}",
                    "secretTriggers.namespaces={arcgis}",
                ]);
                Helm::V3
            }
            Mode::Namespaced => {
                sets.extend([
                    "watchNamespace=arcgis",
                    "admin.authDelegator=true",
                    "workloadKinds.statefulSets=true",
                    "workloadKinds.daemonSets=true",
                ]);
                Helm::V4
            }
        };
        let installed = HelmClient::new(helm, &sim).install(&sets).await;
        assert!(installed.contains("STATUS: deployed"), "{installed}");
        // The notes tell the admin API's callers which right they need on which target.
        assert!(
            installed.contains("The ArcGIS-compatible job API runs arcgis/probe"),
            "{installed}"
        );
        assert!(installed.contains("servicerefreshes/probe in arcgis"), "{installed}");

        let config_maps: Api<ConfigMap> = Api::namespaced(admin.clone(), NAMESPACE);
        let trigger = serde_json::from_value(json!({
            "metadata": {"name": TRIGGER}, "data": {"proxy": "http://proxy-0:3128"},
        }))
        .expect("ConfigMap");
        config_maps.create(&PostParams::default(), &trigger).await.expect("create ConfigMap");
        let secrets: Api<Secret> = Api::namespaced(admin.clone(), NAMESPACE);
        let secret = serde_json::from_value(json!({
            "metadata": {"name": SECRET_TRIGGER}, "data": {"ca.crt": "Y2EtMA=="},
        }))
        .expect("Secret");
        secrets.create(&PostParams::default(), &secret).await.expect("create Secret");
        let jobs_token = grant_jobs(&sim, &admin).await;

        let certificate = TestCertificate::new();
        let container = operator_container(&admin).await;
        let mounts = Mounts { tls_cert: Some(&certificate.cert), tls_key: Some(&certificate.key) };
        let args = outside_a_pod(&container_args(&container), &mounts);
        let http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(certificate.pem.as_bytes()).expect("PEM"),
            )
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        Self { sim, admin, mode, args, _certificate: certificate, http, jobs_token, round: 0 }
    }

    /// Every right the release grants the operator's ServiceAccount.
    async fn grants(&self) -> Vec<Grant> {
        let released =
            ListParams::default().labels(&format!("app.kubernetes.io/instance={RELEASE}"));
        let mut objects = Vec::new();
        let cluster_roles: Api<ClusterRole> = Api::all(self.admin.clone());
        for role in cluster_roles.list(&released).await.expect("list ClusterRoles").items {
            objects.push(RbacObject::ClusterRole(role.metadata.name.expect("name")));
        }
        for namespace in [NAMESPACE, RELEASE_NAMESPACE] {
            let roles: Api<Role> = Api::namespaced(self.admin.clone(), namespace);
            for role in roles.list(&released).await.expect("list Roles").items {
                let name = role.metadata.name.expect("name");
                objects.push(RbacObject::Role { namespace: namespace.to_owned(), name });
            }
        }
        let mut grants = Vec::new();
        for object in objects {
            for (index, rule) in object.rules(&self.admin).await.iter().enumerate() {
                let list = |field: &str| -> Vec<String> {
                    rule[field]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|item| item.as_str().map(str::to_owned))
                        .collect()
                };
                let (groups, resources) = (list("apiGroups"), list("resources"));
                assert!(
                    groups.len() == 1 && resources.len() == 1,
                    "{}: one group and resource per rule, so that each is proven: {rule}",
                    object.describe()
                );
                for verb in list("verbs") {
                    grants.push(Grant::Verb {
                        object: object.clone(),
                        rule: index,
                        verb,
                        group: groups[0].clone(),
                        resource: resources[0].clone(),
                        names: list("resourceNames"),
                    });
                }
            }
        }
        let bindings: Api<ClusterRoleBinding> = Api::all(self.admin.clone());
        for binding in bindings.list(&released).await.expect("list ClusterRoleBindings").items {
            if binding.role_ref.name.starts_with("system:") {
                let name = binding.metadata.name.expect("name");
                grants.push(Grant::Binding { name, role: binding.role_ref.name });
            }
        }
        grants
    }

    /// Runs the probe with `grant` taken away (none: everything granted), then gives it back.
    async fn probe_without(&mut self, grant: Option<&Grant>) -> Outcome {
        match grant {
            None => self.probe().await,
            Some(Grant::Verb { object, rule, verb, .. }) => {
                let original = object.rules(&self.admin).await;
                let mut reduced = original.clone();
                let verbs = reduced[*rule]["verbs"].as_array_mut().expect("verbs");
                verbs.retain(|item| item != verb.as_str());
                if verbs.is_empty() {
                    reduced.remove(*rule);
                }
                object.set_rules(&self.admin, &reduced).await;
                let outcome = self.probe().await;
                object.set_rules(&self.admin, &original).await;
                outcome
            }
            Some(Grant::Binding { name, .. }) => {
                let bindings: Api<ClusterRoleBinding> = Api::all(self.admin.clone());
                let mut saved = bindings.get(name).await.expect("get binding");
                bindings.delete(name, &DeleteParams::default()).await.expect("delete binding");
                let outcome = self.probe().await;
                saved.metadata = kube::api::ObjectMeta {
                    name: saved.metadata.name,
                    labels: saved.metadata.labels,
                    annotations: saved.metadata.annotations,
                    ..Default::default()
                };
                bindings.create(&PostParams::default(), &saved).await.expect("recreate binding");
                outcome
            }
        }
    }

    /// One probe from a clean slate: no ServiceRefresh `probe`, no Lease.
    async fn probe(&mut self) -> Outcome {
        self.round += 1;
        let refreshes: Api<ServiceRefresh> = Api::namespaced(self.admin.clone(), NAMESPACE);
        let _ = refreshes.delete(PROBE, &DeleteParams::default()).await;
        wait_for(Duration::from_secs(10), "the previous probe's ServiceRefresh to go", || async {
            refreshes.get_opt(PROBE).await.expect("get").is_none().then_some(())
        })
        .await;
        let _ = refreshes.delete(CAPACITY_PROBE, &DeleteParams::default()).await;
        let deployments: Api<Deployment> = Api::namespaced(self.admin.clone(), NAMESPACE);
        let _ = deployments.delete(TOO_BIG, &DeleteParams::default()).await;
        wait_for(Duration::from_secs(10), "the previous probe's Deployment to go", || async {
            deployments.get_opt(TOO_BIG).await.expect("get").is_none().then_some(())
        })
        .await;
        let budgets: Api<PodDisruptionBudget> = Api::namespaced(self.admin.clone(), NAMESPACE);
        let _ = budgets.delete(BUDGET, &DeleteParams::default()).await;
        let leases: Api<Lease> = Api::namespaced(self.admin.clone(), RELEASE_NAMESPACE);
        let _ = leases.delete(FULLNAME, &DeleteParams::default()).await;

        let pod = format!("{FULLNAME}-6c4f9d7b8-probe{}", self.round);
        let mut operator = ChartOperator::start(&self.sim, &self.admin, &pod, &self.args).await;
        let failed = self.steps(&operator.process).await.err();
        operator.process.kill9();
        let lines = operator.process.lines();
        if std::env::var_os("SERVICEREFRESH_TEST_ECHO").is_some() {
            eprintln!("--- probe {} ({:?}):\n{}", self.round, self.mode, lines.join("\n"));
        }
        Outcome { failed, refusals: refusals(&lines) }
    }

    async fn steps(&self, process: &OperatorProcess) -> Result<(), (Step, String)> {
        until(process, Step::Leads, LEADS_WITHIN, || async {
            Ok(process.logged("leadership acquired").into_iter().next())
        })
        .await?;
        until(process, Step::CachesSync, SYNCED_WITHIN, || async {
            Ok(process.logged("watch caches synced: ready").into_iter().next())
        })
        .await?;

        let refreshes: Api<ServiceRefresh> = Api::namespaced(self.admin.clone(), NAMESPACE);
        let kinds = if self.mode.all_kinds() {
            json!(["Deployment", "StatefulSet", "DaemonSet"])
        } else {
            json!(["Deployment"])
        };
        let mut spec = json!({"selector": {}, "exclude": [TOO_BIG], "batchSize": 2, "batchTimeout": "5s", "kinds": kinds,
                              "configMapTriggers": [{"name": TRIGGER}]});
        if self.mode.secret_triggers() {
            spec["secretTriggers"] = json!([{"name": SECRET_TRIGGER}]);
        }
        let refresh: ServiceRefresh = serde_json::from_value(json!({
            "apiVersion": "gisops.io/v1alpha1",
            "kind": "ServiceRefresh",
            "metadata": {"name": PROBE, "namespace": NAMESPACE},
            "spec": spec,
        }))
        .expect("ServiceRefresh");
        let created = refreshes.create(&PostParams::default(), &refresh).await.expect("create");
        let uid = created.metadata.uid.expect("uid");
        until(process, Step::FirstRun, RUN_WITHIN, || self.run_ended(1, "Created")).await?;

        until(process, Step::Events, EVENTS_WITHIN, || async {
            let events: Api<Event> = Api::namespaced(self.admin.clone(), NAMESPACE);
            let events = events.list(&ListParams::default()).await.expect("list Events").items;
            Ok(events
                .iter()
                .find(|event| {
                    event.regarding.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid.as_str())
                        && event.reason.as_deref() == Some("RunStarted")
                })
                .map(drop))
        })
        .await?;

        let config_maps: Api<ConfigMap> = Api::namespaced(self.admin.clone(), NAMESPACE);
        let change = json!({"data": {"proxy": format!("http://proxy-{}:3128", self.round)}});
        config_maps
            .patch(TRIGGER, &PatchParams::default(), &Patch::Merge(change))
            .await
            .expect("change the trigger ConfigMap");
        until(process, Step::ConfigMapRun, RUN_WITHIN, || self.run_ended(2, "ConfigMapChanged"))
            .await?;
        self.budget_holds_a_run(process).await?;
        self.capacity_shows(process).await?;

        if self.mode.secret_triggers() {
            let secrets: Api<Secret> = Api::namespaced(self.admin.clone(), NAMESPACE);
            let value = format!("ca-{}", self.round);
            let change = json!({"stringData": {"ca.crt": value}});
            secrets
                .patch(SECRET_TRIGGER, &PatchParams::default(), &Patch::Merge(change))
                .await
                .expect("change the trigger Secret");
            until(process, Step::SecretRun, RUN_WITHIN, || self.run_ended(4, "SecretChanged"))
                .await?;
        }

        let listening = until(process, Step::AdminJob, JOB_WITHIN, || async {
            Ok(process.logged("admin job API listening").into_iter().next())
        })
        .await?;
        let base =
            format!("https://{}/arcgis/admin", listening["listen"].as_str().expect("listen"));
        let answer = self
            .http
            .post(format!("{base}/services/refreshAllServices"))
            .form(&[("f", "json"), ("token", self.jobs_token.as_str())])
            .send()
            .await
            .expect("POST refreshAllServices")
            .json::<Value>()
            .await
            .expect("JSON");
        let Some(job) = answer["jobid"].as_str() else {
            return Err((Step::AdminJob, format!("refreshAllServices answered {answer}")));
        };
        until(process, Step::AdminJob, JOB_WITHIN, || async {
            let job = self
                .http
                .get(format!("{base}/jobs/{job}"))
                .query(&[("f", "json"), ("token", self.jobs_token.as_str())])
                .send()
                .await
                .expect("GET job")
                .json::<Value>()
                .await
                .expect("JSON");
            let named = job["result"]["batches"].as_array().map_or(0, |batches| {
                batches.iter().map(|b| b["services"].as_array().map_or(0, Vec::len)).sum()
            });
            let services = self.mode.services();
            match job["status"].as_str() {
                Some("COMPLETED") if named as u32 == services => Ok(Some(())),
                Some("COMPLETED") => {
                    Err(format!("the job names {named} of its {services} services: {job}"))
                }
                Some("FAILED" | "CANCELLED") | None => Err(format!("the job answered {job}")),
                Some(_) => Ok(None),
            }
        })
        .await
    }

    /// A budget over the fleet's pods, created after the caches synced and allowing no
    /// disruption, holds the next run until it allows some.
    async fn budget_holds_a_run(&self, process: &OperatorProcess) -> Result<(), (Step, String)> {
        let budgets: Api<PodDisruptionBudget> = Api::namespaced(self.admin.clone(), NAMESPACE);
        let budget = serde_json::from_value(json!({
            "metadata": {"name": BUDGET},
            "spec": {"minAvailable": 1000,
                     "selector": {"matchLabels": {"app.kubernetes.io/managed-by": "arcgis"}}},
        }))
        .expect("PodDisruptionBudget");
        budgets.create(&PostParams::default(), &budget).await.expect("create the budget");
        let config_maps: Api<ConfigMap> = Api::namespaced(self.admin.clone(), NAMESPACE);
        let change = json!({"data": {"proxy": format!("http://proxy-{}-held:3128", self.round)}});
        config_maps
            .patch(TRIGGER, &PatchParams::default(), &Patch::Merge(change))
            .await
            .expect("change the trigger ConfigMap");
        let refreshes: Api<ServiceRefresh> = Api::namespaced(self.admin.clone(), NAMESPACE);
        until(process, Step::DisruptionBudget, RUN_WITHIN, || async {
            let status = refreshes.get(PROBE).await.expect("get").status.unwrap_or_default();
            let run = status.run.as_ref().filter(|run| run.number == 3);
            if run.is_some_and(|run| run.end_time.is_some()) {
                return Err("run 3 ended without waiting for the budget".to_owned());
            }
            let waiting = status.waiting.as_ref().map(|waiting| waiting.reason.as_str());
            Ok((run.is_some() && waiting == Some("WaitingForDisruptionBudget")).then_some(()))
        })
        .await?;
        let allow = json!({"spec": {"minAvailable": 0}});
        budgets
            .patch(BUDGET, &PatchParams::default(), &Patch::Merge(allow))
            .await
            .expect("let the budget allow disruptions");
        until(process, Step::DisruptionBudget, RUN_WITHIN, || {
            self.run_ended(3, "ConfigMapChanged")
        })
        .await?;
        budgets.delete(BUDGET, &DeleteParams::default()).await.expect("delete the budget");
        Ok(())
    }

    /// A run restarting a Deployment whose pods fit on no node says so in its status: its
    /// new pod, created after the caches synced, waits unschedulable.
    async fn capacity_shows(&self, process: &OperatorProcess) -> Result<(), (Step, String)> {
        // Created afresh each time: a rollout that never ends would hold the next probe's
        // restart for the run that started it.
        let deployments: Api<Deployment> = Api::namespaced(self.admin.clone(), NAMESPACE);
        deployments.create(&PostParams::default(), &too_big()).await.expect("create Deployment");
        let refreshes: Api<ServiceRefresh> = Api::namespaced(self.admin.clone(), NAMESPACE);
        let refresh: ServiceRefresh = serde_json::from_value(json!({
            "apiVersion": "gisops.io/v1alpha1",
            "kind": "ServiceRefresh",
            "metadata": {"name": CAPACITY_PROBE, "namespace": NAMESPACE},
            "spec": {"selector": {"matchLabels": {"app": TOO_BIG}}, "batchTimeout": "60s"},
        }))
        .expect("ServiceRefresh");
        refreshes.create(&PostParams::default(), &refresh).await.expect("create");
        let seen = until(process, Step::Capacity, RUN_WITHIN, || async {
            let status = refreshes.get(CAPACITY_PROBE).await.expect("get").status;
            let waiting = status.and_then(|status| status.waiting).map(|waiting| waiting.reason);
            Ok((waiting.as_deref() == Some("WaitingForCapacity")).then_some(()))
        })
        .await;
        refreshes.delete(CAPACITY_PROBE, &DeleteParams::default()).await.expect("delete");
        deployments.delete(TOO_BIG, &DeleteParams::default()).await.expect("delete Deployment");
        seen
    }

    /// Run `number` of the probe ended: `Some` when it succeeded for every Deployment, an error
    /// when it ended otherwise.
    async fn run_ended(&self, number: u64, reason: &str) -> Result<Option<()>, String> {
        let refreshes: Api<ServiceRefresh> = Api::namespaced(self.admin.clone(), NAMESPACE);
        let Some(status) = refreshes.get(PROBE).await.expect("get").status else {
            return Ok(None);
        };
        let Some(run) = status.run.as_ref().filter(|run| run.number == number) else {
            return Ok(None);
        };
        match status.phase {
            Some(Phase::Succeeded)
                if status.totals.ready == self.mode.services() && run.reason == reason =>
            {
                Ok(Some(()))
            }
            Some(Phase::Succeeded | Phase::Failed | Phase::Cancelled) => Err(format!(
                "run {number} ({}) ended {:?}: {}",
                run.reason,
                status.phase,
                run.message.as_deref().unwrap_or_default()
            )),
            _ => Ok(None),
        }
    }
}

/// A Deployment whose pod asks for more CPU than any node has.
fn too_big() -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": TOO_BIG, "labels": {"app": TOO_BIG}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": TOO_BIG}},
            "template": {
                "metadata": {"labels": {"app": TOO_BIG}},
                "spec": {"containers": [{"name": "main", "image": "arcgis/service:11.3",
                    "resources": {"requests": {"cpu": "64", "memory": "64Mi"}}}]},
            },
        },
    }))
    .expect("Deployment")
}

/// Gives `jobs-admin` get and patch on the target, as README's admin API section says, and
/// returns a token of it.
async fn grant_jobs(sim: &SimHandle, admin: &Client) -> String {
    sim.create_service_account(NAMESPACE, JOBS_ACCOUNT).expect("ServiceAccount");
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "probe-jobs"},
        "rules": [{"apiGroups": ["gisops.io"], "resources": ["servicerefreshes"],
                   "resourceNames": [PROBE], "verbs": ["get", "patch"]}],
    }))
    .expect("Role");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "probe-jobs"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "probe-jobs"},
        "subjects": [{"kind": "ServiceAccount", "name": JOBS_ACCOUNT, "namespace": NAMESPACE}],
    }))
    .expect("RoleBinding");
    let roles: Api<Role> = Api::namespaced(admin.clone(), NAMESPACE);
    roles.create(&PostParams::default(), &role).await.expect("create Role");
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), NAMESPACE);
    bindings.create(&PostParams::default(), &binding).await.expect("create RoleBinding");
    sim.service_account_token(NAMESPACE, JOBS_ACCOUNT, Duration::from_secs(3600)).expect("token")
}

/// Polls `check` until it yields a value (`Ok(Some)`), fails (`Err`), the operator exits with a
/// fatal error, or `deadline` passes.
async fn until<T, F, Fut>(
    process: &OperatorProcess,
    step: Step,
    deadline: Duration,
    mut check: F,
) -> Result<T, (Step, String)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, String>>,
{
    let started = Instant::now();
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Err(why) => return Err((step, why)),
            Ok(None) => {}
        }
        let fatal = process
            .lines()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| line["fatal"] == true);
        if let Some(fatal) = fatal {
            return Err((step, format!("the operator exited: {}", fatal["message"])));
        }
        if started.elapsed() > deadline {
            return Err((step, format!("did not happen within {deadline:?}")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn shorten(text: &str, limit: usize) -> String {
    let text = text.replace('\n', " ");
    if text.chars().count() <= limit {
        return text;
    }
    format!("{}…", text.chars().take(limit).collect::<String>())
}

/// Rules no probe step can fail without yet, which must still be refused in the operator's log
/// when left out. None: every rule has a step that fails without it.
const UNPROBED: &[&str] = &[];

async fn leave_one_rule_out(mode: Mode, expected: &[&str]) {
    let mut lab = Lab::start(mode).await;
    let baseline = lab.probe_without(None).await;
    assert_eq!(baseline.failed, None, "with every rule granted the probe passes: {baseline:#?}");
    assert!(baseline.refusals.is_empty(), "nothing is refused: {:#?}", baseline.refusals);

    let grants = lab.grants().await;
    let described: Vec<String> = grants.iter().map(Grant::describe).collect();
    assert_eq!(described, expected, "the rights the chart grants in {mode:?} mode");

    let mut table =
        vec![format!("{mode:?} mode: rule left out | step that failed | the operator's log")];
    let mut surplus = Vec::new();
    for grant in &grants {
        let outcome = lab.probe_without(Some(grant)).await;
        let failed = match &outcome.failed {
            Some((step, why)) => format!("{}: {}", step.describe(), shorten(why, 160)),
            None => "nothing failed".to_owned(),
        };
        let logged = match outcome.refusal_of(grant) {
            Some(refusal) if refusal.text.starts_with(&refusal.message) => {
                shorten(&refusal.text, 240)
            }
            Some(refusal) => format!("{}: {}", refusal.message, shorten(&refusal.text, 240)),
            None => {
                format!("no line quotes {:?}; refusals: {:?}", grant.refusal(), outcome.refusals)
            }
        };
        table.push(format!("{} | {failed} | {logged}", grant.describe()));
        let unprobed = UNPROBED.iter().any(|rule| grant.describe().ends_with(rule));
        if (outcome.failed.is_none() && !unprobed) || outcome.refusal_of(grant).is_none() {
            surplus.push(grant.describe());
        }
    }
    let table = table.join("\n");
    eprintln!("{table}");
    assert!(
        surplus.is_empty(),
        "left out alone, these rights broke nothing the operator needs, or no log line said \
         so: {surplus:#?}\n{table}"
    );
    lab.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_of_the_cluster_wide_chart_is_needed() {
    leave_one_rule_out(
        Mode::ClusterWide,
        &[
            "ClusterRole sr-servicerefresh: gisops.io servicerefreshes list",
            "ClusterRole sr-servicerefresh: gisops.io servicerefreshes watch",
            "ClusterRole sr-servicerefresh: gisops.io servicerefreshes/status patch",
            "ClusterRole sr-servicerefresh: gisops.io servicerefreshplans list",
            "ClusterRole sr-servicerefresh: gisops.io servicerefreshplans create",
            "ClusterRole sr-servicerefresh: gisops.io servicerefreshplans patch",
            "ClusterRole sr-servicerefresh: apps deployments list",
            "ClusterRole sr-servicerefresh: apps deployments watch",
            "ClusterRole sr-servicerefresh: apps deployments patch",
            "ClusterRole sr-servicerefresh: core configmaps list",
            "ClusterRole sr-servicerefresh: core configmaps watch",
            "ClusterRole sr-servicerefresh: core pods list",
            "ClusterRole sr-servicerefresh: core pods watch",
            "ClusterRole sr-servicerefresh: policy poddisruptionbudgets list",
            "ClusterRole sr-servicerefresh: policy poddisruptionbudgets watch",
            "ClusterRole sr-servicerefresh: events.k8s.io events create",
            "ClusterRole sr-servicerefresh: gisops.io servicerefreshes patch",
            "ClusterRole sr-servicerefresh: authentication.k8s.io tokenreviews create",
            "ClusterRole sr-servicerefresh: authorization.k8s.io subjectaccessreviews create",
            "Role arcgis/sr-servicerefresh-secret-triggers: core secrets [\"probe-secret\"] list",
            "Role arcgis/sr-servicerefresh-secret-triggers: core secrets [\"probe-secret\"] watch",
            "Role servicerefresh-system/sr-servicerefresh-leader-election: coordination.k8s.io leases create",
            "Role servicerefresh-system/sr-servicerefresh-leader-election: coordination.k8s.io leases [\"sr-servicerefresh\"] get",
            "Role servicerefresh-system/sr-servicerefresh-leader-election: coordination.k8s.io leases [\"sr-servicerefresh\"] patch",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_of_the_namespaced_chart_is_needed() {
    leave_one_rule_out(
        Mode::Namespaced,
        &[
            "Role arcgis/sr-servicerefresh: gisops.io servicerefreshes list",
            "Role arcgis/sr-servicerefresh: gisops.io servicerefreshes watch",
            "Role arcgis/sr-servicerefresh: gisops.io servicerefreshes/status patch",
            "Role arcgis/sr-servicerefresh: gisops.io servicerefreshplans list",
            "Role arcgis/sr-servicerefresh: gisops.io servicerefreshplans create",
            "Role arcgis/sr-servicerefresh: gisops.io servicerefreshplans patch",
            "Role arcgis/sr-servicerefresh: apps deployments list",
            "Role arcgis/sr-servicerefresh: apps deployments watch",
            "Role arcgis/sr-servicerefresh: apps deployments patch",
            "Role arcgis/sr-servicerefresh: apps statefulsets list",
            "Role arcgis/sr-servicerefresh: apps statefulsets watch",
            "Role arcgis/sr-servicerefresh: apps statefulsets patch",
            "Role arcgis/sr-servicerefresh: apps daemonsets list",
            "Role arcgis/sr-servicerefresh: apps daemonsets watch",
            "Role arcgis/sr-servicerefresh: apps daemonsets patch",
            "Role arcgis/sr-servicerefresh: core configmaps list",
            "Role arcgis/sr-servicerefresh: core configmaps watch",
            "Role arcgis/sr-servicerefresh: core pods list",
            "Role arcgis/sr-servicerefresh: core pods watch",
            "Role arcgis/sr-servicerefresh: policy poddisruptionbudgets list",
            "Role arcgis/sr-servicerefresh: policy poddisruptionbudgets watch",
            "Role arcgis/sr-servicerefresh: events.k8s.io events create",
            "Role arcgis/sr-servicerefresh: gisops.io servicerefreshes patch",
            "Role servicerefresh-system/sr-servicerefresh-leader-election: coordination.k8s.io leases create",
            "Role servicerefresh-system/sr-servicerefresh-leader-election: coordination.k8s.io leases [\"sr-servicerefresh\"] get",
            "Role servicerefresh-system/sr-servicerefresh-leader-election: coordination.k8s.io leases [\"sr-servicerefresh\"] patch",
            "ClusterRoleBinding sr-servicerefresh-auth-delegator (to system:auth-delegator)",
        ],
    )
    .await;
}
