//! The create-only endpoints of the authentication and authorization APIs,
//! answered in the response body and never stored, as the real REST
//! storages (`pkg/registry/authentication`, `pkg/registry/authorization`,
//! `pkg/registry/core/serviceaccount/storage/token.go`) answer them:
//! TokenReview, SelfSubjectReview, SubjectAccessReview,
//! LocalSubjectAccessReview, SelfSubjectAccessReview,
//! SelfSubjectRulesReview, and the TokenRequest of
//! `serviceaccounts/<name>/token`. Any other verb is 405.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::auth::{self, BoundObject, TokenGrant};
use crate::error::{ApiError, Cause, GroupResource};
use crate::http::request::{ResourceRequest, Verb, parse_object};
use crate::http::response::json_response;
use crate::state::SimState;
use crate::util::{metadata_str, now_rfc3339};
use crate::write::check_type_meta;

/// Serves the create-only resources and `serviceaccounts/token`; `None`
/// for every other request.
pub fn serve(sim: &Arc<SimState>, request: &ResourceRequest) -> Option<Result<Response, ApiError>> {
    let target = &request.target;
    let def = &target.def;
    let token_request =
        target.subresource.as_deref() == Some("token") && def.is("", "serviceaccounts");
    if !token_request && !def.is_review() {
        return None;
    }
    if request.verb != Verb::Create {
        let method = match request.verb {
            Verb::Get | Verb::List | Verb::Watch => "GET",
            Verb::Update => "PUT",
            Verb::Patch => "PATCH",
            _ => "DELETE",
        };
        return Some(Err(ApiError::method_not_allowed(method, &def.gr())));
    }
    if token_request {
        return Some(create_token(sim, request));
    }
    Some(review(sim, request))
}

/// The answer of a review: the object as sent, with its status.
fn answered(mut object: Value, status: Value) -> Response {
    if let Some(fields) = object.as_object_mut() {
        let metadata = fields.entry("metadata").or_insert_with(|| json!({}));
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.entry("creationTimestamp").or_insert(Value::Null);
        }
        fields.insert("status".into(), status);
    }
    json_response(StatusCode::CREATED, &object)
}

fn review(sim: &Arc<SimState>, request: &ResourceRequest) -> Result<Response, ApiError> {
    let def = &request.target.def;
    let mut object = parse_object(&request.body, &request.headers)?;
    check_type_meta(def, &mut object)?;
    let spec = object.get("spec").cloned().unwrap_or(json!({}));
    let store = &sim.store;
    match def.plural.as_str() {
        "tokenreviews" => {
            let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
            if token.is_empty() {
                return Err(ApiError::bad_request(
                    "token is required for TokenReview in authentication",
                ));
            }
            let audiences: Option<Vec<String>> = spec
                .get("audiences")
                .and_then(Value::as_array)
                .map(|items| items.iter().filter_map(Value::as_str).map(String::from).collect())
                .filter(|audiences: &Vec<String>| !audiences.is_empty());
            let now = jiff::Timestamp::now().as_second();
            let status = match sim.tokens.authenticate(store, token, audiences.as_deref(), now) {
                Ok(authenticated) => json!({
                    "authenticated": true,
                    "user": authenticated.user.to_json(),
                    "audiences": authenticated.audiences,
                }),
                Err(error) => json!({"user": {}, "error": error}),
            };
            Ok(answered(object, status))
        }
        "selfsubjectreviews" => {
            // The real storage answers a new object, stamped now.
            let body = json!({
                "kind": def.kind,
                "apiVersion": def.api_version(),
                "metadata": {"creationTimestamp": now_rfc3339()},
                "status": {"userInfo": request.user.to_json()},
            });
            Ok(json_response(StatusCode::CREATED, &body))
        }
        "subjectaccessreviews" => {
            let causes = spec_causes(&spec, true);
            let causes = [causes, metadata_causes(&object, false)].concat();
            invalid_unless_empty(def, &causes)?;
            let attributes = auth::review_attributes(auth::spec_user(&spec), &spec);
            Ok(answered(object, auth::access_review_status(&auth::authorize(store, &attributes))))
        }
        "localsubjectaccessreviews" => {
            let url_namespace = request.target.namespace_or_empty().to_string();
            let body_namespace = metadata_str(&object, "namespace").unwrap_or("").to_string();
            if !body_namespace.is_empty() && body_namespace != url_namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            if let Some(metadata) = crate::util::metadata_mut(&mut object) {
                metadata.insert("namespace".into(), json!(url_namespace));
            }
            let mut causes = spec_causes(&spec, true);
            causes.extend(metadata_causes(&object, true));
            if let Some(resource) = spec.get("resourceAttributes").filter(|value| !value.is_null())
            {
                let namespace = resource.get("namespace").and_then(Value::as_str).unwrap_or("");
                if namespace != url_namespace {
                    causes.push(Cause::invalid(
                        "spec.resourceAttributes.namespace",
                        &json!(namespace),
                        "must match metadata.namespace",
                    ));
                }
            }
            if spec.get("nonResourceAttributes").is_some_and(|value| !value.is_null()) {
                causes.push(Cause::invalid(
                    "spec.nonResourceAttributes",
                    &spec["nonResourceAttributes"],
                    "disallowed on this kind of request",
                ));
            }
            invalid_unless_empty(def, &causes)?;
            let attributes = auth::review_attributes(auth::spec_user(&spec), &spec);
            Ok(answered(object, auth::access_review_status(&auth::authorize(store, &attributes))))
        }
        "selfsubjectaccessreviews" => {
            let causes = [spec_causes(&spec, false), metadata_causes(&object, false)].concat();
            invalid_unless_empty(def, &causes)?;
            let attributes = auth::review_attributes(request.user.clone(), &spec);
            Ok(answered(object, auth::access_review_status(&auth::authorize(store, &attributes))))
        }
        "selfsubjectrulesreviews" => {
            let namespace = spec.get("namespace").and_then(Value::as_str).unwrap_or("");
            if namespace.is_empty() {
                return Err(ApiError::bad_request("no namespace on request"));
            }
            let status = auth::rules_review_status(store, &request.user, namespace);
            Ok(answered(object, status))
        }
        _ => Err(ApiError::method_not_allowed("POST", &def.gr())),
    }
}

