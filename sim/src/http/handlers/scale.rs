//! The `/scale` subresource of Deployments: the object seen as an
//! `autoscaling/v1` Scale, and changes of `spec.replicas` through it.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::stored_object;
use crate::error::{ApiError, Cause};
use crate::http::request::{
    PatchFormat, ResourceRequest, Verb, parse_object, patch_format, unsupported_patch_type,
    write_options,
};
use crate::http::response::json_response;
use crate::patch::patch_object;
use crate::state::SimState;
use crate::util::metadata_mut;
use crate::write::{self, WriteOptions};

/// GET, PUT or PATCH of a Deployment's Scale.
pub fn serve(sim: &Arc<SimState>, request: &ResourceRequest) -> Result<Response, ApiError> {
    let target = &request.target;
    let mut store = sim.store.lock();
    let old = stored_object(&store, target)?;
    let current = scale_of(&old);
    let wanted = match request.verb {
        Verb::Get => return Ok(json_response(StatusCode::OK, &current)),
        Verb::Update => parse_object(&request.body, &request.headers)?,
        Verb::Patch => {
            let PatchFormat::Patch(patch_type) = patch_format(&request.headers, &target.def)?
            else {
                return Err(unsupported_patch_type(&target.def));
            };
            let patch: Value = serde_json::from_slice(&request.body)
                .map_err(|error| ApiError::bad_request(format!("error decoding patch: {error}")))?;
            patch_object(patch_type, &current, &patch)?
        }
        other => return Err(ApiError::method_not_allowed(other.as_str(), &target.def.gr())),
    };
    let replicas = wanted.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            target.name_or_empty(),
            &[Cause::invalid(
                "spec.replicas",
                &json!(replicas),
                "must be greater than or equal to 0",
            )],
        ));
    }
    let mut scaled = (*old).clone();
    // A Scale's resourceVersion is the object's: it makes the write
    // conditional, as on the object itself.
    if let Some(metadata) = metadata_mut(&mut scaled)
        && let Some(Value::String(rv)) = wanted.pointer("/metadata/resourceVersion")
        && !rv.is_empty()
    {
        metadata.insert("resourceVersion".into(), json!(rv));
    }
    if let Some(spec) = scaled.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), json!(replicas));
    }
    // Validated like a Scale request (so the manager and options are the
    // request's), stored as a change of the main resource.
    let options = WriteOptions {
        subresource: None,
        ..write_options(&request.query, &request.headers, Some("scale"))?
    };
    let updated = write::update(&mut store, &target.def, &old, scaled, &options)?;
    Ok(json_response(StatusCode::OK, &scale_of(&updated)))
}

/// A Deployment as an `autoscaling/v1` Scale.
fn scale_of(object: &Value) -> Value {
    let metadata =
        |key: &str| object.pointer(&format!("/metadata/{key}")).cloned().unwrap_or(Value::Null);
    let selector = object
        .pointer("/spec/selector")
        .and_then(|selector| selector.get("matchLabels"))
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": metadata("name"),
            "namespace": metadata("namespace"),
            "uid": metadata("uid"),
            "resourceVersion": metadata("resourceVersion"),
            "creationTimestamp": metadata("creationTimestamp"),
        },
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}
