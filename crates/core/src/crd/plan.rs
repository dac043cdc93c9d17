//! The plan of one run, kept out of the ServiceRefresh's status: the selected workloads in
//! the order the run restarts them, written once when the run starts and never changed.
//! A large plan is split into parts. Each entry's position in the whole plan (counting from
//! 0 across parts) is how the status names services compactly.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::kinds::WorkloadKind;

/// Most entries one plan object holds. With names of at most 253 characters a part stays far
/// below the API server's object size limit, whatever the names.
pub const MAX_PLAN_PART_ENTRIES: usize = 1_000;

/// ServiceRefreshPlan holds the ordered services of one run of a ServiceRefresh. The operator
/// writes it when the run starts, over the previous run's; it is owned by the ServiceRefresh,
/// so deleting that deletes its plans.
// Printer columns repeat `type_ = "string"`, which this lint mistakes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "gisops.io",
    version = "v1alpha1",
    kind = "ServiceRefreshPlan",
    plural = "servicerefreshplans",
    singular = "servicerefreshplan",
    namespaced,
    shortname = "srefplan",
    category = "gisops",
    derive = "PartialEq",
    doc = "ServiceRefreshPlan holds the ordered services of one ServiceRefresh run (written by the operator).",
    printcolumn(
        name = "Refresh",
        type_ = "string",
        json_path = ".spec.refresh",
        description = "The ServiceRefresh whose run this plan belongs to"
    ),
    printcolumn(
        name = "Run",
        type_ = "string",
        json_path = ".spec.run",
        description = "Identity of the run"
    ),
    printcolumn(
        name = "Part",
        type_ = "integer",
        json_path = ".spec.part",
        description = "Part of the plan, counting from 0"
    ),
    printcolumn(
        name = "Services",
        type_ = "integer",
        json_path = ".spec.services",
        description = "Services in this part"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRefreshPlanSpec {
    /// Name of the ServiceRefresh.
    pub refresh: String,
    /// Identity of the run, as in the ServiceRefresh's `status.run.id`.
    pub run: String,
    /// Position of this part among the run's plan parts, counting from 0.
    pub part: u32,
    /// How many parts the run's plan has.
    pub parts: u32,
    /// Position in the whole plan of this part's first entry.
    pub first: u32,
    /// How many services this part holds.
    pub services: u32,
    /// Digest of the whole plan, the same in every part, so a reader can tell the parts of
    /// one plan from a stale part of an earlier attempt.
    pub digest: String,
    /// The services in restart order, grouped by consecutive namespace (and wave).
    pub groups: Vec<PlanGroup>,
}

/// Consecutive services of a plan that share a namespace and wave.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanGroup {
    /// Namespace of the services.
    pub namespace: String,
    /// The wave the services belong to, counting from 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wave: u32,
    /// Kind of the workloads; omitted for Deployments.
    #[serde(default, skip_serializing_if = "WorkloadKind::is_deployment")]
    pub kind: WorkloadKind,
    /// Names of the Deployments, in restart order.
    pub names: Vec<String>,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}
