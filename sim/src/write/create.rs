//! Creating an object: namespace and name (including `generateName`),
//! system metadata, the namespace's existence, status isolation, admission
//! and the first managedFields entry.

use serde_json::{Value, json};

use super::{WriteOptions, check_type_meta, sync_registry};
use crate::error::{ApiError, Cause, GroupResource};
use crate::fields::{self, OwnershipContext};
use crate::registry::ResourceDef;
use crate::store::{EventType, StoreInner};
use crate::util::{NAME_ALPHABET, SharedRng, metadata_mut, now_rfc3339};
use crate::validation;

/// Creates an object: the shared path of POST, apply-create and the fleet.
/// `url_namespace` is the namespace of the request's URL, if any. Returns
/// the stored object (or, with `dry_run`, the one that would be stored).
pub fn create(
    store: &mut StoreInner,
    rng: &SharedRng,
    def: &ResourceDef,
    url_namespace: Option<&str>,
    object: Value,
    options: &WriteOptions<'_>,
) -> Result<Value, ApiError> {
    let mut object = object;
    check_type_meta(def, &mut object)?;
    let mut object = def.to_storage(object);
    let now = now_rfc3339();
    let Some(metadata) = metadata_mut(&mut object) else {
        return Err(ApiError::bad_request("object is not a JSON object"));
    };
    let body_namespace =
        metadata.get("namespace").and_then(Value::as_str).unwrap_or("").to_string();
    let namespace = if def.namespaced {
        let url_namespace = url_namespace.unwrap_or("");
        if !body_namespace.is_empty()
            && !url_namespace.is_empty()
            && body_namespace != url_namespace
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let namespace =
            if url_namespace.is_empty() { body_namespace } else { url_namespace.to_string() };
        metadata.insert("namespace".into(), json!(namespace));
        namespace
    } else {
        metadata.remove("namespace");
        String::new()
    };
    let mut name = metadata.get("name").and_then(Value::as_str).unwrap_or("").to_string();
    // Admission sees the name before `generateName` fills it in.
    let requested_name = name.clone();
    if name.is_empty() {
        let prefix = metadata.get("generateName").and_then(Value::as_str).unwrap_or("").to_string();
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                &def.kind,
                &def.group,
                "",
                &[Cause::required("metadata.name", "name or generateName is required")],
            ));
        }
        // The real server trims the prefix so that prefix and suffix fit the
        // 63 characters of a label value.
        let base: String = prefix.chars().take(58).collect();
        for _ in 0..16 {
            let candidate = format!("{base}{}", rng.with(|rng| rng.string(NAME_ALPHABET, 5)));
            if store.get(&def.storage_gr(), &namespace, &candidate).is_none() {
                name = candidate;
                break;
            }
        }
        metadata.insert("name".into(), json!(name));
    }
    if let Some(cause) = validation::validate_name(def, &name) {
        return Err(ApiError::invalid(&def.kind, &def.group, &name, &[cause]));
    }
    let client_rv = metadata.get("resourceVersion").and_then(Value::as_str);
    if options.track_managed_fields && client_rv.is_some_and(|rv| !rv.is_empty()) {
        return Err(ApiError::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    metadata.remove("resourceVersion");
    metadata.insert("uid".into(), json!(rng.with(|rng| rng.uuid())));
    metadata.insert("creationTimestamp".into(), json!(now));
    metadata.remove("deletionTimestamp");
    metadata.remove("deletionGracePeriodSeconds");
    metadata.remove("selfLink");
    if def.has_generation {
        metadata.insert("generation".into(), json!(1));
    } else {
        metadata.remove("generation");
    }
    if options.track_managed_fields {
        metadata.remove("managedFields");
    }
    if def.namespaced {
        check_namespace_accepts(store, def, &namespace, &requested_name)?;
    }
    if def.is_custom() {
        check_crd_accepts(store, def)?;
    }
    if store.get(&def.storage_gr(), &namespace, &name).is_some() {
        return Err(ApiError::already_exists(&def.gr(), &name));
    }
    // Status is written through its subresource; namespaces (created with
    // their phase) and nodes (registered by their kubelet with their
    // capacity) are the exceptions.
    if def.status_subresource
        && options.subresource.is_none()
        && def.plural != "namespaces"
        && !def.is("", "nodes")
        && let Some(fields) = object.as_object_mut()
    {
        fields.remove("status");
    }
    validation::admit(def, &mut object, None, options.strict)?;
    if options.track_managed_fields {
        let ownership = OwnershipContext::new(def, &options.manager, None, &now);
        fields::track_update(None, &mut object, &ownership);
    }
    if options.dry_run {
        return Ok(object);
    }
    let stored = store.commit(&def.storage_gr(), object, EventType::Added);
    sync_registry(store, def, &stored, false);
    Ok((*stored).clone())
}

/// Checks that a namespace exists and accepts new content.
fn check_namespace_accepts(
    store: &StoreInner,
    def: &ResourceDef,
    namespace: &str,
    name: &str,
) -> Result<(), ApiError> {
    let namespaces = GroupResource::new("", "namespaces");
    match store.get(&namespaces, "", namespace) {
        None => Err(ApiError::not_found(&namespaces, namespace)),
        Some(found)
            if found.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating") =>
        {
            // The NamespaceLifecycle admission plugin's error, with its cause.
            let why = format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            );
            let gr = def.gr();
            let mut error = if name.is_empty() {
                ApiError {
                    message: format!("{gr} is forbidden: {why}"),
                    ..ApiError::forbidden(&gr, name, &why)
                }
            } else {
                ApiError::forbidden(&gr, name, &why)
            };
            if let Some(details) = error.details.as_mut().and_then(Value::as_object_mut) {
                details.insert(
                    "causes".into(),
                    json!([{
                        "reason": "NamespaceTerminating",
                        "message": format!("namespace {namespace} is being terminated"),
                        "field": "metadata.namespace",
                    }]),
                );
            }
            Err(error)
        }
        Some(_) => Ok(()),
    }
}

/// Custom resources of a CRD being deleted cannot be created (the
/// apiextensions handler's 405).
fn check_crd_accepts(store: &StoreInner, def: &ResourceDef) -> Result<(), ApiError> {
    let terminating = store
        .defining_crd(def)
        .is_some_and(|crd| crd.pointer("/metadata/deletionTimestamp").is_some());
    if !terminating {
        return Ok(());
    }
    Err(ApiError {
        message: "create not allowed while custom resource definition is terminating".into(),
        ..ApiError::method_not_allowed("create", &def.gr())
    })
}
