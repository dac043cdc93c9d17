//! Field ownership (`metadata.managedFields`) and server-side apply: field
//! sets in the `FieldsV1` format, tracking of Update operations (a manager
//! takes the fields it changes), and Apply with conflict detection, `force`,
//! and removal of fields an applier stopped specifying.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::error::ApiError;
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

const SYSTEM_META: &[&str] = &[
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

/// The field set of an object.
pub fn field_set(obj: &Value, lists: &dyn Fn(&[String]) -> ListType, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(m) = obj.as_object() else {
        return out;
    };
    for (k, v) in m {
        match (k.as_str(), scope) {
            ("apiVersion" | "kind", _) => continue,
            ("status", Scope::NoStatus) => continue,
            ("status", _) => {}
            (_, Scope::StatusOnly) => continue,
            _ => {}
        }
        let mut path = vec![format!("f:{k}")];
        let mut names = vec![k.clone()];
        if k == "metadata" {
            if let Some(meta) = v.as_object() {
                for (mk, mv) in meta {
                    if SYSTEM_META.contains(&mk.as_str()) {
                        continue;
                    }
                    path.push(format!("f:{mk}"));
                    names.push(mk.clone());
                    walk(mv, &mut path, &mut names, lists, &mut out);
                    path.pop();
                    names.pop();
                }
            }
            continue;
        }
        walk(v, &mut path, &mut names, lists, &mut out);
    }
    out
}

fn key_segment(elem: &Value, keys: &[String]) -> String {
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = elem.get(k) {
            m.insert(k.clone(), v.clone());
        }
    }
    format!("k:{}", Value::Object(m))
}

fn walk(
    v: &Value,
    path: &mut FieldPath,
    names: &mut Vec<String>,
    lists: &dyn Fn(&[String]) -> ListType,
    out: &mut FieldSet,
) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                path.push(format!("f:{k}"));
                names.push(k.clone());
                walk(c, path, names, lists, out);
                path.pop();
                names.pop();
            }
        }
        Value::Array(a) => match lists(names) {
            ListType::Map(keys) if !keys.is_empty() => {
                for e in a {
                    path.push(key_segment(e, &keys));
                    out.insert(path.clone());
                    if let Some(m) = e.as_object() {
                        for (k, c) in m {
                            path.push(format!("f:{k}"));
                            names.push(k.clone());
                            walk(c, path, names, lists, out);
                            path.pop();
                            names.pop();
                        }
                    }
                    path.pop();
                }
            }
            ListType::Set => {
                for e in a {
                    path.push(format!("v:{e}"));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            _ => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

#[derive(Default)]
struct Node {
    own: bool,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn render(&self) -> Value {
        let mut m = Map::new();
        if self.own && !self.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, c) in &self.children {
            m.insert(k.clone(), c.render());
        }
        Value::Object(m)
    }
}

/// A field set as a `fieldsV1` object.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Node::default();
    for p in set {
        let mut n = &mut root;
        for seg in p {
            n = n.children.entry(seg.clone()).or_default();
        }
        n.own = true;
    }
    root.render()
}

/// Parses a `fieldsV1` object.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    let mut path = Vec::new();
    parse_node(v, &mut path, &mut out);
    out
}

fn parse_node(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    let Some(m) = v.as_object() else {
        return;
    };
    for (k, c) in m {
        if k == "." {
            out.insert(path.clone());
            continue;
        }
        path.push(k.clone());
        if c.as_object().is_some_and(Map::is_empty) {
            out.insert(path.clone());
        } else {
            parse_node(c, path, out);
        }
        path.pop();
    }
}

fn find_in_list(list: &[Value], seg: &str) -> Option<usize> {
    if let Some(k) = seg.strip_prefix("k:") {
        let probe: Value = serde_json::from_str(k).ok()?;
        let pm = probe.as_object()?;
        list.iter().position(|e| pm.iter().all(|(pk, pv)| e.get(pk) == Some(pv)))
    } else if let Some(v) = seg.strip_prefix("v:") {
        let probe: Value = serde_json::from_str(v).ok()?;
        list.iter().position(|e| *e == probe)
    } else if let Some(i) = seg.strip_prefix("i:") {
        let i: usize = i.parse().ok()?;
        (i < list.len()).then_some(i)
    } else {
        None
    }
}

