//! The model the property tests drive: the engine's model cluster plus what the checks need
//! to remember across passes (plans, cancel points, trigger bursts, settled rollouts, the
//! states reached), and each generated operation applied in the controller's real order of
//! writes. The fleet's kinds and waves are shaped in [`super::kinds`].

use std::collections::{BTreeMap, BTreeSet};

use jiff::SignedDuration;
use proptest::prelude::*;
use serde_json::json;

use super::kinds::Shape;
use super::{budgets, canary, checks};
use crate::crd::{
    CANCEL_REQUESTED_AT_ANNOTATION, Phase, RUN_REQUESTED_AT_ANNOTATION, ServiceRefreshStatus,
    ServiceResult, WorkloadKind,
};
use crate::engine::conditions::{self, STALLED};
use crate::engine::health_gate::{CheckResult, GateCheck, GateResult};
use crate::engine::readiness;
use crate::engine::results::reason::{CANARY_FAILED, DISRUPTION_BUDGET};
use crate::engine::run::test_support::{ModelCluster, ModelView, NS};
use crate::engine::run::{
    MESSAGE_EXCLUDED, MESSAGE_PAUSED, REASON_CONFIG_MAP_CHANGED, REASON_RUN_REQUESTED,
    REASON_SECRET_CHANGED, UNCONFIRMED_RESTART_GRACE, run_active,
};
use crate::engine::{ObjectKey, Restart, RestartOutcome, RunSlot};
use crate::policy::forbidden_writes::{ForbiddenWrites, RefusedRequest};
use crate::policy::patch_memo::PatchMemo;

/// The second namespace of two-namespace setups.
pub const OTHER_NS: &str = "gis";
/// Another resource's run, restarting the same Deployments.
pub const FOREIGN_RUN: &str = "arcgis/other/1-89abcdef";
/// The trigger ConfigMap every generated resource watches.
const CONFIG_MAP: &str = "proxy";
/// The trigger Secret every generated resource watches (one key of it).
const SECRET: &str = "tls";
/// `spec.batchTimeout` of the generated resources, in seconds.
pub const BATCH_TIMEOUT_SECONDS: i64 = 60;
/// `spec.healthGate.timeout` of the generated resources that have a gate, in seconds.
pub const GATE_TIMEOUT_SECONDS: i64 = 90;
/// How far behind the API server a cache may be. Informer caches lag by milliseconds to
/// seconds; the engine holds a place in the in-flight budget for a restart it could not
/// confirm for [`UNCONFIRMED_RESTART_GRACE`] after its batch ended, so a cache lagging longer
/// could hide a rollout while the next batch starts beside it.
const MAX_CACHE_LAG_SECONDS: i64 = UNCONFIRMED_RESTART_GRACE.as_secs();

/// How the controller's side of one pass goes after `decide` returned. The controller
/// writes the status first when it changed (the batch's start and its decided restarts),
/// then sends the patches, then writes the status again with their outcomes.
#[derive(Clone, Copy, Debug, serde::Deserialize)]
pub enum Delivery {
    /// Status written, patches sent, outcomes written.
    Full,
    /// The operator dies after this many of the patches reached the API server (the first
    /// status write went through). The next process starts with fresh caches (its first list
    /// is a consistent read) and empty memos.
    CrashAfterPatches(usize),
    /// The pass's first status write fails (a conflict, a timeout): nothing more is sent. A
    /// pass whose decision left the status unchanged sends its patches and fails to write
    /// their outcomes.
    StatusWriteFails,
    /// Status written and patches sent; the write of their outcomes fails.
    OutcomeWriteFails,
}

