//! The engine's model cluster, for driving `decide` in tests: Deployments that the API
//! server patches the way the real one does (identical annotations change nothing; otherwise
//! the template changes and the generation goes up by one), a Deployment controller the test
//! moves by hand, ConfigMaps, and a ServiceRefresh whose status is persisted between passes.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use super::record_restart_outcomes;
use crate::crd::WorkloadKind;
use crate::crd::{ServiceRefresh, ServiceRefreshPlan, ServiceRefreshSpec, ServiceRefreshStatus};
use crate::engine::disruption_budgets::DisruptionBudgetSnapshot;
use crate::engine::observed::{RolloutStatus, UpdateStrategy};
use crate::engine::pods::{PodSnapshot, Unschedulable, WorkloadRef};
use crate::engine::spec::{ValidSpec, validate};
use crate::engine::view::RunView;
use crate::engine::{
    ConfigMapSnapshot, Decision, DeploymentSnapshot, ObjectKey, Observation, OperatorScope, Plan,
    Restart, RestartOutcome, RunSlot, SecretSnapshot, SlotHolder, StaticCluster, Transition,
    decide,
};

pub use crate::crd::fixtures::FIXTURE_NAMESPACE as NS;

/// 2026-11-26T18:26:29Z.
pub const T0: i64 = 1_795_717_589;

pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(T0 + seconds).expect("test times are in range")
}

/// A spec as a user writes it, validated in the fixture namespace.
pub fn valid_spec(spec: serde_json::Value) -> ValidSpec {
    let spec: ServiceRefreshSpec = serde_json::from_value(spec).expect("spec parses");
    validate(&spec, NS, &OperatorScope::default()).expect("spec is valid")
}

/// A model Deployment: the snapshot the engine sees plus the template annotations the API
/// server compares when a restart patch arrives.
#[derive(Clone, Debug)]
pub struct ModelDeployment {
    pub snapshot: DeploymentSnapshot,
    pub restarted_at: Option<String>,
}

/// The cluster as a pass sees it (possibly stale).
pub type ModelView = StaticCluster;

pub struct ModelCluster {
    pub refresh: ServiceRefresh,
    pub deployments: BTreeMap<ObjectKey, ModelDeployment>,
    pub config_maps: BTreeMap<ObjectKey, Arc<ConfigMapSnapshot>>,
    pub secrets: BTreeMap<ObjectKey, Arc<SecretSnapshot>>,
    pub scope: OperatorScope,
    pub run_slot: RunSlot,
    pub now: Timestamp,
    /// The operator's `--min-restart-interval`; zero unless a test sets it.
    pub min_restart_interval: SignedDuration,
    /// How often each Deployment's pod template changed, per run id.
    pub template_changes: BTreeMap<(String, ObjectKey), u32>,
    /// The generation each run's template change produced.
    pub patch_generations: BTreeMap<(String, ObjectKey), i64>,
    /// The cluster-wide resourceVersion of the last change.
    pub resource_version: u64,
    /// The ServiceRefreshPlan objects, by name.
    pub plans: BTreeMap<String, ServiceRefreshPlan>,
    /// The health gate outcome the shell would hand the next pass.
    pub health_gate: Option<crate::engine::health_gate::GateResult>,
    /// A write the API server forbids, as the shell would record it.
    pub forbidden: Option<crate::engine::Forbidden>,
    /// Pods the scheduler finds no node for, by the Deployment they belong to.
    pub unschedulable: BTreeMap<ObjectKey, Arc<PodSnapshot>>,
    /// PodDisruptionBudgets, by key.
    pub disruption_budgets: BTreeMap<ObjectKey, Arc<DisruptionBudgetSnapshot>>,
}

