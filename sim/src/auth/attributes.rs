//! What a request asks to do, in the authorizer's terms: the request info the real server's
//! `RequestInfoFactory` derives from the method, path and query (the shared
//! `kube-request-info` crate, which the operator's request metrics use too), and the user it
//! comes from.

pub use kube_request_info::{RequestInfo, request_info};

use super::user::UserInfo;

/// A request's attributes with its user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// Who asks.
    pub user: UserInfo,
    /// What is asked.
    pub request: RequestInfo,
}
