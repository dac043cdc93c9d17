//! CEL validation rules of structural schemas (`x-kubernetes-validations`),
//! as the apiextensions-apiserver enforces them: every rule of a schema node
//! runs with `self` bound to the node's value (and `oldSelf` to its stored
//! value on update); a transition rule (one that uses `oldSelf`) runs only
//! where an old value exists. A rule that evaluates to false fails with its
//! `messageExpression` (when it yields a non-empty string), else its
//! `message`, else `failed rule: <rule>`, at the node's path plus its
//! `fieldPath`, as `reason` words it (`FieldValueInvalid` by default, whose
//! value is the schema type: `spec: Invalid value: "object": <message>`).
//!
//! Expressions run on the `cel` crate (the maintained cel-rust
//! interpreter); the Kubernetes CEL libraries beyond the standard ones
//! (`isURL`, `quantity`, ...) are not there.

use serde_json::Value;

use super::walk::{Node, Step};
use super::{FieldError, FieldErrorReason, additional_schema, join, properties};

/// A rule that does not compile, found when its CRD is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CelError {
    /// The path of the rule's `rule` field below the schema root, e.g.
    /// `properties[spec].x-kubernetes-validations[0].rule`.
    pub path: String,
    /// The rule's text.
    pub rule: String,
    /// The compiler's message.
    pub message: String,
}

/// The rules of a schema tree that do not compile.
pub fn check_rules(schema: &Value) -> Vec<CelError> {
    let mut errors = Vec::new();
    check_at(schema, "", &mut errors);
    errors
}

fn check_at(schema: &Value, path: &str, errors: &mut Vec<CelError>) {
    if let Some(rules) = schema.get("x-kubernetes-validations").and_then(Value::as_array) {
        for (i, rule) in rules.iter().enumerate() {
            let text = rule.get("rule").and_then(Value::as_str).unwrap_or("");
            if let Err(error) = cel::Program::compile(text) {
                errors.push(CelError {
                    path: join(path, &format!("x-kubernetes-validations[{i}].rule")),
                    rule: text.to_string(),
                    message: error.to_string(),
                });
            }
        }
    }
    if let Some(properties) = properties(schema) {
        for (key, child) in properties {
            check_at(child, &join(path, &format!("properties[{key}]")), errors);
        }
    }
    if let Some(items) = schema.get("items") {
        check_at(items, &join(path, "items"), errors);
    }
    if let Some(additional) = additional_schema(schema) {
        check_at(additional, &join(path, "additionalProperties"), errors);
    }
}

/// Runs the CEL rules of `schema` against `object` (and `old`, the stored
/// object on update); returns the failures.
pub fn validate_rules(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    rules_at(&Node::root(schema, object), old, &mut errors);
    errors
}

fn rules_at(node: &Node<'_>, old: Option<&Value>, errors: &mut Vec<FieldError>) {
    if node.value.is_null() {
        return;
    }
    // Children first is not the server's order; it checks a node's rules,
    // then descends. Same here.
    if let Some(rules) = node.schema.get("x-kubernetes-validations").and_then(Value::as_array) {
        let self_value = if node.root { root_self(node.value) } else { node.value.clone() };
        let old_value = old.map(|old| if node.root { root_self(old) } else { old.clone() });
        for rule in rules {
            if let Some(error) =
                run_rule(node.schema, rule, &self_value, old_value.as_ref(), &node.path)
            {
                errors.push(error);
            }
        }
    }
    let map_keys = list_map_keys(node.schema);
    for (step, child) in node.children() {
        let old_child = match step {
            Step::Key(key) => old.and_then(|old| old.get(key)),
            Step::Index(_) => correlated_item(&map_keys, old, child.value),
        };
        rules_at(&child, old_child, errors);
    }
}

