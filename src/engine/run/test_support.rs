//! A small in-memory cluster for driving `decide` in tests: Deployments that the API server
//! patches the way the real one does (identical annotations change nothing; otherwise the
//! template changes and the generation goes up by one), a Deployment controller the test
//! moves by hand, and a ServiceRefresh whose status is persisted between passes.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::record_restart_outcomes;
use crate::crd::{
    RESTARTED_AT_ANNOTATION, RESTARTED_BY_ANNOTATION, ServiceRefresh, ServiceRefreshSpec,
    ServiceRefreshStatus,
};
use crate::engine::{Decision, ObjectKey, Observation, Restart, RestartOutcome, decide};

pub const NS: &str = "arcgis";
pub const UID: &str = "0123456789abcdef";
/// 2026-11-26T18:26:29Z.
pub const T0: i64 = 1_795_717_589;

pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(T0 + seconds).expect("test times are in range")
}

pub struct Cluster {
    pub refresh: ServiceRefresh,
    pub deployments: BTreeMap<ObjectKey, Deployment>,
    pub config_map_hashes: BTreeMap<ObjectKey, Option<String>>,
    pub may_start_run: bool,
    pub now: Timestamp,
    /// How often each Deployment's pod template changed, per run id.
    pub template_changes: BTreeMap<(String, ObjectKey), u32>,
    /// The generation each run's template change produced.
    pub patch_generations: BTreeMap<(String, ObjectKey), i64>,
}

impl Cluster {
    pub fn new(spec: serde_json::Value) -> Self {
        let spec: ServiceRefreshSpec = serde_json::from_value(spec).expect("test spec parses");
        let mut refresh = ServiceRefresh::new("refresh", spec);
        refresh.metadata.namespace = Some(NS.to_owned());
        refresh.metadata.uid = Some(UID.to_owned());
        refresh.metadata.generation = Some(1);
        Self {
            refresh,
            deployments: BTreeMap::new(),
            config_map_hashes: BTreeMap::new(),
            may_start_run: true,
            now: at(0),
            template_changes: BTreeMap::new(),
            patch_generations: BTreeMap::new(),
        }
    }

