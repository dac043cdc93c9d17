//! The authorizer's rule matching and rule resolution, and ServiceAccount
//! tokens, against a store holding just the objects each case needs.

use serde_json::{Value, json};

use super::rbac::{PolicyRule, aggregate, authorize, rules_review_status};
use super::tokens::{TokenAuthority, TokenGrant, api_audiences, validate_times};
use super::*;
use crate::error::GroupResource;
use crate::store::{EventType, Store};
use crate::util::{Rng, SharedRng};

fn rule(value: Value) -> PolicyRule {
    PolicyRule::from_json(&value)
}

fn resource(
    verb: &str,
    group: &str,
    resource: &str,
    subresource: &str,
    namespace: &str,
    name: &str,
) -> RequestInfo {
    RequestInfo {
        resource_request: true,
        verb: verb.into(),
        api_group: group.into(),
        api_version: "v1".into(),
        resource: resource.into(),
        subresource: subresource.into(),
        namespace: namespace.into(),
        name: name.into(),
        path: String::new(),
    }
}

fn non_resource(verb: &str, path: &str) -> RequestInfo {
    RequestInfo { verb: verb.into(), path: path.into(), ..RequestInfo::default() }
}

#[test]
fn verbs_groups_and_resources_match_exactly_or_by_wildcard() {
    let patch = rule(
        json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}),
    );
    assert!(patch.allows(&resource("patch", "apps", "deployments", "", "arcgis", "web")));
    assert!(patch.allows(&resource("get", "apps", "deployments", "", "", "")));
    assert!(!patch.allows(&resource("delete", "apps", "deployments", "", "arcgis", "web")));
    assert!(
        !patch.allows(&resource("patch", "", "deployments", "", "arcgis", "web")),
        "core is not apps"
    );
    assert!(!patch.allows(&resource("patch", "apps", "replicasets", "", "arcgis", "web")));
    let all = rule(json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}));
    assert!(all.allows(&resource("deletecollection", "x.io", "things", "status", "ns", "")));
    assert!(!all.allows(&non_resource("get", "/healthz")), "resource rules grant no paths");
}

#[test]
fn subresources_need_their_own_grant() {
    let deployments =
        rule(json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}));
    assert!(!deployments.allows(&resource("patch", "apps", "deployments", "status", "a", "web")));
    let status = rule(
        json!({"apiGroups": ["apps"], "resources": ["deployments/status"], "verbs": ["patch"]}),
    );
    assert!(status.allows(&resource("patch", "apps", "deployments", "status", "a", "web")));
    assert!(!status.allows(&resource("patch", "apps", "deployments", "", "a", "web")));
    let any_scale = rule(json!({"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]}));
    assert!(any_scale.allows(&resource("get", "apps", "deployments", "scale", "a", "web")));
    assert!(!any_scale.allows(&resource("get", "apps", "deployments", "status", "a", "web")));
    assert!(!any_scale.allows(&resource("get", "apps", "scale", "", "a", "web")));
}

#[test]
fn resource_names_limit_named_requests_only_to_those_names() {
    let named = rule(
        json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"], "verbs": ["get", "list", "watch"]}),
    );
    assert!(named.allows(&resource("get", "", "configmaps", "", "a", "cfg")));
    assert!(!named.allows(&resource("get", "", "configmaps", "", "a", "other")));
    assert!(
        !named.allows(&resource("list", "", "configmaps", "", "a", "")),
        "a list names nothing"
    );
    assert!(
        named.allows(&resource("watch", "", "configmaps", "", "a", "cfg")),
        "watch by metadata.name"
    );
}

#[test]
fn non_resource_urls_match_exactly_or_by_prefix() {
    let urls =
        rule(json!({"nonResourceURLs": ["/healthz", "/apis/*", "/metrics"], "verbs": ["get"]}));
    assert!(urls.allows(&non_resource("get", "/healthz")));
    assert!(!urls.allows(&non_resource("get", "/healthz/etcd")));
    assert!(urls.allows(&non_resource("get", "/apis/apps/v1")));
    assert!(urls.allows(&non_resource("get", "/apis/")));
    assert!(!urls.allows(&non_resource("get", "/apis")));
    assert!(!urls.allows(&non_resource("post", "/metrics")));
    assert!(!urls.allows(&resource("get", "", "metrics", "", "", "")));
    assert!(
        rule(json!({"nonResourceURLs": ["*"], "verbs": ["*"]}))
            .allows(&non_resource("delete", "/x"))
    );
}

struct Fixture {
    store: Store,
}

impl Fixture {
    fn new() -> Self {
        Fixture { store: Store::new(100) }
    }

    fn add(&self, resource: &str, object: Value) -> &Self {
        let group = if resource == "serviceaccounts" || resource == "pods" || resource == "secrets"
        {
            ""
        } else {
            RBAC_GROUP
        };
        self.store.lock().commit(&GroupResource::new(group, resource), object, EventType::Added);
        self
    }

    fn allows(&self, user: &UserInfo, request: RequestInfo) -> (bool, String) {
        let decision = authorize(&self.store, &Attributes { user: user.clone(), request });
        (decision.allowed, decision.reason)
    }
}

fn sa(namespace: &str, name: &str) -> UserInfo {
    UserInfo::service_account(namespace, name, "uid-1")
}

fn role(namespace: &str, name: &str, rules: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": namespace}, "rules": rules})
}

fn binding(namespace: &str, name: &str, kind: &str, role: &str, subjects: Value) -> Value {
    let mut metadata = json!({"name": name});
    if !namespace.is_empty() {
        metadata["namespace"] = json!(namespace);
    }
    json!({"metadata": metadata, "roleRef": {"apiGroup": RBAC_GROUP, "kind": kind, "name": role}, "subjects": subjects})
}

#[test]
fn role_bindings_grant_in_their_namespace_only_and_say_by_what() {
    let fixture = Fixture::new();
    fixture
        .add(
            "roles",
            role(
                "arcgis",
                "patcher",
                json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}]),
            ),
        )
        .add(
            "rolebindings",
            binding(
                "arcgis",
                "patcher",
                "Role",
                "patcher",
                json!([{"kind": "ServiceAccount", "name": "op"}]),
            ),
        );
    let op = sa("arcgis", "op");
    let (allowed, reason) =
        fixture.allows(&op, resource("patch", "apps", "deployments", "", "arcgis", "web"));
    assert!(allowed);
    assert_eq!(
        reason,
        r#"RBAC: allowed by RoleBinding "patcher/arcgis" of Role "patcher" to ServiceAccount "op/arcgis""#
    );
    assert!(!fixture.allows(&op, resource("patch", "apps", "deployments", "", "other", "web")).0);
    assert!(
        !fixture.allows(&op, resource("patch", "apps", "deployments", "", "", "")).0,
        "not cluster-wide"
    );
    assert!(
        !fixture
            .allows(
                &sa("other", "op"),
                resource("patch", "apps", "deployments", "", "arcgis", "web")
            )
            .0
    );
}

