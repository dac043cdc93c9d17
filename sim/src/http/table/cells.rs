//! Table cells: each column's value for one object, the human-readable
//! ages (`duration.HumanDuration`), label-selector strings, and CRD printer
//! columns evaluated through their JSONPath.

use serde_json::{Map, Value, json};

use super::columns::{CellSource, ColumnDef};
use super::jsonpath::eval_json_path;

/// The first non-empty string among the pointers, or "".
fn first_str<'a>(object: &'a Value, pointers: &[&str]) -> &'a str {
    pointers
        .iter()
        .map(|pointer| str_at(object, pointer))
        .find(|text| !text.is_empty())
        .unwrap_or("")
}

fn none_if_empty(text: &str) -> &str {
    if text.is_empty() { "<none>" } else { text }
}

fn str_at<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn int_at(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    text.parse::<jiff::Timestamp>().ok()
}

/// An `IntOrString` as the printers show it, `N/A` when unset.
fn int_or_string(object: &Value, pointer: &str) -> String {
    match object.pointer(pointer) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => "N/A".to_owned(),
    }
}

/// The printers' External-IP of a Service (`getServiceExternalIP`).
fn service_external_ip(service: &Value) -> String {
    let external_ips: Vec<&str> = service
        .pointer("/spec/externalIPs")
        .and_then(Value::as_array)
        .map(|ips| ips.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match str_at(service, "/spec/type") {
        "ExternalName" => str_at(service, "/spec/externalName").to_owned(),
        "LoadBalancer" => {
            let mut ips: Vec<String> = service
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .map(|ingress| {
                    ingress
                        .iter()
                        .map(|entry| first_str(entry, &["/ip", "/hostname"]).to_owned())
                        .filter(|ip| !ip.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            ips.extend(external_ips.iter().map(|ip| (*ip).to_owned()));
            if ips.is_empty() { "<pending>".to_owned() } else { ips.join(",") }
        }
        _ if !external_ips.is_empty() => external_ips.join(","),
        _ => "<none>".to_owned(),
    }
}

/// The printers' Port(s) of a Service: `port[:nodePort]/protocol`.
fn service_ports(service: &Value) -> String {
    let ports: Vec<String> = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|port| {
            let protocol = str_at(port, "/protocol");
            match int_at(port, "/nodePort") {
                0 => format!("{}/{protocol}", int_at(port, "/port")),
                node_port => format!("{}:{node_port}/{protocol}", int_at(port, "/port")),
            }
        })
        .collect();
    none_if_empty(&ports.join(",")).to_owned()
}

/// Age of an RFC 3339 timestamp at `now_ms`, `<unknown>` when absent.
fn age_of(timestamp: &str, now_ms: u64) -> String {
    if timestamp.is_empty() {
        return "<unknown>".to_owned();
    }
    match parse_time(timestamp) {
        Some(time) => {
            let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
            human_duration_ms(now.saturating_sub(time.as_millisecond()))
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
        return two_units(minutes, "m", seconds % 60, "s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    let days = hours / 24;
    let years = days / 365;
    if hours < 8 {
        two_units(hours, "h", minutes % 60, "m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        two_units(days, "d", hours % 24, "h")
    } else if hours < 24 * 365 * 2 {
        format!("{days}d")
    } else if hours < 24 * 365 * 8 {
        two_units(years, "y", days % 365, "d")
    } else {
        format!("{years}y")
    }
}

/// `<major><unit>`, followed by `<minor><unit>` unless the minor part is 0.
fn two_units(major: i64, major_unit: &str, minor: i64, minor_unit: &str) -> String {
    if minor == 0 {
        format!("{major}{major_unit}")
    } else {
        format!("{major}{major_unit}{minor}{minor_unit}")
    }
}

/// One field of every container of the pod template, comma-separated.
fn template_containers_field(object: &Value, pointer: &str) -> String {
    let containers = object.pointer("/spec/template/spec/containers").and_then(Value::as_array);
    let values: Vec<&str> = containers
        .map(|containers| containers.iter().map(|container| str_at(container, pointer)).collect())
        .unwrap_or_default();
    values.join(",")
}

/// A LabelSelector as its string form (`app=web,tier in (a,b)`).
pub fn selector_string(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return "<none>".to_owned();
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (key, value) in labels {
            parts.push(format!("{key}={}", value.as_str().unwrap_or("")));
        }
    }
    if let Some(expressions) = selector.get("matchExpressions").and_then(Value::as_array) {
        for expression in expressions {
            let key = expression.get("key").and_then(Value::as_str).unwrap_or("");
            let mut values: Vec<&str> = expression
                .get("values")
                .and_then(Value::as_array)
                .map(|values| values.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            values.sort_unstable();
            let list = values.join(",");
            parts.push(match expression.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => format!("{key} in ({list})"),
                "NotIn" => format!("{key} notin ({list})"),
                "Exists" => key.to_owned(),
                "DoesNotExist" => format!("!{key}"),
                other => format!("{key} {other} ({list})"),
            });
        }
    }
    // The selector string sorts its requirements by key.
    parts.sort_by(|left, right| requirement_key(left).cmp(requirement_key(right)));
    parts.join(",")
}

fn requirement_key(requirement: &str) -> &str {
    let trimmed = requirement.trim_start_matches('!');
    trimmed.split(['=', ' ']).next().unwrap_or(trimmed)
}

/// A ControllerRevision's controller as `kind.group/name` (lower-case
/// kind and group, as `formatResourceName` prints a GroupKind).
fn revision_controller(revision: &Value) -> String {
    let controller = revision
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|references| {
            references.iter().find(|reference| reference["controller"].as_bool() == Some(true))
        });
    let Some(controller) = controller else {
        return "<none>".to_owned();
    };
    let kind = str_at(controller, "/kind");
    let api_version = str_at(controller, "/apiVersion");
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    let group_kind = if group.is_empty() { kind.to_owned() } else { format!("{kind}.{group}") };
    if group_kind.is_empty() {
        return str_at(controller, "/name").to_owned();
    }
    format!("{}/{}", group_kind.to_lowercase(), str_at(controller, "/name"))
}

/// The cell of `column` for `object`, ages computed at `now_ms`.
pub fn cell(column: &ColumnDef, object: &Value, now_ms: u64) -> Value {
    match &column.source {
        CellSource::Name => json!(str_at(object, "/metadata/name")),
        CellSource::Age => json!(age_of(str_at(object, "/metadata/creationTimestamp"), now_ms)),
        CellSource::CreatedAt => {
            let created = str_at(object, "/metadata/creationTimestamp");
            match parse_time(created) {
                Some(time) => json!(
                    jiff::Timestamp::from_second(time.as_second())
                        .unwrap_or(time)
                        .strftime("%Y-%m-%dT%H:%M:%SZ")
                        .to_string()
                ),
                None => json!("0001-01-01T00:00:00Z"),
            }
        }
        CellSource::JsonPath(path) => json_path_cell(&column.kind, path, object, now_ms),
        CellSource::DeploymentReady => json!(format!(
            "{}/{}",
            int_at(object, "/status/readyReplicas"),
            object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
        )),
        CellSource::DeploymentUpToDate => json!(int_at(object, "/status/updatedReplicas")),
        CellSource::DeploymentAvailable => json!(int_at(object, "/status/availableReplicas")),
        CellSource::Containers => json!(template_containers_field(object, "/name")),
        CellSource::Images => json!(template_containers_field(object, "/image")),
        CellSource::Selector => json!(selector_string(object.pointer("/spec/selector"))),
        CellSource::ConfigMapData => {
            let entries =
                |key: &str| object.get(key).and_then(Value::as_object).map_or(0, Map::len);
            json!(entries("data") + entries("binaryData"))
        }
        CellSource::SecretType => json!(str_at(object, "/type")),
        CellSource::SecretData => {
            json!(object.get("data").and_then(Value::as_object).map_or(0, Map::len))
        }
        CellSource::ServiceType => json!(str_at(object, "/spec/type")),
        CellSource::ServiceClusterIp => json!(none_if_empty(str_at(object, "/spec/clusterIP"))),
        CellSource::ServiceExternalIp => json!(service_external_ip(object)),
        CellSource::ServicePorts => json!(service_ports(object)),
        CellSource::ServiceSelector => {
            let selector = object.pointer("/spec/selector").and_then(Value::as_object);
            let pairs: Vec<String> = selector
                .into_iter()
                .flatten()
                .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or("")))
                .collect();
            json!(none_if_empty(&pairs.join(",")))
        }
        CellSource::BudgetMinAvailable => json!(int_or_string(object, "/spec/minAvailable")),
        CellSource::BudgetMaxUnavailable => json!(int_or_string(object, "/spec/maxUnavailable")),
        CellSource::BudgetAllowedDisruptions => json!(int_at(object, "/status/disruptionsAllowed")),
        CellSource::Int(pointer) => json!(int_at(object, pointer)),
        CellSource::NodeSelector => {
            let selector = object.pointer("/spec/template/spec/nodeSelector");
            let mut pairs: Vec<String> = selector
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or("")))
                .collect();
            // `labels.FormatLabels` sorts by key.
            pairs.sort();
            json!(none_if_empty(&pairs.join(",")))
        }
        CellSource::RevisionController => json!(revision_controller(object)),
        CellSource::NamespaceStatus => json!(str_at(object, "/status/phase")),
        CellSource::Node(node_cell) => super::nodes::cell(object, *node_cell),
        CellSource::LeaseHolder => json!(str_at(object, "/spec/holderIdentity")),
        // Core v1 field names first, then their events.k8s.io/v1 names.
        CellSource::EventLastSeen => json!(age_of(
            first_str(
                object,
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
            first_str(object, &["/firstTimestamp", "/deprecatedFirstTimestamp", "/eventTime"]),
            now_ms
        )),
        CellSource::EventType => json!(str_at(object, "/type")),
        CellSource::EventReason => json!(str_at(object, "/reason")),
        CellSource::EventObject => json!(format!(
            "{}/{}",
            first_str(object, &["/involvedObject/kind", "/regarding/kind"]).to_lowercase(),
            first_str(object, &["/involvedObject/name", "/regarding/name"])
        )),
        CellSource::EventSubobject => {
            json!(first_str(object, &["/involvedObject/fieldPath", "/regarding/fieldPath"]))
        }
        CellSource::EventSource => {
            let component = first_str(
                object,
                &[
                    "/source/component",
                    "/deprecatedSource/component",
                    "/reportingComponent",
                    "/reportingController",
                ],
            );
            let instance = first_str(
                object,
                &["/source/host", "/deprecatedSource/host", "/reportingInstance"],
            );
            json!(if instance.is_empty() {
                component.to_owned()
            } else {
                format!("{component}, {instance}")
            })
        }
        CellSource::EventMessage => json!(first_str(object, &["/message", "/note"]).trim()),
        CellSource::EventCount => json!(
            object
                .pointer("/series/count")
                .and_then(Value::as_i64)
                .or_else(|| object.pointer("/count").and_then(Value::as_i64))
                .unwrap_or_else(|| int_at(object, "/deprecatedCount"))
        ),
        CellSource::ReplicaSetDesired => {
            json!(object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1))
        }
        CellSource::ReplicaSetCurrent => json!(int_at(object, "/status/replicas")),
        CellSource::ReplicaSetReady => json!(int_at(object, "/status/readyReplicas")),
        CellSource::PodReady => {
            let total =
                object.pointer("/spec/containers").and_then(Value::as_array).map_or(0, Vec::len);
            let ready = object
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .map_or(0, |statuses| {
                    statuses
                        .iter()
                        .filter(|status| status.get("ready").and_then(Value::as_bool) == Some(true))
                        .count()
                });
            json!(format!("{ready}/{total}"))
        }
        CellSource::PodStatus => {
            let waiting = object
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .and_then(|statuses| {
                    statuses
                        .iter()
                        .filter_map(|status| {
                            status
                                .pointer("/state/waiting/reason")
                                .or_else(|| status.pointer("/state/terminated/reason"))
                                .and_then(Value::as_str)
                        })
                        .find(|reason| !reason.is_empty())
                });
            let status = if object.pointer("/metadata/deletionTimestamp").is_some() {
                "Terminating"
            } else {
                waiting.unwrap_or_else(|| first_str(object, &["/status/reason", "/status/phase"]))
            };
            json!(status)
        }
        CellSource::PodRestarts => json!(
            object
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .map_or(0, |statuses| {
                    statuses
                        .iter()
                        .filter_map(|status| status.get("restartCount").and_then(Value::as_i64))
                        .sum::<i64>()
                })
                .to_string()
        ),
        CellSource::PodIp => json!(none_if_empty(str_at(object, "/status/podIP"))),
        CellSource::PodNode => json!(none_if_empty(str_at(object, "/spec/nodeName"))),
        CellSource::PodNominatedNode => {
            json!(none_if_empty(str_at(object, "/status/nominatedNodeName")))
        }
        CellSource::PodReadinessGates => {
            let gates = object
                .pointer("/spec/readinessGates")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            json!(if gates == 0 { "<none>".to_owned() } else { format!("0/{gates}") })
        }
    }
}

/// A CRD printer column cell: `null` when the path finds nothing; `string`
/// columns print any value as JSONPath text does; `date` columns render the
/// age of the timestamp.
pub fn json_path_cell(kind: &str, path: &str, object: &Value, now_ms: u64) -> Value {
    let Some(value) = eval_json_path(object, path) else {
        return Value::Null;
    };
    match kind {
        "string" => json!(jsonpath_text(value)),
        "integer" => match value {
            Value::Number(number) => number
                .as_i64()
                .or_else(|| number.as_f64().map(|float| float as i64))
                .map_or(Value::Null, |integer| json!(integer)),
            _ => Value::Null,
        },
        "number" => match value {
            Value::Number(number) => number.as_f64().map_or(Value::Null, |float| json!(float)),
            _ => Value::Null,
        },
        "boolean" => match value {
            Value::Bool(flag) => json!(flag),
            _ => Value::Null,
        },
        "date" => match value {
            Value::String(timestamp) => match parse_time(timestamp) {
                Some(_) => json!(age_of(timestamp, now_ms)),
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
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        Value::Array(items) => {
            format!("[{}]", items.iter().map(jsonpath_text).collect::<Vec<_>>().join(" "))
        }
        Value::Object(map) => format!(
            "map[{}]",
            map.iter()
                .map(|(key, value)| format!("{key}:{}", jsonpath_text(value)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}
