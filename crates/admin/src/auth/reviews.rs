//! The Kubernetes [`Authority`]: a `TokenReview` (authentication.k8s.io/v1) says who a bearer
//! token belongs to, and a `SubjectAccessReview` (authorization.k8s.io/v1) whether that user
//! may `get` or `patch` the target ServiceRefresh, exactly as the API server would decide
//! for `kubectl get` or `kubectl annotate`. The operator's ServiceAccount needs `create` on
//! both (the chart grants it, or binds `system:auth-delegator` in namespaced mode).

use futures::future::{BoxFuture, FutureExt};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};
use tracing::debug;

use super::{Access, AuthError, Authority, Caller};
use crate::config::TargetRef;
use servicerefresh_core::crd::GROUP;

/// Reviews tokens and rights with the API server.
#[derive(Clone)]
pub struct KubeAuthority {
    client: Client,
}

impl KubeAuthority {
    /// Reviews through `client`, authenticated as the operator.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// The TokenReview of `token`, for the API server's default audiences.
pub fn token_review(token: &str) -> TokenReview {
    TokenReview {
        spec: TokenReviewSpec { token: token.to_owned(), audiences: None },
        ..TokenReview::default()
    }
}

/// The SubjectAccessReview asking whether `caller` may have `access` to `target`.
pub fn access_review(caller: &Caller, access: Access, target: &TargetRef) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(caller.username.clone()),
            uid: caller.uid.clone(),
            groups: (!caller.groups.is_empty()).then(|| caller.groups.clone()),
            extra: (!caller.extra.is_empty()).then(|| caller.extra.clone()),
            resource_attributes: Some(ResourceAttributes {
                group: Some(GROUP.to_owned()),
                resource: Some("servicerefreshes".to_owned()),
                namespace: Some(target.namespace.clone()),
                name: Some(target.name.clone()),
                verb: Some(access.verb().to_owned()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

impl Authority for KubeAuthority {
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Caller>, AuthError>> {
        async move {
            let reviews: Api<TokenReview> = Api::all(self.client.clone());
            let review = reviews
                .create(&PostParams::default(), &token_review(token))
                .await
                .map_err(AuthError::TokenReview)?;
            let Some(status) = review.status else {
                return Ok(None);
            };
            if status.authenticated != Some(true) {
                if let Some(error) = status.error {
                    debug!(%error, "admin API: token not authenticated");
                }
                return Ok(None);
            }
            let user = status.user.unwrap_or_default();
            Ok(Some(Caller {
                username: user.username.unwrap_or_default(),
                uid: user.uid,
                groups: user.groups.unwrap_or_default(),
                extra: user.extra.unwrap_or_default(),
            }))
        }
        .boxed()
    }

    fn authorize<'a>(
        &'a self,
        caller: &'a Caller,
        access: Access,
        target: &'a TargetRef,
    ) -> BoxFuture<'a, Result<bool, AuthError>> {
        async move {
            let reviews: Api<SubjectAccessReview> = Api::all(self.client.clone());
            let review = reviews
                .create(&PostParams::default(), &access_review(caller, access, target))
                .await
                .map_err(AuthError::AccessReview)?;
            Ok(review.status.is_some_and(|status| status.allowed && status.denied != Some(true)))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reviews_ask_for_exactly_the_target_and_verb() {
        let caller = Caller {
            username: "system:serviceaccount:arcgis:admin".into(),
            uid: Some("u-1".into()),
            groups: vec!["system:serviceaccounts".into()],
            extra: Default::default(),
        };
        let target = TargetRef { namespace: "arcgis".into(), name: "refresh-all".into() };
        let review = serde_json::to_value(access_review(&caller, Access::Write, &target)).unwrap();
        assert_eq!(
            review["spec"],
            json!({
                "user": "system:serviceaccount:arcgis:admin",
                "uid": "u-1",
                "groups": ["system:serviceaccounts"],
                "resourceAttributes": {
                    "group": "gisops.io",
                    "resource": "servicerefreshes",
                    "namespace": "arcgis",
                    "name": "refresh-all",
                    "verb": "patch",
                },
            })
        );
        assert_eq!(review["apiVersion"], "authorization.k8s.io/v1");
        let token = serde_json::to_value(token_review("abc")).unwrap();
        assert_eq!(token["spec"], json!({"token": "abc"}));
        assert_eq!(token["kind"], "TokenReview");
    }
}
