//! Patching an object with a JSON, merge or strategic merge patch: the
//! patch applies to the object as the request's version serves it; the
//! caller decodes the result (as the real server does, with the request's
//! `fieldValidation`) and stores it through [`update`](super::update).

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::patch::{PatchType, patch_object};
use crate::registry::ResourceDef;
use crate::util::{metadata_mut, metadata_str};

/// The object a patch of the stored `old` makes, before it is decoded and
/// stored (with [`update`](super::update)).
pub fn patched(
    def: &ResourceDef,
    old: &Value,
    patch_type: PatchType,
    patch: &Value,
) -> Result<Value, ApiError> {
    let mut patched = patch_object(patch_type, &def.to_served(old), patch)?;
    // The name and namespace cannot change through a patch.
    let name = metadata_str(old, "name").unwrap_or("").to_string();
    let namespace = metadata_str(old, "namespace").unwrap_or("").to_string();
    if let Some(metadata) = metadata_mut(&mut patched) {
        metadata.insert("name".into(), json!(name));
        if !namespace.is_empty() {
            metadata.insert("namespace".into(), json!(namespace));
        }
    }
    Ok(patched)
}
