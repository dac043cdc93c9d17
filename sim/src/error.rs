//! Errors: the Kubernetes `Status` failure bodies the simulated API server
//! answers with (`ApiError`), and the crate-level `SimError` for start-up and
//! file IO. Every constructor mirrors the message, reason, code and details
//! the real kube-apiserver produces for the same situation.

use serde_json::{Value, json};

/// A failed API request, rendered as a `meta/v1` `Status` object.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code (also `Status.code`).
    pub code: u16,
    /// `Status.reason` (`NotFound`, `Conflict`, ...); empty for none.
    pub reason: &'static str,
    /// Human-readable `Status.message`.
    pub message: String,
    /// `Status.details`, when the real server sends one.
    pub details: Option<Value>,
}

/// One entry of `Status.details.causes`.
#[derive(Debug, Clone)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldManagerConflict`, ...
    pub reason: String,
    /// The message for this field.
    pub message: String,
    /// The field path, e.g. `metadata.name`.
    pub field: String,
}

impl Cause {
    /// A cause with the given reason, message and field.
    pub fn new(reason: &str, message: impl Into<String>, field: impl Into<String>) -> Self {
        Cause { reason: reason.to_string(), message: message.into(), field: field.into() }
    }

    /// `field: Invalid value: <value>: <detail>`.
    pub fn invalid(field: &str, value: &Value, detail: &str) -> Self {
        let shown = match value {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        Cause::new("FieldValueInvalid", format!("Invalid value: {shown}: {detail}"), field)
    }

    /// `field: Required value[: detail]`.
    pub fn required(field: &str, detail: &str) -> Self {
        let message = if detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {detail}")
        };
        Cause::new("FieldValueRequired", message, field)
    }

    fn to_json(&self) -> Value {
        json!({"reason": self.reason, "message": self.message, "field": self.field})
    }
}

/// A group and resource, printed like the real server (`deployments.apps`,
/// `configmaps`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    /// API group, empty for the core group.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

impl GroupResource {
    /// A group-resource pair.
    pub fn new(group: &str, resource: &str) -> Self {
        GroupResource { group: group.to_string(), resource: resource.to_string() }
    }
}

impl std::fmt::Display for GroupResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

fn details(gr: &GroupResource, name: &str) -> Value {
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !gr.group.is_empty() {
        d.insert("group".into(), json!(gr.group));
    }
    d.insert("kind".into(), json!(gr.resource));
    Value::Object(d)
}

impl ApiError {
    /// The `Status` body of this error.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details
            && let Some(map) = s.as_object_mut()
        {
            map.insert("details".into(), d.clone());
        }
        if self.reason.is_empty()
            && let Some(map) = s.as_object_mut()
        {
            map.remove("reason");
        }
        s
    }

    /// 404 `<resource> "<name>" not found`.
    pub fn not_found(gr: &GroupResource, name: &str) -> Self {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: format!("{gr} {name:?} not found"),
            details: Some(details(gr, name)),
        }
    }

    /// 404 for a path that names no resource.
    pub fn no_resource() -> Self {
        ApiError {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            details: Some(json!({})),
        }
    }

    /// 409 `<resource> "<name>" already exists`.
    pub fn already_exists(gr: &GroupResource, name: &str) -> Self {
        ApiError {
            code: 409,
            reason: "AlreadyExists",
            message: format!("{gr} {name:?} already exists"),
            details: Some(details(gr, name)),
        }
    }

    /// 409 optimistic-concurrency conflict.
    pub fn conflict_modified(gr: &GroupResource, name: &str) -> Self {
        Self::conflict(
            gr,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 `Operation cannot be fulfilled on <resource> "<name>": <msg>`.
    pub fn conflict(gr: &GroupResource, name: &str, msg: &str) -> Self {
        ApiError {
            code: 409,
            reason: "Conflict",
            message: format!("Operation cannot be fulfilled on {gr} {name:?}: {msg}"),
            details: Some(details(gr, name)),
        }
    }

    /// 409 server-side apply conflict listing the fields per manager.
    pub fn apply_conflict(conflicts: &[(String, String, String)]) -> Self {
        // (manager, apiVersion, field)
        let n = conflicts.len();
        let mut message =
            format!("Apply failed with {n} conflict{}: ", if n == 1 { "" } else { "s" });
        let mut by_manager: Vec<(String, String, Vec<String>)> = Vec::new();
        for (m, v, f) in conflicts {
            match by_manager.iter_mut().find(|(bm, bv, _)| bm == m && bv == v) {
                Some(entry) => entry.2.push(f.clone()),
                None => by_manager.push((m.clone(), v.clone(), vec![f.clone()])),
            }
        }
        let parts: Vec<String> = by_manager
            .iter()
            .map(|(m, v, fields)| {
                if fields.len() == 1 {
                    format!("conflict with {m:?} using {v}: {}", fields[0])
                } else {
                    let list: Vec<String> = fields.iter().map(|f| format!("- {f}")).collect();
                    format!("conflicts with {m:?} using {v}:\n{}", list.join("\n"))
                }
            })
            .collect();
        message.push_str(&parts.join("\n"));
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(m, v, f)| {
                json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m:?} using {v}"), "field": f})
            })
            .collect();
        ApiError {
            code: 409,
            reason: "Conflict",
            message,
            details: Some(json!({"causes": causes})),
        }
    }

    /// 422 `<Kind>.<group> "<name>" is invalid: ...`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: &[Cause]) -> Self {
        let qualified = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
        let texts: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let summary =
            if texts.len() == 1 { texts[0].clone() } else { format!("[{}]", texts.join(", ")) };
        let mut d = serde_json::Map::new();
        d.insert("name".into(), json!(name));
        if !group.is_empty() {
            d.insert("group".into(), json!(group));
        }
        d.insert("kind".into(), json!(kind));
        d.insert("causes".into(), Value::Array(causes.iter().map(Cause::to_json).collect()));
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("{qualified} {name:?} is invalid: {summary}"),
            details: Some(Value::Object(d)),
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        ApiError { code: 400, reason: "BadRequest", message: msg.into(), details: None }
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media(msg: impl Into<String>) -> Self {
        ApiError { code: 415, reason: "UnsupportedMediaType", message: msg.into(), details: None }
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(verb: &str, gr: &GroupResource) -> Self {
        ApiError {
            code: 405,
            reason: "MethodNotAllowed",
            message: "the server does not allow this method on the requested resource".to_string(),
            details: Some(
                json!({"group": gr.group, "kind": gr.resource, "causes": [{"message": format!("{verb} not allowed")}]}),
            ),
        }
    }

    /// 410 Expired.
    pub fn expired(msg: impl Into<String>) -> Self {
        ApiError { code: 410, reason: "Expired", message: msg.into(), details: None }
    }

    /// 500 InternalError.
    pub fn internal(msg: impl Into<String>) -> Self {
        let msg = msg.into();
        ApiError {
            code: 500,
            reason: "InternalError",
            message: format!("Internal error occurred: {msg}"),
            details: Some(json!({"causes": [{"message": msg}]})),
        }
    }

    /// 403 Forbidden.
    pub fn forbidden(gr: &GroupResource, name: &str, msg: &str) -> Self {
        ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!("{gr} {name:?} is forbidden: {msg}"),
            details: Some(details(gr, name)),
        }
    }
}

/// Errors of the simulator itself (not of an API request).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Binding the listen address failed.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The IO error.
        source: std::io::Error,
    },
    /// Other IO (writing the kubeconfig, reading the local address).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Seeding the store failed.
    #[error("seeding the cluster: {0}")]
    Seed(#[from] ApiError),
}
