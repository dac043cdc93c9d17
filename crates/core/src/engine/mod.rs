//! The decision engine: pure functions from observed state to a new status plus actions.
//! Nothing here performs IO or reads a clock; the controller supplies `now` and every
//! observation, and carries out the returned actions. This is the heart of the operator.

pub mod canary;
pub mod capacity;
pub mod conditions;
pub mod disruption_budgets;
pub mod forbidden;
pub mod health_gate;
pub mod notifications;
pub mod observed;
pub mod pacing;
pub mod plan;
pub mod pod_labels;
pub mod pods;
pub mod positions;
pub mod readiness;
mod restart_annotations;
pub mod results;
pub mod run;
pub mod run_id;
pub mod schedule;
mod snapshot_kinds;
pub mod spec;
pub mod transitions;
pub mod view;
pub mod waits;

use std::collections::BTreeSet;
use std::fmt;

use jiff::{SignedDuration, Timestamp};

use crate::crd::{ServiceRefresh, ServiceRefreshPlan, ServiceRefreshStatus, WorkloadKind};

pub use conditions::SlotHolder;
pub use disruption_budgets::DisruptionBudgetSnapshot;
pub use forbidden::Forbidden;
pub use observed::{
    ClusterView, ConfigMapSnapshot, DeploymentSnapshot, SecretSnapshot, StaticCluster,
};
pub use plan::{Plan, PlanEntry};
pub use pods::PodSnapshot;
pub use run::{decide, record_restart_outcomes, run_active};
pub use run_id::RunId;
pub use spec::OperatorScope;
pub use transitions::{EventNote, EventReason, EventSeverity, Transition};
pub use waits::{Wait, WaitReason};

/// How long a queued resource waits before it looks at the run slots again on its own. A
/// finished run wakes queued resources at once; this covers a wake-up that raced the cache.
pub const QUEUED_RECHECK: SignedDuration = SignedDuration::from_secs(5);

/// Namespace, kind and name of a workload (or namespace and name of a ConfigMap or a
/// ServiceRefresh, whose keys keep the default kind, which means nothing for them). Ordering
/// is namespace, kind, then name: the order a plan restarts services in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
}

impl ObjectKey {
    /// The key of a Deployment, ConfigMap or ServiceRefresh.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), kind: WorkloadKind::Deployment, name: name.into() }
    }

    /// The key of a workload of `kind`.
    pub fn workload(
        kind: WorkloadKind,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self { namespace: namespace.into(), kind, name: name.into() }
    }

    /// The workload as a person names it: `StatefulSet arcgis/relational-store`.
    pub fn describe(&self) -> String {
        format!("{} {self}", self.kind)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Whether this resource may start a run now, as cluster-wide admission sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunSlot {
    /// A slot is reserved for this resource.
    Granted,
    /// Every slot is taken, by these resources.
    Busy { holders: Vec<SlotHolder> },
}

/// Everything one reconcile pass observed. The engine reads only this.
pub struct Observation<'a> {
    /// The ServiceRefresh as cached (metadata, spec and the status as last written).
    pub refresh: &'a ServiceRefresh,
    /// The Deployments and ConfigMaps, as the caches hold them.
    pub cluster: &'a dyn ClusterView,
    /// Where the operator lets a resource reach.
    pub scope: &'a OperatorScope,
    /// The active run's plan, joined from its plan objects, when they are known. The engine
    /// uses it only when it is the plan the status refers to.
    pub plan: Option<&'a Plan>,
    /// Whether a new run may start in this pass.
    pub run_slot: RunSlot,
    /// The health gate's latest outcome for this resource, as the shell last checked it.
    pub health_gate: Option<&'a health_gate::GateResult>,
    /// A write of this resource's run the API server forbids (403), as the shell last saw
    /// it, with when it tries again; `None` once a write of that kind went through.
    pub forbidden: Option<&'a Forbidden>,
    /// The current time.
    pub now: Timestamp,
    /// The operator's `--min-restart-interval`: no Deployment is restarted twice within it,
    /// unless a run was forced.
    pub min_restart_interval: SignedDuration,
}

/// What one pass decided: the status to write and the actions to carry out.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The complete new status. Equal to the observed status when nothing changed, so the
    /// controller can skip the write.
    pub status: ServiceRefreshStatus,
    /// Plan objects of a run this pass planned. The controller writes them (creating or
    /// replacing) before the status that refers to them.
    pub plan_objects: Vec<ServiceRefreshPlan>,
    /// Deployments to restart now, in plan order. The controller sends them after it wrote
    /// the status that names them, so a restart is on record before it is sent.
    pub restarts: Vec<Restart>,
    /// What changed, for Events, logs and metrics.
    pub transitions: Vec<Transition>,
    /// When to reconcile again if no watch event arrives first: a batch deadline, a queued
    /// re-check, or now when the next step must follow a status write at once.
    pub wake_at: Option<Timestamp>,
    /// A run is due but the pass had no run slot: ask admission, then decide again.
    pub wants_run_slot: bool,
    /// Deployments whose changes this resource must hear about: the services of the batch in
    /// flight and the timed-out rollouts still holding a place in the in-flight budget.
    pub awaiting: BTreeSet<ObjectKey>,
    /// The run waits at its health gate and holds no outcome checked since the batch became
    /// ready (or a stale one): check `spec.healthGate`, then decide again with the result.
    pub wants_health_check: bool,
}

impl Decision {
    /// Whether the resource has a run in progress and so holds a cluster-wide run slot.
    pub fn holds_run_slot(&self) -> bool {
        run_active(&self.status)
    }
}

/// One restart: patch these two pod-template annotations onto the Deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restart {
    pub deployment: ObjectKey,
    /// Value for `kubectl.kubernetes.io/restartedAt`: the run's persisted start time, so a
    /// repeated patch is identical and changes nothing.
    pub restarted_at: String,
    /// Value for `gisops.io/restarted-by`: the run identity.
    pub restarted_by: String,
    /// The Deployment metadata annotation recording the run for its resource.
    pub record_annotation: String,
    /// The Deployment's resourceVersion as the pass saw it, sent as a precondition: a patch
    /// decided on a cache that has fallen behind (another run restarted the Deployment since)
    /// is refused with a conflict instead of restarting it a second time.
    pub resource_version: Option<String>,
}

/// What happened when the controller sent one restart patch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestartOutcome {
    /// Patched; the Deployment's `metadata.generation` after the patch.
    Patched { generation: i64 },
    /// The Deployment no longer exists (404).
    NotFound,
    /// The API server refused the patch for good (e.g. 400, 422); the message says why.
    Rejected(String),
    /// The API server forbids the patch (403): a missing RBAC grant, not a fault of the
    /// Deployment. Nothing was restarted; the shell records the refusal, and the run stalls
    /// until a retry goes through.
    Forbidden(String),
    /// A transient failure (5xx, 429, timeout); the restart is retried on a later pass.
    Transient(String),
}
