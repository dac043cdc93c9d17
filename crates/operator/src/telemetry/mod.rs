//! What the operator tells the outside about itself: Prometheus metrics in the OpenMetrics
//! text format, readiness for `/readyz`, and the HTTP listener that serves them with
//! `/healthz`. The controller records into [`Telemetry`]; nothing here knows the engine, so
//! the metric families take plain label values.

mod http;
mod readiness;

use std::fmt::Write as _;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::warn;

pub use http::{ServeError, Server, serve};
pub use readiness::Readiness;

/// The causes behind an error, outermost first, for the `cause` field of a log line (the
/// error's own text goes in `error`).
pub fn error_causes(error: &dyn std::error::Error) -> String {
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.join(": ")
}

/// The prefix of every operator metric (process metrics keep the conventional `process_`).
pub const PREFIX: &str = "servicerefresh";

/// What became of a webhook notification.
pub const NOTIFICATION_RESULTS: [&str; 3] = ["delivered", "failed", "dropped"];

/// Label set with one `reason` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

/// Label set with one `result` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

/// Label set with one `kind` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

/// Labels of an API request: the Kubernetes verb and the HTTP status code (`error` when no
/// answer came).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
    pub code: String,
}

/// Every metric of one operator process, and the readiness its probes report.
#[derive(Debug)]
pub struct Telemetry {
    registry: Registry,
    /// Runs started, by reason (Created, TriggerChanged, ...).
    pub runs_started: Family<ReasonLabel, Counter>,
    /// Runs finished, by result (Succeeded, Failed, Cancelled).
    pub runs_finished: Family<ResultLabel, Counter>,
    /// Planned services that got their result, by result (Ready, Failed, TimedOut, Gone,
    /// Skipped).
    pub restarts: Family<ResultLabel, Counter>,
    /// From a batch's start to its last result.
    pub batch_duration: Histogram,
    /// From the watch event that showed a batch's last service ready to the next batch's
    /// restart patches sent.
    pub batch_handoff: Histogram,
    pub reconcile_duration: Histogram,
    pub reconcile_errors: Family<KindLabel, Counter>,
    pub runs_active: Gauge,
    pub runs_queued: Gauge,
    /// Waits that began, by reason (WaitingForCapacity, OutsideWindow, ...).
    pub waits_started: Family<ReasonLabel, Counter>,
    /// ServiceRefreshes waiting now, by reason.
    pub resources_waiting: Family<ReasonLabel, Gauge>,
    /// The effective batch size of each active run (capacity-aware pacing lowers it).
    pub effective_batch_size: Gauge,
    /// 1 while this replica leads.
    pub leader: Gauge,
    /// Webhook notifications by result: delivered, failed (after its retries), dropped (this
    /// replica stopped leading before it was sent).
    pub notifications: Family<ResultLabel, Counter>,
    pub api_requests: Family<RequestLabels, Counter>,
    pub readiness: Readiness,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let runs_started = Family::<ReasonLabel, Counter>::default();
        let runs_finished = Family::<ResultLabel, Counter>::default();
        let restarts = Family::<ResultLabel, Counter>::default();
        // 1 s to ~2.3 h: batches wait for rollouts, which take seconds to many minutes.
        let batch_duration = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        // 1 ms to ~16 s: the operator's own overhead between two batches.
        let batch_handoff = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        // 1 ms to ~16 s: one reconcile, its API requests included.
        let reconcile_duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        let reconcile_errors = Family::<KindLabel, Counter>::default();
        let runs_active = Gauge::default();
        let runs_queued = Gauge::default();
        let waits_started = Family::<ReasonLabel, Counter>::default();
        let resources_waiting = Family::<ReasonLabel, Gauge>::default();
        let effective_batch_size = Gauge::default();
        let leader = Gauge::default();
        let notifications = Family::<ResultLabel, Counter>::default();
        for result in NOTIFICATION_RESULTS {
            let _ = notifications.get_or_create(&ResultLabel { result: result.to_owned() });
        }
        let api_requests = Family::<RequestLabels, Counter>::default();

