//! Label and field selectors as the API server parses them from the
//! `labelSelector` and `fieldSelector` query parameters (equality,
//! set-based `in` / `notin`, existence `key` / `!key`, comma-separated), and
//! label selectors from `metav1.LabelSelector` objects.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The operator of one label requirement, with its values.
#[derive(Debug, Clone, PartialEq)]
enum Operator {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, Default)]
pub struct LabelSelector {
    requirements: Vec<(String, Operator)>,
}

/// Whether `key` is a valid label key: `[prefix/]name`, the prefix at most
/// 253 characters.
fn valid_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.is_empty() || prefix.len() > 253)
    {
        return false;
    }
    valid_label_value(name) && !name.is_empty()
}

/// Whether `value` is a valid label value: empty, or at most 63
/// alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric.
fn valid_label_value(value: &str) -> bool {
    if value.is_empty() {
        return true;
    }
    if value.len() > 63 {
        return false;
    }
    let bytes = value.as_bytes();
    let alphanumeric = |byte: u8| byte.is_ascii_alphanumeric();
    alphanumeric(bytes[0])
        && alphanumeric(bytes[bytes.len() - 1])
        && bytes.iter().all(|&byte| alphanumeric(byte) || matches!(byte, b'-' | b'_' | b'.'))
}

/// Splits on commas that are not inside parentheses.
fn split_requirements(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    for ch in text.chars() {
        match ch {
            '(' => {
                depth += 1;
                current.push(ch)
            }
            ')' => {
                depth -= 1;
                current.push(ch)
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut current)),
            _ => current.push(ch),
        }
    }
    parts.push(current);
    parts
}