/// The value at a field path.
pub fn get_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for seg in path {
        cur = if let Some(f) = seg.strip_prefix("f:") {
            cur.get(f)?
        } else {
            let list = cur.as_array()?;
            &list[find_in_list(list, seg)?]
        };
    }
    Some(cur)
}

/// Removes the value at a field path (no-op when absent).
pub fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for seg in parent_path {
        let next = if let Some(f) = seg.strip_prefix("f:") {
            cur.get_mut(f)
        } else {
            match cur.as_array_mut() {
                Some(list) => match find_in_list(list, seg) {
                    Some(i) => list.get_mut(i),
                    None => None,
                },
                None => None,
            }
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(list) = cur.as_array_mut()
        && let Some(i) = find_in_list(list, last)
    {
        list.remove(i);
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Field manager.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// apiVersion the fields were set with.
    pub api_version: String,
    /// Last change time.
    pub time: String,
    /// Subresource (`status`) or none.
    pub subresource: Option<String>,
    /// Owned fields.
    pub set: FieldSet,
}

/// Reads `metadata.managedFields`.
pub fn read_entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj.pointer("/metadata/managedFields").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            Entry {
                manager: s("manager"),
                operation: s("operation"),
                api_version: s("apiVersion"),
                time: s("time"),
                subresource: e
                    .get("subresource")
                    .and_then(Value::as_str)
                    .filter(|x| !x.is_empty())
                    .map(String::from),
                set: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
            }
        })
        .collect()
}

/// Writes `metadata.managedFields` (empty entries dropped).
pub fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.set.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.set),
            });
            if let (Some(s), Some(m)) = (&e.subresource, v.as_object_mut()) {
                m.insert("subresource".into(), json!(s));
            }
            v
        })
        .collect();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Context of one ownership-tracked write.
pub struct Ctx<'a> {
    /// The field manager.
    pub manager: &'a str,
    /// Subresource written, if any.
    pub subresource: Option<&'a str>,
    /// apiVersion of the request.
    pub api_version: &'a str,
    /// List rules.
    pub lists: &'a dyn Fn(&[String]) -> ListType,
    /// Owned part of the object.
    pub scope: Scope,
    /// Now, RFC 3339.
    pub now: &'a str,
}

fn is_element(p: &FieldPath) -> bool {
    p.last().is_some_and(|s| s.starts_with("k:") || s.starts_with("v:"))
}

/// Records an Update operation that turned `old` into `new`: the manager
/// takes every field it changed, others lose them.
pub fn track_update(old: Option<&Value>, new: &mut Value, ctx: &Ctx<'_>) {
    let mut entries = old.map(read_entries).unwrap_or_default();
    let new_set = field_set(new, ctx.lists, ctx.scope);
    let old_set = old.map(|o| field_set(o, ctx.lists, ctx.scope)).unwrap_or_default();
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| match old {
            None => true,
            Some(o) => {
                if is_element(p) {
                    !old_set.contains(*p)
                } else {
                    get_at(o, p) != get_at(new, p)
                }
            }
        })
        .cloned()
        .collect();
    let removed: FieldSet = old_set.difference(&new_set).cloned().collect();
    if changed.is_empty() && removed.is_empty() {
        write_entries(new, &entries);
        return;
    }
    let sub = ctx.subresource.map(String::from);
    let mut found = false;
    for e in entries.iter_mut() {
        let mine = e.manager == ctx.manager && e.operation == "Update" && e.subresource == sub;
        if mine {
            found = true;
            e.set.extend(changed.iter().cloned());
            e.set.retain(|p| !removed.contains(p));
            e.time = ctx.now.to_string();
            e.api_version = ctx.api_version.to_string();
        } else {
            e.set.retain(|p| !changed.contains(p) && !removed.contains(p));
        }
    }
    if !found {
        entries.push(Entry {
            manager: ctx.manager.to_string(),
            operation: "Update".into(),
            api_version: ctx.api_version.to_string(),
            time: ctx.now.to_string(),
            subresource: sub,
            set: changed,
        });
    }
    write_entries(new, &entries);
}

