//! Ordered waves (`spec.waves`): groups of workloads restarted one group after the other,
//! such as system services before user services.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One wave: the selected workloads it takes. A workload matched by several waves belongs
/// to the first; one matched by none runs in a last wave after all of them.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Wave {
    /// Label selector choosing, among the selected workloads, those of this wave.
    pub selector: LabelSelector,
}