#[derive(Clone, Debug, serde::Deserialize)]
pub enum Op {
    /// One reconcile pass. Bit i of `stale_mask` reads Deployment i from the cache as it was
    /// one pass earlier; bit i of `transient_mask` fails patch i transiently, and with
    /// `lost_response` that patch reached the server although the client saw an error.
    Pass {
        stale_mask: u8,
        delivery: Delivery,
        transient_mask: u8,
        lost_response: bool,
        rejected: Option<usize>,
    },
    /// The Deployment controller moves Deployment `index`: 0 starts, 1 finishes, 2 fails.
    Rollout {
        index: usize,
        step: u8,
    },
    Delete {
        index: usize,
    },
    /// Deleted and created again: a fresh, rolled-out Deployment of the same name.
    Recreate {
        index: usize,
    },
    Pause {
        index: usize,
        paused: bool,
    },
    /// An autoscaler changes `spec.replicas`: a new generation, rolled out by later steps.
    Scale {
        index: usize,
        replicas: i32,
    },
    Advance {
        seconds: i64,
    },
    /// `spec.trigger` gets a new value.
    NewTrigger,
    /// `gisops.io/run-requested-at` gets a new value.
    RunRequested,
    /// The watched ConfigMap gets new content (and exists again if it was deleted).
    ConfigMapChange,
    ConfigMapDelete,
    /// The watched key of the trigger Secret gets a new value (and the Secret exists again).
    SecretChange,
    /// A key of the trigger Secret no trigger lists changes: no run may follow.
    SecretOtherKeyChange,
    SecretDelete,
    /// `gisops.io/cancel-requested-at` gets a new value.
    Cancel,
    Admission(bool),
    /// Spec edits: they may only reach batches not started.
    SetBatchSize(u32),
    Exclude {
        index: usize,
    },
    Suspend(bool),
    DryRun(bool),
    /// `spec.batchTimeout` becomes unusable (true) or valid again (false).
    UnusableSpec(bool),
    /// Another resource's run restarts Deployment `index` and starts rolling it out.
    ForeignRestart {
        index: usize,
    },
    /// The monitoring system's answer changes: the health gate's checks pass (true) or fail.
    GatePasses(bool),
    /// The operator's RBAC grant of `patch` on the workloads is taken away (true), or given
    /// back (false): every restart patch is answered 403 meanwhile.
    RestartsForbidden(bool),
    /// A new pod of Deployment `index`'s current template finds no node (true), or the
    /// scheduler places it (false).
    Unschedulable {
        index: usize,
        blocked: bool,
    },
    /// The disruption controller's verdict on budget `pdb-<budget>` changes.
    BudgetAllows {
        budget: u8,
        allowed: i32,
    },
    /// A pod of workload `index` stops being available after its rollout (a canary turning
    /// unready during its soak).
    TurnUnready {
        index: usize,
    },
}

#[derive(Clone, Debug, serde::Deserialize)]
pub struct Setup {
    pub replicas: Vec<i32>,
    pub batch_size: u32,
    pub abort: bool,
    /// Deployments alternate between the resource's namespace and another one.
    pub two_namespaces: bool,
    /// `spec.healthGate` is set; its checks start failing.
    #[serde(default)]
    pub health_gate: bool,
    /// Deployment i is under PodDisruptionBudget `pdb-<budgets[i]>` (0: none); each budget
    /// starts allowing one disruption.
    #[serde(default)]
    pub budgets: Vec<u8>,
    /// Workloads cycle through Deployment, StatefulSet and DaemonSet.
    #[serde(default)]
    pub mixed_kinds: bool,
    /// The first StatefulSet has `updateStrategy: OnDelete`.
    #[serde(default)]
    pub on_delete: bool,
    /// `spec.waves`: even-numbered workloads first.
    #[serde(default)]
    pub waves: bool,
    /// `spec.pacing.canary`: its size (at most the batch size) and soak in seconds.
    #[serde(default)]
    pub canary: Option<(u32, i64)>,
    /// `spec.pacing.slowStart`.
    #[serde(default)]
    pub slow_start: bool,
}

/// States worth reaching: a property is only as good as the cases that exercise it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reached {
    FollowUpRun,
    RunCancelled,
    RunAborted,
    ServiceTimedOut,
    ServiceGone,
    ServiceFailed,
    PausedSkipped,
    ExcludedAfterPlanning,
    HeldForAnotherRun,
    HeldForTheBudget,
    /// A pass saw a pod of its run blocked past the grace.
    HeldForCapacity,
    ConfigMapRun,
    RequestedRun,
    DryRun,
    Suspended,
    UnusableSpecStall,
    ConfigMapMissing,
    StaleConflict,
    CrashAfterSomePatches,
    StatusWriteLost,
    OtherNamespace,
    /// A run that started once the world had settled, whose every result the oracle knows.
    SettledRunJudged,
    /// A run held at its health gate.
    HeldByHealthGate,
    /// A pass waited for a PodDisruptionBudget.
    HeldForDisruptionBudget,
    /// A service ended Skipped for its budget.
    SkippedForDisruptionBudget,
    SecretRun,
    SecretMissing,
    /// A batch of a later wave started.
    LaterWaveStarted,
    /// An `OnDelete` StatefulSet ended Skipped for its strategy.
    OnDeleteSkipped,
    StatefulSetReady,
    DaemonSetReady,
    /// A restart patch was forbidden (403) and the run stalled for it.
    RestartsForbidden,
    /// A run's canary batch soaked.
    CanarySoaked,
    /// A canary failed: the run ended with only the canaries restarted.
    CanaryFailed,
}

