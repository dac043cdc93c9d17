//! The resource registry: which group/version/resources the server serves,
//! with their kinds, scope, short names, categories and subresources, both the
//! built-in ones and those defined by installed CustomResourceDefinitions. It
//! also renders the discovery documents (`/api`, `/apis`, APIResourceLists).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::GroupResource;

/// Everything the server knows about one served resource at one version.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    /// API group, empty for core.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Plural name (the URL segment).
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`deploy`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Has a `/status` subresource.
    pub status_subresource: bool,
    /// Has a `/scale` subresource (autoscaling/v1 Scale).
    pub scale_subresource: bool,
    /// Defined by a CRD (its name), `None` for built-ins.
    pub crd: Option<String>,
    /// The version's `openAPIV3Schema`, for custom resources.
    pub schema: Option<Value>,
    /// The version's `additionalPrinterColumns`, for custom resources.
    pub printer_columns: Vec<Value>,
    /// Whether this version is the CRD's storage version.
    pub storage: bool,
    /// Whether PUT without `metadata.resourceVersion` is allowed.
    pub unconditional_update: bool,
    /// Whether DELETE answers the deleted object (else a `Status`).
    pub return_deleted_object: bool,
    /// Whether the object carries `metadata.generation`.
    pub has_generation: bool,
}

impl ResourceDef {
    /// `group/version` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The group-resource pair used in messages.
    pub fn gr(&self) -> GroupResource {
        GroupResource::new(&self.group, &self.plural)
    }

    /// Whether this is a custom resource.
    pub fn is_custom(&self) -> bool {
        self.crd.is_some()
    }

