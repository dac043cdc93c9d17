//! The REST handlers of resource requests: counting and fault injection
//! (500, 429 with `Retry-After`, 504 timeouts, etcd's too-large 500, never
//! a 409; drawn by rate or set off by a rule) for every request, then one
//! handler per verb (`read`, `list`, `modify`, `delete`, the `scale`
//! subresource and `pods/log`); watches are the `watch` module's. Handlers
//! parse what they need, call the write pipeline under the store lock, and
//! render the response.

mod delete;
mod list;
mod logs;
mod modify;
mod read;
mod scale;

use std::sync::Arc;

use axum::response::Response;
use serde_json::Value;

use super::request::{ResourceRequest, Target, Verb};
use super::response::{error_response, too_many_requests};
use super::watch;
use crate::error::ApiError;
use crate::state::{InjectedFault, SimState};
use crate::store::StoreInner;

/// Serves one parsed resource request: counts it, injects the configured
/// fault if one is drawn, else answers it.
pub async fn serve(sim: &Arc<SimState>, request: &ResourceRequest) -> Response {
    let target = &request.target;
    let resource = match &target.subresource {
        Some(subresource) => format!("{}/{subresource}", target.def.plural),
        None => target.def.plural.clone(),
    };
    let verb = request.verb.as_str();
    sim.count_request(verb, &resource);
    if let Some(answer) = super::auth::serve(sim, request) {
        return answer.unwrap_or_else(|error| error_response(&error));
    }
    match sim.injected_fault(verb, &resource, request.verb.is_write()) {
        None => {}
        Some(InjectedFault::InternalError) => {
            return error_response(&ApiError::internal("etcdserver: request timed out"));
        }
        Some(InjectedFault::TooManyRequests { retry_after_seconds }) => {
            return too_many_requests(retry_after_seconds);
        }
        Some(InjectedFault::RequestTooLarge) => {
            return error_response(&ApiError::request_too_large());
        }
        Some(InjectedFault::Timeout { after_ms, commits }) => {
            if commits {
                // The handler runs on; only its answer is lost.
                let _ = answer(sim, request);
            }
            if after_ms > 0 {
                // A sim shutting down answers at once, so that no hanging request holds
                // its graceful shutdown.
                let mut shutdown = sim.shutdown.clone();
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_millis(after_ms)) => {}
                    _ = shutdown.wait_for(|stopping| *stopping) => {}
                }
            }
            return error_response(&ApiError::timeout());
        }
    }
    match answer(sim, request) {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

/// Answers a request by its verb.
fn answer(sim: &Arc<SimState>, request: &ResourceRequest) -> Result<Response, ApiError> {
    if request.target.subresource.as_deref() == Some("scale") {
        return scale::serve(sim, request);
    }
    if request.target.subresource.as_deref() == Some("log") {
        if request.verb != Verb::Get {
            return Err(ApiError::method_not_allowed(
                request.verb.as_str(),
                &request.target.def.gr(),
            ));
        }
        return logs::serve(sim, request);
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