/// The `x-kubernetes-list-map-keys` of a list schema.
fn list_map_keys(schema: &Value) -> Vec<&str> {
    schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The old value of a list item: transition rules of list items correlate only in map lists
/// (by their keys); other items have no old value.
fn correlated_item<'a>(
    map_keys: &[&str],
    old: Option<&'a Value>,
    item: &Value,
) -> Option<&'a Value> {
    if map_keys.is_empty() {
        return None;
    }
    old.and_then(Value::as_array)?
        .iter()
        .find(|candidate| map_keys.iter().all(|key| candidate.get(key) == item.get(key)))
}

/// `self` at the root: the object with only `name` and `generateName` of
/// its metadata, as the server exposes it to rules.
fn root_self(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(fields) = object.as_object_mut()
        && let Some(metadata) = fields.get_mut("metadata").and_then(Value::as_object_mut)
    {
        metadata.retain(|key, _| key == "name" || key == "generateName");
    }
    object
}

/// Evaluates `expression` with `self` (and `oldSelf`).
fn evaluate(expression: &str, value: &Value, old: Option<&Value>) -> Result<cel::Value, String> {
    let program = cel::Program::compile(expression).map_err(|error| error.to_string())?;
    let mut context = cel::Context::default();
    context.add_variable("self", value).map_err(|error| error.to_string())?;
    if let Some(old) = old {
        context.add_variable("oldSelf", old).map_err(|error| error.to_string())?;
    }
    program.execute(&context).map_err(|error| error.to_string())
}

fn run_rule(
    schema: &Value,
    rule: &Value,
    value: &Value,
    old: Option<&Value>,
    path: &str,
) -> Option<FieldError> {
    let text = rule.get("rule").and_then(Value::as_str)?;
    let transition = cel::Program::compile(text)
        .map(|program| program.references().has_variable("oldSelf"))
        .unwrap_or(false);
    if transition && old.is_none() {
        return None;
    }
    let field = match rule.get("fieldPath").and_then(Value::as_str) {
        Some(field_path) if !field_path.is_empty() => {
            let relative = field_path.trim_start_matches('.');
            join(path, relative)
        }
        _ => path.to_string(),
    };
    let detail = match evaluate(text, value, old) {
        Ok(cel::Value::Bool(true)) => return None,
        Ok(cel::Value::Bool(false)) => failure_message(rule, text, value, old),
        Ok(other) => format!("rule did not evaluate to a bool: {other:?}"),
        // The server's wording of a runtime error (CEL-go's errors start
        // lower case: `no such key: name`).
        Err(error) => format!("{} evaluating rule: {}", lower_first(&error), text.trim()),
    };
    let schema_type = schema.get("type").and_then(Value::as_str).unwrap_or("object").to_string();
    let (reason, message) = match rule.get("reason").and_then(Value::as_str) {
        Some("FieldValueForbidden") => {
            (FieldErrorReason::Forbidden, format!("Forbidden: {detail}"))
        }
        Some("FieldValueRequired") => {
            (FieldErrorReason::Required, format!("Required value: {detail}"))
        }
        Some("FieldValueDuplicate") => {
            (FieldErrorReason::Duplicate, format!("Duplicate value: {schema_type:?}"))
        }
        _ => (FieldErrorReason::Invalid, format!("Invalid value: {schema_type:?}: {detail}")),
    };
    Some(FieldError { field, reason, message })
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The message of a failed rule: its `messageExpression`'s non-empty
/// string, else its `message`, else `failed rule: <rule>`.
fn failure_message(rule: &Value, text: &str, value: &Value, old: Option<&Value>) -> String {
    if let Some(expression) = rule.get("messageExpression").and_then(Value::as_str)
        && let Ok(cel::Value::String(message)) = evaluate(expression, value, old)
        && !message.trim().is_empty()
    {
        return message.to_string();
    }
    match rule.get("message").and_then(Value::as_str) {
        Some(message) if !message.is_empty() => message.to_string(),
        _ => format!("failed rule: {}", text.trim()),
    }
}
