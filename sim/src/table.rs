//! Server-side printing: the `meta.k8s.io/v1` `Table` the API server returns
//! when a client (kubectl get) sends
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`. This module owns
//! the column definitions of the built-in kinds the sim serves (the real
//! printers' columns, names and descriptions), those of custom resources
//! (Name plus the CRD version's `additionalPrinterColumns`, evaluated with
//! the simple JSONPath the apiextensions server supports, or a default Age
//! column), the default convertor's Name / Created At, the cells, the
//! human-readable ages (`duration.HumanDuration`), and the rows' `object`
//! according to `includeObject` (kubectl asks for nothing, and the server's
//! default is `Metadata`: a `PartialObjectMetadata`).
//!
//! API: [`columns_for_builtin`] or [`columns_for_crd`] give the columns; then
//! [`table`] builds the Table for the (already filtered) objects of a list, or
//! for one object of a GET. `now_ms` is the simulated time (milliseconds since
//! the Unix epoch) the ages are computed against. For a paginated list, the
//! caller adds `metadata.continue` / `remainingItemCount` to the result.

use serde_json::{Map, Value, json};

/// `includeObject` query parameter of a Table request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object in the rows.
    None,
    /// The object's metadata as `PartialObjectMetadata` (the server default,
    /// what kubectl gets unless it sorts).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the query parameter value (`None`, `Metadata`, `Object`);
    /// absent means `Metadata`. Other values are rejected by the server.
    pub fn from_query(value: Option<&str>) -> Option<Self> {
        match value {
            None | Some("") | Some("Metadata") => Some(Self::Metadata),
            Some("None") => Some(Self::None),
            Some("Object") => Some(Self::Object),
            Some(_) => None,
        }
    }
}

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
    fn new(name: &str, kind: &str, description: &str, source: CellSource) -> Self {
        Self {
            name: name.to_owned(),
            kind: kind.to_owned(),
            format: String::new(),
            description: description.to_owned(),
            priority: 0,
            source,
        }
    }

    fn wide(mut self) -> Self {
        self.priority = 1;
        self
    }

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

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATED_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

fn name_column() -> ColumnDef {
    ColumnDef::new("Name", "string", NAME_DESC, CellSource::Name).format("name")
}

fn age_column() -> ColumnDef {
    ColumnDef::new("Age", "string", CREATED_DESC, CellSource::Age)
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
            ColumnDef::new(
                "Containers",
                "string",
                "Names of each container in the template.",
                CellSource::Containers,
            )
            .wide(),
            ColumnDef::new(
                "Images",
                "string",
                "Images referenced by each container in the template.",
                CellSource::Images,
            )
            .wide(),
            ColumnDef::new(
                "Selector",
                "string",
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
                CellSource::Selector,
            )
            .wide(),
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
            ColumnDef::new(
                "Containers",
                "string",
                "Names of each container in the template.",
                CellSource::Containers,
            )
            .wide(),
            ColumnDef::new(
                "Images",
                "string",
                "Images referenced by each container in the template.",
                CellSource::Images,
            )
            .wide(),
            ColumnDef::new(
                "Selector",
                "string",
                "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
                CellSource::Selector,
            )
            .wide(),
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
            ColumnDef::new("Name", "string", NAME_DESC, CellSource::Name)
                .format("name")
                .wide(),
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
    let version_spec = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| vs.iter().find(|v| v.get("name").and_then(Value::as_str) == Some(version)));
    let printer = version_spec
        .and_then(|v| v.get("additionalPrinterColumns"))
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
    match Some(printer_columns).filter(|cols| !cols.is_empty()) {
        Some(cols) => {
            for col in cols {
                let s = |key: &str| col.get(key).and_then(Value::as_str).unwrap_or("");
                let path = s("jsonPath");
                let description = match s("description") {
                    "" => format!("Custom resource definition column (in JSONPath format): {path}"),
                    d => d.to_owned(),
                };
                columns.push(ColumnDef {
                    name: s("name").to_owned(),
                    kind: s("type").to_owned(),
                    format: s("format").to_owned(),
                    description,
                    priority: col.get("priority").and_then(Value::as_i64).unwrap_or(0),
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

/// The `Table` for `objects` with `columns`. `resource_version` goes to the
/// table's `metadata.resourceVersion` (the list's, or the object's on a GET).
pub fn table(
    columns: &[ColumnDef],
    objects: &[Value],
    resource_version: &str,
    include_object: IncludeObject,
    now_ms: u64,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = columns.iter().map(|c| cell(c, obj, now_ms)).collect();
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(cells));
            match include_object {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    row.insert(
                        "object".into(),
                        json!({
                            "kind": "PartialObjectMetadata",
                            "apiVersion": "meta.k8s.io/v1",
                            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                        }),
                    );
                }
                IncludeObject::Object => {
                    row.insert("object".into(), obj.clone());
                }
            }
            Value::Object(row)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns.iter().map(ColumnDef::definition).collect::<Vec<_>>(),
        "rows": rows,
    })
}

/// [`table`] with the list's whole `metadata` (resourceVersion, continue,
/// remainingItemCount) as the table's metadata.
pub fn table_with_list_meta(
    columns: &[ColumnDef],
    objects: &[Value],
    list_meta: &Value,
    include_object: IncludeObject,
    now_ms: u64,
) -> Value {
    let mut t = table(columns, objects, "", include_object, now_ms);
    if let Some(m) = t.as_object_mut() {
        let meta = match list_meta {
            Value::Object(_) => list_meta.clone(),
            _ => json!({}),
        };
        m.insert("metadata".into(), meta);
    }
    t
}

// ---------------------------------------------------------------- cells

/// The first non-empty string among the pointers, or "".
fn first_str<'a>(obj: &'a Value, pointers: &[&str]) -> &'a str {
    pointers.iter().map(|p| str_at(obj, p)).find(|s| !s.is_empty()).unwrap_or("")
}

fn none_if_empty(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse::<jiff::Timestamp>().ok()
}

/// Age of an RFC 3339 timestamp at `now_ms`, `<unknown>` when absent.
fn age_of(timestamp: &str, now_ms: u64) -> String {
    if timestamp.is_empty() {
        return "<unknown>".to_owned();
    }
    match parse_time(timestamp) {
        Some(t) => {
            let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
            human_duration_ms(now.saturating_sub(t.as_millisecond()))
        }
        None => "<invalid>".to_owned(),
    }
}

/// Kubernetes' `duration.HumanDuration` of a duration in milliseconds.
pub fn human_duration_ms(ms: i64) -> String {
    let seconds = ms / 1000;
    if seconds < -1 {
        return "<invalid>".to_owned();
    } else if seconds < 0 {
        return "0s".to_owned();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn containers(obj: &Value) -> Vec<&Value> {
    obj.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().collect())
        .unwrap_or_default()
}

/// A LabelSelector as its string form (`app=web,tier in (a,b)`).
pub fn selector_string(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return "<none>".to_owned();
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
    }
    if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let mut values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            values.sort_unstable();
            let list = values.join(",");
            parts.push(match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => format!("{key} in ({list})"),
                "NotIn" => format!("{key} notin ({list})"),
                "Exists" => key.to_owned(),
                "DoesNotExist" => format!("!{key}"),
                other => format!("{key} {other} ({list})"),
            });
        }
    }
    // The selector string sorts its requirements by key.
    parts.sort_by(|a, b| requirement_key(a).cmp(requirement_key(b)));
    parts.join(",")
}

fn requirement_key(requirement: &str) -> &str {
    let trimmed = requirement.trim_start_matches('!');
    trimmed.split(['=', ' ']).next().unwrap_or(trimmed)
}

fn cell(column: &ColumnDef, obj: &Value, now_ms: u64) -> Value {
    match &column.source {
        CellSource::Name => json!(str_at(obj, "/metadata/name")),
        CellSource::Age => json!(age_of(str_at(obj, "/metadata/creationTimestamp"), now_ms)),
        CellSource::CreatedAt => {
            let ts = str_at(obj, "/metadata/creationTimestamp");
            match parse_time(ts) {
                Some(t) => json!(
                    jiff::Timestamp::from_second(t.as_second())
                        .unwrap_or(t)
                        .strftime("%Y-%m-%dT%H:%M:%SZ")
                        .to_string()
                ),
                None => json!("0001-01-01T00:00:00Z"),
            }
        }
        CellSource::JsonPath(path) => json_path_cell(&column.kind, path, obj, now_ms),
        CellSource::DeploymentReady => json!(format!(
            "{}/{}",
            int_at(obj, "/status/readyReplicas"),
            obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
        )),
        CellSource::DeploymentUpToDate => json!(int_at(obj, "/status/updatedReplicas")),
        CellSource::DeploymentAvailable => json!(int_at(obj, "/status/availableReplicas")),
        CellSource::Containers => {
            json!(containers(obj).iter().map(|c| str_at(c, "/name")).collect::<Vec<_>>().join(","))
        }
        CellSource::Images => {
            json!(containers(obj).iter().map(|c| str_at(c, "/image")).collect::<Vec<_>>().join(","))
        }
        CellSource::Selector => json!(selector_string(obj.pointer("/spec/selector"))),
        CellSource::ConfigMapData => {
            let n = |key: &str| obj.get(key).and_then(Value::as_object).map_or(0, Map::len);
            json!(n("data") + n("binaryData"))
        }
        CellSource::NamespaceStatus => json!(str_at(obj, "/status/phase")),
        CellSource::LeaseHolder => json!(str_at(obj, "/spec/holderIdentity")),
        // Core v1 field names first, then their events.k8s.io/v1 names.
        CellSource::EventLastSeen => json!(age_of(
            first_str(
                obj,
                &[
                    "/series/lastObservedTime",
                    "/lastTimestamp",
                    "/deprecatedLastTimestamp",
                    "/eventTime",
                ]
            ),
            now_ms
        )),
        CellSource::EventFirstSeen => json!(age_of(
            first_str(obj, &["/firstTimestamp", "/deprecatedFirstTimestamp", "/eventTime"]),
            now_ms
        )),
        CellSource::EventType => json!(str_at(obj, "/type")),
        CellSource::EventReason => json!(str_at(obj, "/reason")),
        CellSource::EventObject => json!(format!(
            "{}/{}",
            first_str(obj, &["/involvedObject/kind", "/regarding/kind"]).to_lowercase(),
            first_str(obj, &["/involvedObject/name", "/regarding/name"])
        )),
        CellSource::EventSubobject => {
            json!(first_str(obj, &["/involvedObject/fieldPath", "/regarding/fieldPath"]))
        }
        CellSource::EventSource => {
            let component = first_str(
                obj,
                &[
                    "/source/component",
                    "/deprecatedSource/component",
                    "/reportingComponent",
                    "/reportingController",
                ],
            );
            let instance =
                first_str(obj, &["/source/host", "/deprecatedSource/host", "/reportingInstance"]);
            json!(if instance.is_empty() {
                component.to_owned()
            } else {
                format!("{component}, {instance}")
            })
        }
        CellSource::EventMessage => json!(first_str(obj, &["/message", "/note"]).trim()),
        CellSource::EventCount => json!(
            obj.pointer("/series/count")
                .and_then(Value::as_i64)
                .or_else(|| obj.pointer("/count").and_then(Value::as_i64))
                .unwrap_or_else(|| int_at(obj, "/deprecatedCount"))
        ),
        CellSource::ReplicaSetDesired => {
            json!(obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1))
        }
        CellSource::ReplicaSetCurrent => json!(int_at(obj, "/status/replicas")),
        CellSource::ReplicaSetReady => json!(int_at(obj, "/status/readyReplicas")),
        CellSource::PodReady => {
            let total =
                obj.pointer("/spec/containers").and_then(Value::as_array).map_or(0, Vec::len);
            let ready = obj.pointer("/status/containerStatuses").and_then(Value::as_array).map_or(
                0,
                |cs| {
                    cs.iter()
                        .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                        .count()
                },
            );
            json!(format!("{ready}/{total}"))
        }
        CellSource::PodStatus => {
            let waiting =
                obj.pointer("/status/containerStatuses").and_then(Value::as_array).and_then(|cs| {
                    cs.iter()
                        .filter_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str))
                        .find(|r| !r.is_empty())
                });
            let status = if obj.pointer("/metadata/deletionTimestamp").is_some() {
                "Terminating"
            } else {
                waiting.unwrap_or_else(|| first_str(obj, &["/status/reason", "/status/phase"]))
            };
            json!(status)
        }
        CellSource::PodRestarts => json!(
            obj.pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .map_or(0, |cs| {
                    cs.iter()
                        .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                        .sum::<i64>()
                })
                .to_string()
        ),
        CellSource::PodIp => json!(none_if_empty(str_at(obj, "/status/podIP"))),
        CellSource::PodNode => json!(none_if_empty(str_at(obj, "/spec/nodeName"))),
        CellSource::PodNominatedNode => {
            json!(none_if_empty(str_at(obj, "/status/nominatedNodeName")))
        }
        CellSource::PodReadinessGates => {
            let gates =
                obj.pointer("/spec/readinessGates").and_then(Value::as_array).map_or(0, Vec::len);
            json!(if gates == 0 { "<none>".to_owned() } else { format!("0/{gates}") })
        }
    }
}

/// A CRD printer column cell: `null` when the path finds nothing; `string`
/// columns print any value as JSONPath text does; `date` columns render the
/// age of the timestamp.
fn json_path_cell(kind: &str, path: &str, obj: &Value, now_ms: u64) -> Value {
    let Some(value) = eval_json_path(obj, path) else {
        return Value::Null;
    };
    match kind {
        "string" => json!(jsonpath_text(value)),
        "integer" => match value {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map_or(Value::Null, |i| json!(i)),
            _ => Value::Null,
        },
        "number" => match value {
            Value::Number(n) => n.as_f64().map_or(Value::Null, |f| json!(f)),
            _ => Value::Null,
        },
        "boolean" => match value {
            Value::Bool(b) => json!(b),
            _ => Value::Null,
        },
        "date" => match value {
            Value::String(s) => match parse_time(s) {
                Some(_) => json!(age_of(s, now_ms)),
                None => json!("<invalid>"),
            },
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

/// Text of a JSONPath result as kubectl's JSONPath printer writes it (Go's
/// `fmt.Print` of the value).
fn jsonpath_text(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            format!("[{}]", items.iter().map(jsonpath_text).collect::<Vec<_>>().join(" "))
        }
        Value::Object(map) => format!(
            "map[{}]",
            map.iter()
                .map(|(k, v)| format!("{k}:{}", jsonpath_text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// One step of a simple JSONPath.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(i64),
}

/// Parses `.a.b[0].c`, `.metadata.labels.app\.kubernetes\.io/name`,
/// `.a['b.c']`, optionally wrapped in `{}`.
fn parse_json_path(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path.strip_prefix('{').and_then(|p| p.strip_suffix('}')).unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let chars: Vec<char> = path.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let mut key = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    key.push(chars[i]);
                    i += 1;
                }
                if !key.is_empty() {
                    steps.push(Step::Key(key));
                }
            }
            '[' => {
                let close = chars[i..].iter().position(|c| *c == ']')? + i;
                let inner: String = chars[i + 1..close].iter().collect();
                let inner = inner.trim();
                if let Some(quoted) = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                {
                    steps.push(Step::Key(quoted.to_owned()));
                } else {
                    steps.push(Step::Index(inner.parse().ok()?));
                }
                i = close + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

/// Evaluates a simple JSONPath; `None` when it finds nothing.
pub fn eval_json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let steps = parse_json_path(path)?;
    let mut current = obj;
    for step in &steps {
        current = match step {
            Step::Key(k) => current.get(k)?,
            Step::Index(i) => {
                let items = current.as_array()?;
                let len = i64::try_from(items.len()).ok()?;
                let idx = if *i < 0 { len + i } else { *i };
                items.get(usize::try_from(idx).ok()?)?
            }
        };
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2025-01-01T00:10:00Z
    const NOW: u64 = 1_735_690_200_000;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "servicerefreshes.gisops.io"},
            "spec": {"group": "gisops.io", "versions": [{
                "name": "v1alpha1", "served": true, "storage": true,
                "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Progress", "type": "string", "jsonPath": ".status.progress", "description": "ready/total"},
                    {"name": "Failed", "type": "integer", "jsonPath": ".status.totals.failed"},
                    {"name": "First", "type": "string", "jsonPath": ".status.batches[0].phase", "priority": 1},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ]
            }]}
        })
    }

    fn sr() -> Value {
        json!({
            "apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
            "metadata": {"name": "nightly", "namespace": "arcgis", "creationTimestamp": "2025-01-01T00:06:48Z",
                         "resourceVersion": "42", "labels": {"a": "b"}},
            "spec": {"selector": {}},
            "status": {"phase": "Running", "progress": "3/10", "totals": {"failed": 1},
                       "batches": [{"phase": "Succeeded"}, {"phase": "Running"}]}
        })
    }

    #[test]
    fn human_durations_match_kubernetes() {
        let s = |secs: i64| human_duration_ms(secs * 1000);
        assert_eq!(s(-5), "<invalid>");
        assert_eq!(human_duration_ms(-1500), "0s");
        assert_eq!(s(0), "0s");
        assert_eq!(s(5), "5s");
        assert_eq!(s(119), "119s");
        assert_eq!(s(120), "2m");
        assert_eq!(s(192), "3m12s");
        assert_eq!(s(600), "10m");
        assert_eq!(s(3 * 3600 - 1), "179m");
        assert_eq!(s(3 * 3600), "3h");
        assert_eq!(s(3 * 3600 + 25 * 60), "3h25m");
        assert_eq!(s(8 * 3600), "8h");
        assert_eq!(s(47 * 3600), "47h");
        assert_eq!(s(51 * 3600), "2d3h");
        assert_eq!(s(10 * 86400), "10d");
        assert_eq!(s(800 * 86400), "2y70d");
        assert_eq!(s(9 * 365 * 86400), "9y");
    }

    #[test]
    fn json_path_evaluation() {
        let obj = sr();
        assert_eq!(eval_json_path(&obj, ".status.phase"), Some(&json!("Running")));
        assert_eq!(eval_json_path(&obj, ".status.totals.failed"), Some(&json!(1)));
        assert_eq!(eval_json_path(&obj, ".status.batches[1].phase"), Some(&json!("Running")));
        assert_eq!(eval_json_path(&obj, ".status.batches[-1].phase"), Some(&json!("Running")));
        assert_eq!(eval_json_path(&obj, "{.metadata.labels.a}"), Some(&json!("b")));
        assert_eq!(eval_json_path(&obj, ".metadata['labels']['a']"), Some(&json!("b")));
        assert_eq!(eval_json_path(&obj, ".status.batches[5].phase"), None);
        assert_eq!(eval_json_path(&obj, ".status.nothing"), None);
        let dotted = json!({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}});
        assert_eq!(
            eval_json_path(&dotted, ".metadata.labels.app\\.kubernetes\\.io/name"),
            Some(&json!("x"))
        );
    }

    #[test]
    fn crd_table_rows() {
        let cols = columns_for_crd(&crd(), "v1alpha1");
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Name", "Phase", "Progress", "Failed", "First", "Age"]);
        let mut pending = sr();
        pending["metadata"]["name"] = json!("fresh");
        pending.as_object_mut().unwrap().remove("status");
        let t = table(&cols, &[sr(), pending], "77", IncludeObject::Metadata, NOW);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"]["resourceVersion"], "77");
        assert_eq!(
            t["columnDefinitions"][0],
            json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESC, "priority": 0})
        );
        assert_eq!(
            t["columnDefinitions"][1]["description"],
            "Custom resource definition column (in JSONPath format): .status.phase"
        );
        assert_eq!(t["columnDefinitions"][2]["description"], "ready/total");
        assert_eq!(t["columnDefinitions"][4]["priority"], 1);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["nightly", "Running", "3/10", 1, "Succeeded", "3m12s"])
        );
        assert_eq!(t["rows"][1]["cells"], json!(["fresh", null, null, null, null, "3m12s"]));
        assert_eq!(
            t["rows"][0]["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": sr()["metadata"]})
        );
        let full = table(&cols, &[sr()], "77", IncludeObject::Object, NOW);
        assert_eq!(full["rows"][0]["object"], sr());
        let none = table(&cols, &[sr()], "77", IncludeObject::None, NOW);
        assert_eq!(none["rows"][0].get("object"), None);
        let empty = table(&cols, &[], "77", IncludeObject::Metadata, NOW);
        assert_eq!(empty["rows"], json!([]));
    }

    #[test]
    fn crd_without_printer_columns_gets_age() {
        let mut c = crd();
        c["spec"]["versions"][0].as_object_mut().unwrap().remove("additionalPrinterColumns");
        let cols = columns_for_crd(&c, "v1alpha1");
        let t = table(&cols, &[sr()], "1", IncludeObject::None, NOW);
        assert_eq!(t["columnDefinitions"][1]["name"], "Age");
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert_eq!(t["rows"][0]["cells"], json!(["nightly", "3m12s"]));
    }

    #[test]
    fn string_columns_print_any_value() {
        let obj = json!({"status": {"n": 5, "m": {"a": 1}, "flag": true}});
        assert_eq!(json_path_cell("string", ".status.n", &obj, NOW), json!("5"));
        assert_eq!(json_path_cell("string", ".status.m", &obj, NOW), json!("map[a:1]"));
        assert_eq!(json_path_cell("boolean", ".status.flag", &obj, NOW), json!(true));
        assert_eq!(json_path_cell("integer", ".status.flag", &obj, NOW), Value::Null);
        assert_eq!(json_path_cell("date", ".status.n", &obj, NOW), Value::Null);
        let bad = json!({"t": "yesterday"});
        assert_eq!(json_path_cell("date", ".t", &bad, NOW), json!("<invalid>"));
    }

    #[test]
    fn deployment_rows() {
        let d = json!({
            "metadata": {"name": "web", "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"replicas": 3,
                     "selector": {"matchLabels": {"tier": "front", "app": "web"},
                                  "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]},
                     "template": {"spec": {"containers": [
                         {"name": "web", "image": "nginx:1"}, {"name": "sidecar", "image": "envoy:2"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        let cols = columns_for_builtin("deployments");
        let t = table(&cols, &[d], "5", IncludeObject::Metadata, NOW);
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "web",
                "2/3",
                3,
                2,
                "10m",
                "web,sidecar",
                "nginx:1,envoy:2",
                "app=web,env in (dev,prod),tier=front"
            ])
        );
        let priorities: Vec<i64> = cols.iter().map(|c| c.priority).collect();
        assert_eq!(priorities, [0, 0, 0, 0, 0, 1, 1, 1]);
        assert_eq!(t["columnDefinitions"][2]["name"], "Up-to-date");
        // A new Deployment without status.
        let fresh = json!({"metadata": {"name": "n"}, "spec": {}});
        let t = table(&cols[..5], &[fresh], "5", IncludeObject::None, NOW);
        assert_eq!(t["rows"][0]["cells"], json!(["n", "0/1", 0, 0, "<unknown>"]));
    }

    #[test]
    fn other_builtin_rows() {
        let cm = json!({"metadata": {"name": "proxy", "creationTimestamp": "2025-01-01T00:09:55Z"},
                        "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        let t = table(&columns_for_builtin("configmaps"), &[cm], "1", IncludeObject::None, NOW);
        assert_eq!(t["rows"][0]["cells"], json!(["proxy", 3, "5s"]));

        let ns = json!({"metadata": {"name": "arcgis", "creationTimestamp": "2024-12-30T21:10:00Z"},
                        "status": {"phase": "Active"}});
        let t = table(&columns_for_builtin("namespaces"), &[ns], "1", IncludeObject::None, NOW);
        assert_eq!(t["rows"][0]["cells"], json!(["arcgis", "Active", "27h"]));

        let lease = json!({"metadata": {"name": "servicerefresh", "creationTimestamp": "2025-01-01T00:00:00Z"},
                           "spec": {"holderIdentity": "pod-1"}});
        let t = table(&columns_for_builtin("leases"), &[lease], "1", IncludeObject::None, NOW);
        assert_eq!(t["rows"][0]["cells"], json!(["servicerefresh", "pod-1", "10m"]));

        let crd = json!({"metadata": {"name": "servicerefreshes.gisops.io",
                                      "creationTimestamp": "2025-01-01T00:00:00Z"}});
        let cols = columns_for_builtin("customresourcedefinitions");
        assert_eq!(cols[1].name, "Created At");
        let t = table(&cols, &[crd], "1", IncludeObject::None, NOW);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["servicerefreshes.gisops.io", "2025-01-01T00:00:00Z"])
        );
    }

    #[test]
    fn event_rows() {
        let ev = json!({
            "metadata": {"name": "nightly.1811", "creationTimestamp": "2025-01-01T00:00:00Z"},
            "involvedObject": {"kind": "ServiceRefresh", "name": "nightly", "namespace": "arcgis"},
            "reason": "BatchStarted", "message": "Batch 1/3 started ", "type": "Normal",
            "firstTimestamp": "2025-01-01T00:05:00Z", "lastTimestamp": "2025-01-01T00:09:30Z",
            "count": 2, "source": {"component": "servicerefresh"}
        });
        let cols = columns_for_builtin("events");
        let t = table(&cols, &[ev], "1", IncludeObject::None, NOW);
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "30s",
                "Normal",
                "BatchStarted",
                "servicerefresh/nightly",
                "",
                "servicerefresh",
                "Batch 1/3 started",
                "5m",
                2,
                "nightly.1811"
            ])
        );
        assert_eq!(cols[0].name, "Last Seen");
        assert_eq!(cols[9].format, "name");
        // events.k8s.io-style: eventTime and reporting fields only.
        let ev2 = json!({"metadata": {"name": "e"}, "eventTime": "2025-01-01T00:09:00.000000Z",
                         "involvedObject": {"kind": "Deployment", "name": "web"},
                         "reportingComponent": "ctrl", "reportingInstance": "pod-1"});
        let t = table(&cols, &[ev2], "1", IncludeObject::None, NOW);
        assert_eq!(t["rows"][0]["cells"][0], "60s");
        assert_eq!(t["rows"][0]["cells"][3], "deployment/web");
        assert_eq!(t["rows"][0]["cells"][5], "ctrl, pod-1");
        assert_eq!(t["rows"][0]["cells"][7], "60s");
    }

    #[test]
    fn list_meta_is_kept() {
        let cols = columns_for_printer_columns(&[]);
        assert_eq!(cols.len(), 2);
        let t = table_with_list_meta(
            &cols,
            &[sr()],
            &json!({"resourceVersion": "9", "continue": "abc", "remainingItemCount": 3}),
            IncludeObject::Metadata,
            NOW,
        );
        assert_eq!(
            t["metadata"],
            json!({"resourceVersion": "9", "continue": "abc", "remainingItemCount": 3})
        );
        assert_eq!(t["rows"][0]["cells"], json!(["nightly", "3m12s"]));
    }

    /// The real kubectl prints these tables.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kubectl_get_prints_the_tables() {
        use crate::openapi::kubectl_harness::{Kubectl, crd as project_crd, json_response};
        use axum::http::HeaderMap;
        use axum::routing::get;

        let sr_table = |headers: HeaderMap| async move {
            let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or("");
            assert!(accept.contains("as=Table;v=v1;g=meta.k8s.io"), "{accept}");
            let cols = columns_for_crd(&project_crd(), "v1alpha1");
            let mut fresh = sr();
            fresh["metadata"]["name"] = json!("fresh");
            fresh.as_object_mut().map(|m| m.remove("status"));
            json_response(table(&cols, &[sr(), fresh], "77", IncludeObject::Metadata, NOW))
        };
        let deploy_table = || async {
            let d = json!({
                "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2025-01-01T00:00:00Z",
                             "labels": {"app": "web"}},
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}},
                "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
            });
            json_response(table(
                &columns_for_builtin("deployments"),
                &[d],
                "5",
                IncludeObject::Metadata,
                NOW,
            ))
        };
        let routes = axum::Router::new()
            .route("/apis/gisops.io/v1alpha1/namespaces/{ns}/servicerefreshes", get(sr_table))
            .route("/apis/apps/v1/namespaces/{ns}/deployments", get(deploy_table));
        let Some(k) = Kubectl::start(routes).await else {
            return;
        };
        let (ok, out, err) = k.run(&["get", "servicerefreshes"]).await;
        assert!(ok, "{err}");
        let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines[0], ["NAME", "PHASE", "PROGRESS", "BATCH", "FAILED", "AGE"], "{out}");
        // Missing values (null cells) print blank, as with a real server.
        assert_eq!(lines[1], ["nightly", "Running", "3/10", "1", "3m12s"], "{out}");
        assert_eq!(lines[2], ["fresh", "3m12s"], "{out}");

        let (ok, out, err) = k.run(&["get", "sref", "--show-labels"]).await;
        assert!(ok, "{err}");
        assert!(out.lines().nth(1).is_some_and(|l| l.ends_with("a=b")), "{out}");

        let (ok, out, err) = k.run(&["get", "deploy", "-o", "wide"]).await;
        assert!(ok, "{err}");
        let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(
            lines[0],
            ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
            "{out}"
        );
        assert_eq!(lines[1], ["web", "2/3", "3", "2", "10m", "web", "nginx:1", "app=web"], "{out}");
    }

    #[test]
    fn events_k8s_io_and_workload_rows() {
        let ev = json!({
            "metadata": {"name": "e2"},
            "regarding": {"kind": "Deployment", "name": "web"},
            "note": "Scaled up", "reason": "ScalingReplicaSet", "type": "Normal",
            "deprecatedLastTimestamp": "2025-01-01T00:09:50Z", "deprecatedCount": 3,
            "reportingController": "deployment-controller"
        });
        let t = table(&columns_for_builtin("events"), &[ev], "1", IncludeObject::None, NOW);
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "10s",
                "Normal",
                "ScalingReplicaSet",
                "deployment/web",
                "",
                "deployment-controller",
                "Scaled up",
                "<unknown>",
                3,
                "e2"
            ])
        );
        let rs = json!({"metadata": {"name": "web-5d8f9c7b6", "creationTimestamp": "2025-01-01T00:00:00Z"},
                        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                                 "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}},
                        "status": {"replicas": 3, "readyReplicas": 2}});
        let t = table(&columns_for_builtin("replicasets"), &[rs], "1", IncludeObject::None, NOW);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web-5d8f9c7b6", 3, 3, 2, "10m", "web", "nginx:1", "app=web"])
        );
        let pod = json!({"metadata": {"name": "web-5d8f9c7b6-abcde", "creationTimestamp": "2025-01-01T00:09:00Z"},
                         "spec": {"containers": [{"name": "web"}, {"name": "proxy"}]},
                         "status": {"phase": "Running", "podIP": "10.0.0.7", "containerStatuses": [
                             {"name": "web", "ready": true, "restartCount": 1},
                             {"name": "proxy", "ready": false, "restartCount": 2,
                              "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        let t = table(&columns_for_builtin("pods"), &[pod], "1", IncludeObject::None, NOW);
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "web-5d8f9c7b6-abcde",
                "1/2",
                "CrashLoopBackOff",
                "3",
                "60s",
                "10.0.0.7",
                "<none>",
                "<none>",
                "<none>"
            ])
        );
    }

    #[test]
    fn include_object_query() {
        assert_eq!(IncludeObject::from_query(None), Some(IncludeObject::Metadata));
        assert_eq!(IncludeObject::from_query(Some("Object")), Some(IncludeObject::Object));
        assert_eq!(IncludeObject::from_query(Some("None")), Some(IncludeObject::None));
        assert_eq!(IncludeObject::from_query(Some("bogus")), None);
    }
}
