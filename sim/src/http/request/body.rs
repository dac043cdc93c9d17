//! Request bodies: objects in JSON, YAML or Kubernetes protobuf (by content
//! type), and `DeleteOptions`.

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

use super::protobuf;
use crate::error::ApiError;

/// Parses an object body (JSON, YAML for YAML content types, protobuf).
pub fn parse_object(body: &[u8], headers: &HeaderMap) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/json");
    if content_type.contains("protobuf") {
        return protobuf::decode_object(body);
    }
    if content_type.contains("cbor") {
        return Err(ApiError::unsupported_media(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
        ));
    }
    parse_json_or_yaml(body, content_type.contains("yaml"))
}

/// Parses an object body as JSON, falling back to YAML when `yaml`.
pub fn parse_json_or_yaml(body: &[u8], yaml: bool) -> Result<Value, ApiError> {
    let object: Value = match serde_json::from_slice(body) {
        Ok(object) => object,
        Err(json_error) if yaml => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("body is not UTF-8"))?;
            serde_saphyr::from_str(text).map_err(|yaml_error| {
                ApiError::bad_request(format!(
                    "error decoding YAML: {yaml_error}; json: {json_error}"
                ))
            })?
        }
        Err(json_error) => {
            return Err(ApiError::bad_request(format!(
                "couldn't get version/kind; json parse error: {json_error}"
            )));
        }
    };
    if !object.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: json: cannot unmarshal into Go value of type struct",
        ));
    }
    Ok(object)
}

/// The `DeleteOptions` of a DELETE body; an empty or unreadable body means
/// none.
pub fn parse_delete_options(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(json!({}))
}
