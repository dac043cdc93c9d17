//! The shared state of one running simulated cluster, as the REST handlers
//! and the background controllers see it: the store, the configuration it
//! started with, the counters, the current faults, the shared random
//! generator, and the shutdown signal.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use crate::auth::TokenAuthority;
use crate::error::{ApiError, GroupResource};
use crate::store::Store;
use crate::util::{Rng, SharedRng};
use crate::{FaultConfig, SimConfig, SimStats};

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
    faults: Mutex<FaultConfig>,
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
            faults: Mutex::new(config.faults.clone()),
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
        lock(&self.faults).clone()
    }

    pub fn set_faults(&self, faults: FaultConfig) {
        *lock(&self.faults) = faults;
    }

    /// Counts one request as `verb resource` (e.g. `patch deployments`).
    pub fn count_request(&self, verb: &str, resource: &str) {
        *lock(&self.stats).requests.entry(format!("{verb} {resource}")).or_insert(0) += 1;
    }

    /// Reads or changes the counters under their lock.
    pub fn with_stats<R>(&self, change: impl FnOnce(&mut SimStats) -> R) -> R {
        change(&mut lock(&self.stats))
    }

    /// The error an injected write fault answers with, drawn per the
    /// configured rate: half server timeouts, half conflicts, the two a
    /// client must retry.
    pub fn injected_fault(&self, gr: &GroupResource, name: &str) -> Option<ApiError> {
        let rate = self.faults().write_error_rate;
        if rate <= 0.0 {
            return None;
        }
        self.rng.with(|rng| {
            if rng.unit() >= rate {
                None
            } else if rng.below(2) == 0 {
                Some(ApiError::internal("simulated fault: etcdserver: request timed out"))
            } else {
                Some(ApiError::conflict_modified(gr, name))
            }
        })
    }
}
