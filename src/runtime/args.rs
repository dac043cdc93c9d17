//! The flags of `servicerefresh run`, and the settings they make before anything connects:
//! the admin API's (checked against the watched namespace), the request timeouts, the
//! operator's own, and the leader Lease's once the cluster configuration names its default
//! namespace.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ArgAction;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use kube::Config;
use servicerefresh_admin::{self as admin, AdminSettings};
use servicerefresh_core::crd::WorkloadKind;
use servicerefresh_core::engine::OperatorScope;
use servicerefresh_operator::controller::{
    self, InitialList, LeaderElectionConfig, LeaseLocation, MonitoringDefaults, OperatorConfig,
    RefreshCache, Timeouts,
};

use super::RunError;

#[derive(clap::Args)]
pub struct RunArgs {
    /// Kubeconfig file to use instead of KUBECONFIG or the in-cluster config.
    #[arg(long, env = "SERVICEREFRESH_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (ServiceRefreshes, Deployments and ConfigMaps); default: all.
    /// The operator then needs permissions in that namespace only.
    #[arg(long)]
    watch_namespace: Option<String>,
    /// Let a ServiceRefresh select Deployments and read trigger ConfigMaps in namespaces
    /// other than its own. Off by default: whoever may create a ServiceRefresh in one
    /// namespace could otherwise restart workloads in every other.
    #[arg(long)]
    allow_cross_namespace: bool,
    /// Workload kinds to watch and restart, comma-separated: Deployment (always),
    /// StatefulSet, DaemonSet. A ServiceRefresh may list in `spec.kinds` only the kinds
    /// named here; each needs list, watch and patch rights on its resource.
    #[arg(long, value_delimiter = ',', default_value = "Deployment")]
    workload_kinds: Vec<WorkloadKind>,
    /// Watch the Secrets that `spec.secretTriggers` names, one watch per Secret (a
    /// `metadata.name` field selector), never a list of all Secrets. Needs get, list and watch
    /// on those Secrets; without this flag a resource with Secret triggers stalls
    /// (SecretsNotWatched).
    #[arg(long)]
    secret_triggers: bool,
    /// How many ServiceRefresh runs may be active at once across the cluster; others queue.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_runs: u32,
    /// No Deployment is restarted by this operator twice within this interval (e.g. 5m,
    /// 30s; 0s turns the check off). A run that would do so waits, unless it was requested
    /// with `gisops.io/force: "true"` (`servicerefresh start --force`).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    min_restart_interval: Duration,
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
    pub shutdown_timeout: Duration,
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
    /// Prometheus base URL for health gates whose spec names none (e.g.
    /// http://prometheus.monitoring:9090).
    #[arg(long, env = "SERVICEREFRESH_PROMETHEUS_URL")]
    prometheus_url: Option<String>,
    /// Alertmanager base URL for health gates whose spec names none (e.g.
    /// http://alertmanager.monitoring:9093).
    #[arg(long, env = "SERVICEREFRESH_ALERTMANAGER_URL")]
    alertmanager_url: Option<String>,
    /// How the watches list what exists at start-up and after a re-list. paged: consistent
    /// lists of 100 objects a page, read from the API server's storage (memory of one page).
    /// cached: resourceVersion=0 from the API server's watch cache, as client-go's informers
    /// list (no storage read, but the whole collection in one response: about 12 KiB per
    /// Deployment while it is parsed). streaming: watches with sendInitialEvents (WatchList;
    /// Kubernetes 1.32, or 1.34 and later, by default), neither storage reads nor a peak.
    #[arg(
        long,
        env = "SERVICEREFRESH_INITIAL_LIST",
        default_value = "paged",
        value_parser = PossibleValuesParser::new(InitialList::ALL.map(InitialList::flag_value))
            .try_map(|text| text.parse::<InitialList>()),
    )]
    initial_list: InitialList,
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

/// The admin API's flags checked against the operator's: its target must be in the cache.
#[derive(Debug, thiserror::Error)]
#[error(
    "--admin-target {target} is outside --watch-namespace {watched}: the operator only caches \
     ServiceRefreshes in that namespace"
)]
pub struct AdminOutsideWatch {
    target: String,
    watched: String,
}

impl RunArgs {
    /// The admin API's settings, when it is on.
    pub fn admin_settings(&self) -> Result<Option<AdminSettings>, RunError> {
        let settings = self.admin.settings()?;
        if let (Some(settings), Some(watched)) = (&settings, &self.watch_namespace)
            && settings.target.namespace != *watched
        {
            let target = settings.target.to_string();
            return Err(AdminOutsideWatch { target, watched: watched.clone() }.into());
        }
        Ok(settings)
    }

    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.request_timeout.min(Duration::from_secs(10)),
            request: self.request_timeout,
        }
    }

    /// Leader election's settings, checked, when it is on; the Lease's namespace defaults to
    /// what `kube_config` implies.
    pub fn leader_election(
        &self,
        kube_config: &Config,
    ) -> Result<Option<LeaderElectionConfig>, RunError> {
        if !self.leader_election {
            return Ok(None);
        }
        let namespace = self
            .lease_namespace
            .clone()
            .unwrap_or_else(|| controller::default_lease_namespace(kube_config));
        let election = LeaderElectionConfig {
            lease: LeaseLocation { namespace, name: self.lease_name.clone() },
            lease_duration: self.lease_duration,
            renew_deadline: self.lease_renew_deadline,
        };
        election.timing()?;
        Ok(Some(election))
    }

    /// The operator's settings, sharing `refresh_cache` with the admin API.
    pub fn operator(
        self,
        leader_election: Option<LeaderElectionConfig>,
        refresh_cache: RefreshCache,
    ) -> OperatorConfig {
        OperatorConfig {
            scope: OperatorScope {
                watch_namespace: self.watch_namespace,
                allow_cross_namespace: self.allow_cross_namespace,
                extra_kinds: self
                    .workload_kinds
                    .iter()
                    .copied()
                    .filter(|kind| !kind.is_deployment())
                    .collect(),
                secret_triggers: self.secret_triggers,
            },
            max_concurrent_runs: self.max_concurrent_runs as usize,
            // The flag's parser refuses negative durations and jiff holds any `Duration`
            // a flag can spell; the fallback only keeps this total.
            min_restart_interval: jiff::SignedDuration::try_from(self.min_restart_interval)
                .unwrap_or(jiff::SignedDuration::MAX),
            retry_delay: Duration::from_secs(self.retry_seconds),
            startup_timeout: self.startup_timeout,
            leader_election,
            metrics_listen: Some(self.metrics_listen),
            refresh_cache,
            monitoring: MonitoringDefaults {
                prometheus_url: self.prometheus_url,
                alertmanager_url: self.alertmanager_url,
            },
            initial_list: self.initial_list,
        }
    }
}
