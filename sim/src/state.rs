//! The shared state of one running simulated cluster, as the REST handlers
//! and the background controllers see it: the store, the configuration it
//! started with, the counters, the current faults, the shared random
//! generator, the shutdown signal, and the kubelet's container runtime and
//! container logs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use crate::auth::TokenAuthority;
use crate::pki::ClusterPki;
use crate::placement::NodeCache;
use crate::pod_logs::PodLogs;
use crate::runtime::ContainerRuntime;
use crate::store::Store;
use crate::util::{Rng, SharedRng};
use crate::{FaultConfig, FaultMix, FaultRule, RuleError, SimConfig, SimStats};

/// Shared state of one simulated cluster.
#[derive(Debug)]
pub struct SimState {
    /// Objects, events and the registry of served resources.
    pub store: Store,
    /// The configuration the sim was started with.
    pub config: SimConfig,
    /// The address the server listens on (discovery reports it).
    pub addr: SocketAddr,
    /// Every random choice after start-up: uids, generated names, watch
    /// timeouts, rollout jitter and injected faults.
    pub rng: SharedRng,
    /// Flips to true on shutdown; watches and controllers end on it.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The admin token, and the key that signs ServiceAccount tokens.
    pub tokens: TokenAuthority,
    /// The cluster CA and the API server's certificate.
    pub pki: ClusterPki,
    /// What the kubelet's containers wrote.
    pub logs: PodLogs,
    /// The processes the kubelet runs.
    pub runtime: ContainerRuntime,
    /// Where the kubelet keeps the pods' files.
    pub kubelet_root: PathBuf,
    stats: Mutex<SimStats>,
    faults: Mutex<(FaultConfig, FaultMix)>,
    /// The scheduler's view of the nodes; always locked after the store.
    node_cache: Mutex<NodeCache>,
    /// `/sim/v1/metrics`: each Deployment's error counter and when it was last advanced.
    app_errors: Mutex<AppErrorCounters>,
}

/// Error counters of the fleet's applications, by (namespace, name).
pub type AppErrorCounters = std::collections::HashMap<(String, String), (f64, std::time::Instant)>;

