//! Defaulting: filling in a structural schema's `default`s.

use serde_json::Value;

use super::{ROOT_META, additional_schema, flag, properties};

/// Applies `default`s for absent properties, recursively (into array items,
/// map values and defaulted values themselves). Before defaulting, `null`
/// values of fields that are not `nullable` are dropped (and so get their
/// default, if any), as the API server does.
pub fn apply_defaults(schema: &Value, object: &mut Value) {
    default_at(schema, object, true);
}

fn default_at(schema: &Value, object: &mut Value, root: bool) {
    match object {
        Value::Object(map) => {
            if let Some(props) = properties(schema) {
                for (key, prop) in props {
                    if root && ROOT_META.contains(&key.as_str()) {
                        continue;
                    }
                    if map.get(key) == Some(&Value::Null) && !flag(prop, "nullable") {
                        map.remove(key);
                    }
                    if !map.contains_key(key)
                        && let Some(default) = prop.get("default")
                    {
                        map.insert(key.clone(), default.clone());
                    }
                    if let Some(child) = map.get_mut(key) {
                        default_at(prop, child, false);
                    }
                }
            }
            if let Some(additional) = additional_schema(schema) {
                let known = properties(schema);
                for (key, child) in map.iter_mut() {
                    if known.is_some_and(|known| known.contains_key(key)) {
                        continue;
                    }
                    default_at(additional, child, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items.iter_mut() {
                    default_at(item_schema, item, false);
                }
            }
        }
        _ => {}
    }
}
