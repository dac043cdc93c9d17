//! The controller's policy with state: which resources may run now (run slots), what this
//! process wrote last (the status, patch and plan memos), which writes the API server forbids,
//! which resources wait on which Deployment (the await index), when to look again (requeue),
//! and whether this replica may write (leadership). Each is a small synchronous type with its
//! own unit tests, so the IO shell around the engine holds no logic of its own. Locks here are
//! never held across an await and guard plain sets and maps that every mutation leaves
//! consistent, so a poisoned lock is taken over rather than treated as a refusal.

pub mod admission;
pub mod awaiting;
pub mod forbidden_writes;
pub mod leadership;
pub mod patch_memo;
pub mod plan_memo;
pub mod refusals;
pub mod requeue;
pub mod status_memo;

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, taking the data over if a panic poisoned it: every mutation in this module
/// is a single insert or removal, so the data is consistent whatever panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