/// `ValidateSubjectAccessReviewSpec` (`with_user`) and
/// `ValidateSelfSubjectAccessReviewSpec`.
fn spec_causes(spec: &Value, with_user: bool) -> Vec<Cause> {
    let present = |key: &str| spec.get(key).is_some_and(|value| !value.is_null());
    let mut causes = Vec::new();
    let (resource, non_resource) =
        (present("resourceAttributes"), present("nonResourceAttributes"));
    if resource && non_resource {
        causes.push(Cause::invalid(
            "spec.nonResourceAttributes",
            &spec["nonResourceAttributes"],
            "cannot be specified in combination with resourceAttributes",
        ));
    }
    if !resource && !non_resource {
        causes.push(Cause::invalid(
            "spec.resourceAttributes",
            &json!("null"),
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    if with_user {
        let user = spec.get("user").and_then(Value::as_str).unwrap_or("");
        let no_groups = spec.get("groups").and_then(Value::as_array).is_none_or(Vec::is_empty);
        if user.is_empty() && no_groups {
            causes.push(Cause::invalid(
                "spec.user",
                &json!(user),
                "at least one of user or group must be specified",
            ));
        }
    }
    causes
}

/// Reviews take no metadata (LocalSubjectAccessReviews their namespace).
fn metadata_causes(object: &Value, namespace_allowed: bool) -> Vec<Cause> {
    let mut metadata: Map<String, Value> =
        object.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
    for ignored in ["managedFields", "creationTimestamp"] {
        if metadata.get(ignored).is_none_or(Value::is_null) {
            metadata.remove(ignored);
        }
    }
    if namespace_allowed {
        metadata.remove("namespace");
    }
    metadata.retain(|_, value| !value.is_null() && *value != json!("") && *value != json!({}));
    if metadata.is_empty() {
        return Vec::new();
    }
    let detail =
        if namespace_allowed { "must be empty except for namespace" } else { "must be empty" };
    vec![Cause::invalid("metadata", &Value::Object(metadata), detail)]
}

fn invalid_unless_empty(
    def: &crate::registry::ResourceDef,
    causes: &[Cause],
) -> Result<(), ApiError> {
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&def.kind, &def.group, "", causes))
    }
}

/// The TokenRequest group and kind, in which its errors are reported.
const TOKEN_REQUEST: (&str, &str) = ("authentication.k8s.io", "TokenRequest");