/// An injected fault, as the handlers answer it.
#[derive(Debug, Clone, PartialEq)]
pub enum InjectedFault {
    /// 500 InternalError from storage.
    InternalError,
    /// 429 with `Retry-After`.
    TooManyRequests { retry_after_seconds: u64 },
    /// 504 Timeout after `after_ms`; `commits`: the write still happens.
    Timeout { after_ms: u64, commits: bool },
    /// 500 `etcdserver: request is too large`, etcd refusing the object.
    RequestTooLarge,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Guarded data is plain counters/config; a panic cannot leave it torn.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SimState {
    /// The state of a cluster started with `config`, listening on `addr`,
    /// with the certificates of `pki` and the container runtime `runtime`.
    pub fn new(
        config: SimConfig,
        addr: SocketAddr,
        shutdown: tokio::sync::watch::Receiver<bool>,
        pki: ClusterPki,
        runtime: ContainerRuntime,
    ) -> Self {
        let store = Store::new(config.event_window);
        {
            let mut inner = store.lock();
            inner.kubelet_repositories = config.run_images.keys().cloned().collect();
            inner.simulated_pods_stop = config.pod_stop_time_ms > 0;
        }
        let kubelet_root = config.kubelet.root_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!(
                "servicerefresh-sim-kubelet-{}-{}",
                std::process::id(),
                addr.port()
            ))
        });
        SimState {
            store,
            stats: Mutex::new(SimStats::default()),
            node_cache: Mutex::new(NodeCache::default()),
            app_errors: Mutex::default(),
            faults: Mutex::new((config.faults.clone(), config.fault_mix.clone())),
            // Apart from the fleet's generator, so that requests do not
            // change which fleet a seed produces.
            rng: SharedRng::new(config.seed.wrapping_add(0x5eed)),
            // A generator of its own, so that the other draws stay the same.
            tokens: TokenAuthority::new(&mut Rng::new(config.seed.wrapping_add(0x70c3))),
            config,
            shutdown,
            addr,
            pki,
            logs: PodLogs::default(),
            runtime,
            kubelet_root,
        }
    }

    /// The applications' error counters (`/sim/v1/metrics`).
    pub fn app_error_counters(&self) -> MutexGuard<'_, AppErrorCounters> {
        lock(&self.app_errors)
    }

    /// The scheduler's view of the nodes (lock the store first: whoever
    /// places pods holds it, and the view follows its events).
    pub fn node_cache(&self) -> MutexGuard<'_, NodeCache> {
        lock(&self.node_cache)
    }

    /// Whether the cluster has nodes with capacity (`SimConfig::nodes`);
    /// without, pods go to `sim-worker-1..3` unchecked.
    pub fn has_nodes(&self) -> bool {
        self.config.nodes.is_some()
    }

    /// A copy of the fault configuration, which may change at any time.
    pub fn faults(&self) -> FaultConfig {
        lock(&self.faults).0.clone()
    }

    /// A copy of the fault mix.
    pub fn fault_mix(&self) -> FaultMix {
        lock(&self.faults).1.clone()
    }

    pub fn set_faults(&self, faults: FaultConfig) {
        lock(&self.faults).0 = faults;
    }

    pub fn set_fault_mix(&self, mix: FaultMix) {
        lock(&self.faults).1 = mix;
    }

    /// Adds a rule to the mix; returns its index.
    pub fn add_fault_rule(&self, rule: FaultRule) -> usize {
        let rules = &mut lock(&self.faults).1.rules;
        rules.push(rule);
        rules.len() - 1
    }

    /// Whether the kubelet runs pods of this pod spec for real (one of its
    /// images is in `SimConfig::run_images`).
    pub fn runs_for_real(&self, pod_spec: &serde_json::Value) -> bool {
        crate::images::spec_runs_for_real(self.config.run_images.keys(), pod_spec)
    }

    /// Counts one request as `verb resource` (e.g. `patch deployments`).
    pub fn count_request(&self, verb: &str, resource: &str) {
        *lock(&self.stats).requests.entry(format!("{verb} {resource}")).or_insert(0) += 1;
    }

    /// Reads or changes the counters under their lock.
    pub fn with_stats<R>(&self, change: impl FnOnce(&mut SimStats) -> R) -> R {
        change(&mut lock(&self.stats))
    }

    /// The fault injected into a request (`verb`, and `resource` as the
    /// request counters name it): the first of the mix's rules it sets off,
    /// else one drawn per the configured rate of its kind and the mix's
    /// weights. Never a conflict: a real server answers 409 only to a stale
    /// resourceVersion, which the write pipeline checks.
    pub fn injected_fault(
        &self,
        verb: &str,
        resource: &str,
        is_write: bool,
    ) -> Option<InjectedFault> {
        let kind = format!("{verb} {resource}");
        let (faults, mix) = {
            let mut guard = lock(&self.faults);
            let retry_after_seconds = guard.1.retry_after_seconds;
            // Every rule sees every request (to arm or disarm), even once one fired.
            let mut fired = None;
            for rule in &mut guard.1.rules {
                let fault = rule_fault(rule, &kind, retry_after_seconds);
                fired = fired.or(fault);
            }
            if fired.is_some() {
                return fired;
            }
            guard.clone()
        };
        let rate = mix
            .error_rates
            .get(&kind)
            .or_else(|| mix.error_rates.get(verb))
            .copied()
            .unwrap_or(if is_write { faults.write_error_rate } else { 0.0 });
        if rate <= 0.0 {
            return None;
        }
        // Long-running requests (watches) are exempt from the timeout.
        let timeout_weight = if verb == "watch" { 0.0 } else { mix.timeout_weight.max(0.0) };
        let weights = [
            mix.internal_error_weight.max(0.0),
            mix.too_many_requests_weight.max(0.0),
            timeout_weight,
            mix.request_too_large_weight.max(0.0),
        ];
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            return None;
        }
        self.rng.with(|rng| {
            if rng.unit() >= rate {
                return None;
            }
            let mut pick = rng.unit() * total;
            let kind = weights
                .iter()
                .position(|weight| {
                    pick -= weight;
                    pick < 0.0
                })
                .unwrap_or(0);
            Some(match kind {
                0 => InjectedFault::InternalError,
                1 => {
                    InjectedFault::TooManyRequests { retry_after_seconds: mix.retry_after_seconds }
                }
                2 => InjectedFault::Timeout {
                    after_ms: mix.timeout_ms,
                    commits: mix.timeout_commits,
                },
                _ => InjectedFault::RequestTooLarge,
            })
        })
    }
}

