//! The shared state of one running simulated cluster, as the REST handlers
//! and the background controllers see it: the store, the configuration it
//! started with, the counters, the current faults, the shared random
//! generator, and the shutdown signal.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use crate::auth::TokenAuthority;
use crate::store::Store;
use crate::util::{Rng, SharedRng};
use crate::{FaultConfig, FaultMix, SimConfig, SimStats};

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
    stats: Mutex<SimStats>,
    faults: Mutex<(FaultConfig, FaultMix)>,
}

/// An injected fault, as the handlers answer it.
#[derive(Debug, Clone, PartialEq)]
pub enum InjectedFault {
    /// 500 InternalError from storage.
    InternalError,
    /// 429 with `Retry-After`.
    TooManyRequests { retry_after_seconds: u64 },
    /// 504 Timeout after `after_ms`; `commits`: the write still happens.
    Timeout { after_ms: u64, commits: bool },
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Guarded data is plain counters/config; a panic cannot leave it torn.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SimState {
    /// The state of a cluster started with `config`, listening on `addr`.
    pub fn new(
        config: SimConfig,
        addr: SocketAddr,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        SimState {
            store: Store::new(config.event_window),
            stats: Mutex::new(SimStats::default()),
            faults: Mutex::new((config.faults.clone(), config.fault_mix.clone())),
            // Apart from the fleet's generator, so that requests do not
            // change which fleet a seed produces.
            rng: SharedRng::new(config.seed.wrapping_add(0x5eed)),
            // A generator of its own, so that the other draws stay the same.
            tokens: TokenAuthority::new(&mut Rng::new(config.seed.wrapping_add(0x70c3))),
            config,
            shutdown,
            addr,
        }
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

    /// Counts one request as `verb resource` (e.g. `patch deployments`).
    pub fn count_request(&self, verb: &str, resource: &str) {
        *lock(&self.stats).requests.entry(format!("{verb} {resource}")).or_insert(0) += 1;
    }

    /// Reads or changes the counters under their lock.
    pub fn with_stats<R>(&self, change: impl FnOnce(&mut SimStats) -> R) -> R {
        change(&mut lock(&self.stats))
    }

    /// The fault injected into a request (`verb`, and `resource` as the
    /// request counters name it), drawn per the configured rate of its kind
    /// and the mix's weights. Never a conflict: a real server answers 409
    /// only to a stale resourceVersion, which the write pipeline checks.
    pub fn injected_fault(
        &self,
        verb: &str,
        resource: &str,
        is_write: bool,
    ) -> Option<InjectedFault> {
        let (faults, mix) = lock(&self.faults).clone();
        let rate = mix
            .error_rates
            .get(&format!("{verb} {resource}"))
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
                _ => InjectedFault::Timeout {
                    after_ms: mix.timeout_ms,
                    commits: mix.timeout_commits,
                },
            })
        })
    }
}