/// `POST .../serviceaccounts/<name>/token`: a TokenRequest for the
/// ServiceAccount.
fn create_token(sim: &Arc<SimState>, request: &ResourceRequest) -> Result<Response, ApiError> {
    let target = &request.target;
    let (namespace, name) =
        (target.namespace_or_empty().to_string(), target.name_or_empty().to_string());
    let mut object = parse_object(&request.body, &request.headers)?;
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != TOKEN_REQUEST.1 {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({kind}) does not match the kind on the URL ({})",
            TOKEN_REQUEST.1
        )));
    }
    let spec = object.get("spec").cloned().unwrap_or(json!({}));
    let expiration = spec.get("expirationSeconds").and_then(Value::as_i64).unwrap_or(3600);
    let mut causes = Vec::new();
    for (key, expected, detail) in [
        ("name", name.as_str(), "must match the service account name if specified"),
        ("namespace", namespace.as_str(), "must match the service account namespace if specified"),
    ] {
        let given = metadata_str(&object, key).unwrap_or("");
        if !given.is_empty() && given != expected {
            causes.push(Cause::invalid(&format!("metadata.{key}"), &json!(given), detail));
        }
    }
    if expiration < 600 {
        causes.push(Cause::invalid(
            "spec.expirationSeconds",
            &json!(expiration),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > 1 << 32 {
        causes.push(Cause::invalid(
            "spec.expirationSeconds",
            &json!(expiration),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(TOKEN_REQUEST.1, TOKEN_REQUEST.0, "", &causes));
    }
    let audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(String::from).collect())
        .filter(|audiences: &Vec<String>| !audiences.is_empty())
        .unwrap_or_else(auth::api_audiences);
    let store = sim.store.lock();
    let bound_ref = spec.get("boundObjectRef").filter(|value| !value.is_null());
    let bound = match bound_ref {
        Some(reference) => Some(bound_object(&store, reference, &namespace, &name)?),
        None => None,
    };
    let now = jiff::Timestamp::now().as_second();
    let grant = TokenGrant {
        namespace: namespace.clone(),
        name: name.clone(),
        expiration_seconds: expiration,
        audiences: audiences.clone(),
        bound,
        now,
    };
    let (token, expiry) = sim.tokens.issue(&store, &sim.rng, &grant)?;
    drop(store);
    let created =
        jiff::Timestamp::from_second(now).map(|t| t.to_string()).unwrap_or_else(|_| now_rfc3339());
    let expires = jiff::Timestamp::from_second(expiry).map(|t| t.to_string()).unwrap_or_default();
    if let Some(fields) = object.as_object_mut() {
        fields.insert("kind".into(), json!(TOKEN_REQUEST.1));
        fields.insert("apiVersion".into(), json!(format!("{}/v1", TOKEN_REQUEST.0)));
        let metadata = fields.entry("metadata").or_insert_with(|| json!({}));
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.insert("name".into(), json!(name));
            metadata.insert("namespace".into(), json!(namespace));
            metadata.insert("creationTimestamp".into(), json!(created));
        }
        fields.insert(
            "spec".into(),
            json!({"audiences": audiences, "expirationSeconds": expiration, "boundObjectRef": bound_ref}),
        );
        fields.insert("status".into(), json!({"token": token, "expirationTimestamp": expires}));
    }
    Ok(json_response(StatusCode::CREATED, &object))
}

/// The Pod or Secret a TokenRequest binds its token to, checked as the
/// real storage checks it.
fn bound_object(
    store: &crate::store::StoreInner,
    reference: &Value,
    namespace: &str,
    account: &str,
) -> Result<BoundObject, ApiError> {
    let field = |key: &str| reference.get(key).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind, name) = (field("apiVersion"), field("kind"), field("name"));
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let resource = match (group, kind) {
        ("", "Pod") => "pods",
        ("", "Secret") => "secrets",
        _ => {
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {group}/{version}, Kind={kind}"
            )));
        }
    };
    let found = store
        .get(&GroupResource::new("", resource), namespace, name)
        .ok_or_else(|| ApiError::not_found(&GroupResource::new("", resource), name))?;
    if kind == "Pod"
        && found.pointer("/spec/serviceAccountName").and_then(Value::as_str).unwrap_or("")
            != account
    {
        return Err(ApiError::bad_request(format!(
            "cannot bind token for serviceaccount {account:?} to pod running with different serviceaccount name."
        )));
    }
    let uid = metadata_str(&found, "uid").unwrap_or("").to_string();
    let given_uid = field("uid");
    if !given_uid.is_empty() && given_uid != uid {
        return Err(ApiError::conflict(
            &GroupResource::new(group, kind),
            name,
            &format!(
                "the UID in the bound object reference ({given_uid}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    Ok(BoundObject { kind: kind.to_string(), name: name.to_string(), uid })
}
