//! The public configuration of a simulated cluster and what it reports:
//! [`SimConfig`] (with the kubelet's [`KubeletConfig`]), the fault knobs
//! that can also change at runtime ([`FaultConfig`], [`FaultMix`] and its
//! [`FaultRule`]s), and the counters of [`SimStats`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Configuration of a simulated cluster.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Listen address (default `127.0.0.1:0`, an ephemeral port).
    pub listen: SocketAddr,
    /// Namespace of the generated fleet (default `arcgis`).
    pub namespace: String,
    /// Number of generated Deployments.
    pub deployments: usize,
    /// Number of generated data-store StatefulSets (1-3 replicas each).
    pub stateful_sets: usize,
    /// Number of generated node-agent DaemonSets (a pod per node).
    pub daemon_sets: usize,
    /// Mean rollout duration of a pod-template change, in ms.
    pub rollout_ms: u64,
    /// Rollout durations spread uniformly over `rollout_ms` ± this many ms (capped at
    /// `rollout_ms`); 0 makes every rollout take exactly `rollout_ms`.
    pub rollout_jitter_ms: u64,
    /// How many generated workloads never become available on their next
    /// rollout, drawn uniformly among all of them (Deployments,
    /// StatefulSets and DaemonSets alike); at most their total.
    pub fail: usize,
    /// `spec.progressDeadlineSeconds` of generated Deployments (default 60,
    /// so that a failing one reports `ProgressDeadlineExceeded` within a
    /// minute of trying it out; the API server's default for Deployments
    /// clients create stays 600).
    pub progress_deadline_seconds: i32,
    /// Fault injection.
    pub faults: FaultConfig,
    /// Which errors injected faults are, and rates per request kind.
    pub fault_mix: FaultMix,
    /// Seed of every random choice.
    pub seed: u64,
    /// Watch events retained for resuming watches (older: 410 Expired).
    pub event_window: usize,
    /// Interval of BOOKMARK events on watches that allow them, in ms.
    pub bookmark_interval_ms: u64,
    /// Deployments get ReplicaSets and Pods that follow their rollouts
    /// (default true); false leaves the Deployment status alone.
    pub workload_objects: bool,
    /// A generated fleet of at most this many Deployments starts with its
    /// ReplicaSets and Pods (default 1,000); a larger one gets them per
    /// Deployment on its first rollout, which keeps start-up fast and small
    /// (see sim/README.md for the figures).
    pub fleet_objects_limit: usize,
    /// Images the kubelet runs for real, by repository (the image reference
    /// without tag or digest), each standing for a local executable: the
    /// image's entrypoint. A pod bound to a node with a container of such an
    /// image runs as local processes (see sim/README.md, "The kubelet");
    /// empty (the default): every pod's status is simulated.
    pub run_images: BTreeMap<String, PathBuf>,
    /// The kubelet's timings and files.
    pub kubelet: KubeletConfig,
    /// `Some(n)`: the cluster has `n` identical nodes (`sim-worker-1..n`)
    /// with CPU, memory and pod capacity; a scheduler places pods by their
    /// requests, pods that fit nowhere stay `Pending` (`Unschedulable`), and
    /// rollouts wait for room. `None` (the default): capacity is unlimited
    /// and pods are bound to `sim-worker-1..3` at creation, unchecked.
    /// `Some(0)` is taken as one node.
    pub nodes: Option<usize>,
    /// With `nodes`: the CPU (millicores) left over in total once the
    /// generated fleet's pods run; the nodes are sized for it (see
    /// sim/README.md). `None`: 2 CPUs per node. Ignored without `nodes`.
    pub spare_cpu_millis: Option<u64>,
    /// The CPU request (millicores) of every generated Deployment's pods; `None`: 100m to 500m, from each Deployment's id.
    pub deployment_cpu_millis: Option<u64>,
    /// The replicas of every generated Deployment; `None`: 1 to 3, drawn.
    pub deployment_replicas: Option<u64>,
    /// How long a deleted pod whose status is simulated takes to stop, in
    /// ms: with a grace period (`gracePeriodSeconds`, else the pod's
    /// `terminationGracePeriodSeconds`, 30 by default) such a pod is
    /// deleted gracefully (`deletionTimestamp` and
    /// `deletionGracePeriodSeconds` set, `Terminating`, still holding its
    /// node's room) and removed this long after, never later than its grace
    /// period. 0 (the default): it goes at once, as no kubelet confirms it.
    pub pod_stop_time_ms: u64,
}

