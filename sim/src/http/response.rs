//! Responses: JSON bodies, `Status` bodies of errors and of successful
//! deletes, the plain-text 404 of unknown paths, `PartialObjectMetadata`,
//! and typed lists serialized without copying the stored objects.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::registry::ResourceDef;
use crate::util::metadata_str;

/// A response with a JSON body (`Content-Type: application/json`).
pub fn json_response(code: StatusCode, body: &Value) -> Response {
    json_bytes_response(code, serde_json::to_vec(body).unwrap_or_default())
}

fn json_bytes_response(code: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Adds a `Warning: 299 - "<text>"` header per warning, as the real
/// server sends them (kubectl prints them as `Warning: <text>`).
pub fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for warning in warnings {
        let quoted = warning.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{quoted}\"")) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

/// The `Status` response of an error (with `Retry-After` when its details
/// carry `retryAfterSeconds`, as the real server's response writer adds).
pub fn error_response(error: &ApiError) -> Response {
    let mut response = json_response(
        StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &error.to_status(),
    );
    let retry_after = error
        .details
        .as_ref()
        .and_then(|details| details.get("retryAfterSeconds"))
        .and_then(serde_json::Value::as_u64)
        .filter(|seconds| *seconds > 0);
    if let Some(seconds) = retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The 429 of the server's priority and fairness (and max-in-flight)
/// filters: a plain-text body and `Retry-After`.
pub fn too_many_requests(retry_after_seconds: u64) -> Response {
    let mut response = Response::new(Body::from("Too many requests, please try again later.\n"));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert("X-Content-Type-Options", HeaderValue::from_static("nosniff"));
    if let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string()) {
        headers.insert(header::RETRY_AFTER, value);
    }
    response
}

/// The plain-text 404 the real server answers for a path it does not
/// serve at all (as opposed to a `Status` for a missing object).
pub fn not_found_text() -> Response {
    let mut response = Response::new(Body::from("404 page not found\n"));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// Sets `Cache-Control`, which kubectl's discovery and OpenAPI caches obey.
pub fn with_cache_control(mut response: Response, value: &'static str) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    response
}

/// An object as `meta.k8s.io/v1` `PartialObjectMetadata`.
pub fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// The success `Status` a delete answers with for resources that do not
/// return the deleted object.
pub fn delete_success_status(def: &ResourceDef, deleted: &Value) -> Value {
    let mut details = Map::new();
    details.insert("name".into(), json!(metadata_str(deleted, "name").unwrap_or("")));
    if !def.group.is_empty() {
        details.insert("group".into(), json!(def.group));
    }
    details.insert("kind".into(), json!(def.plural));
    details.insert("uid".into(), json!(metadata_str(deleted, "uid").unwrap_or("")));
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// A typed list (`<Kind>List`) of stored objects of `def` with `metadata`.
pub fn list_response(
    def: &ResourceDef,
    stored: &[Arc<Value>],
    metadata: &Value,
) -> Result<Response, ApiError> {
    let converted: Vec<Value>;
    let items: Vec<ListItem<'_>> = if def.converts_objects() {
        converted = stored.iter().map(|object| def.to_served(object)).collect();
        converted.iter().map(|object| ListItem { object, type_meta: None }).collect()
    } else {
        let api_version = def.api_version();
        stored
            .iter()
            .map(|object| ListItem {
                object,
                // Typed lists omit the items' kind; custom resource lists keep it.
                type_meta: def.is_custom().then(|| (api_version.clone(), def.kind.clone())),
            })
            .collect()
    };
    let body = ListBody {
        kind: format!("{}List", def.kind),
        api_version: def.api_version(),
        metadata,
        items,
    };
    let bytes = serde_json::to_vec(&body)
        .map_err(|error| ApiError::internal(format!("encoding the list: {error}")))?;
    Ok(json_bytes_response(StatusCode::OK, bytes))
}

/// A list response, serialized without copying the stored objects.
#[derive(serde::Serialize)]
struct ListBody<'a> {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: &'a Value,
    items: Vec<ListItem<'a>>,
}

/// One stored object as a list item: its apiVersion and kind replaced
/// (custom resources) or left out (built-in types).
struct ListItem<'a> {
    object: &'a Value,
    type_meta: Option<(String, String)>,
}

impl serde::Serialize for ListItem<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(fields) = self.object.as_object() else {
            return self.object.serialize(serializer);
        };
        let mut map = serializer.serialize_map(None)?;
        if let Some((api_version, kind)) = &self.type_meta {
            map.serialize_entry("apiVersion", api_version)?;
            map.serialize_entry("kind", kind)?;
        }
        for (key, value) in fields {
            if key != "apiVersion" && key != "kind" {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}
