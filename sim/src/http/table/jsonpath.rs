//! The JSONPath the apiextensions server evaluates in printer columns: simple paths
//! (`.a.b[0].c`, escaped dots, quoted keys, negative indices) and the equality filter that
//! CRDs use to show a condition (`.status.conditions[?(@.type=="Ready")].reason`).

use serde_json::Value;

/// One step of a simple JSONPath.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(i64),
    /// `[?(@.key=="value")]`: the first element of an array whose `key` is the string `value`.
    Filter {
        key: String,
        value: String,
    },
}

/// `?(@.key=="value")` (or with single quotes) as a filter step.
fn parse_filter(inner: &str) -> Option<Step> {
    let condition = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (left, right) = condition.split_once("==")?;
    let key = left.trim().strip_prefix("@.")?;
    let right = right.trim();
    let value = right
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .or_else(|| right.strip_prefix('\'').and_then(|rest| rest.strip_suffix('\'')))?;
    Some(Step::Filter { key: key.to_owned(), value: value.to_owned() })
}

/// Parses `.a.b[0].c`, `.metadata.labels.app\.kubernetes\.io/name`,
/// `.a['b.c']`, optionally wrapped in `{}`.
fn parse_json_path(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path.strip_prefix('{').and_then(|inner| inner.strip_suffix('}')).unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let chars: Vec<char> = path.chars().collect();
    let mut steps = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        match chars[at] {
            '.' => {
                at += 1;
                let mut key = String::new();
                while at < chars.len() && chars[at] != '.' && chars[at] != '[' {
                    if chars[at] == '\\' && at + 1 < chars.len() {
                        at += 1;
                    }
                    key.push(chars[at]);
                    at += 1;
                }
                if !key.is_empty() {
                    steps.push(Step::Key(key));
                }
            }
            '[' => {
                let close = chars[at..].iter().position(|ch| *ch == ']')? + at;
                let inner: String = chars[at + 1..close].iter().collect();
                let inner = inner.trim();
                if inner.starts_with('?') {
                    steps.push(parse_filter(inner)?);
                } else if let Some(quoted) = inner
                    .strip_prefix('\'')
                    .and_then(|unquoted| unquoted.strip_suffix('\''))
                    .or_else(|| {
                        inner.strip_prefix('"').and_then(|unquoted| unquoted.strip_suffix('"'))
                    })
                {
                    steps.push(Step::Key(quoted.to_owned()));
                } else {
                    steps.push(Step::Index(inner.parse().ok()?));
                }
                at = close + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

/// Evaluates a simple JSONPath; `None` when it finds nothing.
pub fn eval_json_path<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let steps = parse_json_path(path)?;
    let mut current = object;
    for step in &steps {
        current = match step {
            Step::Key(key) => current.get(key)?,
            Step::Index(index) => {
                let items = current.as_array()?;
                let len = i64::try_from(items.len()).ok()?;
                // Negative indices count from the end.
                let index = if *index < 0 { len + index } else { *index };
                items.get(usize::try_from(index).ok()?)?
            }
            Step::Filter { key, value } => current
                .as_array()?
                .iter()
                .find(|item| item.get(key).and_then(Value::as_str) == Some(value.as_str()))?,
        };
    }
    Some(current)
}
