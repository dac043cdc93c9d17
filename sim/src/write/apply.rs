//! Server-side apply as a write: the applied configuration is checked
//! against the URL, merged into the live object (or an empty one) by field
//! ownership, and stored through [`create`](super::create) or
//! [`update`](super::update).

use serde_json::{Value, json};

use super::{WriteOptions, check_type_meta, create, update};
use crate::error::ApiError;
use crate::fields::{self, OwnershipContext};
use crate::registry::ResourceDef;
use crate::store::StoreInner;
use crate::util::{SharedRng, metadata_mut, metadata_str, now_rfc3339};

/// The result of an apply.
pub struct Applied {
    /// The stored object.
    pub object: Value,
    /// The apply created the object.
    pub created: bool,
}

/// Applies `applied` as `options.manager` to the object `name` in
/// `namespace` (the URL's).
pub fn apply(
    store: &mut StoreInner,
    rng: &SharedRng,
    def: &ResourceDef,
    namespace: Option<&str>,
    name: &str,
    mut applied: Value,
    options: &WriteOptions<'_>,
) -> Result<Applied, ApiError> {
    let has_text =
        |key: &str| applied.get(key).and_then(Value::as_str).is_some_and(|text| !text.is_empty());
    if !has_text("apiVersion") || !has_text("kind") {
        return Err(ApiError::bad_request(
            "error decoding YAML: Object 'Kind' is missing or apiVersion is missing in the applied configuration",
        ));
    }
    let url_namespace = namespace.unwrap_or("");
    match metadata_str(&applied, "name") {
        Some(body_name) if body_name != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        _ => {}
    }
    if let Some(metadata) = metadata_mut(&mut applied) {
        metadata.insert("name".into(), json!(name));
        if def.namespaced {
            match metadata.get("namespace").and_then(Value::as_str) {
                Some(body_namespace)
                    if !body_namespace.is_empty() && body_namespace != url_namespace =>
                {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    metadata.insert("namespace".into(), json!(url_namespace));
                }
            }
        }
    }
    // Checked on a copy: the applied configuration keeps the apiVersion it
    // was written with, which is what managedFields record.
    check_type_meta(def, &mut applied.clone())?;
    let applied_rv = metadata_str(&applied, "resourceVersion").unwrap_or("").to_string();
    if let Some(metadata) = metadata_mut(&mut applied) {
        metadata.remove("resourceVersion");
        metadata.remove("managedFields");
    }
    let live = store.get(&def.storage_gr(), url_namespace, name);
    let now = now_rfc3339();
    let ownership = OwnershipContext::new(def, &options.manager, options.subresource, &now);
    // Apply records its own managedFields entry.
    let options =
        WriteOptions { manager: options.manager.clone(), track_managed_fields: false, ..*options };
    match live {
        None => {
            if !applied_rv.is_empty() || options.subresource.is_some() {
                return Err(ApiError::not_found(&def.gr(), name));
            }
            let merged = fields::apply(None, &applied, options.force, &ownership)?;
            let object = create(store, rng, def, namespace, merged, &options)?;
            Ok(Applied { object, created: true })
        }
        Some(old) => {
            let old_rv = metadata_str(&old, "resourceVersion").unwrap_or("");
            if !applied_rv.is_empty() && applied_rv != old_rv {
                return Err(ApiError::conflict_modified(&def.gr(), name));
            }
            let merged =
                fields::apply(Some(&def.to_served(&old)), &applied, options.force, &ownership)?;
            let object = update(store, def, &old, merged, &options)?;
            Ok(Applied { object, created: false })
        }
    }
}
