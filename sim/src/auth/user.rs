//! Users as the authenticators hand them to the authorizer (`user.Info`):
//! name, uid, groups and extra, with the well-known names of the
//! `system:` users and groups, and the JSON form `authentication.k8s.io`
//! reviews report (`UserInfo`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The group whose members every request is allowed (the real server's
/// privileged-group authorizer runs before RBAC).
pub const SYSTEM_MASTERS: &str = "system:masters";
/// Added to every authenticated user.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group of the anonymous user.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The user of requests without credentials.
pub const ANONYMOUS: &str = "system:anonymous";
/// The group of every ServiceAccount.
pub const ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// User names of ServiceAccounts: `system:serviceaccount:<ns>:<name>`.
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// An authenticated (or anonymous) user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// User name, e.g. `system:serviceaccount:arcgis:operator`.
    pub name: String,
    /// A unique id (a ServiceAccount's uid); empty for most static users.
    pub uid: String,
    /// Group names, in the order the authenticator produced them.
    pub groups: Vec<String>,
    /// Extra attributes (`authentication.kubernetes.io/credential-id`, ...).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The user of a request without credentials on a path that admits it.
    pub fn anonymous() -> Self {
        UserInfo {
            name: ANONYMOUS.to_string(),
            groups: vec![UNAUTHENTICATED.to_string()],
            ..UserInfo::default()
        }
    }

    /// The user of requests without credentials on the plain-HTTP side
    /// (the insecure port's `InsecureSuperuser`).
    pub fn insecure_superuser() -> Self {
        UserInfo {
            name: "system:unsecured".to_string(),
            groups: vec![SYSTEM_MASTERS.to_string(), AUTHENTICATED.to_string()],
            ..UserInfo::default()
        }
    }

    /// A ServiceAccount's user: its name, uid and the groups the real
    /// server gives it (`system:authenticated` last, as the authenticated
    /// group adder appends it).
    pub fn service_account(namespace: &str, name: &str, uid: &str) -> Self {
        UserInfo {
            name: service_account_username(namespace, name),
            uid: uid.to_string(),
            groups: vec![
                ALL_SERVICE_ACCOUNTS.to_string(),
                format!("{ALL_SERVICE_ACCOUNTS}:{namespace}"),
                AUTHENTICATED.to_string(),
            ],
            extra: BTreeMap::new(),
        }
    }

    /// Whether the user is a member of `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|member| member == group)
    }

    /// `authentication.k8s.io/v1` `UserInfo` (every field `omitempty`).
    pub fn to_json(&self) -> Value {
        let mut fields = Map::new();
        if !self.name.is_empty() {
            fields.insert("username".into(), json!(self.name));
        }
        if !self.uid.is_empty() {
            fields.insert("uid".into(), json!(self.uid));
        }
        if !self.groups.is_empty() {
            fields.insert("groups".into(), json!(self.groups));
        }
        if !self.extra.is_empty() {
            fields.insert("extra".into(), json!(self.extra));
        }
        Value::Object(fields)
    }
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}")
}

/// The namespace and name of a ServiceAccount user name; `None` for other
/// users (or a malformed one).
pub fn split_service_account_username(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix(SERVICE_ACCOUNT_PREFIX)?;
    let (namespace, name) = rest.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then_some((namespace, name))
}