    fn verbs(&self) -> Vec<&'static str> {
        vec!["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    }

    fn discovery_entries(&self) -> Vec<Value> {
        let mut main = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": self.verbs(),
        });
        if let Some(m) = main.as_object_mut() {
            if !self.short_names.is_empty() {
                m.insert("shortNames".into(), json!(self.short_names));
            }
            if !self.categories.is_empty() {
                m.insert("categories".into(), json!(self.categories));
            }
        }
        let mut out = vec![main];
        if self.status_subresource {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if self.scale_subresource {
            out.push(json!({
                "name": format!("{}/scale", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        out
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    categories: &[&str],
    status: bool,
) -> ResourceDef {
    ResourceDef {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: categories.iter().map(|s| s.to_string()).collect(),
        status_subresource: status,
        scale_subresource: false,
        crd: None,
        schema: None,
        printer_columns: Vec::new(),
        storage: true,
        unconditional_update: true,
        return_deleted_object: false,
        has_generation: false,
    }
}

/// The built-in resources.
pub fn builtins() -> Vec<ResourceDef> {
    let mut ns = builtin("", "v1", "namespaces", "Namespace", false, &["ns"], &[], true);
    ns.return_deleted_object = true;
    let cm = builtin("", "v1", "configmaps", "ConfigMap", true, &["cm"], &[], false);
    let ev = builtin("", "v1", "events", "Event", true, &["ev"], &[], false);
    let secrets = builtin("", "v1", "secrets", "Secret", true, &[], &[], false);
    let mut pods = builtin("", "v1", "pods", "Pod", true, &["po"], &["all"], true);
    pods.return_deleted_object = true;
    let mut deploy =
        builtin("apps", "v1", "deployments", "Deployment", true, &["deploy"], &["all"], true);
    deploy.has_generation = true;
    deploy.scale_subresource = true;
    let mut rs = builtin("apps", "v1", "replicasets", "ReplicaSet", true, &["rs"], &["all"], true);
    rs.has_generation = true;
    let ev2 = builtin("events.k8s.io", "v1", "events", "Event", true, &["ev"], &[], false);
    let lease = builtin("coordination.k8s.io", "v1", "leases", "Lease", true, &[], &[], false);
    let mut crd = builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        &["api-extensions"],
        true,
    );
    crd.has_generation = true;
    crd.unconditional_update = false;
    crd.return_deleted_object = true;
    vec![ns, cm, ev, secrets, pods, deploy, rs, ev2, lease, crd]
}

/// The set of served resources, keyed by (group, version, plural).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    defs: BTreeMap<(String, String, String), Arc<ResourceDef>>,
    /// Group order for `/apis` (built-ins first, then CRD groups in order of
    /// appearance).
    group_order: Vec<String>,
}

impl Registry {
    /// A registry with the built-in resources.
    pub fn new() -> Self {
        let mut r = Registry::default();
        for d in builtins() {
            r.add(d);
        }
        r
    }

    /// Adds (or replaces) a definition.
    pub fn add(&mut self, def: ResourceDef) {
        if !def.group.is_empty() && !self.group_order.contains(&def.group) {
            self.group_order.push(def.group.clone());
        }
        self.defs
            .insert((def.group.clone(), def.version.clone(), def.plural.clone()), Arc::new(def));
    }

    /// Removes every definition that came from the named CRD.
    pub fn remove_crd(&mut self, crd_name: &str) {
        self.defs.retain(|_, d| d.crd.as_deref() != Some(crd_name));
        let groups: Vec<String> = self.defs.values().map(|d| d.group.clone()).collect();
        self.group_order.retain(|g| groups.contains(g));
    }

    /// Looks up one resource.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.defs.get(&(group.to_string(), version.to_string(), plural.to_string())).cloned()
    }

    /// Whether any resource is served at group/version.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.defs.keys().any(|(g, v, _)| g == group && v == version)
    }

    /// The storage-version definition of a group's resource (any version).
    pub fn storage_def(&self, group: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        let mut fallback = None;
        for ((g, _, p), d) in &self.defs {
            if g == group && p == plural {
                if d.storage {
                    return Some(d.clone());
                }
                fallback = Some(d.clone());
            }
        }
        fallback
    }

    /// Finds the definition for an apiVersion + kind.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceDef>> {
        self.defs.values().find(|d| d.api_version() == api_version && d.kind == kind).cloned()
    }

    /// `APIResourceList` for one group/version.
    pub fn resource_list(&self, group: &str, version: &str) -> Value {
        let mut resources = Vec::new();
        for ((g, v, _), d) in &self.defs {
            if g == group && v == version {
                resources.extend(d.discovery_entries());
            }
        }
        let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
        json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": resources,
        })
    }

    fn versions_of(&self, group: &str) -> Vec<String> {
        let mut versions: Vec<String> = Vec::new();
        for (g, v, _) in self.defs.keys() {
            if g == group && !versions.contains(v) {
                versions.push(v.clone());
            }
        }
        versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        versions
    }

    /// `APIGroupList` for `/apis`.
    pub fn group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .group_order
            .iter()
            .map(|g| {
                let versions = self.versions_of(g);
                let vs: Vec<Value> = versions
                    .iter()
                    .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                    .collect();
                let preferred = vs.first().cloned().unwrap_or(Value::Null);
                json!({"name": g, "versions": vs, "preferredVersion": preferred})
            })
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `APIGroup` for `/apis/<group>`.
    pub fn group(&self, group: &str) -> Option<Value> {
        let versions = self.versions_of(group);
        if versions.is_empty() {
            return None;
        }
        let vs: Vec<Value> = versions
            .iter()
            .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
            .collect();
        let preferred = vs.first().cloned().unwrap_or(Value::Null);
        Some(
            json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": vs, "preferredVersion": preferred}),
        )
    }

    /// All definitions.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceDef>> {
        self.defs.values()
    }
}

/// Kubernetes version priority: GA > beta > alpha, higher numbers first.
pub fn version_priority(v: &str) -> (u8, u64, u64) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let Ok(major) = digits.parse::<u64>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (rank, num) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    match num.parse::<u64>() {
        Ok(n) => (rank, major, n),
        Err(_) => (0, 0, 0),
    }
}
