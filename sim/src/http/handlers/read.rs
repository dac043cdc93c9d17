//! GET of one object, as the object, a Table or PartialObjectMetadata.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;

use super::stored_object;
use crate::error::ApiError;
use crate::http::request::{Representation, ResourceRequest};
use crate::http::response::{json_response, partial_metadata};
use crate::http::table::{self, TableMetadata};
use crate::state::SimState;
use crate::util::metadata_str;

/// GET of one object.
pub fn get(sim: &Arc<SimState>, request: &ResourceRequest) -> Result<Response, ApiError> {
    let target = &request.target;
    let object = stored_object(&sim.store.lock(), target)?;
    let body = match request.representation {
        Representation::Metadata => partial_metadata(&object),
        Representation::Table => {
            let crd = sim.store.lock().defining_crd(&target.def);
            let include =
                table::include_object(request.query.get("includeObject").map(String::as_str))?;
            let resource_version = metadata_str(&object, "resourceVersion").unwrap_or("");
            table::resource_table(
                &target.def,
                crd.as_deref(),
                std::slice::from_ref(&object),
                TableMetadata::Object(resource_version),
                include,
            )
        }
        Representation::Object => target.def.to_served(&object),
    };
    Ok(json_response(StatusCode::OK, &body))
}
