//! The decision engine: pure functions from observed state to a new status plus actions.
//! Nothing here performs IO or reads a clock; the controller supplies `now` and every
//! observation, and carries out the returned actions. This is the heart of the operator.

pub mod conditions;
pub mod plan;
pub mod readiness;
pub mod run;
pub mod spec;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;

use crate::crd::{ServiceRefresh, ServiceRefreshStatus};

pub use run::{decide, record_restart_outcomes};

/// Namespace and name of a Deployment (or ConfigMap); ordering is namespace, then name,
/// which is the order a plan restarts services in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Everything one reconcile pass observed. The engine reads only this.
pub struct Observation<'a> {
    /// The ServiceRefresh as cached (metadata, spec and the status as last written).
    pub refresh: &'a ServiceRefresh,
    /// Every cached Deployment of the namespaces the spec targets (more is harmless).
    pub deployments: &'a [Arc<Deployment>],
    /// Content hash of each ConfigMap named in `spec.configMapTriggers`, keyed by its
    /// resolved namespace and name; `None` when the ConfigMap does not exist.
    pub config_map_hashes: &'a BTreeMap<ObjectKey, Option<String>>,
    /// Whether cluster-wide admission allows this resource to start a new run now.
    pub may_start_run: bool,
    /// The current time.
    pub now: Timestamp,
}

/// What one pass decided: the status to write and the actions to carry out.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The complete new status. Equal to the observed status when nothing changed, so the
    /// controller can skip the write.
    pub status: ServiceRefreshStatus,
    /// Deployments to restart now, in plan order.
    pub restarts: Vec<Restart>,
    /// Kubernetes Events to record.
    pub events: Vec<EventNote>,
    /// When to reconcile again if no watch event arrives first (batch timeout deadline).
    pub wake_at: Option<Timestamp>,
}

/// One restart: patch these two pod-template annotations onto the Deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restart {
    pub deployment: ObjectKey,
    /// Value for `kubectl.kubernetes.io/restartedAt`: the batch's persisted start time, so a
    /// repeated patch is identical and changes nothing.
    pub restarted_at: String,
    /// Value for `gisops.io/restarted-by`: the run identity.
    pub restarted_by: String,
}

/// Severity of an Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventSeverity {
    Normal,
    Warning,
}

/// A Kubernetes Event to record on the ServiceRefresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNote {
    pub severity: EventSeverity,
    /// CamelCase reason such as `RunStarted`, `BatchStarted`, `BatchCompleted`, `RunSucceeded`.
    pub reason: String,
    pub message: String,
}

/// What happened when the controller sent one restart patch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestartOutcome {
    /// Patched; the Deployment's `metadata.generation` after the patch.
    Patched { generation: i64 },
    /// The Deployment no longer exists (404).
    NotFound,
    /// The API server refused the patch for good (e.g. 403, 422); the message says why.
    Rejected(String),
    /// A transient failure (5xx, 409, timeout); the restart is retried on a later pass.
    Transient(String),
}
