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
use field_set::{FieldSet, changed_fields, field_set, is_list_element};
use managed::{
    ManagedFieldsEntry, parse_entry, raw_entries, raw_entry_is, raw_entry_owns_any, read_entries,
    render_entry, write_entries, write_raw_entries,
};

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

/// Records an Update operation that turned `old` into `new`: the manager
/// takes every field it changed, others lose them. Entries the change does
/// not touch are kept as stored (they are canonical: this module wrote
/// them, or [`canonicalize`] did).
pub fn track_update(old: Option<&Value>, new: &mut Value, context: &OwnershipContext<'_>) {
    let stored = old.map(raw_entries).unwrap_or_default();
    let (changed, removed) = match old {
        None => (field_set(new, &*context.lists, context.scope), FieldSet::new()),
        Some(old) => changed_fields(old, new, &*context.lists, context.scope),
    };
    if changed.is_empty() && removed.is_empty() {
        write_raw_entries(new, stored);
        return;
    }
    let subresource = context.subresource.as_deref();
    let mut found = false;
    let mut entries = Vec::with_capacity(stored.len() + 1);
    for raw in stored {
        if raw_entry_is(&raw, &context.manager, "Update", subresource) {
            found = true;
            // Fields it owns already, none of them gone: only the entry's
            // time and apiVersion change.
            if changed.iter().all(|path| raw_entry_owns_any(&raw, [path]))
                && !raw_entry_owns_any(&raw, &removed)
            {
                let mut raw = raw;
                if let Some(fields) = raw.as_object_mut() {
                    fields.insert("time".into(), Value::String(context.now.clone()));
                    fields.insert("apiVersion".into(), Value::String(context.api_version.clone()));
                }
                entries.push(raw);
                continue;
            }
            let mut entry = parse_entry(&raw);
            entry.fields.extend(changed.iter().cloned());
            entry.fields.retain(|path| !removed.contains(path));
            entry.time = context.now.clone();
            entry.api_version = context.api_version.clone();
            if !entry.fields.is_empty() {
                entries.push(render_entry(&entry));
            }
        } else if raw_entry_owns_any(&raw, changed.iter().chain(&removed)) {
            let mut entry = parse_entry(&raw);
            entry.fields.retain(|path| !changed.contains(path) && !removed.contains(path));
            if !entry.fields.is_empty() {
                entries.push(render_entry(&entry));
            }
        } else {
            entries.push(raw);
        }
    }
    if !found && !changed.is_empty() {
        entries.push(render_entry(&ManagedFieldsEntry {
            manager: context.manager.clone(),
            operation: "Update".into(),
            api_version: context.api_version.clone(),
            time: context.now.clone(),
            subresource: context.subresource.clone(),
            fields: changed,
        }));
    }
    write_raw_entries(new, entries);
}

/// Rewrites an object's `managedFields` in canonical form (as a client may
/// send them otherwise).
pub fn canonicalize(object: &mut Value) {
    let entries = read_entries(object);
    write_entries(object, &entries);
}
