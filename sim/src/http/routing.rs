//! Routing of `/api` and `/apis` requests: discovery documents by path,
//! everything else to the resource handlers, after the injected latency.
//! Unknown paths get the real server's plain-text 404.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::discovery;
use super::handlers;
use super::request::{Representation, ResourceRequest, Target, Verb, parse_query};
use super::response::{error_response, json_response, not_found_text};
use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::state::SimState;

/// The largest request body the real server reads (`MaxRequestBodyBytes`,
/// 3 MiB); a larger one is a 413.
const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Entry point for every request the non-resource routes do not take.
pub async fn handle(State(sim): State<Arc<SimState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return error_response(&ApiError::entity_too_large(&format!(
                "limit is {MAX_BODY_BYTES}"
            )));
        }
    };
    let latency = sim.faults().latency_ms;
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let query = parts.uri.query().map(parse_query).unwrap_or_default();
    let path = parts.uri.path().to_string();
    let segments: Vec<&str> = path.split('/').filter(|segment| !segment.is_empty()).collect();
    let (group, version, resource_path) = match segments.as_slice() {
        ["api"] => return json_response(StatusCode::OK, &discovery::api_versions(sim.addr)),
        ["api", "v1"] => {
            let store = sim.store.lock();
            return json_response(
                StatusCode::OK,
                &discovery::resource_list(&store.registry, "", "v1"),
            );
        }
        ["apis"] => {
            return json_response(
                StatusCode::OK,
                &discovery::group_list(&sim.store.lock().registry),
            );
        }
        ["apis", group] => {
            return match discovery::group(&sim.store.lock().registry, group) {
                Some(document) => json_response(StatusCode::OK, &document),
                None => error_response(&ApiError::no_resource()),
            };
        }
        ["apis", group, version] => {
            let store = sim.store.lock();
            return if store.registry.has_group_version(group, version) {
                json_response(
                    StatusCode::OK,
                    &discovery::resource_list(&store.registry, group, version),
                )
            } else {
                error_response(&ApiError::no_resource())
            };
        }
        ["api", "v1", resource_path @ ..] => ("", "v1", resource_path),
        ["apis", group, version, resource_path @ ..] => (*group, *version, resource_path),
        _ => return not_found_text(),
    };
    // Resolved in a statement of its own, so that the store lock is released
    // before the handler takes it.
    let target = Target::resolve(&sim.store.lock().registry, group, version, resource_path);
    let request = target.and_then(|target| {
        let verb = Verb::of(&parts.method, &target, &query)?;
        let representation = Representation::accepted(&parts.headers);
        Ok(ResourceRequest {
            target,
            verb,
            query,
            headers: parts.headers,
            body,
            representation,
            user: parts.extensions.get::<UserInfo>().cloned().unwrap_or_else(UserInfo::anonymous),
        })
    });
    match request {
        Ok(request) => handlers::serve(&sim, &request).await,
        Err(error) => error_response(&error),
    }
}
