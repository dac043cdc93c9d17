//! Owner references, as the controllers write them and the garbage
//! collector follows them.

use serde_json::{Value, json};

use crate::util::metadata_str;

/// One entry of `metadata.ownerReferences`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    /// `controller: true`.
    pub controller: bool,
    /// `blockOwnerDeletion: true`: a foreground deletion of the owner waits
    /// for this dependent.
    pub block_owner_deletion: bool,
}

impl OwnerRef {
    /// The API group of the owner (`""` for core).
    pub fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(group, _)| group)
    }
}

/// An object's owner references (malformed entries skipped).
pub fn owner_refs(object: &Value) -> Vec<OwnerRef> {
    let Some(references) = object.pointer("/metadata/ownerReferences").and_then(Value::as_array)
    else {
        return Vec::new();
    };
    references
        .iter()
        .filter_map(|reference| {
            let text = |key: &str| reference.get(key).and_then(Value::as_str).map(String::from);
            let flag = |key: &str| reference.get(key).and_then(Value::as_bool).unwrap_or(false);
            Some(OwnerRef {
                api_version: text("apiVersion")?,
                kind: text("kind")?,
                name: text("name")?,
                uid: text("uid")?,
                controller: flag("controller"),
                block_owner_deletion: flag("blockOwnerDeletion"),
            })
        })
        .collect()
}

/// The owner reference a controller puts on what it creates for `owner`
/// (`controller` and `blockOwnerDeletion` set, as the real controllers do).
pub fn controller_reference(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": metadata_str(owner, "name").unwrap_or(""),
        "uid": metadata_str(owner, "uid").unwrap_or(""),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Whether `object` is controlled by the object with uid `owner_uid`.
pub fn is_controlled_by(object: &Value, owner_uid: &str) -> bool {
    owner_refs(object).iter().any(|reference| reference.controller && reference.uid == owner_uid)
}

/// Whether an object is being deleted.
pub fn is_deleting(object: &Value) -> bool {
    object.pointer("/metadata/deletionTimestamp").is_some()
}
