//! The simple JSONPath the apiextensions server supports in printer columns
//! (`.a.b[0].c`, escaped dots, quoted keys, negative indices).

use serde_json::Value;

/// One step of a simple JSONPath.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(i64),
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
                if let Some(quoted) = inner
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
        };
    }
    Some(current)
}
