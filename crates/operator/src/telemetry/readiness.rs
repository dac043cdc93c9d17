//! Readiness for `/readyz`: not ready, with a reason a person can act on, until the watch
//! caches have synced; ready from then on (leader or standby alike, since a standby's warm
//! caches are what make a takeover fast).

use std::sync::{Mutex, MutexGuard};

#[derive(Debug)]
pub struct Readiness {
    /// `None` once ready; otherwise why not.
    not_ready: Mutex<Option<String>>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self { not_ready: Mutex::new(Some("starting".to_owned())) }
    }
}

impl Readiness {
    /// Ready, or why not.
    pub fn check(&self) -> Result<(), String> {
        match &*self.lock() {
            None => Ok(()),
            Some(reason) => Err(reason.clone()),
        }
    }

    pub fn not_ready(&self, reason: impl Into<String>) {
        *self.lock() = Some(reason.into());
    }

    pub fn ready(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> MutexGuard<'_, Option<String>> {
        // The guarded value is replaced whole; a panic cannot leave it torn.
        self.not_ready.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_until_told_with_the_latest_reason() {
        let readiness = Readiness::default();
        assert_eq!(readiness.check(), Err("starting".to_owned()));
        readiness.not_ready("waiting for the Deployment cache");
        assert_eq!(readiness.check(), Err("waiting for the Deployment cache".to_owned()));
        readiness.ready();
        assert_eq!(readiness.check(), Ok(()));
    }
}
