//! A container's command line as the kubelet and the container runtime
//! resolve it: `$(VAR)` references expanded from the container's
//! environment (Kubernetes' `expansion` package: `$$` escapes a `$`, an
//! unknown or unterminated reference stays as written), then `command`
//! replacing the image's entrypoint and `args` its CMD.
//!
//! The image is a local executable standing in for it, which is its
//! entrypoint; its CMD is unknown, so taken as empty. A `command` whose
//! first word names a file of the same name as that executable (the image's
//! own entrypoint, such as `/servicerefresh` for `target/debug/servicerefresh`)
//! runs the executable; any other `command` runs as written on this host
//! (`sh`, `python3`, found on the container's `PATH`).

use std::collections::HashMap;
use std::path::Path;

/// Expands `$(NAME)` references in `input` from `vars`.
pub fn expand(input: &str, vars: &HashMap<String, String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                // `$$`: an escaped operator.
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest.find(')') {
                    Some(close) => {
                        let name = &rest[1..close];
                        match vars.get(name) {
                            Some(value) => out.push_str(value),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        close + 1
                    }
                    // Unterminated: `$(` as written, the rest copied on.
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                // An operator that starts no reference: kept with the byte after it.
                _ => {
                    let width = rest.chars().next().map_or(1, char::len_utf8);
                    out.push('$');
                    out.push_str(&rest[..width]);
                    width
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    if checkpoint < input.len() {
        out.push_str(&input[checkpoint..]);
    }
    out
}

/// The program and arguments a container runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Argv {
    pub program: String,
    pub args: Vec<String>,
}

fn strings(value: Option<&serde_json::Value>) -> Option<Vec<String>> {
    value.and_then(serde_json::Value::as_array).map(|items| {
        items.iter().map(|item| item.as_str().unwrap_or_default().to_string()).collect()
    })
}

/// The command line of `container` whose image is `entrypoint`, with
/// references expanded from `env`.
pub fn resolve(
    container: &serde_json::Value,
    entrypoint: &Path,
    env: &HashMap<String, String>,
) -> Argv {
    let command = strings(container.get("command")).filter(|command| !command.is_empty());
    let args = strings(container.get("args")).unwrap_or_default();
    let mut words: Vec<String> = match command {
        Some(command) => command.iter().chain(args.iter()).map(|word| expand(word, env)).collect(),
        None => args.iter().map(|word| expand(word, env)).collect(),
    };
    let binary = entrypoint.display().to_string();
    let names_entrypoint = |word: &str| {
        word == binary
            || (Path::new(word).file_name().is_some()
                && Path::new(word).file_name() == entrypoint.file_name())
    };
    if container.get("command").and_then(serde_json::Value::as_array).is_some_and(|c| !c.is_empty())
    {
        let first = words.remove(0);
        let program = if names_entrypoint(&first) { binary } else { first };
        Argv { program, args: words }
    } else {
        Argv { program: binary, args: words }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> HashMap<String, String> {
        [("POD_IP", "127.1.0.7"), ("PORT", "8080"), ("EMPTY", "")]
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn expansion_follows_the_kubernetes_rules() {
        let cases = [
            ("--listen=$(POD_IP):$(PORT)", "--listen=127.1.0.7:8080"),
            ("$(UNKNOWN)", "$(UNKNOWN)"),
            ("$$(POD_IP)", "$(POD_IP)"),
            ("$$$(POD_IP)", "$127.1.0.7"),
            ("$$", "$"),
            ("a$", "a$"),
            ("$x$(PORT)", "$x8080"),
            ("$(POD_IP", "$(POD_IP"),
            ("x$(EMPTY)y", "xy"),
            ("$()", "$()"),
            ("price: $5", "price: $5"),
            ("é$(PORT)ü$ö", "é8080ü$ö"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(expand(input, &vars()), expected, "{input:?}");
        }
    }

    #[test]
    fn command_replaces_the_entrypoint_and_args_the_cmd() {
        let binary = Path::new("/work/target/debug/servicerefresh");
        let argv = |container: serde_json::Value| resolve(&container, binary, &vars());
        assert_eq!(
            argv(json!({"args": ["run", "--metrics-listen=$(POD_IP):$(PORT)"]})),
            Argv {
                program: binary.display().to_string(),
                args: vec!["run".into(), "--metrics-listen=127.1.0.7:8080".into()],
            }
        );
        assert_eq!(argv(json!({})).args, Vec::<String>::new(), "the unknown CMD is empty");
        assert_eq!(
            argv(json!({"command": ["/servicerefresh", "run"], "args": ["--x"]})),
            Argv { program: binary.display().to_string(), args: vec!["run".into(), "--x".into()] },
            "the image's own entrypoint path runs the mapped executable"
        );
        assert_eq!(
            argv(json!({"command": ["sh", "-c", "echo $(PORT)"]})),
            Argv { program: "sh".into(), args: vec!["-c".into(), "echo 8080".into()] }
        );
    }
}