impl Reached {
    pub const ALL: [Reached; 34] = [
        Reached::FollowUpRun,
        Reached::RunCancelled,
        Reached::RunAborted,
        Reached::ServiceTimedOut,
        Reached::ServiceGone,
        Reached::ServiceFailed,
        Reached::PausedSkipped,
        Reached::ExcludedAfterPlanning,
        Reached::HeldForAnotherRun,
        Reached::HeldForTheBudget,
        Reached::HeldForCapacity,
        Reached::ConfigMapRun,
        Reached::RequestedRun,
        Reached::DryRun,
        Reached::Suspended,
        Reached::UnusableSpecStall,
        Reached::ConfigMapMissing,
        Reached::StaleConflict,
        Reached::CrashAfterSomePatches,
        Reached::StatusWriteLost,
        Reached::OtherNamespace,
        Reached::SettledRunJudged,
        Reached::HeldByHealthGate,
        Reached::HeldForDisruptionBudget,
        Reached::SkippedForDisruptionBudget,
        Reached::SecretRun,
        Reached::SecretMissing,
        Reached::LaterWaveStarted,
        Reached::OnDeleteSkipped,
        Reached::StatefulSetReady,
        Reached::DaemonSetReady,
        Reached::RestartsForbidden,
        Reached::CanarySoaked,
        Reached::CanaryFailed,
    ];
}

pub struct Model {
    pub cluster: ModelCluster,
    pub keys: Vec<ObjectKey>,
    /// The largest batchSize the spec has had: a batch keeps the size it was cut with.
    pub max_batch_size: usize,
    pub abort: bool,
    /// The cache one pass ago, for stale reads, and when it was current.
    previous_view: ModelView,
    previous_view_at: jiff::Timestamp,
    /// The controller's read-your-writes memo of its accepted restart patches.
    patch_memo: PatchMemo,
    /// The operator restarted since the last pass: its caches were just listed.
    caches_relisted: bool,
    /// The plan of each run as first persisted.
    pub plans: BTreeMap<String, Vec<ObjectKey>>,
    /// Per run, the batches started when a cancel was first persisted.
    pub started_at_cancel: BTreeMap<String, BTreeSet<u32>>,
    /// Rollouts (run, Deployment) that completed or exceeded their progress deadline after
    /// the run restarted them: they left the in-flight budget for good, whatever the
    /// Deployment does later on its own.
    pub settled_rollouts: BTreeSet<(String, ObjectKey)>,
    /// Deployments deleted (or recreated) since the start, by the run number persisted then.
    pub deleted_during: BTreeSet<(u64, ObjectKey)>,
    /// Restarts (run, Deployment) of objects since deleted and created again.
    pub restarted_replaced: BTreeSet<(String, ObjectKey)>,
    counter: u64,
    config_map_content: u64,
    config_map_present: bool,
    secret_content: u64,
    secret_present: bool,
    /// The fleet's kinds, waves and `OnDelete` StatefulSets.
    pub shape: Shape,
    /// Batches (run, index) whose start the wave check has seen.
    pub batches_seen: BTreeSet<(String, u32)>,
    /// Trigger changes are coalesced: a burst opens at the first change after a run
    /// started and closes when the next run starts.
    burst_open: bool,
    pub bursts: u64,
    last_persisted_run: u64,
    /// Whether the gate's checks pass now (`None`: the spec has no gate). The shell's
    /// check runs before every pass, so each pass observes a fresh outcome.
    pub gate_passes: Option<bool>,
    /// Whether the API server forbids restart patches now (a missing RBAC grant).
    restarts_forbidden: bool,
    /// The shell's record of forbidden writes; lost when the controller crashes.
    forbidden_writes: ForbiddenWrites,
    /// The run number persisted when the world began to settle.
    pub run_at_drain: u64,
    /// The Deployments each PodDisruptionBudget covers, by budget name.
    pub budget_members: BTreeMap<String, Vec<ObjectKey>>,
    /// The spec's canary and slow start (never edited).
    pub pacing: canary::Pacing,
    reached: BTreeSet<Reached>,
}

