//! Authentication and authorization, decided as the real API server
//! decides them: who a request comes from (`tokens`: the admin token and the
//! ServiceAccount tokens the sim issues; `user`), what it asks to do
//! (`attributes`: the request-info mapping of method, path and query), and
//! whether RBAC allows it (`rbac`, over the Roles, ClusterRoles and bindings
//! in the store, after the `system:masters` short-circuit), plus the default
//! policy a new cluster starts with (`policy`) and the access reviews'
//! attributes and answers (`review`). The HTTP side (the filter in front of
//! the router, the review endpoints) is `http::auth`.

mod attributes;
mod policy;
mod rbac;
mod review;
mod tokens;
mod user;

pub use attributes::{Attributes, RequestInfo, request_info};
pub use policy::bootstrap_policy;
pub use rbac::{RBAC_GROUP, authorize, rules_review_status};
pub use review::{access_review_status, review_attributes, spec_user};
pub use tokens::{ADMIN_USER, BoundObject, TokenAuthority, TokenGrant, api_audiences};
pub use user::{
    ALL_SERVICE_ACCOUNTS, ANONYMOUS, AUTHENTICATED, UNAUTHENTICATED, UserInfo,
    split_service_account_username,
};

#[cfg(test)]
mod tests;
