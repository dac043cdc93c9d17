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
