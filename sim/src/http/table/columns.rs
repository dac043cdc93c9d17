//! Table columns: the real printers' columns (names, types, descriptions,
//! wide-only ones) for the built-in kinds the sim serves, and those of
//! custom resources (Name plus the CRD version's
//! `additionalPrinterColumns`, or a default Age column).

use serde_json::{Value, json};

use crate::schema;

/// How a column's cell is computed from an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CellSource {
    /// `metadata.name`.
    Name,
    /// Age of `metadata.creationTimestamp` as a human duration (built-ins).
    Age,
    /// `metadata.creationTimestamp` in RFC 3339 (the default convertor).
    CreatedAt,
    /// A CRD printer column's JSONPath, converted per the column's type.
    JsonPath(String),
    /// `ready/desired` of a Deployment.
    DeploymentReady,
    /// `status.updatedReplicas`.
    DeploymentUpToDate,
    /// `status.availableReplicas`.
    DeploymentAvailable,
    /// Container names of `spec.template`, comma-separated.
    Containers,
    /// Container images of `spec.template`, comma-separated.
    Images,
    /// `spec.selector` as a label-selector string.
    Selector,
    /// Number of `data` + `binaryData` entries of a ConfigMap.
    ConfigMapData,
    /// `status.phase` of a Namespace.
    NamespaceStatus,
    /// `spec.holderIdentity` of a Lease.
    LeaseHolder,
    /// Event: last seen age.
    EventLastSeen,
    /// Event: `type`.
    EventType,
    /// Event: `reason`.
    EventReason,
    /// Event: `kind/name` of the involved object, kind lower-cased.
    EventObject,
    /// Event: `involvedObject.fieldPath`.
    EventSubobject,
    /// Event: `component, host`.
    EventSource,
    /// Event: `message`, trimmed.
    EventMessage,
    /// Event: first seen age.
    EventFirstSeen,
    /// Event: `count`.
    EventCount,
    /// ReplicaSet: `spec.replicas`.
    ReplicaSetDesired,
    /// ReplicaSet: `status.replicas`.
    ReplicaSetCurrent,
    /// ReplicaSet: `status.readyReplicas`.
    ReplicaSetReady,
    /// Pod: `ready/total` containers.
    PodReady,
    /// Pod: its status reason (waiting reason, reason, or phase).
    PodStatus,
    /// Pod: container restarts.
    PodRestarts,
    /// Pod: `status.podIP`.
    PodIp,
    /// Pod: `spec.nodeName`.
    PodNode,
    /// Pod: `status.nominatedNodeName`.
    PodNominatedNode,
    /// Pod: readiness gates.
    PodReadinessGates,
    /// Secret: `type`.
    SecretType,
    /// Secret: number of `data` entries.
    SecretData,
    /// Service: `spec.type`.
    ServiceType,
    /// Service: `spec.clusterIP`.
    ServiceClusterIp,
    /// Service: external IPs, load-balancer ingress or external name.
    ServiceExternalIp,
    /// Service: `port[:nodePort]/protocol`, comma-separated.
    ServicePorts,
    /// Service: `spec.selector` as `k=v,...`.
    ServiceSelector,
    /// PodDisruptionBudget: `spec.minAvailable` or `N/A`.
    BudgetMinAvailable,
    /// PodDisruptionBudget: `spec.maxUnavailable` or `N/A`.
    BudgetMaxUnavailable,
    /// PodDisruptionBudget: `status.disruptionsAllowed`.
    BudgetAllowedDisruptions,
    /// A Node column (`nodes`, whose columns and cells are in `nodes`).
    Node(NodeCell),
}

/// The cells of the Node printer's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeCell {
    Status,
    Roles,
    Version,
    InternalIp,
    ExternalIp,
    OsImage,
    KernelVersion,
    ContainerRuntime,
}

/// One column: its `TableColumnDefinition` and how to compute its cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnDef {
    /// Column name (`Name`, `Up-to-date`; kubectl upper-cases it).
    pub name: String,
    /// OpenAPI type: `string`, `integer`, `number`, `boolean`, `date`.
    pub kind: String,
    /// OpenAPI format (`name` for the Name column), possibly empty.
    pub format: String,
    /// Description.
    pub description: String,
    /// 0 for the default view, 1 and up for `-o wide`.
    pub priority: i64,
    /// Cell computation.
    pub source: CellSource,
}

impl ColumnDef {
    /// A default-view column without a format.
    pub fn new(name: &str, kind: &str, description: &str, source: CellSource) -> Self {
        Self {
            name: name.to_owned(),
            kind: kind.to_owned(),
            format: String::new(),
            description: description.to_owned(),
            priority: 0,
            source,
        }
    }

    /// Shown only with `-o wide`.
    pub fn wide(mut self) -> Self {
        self.priority = 1;
        self
    }

    /// With an OpenAPI format.
    fn format(mut self, format: &str) -> Self {
        self.format = format.to_owned();
        self
    }

    /// The `TableColumnDefinition` JSON.
    pub fn definition(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

pub const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATED_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

pub fn name_column() -> ColumnDef {
    ColumnDef::new("Name", "string", NAME_DESC, CellSource::Name).format("name")
}

pub fn age_column() -> ColumnDef {
    ColumnDef::new("Age", "string", CREATED_DESC, CellSource::Age)
}

/// The pod-template columns workloads show with `-o wide`.
fn containers_column() -> ColumnDef {
    let description = "Names of each container in the template.";
    ColumnDef::new("Containers", "string", description, CellSource::Containers).wide()
}

fn images_column() -> ColumnDef {
    let description = "Images referenced by each container in the template.";
    ColumnDef::new("Images", "string", description, CellSource::Images).wide()
}

fn selector_column(description: &str) -> ColumnDef {
    ColumnDef::new("Selector", "string", description, CellSource::Selector).wide()
}

/// Columns of a built-in resource (plural name: `deployments`,
/// `replicasets`, `pods`, `configmaps`, `namespaces`, `events` (core and
/// events.k8s.io field names both read), `leases`); any other resource gets
/// the default convertor's Name / Created At (as `customresourcedefinitions`
/// do on a real server).
pub fn columns_for_builtin(resource: &str) -> Vec<ColumnDef> {
    match resource {
        "deployments" => vec![
            name_column(),
            ColumnDef::new(
                "Ready",
                "string",
                "Number of the pod with ready state",
                CellSource::DeploymentReady,
            ),
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

/// A field's description in the kind's schema (the printers use the same
/// Swagger docs).
pub fn field_doc(definition: &str, field: &str) -> String {
    schema::builtin_schemas()
        .definitions
        .get(definition)
        .and_then(|schema| schema.pointer(&format!("/properties/{field}/description")))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
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