impl ModelCluster {
    pub fn new(spec: serde_json::Value) -> Self {
        Self {
            refresh: ServiceRefresh::fixture("refresh").spec(spec).build(),
            deployments: BTreeMap::new(),
            config_maps: BTreeMap::new(),
            secrets: BTreeMap::new(),
            // The model operator runs with --secret-triggers; a test of the stall without it
            // turns it off.
            scope: OperatorScope { secret_triggers: true, ..OperatorScope::default() },
            run_slot: RunSlot::Granted,
            now: at(0),
            min_restart_interval: SignedDuration::ZERO,
            template_changes: BTreeMap::new(),
            patch_generations: BTreeMap::new(),
            resource_version: 0,
            plans: BTreeMap::new(),
            health_gate: None,
            forbidden: None,
            unschedulable: BTreeMap::new(),
            disruption_budgets: BTreeMap::new(),
        }
    }

    /// A PodDisruptionBudget `name` covering the pods of `members` (each gets the pod label
    /// `budget-<name>`), allowing `allowed` disruptions.
    pub fn set_budget(&mut self, name: &str, members: &[ObjectKey], allowed: i32) {
        let label = format!("budget-{name}");
        for key in members {
            let deployment = self.deployment_mut(key);
            let mut labels = deployment.pod_labels();
            labels.insert(label.clone(), "in".to_owned());
            deployment.set_pod_labels(labels);
        }
        let namespace = members.first().map_or(NS, |key| key.namespace.as_str()).to_owned();
        let budget = DisruptionBudgetSnapshot {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                namespace: Some(namespace.clone()),
                name: Some(name.to_owned()),
                generation: Some(1),
                ..Default::default()
            },
            selector: Some([(label, "in".to_owned())].into_iter().collect()),
            disruptions_allowed: allowed,
            current_healthy: 1 + allowed.max(0),
            desired_healthy: 1,
            observed_generation: Some(1),
        };
        self.disruption_budgets.insert(ObjectKey::new(namespace, name), Arc::new(budget));
    }

    /// The disruption controller's new verdict on budget `name` of namespace `namespace`.
    pub fn allow_disruptions(&mut self, namespace: &str, name: &str, allowed: i32) {
        let key = ObjectKey::new(namespace, name);
        if let Some(budget) = self.disruption_budgets.get_mut(&key) {
            let budget = Arc::make_mut(budget);
            budget.disruptions_allowed = allowed;
            budget.current_healthy = 1 + allowed.max(0);
        }
    }

    /// A new pod of `key`'s current template (so of the run that restarted it last) that
    /// no node takes, waiting since now.
    pub fn block_pod(&mut self, key: &ObjectKey) {
        let restarted_by = self.deployments.get(key).and_then(|d| d.snapshot.restarted_by.clone());
        let pod = PodSnapshot {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                namespace: Some(key.namespace.clone()),
                name: Some(format!("{}-7d9f-surge", key.name)),
                ..Default::default()
            },
            workload: Some(WorkloadRef { kind: "Deployment".to_owned(), key: key.clone() }),
            restarted_by,
            unschedulable: Some(Unschedulable {
                since: self.now,
                message: "0/3 nodes are available: 3 Insufficient cpu.".to_owned(),
            }),
        };
        self.unschedulable.insert(key.clone(), Arc::new(pod));
    }

    /// The scheduler places `key`'s waiting pod.
    pub fn place_pod(&mut self, key: &ObjectKey) {
        self.unschedulable.remove(key);
    }

    /// Stamps a changed Deployment with the next resourceVersion, as the API server does.
    fn touch(&mut self, key: &ObjectKey) {
        self.resource_version += 1;
        if let Some(deployment) = self.deployments.get_mut(key) {
            deployment.snapshot.metadata.resource_version = Some(self.resource_version.to_string());
        }
    }

    pub fn allow_cross_namespace(&mut self) {
        self.scope.allow_cross_namespace = true;
    }

    /// Admission refuses a run slot, naming these holders.
    pub fn deny_run_slot(&mut self, holders: Vec<SlotHolder>) {
        self.run_slot = RunSlot::Busy { holders };
    }

    /// Adds a Deployment that is fully rolled out at generation 1, under a new uid.
    pub fn add(&mut self, namespace: &str, name: &str, replicas: i32) -> ObjectKey {
        self.add_workload(WorkloadKind::Deployment, namespace, name, replicas)
    }

    /// Adds a workload of `kind` that is fully rolled out at generation 1, under a new uid,
    /// with the update strategy the API server defaults (`RollingUpdate`; a StatefulSet's
    /// with `partition: 0`).
    pub fn add_workload(
        &mut self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        replicas: i32,
    ) -> ObjectKey {
        let mut snapshot = DeploymentSnapshot { kind, ..DeploymentSnapshot::default() };
        if !kind.is_deployment() {
            snapshot.update_strategy = UpdateStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: true,
                partition: (kind == WorkloadKind::StatefulSet).then_some(0),
            };
        }
        snapshot.metadata.namespace = Some(namespace.to_owned());
        snapshot.metadata.name = Some(name.to_owned());
        snapshot.metadata.generation = Some(1);
        // Each object gets its own uid, as a Deployment created again under the same name does.
        snapshot.metadata.uid = Some(format!("uid-{}", self.resource_version + 1));
        snapshot.replicas = Some(replicas);
        let key = ObjectKey::workload(kind, namespace, name);
        self.deployments.insert(key.clone(), ModelDeployment { snapshot, restarted_at: None });
        self.roll_out(&key);
        key
    }

    pub fn add_many(&mut self, count: usize) -> Vec<ObjectKey> {
        (0..count).map(|i| self.add(NS, &format!("svc-{i:02}"), 1)).collect()
    }

    pub fn deployment_mut(&mut self, key: &ObjectKey) -> &mut DeploymentSnapshot {
        &mut self.deployments.get_mut(key).expect("deployment exists").snapshot
    }

    pub fn set_config_map(&mut self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let snapshot = ConfigMapSnapshot::from_data(namespace, name, data.iter().copied());
        self.config_maps.insert(ObjectKey::new(namespace, name), Arc::new(snapshot));
    }

    pub fn delete_config_map(&mut self, namespace: &str, name: &str) {
        self.config_maps.remove(&ObjectKey::new(namespace, name));
    }

    /// Sets a Secret's `data` (values as the API server sends them, base64).
    pub fn set_secret(&mut self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let snapshot =
            SecretSnapshot(ConfigMapSnapshot::from_data(namespace, name, data.iter().copied()));
        self.secrets.insert(ObjectKey::new(namespace, name), Arc::new(snapshot));
    }

    pub fn delete_secret(&mut self, namespace: &str, name: &str) {
        self.secrets.remove(&ObjectKey::new(namespace, name));
    }

    pub fn annotate(&mut self, key: &str, value: &str) {
        self.refresh
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value.to_owned());
    }

    pub fn status(&self) -> &ServiceRefreshStatus {
        self.refresh.status.as_ref().expect("a pass has written the status")
    }

    pub fn view(&self) -> ModelView {
        ModelView {
            deployments: self
                .deployments
                .iter()
                .map(|(key, deployment)| (key.clone(), Arc::new(deployment.snapshot.clone())))
                .collect(),
            config_maps: self.config_maps.clone(),
            secrets: self.secrets.clone(),
            pending_pods: self.unschedulable.values().cloned().collect(),
            disruption_budgets: self.disruption_budgets.values().cloned().collect(),
        }
    }

    /// The plan the persisted status refers to, joined from the plan objects.
    pub fn plan(&self) -> Option<Plan> {
        self.plan_of(self.refresh.status.as_ref()?)
    }

    /// The plan `status` refers to, joined from the plan objects.
    pub fn plan_of(&self, status: &ServiceRefreshStatus) -> Option<Plan> {
        let reference = status.run.as_ref()?.plan.as_ref()?;
        Plan::from_objects(reference, self.plans.values()).ok()
    }

    /// The run as a person reads it: every service with its result.
    pub fn run_view(&self) -> RunView {
        RunView::new(self.status(), self.plan().as_ref(), NS)
    }

    /// Writes a decision's plan objects, then its status: the controller's order.
    pub fn persist(&mut self, decision: &Decision) {
        for object in &decision.plan_objects {
            let name = object.metadata.name.clone().unwrap_or_default();
            self.plans.insert(name, object.clone());
        }
        self.refresh.status = Some(decision.status.clone());
    }

    /// One pass against `view` as the (possibly stale) cache; the decision is persisted.
    pub fn pass_with(&mut self, view: &ModelView) -> Decision {
        let plan = self.plan();
        let decision = decide(&Observation {
            refresh: &self.refresh,
            cluster: view,
            scope: &self.scope,
            plan: plan.as_ref(),
            run_slot: self.run_slot.clone(),
            health_gate: self.health_gate.as_ref(),
            forbidden: self.forbidden.as_ref(),
            now: self.now,
            min_restart_interval: self.min_restart_interval,
        });
        self.persist(&decision);
        decision
    }

    pub fn pass(&mut self) -> Decision {
        let view = self.view();
        self.pass_with(&view)
    }

    /// The API server's side of one restart patch: refused with a conflict when its
    /// resourceVersion precondition is stale, a no-op when the annotations are already
    /// there, otherwise a template change that bumps the generation.
    pub fn patch(&mut self, restart: &Restart) -> RestartOutcome {
        let Some(deployment) = self.deployments.get_mut(&restart.deployment) else {
            return RestartOutcome::NotFound;
        };
        if restart.resource_version.is_some()
            && restart.resource_version != deployment.snapshot.metadata.resource_version
        {
            return RestartOutcome::Transient(
                "409 Conflict: the object has been modified".to_owned(),
            );
        }
        let unchanged = deployment.restarted_at.as_deref() == Some(restart.restarted_at.as_str())
            && deployment.snapshot.restarted_by.as_deref() == Some(restart.restarted_by.as_str())
            && deployment.snapshot.run_record(&restart.record_annotation)
                == Some(restart.restarted_by.as_str());
        if unchanged {
            return RestartOutcome::Patched { generation: deployment.snapshot.generation() };
        }
        deployment.restarted_at = Some(restart.restarted_at.clone());
        deployment.snapshot.restarted_at = Some(restart.restarted_at.clone());
        deployment.snapshot.restarted_by = Some(restart.restarted_by.clone());
        deployment
            .snapshot
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(restart.record_annotation.clone(), restart.restarted_by.clone());
        let generation = deployment.snapshot.metadata.generation.get_or_insert(0);
        *generation += 1;
        let generation = *generation;
        let change = (restart.restarted_by.clone(), restart.deployment.clone());
        self.patch_generations.insert(change.clone(), generation);
        *self.template_changes.entry(change).or_default() += 1;
        self.touch(&restart.deployment);
        RestartOutcome::Patched { generation }
    }

    /// Sends every restart of `decision` and records the outcomes in the persisted status.
    pub fn apply(&mut self, decision: &Decision) -> Vec<(ObjectKey, RestartOutcome)> {
        let outcomes: Vec<(ObjectKey, RestartOutcome)> = decision
            .restarts
            .iter()
            .map(|restart| (restart.deployment.clone(), self.patch(restart)))
            .collect();
        self.record(&outcomes);
        outcomes
    }

    pub fn record(&mut self, outcomes: &[(ObjectKey, RestartOutcome)]) -> Vec<Transition> {
        let status = self.refresh.status.as_mut().expect("a pass has written the status");
        record_restart_outcomes(status, outcomes, NS)
    }

    fn set_rollout(&mut self, key: &ObjectKey, step: RolloutStep) {
        let Some(deployment) = self.deployments.get_mut(key) else { return };
        let snapshot = &mut deployment.snapshot;
        // A real controller never rolls out a generation it finished again.
        let finished = match snapshot.kind {
            WorkloadKind::Deployment => snapshot.rollout.as_ref().is_some_and(|rollout| {
                rollout.observed_generation == snapshot.metadata.generation
                    && rollout.progressing_reason.as_deref() == Some("NewReplicaSetAvailable")
            }),
            _ => snapshot.rollout == Some(rollout_status(snapshot, RolloutStep::Done)),
        };
        if finished && matches!(step, RolloutStep::Started) {
            return;
        }
        snapshot.rollout = Some(rollout_status(snapshot, step));
        self.touch(key);
    }

    /// Someone (a HorizontalPodAutoscaler, a person) scales the Deployment: a spec change, so
    /// a new generation the Deployment controller has yet to observe.
    pub fn scale(&mut self, key: &ObjectKey, replicas: i32) {
        let Some(deployment) = self.deployments.get_mut(key) else { return };
        deployment.snapshot.replicas = Some(replicas);
        *deployment.snapshot.metadata.generation.get_or_insert(0) += 1;
        self.touch(key);
    }

    /// The Deployment controller finishes the rollout of the current generation.
    pub fn roll_out(&mut self, key: &ObjectKey) {
        self.set_rollout(key, RolloutStep::Done);
    }

    /// The Deployment controller observes the current generation and starts rolling out.
    pub fn start_rollout(&mut self, key: &ObjectKey) {
        self.set_rollout(key, RolloutStep::Started);
    }

    /// The rollout of the current generation exceeds its progress deadline.
    pub fn fail_rollout(&mut self, key: &ObjectKey) {
        self.set_rollout(key, RolloutStep::DeadlineExceeded);
    }

    /// Finishes every rollout in progress or not yet observed.
    pub fn roll_out_all(&mut self) {
        let lagging: Vec<ObjectKey> = self
            .deployments
            .iter()
            .filter(|(_, deployment)| {
                let snapshot = &deployment.snapshot;
                snapshot.rollout != Some(rollout_status(snapshot, RolloutStep::Done))
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in lagging {
            self.roll_out(&key);
        }
    }

    /// Drives passes, patches and rollouts until the run in progress (or the next one to
    /// start) has ended; returns the passes taken.
    pub fn run_to_end(&mut self) -> usize {
        let mut saw_active = self.refresh.status.as_ref().is_some_and(super::run_active);
        for passes in 1..=1_000 {
            let decision = self.pass();
            self.apply(&decision);
            self.roll_out_all();
            let active = super::run_active(self.status());
            saw_active |= active;
            if !active && (saw_active || self.status().phase != Some(crate::crd::Phase::Pending)) {
                return passes;
            }
        }
        panic!("the run did not end within 1000 passes");
    }
}

#[derive(Clone, Copy)]
enum RolloutStep {
    Done,
    Started,
    DeadlineExceeded,
}

/// The status the workload's controller writes for the current generation at `step`. Only
/// a Deployment has a progress deadline: a StatefulSet or DaemonSet whose rollout cannot
/// progress simply keeps rolling.
fn rollout_status(snapshot: &DeploymentSnapshot, step: RolloutStep) -> RolloutStatus {
    let replicas = snapshot.replicas.unwrap_or(1);
    let observed_generation = snapshot.metadata.generation;
    let done = matches!(step, RolloutStep::Done);
    match snapshot.kind {
        WorkloadKind::Deployment => {
            let (total, updated, reason) = match step {
                RolloutStep::Done => (replicas, replicas, "NewReplicaSetAvailable"),
                RolloutStep::Started => (replicas + 1, 1, "ReplicaSetUpdated"),
                RolloutStep::DeadlineExceeded => (replicas + 1, 1, "ProgressDeadlineExceeded"),
            };
            RolloutStatus {
                observed_generation,
                replicas: Some(total),
                updated_replicas: Some(updated),
                available_replicas: Some(replicas),
                progressing_reason: Some(reason.to_owned()),
                ..RolloutStatus::default()
            }
        }
        // Ordered replacement: the highest ordinal is down while it is replaced.
        WorkloadKind::StatefulSet => {
            let revision = format!("rev-{}", observed_generation.unwrap_or(0));
            RolloutStatus {
                observed_generation,
                replicas: Some(replicas),
                ready_replicas: Some(if done { replicas } else { (replicas - 1).max(0) }),
                updated_replicas: Some(if done { replicas } else { 0 }),
                current_replicas: Some(replicas),
                current_revision: Some(revision.clone()),
                update_revision: Some(revision),
                ..RolloutStatus::default()
            }
        }
        WorkloadKind::DaemonSet => RolloutStatus {
            observed_generation,
            desired_number_scheduled: Some(replicas),
            updated_number_scheduled: Some(if done { replicas } else { (replicas - 1).max(0) }),
            number_available: Some(if done { replicas } else { (replicas - 1).max(0) }),
            ..RolloutStatus::default()
        },
    }
}