#[test]
fn cluster_roles_bound_in_a_namespace_or_cluster_wide() {
    let fixture = Fixture::new();
    fixture
        .add(
            "clusterroles",
            role(
                "",
                "reader",
                json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]),
            ),
        )
        .add(
            "rolebindings",
            binding(
                "a",
                "read",
                "ClusterRole",
                "reader",
                json!([{"kind": "User", "name": "alice", "apiGroup": RBAC_GROUP}]),
            ),
        )
        .add(
            "clusterrolebindings",
            binding(
                "",
                "read-all",
                "ClusterRole",
                "reader",
                json!([{"kind": "Group", "name": "readers", "apiGroup": RBAC_GROUP}]),
            ),
        )
        .add(
            "clusterrolebindings",
            binding(
                "",
                "op-read",
                "ClusterRole",
                "reader",
                json!([{"kind": "ServiceAccount", "name": "op", "namespace": "arcgis"}]),
            ),
        );
    let alice = UserInfo {
        name: "alice".into(),
        groups: vec![AUTHENTICATED.into()],
        ..UserInfo::default()
    };
    assert!(fixture.allows(&alice, resource("list", "", "configmaps", "", "a", "")).0);
    assert!(!fixture.allows(&alice, resource("list", "", "configmaps", "", "b", "")).0);
    assert!(!fixture.allows(&alice, resource("list", "", "configmaps", "", "", "")).0);
    let bob =
        UserInfo { name: "bob".into(), groups: vec!["readers".into()], ..UserInfo::default() };
    let (allowed, reason) = fixture.allows(&bob, resource("list", "", "configmaps", "", "", ""));
    assert!(allowed);
    assert_eq!(
        reason,
        r#"RBAC: allowed by ClusterRoleBinding "read-all" of ClusterRole "reader" to Group "readers""#
    );
    let (allowed, reason) =
        fixture.allows(&sa("arcgis", "op"), resource("get", "", "configmaps", "", "x", "c"));
    assert!(allowed);
    assert_eq!(
        reason,
        r#"RBAC: allowed by ClusterRoleBinding "op-read" of ClusterRole "reader" to ServiceAccount "op/arcgis""#
    );
}

