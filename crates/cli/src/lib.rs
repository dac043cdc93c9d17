//! The user-facing CLI: `start NAME [--wait]`, `status NAME` and `cancel NAME`, also usable as
//! the kubectl plugin `kubectl servicerefresh` when installed or linked as
//! `kubectl-servicerefresh`. This module owns the flags, the program name, the exit codes and
//! the three commands' flow; the submodules find the cluster, write requests, follow a run,
//! read the status and render text.
//!
//! Exit codes: 0 the run succeeded, 1 it failed, 2 it was cancelled or `--timeout` passed,
//! 3 a usage or API error (no such ServiceRefresh, CRD not installed, server unreachable).

mod cluster;
mod error;
mod follow;
mod progress;
mod render;
mod request;
mod view;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, ValueEnum};
use serde_json::json;

pub use cluster::ClusterArgs;
use cluster::Target;
pub use error::{CliError, EXIT_ERROR};
use follow::{Followed, Outcome};
use progress::Progress;
use request::CancelOutcome;
use view::{PlanView, RunView};

use servicerefresh_core::crd::{Phase, RUN_REQUESTED_AT_ANNOTATION};

/// The run succeeded.
pub const EXIT_SUCCEEDED: u8 = 0;
/// The run failed.
pub const EXIT_FAILED: u8 = 1;
/// The run was cancelled, or `--timeout` passed before it ended.
pub const EXIT_CANCELLED_OR_TIMED_OUT: u8 = 2;
/// Following was interrupted (Ctrl-C); the run goes on in the cluster.
pub const EXIT_INTERRUPTED: u8 = 130;

/// How the program is called: `kubectl servicerefresh` when run as the kubectl plugin.
pub const PLUGIN_NAME: &str = "kubectl servicerefresh";
/// The executable name kubectl looks for on PATH for `kubectl servicerefresh`.
pub const PLUGIN_EXECUTABLE: &str = "kubectl-servicerefresh";

/// Subcommands of the CLI proper, whose usage errors exit with [`EXIT_ERROR`].
pub const SUBCOMMANDS: [&str; 3] = ["start", "status", "cancel"];

/// Machine-readable output on standard output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// JSON; human-readable progress and summaries go to standard error.
    Json,
}

/// Flags of `start`.
#[derive(clap::Args, Clone, Debug)]
pub struct StartArgs {
    /// Name of the ServiceRefresh.
    pub name: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Follow the run this request starts until it ends, with live progress; the exit code
    /// says how it ended (0 succeeded, 1 failed, 2 cancelled or timed out).
    #[arg(short, long)]
    pub wait: bool,
    /// With --wait: stop following after this long, such as 90s, 30m or 1h30m (exit code 2).
    /// The run itself goes on.
    #[arg(long, value_parser = parse_duration, requires = "wait")]
    pub timeout: Option<Duration>,
    /// Restart the Deployments even if the operator restarted some of them less than its
    /// --min-restart-interval ago (sets the annotation gisops.io/force: "true" beside the
    /// request).
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON on standard output.
    #[arg(short, long, value_enum)]
    pub output: Option<OutputFormat>,
}

/// Flags of `status`.
#[derive(clap::Args, Clone, Debug)]
pub struct StatusArgs {
    /// Name of the ServiceRefresh.
    pub name: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Print the status as JSON on standard output.
    #[arg(short, long, value_enum)]
    pub output: Option<OutputFormat>,
}

