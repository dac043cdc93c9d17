//! Bearer tokens: the static admin token the sim's kubeconfig carries (a
//! member of `system:masters`, as a `--token-auth-file` user), and the
//! ServiceAccount tokens it issues for TokenRequests: JWTs with the claims
//! the real issuer writes (`iss`, `sub`, `aud`, `exp`, `iat`, `nbf`, `jti`
//! and `kubernetes.io`), signed with a per-cluster HMAC key (HS256; the
//! real server signs with RS256 or ES256 keys). Authenticating one checks
//! what the real ServiceAccount authenticator checks: signature, issuer,
//! audiences, expiry with its minute of leeway, and that the ServiceAccount
//! (and the Pod or Secret the token is bound to) still exists with the same
//! uid, and is not past its deletion time by more than the leeway. Failures
//! read as the real server's (`pkg/serviceaccount`). The `jsonwebtoken` crate
//! encodes, signs and verifies; the claims checks stay here, since their
//! messages must be the real server's.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use super::user::{AUTHENTICATED, SYSTEM_MASTERS, UserInfo};
use crate::error::{ApiError, GroupResource};
use crate::store::{Store, StoreInner};
use crate::util::{Rng, SharedRng, metadata_str};

/// The issuer and default audience of a kubeadm cluster
/// (`--service-account-issuer`, `--api-audiences`).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The user the admin token authenticates as.
pub const ADMIN_USER: &str = "kubernetes-admin";
/// Clock skew the real validator tolerates (go-jose's `DefaultLeeway`).
const LEEWAY_SECONDS: i64 = 60;
/// The error of a token no authenticator recognizes.
pub const INVALID_BEARER_TOKEN: &str = "invalid bearer token";

const CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";
const POD_NAME: &str = "authentication.kubernetes.io/pod-name";
const POD_UID: &str = "authentication.kubernetes.io/pod-uid";

/// What a ServiceAccount token is bound to, besides its ServiceAccount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundObject {
    /// `Pod` or `Secret`.
    pub kind: String,
    pub name: String,
    pub uid: String,
}

/// A token to issue for a ServiceAccount.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub namespace: String,
    /// The ServiceAccount's name.
    pub name: String,
    /// Seconds of validity.
    pub expiration_seconds: i64,
    /// Audiences (the API audiences when the request named none).
    pub audiences: Vec<String>,
    /// The Pod or Secret the token lives no longer than.
    pub bound: Option<BoundObject>,
    /// Now, in seconds since the epoch.
    pub now: i64,
}

/// A successful authentication: the user and the audiences the token is
/// valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub user: UserInfo,
    pub audiences: Vec<String>,
}

/// The cluster's token issuer and authenticator.
pub struct TokenAuthority {
    signing_key: EncodingKey,
    verifying_key: DecodingKey,
    key_id: String,
    admin_token: String,
}

impl std::fmt::Debug for TokenAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthority").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// The API audiences (`--api-audiences`).
pub fn api_audiences() -> Vec<String> {
    vec![ISSUER.to_string()]
}

impl TokenAuthority {
    /// An authority with a key and an admin token drawn from `rng`.
    pub fn new(rng: &mut Rng) -> Self {
        let key_bytes: Vec<u8> = (0..4).flat_map(|_| rng.next_u64().to_le_bytes()).collect();
        let key_id = URL_SAFE_NO_PAD.encode(&key_bytes[..12]);
        let admin_token = rng.string(b"abcdefghijklmnopqrstuvwxyz0123456789", 32);
        TokenAuthority {
            signing_key: EncodingKey::from_secret(&key_bytes),
            verifying_key: DecodingKey::from_secret(&key_bytes),
            key_id,
            admin_token,
        }
    }

