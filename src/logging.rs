//! What the program writes on standard error: log lines in the chosen format (`--log-format`),
//! and the one line that reports an error ending the program, in the same format.

use std::process::ExitCode;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logs to standard error at `default_filter` unless `RUST_LOG` says otherwise.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        // The span list carries every span's fields, the current one's included: the
        // `span` object would repeat the last of them on every line.
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
    }
}

/// Reports an error that ends the program: one line, with its causes, in the log format. A
/// JSON line has the keys of every other log line (`timestamp` to the microsecond, `level`,
/// `message`, `target`) and `causes` and `fatal` besides.
pub fn fatal(format: LogFormat, error: &dyn std::error::Error) -> ExitCode {
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    match format {
        LogFormat::Text if causes.is_empty() => eprintln!("error: {error}"),
        LogFormat::Text => eprintln!("error: {error}: {}", causes.join(": ")),
        LogFormat::Json => {
            let line = serde_json::json!({
                "timestamp": format!("{:.6}", jiff::Timestamp::now()),
                "level": "ERROR",
                "message": error.to_string(),
                "causes": causes,
                "fatal": true,
                "target": env!("CARGO_CRATE_NAME"),
            });
            eprintln!("{line}");
        }
    }
    ExitCode::FAILURE
}