/// Flags of `cancel`.
#[derive(clap::Args, Clone, Debug)]
pub struct CancelArgs {
    /// Name of the ServiceRefresh.
    pub name: String,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Parses a duration the way kubectl does: one or more `<number><unit>` with units `ms`,
/// `s`, `m` and `h` (`90s`, `1h30m`, `1.5m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration such as 90s, 30m or 1h30m");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(invalid)?;
        let number: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    if total <= 0.0 || !total.is_finite() {
        return Err(format!("{text:?} must be longer than zero"));
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

/// Whether `argv0` names the kubectl plugin (`kubectl-servicerefresh`, maybe with a path
/// or an `.exe`).
pub fn is_plugin_invocation(argv0: Option<&std::ffi::OsStr>) -> bool {
    argv0
        .and_then(|arg| std::path::Path::new(arg).file_stem())
        .is_some_and(|stem| stem == PLUGIN_EXECUTABLE)
}

/// Parses the command line of `P`, naming the program `kubectl servicerefresh` when it runs
/// as the kubectl plugin. A usage error exits with [`EXIT_ERROR`] for the CLI subcommands (and
/// anything in plugin form), with clap's usual code otherwise; help and version exit 0.
pub fn parse_args<P: CommandFactory + FromArgMatches>() -> (P, &'static str) {
    let args: Vec<OsString> = std::env::args_os().collect();
    let plugin = is_plugin_invocation(args.first().map(OsString::as_os_str));
    let program = if plugin { PLUGIN_NAME } else { "servicerefresh" };
    let mut command = P::command();
    if plugin {
        command = command.bin_name(PLUGIN_NAME).display_name(PLUGIN_NAME);
    }
    let parsed = command
        .try_get_matches_from_mut(&args)
        .and_then(|matches| P::from_arg_matches(&matches))
        .map_err(|err| err.format(&mut command));
    match parsed {
        Ok(parsed) => (parsed, program),
        Err(err) => {
            let code = if err.use_stderr() && (plugin || names_subcommand(&args)) {
                i32::from(EXIT_ERROR)
            } else {
                err.exit_code()
            };
            let _ = err.print();
            std::process::exit(code);
        }
    }
}

/// Whether the first word that is not an option names one of [`SUBCOMMANDS`].
fn names_subcommand(args: &[OsString]) -> bool {
    let mut words = args.iter().skip(1).filter_map(|a| a.to_str());
    while let Some(word) = words.next() {
        if word == "--log-format" {
            words.next();
        } else if !word.starts_with('-') {
            return SUBCOMMANDS.contains(&word);
        }
    }
    false
}

fn error_exit(program: &str, err: &CliError) -> ExitCode {
    eprintln!("{program}: error: {err}");
    ExitCode::from(err.exit_code())
}

/// `start NAME`: requests a run and, with `--wait`, follows it to its end.
pub async fn start(args: StartArgs, program: &str) -> ExitCode {
    match run_start(&args, program).await {
        Ok(code) => ExitCode::from(code),
        Err(err) => error_exit(program, &err),
    }
}

async fn run_start(args: &StartArgs, program: &str) -> Result<u8, CliError> {
    let target = Target::connect(&args.cluster, &args.name).await?;
    let json = args.output == Some(OutputFormat::Json);
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let (request, written) = request::request_run(&target, args.force).await?;
    let object = format!("{}/{}", target.namespace, target.name);
    progress.note(&format!(
        "requested a run of ServiceRefresh {object} ({RUN_REQUESTED_AT_ANNOTATION}={})",
        request.value
    ));
    // Only whether a run is active matters here: the services' names are not needed.
    let plan = PlanView::of(&written, None);
    if let Some(active) = plan.active_run() {
        progress.note(&format!(
            "run {} is active; this request starts one follow-up run when it ends",
            active.number
        ));
    }
    if !args.wait {
        if json {
            let result = json!({
                "namespace": target.namespace,
                "name": target.name,
                "request": request.value,
                "outcome": "Requested",
                "exitCode": EXIT_SUCCEEDED,
                "run": null,
                "status": written.status,
            });
            print_json(&result)?;
        } else {
            progress.note(&format!(
                "follow it with: {program} status {} -n {}",
                target.name, target.namespace
            ));
        }
        return Ok(EXIT_SUCCEEDED);
    }

    let followed = follow::follow(&target, &request, args.timeout, &mut progress).await?;
    progress.finish();
    let now = jiff::Timestamp::now();
    let code = exit_code(followed.outcome);
    let mut report = String::new();
    match (&followed.outcome, &followed.run) {
        (Outcome::Ended(_), Some(run)) => {
            let plan = followed.plan_is_runs.then_some(&followed.plan);
            report.push_str(&render::summary(run, plan, now));
            if plan.is_none() {
                report.push_str(&format!(
                    "(run {} has replaced it as the current run; its batches are no longer in the status)\n",
                    followed.plan.run.as_ref().map_or(0, |r| r.number)
                ));
            }
        }
        (Outcome::TimedOut, run) => report.push_str(&format!(
            "timed out after {}: {}; the run goes on in the cluster ({program} status {} -n {})\n",
            args.timeout
                .map(|t| render::duration(t.try_into().unwrap_or_default()))
                .unwrap_or_default(),
            where_it_stands(run.as_ref(), &followed.plan),
            target.name,
            target.namespace
        )),
        (_, run) => report.push_str(&format!(
            "stopped following: {}; the run goes on in the cluster\n",
            where_it_stands(run.as_ref(), &followed.plan)
        )),
    }
    if json {
        eprint!("{report}");
        print_json(&start_result(&target, &request.value, &followed, code))?;
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(report.as_bytes()).and_then(|()| out.flush()).map_err(CliError::Output)?;
    }
    Ok(code)
}

fn where_it_stands(run: Option<&RunView>, plan: &PlanView) -> String {
    match run {
        None => "the requested run has not started".to_owned(),
        Some(run) => {
            let counts = plan.counts();
            format!(
                "run {} is at batch {}/{} with {}/{} services done",
                run.number,
                plan.batch_position(),
                plan.total_batches(),
                counts.done(),
                counts.total()
            )
        }
    }
}

fn exit_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Ended(Phase::Succeeded) => EXIT_SUCCEEDED,
        Outcome::Ended(Phase::Cancelled) | Outcome::TimedOut => EXIT_CANCELLED_OR_TIMED_OUT,
        Outcome::Ended(_) => EXIT_FAILED,
        Outcome::Interrupted => EXIT_INTERRUPTED,
    }
}

