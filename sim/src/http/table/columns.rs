//! Table columns: the real printers' columns (names, types, descriptions,
//! wide-only ones) for the built-in kinds the sim serves, and those of
//! custom resources (Name plus the CRD version's
//! `additionalPrinterColumns`, or a default Age column).

use serde_json::Value;

#[cfg(test)]
pub use super::column_def::NAME_DESC;
use super::column_def::{CREATED_DESC, age_column, field_doc, name_column};
pub use super::column_def::{CellSource, ColumnDef};
use super::workload_columns::workload_columns;

/// Columns of a built-in resource (plural name: the workloads of
/// `workload_columns`, `pods`, `configmaps`, `namespaces`, `events` (core
/// and events.k8s.io field names both read), `leases`, `secrets`,
/// `services`, `poddisruptionbudgets`); any other resource gets
/// the default convertor's Name / Created At (as `customresourcedefinitions`
/// do on a real server).
pub fn columns_for_builtin(resource: &str) -> Vec<ColumnDef> {
    if let Some(columns) = workload_columns(resource) {
        return columns;
    }
    match resource {
        "pods" => vec![
            name_column(),
            ColumnDef::new(
                "Ready",
                "string",
                "The aggregate readiness state of this pod for accepting traffic.",
                CellSource::PodReady,
            ),
            ColumnDef::new(
                "Status",
                "string",
                "The aggregate status of the containers in this pod.",
                CellSource::PodStatus,
            ),
            ColumnDef::new(
                "Restarts",
                "string",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
                CellSource::PodRestarts,
            ),
            age_column(),
            ColumnDef::new(
                "IP",
                "string",
                "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
                CellSource::PodIp,
            )
            .wide(),
            ColumnDef::new(
                "Node",
                "string",
                "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
                CellSource::PodNode,
            )
            .wide(),
            ColumnDef::new(
                "Nominated Node",
                "string",
                "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.",
                CellSource::PodNominatedNode,
            )
            .wide(),
            ColumnDef::new(
                "Readiness Gates",
                "string",
                "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
                CellSource::PodReadinessGates,
            )
            .wide(),
        ],
        "configmaps" => vec![
            name_column(),
            ColumnDef::new(
                "Data",
                "string",
                "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
                CellSource::ConfigMapData,
            ),
            age_column(),
        ],
        "namespaces" => vec![
            name_column(),
            ColumnDef::new(
                "Status",
                "string",
                "The status of the namespace",
                CellSource::NamespaceStatus,
            ),
            age_column(),
        ],
        "leases" => vec![
            name_column(),
            ColumnDef::new(
                "Holder",
                "string",
                "The holder of the lease",
                CellSource::LeaseHolder,
            ),
            age_column(),
        ],
        "events" => vec![
            ColumnDef::new(
                "Last Seen",
                "string",
                "The time at which the most recent occurrence of this event was recorded.",
                CellSource::EventLastSeen,
            ),
            ColumnDef::new(
                "Type",
                "string",
                "Type of this event (Normal, Warning), new types could be added in the future",
                CellSource::EventType,
            ),
            ColumnDef::new(
                "Reason",
                "string",
                "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
                CellSource::EventReason,
            ),
            ColumnDef::new(
                "Object",
                "string",
                "The object that this event is about.",
                CellSource::EventObject,
            ),
            ColumnDef::new(
                "Subobject",
                "string",
                "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].",
                CellSource::EventSubobject,
            )
            .wide(),
            ColumnDef::new(
                "Source",
                "string",
                "The component reporting this event. Should be a short machine understandable string.",
                CellSource::EventSource,
            )
            .wide(),
            ColumnDef::new(
                "Message",
                "string",
                "A human-readable description of the status of this operation.",
                CellSource::EventMessage,
            ),
            ColumnDef::new(
                "First Seen",
                "string",
                "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
                CellSource::EventFirstSeen,
            )
            .wide(),
            ColumnDef::new(
                "Count",
                "string",
                "The number of times this event has occurred.",
                CellSource::EventCount,
            )
            .wide(),
            name_column().wide(),
        ],
        "secrets" => vec![
            name_column(),
            ColumnDef::new(
                "Type",
                "string",
                &field_doc("io.k8s.api.core.v1.Secret", "type"),
                CellSource::SecretType,
            ),
            ColumnDef::new(
                "Data",
                "string",
                &field_doc("io.k8s.api.core.v1.Secret", "data"),
                CellSource::SecretData,
            ),
            age_column(),
        ],
        "services" => {
            let doc = |field: &str| field_doc("io.k8s.api.core.v1.ServiceSpec", field);
            vec![
                name_column(),
                ColumnDef::new("Type", "string", &doc("type"), CellSource::ServiceType),
                ColumnDef::new("Cluster-IP", "string", &doc("clusterIP"), CellSource::ServiceClusterIp),
                ColumnDef::new(
                    "External-IP",
                    "string",
                    &doc("externalIPs"),
                    CellSource::ServiceExternalIp,
                ),
                ColumnDef::new("Port(s)", "string", &doc("ports"), CellSource::ServicePorts),
                age_column(),
                ColumnDef::new("Selector", "string", &doc("selector"), CellSource::ServiceSelector)
                    .wide(),
            ]
        }
        "poddisruptionbudgets" => vec![
            name_column(),
            ColumnDef::new(
                "Min Available",
                "string",
                "The minimum number of pods that must be available.",
                CellSource::BudgetMinAvailable,
            ),
            ColumnDef::new(
                "Max Unavailable",
                "string",
                "The maximum number of pods that may be unavailable.",
                CellSource::BudgetMaxUnavailable,
            ),
            ColumnDef::new(
                "Allowed Disruptions",
                "integer",
                "Calculated number of pods that may be disrupted at this time.",
                CellSource::BudgetAllowedDisruptions,
            ),
            age_column(),
        ],
        _ => vec![
            name_column(),
            ColumnDef::new("Created At", "date", CREATED_DESC, CellSource::CreatedAt),
        ],
    }
}

