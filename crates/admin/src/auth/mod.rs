//! Who is calling and what they may do. A token arrives as the `token` parameter, as
//! `X-Esri-Authorization: Bearer …` or as `Authorization: Bearer …` ([`token_from`]). An
//! [`Authority`] turns it into a [`Caller`] and decides whether that caller may read or change
//! the target ServiceRefresh; [`reviews::KubeAuthority`] asks the API server (TokenReview,
//! SubjectAccessReview), `fake::StaticAuthority` answers from a table for tests, and
//! [`cached::CachedAuthority`] remembers answers briefly. [`check`] runs both steps and says
//! why a request is refused, before any job is looked up; [`limiter`] stops a client address
//! that keeps presenting bad tokens from costing reviews.

pub mod cached;
#[cfg(any(test, feature = "fixtures"))]
pub mod fake;
pub mod limiter;
pub mod reviews;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use futures::future::BoxFuture;
use thiserror::Error;

use super::config::TargetRef;

/// An authenticated caller, as TokenReview describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    pub username: String,
    pub uid: Option<String>,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What a request does to the target ServiceRefresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// Reading jobs and pages: `get` on the ServiceRefresh.
    Read,
    /// Submitting or cancelling a job: `patch` on the ServiceRefresh (it sets an annotation).
    Write,
}

impl Access {
    /// The Kubernetes verb this access needs.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Read => "get",
            Self::Write => "patch",
        }
    }
}

/// The authority could not answer (the API server failed or refused the review itself).
#[derive(Debug, Error)]
pub enum AuthError {
    #[error("the TokenReview request failed")]
    TokenReview(#[source] kube::Error),
    #[error("the SubjectAccessReview request failed")]
    AccessReview(#[source] kube::Error),
    /// One failed review answering several callers that asked at once.
    #[error(transparent)]
    Shared(Arc<AuthError>),
}

/// Authenticates tokens and authorizes callers.
pub trait Authority: Send + Sync {
    /// The caller a bearer token belongs to, or `None` when the token is not valid.
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Caller>, AuthError>>;

    /// Whether `caller` may have `access` to `target`.
    fn authorize<'a>(
        &'a self,
        caller: &'a Caller,
        access: Access,
        target: &'a TargetRef,
    ) -> BoxFuture<'a, Result<bool, AuthError>>;

    /// Whether `token` is known to be valid without asking anyone (a remembered answer).
    fn known<'a>(&'a self, token: &'a str) -> BoxFuture<'a, bool> {
        let _ = token;
        Box::pin(std::future::ready(false))
    }
}

/// The authority of a running operator: TokenReview and SubjectAccessReview through
/// `client`, their answers remembered briefly ([`cached`]).
pub fn kube_authority(client: kube::Client) -> Arc<dyn Authority> {
    Arc::new(cached::CachedAuthority::new(Arc::new(reviews::KubeAuthority::new(client))))
}

/// Why a request was refused.
#[derive(Debug, Error)]
pub enum Denial {
    #[error("no token in the request")]
    TokenRequired,
    #[error("the token is not valid")]
    InvalidToken,
    #[error("{username} may not {verb} servicerefreshes/{target}")]
    Forbidden { username: String, verb: &'static str, target: String },
    #[error("the caller's token or rights could not be checked")]
    Unavailable(#[source] AuthError),
}

/// The bearer token of a request: the `token` parameter (query or form, as ArcGIS takes it),
/// else `X-Esri-Authorization: Bearer …`, else `Authorization: Bearer …`. Empty values
/// count as absent.
pub fn token_from<'a>(parameter: Option<&'a str>, headers: &'a HeaderMap) -> Option<&'a str> {
    let bearer = |name: &str| {
        let value = headers.get(name)?.to_str().ok()?.trim();
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    };
    parameter
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .or_else(|| bearer("x-esri-authorization").filter(|token| !token.is_empty()))
        .or_else(|| bearer("authorization").filter(|token| !token.is_empty()))
}

/// Authenticates `token` and checks `access` to `target`.
pub async fn check(
    authority: &dyn Authority,
    token: Option<&str>,
    access: Access,
    target: &TargetRef,
) -> Result<Caller, Denial> {
    let token = token.ok_or(Denial::TokenRequired)?;
    let caller = authority
        .authenticate(token)
        .await
        .map_err(Denial::Unavailable)?
        .ok_or(Denial::InvalidToken)?;
    if authority.authorize(&caller, access, target).await.map_err(Denial::Unavailable)? {
        Ok(caller)
    } else {
        Err(Denial::Forbidden {
            username: caller.username,
            verb: access.verb(),
            target: target.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_token_parameter_wins_then_the_esri_header_then_authorization() {
        let mut headers = HeaderMap::new();
        assert_eq!(token_from(None, &headers), None);
        headers.insert("authorization", HeaderValue::from_static("Bearer from-authorization"));
        assert_eq!(token_from(None, &headers), Some("from-authorization"));
        headers.insert("x-esri-authorization", HeaderValue::from_static("bearer  from-esri "));
        assert_eq!(token_from(None, &headers), Some("from-esri"));
        assert_eq!(token_from(Some("from-parameter"), &headers), Some("from-parameter"));
        assert_eq!(token_from(Some("  "), &headers), Some("from-esri"));
        let mut basic = HeaderMap::new();
        basic.insert("authorization", HeaderValue::from_static("Basic dXNlcjpwdw=="));
        assert_eq!(token_from(None, &basic), None);
    }

    #[tokio::test]
    async fn check_tells_missing_invalid_and_forbidden_apart() {
        let authority = fake::StaticAuthority::default()
            .user("writer-token", "alice", &[Access::Read, Access::Write])
            .user("reader-token", "bob", &[Access::Read]);
        let target = TargetRef { namespace: "arcgis".into(), name: "all".into() };
        let check = |token: Option<&'static str>, access| {
            let (authority, target) = (&authority, &target);
            async move { check(authority, token, access, target).await }
        };
        assert!(matches!(check(None, Access::Read).await, Err(Denial::TokenRequired)));
        assert!(matches!(check(Some("garbage"), Access::Read).await, Err(Denial::InvalidToken)));
        assert!(matches!(
            check(Some("reader-token"), Access::Write).await,
            Err(Denial::Forbidden { verb: "patch", .. })
        ));
        assert_eq!(check(Some("reader-token"), Access::Read).await.unwrap().username, "bob");
        assert_eq!(check(Some("writer-token"), Access::Write).await.unwrap().username, "alice");
    }
}