impl Model {
    pub fn new(setup: &Setup) -> Self {
        let policy = if setup.abort { "Abort" } else { "Continue" };
        let namespaces = if setup.two_namespaces { json!([NS, OTHER_NS]) } else { json!([NS]) };
        let mut shape = Shape {
            mixed_kinds: setup.mixed_kinds,
            waves: setup.waves,
            wants_on_delete: setup.on_delete,
            ..Shape::default()
        };
        let mut spec = json!({
            "selector": {},
            "namespaces": namespaces,
            "batchSize": setup.batch_size,
            "batchTimeout": format!("{BATCH_TIMEOUT_SECONDS}s"),
            "failurePolicy": policy,
            "trigger": "0",
            "configMapTriggers": [{"name": CONFIG_MAP}],
            "secretTriggers": [{"name": SECRET, "keys": ["ca.crt"]}],
        });
        shape.spec_fields(&mut spec);
        let pacing = canary::Pacing::new(setup.canary, setup.batch_size, setup.slow_start);
        pacing.spec_fields(&mut spec);
        let mut cluster = ModelCluster::new(spec);
        cluster.scope.extra_kinds = [WorkloadKind::StatefulSet, WorkloadKind::DaemonSet].into();
        if setup.health_gate {
            cluster.refresh.spec.health_gate = serde_json::from_value(json!({
                "timeout": format!("{GATE_TIMEOUT_SECONDS}s"),
                "prometheus": {"url": "http://prometheus:9090", "query": "errors > 0"},
            }))
            .ok();
        }
        cluster.allow_cross_namespace();
        cluster.set_config_map(NS, CONFIG_MAP, &[("proxy", "0")]);
        cluster.set_secret(NS, SECRET, &[("ca.crt", "0"), ("tls.key", "0")]);
        let keys: Vec<ObjectKey> = setup
            .replicas
            .iter()
            .enumerate()
            .map(|(index, &replicas)| {
                let namespace = if setup.two_namespaces && index % 2 == 1 { OTHER_NS } else { NS };
                shape.create(&mut cluster, index, namespace, replicas)
            })
            .collect();
        let budget_members = budgets::budget_members(&setup.budgets, &keys);
        for (name, members) in &budget_members {
            cluster.set_budget(name, members, 1);
        }
        let previous_view = cluster.view();
        let previous_view_at = cluster.now;
        Self {
            cluster,
            keys,
            max_batch_size: setup.batch_size as usize,
            abort: setup.abort,
            previous_view,
            previous_view_at,
            patch_memo: PatchMemo::default(),
            caches_relisted: false,
            plans: BTreeMap::new(),
            started_at_cancel: BTreeMap::new(),
            settled_rollouts: BTreeSet::new(),
            deleted_during: BTreeSet::new(),
            restarted_replaced: BTreeSet::new(),
            counter: 0,
            config_map_content: 0,
            config_map_present: true,
            secret_content: 0,
            secret_present: true,
            shape,
            batches_seen: BTreeSet::new(),
            burst_open: false,
            bursts: 0,
            last_persisted_run: 0,
            gate_passes: setup.health_gate.then_some(false),
            restarts_forbidden: false,
            forbidden_writes: ForbiddenWrites::default(),
            run_at_drain: 0,
            budget_members,
            pacing,
            reached: BTreeSet::new(),
        }
    }

    pub fn reach(&mut self, state: Reached) {
        self.reached.insert(state);
    }

    pub fn reached(&self) -> BTreeSet<Reached> {
        self.reached.clone()
    }

