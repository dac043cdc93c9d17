//! `servicerefresh run`: the composition root that wires the operator and the admin API into
//! one process, as a list of steps: flags to settings, the cluster configuration and clients,
//! the admin API's listener, the signal handling, the operator (its listener, caches,
//! controller and leader election, in [`servicerefresh_operator::controller::run`]), and the
//! admin API's end with it.

mod args;
mod shutdown;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use servicerefresh_admin::{self as admin, AdminError, AdminServer, AdminSettings};
use servicerefresh_operator::controller::{
    self, Clients, LeaderElectionError, RefreshCache, StartupError,
};
use servicerefresh_operator::telemetry::ServeError;
use tokio::task::JoinHandle;

use crate::logging::{LogFormat, fatal};
use args::AdminOutsideWatch;
pub use args::RunArgs;

/// Why `servicerefresh run` ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    AdminFlags(#[from] admin::config::ConfigError),
    #[error(transparent)]
    AdminOutsideWatch(#[from] AdminOutsideWatch),
    #[error(transparent)]
    LeaderElection(#[from] LeaderElectionError),
    #[error(transparent)]
    Startup(StartupError),
    #[error(transparent)]
    Admin(AdminError),
    /// A listener's address is taken or not ours to use: the flag that sets it is the fix.
    #[error("cannot listen on {address} for {serving} ({cause}); choose another with {flag}")]
    Listen {
        address: SocketAddr,
        serving: &'static str,
        cause: std::io::ErrorKind,
        flag: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// API requests the admin job API sends at once (reviews and job writes); more wait.
const ADMIN_API_CONCURRENCY: usize = 4;

/// Runs the operator (and the admin API, when asked) until a signal or a fatal error.
pub async fn run(args: RunArgs, log_format: LogFormat) -> ExitCode {
    match run_operator(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fatal(log_format, &error),
    }
}

async fn run_operator(args: RunArgs) -> Result<(), RunError> {
    let admin_settings = args.admin_settings()?;
    let kube_config = controller::load_config(args.kubeconfig.as_deref()).await?;
    let identity = controller::replica_identity();
    let leader_election = args.leader_election(&kube_config)?;
    let clients = Clients::from_config(
        kube_config.clone(),
        args.timeouts(),
        &identity,
        leader_election.as_ref(),
    )?;
    let refresh_cache = RefreshCache::default();
    let admin_server = match admin_settings {
        Some(settings) => {
            // The API's reviews and writes are user requests: their own client, unfenced
            // (standbys serve too) and with its own concurrency limit.
            let users = clients.for_users(kube_config, args.timeouts(), ADMIN_API_CONCURRENCY)?;
            Some(bind_admin(settings, users, &refresh_cache).await?)
        }
        None => None,
    };
    let stopped = shutdown::on_signal(args.shutdown_timeout);
    // The admin API serves on every replica (its writes are user requests) until shutdown.
    let admin_task = admin_server.map(|server| tokio::spawn(server.serve(stopped.clone())));
    let config = args.operator(leader_election, refresh_cache);
    let outcome = controller::run(clients, config, stopped).await;
    if let Some(task) = admin_task {
        stop_admin(task, outcome.is_err()).await?;
    }
    Ok(outcome?)
}

/// The admin API's listener, bound before the operator starts so that a taken port or a bad
/// certificate fails start-up at once.
async fn bind_admin(
    settings: AdminSettings,
    users: kube::Client,
    refresh_cache: &RefreshCache,
) -> Result<AdminServer, RunError> {
    let authority = admin::auth::kube_authority(users.clone());
    let server = AdminServer::bind(settings, users, refresh_cache.clone(), authority).await?;
    Ok(server)
}

/// The operator ended: the admin API, which reads its cache, ends with it. After a signal it
/// is finishing its requests; after an operator error it is stopped.
async fn stop_admin(
    mut task: JoinHandle<Result<(), AdminError>>,
    operator_failed: bool,
) -> Result<(), RunError> {
    if operator_failed {
        task.abort();
    }
    match tokio::time::timeout(Duration::from_secs(5), &mut task).await {
        Ok(Ok(Err(error))) => Err(error.into()),
        Ok(_) => Ok(()),
        Err(_) => {
            task.abort();
            Ok(())
        }
    }
}

/// Whether a failed bind is one that another address would fix.
fn address_unusable(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{AddrInUse, AddrNotAvailable, PermissionDenied};
    matches!(error.kind(), AddrInUse | AddrNotAvailable | PermissionDenied)
}

impl From<StartupError> for RunError {
    fn from(error: StartupError) -> Self {
        match error {
            StartupError::Metrics(ServeError::Bind { address, source })
                if address_unusable(&source) =>
            {
                RunError::Listen {
                    address,
                    serving: "/metrics, /healthz and /readyz",
                    cause: source.kind(),
                    flag: "--metrics-listen",
                    source,
                }
            }
            error => RunError::Startup(error),
        }
    }
}

impl From<AdminError> for RunError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Bind { addr, source } if address_unusable(&source) => RunError::Listen {
                address: addr,
                serving: "the admin API",
                cause: source.kind(),
                flag: "--admin-listen",
                source,
            },
            error => RunError::Admin(error),
        }
    }
}
