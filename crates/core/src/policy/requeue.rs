//! When a resource is looked at again without a watch event: at once (the next step must
//! follow a status write, which the engine signals with a wake-up time that has come), at
//! its next deadline, after a retry delay when a restart failed transiently, or only on the
//! next change.

use std::time::Duration;

use jiff::Timestamp;

/// Shortest timer handed to the controller: a deadline a few microseconds away is treated
/// as due, not as a busy loop.
const MIN_TIMER: Duration = Duration::from_millis(5);

/// What to do after a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Run the next pass right away, in the same reconcile.
    AtOnce,
    /// Look again after this long, unless a watch event comes first.
    After(Duration),
    /// Wait for the next watch event.
    OnChange,
}

/// The requeue for a pass that asked to be woken at `wake_at`, at time `now`, after
/// `transient_failures` restart patches failed in a way worth retrying.
pub fn after_pass(
    wake_at: Option<Timestamp>,
    now: Timestamp,
    transient_failures: usize,
    retry_delay: Duration,
) -> Requeue {
    let timer = wake_at.map(|at| Duration::try_from(at.duration_since(now)).unwrap_or_default());
    let timer = match (timer, transient_failures > 0) {
        (Some(timer), true) => Some(timer.min(retry_delay)),
        (None, true) => Some(retry_delay),
        (timer, false) => timer,
    };
    match timer {
        None => Requeue::OnChange,
        Some(timer) if timer < MIN_TIMER && transient_failures == 0 => Requeue::AtOnce,
        Some(timer) => Requeue::After(timer.max(MIN_TIMER)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_millisecond(1_800_000_000_000 + millis).expect("in range")
    }

    const RETRY: Duration = Duration::from_secs(2);

    #[test]
    fn a_due_wake_up_runs_the_next_pass_at_once() {
        assert_eq!(after_pass(Some(at(0)), at(0), 0, RETRY), Requeue::AtOnce);
        assert_eq!(after_pass(Some(at(-50)), at(0), 0, RETRY), Requeue::AtOnce);
    }

    #[test]
    fn a_future_deadline_becomes_a_timer() {
        assert_eq!(
            after_pass(Some(at(90_000)), at(0), 0, RETRY),
            Requeue::After(Duration::from_secs(90))
        );
        assert_eq!(after_pass(None, at(0), 0, RETRY), Requeue::OnChange);
    }

    #[test]
    fn transient_failures_retry_after_the_delay_never_in_a_tight_loop() {
        assert_eq!(after_pass(None, at(0), 1, RETRY), Requeue::After(RETRY));
        assert_eq!(after_pass(Some(at(0)), at(0), 3, RETRY), Requeue::After(MIN_TIMER));
        assert_eq!(
            after_pass(Some(at(600_000)), at(0), 1, RETRY),
            Requeue::After(RETRY),
            "the retry comes before a far deadline"
        );
    }

    #[test]
    fn a_wake_up_exactly_the_minimum_timer_away_becomes_a_timer() {
        // Only deadlines closer than the minimum timer count as due; one exactly that far
        // away is waited for, so the next pass does not run before its deadline.
        assert_eq!(after_pass(Some(at(5)), at(0), 0, RETRY), Requeue::After(MIN_TIMER));
        assert_eq!(after_pass(Some(at(4)), at(0), 0, RETRY), Requeue::AtOnce);
    }
}