        // Histograms carry their unit in the name rather than in a `# UNIT` line, which some
        // OpenMetrics parsers refuse on histograms.
        let ours = registry.sub_registry_with_prefix(PREFIX);
        ours.register("runs_started", "Runs started, by reason", runs_started.clone());
        ours.register("runs_finished", "Runs finished, by result", runs_finished.clone());
        ours.register(
            "restarts",
            "Planned Deployments that got their result, by result",
            restarts.clone(),
        );
        ours.register(
            "batch_duration_seconds",
            "Time from a batch's start to its last service's result",
            batch_duration.clone(),
        );
        ours.register(
            "batch_handoff_seconds",
            "Time from the watch event showing a batch's last service ready to the next \
             batch's restart patches sent",
            batch_handoff.clone(),
        );
        ours.register(
            "reconcile_duration_seconds",
            "Time one reconcile of a ServiceRefresh took",
            reconcile_duration.clone(),
        );
        ours.register(
            "reconcile_errors",
            "Reconciles that failed, by kind",
            reconcile_errors.clone(),
        );
        ours.register("runs_active", "Runs in progress (on the leader)", runs_active.clone());
        ours.register(
            "runs_queued",
            "ServiceRefreshes waiting for a run slot (on the leader)",
            runs_queued.clone(),
        );
        ours.register(
            "waits_started",
            "Waits for something other than rollouts that began (capacity, disruption budget, \
             canary soak, window, health gate, restart interval), by reason",
            waits_started.clone(),
        );
        ours.register(
            "resources_waiting",
            "ServiceRefreshes waiting for something other than rollouts now, by reason (on the \
             leader)",
            resources_waiting.clone(),
        );
        ours.register(
            "effective_batch_size",
            "The smallest effective batch size of the active runs: spec.batchSize, or less while \
             capacity-aware pacing holds it down (0 when no run is active; on the leader)",
            effective_batch_size.clone(),
        );
        ours.register("leader", "1 while this replica is the leader", leader.clone());
        ours.register(
            "notifications",
            "Webhook notifications, by result: delivered, failed after its retries, or dropped \
             because this replica stopped leading",
            notifications.clone(),
        );
        ours.register(
            "api_requests",
            "Requests to the Kubernetes API server, by verb and HTTP status code",
            api_requests.clone(),
        );

        // kubert-prometheus-process (Linkerd's collector for prometheus-client) reads /proc:
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds,
        // process_max_fds, process_threads, process_start_time_seconds, and more (but not its
        // network counters: see LEFT_OUT).
        if let Err(error) =
            kubert_prometheus_process::register(registry.sub_registry_with_prefix("process"))
        {
            warn!(%error, "process metrics are not available");
        }

        Self {
            registry,
            runs_started,
            runs_finished,
            restarts,
            batch_duration,
            batch_handoff,
            reconcile_duration,
            reconcile_errors,
            runs_active,
            runs_queued,
            waits_started,
            resources_waiting,
            effective_batch_size,
            leader,
            notifications,
            api_requests,
            readiness: Readiness::default(),
        }
    }

    /// Every metric in the OpenMetrics text format, ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            // Writing into a String cannot fail; a metric's own encoder could, in principle.
            text.clear();
            let _ = writeln!(text, "# metrics could not be encoded: {error}\n# EOF");
        }
        without_families(&text, &LEFT_OUT)
    }

    /// Creates the series of every label value known in advance at zero, so a dashboard
    /// sees `0` rather than no series, and rate() works from the first increment.
    pub fn zero(
        &self,
        run_reasons: &[&str],
        run_results: &[&str],
        restart_results: &[&str],
        error_kinds: &[&'static str],
    ) {
        for reason in run_reasons {
            let _ = self.runs_started.get_or_create(&ReasonLabel { reason: (*reason).to_owned() });
        }
        for result in run_results {
            let _ = self.runs_finished.get_or_create(&ResultLabel { result: (*result).to_owned() });
        }
        for result in restart_results {
            let _ = self.restarts.get_or_create(&ResultLabel { result: (*result).to_owned() });
        }
        for kind in error_kinds {
            let _ = self.reconcile_errors.get_or_create(&KindLabel { kind });
        }
    }

    pub fn run_started(&self, reason: &str) {
        self.runs_started.get_or_create(&ReasonLabel { reason: reason.to_owned() }).inc();
    }

    pub fn run_finished(&self, result: &str) {
        self.runs_finished.get_or_create(&ResultLabel { result: result.to_owned() }).inc();
    }

    pub fn restart_finished(&self, result: &str) {
        self.restarts.get_or_create(&ResultLabel { result: result.to_owned() }).inc();
    }

    /// Creates the waits counter of `reason` at zero.
    pub fn wait_began_family(&self, reason: &str) {
        let _ = self.waits_started.get_or_create(&ReasonLabel { reason: reason.to_owned() });
    }

    pub fn wait_began(&self, reason: &str) {
        self.waits_started.get_or_create(&ReasonLabel { reason: reason.to_owned() }).inc();
    }

    pub fn set_waiting(&self, reason: &str, count: i64) {
        self.resources_waiting.get_or_create(&ReasonLabel { reason: reason.to_owned() }).set(count);
    }

    pub fn notification(&self, result: &str) {
        self.notifications.get_or_create(&ResultLabel { result: result.to_owned() }).inc();
    }

    pub fn reconcile_failed(&self, kind: &'static str) {
        self.reconcile_errors.get_or_create(&KindLabel { kind }).inc();
    }

    pub fn api_request(&self, verb: String, code: Option<u16>) {
        let code = code.map_or_else(|| "error".to_owned(), |code| code.to_string());
        self.api_requests.get_or_create(&RequestLabels { verb, code }).inc();
    }
}