    /// Whether the run changed the pod template of this Deployment, or of an object of the
    /// same name it replaced.
    pub fn restarted_by(&self, run: &str, key: &ObjectKey) -> bool {
        let entry = (run.to_owned(), key.clone());
        self.cluster.template_changes.contains_key(&entry)
            || self.restarted_replaced.contains(&entry)
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// A trigger changed: it opens a burst unless one is open, or no run has started yet
    /// (the creation run takes it along).
    fn trigger_changed(&mut self) {
        if self.last_persisted_run > 0 && !self.burst_open {
            self.burst_open = true;
            self.bursts += 1;
        }
    }

    fn run_number(&self) -> u64 {
        self.cluster.refresh.status.as_ref().and_then(|s| s.run.as_ref()).map_or(0, |r| r.number)
    }

    pub fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Pass { stale_mask, delivery, transient_mask, lost_response, rejected } => {
                self.pass(*stale_mask, *delivery, *transient_mask, *lost_response, *rejected)?;
            }
            Op::Rollout { index, step } => {
                if let Some(key) = self.rollout_target(*index) {
                    match step {
                        0 => self.cluster.start_rollout(&key),
                        1 => {
                            // A finished rollout has no pod waiting for a node.
                            self.cluster.place_pod(&key);
                            self.cluster.roll_out(&key)
                        }
                        _ => self.cluster.fail_rollout(&key),
                    }
                    self.note_settled(&key);
                }
            }
            Op::Delete { index } => {
                if let Some(key) = self.keys.get(*index).cloned()
                    && self.cluster.deployments.remove(&key).is_some()
                {
                    self.deleted_during.insert((self.run_number(), key));
                }
            }
            Op::Recreate { index } => {
                if let Some(key) = self.keys.get(*index).cloned() {
                    let replicas = 1;
                    self.cluster.deployments.remove(&key);
                    self.deleted_during.insert((self.run_number(), key.clone()));
                    // At most one restart per run is a promise per object: the new one has
                    // not been restarted by anyone yet.
                    let (replaced, kept) = std::mem::take(&mut self.cluster.template_changes)
                        .into_iter()
                        .partition(|((_, changed), _)| *changed == key);
                    self.cluster.template_changes = kept;
                    self.restarted_replaced.extend(replaced.into_keys());
                    self.shape.create(&mut self.cluster, *index, &key.namespace, replicas);
                    budgets::relabel(&mut self.cluster, &self.budget_members, &key);
                }
            }
            Op::Pause { index, paused } => {
                if let Some(key) = self.keys.get(*index).cloned()
                    && Shape::pausable(&key)
                    && self.cluster.deployments.contains_key(&key)
                {
                    self.cluster.deployment_mut(&key).paused = *paused;
                }
            }
            Op::Scale { index, replicas } => {
                if let Some(key) = self.keys.get(*index).cloned() {
                    self.cluster.scale(&key, *replicas);
                }
            }
            Op::Unschedulable { index, blocked } => {
                if let Some(key) = self.keys.get(*index % self.keys.len().max(1)).cloned() {
                    if *blocked {
                        self.cluster.block_pod(&key);
                    } else {
                        self.cluster.place_pod(&key);
                    }
                }
            }
            Op::BudgetAllows { budget, allowed } => {
                let name = budgets::budget_name(*budget);
                for namespace in [NS, OTHER_NS] {
                    self.cluster.allow_disruptions(namespace, &name, *allowed);
                }
            }
            Op::TurnUnready { index } => {
                if let Some(key) = self.keys.get(*index).cloned()
                    && self.cluster.deployments.contains_key(&key)
                    && let Some(rollout) = self.cluster.deployment_mut(&key).rollout.as_mut()
                {
                    rollout.available_replicas = Some(0);
                }
            }
            Op::Advance { seconds } => self.cluster.now += SignedDuration::from_secs(*seconds),
            Op::NewTrigger => {
                let value = self.next();
                self.cluster.refresh.spec.trigger = Some(format!("t{value}"));
                self.trigger_changed();
            }
            Op::RunRequested => {
                let value = self.next();
                self.cluster.annotate(RUN_REQUESTED_AT_ANNOTATION, &format!("r{value}"));
                self.trigger_changed();
            }
            Op::ConfigMapChange => {
                self.config_map_content = self.next();
                self.restore_config_map();
                self.trigger_changed();
            }
            Op::ConfigMapDelete => {
                self.cluster.delete_config_map(NS, CONFIG_MAP);
                self.config_map_present = false;
            }
            Op::SecretChange => {
                self.secret_content = self.next();
                self.restore_secret();
                self.trigger_changed();
            }
            Op::SecretOtherKeyChange => {
                if self.secret_present {
                    let key = self.next().to_string();
                    let watched = self.secret_content.to_string();
                    self.cluster.set_secret(
                        NS,
                        SECRET,
                        &[("ca.crt", watched.as_str()), ("tls.key", key.as_str())],
                    );
                }
            }
            Op::SecretDelete => {
                self.cluster.delete_secret(NS, SECRET);
                self.secret_present = false;
            }
            Op::Cancel => {
                let value = self.next();
                self.cluster.annotate(CANCEL_REQUESTED_AT_ANNOTATION, &format!("c{value}"));
            }
            Op::Admission(allowed) => {
                self.cluster.run_slot =
                    if *allowed { RunSlot::Granted } else { RunSlot::Busy { holders: vec![] } };
            }
            Op::SetBatchSize(size) => {
                // Admission refuses a batch size below the canary's.
                let size = (*size).max(self.pacing.canary_size());
                self.cluster.refresh.spec.batch_size = size;
                self.max_batch_size = self.max_batch_size.max(size as usize);
            }
            Op::Exclude { index } => {
                if let Some(key) = self.keys.get(*index) {
                    self.cluster.refresh.spec.exclude.push(key.name.clone());
                }
            }
            Op::Suspend(suspend) => self.cluster.refresh.spec.suspend = *suspend,
            Op::DryRun(dry_run) => self.cluster.refresh.spec.dry_run = *dry_run,
            Op::UnusableSpec(unusable) => {
                self.cluster.refresh.spec.batch_timeout =
                    if *unusable { "10x".to_owned() } else { format!("{BATCH_TIMEOUT_SECONDS}s") };
            }
            Op::GatePasses(passes) => {
                if let Some(gate) = self.gate_passes.as_mut() {
                    *gate = *passes;
                }
            }
            Op::RestartsForbidden(forbidden) => self.restarts_forbidden = *forbidden,
            Op::ForeignRestart { index } => {
                if let Some(key) = self.keys.get(*index).cloned()
                    && self.cluster.deployments.contains_key(&key)
                {
                    let value = self.next();
                    let restart = Restart {
                        deployment: key.clone(),
                        restarted_at: format!("foreign-{value}"),
                        restarted_by: FOREIGN_RUN.to_owned(),
                        record_annotation: "gisops.io/run-89abcdef".to_owned(),
                        resource_version: None,
                    };
                    self.cluster.patch(&restart);
                    self.cluster.start_rollout(&key);
                }
            }
        }
        Ok(())
    }

    /// The Deployment a rollout step moves: one with a rollout to make progress on when
    /// there is one, so that steps mostly land where the run is waiting.
    fn rollout_target(&self, index: usize) -> Option<ObjectKey> {
        let lagging: Vec<&ObjectKey> = self
            .keys
            .iter()
            .filter(|key| {
                self.cluster.deployments.get(*key).is_some_and(|deployment| {
                    let snapshot = &deployment.snapshot;
                    readiness::verdict(snapshot, snapshot.generation()).is_waiting()
                })
            })
            .collect();
        match lagging.len() {
            0 => self.keys.get(index).cloned(),
            count => Some(lagging[index % count].clone()),
        }
    }

    fn restore_secret(&mut self) {
        let content = self.secret_content.to_string();
        self.cluster.set_secret(NS, SECRET, &[("ca.crt", content.as_str()), ("tls.key", "0")]);
        self.secret_present = true;
    }

    fn restore_config_map(&mut self) {
        let content = self.config_map_content.to_string();
        self.cluster.set_config_map(NS, CONFIG_MAP, &[("proxy", content.as_str())]);
        self.config_map_present = true;
    }

    /// Records a rollout of a run that has just completed or failed.
    fn note_settled(&mut self, key: &ObjectKey) {
        let Some(deployment) = self.cluster.deployments.get(key) else { return };
        let snapshot = &deployment.snapshot;
        let Some(run) = snapshot.restarted_by.clone() else { return };
        if !readiness::verdict(snapshot, snapshot.generation()).is_waiting() {
            self.settled_rollouts.insert((run, key.clone()));
        }
    }

    /// The cache a pass reads: each Deployment fresh, or as it was one pass ago if that was
    /// less than [`MAX_CACHE_LAG_SECONDS`] ago and the operator has not restarted since, with
    /// the controller's accepted patches laid over it as the real controller does.
    fn cache(&mut self, stale_mask: u8) -> ModelView {
        let mut view = self.cluster.view();
        let lag = self.cluster.now.duration_since(self.previous_view_at);
        let relisted = std::mem::take(&mut self.caches_relisted);
        if lag > SignedDuration::from_secs(MAX_CACHE_LAG_SECONDS) || relisted {
            return view;
        }
        for (index, key) in self.keys.iter().enumerate() {
            if stale_mask & (1 << (index % 8)) != 0 {
                match self.previous_view.deployments.get(key) {
                    Some(old) => view.deployments.insert(key.clone(), old.clone()),
                    None => view.deployments.remove(key),
                };
            }
        }
        for key in &self.keys {
            let cached = view.deployments.get(key).cloned();
            match self.patch_memo.overlay(key, cached) {
                Some(seen) => view.deployments.insert(key.clone(), seen),
                None => view.deployments.remove(key),
            };
        }
        view
    }

    pub fn pass(
        &mut self,
        stale_mask: u8,
        delivery: Delivery,
        transient_mask: u8,
        lost_response: bool,
        rejected: Option<usize>,
    ) -> Result<(), TestCaseError> {
        let cache = self.cache(stale_mask);
        self.cluster.health_gate = self.gate_passes.map(|passed| GateResult {
            checked_at: self.cluster.now,
            checks: vec![CheckResult {
                check: GateCheck::Prometheus,
                passed,
                detail: format!("query `errors > 0` returned {}", if passed { 0 } else { 1 }),
            }],
        });
        self.previous_view = self.cluster.view();
        self.previous_view_at = self.cluster.now;
        let input = self.cluster.refresh.status.clone();
        let input_plan = self.cluster.plan();
        let refresh_key = ObjectKey::new(NS, "refresh");
        self.cluster.forbidden = self.forbidden_writes.current(&refresh_key);

        let decision = self.cluster.pass_with(&cache);
        checks::check_forbidden(self.cluster.forbidden.as_ref(), self.cluster.now, &decision)?;
        checks::check_decision(input.as_ref(), input_plan.as_ref(), &decision)?;
        checks::check_gate(
            input.as_ref(),
            self.gate_passes,
            self.abort,
            self.cluster.now,
            &decision,
        )?;
        if checks::check_capacity(
            self.cluster.refresh.spec.batch_size,
            input.as_ref(),
            &cache,
            self.cluster.now,
            &decision,
        )? {
            self.reached.insert(Reached::HeldForCapacity);
        }
        if budgets::check_restarts_allowed(input.as_ref(), &cache, &decision)? {
            self.reached.insert(Reached::HeldForDisruptionBudget);
        }
        self.check_new_results(input.as_ref(), &decision.status, &cache)?;
        self.pacing.check_pass(
            input.as_ref(),
            &decision.status,
            input_plan.as_ref(),
            &cache,
            self.cluster.now,
        )?;

        let first_write = input.as_ref() != Some(&decision.status);
        if first_write {
            if matches!(delivery, Delivery::StatusWriteFails) {
                self.cluster.refresh.status = input;
                return self.check_cluster();
            }
            self.persisted(&decision.status)?;
        }
        let sent = match delivery {
            Delivery::CrashAfterPatches(count) => count.min(decision.restarts.len()),
            _ => decision.restarts.len(),
        };
        let mut outcomes = Vec::new();
        for (position, restart) in decision.restarts.iter().take(sent).enumerate() {
            let outcome = if self.restarts_forbidden {
                RestartOutcome::Forbidden("deployments.apps is forbidden".to_owned())
            } else if transient_mask & (1 << (position % 8)) != 0 {
                if lost_response {
                    self.cluster.patch(restart);
                }
                RestartOutcome::Transient("503 Service Unavailable".to_owned())
            } else if rejected == Some(position) {
                RestartOutcome::Rejected("admission webhook denied the request".to_owned())
            } else {
                let outcome = self.cluster.patch(restart);
                match &outcome {
                    RestartOutcome::Transient(_) => {
                        self.reached.insert(Reached::StaleConflict);
                    }
                    RestartOutcome::Patched { .. } => {
                        let written =
                            self.cluster.deployments[&restart.deployment].snapshot.clone();
                        self.patch_memo.remember(
                            restart.deployment.clone(),
                            restart.resource_version.as_deref(),
                            written,
                        );
                    }
                    _ => {}
                }
                outcome
            };
            outcomes.push((restart.deployment.clone(), outcome));
        }
        // The shell's record of forbidden writes, as the reconcile keeps it.
        if outcomes.iter().any(|(_, outcome)| matches!(outcome, RestartOutcome::Forbidden(_))) {
            let refused = RefusedRequest {
                verb: "patch".to_owned(),
                resource: "deployments".to_owned(),
                group: "apps".to_owned(),
                namespace: NS.to_owned(),
            };
            self.forbidden_writes.refused(&refresh_key, refused, self.cluster.now);
            self.reached.insert(Reached::RestartsForbidden);
        } else if (first_write && !decision.plan_objects.is_empty())
            || outcomes.iter().any(|(_, outcome)| matches!(outcome, RestartOutcome::Patched { .. }))
        {
            self.forbidden_writes.allowed(&refresh_key);
        }
        // What the first write (or the observed status) put on record.
        let on_record = self.cluster.refresh.status.clone();
        match delivery {
            Delivery::CrashAfterPatches(_) => {
                if sent > 0 {
                    self.reached.insert(Reached::CrashAfterSomePatches);
                }
                self.patch_memo = PatchMemo::default();
                self.forbidden_writes = ForbiddenWrites::default();
                self.caches_relisted = true;
            }
            Delivery::Full => {
                // Only outcomes that end a service are written now; the rest ride along.
                self.cluster.record(&outcomes);
                if self.cluster.refresh.status != on_record {
                    let status = self.cluster.status().clone();
                    self.persisted(&status)?;
                }
            }
            Delivery::StatusWriteFails | Delivery::OutcomeWriteFails => {
                self.cluster.record(&outcomes);
                if self.cluster.refresh.status != on_record && !decision.restarts.is_empty() {
                    self.reached.insert(Reached::StatusWriteLost);
                }
                self.cluster.refresh.status = on_record;
            }
        }
        self.check_cluster()
    }

    /// Everything the checks and the bookkeeping learn from a status that was written.
    fn persisted(&mut self, status: &ServiceRefreshStatus) -> Result<(), TestCaseError> {
        self.check_persisted(status)?;
        self.note_reached(status);
        let number = status.run.as_ref().map_or(0, |run| run.number);
        if number > self.last_persisted_run {
            // A run started: it took every trigger change made so far along.
            self.last_persisted_run = number;
            self.burst_open = false;
        }
        Ok(())
    }

    fn note_reached(&mut self, status: &ServiceRefreshStatus) {
        let mut reached = Vec::new();
        if let Some(run) = &status.run {
            if run.number >= 2 {
                reached.push(Reached::FollowUpRun);
            }
            if run.reason == REASON_CONFIG_MAP_CHANGED {
                reached.push(Reached::ConfigMapRun);
            }
            if run.reason == REASON_SECRET_CHANGED {
                reached.push(Reached::SecretRun);
            }
            if run.reason == REASON_RUN_REQUESTED {
                reached.push(Reached::RequestedRun);
            }
            if run.dry_run {
                reached.push(Reached::DryRun);
            }
        }
        if status.waiting.as_ref().is_some_and(|waiting| waiting.reason == "HealthGateFailing") {
            reached.push(Reached::HeldByHealthGate);
        }
        if status.waiting.as_ref().is_some_and(|waiting| waiting.reason == "CanarySoak") {
            reached.push(Reached::CanarySoaked);
        }
        if status.results.iter().any(|group| group.reason == CANARY_FAILED) {
            reached.push(Reached::CanaryFailed);
        }
        match status.phase {
            Some(Phase::Cancelled) => reached.push(Reached::RunCancelled),
            Some(Phase::Suspended) => reached.push(Reached::Suspended),
            _ => {}
        }
        if let Some(stalled) = conditions::find(&status.conditions, STALLED)
            && stalled.status == "True"
        {
            match stalled.reason.as_str() {
                "InvalidSpec" => reached.push(Reached::UnusableSpecStall),
                "ConfigMapNotFound" => reached.push(Reached::ConfigMapMissing),
                "SecretNotFound" => reached.push(Reached::SecretMissing),
                _ => {}
            }
        }
        let plan = self.cluster.plan_of(status);
        for service in checks::all_services(status, plan.as_ref()) {
            if service.key.namespace != NS {
                reached.push(Reached::OtherNamespace);
            }
            let message = service.message.as_deref().unwrap_or_default();
            if service.reason.as_deref() == Some(DISRUPTION_BUDGET) {
                reached.push(Reached::SkippedForDisruptionBudget);
            }
            match (service.result, service.key.kind) {
                (Some(ServiceResult::Ready), WorkloadKind::StatefulSet) => {
                    reached.push(Reached::StatefulSetReady)
                }
                (Some(ServiceResult::Ready), WorkloadKind::DaemonSet) => {
                    reached.push(Reached::DaemonSetReady)
                }
                _ => {}
            }
            match service.result {
                Some(ServiceResult::TimedOut) => reached.push(Reached::ServiceTimedOut),
                Some(ServiceResult::Gone) => reached.push(Reached::ServiceGone),
                Some(ServiceResult::Failed) => reached.push(Reached::ServiceFailed),
                Some(ServiceResult::Skipped) if message == MESSAGE_PAUSED => {
                    reached.push(Reached::PausedSkipped)
                }
                Some(ServiceResult::Skipped) if message == MESSAGE_EXCLUDED => {
                    reached.push(Reached::ExcludedAfterPlanning)
                }
                Some(ServiceResult::Skipped) if message.contains("run aborted") => {
                    reached.push(Reached::RunAborted)
                }
                None if message.starts_with("held: run") => {
                    reached.push(Reached::HeldForAnotherRun)
                }
                None if message.starts_with("held: PodDisruptionBudget") => {}
                None if message.starts_with("held: ") => reached.push(Reached::HeldForTheBudget),
                _ => {}
            }
        }
        self.reached.extend(reached);
    }

    /// Lets the world settle: the spec becomes usable, nothing is suspended, a slot is free,
    /// the ConfigMap exists, every patch succeeds, rollouts finish, time passes. Every run
    /// must end and every trigger change must be taken up.
    pub fn drain(&mut self) -> Result<(), TestCaseError> {
        self.run_at_drain = self.run_number();
        self.cluster.run_slot = RunSlot::Granted;
        self.cluster.refresh.spec.suspend = false;
        if let Some(gate) = self.gate_passes.as_mut() {
            *gate = true;
        }
        self.cluster.refresh.spec.batch_timeout = format!("{BATCH_TIMEOUT_SECONDS}s");
        self.restarts_forbidden = false;
        if !self.config_map_present {
            self.restore_config_map();
        }
        if !self.secret_present {
            self.restore_secret();
        }
        for _ in 0..150 {
            self.pass(0, Delivery::Full, 0, false, None)?;
            self.cluster.roll_out_all();
            let status = self.cluster.status();
            if !run_active(status) && !self.burst_open && status.run.is_some() {
                return Ok(());
            }
            self.cluster.now += SignedDuration::from_secs(20);
        }
        Err(TestCaseError::fail("the run never ended or a trigger was never taken up"))
    }
}