impl LabelSelector {
    /// Parses the `labelSelector` syntax.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        if text.trim().is_empty() {
            return Ok(LabelSelector { requirements });
        }
        let unparsable =
            |detail: &str| ApiError::bad_request(format!("unable to parse requirement: {detail}"));
        for part in split_requirements(text) {
            let part = part.trim();
            if part.is_empty() {
                return Err(unparsable("found '', expected: identifier"));
            }
            let (key, operator) = if let Some(key) = part.strip_prefix('!') {
                (key.trim().to_string(), Operator::DoesNotExist)
            } else if let Some((key, value)) = part.split_once("!=") {
                (key.trim().to_string(), Operator::NotEquals(value.trim().to_string()))
            } else if let Some((key, value)) = part.split_once("==") {
                (key.trim().to_string(), Operator::Equals(value.trim().to_string()))
            } else if let Some((key, value)) = part.split_once('=') {
                (key.trim().to_string(), Operator::Equals(value.trim().to_string()))
            } else if let Some((key, set)) = split_set_operator(part, " notin ") {
                (key, Operator::NotIn(parse_set(&set).ok_or_else(|| unparsable(part))?))
            } else if let Some((key, set)) = split_set_operator(part, " in ") {
                (key, Operator::In(parse_set(&set).ok_or_else(|| unparsable(part))?))
            } else {
                (part.to_string(), Operator::Exists)
            };
            if !valid_label_key(&key) {
                return Err(ApiError::bad_request(format!(
                    "unable to parse requirement: <nil>: Invalid value: {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                )));
            }
            let values: Vec<&String> = match &operator {
                Operator::Equals(value) | Operator::NotEquals(value) => vec![value],
                Operator::In(values) | Operator::NotIn(values) => values.iter().collect(),
                _ => vec![],
            };
            for value in values {
                if !valid_label_value(value) {
                    return Err(ApiError::bad_request(format!(
                        "unable to parse requirement: values[0][{key}]: Invalid value: {value:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                    )));
                }
            }
            requirements.push((key, operator));
        }
        Ok(LabelSelector { requirements })
    }

    /// Builds a selector from a `metav1.LabelSelector` JSON object; the
    /// error is the message for an unknown operator.
    pub fn from_json(selector: &Value) -> Result<Self, String> {
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (key, value) in labels {
                requirements.push((
                    key.clone(),
                    Operator::Equals(value.as_str().unwrap_or("").to_string()),
                ));
            }
        }
        if let Some(expressions) = selector.get("matchExpressions").and_then(Value::as_array) {
            for expression in expressions {
                let key = expression.get("key").and_then(Value::as_str).unwrap_or("").to_string();
                let values: Vec<String> = expression
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|values| {
                        values.iter().filter_map(|value| value.as_str().map(String::from)).collect()
                    })
                    .unwrap_or_default();
                let operator = match expression.get("operator").and_then(Value::as_str) {
                    Some("In") => Operator::In(values),
                    Some("NotIn") => Operator::NotIn(values),
                    Some("Exists") => Operator::Exists,
                    Some("DoesNotExist") => Operator::DoesNotExist,
                    other => {
                        return Err(format!("{other:?} is not a valid label selector operator"));
                    }
                };
                requirements.push((key, operator));
            }
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether the labels of an object match.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels").and_then(Value::as_object);
        self.matches_map(labels)
    }

    /// Whether a label map matches.
    pub fn matches_map(&self, labels: Option<&Map<String, Value>>) -> bool {
        let label = |key: &str| labels.and_then(|labels| labels.get(key)).and_then(Value::as_str);
        self.requirements.iter().all(|(key, operator)| match operator {
            Operator::Equals(value) => label(key) == Some(value.as_str()),
            Operator::NotEquals(value) => label(key) != Some(value.as_str()),
            Operator::In(values) => {
                label(key).is_some_and(|actual| values.iter().any(|value| value == actual))
            }
            Operator::NotIn(values) => {
                label(key).is_none_or(|actual| !values.iter().any(|value| value == actual))
            }
            Operator::Exists => label(key).is_some(),
            Operator::DoesNotExist => label(key).is_none(),
        })
    }
}

/// `key <operator> rest` split at a set operator (` in `, ` notin `).
fn split_set_operator(part: &str, operator: &str) -> Option<(String, String)> {
    let at = part.find(operator)?;
    Some((part[..at].trim().to_string(), part[at + operator.len()..].trim().to_string()))
}

/// The values of `(a, b)`.
fn parse_set(text: &str) -> Option<Vec<String>> {
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty())
            .collect(),
    )
}

/// One field requirement: the field path, `true` for `=` (`false` for
/// `!=`), and the value.
type FieldRequirement = (String, bool, String);

/// A parsed field selector (`=`, `==`, `!=` on supported field paths).
#[derive(Debug, Clone, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses and checks the fields against those the resource supports.
    pub fn parse(text: &str, supported: &[&str]) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        if text.trim().is_empty() {
            return Ok(FieldSelector { requirements });
        }
        for part in text.split(',') {
            let part = part.trim();
            let (field, equals, value) = if let Some((field, value)) = part.split_once("!=") {
                (field, false, value)
            } else if let Some((field, value)) = part.split_once("==") {
                (field, true, value)
            } else if let Some((field, value)) = part.split_once('=') {
                (field, true, value)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            if !supported.contains(&field) {
                return Err(ApiError::bad_request(format!("field label not supported: {field}")));
            }
            requirements.push((field.to_string(), equals, value.trim().to_string()));
        }
        Ok(FieldSelector { requirements })
    }

    /// Whether an object matches (a missing field reads as "").
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|(field, equals, wanted)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = match object.pointer(&pointer) {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *wanted) == *equals
        })
    }

    /// Rewrites the field paths (e.g. to a storage representation).
    pub fn map_paths(&mut self, rewrite: impl Fn(&str) -> String) {
        for requirement in &mut self.requirements {
            requirement.0 = rewrite(&requirement.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_syntax() {
        let o = json!({"metadata": {"labels": {"a": "b", "env": "prod"}}});
        for (s, want) in [
            ("a=b", true),
            ("a==b", true),
            ("a!=b", false),
            ("a in (x,b)", true),
            ("a notin (b)", false),
            ("a", true),
            ("!a", false),
            ("!zz", true),
            ("a=b,env in (prod, dev)", true),
            ("a=b,env=dev", false),
            ("", true),
        ] {
            let sel = LabelSelector::parse(s).expect("parses");
            assert_eq!(sel.matches(&o), want, "{s}");
        }
        assert!(LabelSelector::parse("a=b c").is_err());
    }
}
