//! The `servicerefresh` command line: one binary whose subcommands run the operator, print
//! the CRD, serve the simulated cluster, run the self-contained demo, and start, follow and
//! cancel runs (also as the kubectl plugin `kubectl servicerefresh`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use servicerefresh::cli;
use servicerefresh::controller::{self, OperatorConfig};
use servicerefresh::crd::crd_yaml;
use servicerefresh::demo::{self, DemoOptions};
use servicerefresh_sim::{FaultConfig, SimConfig};
use tracing_subscriber::EnvFilter;

/// Restarts fleets of Kubernetes Deployments in ready-gated batches, driven by the
/// ServiceRefresh custom resource (gisops.io/v1alpha1).
#[derive(Parser)]
#[command(name = "servicerefresh", version, about, long_about = None)]
struct Cli {
    /// Log format for messages on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator against the cluster of the in-cluster config or KUBECONFIG.
    Run(RunArgs),
    /// Print the ServiceRefresh CustomResourceDefinition as YAML.
    Crd,
    /// Serve a simulated Kubernetes API on loopback and write a kubeconfig for it.
    Sim(SimArgs),
    /// Run a simulated cluster, the operator and a ServiceRefresh in one process, showing the
    /// batches as they progress. Exits 0 when the run succeeds and 1 when it fails.
    Demo(DemoArgs),
    /// Request a run of a ServiceRefresh; with --wait, follow it to its end. Exit code: 0
    /// succeeded, 1 failed, 2 cancelled or timed out, 3 usage or API error.
    Start(cli::StartArgs),
    /// Print the plan of a ServiceRefresh's current run: batches, services and results.
    Status(cli::StatusArgs),
    /// Cancel a ServiceRefresh's active run: the batch in flight finishes, the rest is skipped.
    Cancel(cli::CancelArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Kubeconfig file to use instead of KUBECONFIG or the in-cluster config.
    #[arg(long, env = "SERVICEREFRESH_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (ServiceRefreshes, Deployments and ConfigMaps); default: all.
    #[arg(long)]
    watch_namespace: Option<String>,
    /// How many ServiceRefresh runs may be active at once across the cluster; others queue.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_runs: u32,
    /// Seconds to wait before retrying a reconcile that hit an API error.
    #[arg(long, default_value_t = 2)]
    retry_seconds: u64,
}

#[derive(clap::Args)]
struct SimArgs {
    /// Address to listen on; port 0 picks a free port. The address is printed.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to write the kubeconfig for the simulated cluster.
    #[arg(long, default_value = "sim.kubeconfig")]
    kubeconfig: PathBuf,
    /// Namespace the generated Deployments live in.
    #[arg(long, default_value = "arcgis")]
    namespace: String,
    /// Number of GIS-like Deployments to generate.
    #[arg(long, default_value_t = 40)]
    deployments: usize,
    /// Mean simulated rollout time of a Deployment, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    rollout_ms: u64,
    /// Rollouts take --rollout-ms ± this many milliseconds, uniformly; 0 makes every rollout
    /// take exactly --rollout-ms.
    #[arg(long, default_value_t = 500)]
    rollout_jitter_ms: u64,
    /// Number of generated Deployments whose new pods never become available.
    #[arg(long, default_value_t = 0)]
    fail: usize,
    /// progressDeadlineSeconds of the generated Deployments.
    #[arg(long, default_value_t = 600)]
    progress_deadline_seconds: i32,
    /// Fraction (0 to 1) of write requests answered with 500 or 409.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    write_error_rate: f64,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Close every open watch after this many milliseconds.
    #[arg(long)]
    watch_drop_every_ms: Option<u64>,
    /// Seed for the generated fleet and the fault injection.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Number of simulated Deployments.
    #[arg(long, default_value_t = 40)]
    deployments: usize,
    /// Number of Deployments built to fail (ProgressDeadlineExceeded).
    #[arg(long, default_value_t = 2)]
    fail: usize,
    /// Deployments restarted per batch (1 to 100).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    batch_size: u32,
}

fn parse_fraction(value: &str) -> Result<f64, String> {
    let fraction: f64 = value.parse().map_err(|_| format!("{value:?} is not a number"))?;
    if (0.0..=1.0).contains(&fraction) {
        Ok(fraction)
    } else {
        Err(format!("{value} is not between 0 and 1"))
    }
}

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let (cli, program) = cli::parse_args::<Cli>();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Crd => match crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: cannot render the CRD: {err}");
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => {
            init_logging(cli.log_format, "info");
            runtime.block_on(run_operator(args))
        }
        Command::Sim(args) => {
            init_logging(cli.log_format, "warn");
            runtime.block_on(run_sim(args))
        }
        Command::Demo(args) => {
            if args.fail > args.deployments {
                eprintln!(
                    "error: --fail {} asks for more failing Deployments than --deployments {}",
                    args.fail, args.deployments
                );
                return ExitCode::from(2);
            }
            init_logging(cli.log_format, "error");
            let options = DemoOptions {
                deployments: args.deployments,
                fail: args.fail,
                batch_size: args.batch_size,
            };
            runtime.block_on(demo::run(options, &mut std::io::stdout()))
        }
        Command::Start(args) => runtime.block_on(cli::start(args, program)),
        Command::Status(args) => runtime.block_on(cli::status(args, program)),
        Command::Cancel(args) => runtime.block_on(cli::cancel(args, program)),
    }
}

async fn run_operator(args: RunArgs) -> ExitCode {
    let client = match controller::client(args.kubeconfig.as_deref()).await {
        Ok(client) => client,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let config = OperatorConfig {
        namespace: args.watch_namespace,
        max_concurrent_runs: args.max_concurrent_runs as usize,
        retry_delay: Duration::from_secs(args.retry_seconds),
    };
    match controller::run(client, config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run_sim(args: SimArgs) -> ExitCode {
    if args.fail > args.deployments {
        eprintln!(
            "error: --fail {} asks for more failing Deployments than --deployments {}",
            args.fail, args.deployments
        );
        return ExitCode::from(2);
    }
    let config = SimConfig {
        listen: args.listen,
        namespace: args.namespace.clone(),
        deployments: args.deployments,
        rollout_ms: args.rollout_ms,
        rollout_jitter_ms: args.rollout_jitter_ms,
        fail: args.fail,
        progress_deadline_seconds: args.progress_deadline_seconds,
        faults: FaultConfig {
            write_error_rate: args.write_error_rate,
            latency_ms: args.latency_ms,
            watch_drop_every_ms: args.watch_drop_every_ms,
        },
        seed: args.seed,
        ..SimConfig::default()
    };
    let sim = match servicerefresh_sim::start(config).await {
        Ok(sim) => sim,
        Err(err) => {
            eprintln!("error: cannot start the simulated cluster: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = sim.write_kubeconfig(&args.kubeconfig) {
        eprintln!("error: cannot write {}: {err}", args.kubeconfig.display());
        return ExitCode::FAILURE;
    }
    println!("simulated cluster listening on {}", sim.base_url());
    println!("kubeconfig written to {}", args.kubeconfig.display());
    println!(
        "try: KUBECONFIG={} kubectl get deployments -n {}",
        args.kubeconfig.display(),
        args.namespace
    );
    shutdown_signal().await;
    sim.shutdown().await;
    ExitCode::SUCCESS
}

/// Resolves on SIGINT or SIGTERM, so the operator drains its reconciles on `kubectl delete pod`.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
