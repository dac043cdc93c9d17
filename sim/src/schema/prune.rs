//! Pruning: dropping the fields a structural schema does not specify, and
//! reporting them (what `fieldValidation=Strict` turns into an error).

use serde_json::Value;

use super::{ROOT_META, additional_schema, flag, index, join, properties};

/// Drops fields not specified by `schema` from `object` and returns their paths
/// (`spec.colour`, `spec.items[0].x`), in object order. Fields are kept
/// under `x-kubernetes-preserve-unknown-fields: true`, and every key of a map
/// with an `additionalProperties` schema is kept (its values pruned by that
/// schema). At the root `apiVersion`, `kind` and `metadata` are never pruned;
/// an `x-kubernetes-embedded-resource` keeps them too.
pub fn prune(schema: &Value, object: &mut Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune_at(schema, object, "", true, &mut pruned);
    pruned
}

fn prune_at(schema: &Value, object: &mut Value, path: &str, root: bool, pruned: &mut Vec<String>) {
    if flag(schema, "x-kubernetes-int-or-string") {
        return;
    }
    match object {
        Value::Object(map) => {
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            let props = properties(schema);
            let additional = additional_schema(schema);
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let keep_meta = (root || embedded) && ROOT_META.contains(&key.as_str());
                let child_path = join(path, &key);
                if let Some(prop) = props.and_then(|properties| properties.get(&key)) {
                    if !(root && keep_meta)
                        && let Some(child) = map.get_mut(&key)
                    {
                        prune_at(prop, child, &child_path, false, pruned);
                    }
                } else if let Some(additional) = additional {
                    if let Some(child) = map.get_mut(&key) {
                        prune_at(additional, child, &child_path, false, pruned);
                    }
                } else if keep_meta
                    || preserve
                    || schema.get("additionalProperties") == Some(&Value::Bool(true))
                {
                    // Kept as is.
                } else {
                    map.remove(&key);
                    pruned.push(child_path);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_at(item_schema, item, &index(path, i), false, pruned);
                }
            }
        }
        _ => {}
    }
}