/// The kubelet of pods that run for real.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletConfig {
    /// The first crash-loop back-off, in ms (real: 10 s); it doubles up to
    /// 30 times this (real: 5 min) and is forgotten after 60 times this
    /// without a crash (real: 10 min). Default 1 s.
    pub crash_loop_backoff_ms: u64,
    /// Lifetime of the ServiceAccount tokens mounted into pods, in seconds
    /// (the kubelet asks for 3607 s); each is replaced at 80% of its life.
    pub pod_token_expiration_seconds: i64,
    /// Where the pods' files go; default: a temporary directory of this
    /// sim, removed at shutdown.
    pub root_dir: Option<PathBuf>,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        KubeletConfig {
            crash_loop_backoff_ms: 1_000,
            pod_token_expiration_seconds: 3_607,
            root_dir: None,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            namespace: "arcgis".into(),
            deployments: 0,
            stateful_sets: 0,
            daemon_sets: 0,
            rollout_ms: 2_000,
            rollout_jitter_ms: 0,
            fail: 0,
            progress_deadline_seconds: 60,
            faults: FaultConfig::default(),
            fault_mix: FaultMix::default(),
            seed: 1,
            event_window: 10_000,
            bookmark_interval_ms: 60_000,
            workload_objects: true,
            fleet_objects_limit: 1_000,
            run_images: BTreeMap::new(),
            kubelet: KubeletConfig::default(),
            nodes: None,
            spare_cpu_millis: None,
            deployment_cpu_millis: None,
            deployment_replicas: None,
            pod_stop_time_ms: 0,
        }
    }
}

/// Fault injection knobs (changeable at runtime). Which errors an injected
/// fault is, and the rates of other request kinds, are a [`FaultMix`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FaultConfig {
    /// Fraction (0..1) of writes (create, update, patch, delete,
    /// deletecollection) answered with an injected error: 500, 429 with
    /// `Retry-After`, or a 504 timeout, as the [`FaultMix`] weighs them. Never
    /// a 409: a real server answers 409 only to a stale resourceVersion.
    #[serde(alias = "writeErrorRate")]
    pub write_error_rate: f64,
    /// Latency added to every request, in ms.
    #[serde(alias = "latencyMs")]
    pub latency_ms: u64,
    /// Close open watch streams after this long, in ms.
    #[serde(alias = "watchDropEveryMs")]
    pub watch_drop_every_ms: Option<u64>,
}

/// What injected faults are and which requests they hit (changeable at
/// runtime; `POST /sim/v1/faults` takes these fields beside the
/// [`FaultConfig`] ones).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FaultMix {
    /// Error rates (0..1) per request kind, by verb (`get`, `list`,
    /// `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`)
    /// or by `verb resource` as [`SimStats::requests`] names them (`patch
    /// deployments`, `update servicerefreshes/status`), the latter first.
    /// Writes without an entry use `write_error_rate`; reads without one
    /// never fail.
    #[serde(alias = "errorRates")]
    pub error_rates: BTreeMap<String, f64>,
    /// Relative weight of 500 InternalError (`etcdserver: request timed out`).
    #[serde(alias = "internalErrorWeight")]
    pub internal_error_weight: f64,
    /// Relative weight of 429 Too Many Requests (priority and fairness
    /// rejecting the request), sent with `Retry-After`.
    #[serde(alias = "tooManyRequestsWeight")]
    pub too_many_requests_weight: f64,
    /// Relative weight of 504 Timeout (the request outlived the server's
    /// request timeout); never for watches, which the timeout exempts.
    #[serde(alias = "timeoutWeight")]
    pub timeout_weight: f64,
    /// Relative weight of etcd refusing the object as too large (500
    /// `etcdserver: request is too large`, see [`RuleError::RequestTooLarge`]);
    /// 0 by default, so mixes written before it stay as they were.
    #[serde(alias = "requestTooLargeWeight")]
    pub request_too_large_weight: f64,
    /// `Retry-After` of an injected 429, in seconds.
    #[serde(alias = "retryAfterSeconds")]
    pub retry_after_seconds: u64,
    /// How long a timed-out request hangs before its 504, in ms (the real
    /// server waits its request timeout, 60 s by default; a client with a
    /// shorter timeout of its own gives up first).
    #[serde(alias = "timeoutMs")]
    pub timeout_ms: u64,
    /// A timed-out write is still carried out, as when the server's handler
    /// outlives the request's timeout; the client cannot tell.
    #[serde(alias = "timeoutCommits")]
    pub timeout_commits: bool,
    /// Deterministic faults, applied before the rates: each fails chosen
    /// requests of one kind, whatever the rates draw.
    pub rules: Vec<FaultRule>,
}

