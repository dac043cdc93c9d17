//! The resource registry: which group/version/resources the server serves,
//! built-in and defined by installed CustomResourceDefinitions. A
//! [`ResourceDef`] says everything the rest of the server needs to know about
//! one served resource version, including how its objects convert between the
//! served and the stored form.

mod builtin;
mod conversion;
mod custom;
mod resource;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use custom::custom_resource_defs;
pub use resource::ResourceDef;

/// The set of served resources, keyed by (group, version, plural).
#[derive(Debug, Clone)]
pub struct Registry {
    defs: BTreeMap<(String, String, String), Arc<ResourceDef>>,
    /// Group order for `/apis`: built-ins first, then CRD groups in order of
    /// appearance, as the real server lists them.
    group_order: Vec<String>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut registry = Registry { defs: BTreeMap::new(), group_order: Vec::new() };
        for def in builtin::builtin_resource_defs() {
            registry.add(def);
        }
        registry
    }
}

impl Registry {
    /// Adds a definition, replacing one with the same group, version and plural.
    pub fn add(&mut self, def: ResourceDef) {
        if !def.group.is_empty() && !self.group_order.contains(&def.group) {
            self.group_order.push(def.group.clone());
        }
        self.defs
            .insert((def.group.clone(), def.version.clone(), def.plural.clone()), Arc::new(def));
    }

    /// Removes every definition that came from the named CRD.
    pub fn remove_crd(&mut self, crd_name: &str) {
        self.defs.retain(|_, def| def.crd.as_deref() != Some(crd_name));
        let groups: Vec<String> = self.defs.values().map(|def| def.group.clone()).collect();
        self.group_order.retain(|group| groups.contains(group));
    }

    /// Looks up one resource.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.defs.get(&(group.to_string(), version.to_string(), plural.to_string())).cloned()
    }

    /// Whether any resource is served at group/version.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.defs.keys().any(|(g, v, _)| g == group && v == version)
    }

    /// The named API groups (not the core group), in discovery order.
    pub fn groups(&self) -> &[String] {
        &self.group_order
    }

    /// The versions served for a group, preferred first (GA before beta
    /// before alpha, higher numbers first).
    pub fn versions_of(&self, group: &str) -> Vec<String> {
        let mut versions: Vec<String> = Vec::new();
        for (g, version, _) in self.defs.keys() {
            if g == group && !versions.contains(version) {
                versions.push(version.clone());
            }
        }
        versions.sort_by_key(|version| std::cmp::Reverse(version_priority(version)));
        versions
    }

    /// Every definition, ordered by group, version and plural.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceDef>> {
        self.defs.values()
    }
}

/// Kubernetes version priority as a sortable key: (stability, major, minor),
/// GA ranking above beta above alpha; unparsable versions rank lowest.
fn version_priority(version: &str) -> (u8, u64, u64) {
    let Some(rest) = version.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(|ch| ch.is_ascii_digit()).collect();
    let Ok(major) = digits.parse::<u64>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (rank, minor) = if let Some(minor) = tail.strip_prefix("beta") {
        (2, minor)
    } else if let Some(minor) = tail.strip_prefix("alpha") {
        (1, minor)
    } else {
        return (0, 0, 0);
    };
    match minor.parse::<u64>() {
        Ok(minor) => (rank, major, minor),
        Err(_) => (0, 0, 0),
    }
}
