//! DELETE of an object (preconditions, dry run, propagation policy,
//! finalizers) and of a collection (every object the selectors match).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::stored_object;
use crate::error::ApiError;
use crate::http::request::{ListSelectors, ResourceRequest, delete_options, parse_delete_options};
use crate::http::response::{delete_success_status, json_response};
use crate::state::SimState;
use crate::write;

/// DELETE of an object: 200, whether it is gone or finalizers hold it (202
/// only for the deprecated `orphanDependents: false`, as the real server).
pub fn delete(sim: &Arc<SimState>, request: &ResourceRequest) -> Result<Response, ApiError> {
    let target = &request.target;
    let delete = delete_options(&request.query, &parse_delete_options(&request.body))?;
    let mut store = sim.store.lock();
    let old = stored_object(&store, target)?;
    let deletion = write::delete(&mut store, &target.def, &old, &delete.options)?;
    let body = if deletion.answer_with_status {
        delete_success_status(&target.def, &deletion.object)
    } else {
        deletion.object
    };
    let code = if !deletion.removed && delete.accepted_if_pending {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(json_response(code, &body))
}

/// DELETE of a collection: the deleted objects as a list.
pub fn delete_collection(
    sim: &Arc<SimState>,
    request: &ResourceRequest,
) -> Result<Response, ApiError> {
    let target = &request.target;
    let selectors = ListSelectors::from_query(&target.def, &request.query)?;
    let delete = delete_options(&request.query, &parse_delete_options(&request.body))?;
    let mut store = sim.store.lock();
    let matching: Vec<Arc<Value>> = store
        .list(&target.def.storage_gr(), target.namespace.as_deref())
        .into_iter()
        .filter(|object| selectors.matches(object))
        .collect();
    let mut deleted = Vec::new();
    for old in matching {
        let deletion = write::delete(&mut store, &target.def, &old, &delete.options)?;
        // Resources that answer a delete with a Status list the object as
        // it was before.
        deleted.push(if deletion.answer_with_status {
            target.def.to_served(&old)
        } else {
            deletion.object
        });
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", target.def.kind),
            "apiVersion": target.def.api_version(),
            "metadata": {"resourceVersion": store.rv.to_string()},
            "items": deleted,
        }),
    ))
}
