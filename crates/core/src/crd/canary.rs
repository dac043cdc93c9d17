//! `spec.pacing.canary` and `spec.pacing.slowStart`: a run that first restarts a few
//! Deployments and watches them for a while, and batches that grow from one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Longest `spec.pacing.canary.soak` accepted: a day is already far beyond any canary a
/// person watches, and it keeps the wake-up deadlines handed to the controller's timers sane.
pub const MAX_CANARY_SOAK: &str = "24h";

/// The canary batch: the run's first batch restarts `size` Deployments (fewer when the fleet
/// or its first wave is smaller), then waits `soak` with each of them ready before the next
/// batch. A canary whose rollout fails or that turns unready during the soak ends the run as
/// Failed, whatever `failurePolicy` says; nothing else is restarted.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanarySpec {
    /// How many Deployments the canary batch restarts: 1 to 100, and at most `batchSize`.
    #[schemars(range(min = 1, max = 100))]
    pub size: u32,
    /// How long the canaries must stay ready after their rollouts, as a duration such as
    /// `30s`, `5m` or `1h`, from 0s to 24h.
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "duration(self) <= duration('24h')",
        "message": "must be at most 24h",
    }]))]
    pub soak: String,
}
