//! Field ownership (`metadata.managedFields`) and server-side apply: field
//! sets in the `FieldsV1` format (`field_set`), the entries that record
//! them (`managed`), tracking of Update operations (a manager takes the
//! fields it changes), and Apply with conflicts (`apply`).

mod apply;
mod field_set;
mod managed;

#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::patch::{self, ListType};
use crate::registry::ResourceDef;

pub use apply::apply;
pub use field_set::Scope;
use field_set::{FieldPath, FieldSet, field_set, get_at};
use managed::{ManagedFieldsEntry, read_entries, write_entries};

/// How the lists of a resource merge, by field-name path.
pub type ListRules<'a> = Box<dyn Fn(&[String]) -> ListType + 'a>;

/// The list rules server-side apply and ownership use for a resource: a
/// custom resource's from its schema, the built-in types' list-map keys
/// otherwise.
pub fn list_rules(def: &ResourceDef) -> ListRules<'_> {
    match &def.schema {
        Some(schema) if def.is_custom() => {
            Box::new(move |path: &[String]| patch::schema_list_type(schema, path))
        }
        _ => Box::new(patch::builtin_ssa_list),
    }
}

/// Who writes which part of an object, when: the context of one
/// ownership-tracked write.
pub struct OwnershipContext<'a> {
    /// The field manager.
    pub manager: String,
    /// Subresource written, if any.
    pub subresource: Option<String>,
    /// apiVersion of the request.
    pub api_version: String,
    /// List rules.
    pub lists: ListRules<'a>,
    /// Owned part of the object.
    pub scope: Scope,
    /// The write's time, RFC 3339.
    pub now: String,
}

impl<'a> OwnershipContext<'a> {
    /// The context of `manager` writing `def` (or its `subresource`) at `now`.
    pub fn new(def: &'a ResourceDef, manager: &str, subresource: Option<&str>, now: &str) -> Self {
        let scope = if subresource == Some("status") {
            Scope::StatusOnly
        } else if def.status_subresource {
            Scope::NoStatus
        } else {
            Scope::All
        };
        OwnershipContext {
            manager: manager.to_string(),
            subresource: subresource.map(String::from),
            api_version: def.api_version(),
            lists: list_rules(def),
            scope,
            now: now.to_string(),
        }
    }
}

/// Whether a path ends at a list element (`k:` or `v:`), whose presence,
/// not value, is what is owned.
fn is_list_element(path: &FieldPath) -> bool {
    path.last().is_some_and(|segment| segment.starts_with("k:") || segment.starts_with("v:"))
}

/// Records an Update operation that turned `old` into `new`: the manager
/// takes every field it changed, others lose them.
pub fn track_update(old: Option<&Value>, new: &mut Value, context: &OwnershipContext<'_>) {
    let mut entries = old.map(read_entries).unwrap_or_default();
    let new_fields = field_set(new, &*context.lists, context.scope);
    let old_fields =
        old.map(|old| field_set(old, &*context.lists, context.scope)).unwrap_or_default();
    let changed: FieldSet = new_fields
        .iter()
        .filter(|path| match old {
            None => true,
            Some(_) if is_list_element(path) => !old_fields.contains(*path),
            Some(old) => get_at(old, path) != get_at(new, path),
        })
        .cloned()
        .collect();
    let removed: FieldSet = old_fields.difference(&new_fields).cloned().collect();
    if changed.is_empty() && removed.is_empty() {
        write_entries(new, &entries);
        return;
    }
    let subresource = context.subresource.as_deref();
    let mut found = false;
    for entry in entries.iter_mut() {
        if entry.is(&context.manager, "Update", subresource) {
            found = true;
            entry.fields.extend(changed.iter().cloned());
            entry.fields.retain(|path| !removed.contains(path));
            entry.time = context.now.clone();
            entry.api_version = context.api_version.clone();
        } else {
            entry.fields.retain(|path| !changed.contains(path) && !removed.contains(path));
        }
    }
    if !found {
        entries.push(ManagedFieldsEntry {
            manager: context.manager.clone(),
            operation: "Update".into(),
            api_version: context.api_version.clone(),
            time: context.now.clone(),
            subresource: context.subresource.clone(),
            fields: changed,
        });
    }
    write_entries(new, &entries);
}
