//! ControllerRevisions, as `pkg/controller/history` and the StatefulSet
//! and DaemonSet controllers keep them: the revision's `data` is the
//! strategic merge patch that restores the pod template
//! (`{"spec":{"template":{"$patch":"replace",...}}}`, the template as Go's
//! typed encoding writes it), named `<owner>-<hash>`, labelled with the
//! template's labels and the hash, owned by the workload, numbered by
//! `revision`. The StatefulSet hash is the real one (FNV-1 over the data's
//! bytes and the collision count); a DaemonSet's is its pod-template hash.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::Defs;
use crate::controllers::owners::{controller_reference, is_controlled_by};
use crate::error::ApiError;
use crate::state::SimState;
use crate::store::StoreInner;
use crate::util::{metadata_str, safe_encode};
use crate::write::{self, DeleteOptions, DeletePreconditions, WriteOptions};

/// The label holding a StatefulSet revision's hash.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// `value` as Go's `encoding/json` writes it: object keys sorted, no
/// spaces, `<`, `>`, `&`, U+2028 and U+2029 escaped.
pub fn go_json(value: &Value) -> String {
    let mut out = String::new();
    write_go_json(value, &mut out);
    out
}

fn write_go_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&go_string(key));
                out.push(':');
                write_go_json(&fields[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_go_json(item, out);
            }
            out.push(']');
        }
        Value::String(text) => out.push_str(&go_string(text)),
        other => out.push_str(&other.to_string()),
    }
}

/// A JSON string with Go's HTML-safe escapes on top of the standard ones.
fn go_string(text: &str) -> String {
    Value::String(text.to_owned())
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A pod template as Go's typed encoding writes it: the fields a typed
/// object always carries (`metadata.creationTimestamp: null`, each
/// container's `resources: {}`) added.
fn typed_template(template: &Value) -> Value {
    let mut template = template.clone();
    let Some(fields) = template.as_object_mut() else {
        return template;
    };
    let metadata = fields.entry("metadata").or_insert_with(|| json!({}));
    if let Some(metadata) = metadata.as_object_mut() {
        metadata.insert("creationTimestamp".into(), Value::Null);
    }
    if let Some(spec) = fields.get_mut("spec").and_then(Value::as_object_mut) {
        for key in ["initContainers", "containers"] {
            for container in spec.get_mut(key).and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(container) = container.as_object_mut() {
                    container.entry("resources").or_insert_with(|| json!({}));
                }
            }
        }
    }
    template
}

/// The revision data of a workload: the patch that replaces its pod
/// template (`getPatch`).
pub fn template_patch(workload: &Value) -> Value {
    let template = workload.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    let mut template = typed_template(&template);
    if let Some(fields) = template.as_object_mut() {
        fields.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// The pod template a revision restores.
pub fn template_of(revision: &Value) -> Value {
    let mut template =
        revision.pointer("/data/spec/template").cloned().unwrap_or_else(|| json!({}));
    if let Some(fields) = template.as_object_mut() {
        fields.remove("$patch");
    }
    template
}

/// `HashControllerRevision`: FNV-1 (32 bit) over the data's bytes and the
/// decimal collision count, safe-encoded.
pub fn revision_hash(data: &Value, collision_count: Option<i64>) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash = hash.wrapping_mul(0x0100_0193);
            hash ^= u32::from(*byte);
        }
    };
    feed(go_json(data).as_bytes());
    if let Some(count) = collision_count {
        feed(count.to_string().as_bytes());
    }
    safe_encode(&hash.to_string())
}

/// `<owner>-<hash>`, the owner's name cut to 223 characters.
pub fn revision_name(owner: &str, hash: &str) -> String {
    let prefix: String = owner.chars().take(223).collect();
    format!("{prefix}-{hash}")
}

/// A revision's number.
pub fn number_of(revision: &Value) -> i64 {
    revision.get("revision").and_then(Value::as_i64).unwrap_or(0)
}

/// The revisions `owner` controls, by number (then name).
pub fn owned(store: &StoreInner, defs: &Defs, owner: &Value) -> Vec<Arc<Value>> {
    let name = metadata_str(owner, "name").unwrap_or("");
    let namespace = metadata_str(owner, "namespace").unwrap_or("");
    let uid = metadata_str(owner, "uid").unwrap_or("");
    let prefix: String = name.chars().take(223).collect();
    let mut owned: Vec<Arc<Value>> = store
        .list_prefix(&defs.revisions.storage_gr(), namespace, &format!("{prefix}-"))
        .into_iter()
        .filter(|revision| is_controlled_by(revision, uid))
        .collect();
    owned.sort_by(|a, b| {
        number_of(a)
            .cmp(&number_of(b))
            .then_with(|| metadata_str(a, "name").cmp(&metadata_str(b, "name")))
    });
    owned
}

/// A new revision of `owner` (`kind`) holding `data`, with the template's
/// labels plus `hash_label: hash` and the owner's annotations.
pub fn build(
    owner: &Value,
    kind: &str,
    hash_label: &str,
    hash: &str,
    data: Value,
    number: i64,
) -> Value {
    let mut labels: Map<String, Value> = owner
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(hash_label.into(), json!(hash));
    let mut metadata = json!({
        "name": revision_name(metadata_str(owner, "name").unwrap_or(""), hash),
        "namespace": metadata_str(owner, "namespace").unwrap_or(""),
        "labels": labels,
        "ownerReferences": [controller_reference(owner, "apps/v1", kind)],
    });
    if let Some(annotations) = owner
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .filter(|annotations| !annotations.is_empty())
    {
        metadata["annotations"] = json!(annotations);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": metadata,
        "data": data,
        "revision": number,
    })
}

fn controller_manager() -> WriteOptions<'static> {
    WriteOptions::internal("kube-controller-manager")
}

/// Creates a revision.
pub fn create(
    sim: &SimState,
    store: &mut StoreInner,
    defs: &Defs,
    revision: Value,
) -> Result<Arc<Value>, ApiError> {
    let namespace = metadata_str(&revision, "namespace").unwrap_or("").to_string();
    let created = write::create(
        store,
        &sim.rng,
        &defs.revisions,
        Some(&namespace),
        revision,
        &controller_manager(),
    )?;
    Ok(Arc::new(created))
}

/// Gives an existing revision a new number (a rollback to it).
pub fn renumber(
    store: &mut StoreInner,
    defs: &Defs,
    revision: &Arc<Value>,
    number: i64,
) -> Arc<Value> {
    let mut updated = (**revision).clone();
    updated["revision"] = json!(number);
    match write::update(store, &defs.revisions, revision, updated, &controller_manager()) {
        Ok(stored) => Arc::new(stored),
        Err(error) => {
            tracing::debug!(error = %error, "renumbering a ControllerRevision failed");
            revision.clone()
        }
    }
}

/// Deletes a revision (history beyond `revisionHistoryLimit`).
pub fn delete(store: &mut StoreInner, defs: &Defs, revision: &Arc<Value>) {
    let options = DeleteOptions {
        preconditions: DeletePreconditions {
            uid: metadata_str(revision, "uid").map(String::from),
            resource_version: None,
        },
        ..DeleteOptions::default()
    };
    if let Err(error) = write::delete(store, &defs.revisions, revision, &options) {
        tracing::debug!(error = %error, "deleting a ControllerRevision failed");
    }
}
