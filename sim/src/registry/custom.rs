//! The served resources an installed CustomResourceDefinition defines: one
//! [`ResourceDef`] per served version.

use serde_json::{Value, json};

use super::ResourceDef;

/// The served resources a CRD object defines (none for an unserved version).
pub fn custom_resource_defs(crd: &Value) -> Vec<ResourceDef> {
    let crd_name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let spec = crd.get("spec").cloned().unwrap_or(json!({}));
    let text =
        |pointer: &str| spec.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_string();
    let texts = |pointer: &str| -> Vec<String> {
        spec.pointer(pointer)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(|item| item.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let kind = text("/names/kind");
    let singular = match text("/names/singular") {
        unset if unset.is_empty() => kind.to_lowercase(),
        singular => singular,
    };
    let mut defs = Vec::new();
    for version in spec.get("versions").and_then(Value::as_array).cloned().unwrap_or_default() {
        if version.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        defs.push(ResourceDef {
            group: text("/group"),
            version: version.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
            plural: text("/names/plural"),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced: text("/scope") == "Namespaced",
            short_names: texts("/names/shortNames"),
            categories: texts("/names/categories"),
            status_subresource: version.pointer("/subresources/status").is_some(),
            scale_subresource: false,
            crd: Some(crd_name.to_string()),
            schema: version.pointer("/schema/openAPIV3Schema").cloned(),
            unconditional_update: false,
            return_deleted_object: true,
            has_generation: true,
        });
    }
    defs
}
