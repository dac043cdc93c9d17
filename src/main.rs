//! The `servicerefresh` command line: one binary whose subcommands run the operator, print
//! the CRD, start, follow and cancel runs (also as the kubectl plugin `kubectl
//! servicerefresh`), and (with the default `sim` feature) serve the simulated cluster and run
//! the self-contained demo.

mod logging;
mod runtime;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use servicerefresh_cli as cli;
use servicerefresh_core::crd::crd_yaml;
#[cfg(feature = "dev")]
use servicerefresh_dev::{bench, sim_commands};

use logging::{LogFormat, fatal, init_logging};
use runtime::RunArgs;

/// Restarts fleets of Kubernetes Deployments in ready-gated batches, driven by the
/// ServiceRefresh custom resource (gisops.io/v1alpha1).
#[derive(Parser)]
#[command(name = "servicerefresh", version, about, long_about = None)]
struct Cli {
    /// Log format for messages on standard error, fatal errors included.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator against the cluster of the in-cluster config or KUBECONFIG.
    Run(Box<RunArgs>),
    /// Print the ServiceRefresh CustomResourceDefinition as YAML.
    Crd,
    #[cfg(feature = "dev")]
    /// Serve a simulated Kubernetes API on loopback and write a kubeconfig for it.
    Sim(Box<sim_commands::SimArgs>),
    #[cfg(feature = "dev")]
    /// Run a simulated cluster, the operator and a ServiceRefresh in one process, showing the
    /// batches as they progress. Exits 0 when the run succeeds and 1 when it fails.
    Demo(sim_commands::DemoArgs),
    #[cfg(feature = "dev")]
    /// Measure the operator on simulated clusters (run time against the ideal, batch handoff,
    /// requests, memory, CPU, status size) and print each figure beside its target.
    Bench(bench::BenchArgs),
    /// Request a run of a ServiceRefresh; with --wait, follow it to its end. Exit code: 0
    /// succeeded, 1 failed, 2 cancelled or timed out, 3 usage or API error.
    Start(cli::StartArgs),
    /// Print the plan of a ServiceRefresh's current run: batches, services and results.
    Status(cli::StatusArgs),
    /// Cancel a ServiceRefresh's active run: the batch in flight finishes, the rest is skipped.
    Cancel(cli::CancelArgs),
    /// Print a shell completion script: `source <(servicerefresh completions bash)`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `servicerefresh man > servicerefresh.1; man ./servicerefresh.1`.
    Man,
}

fn main() -> ExitCode {
    let (cli, program) = cli::parse_args::<Cli>();
    let executor = match tokio::runtime::Runtime::new() {
        Ok(executor) => executor,
        Err(error) => return fatal(cli.log_format, &error),
    };
    match cli.command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "servicerefresh", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            match clap_mangen::Man::new(command).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fatal(cli.log_format, &error),
            }
        }
        Command::Crd => match crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(error) => fatal(cli.log_format, &error),
        },
        Command::Run(args) => {
            // The operator logs each failure where it handles it, with the server's message:
            // refused watches, the start-up retries, failed reconciles and Lease requests.
            // kube would repeat them: its watcher as a debug dump of the error at warn level,
            // its client as an ERROR line per failed request, a retried one included.
            init_logging(
                cli.log_format,
                "info,kube_runtime::watcher=error,kube_client::client::builder=off",
            );
            executor.block_on(runtime::run(*args, cli.log_format))
        }
        #[cfg(feature = "dev")]
        Command::Sim(args) => {
            init_logging(cli.log_format, "warn");
            executor.block_on(sim_commands::run_sim(*args))
        }
        #[cfg(feature = "dev")]
        Command::Demo(args) => {
            init_logging(cli.log_format, "error");
            executor.block_on(sim_commands::run_demo(args))
        }
        #[cfg(feature = "dev")]
        Command::Bench(args) => {
            init_logging(cli.log_format, "error");
            executor.block_on(bench::run(args))
        }
        Command::Start(args) => executor.block_on(cli::start(args, program)),
        Command::Status(args) => executor.block_on(cli::status(args, program)),
        Command::Cancel(args) => executor.block_on(cli::cancel(args, program)),
    }
}