#[test]
fn masters_are_allowed_everything_and_missing_roles_are_reasons() {
    let fixture = Fixture::new();
    let admin = UserInfo {
        name: "admin".into(),
        groups: vec![super::user::SYSTEM_MASTERS.into()],
        ..UserInfo::default()
    };
    assert_eq!(fixture.allows(&admin, non_resource("delete", "/anything")), (true, String::new()));
    fixture
        .add(
            "rolebindings",
            binding("a", "gone", "Role", "missing", json!([{"kind": "User", "name": "u"}])),
        )
        .add(
            "clusterrolebindings",
            binding("", "gone", "ClusterRole", "absent", json!([{"kind": "User", "name": "u"}])),
        );
    let user = UserInfo { name: "u".into(), ..UserInfo::default() };
    let (allowed, reason) = fixture.allows(&user, resource("get", "", "pods", "", "a", "p"));
    assert!(!allowed);
    assert_eq!(
        reason,
        r#"RBAC: [clusterrole.rbac.authorization.k8s.io "absent" not found, role.rbac.authorization.k8s.io "missing" not found]"#
    );
    assert_eq!(
        fixture.allows(&UserInfo::anonymous(), resource("get", "", "pods", "", "a", "p")),
        (false, String::new())
    );
    assert_eq!(aggregate(&["x".into(), "x".into()]), "x");
}

#[test]
fn rules_reviews_list_resource_and_non_resource_rules() {
    let fixture = Fixture::new();
    for object in bootstrap_policy() {
        let plural =
            if object["kind"] == "ClusterRole" { "clusterroles" } else { "clusterrolebindings" };
        fixture.add(plural, object);
    }
    let status = rules_review_status(&fixture.store, &sa("a", "b"), "a");
    let resources = status["resourceRules"].as_array().cloned().unwrap_or_default();
    assert!(
        resources.iter().any(|rule| rule["resources"]
            == json!(["selfsubjectaccessreviews", "selfsubjectrulesreviews"]))
    );
    assert!(resources.iter().any(|rule| rule["resources"] == json!(["selfsubjectreviews"])));
    let urls: Vec<Value> = status["nonResourceRules"].as_array().cloned().unwrap_or_default();
    assert!(urls.iter().any(|rule| {
        rule["nonResourceURLs"].as_array().is_some_and(|urls| urls.contains(&json!("/apis/*")))
    }));
    assert_eq!(status["incomplete"], false);
    // Anonymous users see the public info only.
    let (allowed, _) = fixture.allows(&UserInfo::anonymous(), non_resource("get", "/healthz"));
    assert!(allowed);
    assert!(!fixture.allows(&UserInfo::anonymous(), non_resource("get", "/api")).0);
    assert!(fixture.allows(&sa("a", "b"), non_resource("get", "/openapi/v3")).0);
}

fn account(namespace: &str, name: &str, uid: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": namespace, "uid": uid}})
}

