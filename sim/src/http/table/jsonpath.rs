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
    let path = path.strip_prefix('{').and_then(|p| p.strip_suffix('}')).unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let chars: Vec<char> = path.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let mut key = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    key.push(chars[i]);
                    i += 1;
                }
                if !key.is_empty() {
                    steps.push(Step::Key(key));
                }
            }
            '[' => {
                let close = chars[i..].iter().position(|c| *c == ']')? + i;
                let inner: String = chars[i + 1..close].iter().collect();
                let inner = inner.trim();
                if let Some(quoted) = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                {
                    steps.push(Step::Key(quoted.to_owned()));
                } else {
                    steps.push(Step::Index(inner.parse().ok()?));
                }
                i = close + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

/// Evaluates a simple JSONPath; `None` when it finds nothing.
pub fn eval_json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let steps = parse_json_path(path)?;
    let mut current = obj;
    for step in &steps {
        current = match step {
            Step::Key(k) => current.get(k)?,
            Step::Index(i) => {
                let items = current.as_array()?;
                let len = i64::try_from(items.len()).ok()?;
                let idx = if *i < 0 { len + i } else { *i };
                items.get(usize::try_from(idx).ok()?)?
            }
        };
    }
    Some(current)
}
