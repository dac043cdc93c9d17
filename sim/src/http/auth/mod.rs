//! The authentication and authorization filter in front of every route,
//! and the endpoints of the authentication and authorization APIs.
//!
//! The filter does what the real server's handler chain does before any
//! handler runs (`endpoints/filters`): it authenticates the bearer token
//! (the admin token, or a ServiceAccount token the sim issued); on the
//! secure (TLS) side it admits a request without credentials as
//! `system:anonymous` only on the health and version endpoints (as an
//! `AuthenticationConfiguration` whose anonymous authenticator has those
//! paths as its conditions), and answers every other unauthenticated request
//! 401, while on the plain-HTTP side a request without credentials acts as
//! `system:unsecured`, a `system:masters` member, as on the insecure port
//! real servers had until 1.20 (kubectl never sends credentials over plain
//! HTTP, so this is what keeps the admin kubeconfig working); it applies `Impersonate-*` headers
//! (`impersonation`); then authorizes the request's attributes with RBAC
//! and answers 403 with the real message when no rule allows it. The
//! authenticated user travels to the handlers in the request's extensions.
//! The sim's own `/sim/v1/*` endpoints are not part of the simulated API and
//! skip the filter.
//!
//! `reviews` serves the create-only resources (TokenReview,
//! SelfSubjectReview, the four access reviews) and `serviceaccounts/token`.

mod impersonation;
mod reviews;

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::request::parse_query;
use super::response::error_response;
use super::tls::Transport;
use crate::auth::{self, Attributes, UserInfo};
use crate::error::ApiError;
use crate::state::SimState;

pub use reviews::serve;

/// Paths the anonymous authenticator admits (the conditions of its
/// `AuthenticationConfiguration`); what anonymous users may do there is
/// RBAC's decision (`system:public-info-viewer`).
const ANONYMOUS_PATHS: [&str; 5] = ["/healthz", "/livez", "/readyz", "/version", "/version/"];

/// The filter: authenticate, impersonate, authorize, then the route.
pub async fn filter(
    State(sim): State<Arc<SimState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    if path.starts_with("/sim/") {
        return next.run(request).await;
    }
    let secure = request
        .extensions()
        .get::<ConnectInfo<Transport>>()
        .is_none_or(|ConnectInfo(transport)| transport.secure);
    let Some(user) = authenticate(&sim, request.headers(), &path, secure) else {
        return error_response(&unauthorized());
    };
    let user = match impersonation::impersonate(&sim, user, request.headers()) {
        Ok(user) => user,
        Err(response) => return *response,
    };
    let query = request.uri().query().map(parse_query).unwrap_or_default();
    let attributes =
        Attributes { user, request: auth::request_info(request.method().as_str(), &path, &query) };
    let decision = auth::authorize(&sim.store, &attributes);
    if !decision.allowed {
        return forbidden(&attributes, &decision.reason);
    }
    request.extensions_mut().insert(attributes.user);
    next.run(request).await
}

/// The bearer token of an `Authorization` header, as the real bearer
/// token authenticator reads it: `None` for no header, another scheme, or
/// an empty token.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The user of a request: its token's; without one, the anonymous user on
/// the anonymous paths of the secure port, and `system:unsecured` on the
/// plain-HTTP side (as on the insecure port of servers before 1.20);
/// `None` (401) otherwise, and for a token that does not authenticate.
fn authenticate(sim: &SimState, headers: &HeaderMap, path: &str, secure: bool) -> Option<UserInfo> {
    match bearer_token(headers) {
        Some(token) => {
            let now = jiff::Timestamp::now().as_second();
            let outcome = sim.tokens.authenticate(&sim.store, token, None, now);
            match outcome {
                Ok(authenticated) => Some(authenticated.user),
                Err(error) => {
                    tracing::debug!(%error, "Unable to authenticate the request");
                    None
                }
            }
        }
        None if !secure => Some(UserInfo::insecure_superuser()),
        None => ANONYMOUS_PATHS.contains(&path).then(UserInfo::anonymous),
    }
}

/// 401 `Unauthorized`, the real server's body for failed authentication.
pub fn unauthorized() -> ApiError {
    ApiError { code: 401, reason: "Unauthorized", message: "Unauthorized".into(), details: None }
}

/// `responsewriters.Forbidden`: the real message (HTML-significant
/// characters escaped), then the authorizer's reason, as a Status whose
/// details name the resource and object.
pub fn forbidden(attributes: &Attributes, reason: &str) -> Response {
    let request = &attributes.request;
    let user = &attributes.user.name;
    let message = if !request.resource_request {
        format!("User {user:?} cannot {} path {:?}", request.verb, request.path)
    } else {
        let resource = if request.subresource.is_empty() {
            request.resource.clone()
        } else {
            format!("{}/{}", request.resource, request.subresource)
        };
        let scope = if request.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", request.namespace)
        };
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} {scope}",
            request.verb, request.api_group
        )
    };
    let message = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let why = if reason.is_empty() { message } else { format!("{message}: {reason}") };
    let mut details = Map::new();
    let (group, resource) = if request.resource_request {
        (request.api_group.as_str(), request.resource.as_str())
    } else {
        ("", "")
    };
    let qualified = match (group, resource) {
        (_, "") => String::new(),
        ("", resource) => resource.to_string(),
        (group, resource) => format!("{resource}.{group}"),
    };
    let name = if request.resource_request { request.name.as_str() } else { "" };
    if !name.is_empty() {
        details.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        details.insert("group".into(), json!(group));
    }
    if !resource.is_empty() {
        details.insert("kind".into(), json!(resource));
    }
    let message = if qualified.is_empty() {
        format!("forbidden: {why}")
    } else if name.is_empty() {
        format!("{qualified} is forbidden: {why}")
    } else {
        format!("{qualified} {name:?} is forbidden: {why}")
    };
    let error =
        ApiError { code: 403, reason: "Forbidden", message, details: Some(Value::Object(details)) };
    let mut response = error_response(&error);
    response.headers_mut().insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}