    /// The admin token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Issues a signed token for an existing ServiceAccount (404 when it
    /// does not exist); returns it and its expiry (in seconds since the
    /// epoch).
    pub fn issue(
        &self,
        store: &StoreInner,
        rng: &SharedRng,
        grant: &TokenGrant,
    ) -> Result<(String, i64), ApiError> {
        let accounts = GroupResource::new("", "serviceaccounts");
        let account = store
            .get(&accounts, &grant.namespace, &grant.name)
            .ok_or_else(|| ApiError::not_found(&accounts, &grant.name))?;
        let (namespace, name) = (&grant.namespace, &grant.name);
        let expiry = grant.now + grant.expiration_seconds;
        let mut kubernetes = json!({
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": metadata_str(&account, "uid").unwrap_or("")},
        });
        if let (Some(bound), Some(fields)) = (&grant.bound, kubernetes.as_object_mut()) {
            let key = if bound.kind == "Pod" { "pod" } else { "secret" };
            fields.insert(key.into(), json!({"name": bound.name, "uid": bound.uid}));
        }
        let claims = json!({
            "aud": grant.audiences,
            "exp": expiry,
            "iat": grant.now,
            "iss": ISSUER,
            "jti": rng.with(|rng| rng.uuid()),
            "kubernetes.io": kubernetes,
            "nbf": grant.now,
            "sub": super::user::service_account_username(namespace, name),
        });
        // The real issuer's header names the algorithm and key, without `typ`.
        let header =
            Header { typ: None, kid: Some(self.key_id.clone()), ..Header::new(Algorithm::HS256) };
        let token = jsonwebtoken::encode(&header, &claims, &self.signing_key).map_err(|error| {
            ApiError::internal(format!("signing the ServiceAccount token: {error}"))
        })?;
        Ok((token, expiry))
    }

    /// Authenticates a bearer token for `audiences` (the API audiences
    /// when `None`) at `now` (seconds since the epoch). The error is the
    /// real server's aggregated authentication error.
    pub fn authenticate(
        &self,
        store: &Store,
        token: &str,
        audiences: Option<&[String]>,
        now: i64,
    ) -> Result<Authenticated, String> {
        let api = api_audiences();
        let requested: Vec<String> =
            audiences.map(<[String]>::to_vec).unwrap_or_else(|| api.clone());
        if token == self.admin_token {
            // An audience-agnostic authenticator: valid for the API audiences only.
            let audiences: Vec<String> =
                requested.iter().filter(|aud| api.contains(aud)).cloned().collect();
            if audiences.is_empty() {
                return Err(INVALID_BEARER_TOKEN.to_string());
            }
            let user = UserInfo {
                name: ADMIN_USER.to_string(),
                groups: vec![SYSTEM_MASTERS.to_string(), AUTHENTICATED.to_string()],
                ..UserInfo::default()
            };
            return Ok(Authenticated { user, audiences });
        }
        let Some(claims) = self.our_claims(token) else {
            return Err(INVALID_BEARER_TOKEN.to_string());
        };
        self.validate(&store.lock(), token, &claims, &requested, now)
            .map_err(|error| format!("[{INVALID_BEARER_TOKEN}, {error}]"))
    }

