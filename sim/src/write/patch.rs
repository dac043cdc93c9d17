//! Patching an object with a JSON, merge or strategic merge patch: the
//! patch applies to the object as the request's version serves it, then the
//! result goes through [`update`](super::update).

use std::sync::Arc;

use serde_json::{Value, json};

use super::{WriteOptions, update};
use crate::error::ApiError;
use crate::patch::{PatchType, patch_object};
use crate::registry::ResourceDef;
use crate::store::StoreInner;
use crate::util::{metadata_mut, metadata_str};

/// Patches the stored object `old`; returns the stored result.
pub fn patch(
    store: &mut StoreInner,
    def: &ResourceDef,
    old: &Arc<Value>,
    patch_type: PatchType,
    patch: &Value,
    options: &WriteOptions<'_>,
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
    update(store, def, old, patched, options)
}
