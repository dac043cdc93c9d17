//! How long to wait before trying again a resource whose status the API server refuses to
//! store (too large, or invalid): retrying every couple of seconds changes nothing but the
//! load on the API server, so each refusal in a row doubles the wait, up to a few minutes,
//! and an accepted write starts over.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::lock;
use crate::engine::ObjectKey;

/// The wait after the first refusal.
pub const FIRST_RETRY: Duration = Duration::from_secs(2);
/// The longest wait between two tries.
pub const LONGEST_RETRY: Duration = Duration::from_secs(300);

/// Refusals in a row, per resource.
#[derive(Default)]
pub struct RefusedWrites {
    in_a_row: Mutex<HashMap<ObjectKey, u32>>,
}

impl RefusedWrites {
    /// Notes a refusal; returns how long to wait before the next try.
    pub fn refused(&self, key: &ObjectKey) -> Duration {
        let mut in_a_row = lock(&self.in_a_row);
        let count = in_a_row.entry(key.clone()).or_default();
        let wait = FIRST_RETRY.saturating_mul(2u32.saturating_pow(*count)).min(LONGEST_RETRY);
        *count = count.saturating_add(1);
        wait
    }

    /// A status of this resource was stored: the next refusal starts over.
    pub fn written(&self, key: &ObjectKey) {
        lock(&self.in_a_row).remove(key);
    }

    /// Refusals in a row of this resource.
    pub fn count(&self, key: &ObjectKey) -> u32 {
        lock(&self.in_a_row).get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_doubles_the_wait_up_to_the_longest_and_a_write_starts_over() {
        let writes = RefusedWrites::default();
        let key = ObjectKey::new("arcgis", "refresh");
        let waits: Vec<u64> = (0..10).map(|_| writes.refused(&key).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(writes.count(&key), 10);
        writes.written(&key);
        assert_eq!(writes.refused(&key), FIRST_RETRY);
        assert_eq!(writes.refused(&ObjectKey::new("arcgis", "other")), FIRST_RETRY, "per resource");
    }
}
