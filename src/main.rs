//! The `servicerefresh` command line: one binary whose subcommands run the operator, print
//! the CRD, start, follow and cancel runs (also as the kubectl plugin `kubectl
//! servicerefresh`), and (with the default `sim` feature) serve the simulated cluster and run
//! the self-contained demo.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use futures::FutureExt;
use servicerefresh_admin::{self as admin, AdminServer};
use servicerefresh_cli as cli;
use servicerefresh_core::crd::crd_yaml;
use servicerefresh_core::engine::OperatorScope;
#[cfg(feature = "dev")]
use servicerefresh_dev::{bench, sim_commands};
use servicerefresh_operator::controller::{
    self, Clients, LeaderElectionConfig, LeaseLocation, OperatorConfig, RefreshCache, Timeouts,
};
use servicerefresh_operator::shutdown::shutdown_signal;
use tracing_subscriber::EnvFilter;

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

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator against the cluster of the in-cluster config or KUBECONFIG.
    Run(Box<RunArgs>),
    /// Print the ServiceRefresh CustomResourceDefinition as YAML.
    Crd,
    #[cfg(feature = "dev")]
    /// Serve a simulated Kubernetes API on loopback and write a kubeconfig for it.
    Sim(sim_commands::SimArgs),
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
}

#[derive(clap::Args)]
struct RunArgs {
    /// Kubeconfig file to use instead of KUBECONFIG or the in-cluster config.
    #[arg(long, env = "SERVICEREFRESH_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (ServiceRefreshes, Deployments and ConfigMaps); default: all.
    /// The operator then needs permissions in that namespace only.
    #[arg(long)]
    watch_namespace: Option<String>,
    /// Let a ServiceRefresh select Deployments and read trigger ConfigMaps in namespaces
    /// other than its own. Off by default: whoever may create a ServiceRefresh in one
    /// namespace could otherwise restart workloads in every other.
    #[arg(long)]
    allow_cross_namespace: bool,
    /// How many ServiceRefresh runs may be active at once across the cluster; others queue.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_runs: u32,
    /// Seconds to wait before retrying a reconcile that hit an API error.
    #[arg(long, default_value_t = 2)]
    retry_seconds: u64,
    /// How long start-up retries an unreachable API server before giving up (e.g. 60s, 2m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    startup_timeout: Duration,
    /// Timeout of each API request (watches excepted).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// After SIGTERM or SIGINT, how long reconciles in progress may take to finish before
    /// the operator exits anyway. A second signal exits at once.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    shutdown_timeout: Duration,
    /// Elect a leader through a coordination.k8s.io Lease, so that several replicas can run:
    /// only the leader acts, the others keep warm caches and take over when it goes.
    /// `--leader-election=false` runs a single replica without a Lease.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    leader_election: bool,
    /// Name of the leader Lease.
    #[arg(long, default_value = "servicerefresh")]
    lease_name: String,
    /// Namespace of the leader Lease; default: POD_NAMESPACE, else the in-cluster service
    /// account's namespace, else the kubeconfig context's namespace.
    #[arg(long)]
    lease_namespace: Option<String>,
    /// How long a Lease not renewed stays valid for the standby replicas (whole seconds).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    lease_duration: Duration,
    /// How long after its last renewal the leader keeps writing; the rest of the lease
    /// duration is a safety margin against clock drift and slow requests.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    lease_renew_deadline: Duration,
    /// Address of the /metrics (OpenMetrics), /healthz and /readyz listener; port 0 picks a
    /// free port (logged).
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_listen: SocketAddr,
    #[command(flatten)]
    admin: admin::AdminArgs,
}

/// A duration such as `30s`, `2m` or `1h30m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration: jiff::SignedDuration = text
        .parse()
        .map_err(|error| format!("{text:?} is not a duration such as 30s, 2m or 1h30m: {error}"))?;
    Duration::try_from(duration).map_err(|_| format!("{text:?} must not be negative"))
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
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Reports an error that ends the program: one line, with its causes, in the log format.
fn fatal(format: LogFormat, error: &dyn std::error::Error) -> ExitCode {
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
                "timestamp": jiff::Timestamp::now().to_string(),
                "level": "ERROR",
                "message": error.to_string(),
                "causes": causes,
                "fatal": true,
            });
            eprintln!("{line}");
        }
    }
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let (cli, program) = cli::parse_args::<Cli>();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fatal(cli.log_format, &error),
    };
    match cli.command {
        Command::Crd => match crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(error) => fatal(cli.log_format, &error),
        },
        Command::Run(args) => {
            // The operator logs refused watches itself, with the server's message; kube's
            // watcher would repeat each as a debug dump of the error at warn level.
            init_logging(cli.log_format, "info,kube_runtime::watcher=error");
            runtime.block_on(run_operator(*args, cli.log_format))
        }
        #[cfg(feature = "dev")]
        Command::Sim(args) => {
            init_logging(cli.log_format, "warn");
            runtime.block_on(sim_commands::run_sim(args))
        }
        #[cfg(feature = "dev")]
        Command::Demo(args) => {
            init_logging(cli.log_format, "error");
            runtime.block_on(sim_commands::run_demo(args))
        }
        #[cfg(feature = "dev")]
        Command::Bench(args) => {
            init_logging(cli.log_format, "error");
            runtime.block_on(bench::run(args))
        }
        Command::Start(args) => runtime.block_on(cli::start(args, program)),
        Command::Status(args) => runtime.block_on(cli::status(args, program)),
        Command::Cancel(args) => runtime.block_on(cli::cancel(args, program)),
    }
}