/// Columns of a custom resource of `crd` at `version`: Name, then the
/// version's `additionalPrinterColumns` (or the CRD's top-level ones, as
/// v1beta1 CRDs had), or a default Age column when there are none.
pub fn columns_for_crd(crd: &Value, version: &str) -> Vec<ColumnDef> {
    let version_spec =
        crd.pointer("/spec/versions").and_then(Value::as_array).and_then(|versions| {
            versions.iter().find(|spec| spec.get("name").and_then(Value::as_str) == Some(version))
        });
    let printer = version_spec
        .and_then(|spec| spec.get("additionalPrinterColumns"))
        .or_else(|| crd.pointer("/spec/additionalPrinterColumns"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    columns_for_printer_columns(printer)
}

/// Columns of a custom resource from its version's
/// `additionalPrinterColumns`: Name, then those columns, or Age when empty.
pub fn columns_for_printer_columns(printer_columns: &[Value]) -> Vec<ColumnDef> {
    let mut columns = vec![name_column()];
    match Some(printer_columns).filter(|printer_columns| !printer_columns.is_empty()) {
        Some(printer_columns) => {
            for printer_column in printer_columns {
                let text =
                    |key: &str| printer_column.get(key).and_then(Value::as_str).unwrap_or("");
                let path = text("jsonPath");
                let description = match text("description") {
                    "" => format!("Custom resource definition column (in JSONPath format): {path}"),
                    described => described.to_owned(),
                };
                columns.push(ColumnDef {
                    name: text("name").to_owned(),
                    kind: text("type").to_owned(),
                    format: text("format").to_owned(),
                    description,
                    priority: printer_column.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    source: CellSource::JsonPath(path.to_owned()),
                });
            }
        }
        None => columns.push(ColumnDef::new(
            "Age",
            "date",
            CREATED_DESC,
            CellSource::JsonPath(".metadata.creationTimestamp".to_owned()),
        )),
    }
    columns
}