#[test]
fn service_account_tokens_authenticate_until_the_account_changes() {
    let fixture = Fixture::new();
    fixture.add("serviceaccounts", account("arcgis", "op", "uid-1"));
    let authority = TokenAuthority::new(&mut Rng::new(7));
    let rng = SharedRng::new(1);
    let grant = |expiration_seconds: i64, audiences: Vec<String>| TokenGrant {
        namespace: "arcgis".into(),
        name: "op".into(),
        expiration_seconds,
        audiences,
        bound: None,
        now: 1_000_000,
    };
    let (token, expiry) =
        authority.issue(&fixture.store.lock(), &rng, &grant(3600, api_audiences())).unwrap();
    assert_eq!(expiry, 1_003_600);
    let authenticated = authority.authenticate(&fixture.store, &token, None, 1_000_010).unwrap();
    assert_eq!(authenticated.user.name, "system:serviceaccount:arcgis:op");
    assert_eq!(
        authenticated.user.groups,
        ["system:serviceaccounts", "system:serviceaccounts:arcgis", "system:authenticated"]
    );
    assert_eq!(authenticated.user.uid, "uid-1");
    assert!(
        authenticated.user.extra["authentication.kubernetes.io/credential-id"][0]
            .starts_with("JTI=")
    );
    assert_eq!(authenticated.audiences, api_audiences());
    // Expiry, with the minute of leeway.
    assert!(authority.authenticate(&fixture.store, &token, None, 1_003_660).is_ok());
    assert_eq!(
        authority.authenticate(&fixture.store, &token, None, 1_003_661),
        Err("[invalid bearer token, service account token has expired]".to_string())
    );
    // Other audiences.
    assert_eq!(
        authority.authenticate(&fixture.store, &token, Some(&["vault".to_string()]), 1_000_010),
        Err(r#"[invalid bearer token, token audiences ["https://kubernetes.default.svc.cluster.local"] is invalid for the target audiences ["vault"]]"#.to_string())
    );
    let (vault, _) =
        authority.issue(&fixture.store.lock(), &rng, &grant(600, vec!["vault".into()])).unwrap();
    assert!(authority.authenticate(&fixture.store, &vault, None, 1_000_010).is_err());
    assert!(
        authority
            .authenticate(&fixture.store, &vault, Some(&["vault".to_string()]), 1_000_010)
            .is_ok()
    );
    // A tampered token, another cluster's token, garbage.
    let tampered = format!("{}x", &token[..token.len() - 1]);
    assert!(authority.authenticate(&fixture.store, &tampered, None, 1_000_010).is_err());
    let other = TokenAuthority::new(&mut Rng::new(8));
    assert!(other.authenticate(&fixture.store, &token, None, 1_000_010).is_err());
    assert_eq!(
        authority.authenticate(&fixture.store, "not-a-token", None, 1_000_010),
        Err("invalid bearer token".to_string())
    );
    // The account recreated under another uid.
    fixture.add("serviceaccounts", account("arcgis", "op", "uid-2"));
    assert_eq!(
        authority.authenticate(&fixture.store, &token, None, 1_000_010),
        Err("[invalid bearer token, service account UID (uid-2) does not match claim (uid-1)]"
            .to_string())
    );
    assert!(
        authority
            .issue(
                &fixture.store.lock(),
                &rng,
                &TokenGrant { name: "nobody".into(), ..grant(600, api_audiences()) }
            )
            .is_err()
    );
}

#[test]
fn the_admin_token_is_a_master() {
    let fixture = Fixture::new();
    let authority = TokenAuthority::new(&mut Rng::new(7));
    let admin = authority.authenticate(&fixture.store, authority.admin_token(), None, 0).unwrap();
    assert_eq!(admin.user.name, "kubernetes-admin");
    assert_eq!(admin.user.groups, ["system:masters", "system:authenticated"]);
    assert!(
        authority
            .authenticate(&fixture.store, authority.admin_token(), Some(&["x".to_string()]), 0)
            .is_err()
    );
}

#[test]
fn token_times_carry_a_minute_of_leeway() {
    let claims = json!({"exp": 100, "nbf": 50, "iat": 50});
    assert!(validate_times(&claims, 160).is_ok());
    assert_eq!(validate_times(&claims, 161), Err("service account token has expired".into()));
    assert_eq!(validate_times(&claims, -11), Err("service account token is not valid yet".into()));
    assert!(validate_times(&json!({"nbf": 0}), 0).is_err(), "no expiry is expired");
}

#[test]
fn a_pod_bound_token_lives_through_the_pods_grace_period() {
    let fixture = Fixture::new();
    fixture.add("serviceaccounts", account("arcgis", "op", "uid-1"));
    let pod = |deletion: Option<&str>| {
        let mut pod = json!({"metadata": {"name": "op-1", "namespace": "arcgis", "uid": "pod-1"}});
        if let Some(at) = deletion {
            pod["metadata"]["deletionTimestamp"] = json!(at);
        }
        pod
    };
    fixture.add("pods", pod(None));
    let authority = TokenAuthority::new(&mut Rng::new(7));
    let now = jiff::Timestamp::now().as_second();
    let grant = TokenGrant {
        namespace: "arcgis".into(),
        name: "op".into(),
        expiration_seconds: 3607,
        audiences: api_audiences(),
        bound: Some(BoundObject { kind: "Pod".into(), name: "op-1".into(), uid: "pod-1".into() }),
        now,
    };
    let (token, _) = authority.issue(&fixture.store.lock(), &SharedRng::new(1), &grant).unwrap();
    let user = authority.authenticate(&fixture.store, &token, None, now).unwrap().user;
    assert_eq!(user.extra["authentication.kubernetes.io/pod-uid"], ["pod-1"]);
    // Deleted gracefully: valid until a minute past the deletion time.
    let at = |seconds: i64| jiff::Timestamp::from_second(now + seconds).unwrap().to_string();
    fixture.add("pods", pod(Some(&at(30))));
    assert!(authority.authenticate(&fixture.store, &token, None, now).is_ok());
    fixture.add("pods", pod(Some(&at(-59))));
    assert!(authority.authenticate(&fixture.store, &token, None, now).is_ok());
    fixture.add("pods", pod(Some(&at(-61))));
    assert_eq!(
        authority.authenticate(&fixture.store, &token, None, now),
        Err("[invalid bearer token, service account token has been invalidated]".to_string())
    );
}