/// Families of the process collector left out of `/metrics`. kubert-prometheus-process reads
/// them from `/proc/<pid>/net/netstat`, which counts the traffic of the whole network
/// namespace (every container of the pod, or the host's), not of this process as their HELP
/// text says; the collector has no way to word that differently or leave them out.
const LEFT_OUT: [&str; 2] = ["process_network_receive_bytes", "process_network_transmit_bytes"];

/// `text` without the metadata and samples of the `families`.
fn without_families(text: &str, families: &[&str]) -> String {
    let left_out = |line: &str| {
        let metric = ["# HELP ", "# TYPE ", "# UNIT "]
            .iter()
            .find_map(|prefix| line.strip_prefix(prefix))
            .unwrap_or(line);
        let name = metric.split([' ', '{']).next().unwrap_or_default();
        families.iter().any(|family| {
            name.strip_prefix(family)
                .is_some_and(|suffix| ["", "_total", "_created"].contains(&suffix))
        })
    };
    let mut kept = String::with_capacity(text.len());
    for line in text.lines().filter(|line| !left_out(line)) {
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_errors_start_at_zero_per_kind_and_count_each_failure() {
        let telemetry = Telemetry::new();
        telemetry.zero(&[], &[], &[], &["status_write", "not_namespaced"]);
        telemetry.reconcile_failed("status_write");
        telemetry.reconcile_failed("status_write");
        let text = telemetry.encode();
        for line in [
            "servicerefresh_reconcile_errors_total{kind=\"status_write\"} 2",
            "servicerefresh_reconcile_errors_total{kind=\"not_namespaced\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn the_exposition_names_every_family_with_the_prefix_and_ends_with_eof() {
        let telemetry = Telemetry::new();
        telemetry.run_started("Created");
        telemetry.run_finished("Succeeded");
        telemetry.restart_finished("Ready");
        telemetry.api_request("patch".into(), Some(200));
        telemetry.api_request("get".into(), None);
        telemetry.batch_duration.observe(3.0);
        telemetry.leader.set(1);
        let text = telemetry.encode();
        for line in [
            "servicerefresh_runs_started_total{reason=\"Created\"} 1",
            "servicerefresh_runs_finished_total{result=\"Succeeded\"} 1",
            "servicerefresh_restarts_total{result=\"Ready\"} 1",
            "servicerefresh_api_requests_total{verb=\"patch\",code=\"200\"} 1",
            "servicerefresh_api_requests_total{verb=\"get\",code=\"error\"} 1",
            "servicerefresh_batch_duration_seconds_count 1",
            "servicerefresh_leader 1",
            "# TYPE servicerefresh_batch_handoff_seconds histogram",
            "# TYPE servicerefresh_reconcile_duration_seconds histogram",
            "# TYPE servicerefresh_runs_active gauge",
            "# TYPE servicerefresh_runs_queued gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        #[cfg(target_os = "linux")]
        for family in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_threads",
            "process_start_time_seconds",
        ] {
            assert!(text.lines().any(|l| l.starts_with(family)), "missing {family} in\n{text}");
        }
        assert!(!text.contains("process_network"), "the namespace's traffic, not ours:\n{text}");
    }

    #[test]
    fn a_left_out_family_goes_with_its_metadata_and_nothing_else_does() {
        let text = "# HELP a_bytes A.\n# TYPE a_bytes counter\n# UNIT a_bytes bytes\n\
                    a_bytes_total 3\n# HELP a_bytes_more Other.\n# TYPE a_bytes_more gauge\n\
                    a_bytes_more{x=\"1\"} 1\n# EOF\n";
        assert_eq!(
            without_families(text, &["a_bytes"]),
            "# HELP a_bytes_more Other.\n# TYPE a_bytes_more gauge\na_bytes_more{x=\"1\"} 1\n# EOF\n"
        );
    }
}
