//! `spec.pacing` (how a run adapts its batches to what the cluster can take) and the
//! run's record of it in the status (`status.run.pacing`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a run paces its restarts beyond `batchSize`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PacingSpec {
    /// Capacity-aware pacing, on by default. While a pod of a Deployment this run restarted
    /// has waited unschedulable (`PodScheduled=False`, reason `Unschedulable`) longer than a
    /// short grace, no further restart starts and the run's effective batch size halves
    /// (down to 1); it grows back by one after each batch that finishes with nothing blocked,
    /// never above `batchSize`. `false` turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_aware: Option<bool>,
    /// PodDisruptionBudget awareness, on by default: two services whose pods one budget
    /// covers are never in flight together, and a service whose budget allows no disruption
    /// (`status.disruptionsAllowed` 0) waits for one, holding no in-flight place, until
    /// `batchTimeout` skips it (`DisruptionBudget`). `false` turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respect_disruption_budgets: Option<bool>,
    /// A canary batch first: the run's first batch restarts `size` Deployments, which must
    /// then stay ready for `soak` before the next batch starts. A canary that fails or turns
    /// unready ends the run as Failed (reason `CanaryFailed`), whatever `failurePolicy` says,
    /// with nothing else restarted (docs/capacity.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<super::CanarySpec>,
    /// Batch sizes grow 1, 2, 4, … up to `batchSize` (after the canary batch, when there is
    /// one). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_start: Option<bool>,
}

impl PacingSpec {
    /// Whether capacity-aware pacing is on (the default).
    pub fn capacity_aware(&self) -> bool {
        self.capacity_aware.unwrap_or(true)
    }
}

/// How the run paces itself now.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PacingStatus {
    /// How many services the next batch takes and how many rollouts may be in flight:
    /// `spec.batchSize`, or less while the cluster lacks room for the run's pods.
    pub effective_batch_size: u32,
    /// Whether a pod this run restarted waits unschedulable past the grace right now. The
    /// batch size halves once when this turns true, not on every look.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capacity_blocked: bool,
    /// The latest batch during which a pod of this run was seen blocked; a batch that
    /// finishes after it grows the effective size by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_in_batch: Option<u32>,
}
