//! The object-changing verbs: POST (create), PUT (update; an Event is
//! created when missing, as the real server's events registry allows),
//! and PATCH (JSON, merge, strategic merge, or server-side apply).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::stored_object;
use crate::auth::{self, Attributes, RequestInfo};
use crate::error::{ApiError, Cause};
use crate::http::request::{
    PatchFormat, ResourceRequest, Target, parse_json_or_yaml, parse_object, patch_format,
    write_options,
};
use crate::http::response::{json_response, with_warnings};
use crate::registry::ResourceDef;
use crate::state::SimState;
use crate::store::StoreInner;
use crate::util::metadata_str;
use crate::validation::{self, FieldValidation, Source};
use crate::write::{self, WriteOptions};

/// The request's `fieldValidation`.
fn field_validation(request: &ResourceRequest) -> Result<FieldValidation, ApiError> {
    FieldValidation::parse(request.query.get("fieldValidation").map(String::as_str))
}

/// Decodes a request body as the resource's kind (after checking that it
/// is one); returns the warnings.
fn decode_body(
    def: &ResourceDef,
    object: &mut Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    write::check_type_meta(def, &mut object.clone())?;
    validation::decode(def, object, validation, Source::Body)
}

/// POST to a collection.
pub fn create(sim: &Arc<SimState>, request: &ResourceRequest) -> Result<Response, ApiError> {
    let target = &request.target;
    let mut object = parse_object(&request.body, &request.headers)?;
    let warnings = decode_body(&target.def, &mut object, field_validation(request)?)?;
    let options = write_options(&request.query, &request.headers, None)?;
    let response = created(sim, &mut sim.store.lock(), target, object, &options)?;
    Ok(with_warnings(response, &warnings))
}

/// Creates `object` in the target's collection and answers 201 with it.
fn created(
    sim: &SimState,
    store: &mut StoreInner,
    target: &Target,
    object: Value,
    options: &WriteOptions<'_>,
) -> Result<Response, ApiError> {
    let namespace = target.namespace.as_deref();
    let created = write::create(store, &sim.rng, &target.def, namespace, object, options)?;
    Ok(json_response(StatusCode::CREATED, &target.def.to_served(&created)))
}

/// PUT of an object.
pub fn update(sim: &Arc<SimState>, request: &ResourceRequest) -> Result<Response, ApiError> {
    let target = &request.target;
    let mut object = parse_object(&request.body, &request.headers)?;
    let warnings = decode_body(&target.def, &mut object, field_validation(request)?)?;
    check_name_matches_url(target, &object)?;
    write::check_type_meta(&target.def, &mut object)?;
    let options = write_options(&request.query, &request.headers, target.subresource.as_deref())?;
    let mut store = sim.store.lock();
    let old = match stored_object(&store, target) {
        Ok(old) => old,
        Err(_) if target.def.plural == "events" && target.subresource.is_none() => {
            let response = created(sim, &mut store, target, object, &options)?;
            return Ok(with_warnings(response, &warnings));
        }
        Err(not_found) => return Err(not_found),
    };
    let updated = write::update(&mut store, &target.def, &old, object, &options)?;
    let response = json_response(StatusCode::OK, &target.def.to_served(&updated));
    Ok(with_warnings(response, &warnings))
}

/// The name (and namespace, when the body has one) of a PUT body must be
/// the URL's.
fn check_name_matches_url(target: &Target, object: &Value) -> Result<(), ApiError> {
    let url_name = target.name_or_empty();
    let body_name = metadata_str(object, "name").unwrap_or("");
    if body_name != url_name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({url_name})"
        )));
    }
    if let (Some(url_namespace), Some(body_namespace)) =
        (target.namespace.as_deref(), metadata_str(object, "namespace"))
        && !body_namespace.is_empty()
        && body_namespace != url_namespace
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// PATCH of an object.
pub fn patch(sim: &Arc<SimState>, request: &ResourceRequest) -> Result<Response, ApiError> {
    let target = &request.target;
    let query = &request.query;
    let format = patch_format(&request.headers, &target.def)?;
    let options = write_options(query, &request.headers, target.subresource.as_deref())?;
    let patch_type = match format {
        PatchFormat::Apply => return apply(sim, request, &options),
        PatchFormat::Patch(patch_type) => patch_type,
    };
    if query.contains_key("force") {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            &[Cause::new(
                "FieldValueForbidden",
                "Forbidden: may not be specified for non-apply patch",
                "force",
            )],
        ));
    }
    let patch: Value = serde_json::from_slice(&request.body)
        .map_err(|error| ApiError::bad_request(format!("error decoding patch: {error}")))?;
    let validation = field_validation(request)?;
    let mut store = sim.store.lock();
    let old = stored_object(&store, target)?;
    let mut patched = write::patched(&target.def, &old, patch_type, &patch)?;
    let warnings = validation::decode(&target.def, &mut patched, validation, Source::Patch)?;
    let updated = write::update(&mut store, &target.def, &old, patched, &options)?;
    let response = json_response(StatusCode::OK, &target.def.to_served(&updated));
    Ok(with_warnings(response, &warnings))
}

/// An apply that creates its object is also a create: the real handler
/// authorizes `create` for it (`withAuthorization` in the patch handler),
/// so `patch` alone cannot create. Refused as the real server words it,
/// `<resource> "<name>" is forbidden: <the authorizer's reason>`.
fn authorize_create_by_apply(sim: &SimState, request: &ResourceRequest) -> Result<(), ApiError> {
    let target = &request.target;
    let attributes = Attributes {
        user: request.user.clone(),
        request: RequestInfo {
            resource_request: true,
            path: String::new(),
            verb: "create".to_owned(),
            api_group: target.def.group.clone(),
            api_version: target.def.version.clone(),
            namespace: target.namespace_or_empty().to_owned(),
            resource: target.def.plural.clone(),
            subresource: target.subresource.clone().unwrap_or_default(),
            name: target.name_or_empty().to_owned(),
        },
    };
    let decision = auth::authorize(&sim.store, &attributes);
    if decision.allowed {
        return Ok(());
    }
    Err(ApiError::forbidden(&target.def.gr(), target.name_or_empty(), &decision.reason))
}

/// PATCH with an apply patch: server-side apply, which needs a field
/// manager.
fn apply(
    sim: &Arc<SimState>,
    request: &ResourceRequest,
    options: &WriteOptions<'_>,
) -> Result<Response, ApiError> {
    let target = &request.target;
    if request.query.get("fieldManager").is_none_or(String::is_empty) {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            &[Cause::required("fieldManager", "is required for apply patch")],
        ));
    }
    let applied = parse_json_or_yaml(&request.body, true)?;
    field_validation(request)?;
    if applied.get("kind").and_then(Value::as_str) == Some(target.def.kind.as_str()) {
        let source =
            Source::Apply { namespace: target.namespace_or_empty(), name: target.name_or_empty() };
        validation::decode(&target.def, &mut applied.clone(), FieldValidation::Strict, source)?;
    }
    let mut store = sim.store.lock();
    if stored_object(&store, target).is_err() {
        drop(store);
        authorize_create_by_apply(sim, request)?;
        store = sim.store.lock();
    }
    let outcome = write::apply(
        &mut store,
        &sim.rng,
        &target.def,
        target.namespace.as_deref(),
        target.name_or_empty(),
        applied,
        options,
    )?;
    let code = if outcome.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(json_response(code, &target.def.to_served(&outcome.object)))
}
