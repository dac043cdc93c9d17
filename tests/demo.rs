//! `servicerefresh demo` as a new user runs it: piped, it prints one plain line per change
//! (logs and CI stay readable); on a terminal (a pseudo-terminal from util-linux `script`) it
//! animates a progress bar as `servicerefresh start --wait` does, with the completed batches
//! printed above it. Both end with the same summary and exit 1 for a run with a failure.

use std::process::Command;

const ARGS: &[&str] = &["demo", "--deployments", "4", "--fail", "1", "--batch-size", "2"];

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_servicerefresh")
}

/// The text a terminal would show, escape sequences and carriage returns taken out.
fn plain(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw).replace('\r', "\n");
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, then one final letter.
            if chars.peek() == Some(&'[') {
                chars.next();
                for next in chars.by_ref() {
                    if next.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[test]
fn piped_the_demo_prints_plain_lines() {
    let output = Command::new(binary()).args(ARGS).output().expect("the demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "one Deployment fails: {stdout}");
    assert!(stdout.lines().any(|line| line.contains("] Running   batch 1/2")), "{stdout}");
    assert!(stdout.contains("summary:"), "{stdout}");
    assert!(!stdout.contains('\u{1b}'), "no escape sequences when piped: {stdout:?}");
}

#[test]
fn on_a_terminal_the_demo_shows_a_progress_bar() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipping: util-linux script is not installed");
        return;
    }
    let command = std::iter::once(binary()).chain(ARGS.iter().copied()).collect::<Vec<_>>();
    let output = Command::new("script")
        .args(["-qfec", &command.join(" "), "/dev/null"])
        .output()
        .expect("script runs");
    let shown = plain(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "one Deployment fails: {shown}");
    assert!(
        shown.lines().any(|line| line.contains("/4 services") && line.contains("Running batch")),
        "a bar with the services done and what runs: {shown}"
    );
    assert!(
        !shown.lines().any(|line| line.contains("] Running   batch")),
        "no plain progress lines on a terminal: {shown}"
    );
    assert!(shown.contains("batch  1/2 done in"), "completed batches stay: {shown}");
    assert!(shown.contains("summary:"), "{shown}");
}