/// API requests the admin job API sends at once (reviews and job writes); more wait.
const ADMIN_API_CONCURRENCY: usize = 4;

/// The admin API's flags checked against the operator's: its target must be in the cache.
#[derive(Debug, thiserror::Error)]
#[error(
    "--admin-target {target} is outside --watch-namespace {watched}: the operator only caches \
     ServiceRefreshes in that namespace"
)]
struct AdminOutsideWatch {
    target: String,
    watched: String,
}

async fn run_operator(args: RunArgs, log_format: LogFormat) -> ExitCode {
    let admin_settings = match args.admin.settings() {
        Ok(settings) => settings,
        Err(error) => return fatal(log_format, &error),
    };
    if let (Some(settings), Some(watched)) = (&admin_settings, &args.watch_namespace)
        && settings.target.namespace != *watched
    {
        let error =
            AdminOutsideWatch { target: settings.target.to_string(), watched: watched.clone() };
        return fatal(log_format, &error);
    }
    let timeouts = Timeouts {
        connect: args.request_timeout.min(Duration::from_secs(10)),
        request: args.request_timeout,
    };
    let kube_config = match controller::load_config(args.kubeconfig.as_deref()).await {
        Ok(config) => config,
        Err(error) => return fatal(log_format, &error),
    };
    let identity = controller::replica_identity();
    let leader_election = args.leader_election.then(|| LeaderElectionConfig {
        lease: LeaseLocation {
            namespace: args
                .lease_namespace
                .clone()
                .unwrap_or_else(|| controller::default_lease_namespace(&kube_config)),
            name: args.lease_name.clone(),
        },
        lease_duration: args.lease_duration,
        renew_deadline: args.lease_renew_deadline,
    });
    if let Some(Err(error)) = leader_election.as_ref().map(LeaderElectionConfig::timing) {
        return fatal(log_format, &error);
    }
    let clients = match Clients::from_config(
        kube_config.clone(),
        timeouts,
        &identity,
        leader_election.as_ref(),
    ) {
        Ok(clients) => clients,
        Err(error) => return fatal(log_format, &error),
    };
    let refresh_cache = RefreshCache::default();
    let admin_server = match admin_settings {
        Some(settings) => {
            // The API's reviews and writes are user requests: their own client, unfenced
            // (standbys serve too) and with its own concurrency limit.
            let users = match clients.for_users(kube_config, timeouts, ADMIN_API_CONCURRENCY) {
                Ok(client) => client,
                Err(error) => return fatal(log_format, &error),
            };
            let authority = admin::auth::kube_authority(users.clone());
            match AdminServer::bind(settings, users, refresh_cache.clone(), authority).await {
                Ok(server) => Some(server),
                Err(error) => return fatal(log_format, &error),
            }
        }
        None => None,
    };
    let config = OperatorConfig {
        scope: OperatorScope {
            watch_namespace: args.watch_namespace,
            allow_cross_namespace: args.allow_cross_namespace,
        },
        max_concurrent_runs: args.max_concurrent_runs as usize,
        retry_delay: Duration::from_secs(args.retry_seconds),
        startup_timeout: args.startup_timeout,
        leader_election,
        metrics_listen: Some(args.metrics_listen),
        refresh_cache,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = stopped.map(|_| ()).shared();
    // The admin API serves on every replica (its writes are user requests) until shutdown.
    let admin_task = admin_server.map(|server| tokio::spawn(server.serve(stopped.clone())));
    let shutdown_timeout = args.shutdown_timeout;
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(deadline = ?shutdown_timeout, "shutting down: finishing reconciles in progress");
        let _ = stop.send(());
        tokio::select! {
            _ = shutdown_signal() => {
                tracing::warn!("second signal: exiting at once");
                std::process::exit(130);
            }
            _ = tokio::time::sleep(shutdown_timeout) => {
                tracing::warn!(deadline = ?shutdown_timeout, "shutdown deadline passed: exiting with reconciles unfinished");
                std::process::exit(1);
            }
        }
    });
    let operator = controller::run(clients, config, stopped);
    let outcome = operator.await;
    if let Some(mut task) = admin_task {
        // The operator ended: the admin API, which reads its cache, ends with it. After a
        // signal it is finishing its requests; after an operator error it is stopped.
        if outcome.is_err() {
            task.abort();
        }
        match tokio::time::timeout(Duration::from_secs(5), &mut task).await {
            Ok(Ok(Err(error))) => return fatal(log_format, &error),
            Ok(_) => {}
            Err(_) => task.abort(),
        }
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fatal(log_format, &error),
    }
}
