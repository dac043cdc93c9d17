//! Field sets: the paths an object sets, in the `FieldsV1` notation of
//! `managedFields` (`f:spec`, `k:{"name":"a"}` for list-map elements,
//! `v:"x"` for set elements), their JSON encoding, and reading or removing
//! the value at a path.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::patch::ListType;

/// One path in FieldsV1 notation (`f:spec`, `k:{"name":"a"}`, `v:"x"`).
pub type FieldPath = Vec<String>;
/// A set of owned paths.
pub type FieldSet = BTreeSet<FieldPath>;

/// Which part of an object a request may own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything except system metadata.
    All,
    /// Everything except system metadata and `status` (main resource of a
    /// type with a status subresource).
    NoStatus,
    /// Only `status` (the status subresource).
    StatusOnly,
}

/// Metadata the server sets; nobody owns it.
const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// The paths an object sets within `scope`, with list elements identified
/// per `lists` (by field-name path).
pub fn field_set(object: &Value, lists: &dyn Fn(&[String]) -> ListType, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(fields) = object.as_object() else {
        return out;
    };
    let mut walker = Walker { path: Vec::new(), names: Vec::new(), lists, out: &mut out };
    for (key, value) in fields {
        match (key.as_str(), scope) {
            ("apiVersion" | "kind", _) => continue,
            ("status", Scope::NoStatus) => continue,
            ("status", _) => {}
            (_, Scope::StatusOnly) => continue,
            _ => {}
        }
        if key == "metadata" {
            if let Some(metadata) = value.as_object() {
                let owned =
                    metadata.iter().filter(|(key, _)| !SYSTEM_METADATA.contains(&key.as_str()));
                walker.enter(key, |walker| walker.fields(owned));
            }
            continue;
        }
        walker.enter(key, |walker| walker.value(value));
    }
    out
}

/// What an update changes, as [`field_set`]s of both sides would say
/// (`changed`: paths `new` sets to another value, and list elements it adds;
/// `removed`: paths `old` sets and `new` does not), found by walking only
/// the subtrees in which the two differ.
pub fn changed_fields(
    old: &Value,
    new: &Value,
    lists: &dyn Fn(&[String]) -> ListType,
    scope: Scope,
) -> (FieldSet, FieldSet) {
    let mut diff = Diff {
        old,
        new,
        path: Vec::new(),
        names: Vec::new(),
        lists,
        changed: FieldSet::new(),
        removed: FieldSet::new(),
    };
    let empty = Map::new();
    let old_fields = old.as_object().unwrap_or(&empty);
    let new_fields = new.as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = old_fields.keys().chain(new_fields.keys()).collect();
    for key in keys {
        match (key.as_str(), scope) {
            ("apiVersion" | "kind", _) => continue,
            ("status", Scope::NoStatus) => continue,
            ("status", _) => {}
            (_, Scope::StatusOnly) => continue,
            _ => {}
        }
        let (before, after) = (old_fields.get(key), new_fields.get(key));
        if key == "metadata" {
            // System metadata is nobody's; the rest as any other fields.
            let before = before.and_then(Value::as_object).unwrap_or(&empty);
            let after = after.and_then(Value::as_object).unwrap_or(&empty);
            let names: BTreeSet<&String> = before
                .keys()
                .chain(after.keys())
                .filter(|name| !SYSTEM_METADATA.contains(&name.as_str()))
                .collect();
            for name in names {
                diff.enter(key, |diff| {
                    diff.enter(name, |diff| diff.node(before.get(name), after.get(name)))
                });
            }
            continue;
        }
        diff.enter(key, |diff| diff.node(before, after));
    }
    (diff.changed, diff.removed)
}

/// The walk behind [`changed_fields`].
struct Diff<'a> {
    old: &'a Value,
    new: &'a Value,
    path: FieldPath,
    names: Vec<String>,
    lists: &'a dyn Fn(&[String]) -> ListType,
    changed: FieldSet,
    removed: FieldSet,
}

impl Diff<'_> {
    fn enter(&mut self, key: &str, visit: impl FnOnce(&mut Self)) {
        self.path.push(format!("f:{key}"));
        self.names.push(key.to_string());
        visit(self);
        self.path.pop();
        self.names.pop();
    }

    /// The paths under the current one, as [`field_set`] finds them.
    fn paths(&self, value: Option<&Value>) -> FieldSet {
        let mut out = FieldSet::new();
        if let Some(value) = value {
            let mut walker = Walker {
                path: self.path.clone(),
                names: self.names.clone(),
                lists: self.lists,
                out: &mut out,
            };
            walker.value(value);
        }
        out
    }

    fn node(&mut self, before: Option<&Value>, after: Option<&Value>) {
        if before == after {
            return;
        }
        if let (Some(Value::Object(before)), Some(Value::Object(after))) = (before, after)
            && !before.is_empty()
            && !after.is_empty()
        {
            let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
            for key in keys {
                self.enter(key, |diff| diff.node(before.get(key), after.get(key)));
            }
            return;
        }
        let old_paths = self.paths(before);
        let new_paths = self.paths(after);
        for path in &new_paths {
            let changed = if is_list_element(path) {
                !old_paths.contains(path)
            } else {
                get_at(self.old, path) != get_at(self.new, path)
            };
            if changed {
                self.changed.insert(path.clone());
            }
        }
        self.removed.extend(old_paths.difference(&new_paths).cloned());
    }
}

/// Whether a path ends at a list element (`k:` or `v:`), whose presence,
/// not value, is what is owned.
pub fn is_list_element(path: &FieldPath) -> bool {
    path.last().is_some_and(|segment| segment.starts_with("k:") || segment.starts_with("v:"))
}

