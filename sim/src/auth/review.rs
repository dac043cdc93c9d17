//! Access reviews: the attributes a SubjectAccessReview's spec asks about
//! (`AuthorizationAttributesFrom` of `pkg/registry/authorization/util`) and
//! the `status` a decision answers with.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::attributes::{Attributes, RequestInfo};
use super::rbac::Decision;
use super::user::UserInfo;

fn field<'a>(object: Option<&'a Value>, key: &str) -> &'a str {
    object.and_then(|object| object.get(key)).and_then(Value::as_str).unwrap_or("")
}

/// The attributes a review spec describes, asked for `user` (the
/// requester for self reviews, the spec's user otherwise).
pub fn review_attributes(user: UserInfo, spec: &Value) -> Attributes {
    let resource = spec.get("resourceAttributes").filter(|attributes| !attributes.is_null());
    let request = if resource.is_some() {
        RequestInfo {
            resource_request: true,
            verb: field(resource, "verb").to_string(),
            namespace: field(resource, "namespace").to_string(),
            api_group: field(resource, "group").to_string(),
            api_version: match field(resource, "version") {
                "" => "*".to_string(),
                version => version.to_string(),
            },
            resource: field(resource, "resource").to_string(),
            subresource: field(resource, "subresource").to_string(),
            name: field(resource, "name").to_string(),
            path: String::new(),
        }
    } else {
        let non_resource = spec.get("nonResourceAttributes");
        RequestInfo {
            resource_request: false,
            path: field(non_resource, "path").to_string(),
            verb: field(non_resource, "verb").to_string(),
            ..RequestInfo::default()
        }
    };
    Attributes { user, request }
}

/// The user a SubjectAccessReview spec names (`user`, `groups`, `uid`,
/// `extra`), taken as given: no groups are added.
pub fn spec_user(spec: &Value) -> UserInfo {
    let strings = |value: Option<&Value>| -> Vec<String> {
        value
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default()
    };
    let extra: BTreeMap<String, Vec<String>> = spec
        .get("extra")
        .and_then(Value::as_object)
        .map(|extra| {
            extra.iter().map(|(key, values)| (key.clone(), strings(Some(values)))).collect()
        })
        .unwrap_or_default();
    UserInfo {
        name: field(Some(spec), "user").to_string(),
        uid: field(Some(spec), "uid").to_string(),
        groups: strings(spec.get("groups")),
        extra,
    }
}

/// `SubjectAccessReviewStatus` of a decision (`reason` omitted when empty).
pub fn access_review_status(decision: &Decision) -> Value {
    let mut status = Map::new();
    status.insert("allowed".into(), json!(decision.allowed));
    if !decision.reason.is_empty() {
        status.insert("reason".into(), json!(decision.reason));
    }
    Value::Object(status)
}
