//! Failed authentications per client address: a client that presents more than
//! [`MAX_FAILURES`] invalid tokens within a [`WINDOW`] is refused without a review until the
//! window ends, so guessing tokens costs the API server at most that many TokenReviews per
//! window and address. A token already known to be valid is still accepted from such an
//! address (callers check that first), so one client behind a shared proxy address cannot
//! lock out the others. Each address is logged once per window, when it is first refused.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use moka::sync::Cache;
use tracing::warn;

/// Invalid tokens an address may present per window.
pub const MAX_FAILURES: u32 = 10;
/// The window, counted from an address's first failure.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at once; the least used go first beyond it.
const MAX_ADDRESSES: u64 = 100_000;

#[derive(Debug)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Counts failed authentications per client address.
#[derive(Clone)]
pub struct FailureLimiter {
    windows: Cache<IpAddr, Arc<Mutex<Window>>>,
    max_failures: u32,
    window: Duration,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        Self::new(MAX_FAILURES, WINDOW)
    }
}

impl FailureLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            windows: Cache::builder().max_capacity(MAX_ADDRESSES).time_to_live(window).build(),
            max_failures,
            window,
        }
    }

    /// How long `client` must wait before its next unknown token is reviewed, if it must.
    pub fn retry_after(&self, client: IpAddr) -> Option<Duration> {
        let window = self.windows.get(&client)?;
        let window = window.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = window.started.elapsed();
        (window.failures >= self.max_failures && elapsed < self.window)
            .then(|| self.window - elapsed)
    }

    /// Counts an invalid token from `client`; logs when the address reaches the limit.
    pub fn failed(&self, client: IpAddr) {
        let window = self.windows.get_with(client, || {
            Arc::new(Mutex::new(Window { started: Instant::now(), failures: 0 }))
        });
        let mut window = window.lock().unwrap_or_else(PoisonError::into_inner);
        window.failures = window.failures.saturating_add(1);
        if window.failures == self.max_failures {
            warn!(
                client = %client, failures = window.failures, window = ?self.window,
                "admin API: too many invalid tokens from this address; its unknown tokens are refused until the window ends"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_stopped_after_the_limit_and_others_are_not() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let (bad, good): (IpAddr, IpAddr) =
            ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        for _ in 0..2 {
            limiter.failed(bad);
            assert_eq!(limiter.retry_after(bad), None);
        }
        limiter.failed(bad);
        let wait = limiter.retry_after(bad).expect("stopped");
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50), "{wait:?}");
        assert_eq!(limiter.retry_after(good), None);
    }

    #[test]
    fn the_window_ends() {
        let limiter = FailureLimiter::new(1, Duration::from_millis(1));
        let client: IpAddr = "127.0.0.2".parse().unwrap();
        limiter.failed(client);
        let start = Instant::now();
        while limiter.retry_after(client).is_some() {
            assert!(start.elapsed() < Duration::from_secs(5), "the window never ended");
            std::thread::yield_now();
        }
    }
}