/// Advances `rule` over one request of `kind`; the fault it injects, if it
/// fires on this request.
fn rule_fault(rule: &mut FaultRule, kind: &str, retry_after_seconds: u64) -> Option<InjectedFault> {
    if kind == rule.fail {
        let armed = std::mem::take(&mut rule.armed) || rule.after.is_empty();
        if !armed || rule.times == Some(0) {
            return None;
        }
        rule.times = rule.times.map(|times| times - 1);
        rule.fired += 1;
        return Some(match rule.error {
            RuleError::InternalError => InjectedFault::InternalError,
            RuleError::TooManyRequests => InjectedFault::TooManyRequests { retry_after_seconds },
            RuleError::Timeout => {
                InjectedFault::Timeout { after_ms: rule.hang_ms, commits: rule.commits }
            }
            RuleError::RequestTooLarge => InjectedFault::RequestTooLarge,
        });
    }
    if kind == rule.after {
        rule.armed = true;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_after_patches(times: Option<u64>) -> FaultRule {
        FaultRule {
            fail: "patch servicerefreshes/status".into(),
            after: "patch deployments".into(),
            times,
            ..FaultRule::default()
        }
    }

    #[test]
    fn a_rule_fails_the_first_status_write_after_patches_and_only_that_one() {
        let mut rule = status_after_patches(None);
        let status = "patch servicerefreshes/status";
        assert_eq!(rule_fault(&mut rule, status, 1), None, "not armed yet");
        assert_eq!(rule_fault(&mut rule, "patch deployments", 1), None);
        assert_eq!(rule_fault(&mut rule, "patch deployments", 1), None);
        assert_eq!(rule_fault(&mut rule, "get deployments", 1), None, "other kinds change nothing");
        assert_eq!(rule_fault(&mut rule, status, 1), Some(InjectedFault::InternalError));
        assert_eq!(rule_fault(&mut rule, status, 1), None, "the failed write disarmed it");
        assert_eq!(rule_fault(&mut rule, "patch deployments", 1), None);
        assert_eq!(rule_fault(&mut rule, status, 1), Some(InjectedFault::InternalError));
        assert_eq!(rule.fired, 2);
    }

    #[test]
    fn a_limited_rule_stops_after_its_count_and_says_how_it_answers() {
        let mut rule = FaultRule {
            error: RuleError::Timeout,
            hang_ms: 250,
            commits: true,
            ..status_after_patches(Some(1))
        };
        let status = "patch servicerefreshes/status";
        rule_fault(&mut rule, "patch deployments", 1);
        assert_eq!(
            rule_fault(&mut rule, status, 1),
            Some(InjectedFault::Timeout { after_ms: 250, commits: true })
        );
        rule_fault(&mut rule, "patch deployments", 1);
        assert_eq!(rule_fault(&mut rule, status, 1), None, "spent");
        assert_eq!((rule.times, rule.fired), (Some(0), 1));

        let mut unarmed = FaultRule {
            fail: "create events".into(),
            error: RuleError::TooManyRequests,
            times: Some(2),
            ..FaultRule::default()
        };
        for _ in 0..2 {
            assert_eq!(
                rule_fault(&mut unarmed, "create events", 7),
                Some(InjectedFault::TooManyRequests { retry_after_seconds: 7 }),
                "without `after`, every request of the kind is failed"
            );
        }
        assert_eq!(rule_fault(&mut unarmed, "create events", 7), None);
    }
}
