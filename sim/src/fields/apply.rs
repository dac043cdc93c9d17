//! Server-side apply: merging an applied configuration into the live
//! object, conflicts with other managers' fields, `force`, and removal of
//! the fields an applier stopped specifying.

use serde_json::{Map, Value, json};

use super::field_set::{
    FieldPath, FieldSet, field_set, find_in_list, get_at, key_segment, remove_at,
};
use super::managed::{ManagedFieldsEntry, read_entries, write_entries};
use super::{OwnershipContext, is_list_element};
use crate::error::{ApiError, ApplyConflict};
use crate::patch::ListType;

/// Server-side apply of `applied` onto `live` (None: create). Returns the
/// merged object with updated `managedFields`, or a 409 listing conflicts.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    force: bool,
    context: &OwnershipContext<'_>,
) -> Result<Value, ApiError> {
    let applied_fields = field_set(applied, &*context.lists, context.scope);
    let mut entries = live.map(read_entries).unwrap_or_default();
    let subresource = context.subresource.as_deref();
    let manager = context.manager.as_str();
    // Another manager's entry on the same subresource (this manager's Update
    // entries count as another's: apply conflicts with them too).
    let is_other = |entry: &ManagedFieldsEntry| {
        entry.subresource.as_deref() == subresource && !entry.is(manager, "Apply", subresource)
    };
    let mut conflicts = Vec::new();
    let mut conflicting = FieldSet::new();
    if let Some(live) = live {
        for entry in entries.iter().filter(|entry| is_other(entry)) {
            for path in entry.fields.intersection(&applied_fields) {
                if is_list_element(path) {
                    continue;
                }
                if get_at(live, path) != get_at(applied, path) {
                    conflicts.push(ApplyConflict {
                        manager: entry.manager.clone(),
                        api_version: entry.api_version.clone(),
                        field: display_path(path),
                    });
                    conflicting.insert(path.clone());
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(ApiError::apply_conflict(&conflicts));
    }
    let mut base = live.cloned().unwrap_or_else(|| json!({}));
    // Fields this manager applied before and no longer specifies, unless
    // someone else owns them too.
    let previously_applied: FieldSet = entries
        .iter()
        .find(|entry| entry.is(manager, "Apply", subresource))
        .map(|entry| entry.fields.clone())
        .unwrap_or_default();
    let mut dropped: Vec<&FieldPath> = previously_applied
        .difference(&applied_fields)
        .filter(|path| !entries.iter().any(|entry| is_other(entry) && entry.fields.contains(*path)))
        .collect();
    // Remove deepest first so element removal does not shift siblings.
    dropped.sort_by_key(|path| std::cmp::Reverse(path.len()));
    for path in &dropped {
        remove_at(&mut base, path);
    }
    remove_emptied_parents(&mut base, &dropped, &applied_fields);
    let mut names = Vec::new();
    let mut merged = merge_applied(Some(&base), applied, &mut names, &*context.lists);
    for entry in entries.iter_mut() {
        if is_other(entry) {
            entry.fields.retain(|path| !conflicting.contains(path));
        }
    }
    match entries.iter_mut().find(|entry| entry.is(manager, "Apply", subresource)) {
        Some(entry) => {
            if entry.fields != applied_fields {
                entry.time = context.now.clone();
            }
            entry.fields = applied_fields;
            entry.api_version = context.api_version.clone();
        }
        None => entries.push(ManagedFieldsEntry {
            manager: context.manager.clone(),
            operation: "Apply".into(),
            api_version: context.api_version.clone(),
            time: context.now.clone(),
            subresource: context.subresource.clone(),
            fields: applied_fields,
        }),
    }
    write_entries(&mut merged, &entries);
    Ok(merged)
}

/// The objects that held only dropped fields go with them, as the real
/// server's prune removes a struct field once its applier stops naming it
/// (structured-merge-diff counts a named field's parent among the fields it
/// owns). Objects still named by the applied configuration stay.
fn remove_emptied_parents(base: &mut Value, dropped: &[&FieldPath], applied: &FieldSet) {
    let mut parents: Vec<FieldPath> = dropped
        .iter()
        .flat_map(|path| (1..path.len()).map(|length| path[..length].to_vec()))
        .filter(|parent| parent.last().is_some_and(|segment| segment.starts_with("f:")))
        .filter(|parent| !applied.iter().any(|kept| kept.starts_with(parent)))
        .collect();
    parents.sort_by_key(|path| std::cmp::Reverse(path.len()));
    parents.dedup();
    for parent in parents {
        if get_at(base, &parent).is_some_and(|value| value.as_object().is_some_and(Map::is_empty)) {
            remove_at(base, &parent);
        }
    }
}

/// A field path as apply conflict messages print it
/// (`.spec.containers[name="web"].image`).
fn display_path(path: &FieldPath) -> String {
    let mut shown = String::new();
    for segment in path {
        if let Some(field) = segment.strip_prefix("f:") {
            shown.push('.');
            shown.push_str(field);
        } else if let Some(key) = segment.strip_prefix("k:") {
            shown.push('[');
            shown.push_str(&key.replace(':', "="));
            shown.push(']');
        } else if let Some(value) = segment.strip_prefix("v:") {
            shown.push_str(&format!("[={value}]"));
        }
    }
    shown
}

/// Merges the applied configuration into `live`: objects field by field,
/// list-maps element by key, sets by value, anything else replaced.
fn merge_applied(
    live: Option<&Value>,
    applied: &Value,
    names: &mut Vec<String>,
    lists: &dyn Fn(&[String]) -> ListType,
) -> Value {
    match applied {
        Value::Object(applied_fields) => {
            let mut out = match live {
                Some(Value::Object(live_fields)) => live_fields.clone(),
                _ => Map::new(),
            };
            for (key, value) in applied_fields {
                if value.is_null() {
                    out.remove(key);
                    continue;
                }
                names.push(key.clone());
                let merged = merge_applied(out.get(key), value, names, lists);
                names.pop();
                out.insert(key.clone(), merged);
            }
            Value::Object(out)
        }
        Value::Array(applied_items) => {
            let live_items = || match live {
                Some(Value::Array(items)) => items.clone(),
                _ => Vec::new(),
            };
            match lists(names) {
                ListType::Map(keys) if !keys.is_empty() => {
                    let mut out = live_items();
                    for item in applied_items {
                        let segment = key_segment(item, &keys);
                        match find_in_list(&out, &segment) {
                            Some(index) => {
                                out[index] = merge_applied(Some(&out[index]), item, names, lists);
                            }
                            None => out.push(item.clone()),
                        }
                    }
                    Value::Array(out)
                }
                ListType::Set => {
                    let mut out = live_items();
                    for item in applied_items {
                        if !out.contains(item) {
                            out.push(item.clone());
                        }
                    }
                    Value::Array(out)
                }
                _ => applied.clone(),
            }
        }
        other => other.clone(),
    }
}
