//! The RBAC authorizer (`plugin/pkg/auth/authorizer/rbac`): the rules that
//! apply to a user in a namespace, found through the ClusterRoleBindings and
//! the namespace's RoleBindings in the store (the rule resolver of
//! `pkg/registry/rbac/validation/rule.go`), and whether one of them allows
//! the request (`RuleAllows`). Members of `system:masters` are allowed
//! everything before RBAC is asked, as by the real server's privileged-group
//! authorizer. Aggregated ClusterRoles are read as stored (no aggregation
//! controller fills their rules).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::attributes::{Attributes, RequestInfo};
use super::user::{SYSTEM_MASTERS, UserInfo, service_account_username};
use crate::error::GroupResource;
use crate::store::{Store, StoreInner};
use crate::util::metadata_str;

/// The API group of the RBAC kinds.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// One `PolicyRule`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

impl PolicyRule {
    /// A rule from its JSON form (entries that are not strings are ignored).
    pub fn from_json(rule: &Value) -> Self {
        PolicyRule {
            verbs: strings(rule.get("verbs")),
            api_groups: strings(rule.get("apiGroups")),
            resources: strings(rule.get("resources")),
            resource_names: strings(rule.get("resourceNames")),
            non_resource_urls: strings(rule.get("nonResourceURLs")),
        }
    }

    /// The rules of a Role or ClusterRole object.
    pub fn rules_of(role: &Value) -> Vec<PolicyRule> {
        role.get("rules")
            .and_then(Value::as_array)
            .map(|rules| rules.iter().map(PolicyRule::from_json).collect())
            .unwrap_or_default()
    }

    fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|rule_verb| rule_verb == "*" || rule_verb == verb)
    }

    fn api_group_matches(&self, group: &str) -> bool {
        self.api_groups.iter().any(|rule_group| rule_group == "*" || rule_group == group)
    }

    /// `resource/subresource` matches the rule's resource exactly, `*`, or
    /// `*/subresource`.
    fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|rule_resource| {
            rule_resource == "*"
                || rule_resource == combined
                || (!subresource.is_empty()
                    && rule_resource.strip_prefix("*/") == Some(subresource))
        })
    }

    fn resource_name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty()
            || self.resource_names.iter().any(|rule_name| rule_name == name)
    }

    /// `*`, the exact path, or a prefix ending in `*`.
    fn non_resource_url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|url| {
            url == "*"
                || url == path
                || url.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix))
        })
    }

    /// `RuleAllows`: whether this rule allows the request.
    pub fn allows(&self, request: &RequestInfo) -> bool {
        if request.resource_request {
            let combined = if request.subresource.is_empty() {
                request.resource.clone()
            } else {
                format!("{}/{}", request.resource, request.subresource)
            };
            self.verb_matches(&request.verb)
                && self.api_group_matches(&request.api_group)
                && self.resource_matches(&combined, &request.subresource)
                && self.resource_name_matches(&request.name)
        } else {
            self.verb_matches(&request.verb) && self.non_resource_url_matches(&request.path)
        }
    }
}

/// The authorizer's answer: allowed or no opinion (denied), and the
/// reason the real server reports (`RBAC: allowed by ...`, or the errors
/// met resolving the rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// Where a rule comes from, described as the RBAC authorizer's reason
/// does.
fn describe_subject(subject: &Value, binding_namespace: &str) -> String {
    let field = |key: &str| subject.get(key).and_then(Value::as_str).unwrap_or("");
    let kind = field("kind");
    if kind == "ServiceAccount" {
        let namespace =
            if field("namespace").is_empty() { binding_namespace } else { field("namespace") };
        format!("{kind} {:?}", format!("{}/{namespace}", field("name")))
    } else {
        format!("{kind} {:?}", field("name"))
    }
}

fn role_ref_field<'a>(binding: &'a Value, key: &str) -> &'a str {
    binding.pointer(&format!("/roleRef/{key}")).and_then(Value::as_str).unwrap_or("")
}

fn describe_binding(binding: &Value, subject: &Value) -> String {
    let name = metadata_str(binding, "name").unwrap_or("");
    let namespace = metadata_str(binding, "namespace").unwrap_or("");
    let (kind, qualified) = if namespace.is_empty() {
        ("ClusterRoleBinding", name.to_string())
    } else {
        ("RoleBinding", format!("{name}/{namespace}"))
    };
    format!(
        "{kind} {qualified:?} of {} {:?} to {}",
        role_ref_field(binding, "kind"),
        role_ref_field(binding, "name"),
        describe_subject(subject, namespace)
    )
}

/// `appliesToUser`: whether a binding subject names the user (a
/// ServiceAccount subject without a namespace means the binding's).
fn subject_applies(user: &UserInfo, subject: &Value, binding_namespace: &str) -> bool {
    let field = |key: &str| subject.get(key).and_then(Value::as_str).unwrap_or("");
    match field("kind") {
        "User" => user.name == field("name"),
        "Group" => user.in_group(field("name")),
        "ServiceAccount" => {
            let namespace =
                if field("namespace").is_empty() { binding_namespace } else { field("namespace") };
            !namespace.is_empty() && user.name == service_account_username(namespace, field("name"))
        }
        _ => false,
    }
}

