//! The REST handlers of resource requests: counting and fault injection
//! for every request, then one handler per verb (`read`, `list`, `modify`,
//! `delete`, and the `scale` subresource); watches are the `watch` module's.
//! Handlers parse what they need, call the write pipeline under the store
//! lock, and render the response.

mod delete;
mod list;
mod modify;
mod read;
mod scale;

use std::sync::Arc;

use axum::response::Response;
use serde_json::Value;

use super::request::{ResourceRequest, Target, Verb};
use super::watch;
use crate::error::ApiError;
use crate::state::SimState;
use crate::store::StoreInner;

/// Serves one parsed resource request.
pub fn serve(sim: &Arc<SimState>, request: &ResourceRequest) -> Result<Response, ApiError> {
    let target = &request.target;
    let resource = match &target.subresource {
        Some(subresource) => format!("{}/{subresource}", target.def.plural),
        None => target.def.plural.clone(),
    };
    sim.count_request(request.verb.as_str(), &resource);
    if let Some(answer) = super::auth::serve(sim, request) {
        return answer;
    }
    if request.verb.is_write()
        && let Some(error) = sim.injected_fault(&target.def.gr(), target.name_or_empty())
    {
        return Err(error);
    }
    if target.subresource.as_deref() == Some("scale") {
        return scale::serve(sim, request);
    }
    match request.verb {
        Verb::Get => read::get(sim, request),
        Verb::List => list::list(sim, request),
        Verb::Watch => watch::start(sim.clone(), request),
        Verb::Create => modify::create(sim, request),
        Verb::Update => modify::update(sim, request),
        Verb::Patch => modify::patch(sim, request),
        Verb::Delete => delete::delete(sim, request),
        Verb::DeleteCollection => delete::delete_collection(sim, request),
    }
}

/// The stored object the target names, or 404.
fn stored_object(store: &StoreInner, target: &Target) -> Result<Arc<Value>, ApiError> {
    store
        .get(&target.def.storage_gr(), target.namespace_or_empty(), target.name_or_empty())
        .ok_or_else(|| ApiError::not_found(&target.def.gr(), target.name_or_empty()))
}
