//! Table columns of the apps workloads (Deployments, ReplicaSets,
//! StatefulSets, DaemonSets and their ControllerRevisions): the real
//! printers' columns, names, types, descriptions and wide-only ones.

use super::column_def::{
    CellSource, ColumnDef, age_column, containers_column, field_doc, images_column, name_column,
    selector_column,
};

/// `ready/desired` pods, as Deployments and StatefulSets print them.
fn ready_column() -> ColumnDef {
    let description = "Number of the pod with ready state";
    ColumnDef::new("Ready", "string", description, CellSource::DeploymentReady)
}

/// The columns of an apps workload resource (plural name), `None` for
/// other resources.
pub fn workload_columns(resource: &str) -> Option<Vec<ColumnDef>> {
    let columns = match resource {
        "deployments" => vec![
            name_column(),
            ready_column(),
            ColumnDef::new(
                "Up-to-date",
                "string",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                CellSource::DeploymentUpToDate,
            ),
            ColumnDef::new(
                "Available",
                "string",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                CellSource::DeploymentAvailable,
            ),
            age_column(),
            containers_column(),
            images_column(),
            selector_column(
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
            ),
        ],
        "replicasets" => vec![
            name_column(),
            ColumnDef::new(
                "Desired",
                "integer",
                "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/#how-a-replicaset-works",
                CellSource::ReplicaSetDesired,
            ),
            ColumnDef::new(
                "Current",
                "integer",
                "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/#how-a-replicaset-works",
                CellSource::ReplicaSetCurrent,
            ),
            ColumnDef::new(
                "Ready",
                "integer",
                "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
                CellSource::ReplicaSetReady,
            ),
            age_column(),
            containers_column(),
            images_column(),
            selector_column(
                "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
            ),
        ],
        "statefulsets" => {
            vec![name_column(), ready_column(), age_column(), containers_column(), images_column()]
        }
        "daemonsets" => {
            let status = |field: &str| field_doc("io.k8s.api.apps.v1.DaemonSetStatus", field);
            let count = |name: &str, field: &str, pointer: &'static str| {
                ColumnDef::new(name, "integer", &status(field), CellSource::Int(pointer))
            };
            vec![
                name_column(),
                count("Desired", "desiredNumberScheduled", "/status/desiredNumberScheduled"),
                count("Current", "currentNumberScheduled", "/status/currentNumberScheduled"),
                count("Ready", "numberReady", "/status/numberReady"),
                count("Up-to-date", "updatedNumberScheduled", "/status/updatedNumberScheduled"),
                count("Available", "numberAvailable", "/status/numberAvailable"),
                ColumnDef::new(
                    "Node Selector",
                    "string",
                    &field_doc("io.k8s.api.core.v1.PodSpec", "nodeSelector"),
                    CellSource::NodeSelector,
                ),
                age_column(),
                containers_column(),
                images_column(),
                selector_column(&field_doc("io.k8s.api.apps.v1.DaemonSetSpec", "selector")),
            ]
        }
        "controllerrevisions" => vec![
            name_column(),
            ColumnDef::new(
                "Controller",
                "string",
                "Controller of the object",
                CellSource::RevisionController,
            ),
            ColumnDef::new(
                "Revision",
                "string",
                &field_doc("io.k8s.api.apps.v1.ControllerRevision", "revision"),
                CellSource::Int("/revision"),
            ),
            age_column(),
        ],
        _ => return None,
    };
    Some(columns)
}
