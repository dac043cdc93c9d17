//! Discovery documents: `/api` (APIVersions), `/apis` (APIGroupList),
//! `/apis/<group>` (APIGroup) and the APIResourceList of each
//! group-version, rendered from the registry as the real server does.

use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::registry::{Registry, ResourceDef};

/// The verbs every served resource allows.
const VERBS: [&str; 8] =
    ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// `APIVersions` for `/api`.
pub fn api_versions(addr: SocketAddr) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr.to_string()}],
    })
}

/// `APIResourceList` for one group/version.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Value {
    let resources: Vec<Value> = registry
        .all()
        .filter(|def| def.group == group && def.version == version)
        .flat_map(|def| resource_entries(def))
        .collect();
    let group_version =
        if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

/// A resource's entries: itself and its subresources.
fn resource_entries(def: &ResourceDef) -> Vec<Value> {
    let verbs: &[&str] = if def.is_review() { &["create"] } else { &VERBS };
    let mut main = json!({
        "name": def.plural,
        "singularName": def.singular,
        "namespaced": def.namespaced,
        "kind": def.kind,
        "verbs": verbs,
    });
    if let Some(fields) = main.as_object_mut() {
        if !def.short_names.is_empty() {
            fields.insert("shortNames".into(), json!(def.short_names));
        }
        if !def.categories.is_empty() {
            fields.insert("categories".into(), json!(def.categories));
        }
    }
    let mut entries = vec![main];
    if def.status_subresource {
        entries.push(json!({
            "name": format!("{}/status", def.plural),
            "singularName": "",
            "namespaced": def.namespaced,
            "kind": def.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    if def.scale_subresource {
        entries.push(json!({
            "name": format!("{}/scale", def.plural),
            "singularName": "",
            "namespaced": def.namespaced,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        }));
    }
    if def.get_subresource("log") {
        entries.push(json!({
            "name": format!("{}/log", def.plural),
            "singularName": "",
            "namespaced": def.namespaced,
            "kind": def.kind,
            "verbs": ["get"],
        }));
    }
    for subresource in def.create_subresources() {
        entries.push(json!({
            "name": format!("{}/{}", def.plural, subresource.name),
            "singularName": "",
            "namespaced": def.namespaced,
            "group": subresource.group,
            "version": subresource.version,
            "kind": subresource.kind,
            "verbs": ["create"],
        }));
    }
    entries
}

/// `APIGroupList` for `/apis`.
pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> =
        registry.groups().iter().map(|group| group_fields(registry, group)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `APIGroup` for `/apis/<group>`; `None` for a group nothing serves.
pub fn group(registry: &Registry, group: &str) -> Option<Value> {
    if registry.versions_of(group).is_empty() {
        return None;
    }
    let mut document = group_fields(registry, group);
    if let Some(fields) = document.as_object_mut() {
        fields.insert("kind".into(), json!("APIGroup"));
        fields.insert("apiVersion".into(), json!("v1"));
    }
    Some(document)
}

/// A group's name, versions and preferred version.
fn group_fields(registry: &Registry, group: &str) -> Value {
    let versions: Vec<Value> = registry
        .versions_of(group)
        .iter()
        .map(|version| json!({"groupVersion": format!("{group}/{version}"), "version": version}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}
