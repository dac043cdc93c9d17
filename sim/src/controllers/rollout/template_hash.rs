//! The pod-template hash that names a Deployment's new ReplicaSet, stable
//! across key order.

use serde_json::Value;

use crate::util::safe_encode;

/// FNV-1a (32 bit) of the canonical JSON of `spec.template`, encoded like
/// Kubernetes encodes its pod-template hashes (the decimal digits mapped onto
/// the "safe" alphabet without vowels), e.g. `5d8f9c7b6`.
pub fn pod_template_hash(deployment: &Value) -> String {
    let template = deployment.pointer("/spec/template").unwrap_or(&Value::Null);
    let mut canonical = String::new();
    write_canonical(template, &mut canonical);
    let mut hash: u32 = 0x811c_9dc5;
    for byte in canonical.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    safe_encode(&hash.to_string())
}

/// `<deployment name>-<pod template hash>`.
pub fn new_replica_set_name(deployment: &Value) -> String {
    format!("{}-{}", name_of(deployment), pod_template_hash(deployment))
}

fn name_of(deployment: &Value) -> &str {
    deployment.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

/// Whether a value is what a typed Go object marshals as nothing: null, or an
/// empty object or list (so that a template a client echoes back with
/// `creationTimestamp: null` or `resources: {}` hashes like the stored one).
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.values().all(is_empty),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// JSON with object keys sorted and empty values left out, so the hash
/// depends neither on key order nor on how a client spells "unset".
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().filter(|key| !is_empty(&map[*key])).collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*key).clone()).to_string());
                out.push(':');
                write_canonical(&map[*key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
