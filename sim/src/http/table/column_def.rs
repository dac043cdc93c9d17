//! A table column (`ColumnDef`: its `TableColumnDefinition` and where its
//! cells come from, `CellSource`) and the columns many kinds share (Name,
//! Age, a workload template's containers, images and selector), with the
//! descriptions of the real printers.

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
    /// `ready/desired` of a Deployment (or StatefulSet).
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
    /// The integer at a JSON pointer, 0 when unset (an `int32` status count).
    Int(&'static str),
    /// DaemonSet: the template's `nodeSelector` as `k=v,...`, `<none>` when empty.
    NodeSelector,
    /// ControllerRevision: `kind.group/name` of its controller, `<none>` without one.
    RevisionController,
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
pub const CREATED_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

pub fn name_column() -> ColumnDef {
    ColumnDef::new("Name", "string", NAME_DESC, CellSource::Name).format("name")
}

pub fn age_column() -> ColumnDef {
    ColumnDef::new("Age", "string", CREATED_DESC, CellSource::Age)
}

/// The pod-template columns workloads show with `-o wide`.
pub fn containers_column() -> ColumnDef {
    let description = "Names of each container in the template.";
    ColumnDef::new("Containers", "string", description, CellSource::Containers).wide()
}

pub fn images_column() -> ColumnDef {
    let description = "Images referenced by each container in the template.";
    ColumnDef::new("Images", "string", description, CellSource::Images).wide()
}

pub fn selector_column(description: &str) -> ColumnDef {
    ColumnDef::new("Selector", "string", description, CellSource::Selector).wide()
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
