//! `servicerefresh completions SHELL` prints a completion script the shell accepts, naming
//! the subcommands; `servicerefresh man` prints a roff manual page built from the same flags.

use std::process::Command;

fn servicerefresh(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_servicerefresh"))
        .args(args)
        .output()
        .expect("servicerefresh runs");
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[test]
fn completion_scripts_name_the_subcommands_and_parse() {
    for shell in ["bash", "zsh", "fish"] {
        let script = servicerefresh(&["completions", shell]);
        for subcommand in ["run", "start", "status", "cancel", "crd", "completions"] {
            assert!(script.contains(subcommand), "{shell} completes {subcommand}");
        }
        if shell == "bash" {
            // bash itself accepts the script and registers the completion.
            let dir = tempfile::tempdir().expect("a directory");
            let file = dir.path().join("servicerefresh.bash");
            std::fs::write(&file, &script).expect("written");
            let check = format!("source {} && complete -p servicerefresh", file.display());
            let output = Command::new("bash").args(["-c", &check]).output().expect("bash runs");
            let registered = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success() && registered.contains("servicerefresh"),
                "{registered}"
            );
        }
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_servicerefresh"))
        .args(["completions", "tcsh"])
        .output()
        .expect("runs");
    assert_eq!(refused.status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn the_man_page_documents_the_commands() {
    let page = servicerefresh(&["man"]);
    assert!(page.starts_with(".ie") || page.contains(".TH servicerefresh"), "roff: {page}");
    for word in ["servicerefresh", "start", "cancel", "completions"] {
        assert!(page.contains(word), "the page mentions {word}");
    }
}
