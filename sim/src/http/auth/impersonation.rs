//! Impersonation (`endpoints/filters/impersonation.go`): `Impersonate-User`
//! (a ServiceAccount user name impersonates that ServiceAccount),
//! `Impersonate-Group`, `Impersonate-Uid` and `Impersonate-Extra-<key>`
//! headers, each authorized as the `impersonate` verb on `users`,
//! `serviceaccounts`, `groups`, `uids` or `userextras/<key>`; the request
//! then runs as the impersonated user, with `system:authenticated` added
//! as the real filter adds it.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::forbidden;
use crate::auth::{
    self, ALL_SERVICE_ACCOUNTS, ANONYMOUS, AUTHENTICATED, Attributes, RequestInfo, UNAUTHENTICATED,
    UserInfo, split_service_account_username,
};
use crate::state::SimState;

const USER_HEADER: &str = "impersonate-user";
const GROUP_HEADER: &str = "impersonate-group";
const UID_HEADER: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";

/// The attributes that authorize acting as one thing.
fn acting_as(
    api_group: &str,
    resource: &str,
    subresource: &str,
    namespace: &str,
    name: &str,
) -> RequestInfo {
    RequestInfo {
        resource_request: true,
        verb: "impersonate".into(),
        api_group: api_group.into(),
        resource: resource.into(),
        subresource: subresource.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..RequestInfo::default()
    }
}

fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers.get_all(name).iter().filter_map(|value| value.to_str().ok()).collect()
}

/// A plain-text 500, as `responsewriters.InternalError` answers a
/// malformed impersonation.
fn internal_error(message: &str) -> Box<Response> {
    let mut response = Response::new(Body::from(format!("Internal Server Error: {message}\n")));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Box::new(response)
}

/// The user a request acts as: `requestor` itself without impersonation
/// headers, else the impersonated user once every part is authorized.
pub fn impersonate(
    sim: &SimState,
    requestor: UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, Box<Response>> {
    let users = values(headers, USER_HEADER);
    let groups_requested = values(headers, GROUP_HEADER);
    let uids = values(headers, UID_HEADER);
    let extras: Vec<(String, &str)> = headers
        .iter()
        .filter_map(|(name, value)| {
            let key = name.as_str().strip_prefix(EXTRA_PREFIX)?;
            Some((percent_decode(key).to_ascii_lowercase(), value.to_str().ok()?))
        })
        .collect();
    if users.is_empty() {
        if groups_requested.is_empty() && uids.is_empty() && extras.is_empty() {
            return Ok(requestor);
        }
        return Err(internal_error(
            "requested impersonation of groups, uid or extra without impersonating a user",
        ));
    }
    let username = users[0].to_string();
    let mut actions = Vec::new();
    let mut groups: Vec<String> = Vec::new();
    match split_service_account_username(&username) {
        Some((namespace, name)) => {
            actions.push(acting_as("", "serviceaccounts", "", namespace, name));
            if groups_requested.is_empty() {
                groups.push(ALL_SERVICE_ACCOUNTS.to_string());
                groups.push(format!("{ALL_SERVICE_ACCOUNTS}:{namespace}"));
            }
        }
        None => actions.push(acting_as("", "users", "", "", &username)),
    }
    for group in &groups_requested {
        actions.push(acting_as("", "groups", "", "", group));
        groups.push((*group).to_string());
    }
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in &extras {
        actions.push(acting_as("authentication.k8s.io", "userextras", key, "", value));
        extra.entry(key.clone()).or_default().push((*value).to_string());
    }
    let uid = uids.first().map(|uid| (*uid).to_string()).unwrap_or_default();
    if !uid.is_empty() {
        actions.push(acting_as("authentication.k8s.io", "uids", "", "", &uid));
    }
    for action in actions {
        let attributes = Attributes { user: requestor.clone(), request: action };
        let decision = auth::authorize(&sim.store, &attributes);
        if !decision.allowed {
            return Err(Box::new(forbidden(&attributes, &decision.reason)));
        }
    }
    if username == ANONYMOUS {
        if !groups.iter().any(|group| group == UNAUTHENTICATED) {
            groups.push(UNAUTHENTICATED.to_string());
        }
    } else if !groups.iter().any(|group| group == AUTHENTICATED || group == UNAUTHENTICATED) {
        groups.push(AUTHENTICATED.to_string());
    }
    Ok(UserInfo { name: username, uid, groups, extra })
}

/// Percent-decoding of an extra key (`Impersonate-Extra-` keys are
/// escaped in header names).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                index += 3;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
