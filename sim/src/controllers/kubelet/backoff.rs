//! The kubelet's crash-loop back-off of one container (`flowcontrol.Backoff`
//! as the kubelet uses it): the first restart at once, then the initial
//! back-off, doubling up to 30 times it, forgotten when the container ran
//! twice that long without ending; and Go's way of printing a duration,
//! which the waiting message uses.

use std::time::Duration;

use tokio::time::Instant;

/// A Go duration as `time.Duration.String()` prints it (`10s`, `1m20s`, `1.6s`, `500ms`).
pub fn go_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".into();
    }
    if duration < Duration::from_secs(1) {
        return format!("{}ms", duration.as_secs_f64() * 1000.0);
    }
    let total = duration.as_secs();
    let (hours, minutes) = (total / 3600, (total % 3600) / 60);
    let seconds = (total % 60) as f64 + f64::from(duration.subsec_nanos()) / 1e9;
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

/// The kubelet's crash-loop back-off of one container.
#[derive(Debug)]
pub struct Backoff {
    /// The first back-off.
    pub initial: Duration,
    /// The back-off now, once a container has ended.
    pub current: Option<Duration>,
    last_update: Instant,
}

impl Backoff {
    pub fn new(initial: Duration) -> Self {
        Backoff { initial, current: None, last_update: Instant::now() }
    }

    fn max(&self) -> Duration {
        self.initial * 30
    }

    /// A back-off not renewed for twice its maximum is forgotten.
    fn expired(&self, finished: Instant) -> bool {
        finished.saturating_duration_since(self.last_update) > self.max() * 2
    }

    /// How much longer (at `now`) a container that ended at `finished` must wait.
    pub fn remaining(&self, finished: Instant, now: Instant) -> Option<Duration> {
        let current = self.current?;
        if self.expired(finished) {
            return None;
        }
        current.checked_sub(now.saturating_duration_since(finished)).filter(|left| !left.is_zero())
    }

    /// Renews the back-off at `now` for a container that ended at `finished`.
    pub fn next(&mut self, finished: Instant, now: Instant) {
        self.current = match self.current {
            Some(current) if !self.expired(finished) => Some((current * 2).min(self.max())),
            _ => Some(self.initial),
        };
        self.last_update = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        let cases = [
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(80), "1m20s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_millis(1600), "1.6s"),
            (Duration::from_millis(200), "200ms"),
            (Duration::from_secs(3_700), "1h1m40s"),
        ];
        for (duration, printed) in cases {
            assert_eq!(go_duration(duration), printed);
        }
    }

    #[test]
    fn the_back_off_doubles_to_its_cap_and_is_forgotten_after_twice_that() {
        let second = Duration::from_secs(1);
        let mut backoff = Backoff::new(10 * second);
        let mut now = Instant::now();
        assert_eq!(backoff.remaining(now, now), None, "the first restart is immediate");
        backoff.next(now, now);
        let mut waits = Vec::new();
        for _ in 0..7 {
            waits.push(backoff.remaining(now, now).map(|left| left.as_secs()));
            backoff.next(now, now);
        }
        assert_eq!(
            waits,
            [Some(10), Some(20), Some(40), Some(80), Some(160), Some(300), Some(300)]
        );
        assert_eq!(
            backoff.remaining(now, now + 120 * second).map(|left| left.as_secs()),
            Some(180)
        );
        now += 601 * second;
        assert_eq!(backoff.remaining(now, now), None);
        backoff.next(now, now);
        assert_eq!(backoff.current, Some(10 * second));
    }
}