fn start_result(
    target: &Target,
    request: &str,
    followed: &Followed,
    code: u8,
) -> serde_json::Value {
    let outcome = match followed.outcome {
        Outcome::Ended(phase) => format!("{phase:?}"),
        Outcome::TimedOut => "TimedOut".to_owned(),
        Outcome::Interrupted => "Interrupted".to_owned(),
    };
    let run = followed.run.as_ref().map(|run| {
        json!({
            "number": run.number,
            "id": run.id,
            "reason": run.reason,
            "request": run.request,
            "phase": run.phase,
            "message": run.message,
            "startTime": run.start.map(|t| t.to_string()),
            "endTime": run.end.map(|t| t.to_string()),
            "totals": run.totals,
        })
    });
    json!({
        "namespace": target.namespace,
        "name": target.name,
        "request": request,
        "outcome": outcome,
        "exitCode": code,
        "run": run,
        "status": followed.object.as_ref().and_then(|o| o.status.as_ref()),
    })
}

fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}

/// `status NAME`: prints the plan table.
pub async fn status(args: StatusArgs, program: &str) -> ExitCode {
    let result = async {
        let target = Target::connect(&args.cluster, &args.name).await?;
        let refresh = target.get().await?;
        if args.output == Some(OutputFormat::Json) {
            let status = serde_json::to_value(&refresh.status).unwrap_or_default();
            return print_json(&status);
        }
        let run_plan = target.plan_of(&refresh).await?;
        let plan = PlanView::of(&refresh, run_plan.as_ref());
        let table =
            render::plan_table(&target.namespace, &target.name, &plan, jiff::Timestamp::now());
        let mut out = std::io::stdout().lock();
        out.write_all(table.as_bytes()).and_then(|()| out.flush()).map_err(CliError::Output)
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => error_exit(program, &err),
    }
}

/// `cancel NAME`: asks the operator to cancel the active run.
pub async fn cancel(args: CancelArgs, program: &str) -> ExitCode {
    let result = async {
        let target = Target::connect(&args.cluster, &args.name).await?;
        let object = format!("{}/{}", target.namespace, target.name);
        let message = match request::request_cancel(&target).await? {
            CancelOutcome::Requested { run, value } => format!(
                "cancel requested for run {} of ServiceRefresh {object} ({value}): the batch in flight finishes, the rest is skipped",
                run.number
            ),
            CancelOutcome::AlreadyRequested { run } => format!(
                "cancel already requested for run {} of ServiceRefresh {object}; the batch in flight finishes",
                run.number
            ),
            CancelOutcome::NoActiveRun { plan } => {
                let last = match &plan.run {
                    Some(run) => format!(" (the last run, {}, ended {:?})", run.number, run.phase),
                    None => String::new(),
                };
                let queued = if plan.phase == Some(Phase::Pending) {
                    "; a run waiting for its turn is not cancelled"
                } else {
                    ""
                };
                format!("no run is active on ServiceRefresh {object}{last}; nothing to cancel{queued}")
            }
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{message}").and_then(|()| out.flush()).map_err(CliError::Output)
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => error_exit(program, &err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_kubectl() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "10", "s", "5x", "0s", "1h-2m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_plugin_is_recognised_by_its_executable_name() {
        let is = |s: &str| is_plugin_invocation(Some(std::ffi::OsStr::new(s)));
        assert!(is("/home/me/.local/bin/kubectl-servicerefresh"));
        assert!(is("kubectl-servicerefresh.exe"));
        assert!(!is("target/debug/servicerefresh"));
        assert!(!is_plugin_invocation(None));
    }

    #[test]
    fn usage_errors_of_the_cli_subcommands_are_recognised() {
        let args = |words: &[&str]| words.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(names_subcommand(&args(&["sr", "--log-format", "json", "start", "--bogus"])));
        assert!(names_subcommand(&args(&["sr", "status"])));
        assert!(!names_subcommand(&args(&["sr", "sim", "--namespace", "status"])));
        assert!(!names_subcommand(&args(&["sr", "--bogus"])));
    }

    #[test]
    fn exit_codes_follow_the_run() {
        assert_eq!(exit_code(Outcome::Ended(Phase::Succeeded)), 0);
        assert_eq!(exit_code(Outcome::Ended(Phase::Failed)), 1);
        assert_eq!(exit_code(Outcome::Ended(Phase::Cancelled)), 2);
        assert_eq!(exit_code(Outcome::TimedOut), 2);
    }
}