fn display_path(p: &FieldPath) -> String {
    let mut s = String::new();
    for seg in p {
        if let Some(f) = seg.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = seg.strip_prefix("k:") {
            s.push('[');
            s.push_str(&k.replace(':', "="));
            s.push(']');
        } else if let Some(v) = seg.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// Server-side apply of `applied` onto `live` (None: create). Returns the
/// merged object with updated `managedFields`, or a 409 listing conflicts.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    force: bool,
    ctx: &Ctx<'_>,
) -> Result<Value, ApiError> {
    let fa = field_set(applied, ctx.lists, ctx.scope);
    let mut entries = live.map(read_entries).unwrap_or_default();
    let sub = ctx.subresource.map(String::from);
    let mut conflicts = Vec::new();
    let mut conflicting = FieldSet::new();
    if let Some(live) = live {
        for e in &entries {
            if e.subresource != sub {
                continue;
            }
            if e.manager == ctx.manager && e.operation == "Apply" {
                continue;
            }
            for p in e.set.intersection(&fa) {
                if is_element(p) {
                    continue;
                }
                if get_at(live, p) != get_at(applied, p) {
                    conflicts.push((e.manager.clone(), e.api_version.clone(), display_path(p)));
                    conflicting.insert(p.clone());
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(ApiError::apply_conflict(&conflicts));
    }
    let mut base = live.cloned().unwrap_or_else(|| json!({}));
    // Fields this manager applied before and no longer specifies.
    let prev: FieldSet = entries
        .iter()
        .find(|e| e.manager == ctx.manager && e.operation == "Apply" && e.subresource == sub)
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let mut dropped: Vec<&FieldPath> = prev
        .difference(&fa)
        .filter(|p| {
            !entries.iter().any(|e| {
                e.subresource == sub
                    && !(e.manager == ctx.manager && e.operation == "Apply")
                    && e.set.contains(*p)
            })
        })
        .collect();
    // Remove deepest first so element removal does not shift siblings.
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in dropped {
        remove_at(&mut base, p);
    }
    let mut names = Vec::new();
    let mut merged = apply_merge(Some(&base), applied, &mut names, ctx.lists);
    for e in entries.iter_mut() {
        if e.subresource == sub && !(e.manager == ctx.manager && e.operation == "Apply") {
            e.set.retain(|p| !conflicting.contains(p));
        }
    }
    match entries
        .iter_mut()
        .find(|e| e.manager == ctx.manager && e.operation == "Apply" && e.subresource == sub)
    {
        Some(e) => {
            if e.set != fa {
                e.time = ctx.now.to_string();
            }
            e.set = fa;
            e.api_version = ctx.api_version.to_string();
        }
        None => entries.push(Entry {
            manager: ctx.manager.to_string(),
            operation: "Apply".into(),
            api_version: ctx.api_version.to_string(),
            time: ctx.now.to_string(),
            subresource: sub,
            set: fa,
        }),
    }
    write_entries(&mut merged, &entries);
    Ok(merged)
}

fn apply_merge(
    live: Option<&Value>,
    applied: &Value,
    names: &mut Vec<String>,
    lists: &dyn Fn(&[String]) -> ListType,
) -> Value {
    match applied {
        Value::Object(am) => {
            let mut out = match live {
                Some(Value::Object(lm)) => lm.clone(),
                _ => Map::new(),
            };
            for (k, v) in am {
                if v.is_null() {
                    out.remove(k);
                    continue;
                }
                names.push(k.clone());
                let merged = apply_merge(out.get(k), v, names, lists);
                names.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        Value::Array(al) => match lists(names) {
            ListType::Map(keys) if !keys.is_empty() => {
                let mut out: Vec<Value> = match live {
                    Some(Value::Array(l)) => l.clone(),
                    _ => Vec::new(),
                };
                for a in al {
                    let seg = key_segment(a, &keys);
                    match find_in_list(&out, &seg) {
                        Some(i) => {
                            let m = apply_merge(Some(&out[i]), a, names, lists);
                            out[i] = m;
                        }
                        None => out.push(a.clone()),
                    }
                }
                Value::Array(out)
            }
            ListType::Set => {
                let mut out: Vec<Value> = match live {
                    Some(Value::Array(l)) => l.clone(),
                    _ => Vec::new(),
                };
                for a in al {
                    if !out.contains(a) {
                        out.push(a.clone());
                    }
                }
                Value::Array(out)
            }
            _ => applied.clone(),
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::builtin_ssa_list;

    #[test]
    fn fields_v1_round_trip() {
        let obj = json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let set = field_set(&obj, &builtin_ssa_list, Scope::All);
        let v1 = to_fields_v1(&set);
        assert_eq!(
            v1,
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
        );
        assert_eq!(from_fields_v1(&v1), set);
    }
}