/// The rules a binding's `roleRef` grants, or the error the real resolver
/// reports (the informer listers' singular-resource NotFound).
fn role_ref_rules(
    store: &StoreInner,
    binding: &Value,
    namespace: &str,
) -> Result<Vec<PolicyRule>, String> {
    let name = role_ref_field(binding, "name");
    let (resource, singular, role_namespace) = match role_ref_field(binding, "kind") {
        "Role" => ("roles", "role", namespace),
        "ClusterRole" => ("clusterroles", "clusterrole", ""),
        other => return Err(format!("unsupported role reference kind: {other:?}")),
    };
    store
        .get(&GroupResource::new(RBAC_GROUP, resource), role_namespace, name)
        .map(|role| PolicyRule::rules_of(&role))
        .ok_or_else(|| format!("{singular}.{RBAC_GROUP} {name:?} not found"))
}

/// One binding that applies to the user: its description and its rules.
pub struct Grant {
    /// `ClusterRoleBinding "x" of ClusterRole "y" to User "z"`.
    pub source: String,
    /// The rules of the role it binds.
    pub rules: Vec<PolicyRule>,
}

/// The rules that apply to a user in a namespace ("" for cluster scope):
/// ClusterRoleBindings first, then the namespace's RoleBindings, each in
/// name order; and the errors met resolving them.
pub fn resolve(store: &StoreInner, user: &UserInfo, namespace: &str) -> (Vec<Grant>, Vec<String>) {
    let (mut grants, mut errors) = (Vec::new(), Vec::new());
    let mut visit = |binding: &Arc<Value>, binding_namespace: &str| {
        let subjects = binding.get("subjects").and_then(Value::as_array);
        let Some(subject) = subjects.and_then(|subjects| {
            subjects.iter().find(|subject| subject_applies(user, subject, binding_namespace))
        }) else {
            return;
        };
        match role_ref_rules(store, binding, binding_namespace) {
            Ok(rules) => grants.push(Grant { source: describe_binding(binding, subject), rules }),
            Err(error) => errors.push(error),
        }
    };
    if let Some(bindings) =
        store.collections.get(&GroupResource::new(RBAC_GROUP, "clusterrolebindings"))
    {
        for binding in bindings.values() {
            visit(binding, "");
        }
    }
    if !namespace.is_empty()
        && let Some(bindings) =
            store.collections.get(&GroupResource::new(RBAC_GROUP, "rolebindings"))
    {
        for ((binding_namespace, _), binding) in bindings.iter() {
            if binding_namespace == namespace {
                visit(binding, namespace);
            }
        }
    }
    (grants, errors)
}

/// `utilerrors.NewAggregate(...).Error()`: one message alone, several in
/// brackets, repeated ones once.
pub fn aggregate(errors: &[String]) -> String {
    let mut unique: Vec<&str> = Vec::new();
    for error in errors {
        if !unique.contains(&error.as_str()) {
            unique.push(error);
        }
    }
    match unique.as_slice() {
        [one] => (*one).to_string(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Authorizes a request: `system:masters` first (without taking the store
/// lock), then RBAC.
pub fn authorize(store: &Store, attributes: &Attributes) -> Decision {
    if attributes.user.in_group(SYSTEM_MASTERS) {
        return Decision { allowed: true, reason: String::new() };
    }
    let (grants, errors) = resolve(&store.lock(), &attributes.user, &attributes.request.namespace);
    for grant in &grants {
        if grant.rules.iter().any(|rule| rule.allows(&attributes.request)) {
            return Decision {
                allowed: true,
                reason: format!("RBAC: allowed by {}", grant.source),
            };
        }
    }
    let reason =
        if errors.is_empty() { String::new() } else { format!("RBAC: {}", aggregate(&errors)) };
    Decision { allowed: false, reason }
}

/// The `status` of a SelfSubjectRulesReview: the resource rules and the
/// non-resource rules that apply to the user in `namespace`.
pub fn rules_review_status(store: &Store, user: &UserInfo, namespace: &str) -> Value {
    let (grants, errors) = resolve(&store.lock(), user, namespace);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in grants.iter().flat_map(|grant| grant.rules.iter()) {
        if !rule.resources.is_empty() {
            let mut entry = Map::new();
            entry.insert("verbs".into(), json!(rule.verbs));
            if !rule.api_groups.is_empty() {
                entry.insert("apiGroups".into(), json!(rule.api_groups));
            }
            entry.insert("resources".into(), json!(rule.resources));
            if !rule.resource_names.is_empty() {
                entry.insert("resourceNames".into(), json!(rule.resource_names));
            }
            resource_rules.push(Value::Object(entry));
        }
        if !rule.non_resource_urls.is_empty() {
            non_resource_rules
                .push(json!({"verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls}));
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": false,
    });
    if !errors.is_empty()
        && let Some(fields) = status.as_object_mut()
    {
        fields.insert("evaluationError".into(), json!(aggregate(&errors)));
    }
    status
}