/// A deterministic fault: fail the next request of one kind once a request
/// of another kind has arrived since the last one of the first kind. For
/// example `fail: "patch servicerefreshes/status"`, `after: "patch
/// deployments"` loses the status write an operator sends right after a
/// batch's restart patches, every time, where a rate would hit it by luck.
/// The sim keeps the rule's state (`armed`, `fired`) in place, so `GET
/// /sim/v1/faults` and [`crate::SimHandle::fault_mix`] show how often it fired.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FaultRule {
    /// The requests it fails, by `verb resource` as [`SimStats::requests`]
    /// names them (`patch servicerefreshes/status`).
    pub fail: String,
    /// The requests that arm it (`patch deployments`): a `fail` request is
    /// failed when at least one of these arrived since the previous `fail`
    /// request (answered or failed). Empty: every `fail` request is.
    pub after: String,
    /// How many more requests it may fail; `None`: any number.
    pub times: Option<u64>,
    /// What a failed request is answered.
    pub error: RuleError,
    /// With [`RuleError::Timeout`]: how long the request hangs before its
    /// 504, in ms (a sim shutting down ends the wait). Long enough, it keeps
    /// the request in flight while a test kills its client.
    #[serde(alias = "hangMs")]
    pub hang_ms: u64,
    /// With [`RuleError::Timeout`]: the write is carried out, only its answer
    /// is lost.
    pub commits: bool,
    /// State: an `after` request arrived since the last `fail` request.
    pub armed: bool,
    /// State: how many requests it failed so far.
    pub fired: u64,
}

impl Default for FaultRule {
    fn default() -> Self {
        FaultRule {
            fail: String::new(),
            after: String::new(),
            times: Some(1),
            error: RuleError::InternalError,
            hang_ms: 0,
            commits: false,
            armed: false,
            fired: 0,
        }
    }
}

/// The answer of a request a [`FaultRule`] fails.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum RuleError {
    /// 500 InternalError (`etcdserver: request timed out`); nothing is
    /// carried out.
    InternalError,
    /// 429 Too Many Requests with `Retry-After` (the mix's
    /// `retry_after_seconds`); nothing is carried out.
    TooManyRequests,
    /// 504 Timeout, after the rule's `hang_ms`, carried out or not as its
    /// `commits` says.
    Timeout,
    /// 500 with the message `etcdserver: request is too large`, as the API
    /// server answers when etcd refuses an object over its request limit:
    /// the storage error reaches the client unconverted, so the `Status`
    /// has no `reason` and no `details` (what the sim's own size check
    /// answers too); nothing is carried out.
    RequestTooLarge,
}

impl Default for FaultMix {
    fn default() -> Self {
        FaultMix {
            error_rates: BTreeMap::new(),
            internal_error_weight: 1.0,
            too_many_requests_weight: 1.0,
            timeout_weight: 1.0,
            request_too_large_weight: 0.0,
            retry_after_seconds: 1,
            timeout_ms: 0,
            timeout_commits: false,
            rules: Vec::new(),
        }
    }
}

/// How late scheduled status changes were written: the Deployment
/// controller wakes when a rollout's next status change is due, and this
/// records by how much it missed (timer precision and load).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct DelayStats {
    /// Status changes written on schedule.
    pub count: u64,
    /// Sum of the delays in microseconds (the mean is `total_us / count`).
    pub total_us: u64,
    /// The largest delay in microseconds.
    pub max_us: u64,
    /// How many delays fell in each bucket, by the bucket's inclusive upper
    /// bound in microseconds (`u64::MAX` for the rest).
    pub buckets: BTreeMap<u64, u64>,
}

impl DelayStats {
    /// The bucket bounds, in microseconds.
    pub const BOUNDS_US: [u64; 9] =
        [250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, u64::MAX];

    /// Records one delay.
    pub fn record(&mut self, delay_us: u64) {
        self.count += 1;
        self.total_us += delay_us;
        self.max_us = self.max_us.max(delay_us);
        let bound =
            Self::BOUNDS_US.iter().copied().find(|bound| delay_us <= *bound).unwrap_or(u64::MAX);
        *self.buckets.entry(bound).or_insert(0) += 1;
    }
}

/// Counters of a simulated cluster (also at `GET /sim/v1/stats`).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(default)]
pub struct SimStats {
    /// Pod-template changes per Deployment (`ns/name`).
    pub template_changes: BTreeMap<String, u64>,
    /// Highest number of concurrent rollouts seen.
    pub peak_rolling: u64,
    /// Rollouts in progress now.
    pub rolling_now: u64,
    /// Requests per `verb resource` (e.g. `patch deployments`).
    pub requests: BTreeMap<String, u64>,
    /// How late the Deployment controller wrote the status changes of
    /// rollouts after they were due.
    pub status_delays: DelayStats,
}