    /// Adds a Deployment that is fully rolled out at generation 1.
    pub fn add(&mut self, namespace: &str, name: &str, replicas: i32) -> ObjectKey {
        let mut deployment = Deployment {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
                generation: Some(1),
                ..ObjectMeta::default()
            },
            ..Deployment::default()
        };
        deployment.spec.replicas = Some(replicas);
        let key = ObjectKey::new(namespace, name);
        self.deployments.insert(key.clone(), deployment);
        self.roll_out(&key);
        key
    }

    pub fn add_many(&mut self, count: usize) -> Vec<ObjectKey> {
        (0..count).map(|i| self.add(NS, &format!("svc-{i:02}"), 1)).collect()
    }

    pub fn status(&self) -> &ServiceRefreshStatus {
        self.refresh.status.as_ref().expect("a pass has written the status")
    }

    pub fn snapshot(&self) -> Vec<Arc<Deployment>> {
        self.deployments.values().cloned().map(Arc::new).collect()
    }

    /// One pass against `deployments` as the (possibly stale) cache; the status is persisted.
    pub fn pass_with(&mut self, deployments: &[Arc<Deployment>]) -> Decision {
        let decision = decide(&Observation {
            refresh: &self.refresh,
            deployments,
            config_map_hashes: &self.config_map_hashes,
            may_start_run: self.may_start_run,
            now: self.now,
        });
        self.refresh.status = Some(decision.status.clone());
        decision
    }

    pub fn pass(&mut self) -> Decision {
        let snapshot = self.snapshot();
        self.pass_with(&snapshot)
    }

    /// The API server's side of one restart patch.
    pub fn patch(&mut self, restart: &Restart) -> RestartOutcome {
        let Some(deployment) = self.deployments.get_mut(&restart.deployment) else {
            return RestartOutcome::NotFound;
        };
        let annotations = deployment
            .spec
            .template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .annotations
            .get_or_insert_with(BTreeMap::new);
        let unchanged = annotations.get(RESTARTED_AT_ANNOTATION) == Some(&restart.restarted_at)
            && annotations.get(RESTARTED_BY_ANNOTATION) == Some(&restart.restarted_by);
        if !unchanged {
            annotations.insert(RESTARTED_AT_ANNOTATION.to_owned(), restart.restarted_at.clone());
            annotations.insert(RESTARTED_BY_ANNOTATION.to_owned(), restart.restarted_by.clone());
            let generation = deployment.metadata.generation.get_or_insert(0);
            *generation += 1;
            let change = (restart.restarted_by.clone(), restart.deployment.clone());
            self.patch_generations.insert(change.clone(), *generation);
            *self.template_changes.entry(change).or_default() += 1;
        }
        RestartOutcome::Patched { generation: deployment.metadata.generation.unwrap_or(0) }
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

    pub fn record(&mut self, outcomes: &[(ObjectKey, RestartOutcome)]) {
        let status = self.refresh.status.as_mut().expect("a pass has written the status");
        record_restart_outcomes(status, outcomes, NS);
    }

    /// The Deployment controller finishes the rollout of the current generation.
    pub fn roll_out(&mut self, key: &ObjectKey) {
        let Some(deployment) = self.deployments.get_mut(key) else { return };
        let replicas = deployment.spec.replicas.unwrap_or(1);
        deployment.status = Some(DeploymentStatus {
            observed_generation: deployment.metadata.generation,
            replicas: Some(replicas),
            updated_replicas: Some(replicas),
            ready_replicas: Some(replicas),
            available_replicas: Some(replicas),
            conditions: Some(vec![progressing("True", "NewReplicaSetAvailable")]),
            ..DeploymentStatus::default()
        });
    }

    /// The Deployment controller observes the current generation and starts rolling out.
    pub fn start_rollout(&mut self, key: &ObjectKey) {
        let Some(deployment) = self.deployments.get_mut(key) else { return };
        let replicas = deployment.spec.replicas.unwrap_or(1);
        deployment.status = Some(DeploymentStatus {
            observed_generation: deployment.metadata.generation,
            replicas: Some(replicas + 1),
            updated_replicas: Some(1),
            ready_replicas: Some(replicas),
            available_replicas: Some(replicas),
            conditions: Some(vec![progressing("True", "ReplicaSetUpdated")]),
            ..DeploymentStatus::default()
        });
    }

    /// The rollout of the current generation exceeds its progress deadline.
    pub fn fail_rollout(&mut self, key: &ObjectKey) {
        let Some(deployment) = self.deployments.get_mut(key) else { return };
        let replicas = deployment.spec.replicas.unwrap_or(1);
        deployment.status = Some(DeploymentStatus {
            observed_generation: deployment.metadata.generation,
            replicas: Some(replicas + 1),
            updated_replicas: Some(1),
            ready_replicas: Some(replicas),
            available_replicas: Some(replicas),
            conditions: Some(vec![progressing("False", "ProgressDeadlineExceeded")]),
            ..DeploymentStatus::default()
        });
    }

    /// Finishes every rollout in progress or not yet observed.
    pub fn roll_out_all(&mut self) {
        let keys: Vec<ObjectKey> = self.deployments.keys().cloned().collect();
        for key in keys {
            let lagging = self.deployments.get(&key).is_some_and(|deployment| {
                let replicas = Some(deployment.spec.replicas.unwrap_or(1));
                let status = deployment.status.clone().unwrap_or_default();
                status.observed_generation != deployment.metadata.generation
                    || status.replicas != replicas
                    || status.updated_replicas != replicas
                    || status.available_replicas != replicas
            });
            if lagging {
                self.roll_out(&key);
            }
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

pub fn progressing(status: &str, reason: &str) -> DeploymentCondition {
    DeploymentCondition {
        type_: Some("Progressing".to_owned()),
        status: Some(status.to_owned()),
        reason: Some(reason.to_owned()),
        ..DeploymentCondition::default()
    }
}
