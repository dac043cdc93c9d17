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
            Value::String(text) => format!("{text:?}"),
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

/// A field an apply would take from another manager.
#[derive(Debug, Clone)]
pub struct ApplyConflict {
    /// The manager that owns the field.
    pub manager: String,
    /// The apiVersion that manager wrote it with.
    pub api_version: String,
    /// The field, as the conflict message prints it (`.spec.replicas`).
    pub field: String,
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

/// `Status.details` naming one object: its name (when known), group and
/// resource (which the real server reports under `kind`).
fn object_details(gr: &GroupResource, name: &str) -> Value {
    let mut details = serde_json::Map::new();
    if !name.is_empty() {
        details.insert("name".into(), json!(name));
    }
    if !gr.group.is_empty() {
        details.insert("group".into(), json!(gr.group));
    }
    details.insert("kind".into(), json!(gr.resource));
    Value::Object(details)
}

impl ApiError {
    /// The `Status` body of this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(fields) = status.as_object_mut() {
            if let Some(details) = &self.details {
                fields.insert("details".into(), details.clone());
            }
            if self.reason.is_empty() {
                fields.remove("reason");
            }
        }
        status
    }

    /// An error about one object, whose details name it.
    fn about_object(
        code: u16,
        reason: &'static str,
        gr: &GroupResource,
        name: &str,
        message: String,
    ) -> Self {
        ApiError { code, reason, message, details: Some(object_details(gr, name)) }
    }

    /// 404 `<resource> "<name>" not found`.
    pub fn not_found(gr: &GroupResource, name: &str) -> Self {
        Self::about_object(404, "NotFound", gr, name, format!("{gr} {name:?} not found"))
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
        Self::about_object(409, "AlreadyExists", gr, name, format!("{gr} {name:?} already exists"))
    }

    /// 409 optimistic-concurrency conflict.
    pub fn conflict_modified(gr: &GroupResource, name: &str) -> Self {
        Self::conflict(
            gr,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 `Operation cannot be fulfilled on <resource> "<name>": <why>`.
    pub fn conflict(gr: &GroupResource, name: &str, why: &str) -> Self {
        let message = format!("Operation cannot be fulfilled on {gr} {name:?}: {why}");
        Self::about_object(409, "Conflict", gr, name, message)
    }

    /// 409 server-side apply conflict listing the fields per manager.
    pub fn apply_conflict(conflicts: &[ApplyConflict]) -> Self {
        let count = conflicts.len();
        let mut message =
            format!("Apply failed with {count} conflict{}: ", if count == 1 { "" } else { "s" });
        let mut by_manager: Vec<(&str, &str, Vec<&str>)> = Vec::new();
        for conflict in conflicts {
            let (manager, api_version) = (conflict.manager.as_str(), conflict.api_version.as_str());
            match by_manager.iter_mut().find(|(m, v, _)| *m == manager && *v == api_version) {
                Some((_, _, fields)) => fields.push(&conflict.field),
                None => by_manager.push((manager, api_version, vec![&conflict.field])),
            }
        }
        let parts: Vec<String> = by_manager
            .iter()
            .map(|(manager, api_version, fields)| match fields.as_slice() {
                [field] => format!("conflict with {manager:?} using {api_version}: {field}"),
                fields => {
                    let list: Vec<String> =
                        fields.iter().map(|field| format!("- {field}")).collect();
                    format!("conflicts with {manager:?} using {api_version}:\n{}", list.join("\n"))
                }
            })
            .collect();
        message.push_str(&parts.join("\n"));
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|conflict| {
                json!({
                    "reason": "FieldManagerConflict",
                    "message": format!("conflict with {:?} using {}", conflict.manager, conflict.api_version),
                    "field": conflict.field,
                })
            })
            .collect();
        ApiError {
            code: 409,
            reason: "Conflict",
            message,
            details: Some(json!({"causes": causes})),
        }
    }

    /// 422 `<Kind>.<group> "<name>" is invalid: ...`: the message lists the
    /// causes as `field: message` (in brackets when more than one, repeated
    /// lines dropped, as `ErrorList.ToAggregate` does); `details.causes`
    /// carries each one.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: &[Cause]) -> Self {
        let qualified = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
        let mut lines: Vec<String> = Vec::new();
        for cause in causes {
            let line = format!("{}: {}", cause.field, cause.message);
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
        let summary = match lines.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let mut details = object_details(&GroupResource::new(group, kind), name);
        if let Some(fields) = details.as_object_mut() {
            // Unlike the other reasons, Invalid names the object even when
            // the name is empty (a request's options, not an object).
            fields.insert("name".into(), json!(name));
            fields
                .insert("causes".into(), Value::Array(causes.iter().map(Cause::to_json).collect()));
        }
        ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("{qualified} {name:?} is invalid: {summary}"),
            details: Some(details),
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError { code: 400, reason: "BadRequest", message: message.into(), details: None }
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media(message: impl Into<String>) -> Self {
        ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: message.into(),
            details: None,
        }
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
    pub fn expired(message: impl Into<String>) -> Self {
        ApiError { code: 410, reason: "Expired", message: message.into(), details: None }
    }

    /// 500 InternalError.
    pub fn internal(cause: impl Into<String>) -> Self {
        let cause = cause.into();
        ApiError {
            code: 500,
            reason: "InternalError",
            message: format!("Internal error occurred: {cause}"),
            details: Some(json!({"causes": [{"message": cause}]})),
        }
    }

    /// 500 without a reason: an error the real server did not turn into a
    /// `Status` itself (server-side apply's typed conversion, etcd's).
    pub fn unknown(message: impl Into<String>) -> Self {
        ApiError { code: 500, reason: "", message: message.into(), details: None }
    }

    /// etcd refusing an object over its request limit (`--max-request-bytes`,
    /// 1.5 MiB by default): the API server passes the storage error on
    /// unconverted, a 500 without `reason` or `details`.
    pub fn request_too_large() -> Self {
        Self::unknown("etcdserver: request is too large")
    }

    /// 413 `Request entity too large: <why>`.
    pub fn entity_too_large(why: &str) -> Self {
        ApiError {
            code: 413,
            reason: "RequestEntityTooLarge",
            message: format!("Request entity too large: {why}"),
            details: None,
        }
    }

    /// 504 Timeout, as the server's request timeout answers.
    pub fn timeout() -> Self {
        ApiError {
            code: 504,
            reason: "Timeout",
            message: "Timeout: request did not complete within the allotted timeout".into(),
            details: Some(json!({})),
        }
    }

    /// 403 `<resource> "<name>" is forbidden: <why>`.
    pub fn forbidden(gr: &GroupResource, name: &str, why: &str) -> Self {
        Self::about_object(403, "Forbidden", gr, name, format!("{gr} {name:?} is forbidden: {why}"))
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
    /// A request made through the handle failed as the API would answer it.
    #[error("{0}")]
    Request(ApiError),
    /// The cluster's certificates could not be made.
    #[error("{0}")]
    Pki(#[from] crate::pki::PkiError),
}