/// The depth-first walk behind [`field_set`]: `path` in FieldsV1 notation,
/// `names` the plain field names the list rules are looked up by.
struct Walker<'a> {
    path: FieldPath,
    names: Vec<String>,
    lists: &'a dyn Fn(&[String]) -> ListType,
    out: &'a mut FieldSet,
}

impl Walker<'_> {
    /// Runs `visit` one field deeper.
    fn enter(&mut self, key: &str, visit: impl FnOnce(&mut Self)) {
        self.path.push(format!("f:{key}"));
        self.names.push(key.to_string());
        visit(self);
        self.path.pop();
        self.names.pop();
    }

    fn fields<'v>(&mut self, fields: impl Iterator<Item = (&'v String, &'v Value)>) {
        for (key, child) in fields {
            self.enter(key, |walker| walker.value(child));
        }
    }

    fn value(&mut self, value: &Value) {
        match value {
            Value::Object(fields) if !fields.is_empty() => self.fields(fields.iter()),
            Value::Array(items) => match (self.lists)(&self.names) {
                ListType::Map(keys) if !keys.is_empty() => {
                    for item in items {
                        self.path.push(key_segment(item, &keys));
                        self.out.insert(self.path.clone());
                        if let Some(fields) = item.as_object() {
                            self.fields(fields.iter());
                        }
                        self.path.pop();
                    }
                }
                ListType::Set => {
                    for item in items {
                        self.path.push(format!("v:{item}"));
                        self.out.insert(self.path.clone());
                        self.path.pop();
                    }
                }
                _ => {
                    self.out.insert(self.path.clone());
                }
            },
            _ => {
                self.out.insert(self.path.clone());
            }
        }
    }
}

/// The `k:{...}` segment of a list-map element: its key fields.
pub fn key_segment(item: &Value, keys: &[String]) -> String {
    let mut key_fields = Map::new();
    for key in keys {
        if let Some(value) = item.get(key) {
            key_fields.insert(key.clone(), value.clone());
        }
    }
    format!("k:{}", Value::Object(key_fields))
}

/// A node of the `fieldsV1` tree: `own` when the path itself is in the set
/// (rendered as `".": {}` when it also has children).
#[derive(Default)]
struct Node {
    own: bool,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn render(&self) -> Value {
        let mut rendered = Map::new();
        if self.own && !self.children.is_empty() {
            rendered.insert(".".into(), json!({}));
        }
        for (segment, child) in &self.children {
            rendered.insert(segment.clone(), child.render());
        }
        Value::Object(rendered)
    }
}

/// A field set as a `fieldsV1` object.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Node::default();
    for path in set {
        let mut node = &mut root;
        for segment in path {
            node = node.children.entry(segment.clone()).or_default();
        }
        node.own = true;
    }
    root.render()
}

/// Whether a `fieldsV1` object holds a path (as [`from_fields_v1`] would
/// find it: a leaf, or a node marked with `"."`).
pub fn fields_v1_contains(fields_v1: &Value, path: &[String]) -> bool {
    let mut node = fields_v1;
    for segment in path {
        match node.get(segment) {
            Some(child) => node = child,
            None => return false,
        }
    }
    node.as_object().is_some_and(|children| children.is_empty() || children.contains_key("."))
}

/// Parses a `fieldsV1` object.
pub fn from_fields_v1(fields_v1: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    let mut path = Vec::new();
    parse_node(fields_v1, &mut path, &mut out);
    out
}

fn parse_node(node: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    let Some(children) = node.as_object() else {
        return;
    };
    for (segment, child) in children {
        if segment == "." {
            out.insert(path.clone());
            continue;
        }
        path.push(segment.clone());
        if child.as_object().is_some_and(Map::is_empty) {
            out.insert(path.clone());
        } else {
            parse_node(child, path, out);
        }
        path.pop();
    }
}

/// The index of the list element a `k:`, `v:` or `i:` segment names.
pub fn find_in_list(list: &[Value], segment: &str) -> Option<usize> {
    if let Some(key) = segment.strip_prefix("k:") {
        let probe: Value = serde_json::from_str(key).ok()?;
        let key_fields = probe.as_object()?;
        list.iter()
            .position(|item| key_fields.iter().all(|(key, value)| item.get(key) == Some(value)))
    } else if let Some(value) = segment.strip_prefix("v:") {
        let probe: Value = serde_json::from_str(value).ok()?;
        list.iter().position(|item| *item == probe)
    } else if let Some(index) = segment.strip_prefix("i:") {
        let index: usize = index.parse().ok()?;
        (index < list.len()).then_some(index)
    } else {
        None
    }
}

/// The value at a field path.
pub fn get_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut current = object;
    for segment in path {
        current = if let Some(field) = segment.strip_prefix("f:") {
            current.get(field)?
        } else {
            let list = current.as_array()?;
            &list[find_in_list(list, segment)?]
        };
    }
    Some(current)
}

/// Removes the value at a field path (no-op when absent).
pub fn remove_at(object: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut current = object;
    for segment in parent_path {
        let next = if let Some(field) = segment.strip_prefix("f:") {
            current.get_mut(field)
        } else {
            match current.as_array_mut() {
                Some(list) => match find_in_list(list, segment) {
                    Some(index) => list.get_mut(index),
                    None => None,
                },
                None => None,
            }
        };
        match next {
            Some(child) => current = child,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        if let Some(fields) = current.as_object_mut() {
            fields.remove(field);
        }
    } else if let Some(list) = current.as_array_mut()
        && let Some(index) = find_in_list(list, last)
    {
        list.remove(index);
    }
}
