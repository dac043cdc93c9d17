//! Table cells: each column's value for one object, the human-readable
//! ages (`duration.HumanDuration`), label-selector strings, and CRD printer
//! columns evaluated through their JSONPath.

use serde_json::{Map, Value, json};

use super::columns::{CellSource, ColumnDef};
use super::jsonpath::eval_json_path;

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

/// The cell of `column` for `obj`, ages computed at `now_ms`.
pub fn cell(column: &ColumnDef, obj: &Value, now_ms: u64) -> Value {
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
pub fn json_path_cell(kind: &str, path: &str, obj: &Value, now_ms: u64) -> Value {
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
