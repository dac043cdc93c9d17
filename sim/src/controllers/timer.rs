//! A precise one-shot timer for the Deployment controller. The runtime's
//! own timers round a deadline up to the next millisecond tick and the
//! reactor rounds its wait up to a millisecond again, so they fire 1 to 2 ms
//! late; this one waits on a condition variable on a thread of its own
//! (sub-millisecond precision) and wakes the controller's task.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

#[derive(Default)]
struct State {
    deadline: Option<Instant>,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    fired: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a deadline and a flag: a panic cannot leave it torn.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The timer; its thread ends when it is dropped.
pub struct PreciseTimer {
    shared: Arc<Shared>,
}

impl PreciseTimer {
    /// A timer with no deadline.
    pub fn new() -> PreciseTimer {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            fired: Notify::new(),
        });
        let worker = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("sim-deployment-timer".into())
            .spawn(move || wait_loop(&worker));
        if let Err(error) = spawned {
            tracing::error!(error = %error, "the Deployment controller's timer thread did not start");
        }
        PreciseTimer { shared }
    }

    /// Sets (or clears) the deadline.
    pub fn set(&self, deadline: Option<Instant>) {
        let mut state = self.shared.lock();
        if state.deadline != deadline {
            state.deadline = deadline;
            self.shared.changed.notify_one();
        }
    }

    /// Completes once the deadline has passed (possibly at once, for a
    /// deadline that passed before).
    pub async fn fired(&self) {
        self.shared.fired.notified().await;
    }
}

impl Drop for PreciseTimer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_one();
    }
}

fn wait_loop(shared: &Shared) {
    let mut state = shared.lock();
    loop {
        if state.stop {
            return;
        }
        state = match state.deadline {
            None => shared.changed.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner()),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    state.deadline = None;
                    shared.fired.notify_one();
                    state
                } else {
                    shared
                        .changed
                        .wait_timeout(state, deadline - now)
                        .map(|(state, _)| state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner().0)
                }
            }
        };
    }
}