    /// The claims of a compact JWT whose issuer is ours (signature not yet
    /// checked); `None` for anything else, which other authenticators
    /// would have to recognize.
    fn our_claims(&self, token: &str) -> Option<Value> {
        if token.trim_start().starts_with('{') {
            return None;
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [_, payload, _] = parts.as_slice() else {
            return None;
        };
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (claims.get("iss").and_then(Value::as_str) == Some(ISSUER)).then_some(claims)
    }

    fn validate(
        &self,
        store: &StoreInner,
        token: &str,
        claims: &Value,
        requested: &[String],
        now: i64,
    ) -> Result<Authenticated, String> {
        if jsonwebtoken::decode::<Value>(token, &self.verifying_key, &signature_only()).is_err() {
            return Err("go-jose/go-jose: error in cryptographic primitive".to_string());
        }
        let token_audiences: Vec<String> = match claims.get("aud") {
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) => {
                many.iter().filter_map(Value::as_str).map(String::from).collect()
            }
            _ => api_audiences(),
        };
        let audiences: Vec<String> =
            token_audiences.iter().filter(|aud| requested.contains(aud)).cloned().collect();
        if audiences.is_empty() {
            return Err(format!(
                "token audiences {} is invalid for the target audiences {}",
                go_quoted_list(&token_audiences),
                go_quoted_list(requested)
            ));
        }
        validate_times(claims, now)?;
        let claim = |pointer: &str| claims.pointer(pointer).and_then(Value::as_str).unwrap_or("");
        let namespace = claim("/kubernetes.io/namespace");
        let (name, uid) = (
            claim("/kubernetes.io/serviceaccount/name"),
            claim("/kubernetes.io/serviceaccount/uid"),
        );
        let accounts = GroupResource::new("", "serviceaccounts");
        let account = store
            .get(&accounts, namespace, name)
            .ok_or_else(|| format!("serviceaccounts {name:?} not found"))?;
        if account.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(format!("service account {namespace}/{name} has been deleted"));
        }
        let account_uid = metadata_str(&account, "uid").unwrap_or("");
        if account_uid != uid {
            return Err(format!(
                "service account UID ({account_uid}) does not match claim ({uid})"
            ));
        }
        let mut user = UserInfo::service_account(namespace, name, uid);
        let mut extra = BTreeMap::new();
        for (kind, resource) in [("secret", "secrets"), ("pod", "pods")] {
            let Some(bound) = claims.pointer(&format!("/kubernetes.io/{kind}")) else {
                continue;
            };
            let field = |key: &str| bound.get(key).and_then(Value::as_str).unwrap_or("");
            // A bound object being deleted keeps its tokens valid until a
            // minute past its deletion time, so that a pod can still use its
            // token during graceful termination.
            let found = store
                .get(&GroupResource::new("", resource), namespace, field("name"))
                .filter(|object| !deleted_before(object, now - LEEWAY_SECONDS))
                .ok_or_else(|| "service account token has been invalidated".to_string())?;
            let found_uid = metadata_str(&found, "uid").unwrap_or("");
            if found_uid != field("uid") {
                let label = if kind == "pod" { "pod" } else { "secret" };
                return Err(format!(
                    "{label} UID ({found_uid}) does not match claim ({})",
                    field("uid")
                ));
            }
            if kind == "pod" {
                extra.insert(POD_NAME.to_string(), vec![field("name").to_string()]);
                extra.insert(POD_UID.to_string(), vec![field("uid").to_string()]);
            }
        }
        if let Some(id) = claims.get("jti").and_then(Value::as_str) {
            extra.insert(CREDENTIAL_ID.to_string(), vec![format!("JTI={id}")]);
        }
        user.extra = extra;
        Ok(Authenticated { user, audiences })
    }
}

/// A validation of the signature alone: audiences, times and the bound
/// objects are checked afterwards, with the real server's messages.
fn signature_only() -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation
}

/// Whether `object`'s `deletionTimestamp` lies before `limit` (seconds since
/// the epoch); an unparsable one counts as deleted.
fn deleted_before(object: &Value, limit: i64) -> bool {
    let Some(deletion) = object.pointer("/metadata/deletionTimestamp").and_then(Value::as_str)
    else {
        return false;
    };
    deletion.parse::<jiff::Timestamp>().map_or(true, |at| at.as_second() < limit)
}

/// `exp`, `nbf` and `iat` against `now`, with the validator's leeway and
/// messages.
pub fn validate_times(claims: &Value, now: i64) -> Result<(), String> {
    let time = |key: &str| claims.get(key).and_then(Value::as_i64);
    match time("exp") {
        Some(expiry) if now <= expiry + LEEWAY_SECONDS => {}
        _ => return Err("service account token has expired".to_string()),
    }
    if time("nbf").is_some_and(|not_before| now + LEEWAY_SECONDS < not_before) {
        return Err("service account token is not valid yet".to_string());
    }
    if time("iat").is_some_and(|issued| now + LEEWAY_SECONDS < issued) {
        return Err("service account token is issued in the future".to_string());
    }
    Ok(())
}

/// A string list as Go's `%q` prints a `[]string`: `["a" "b"]`.
pub fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
    format!("[{}]", quoted.join(" "))
}
