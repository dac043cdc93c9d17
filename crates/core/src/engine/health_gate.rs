//! The health gate between batches, as the engine judges it. The operator's shell performs
//! the checks (a Prometheus query, Alertmanager's active alerts) when a decision asks for
//! them, and hands the outcome back in the observation as a [`GateResult`] stamped with the
//! time it was checked. This module decides, from that result, the time the gate began (the
//! batch's end) and the time now, whether the next batch may start, the run must hold, a
//! fresh check is due, or the gate has failed for longer than its timeout.

use std::fmt;

use jiff::{SignedDuration, Timestamp};

/// How long a check's outcome stands: an older one is checked again before the run moves
/// on or holds on it, so a hold follows the monitoring system within seconds.
pub const GATE_RECHECK: SignedDuration = SignedDuration::from_secs(5);

/// Which check a result comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GateCheck {
    Prometheus,
    Alertmanager,
}

impl GateCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prometheus => "prometheus",
            Self::Alertmanager => "alertmanager",
        }
    }
}

impl fmt::Display for GateCheck {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The outcome of one check, in words a person acts on: the failing query's samples, the
/// matching alerts, or why the endpoint could not be asked (which fails the check).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    pub check: GateCheck,
    pub passed: bool,
    pub detail: String,
}

/// Every configured check's outcome, checked at one time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateResult {
    pub checked_at: Timestamp,
    pub checks: Vec<CheckResult>,
}

impl GateResult {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.passed)
    }

    /// The failing checks' details, `check: detail` joined by `; `.
    pub fn failures(&self) -> String {
        self.checks
            .iter()
            .filter(|check| !check.passed)
            .map(|check| format!("{}: {}", check.check, check.detail))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What the gate says about starting the next batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GateStep {
    /// Every check passed since the batch became ready.
    Open,
    /// No outcome checked since the batch became ready and within [`GATE_RECHECK`]: the
    /// shell must check, then decide again.
    Evaluate,
    /// A check fails; the run holds. `recheck_at` is when this outcome goes stale.
    Failing { failures: String, failing_for: SignedDuration, recheck_at: Timestamp },
    /// A check still fails `timeout` after the batch became ready.
    TimedOut { failures: String },
}

/// Judges the gate that began at `began` (the batch's end) by `result`, at `now`.
pub fn judge(
    timeout: SignedDuration,
    began: Timestamp,
    result: Option<&GateResult>,
    now: Timestamp,
) -> GateStep {
    let Some(result) = result
        .filter(|result| result.checked_at >= began && now < result.checked_at + GATE_RECHECK)
    else {
        return GateStep::Evaluate;
    };
    if result.passed() {
        return GateStep::Open;
    }
    let failures = result.failures();
    let failing_for = now.duration_since(began);
    if failing_for >= timeout {
        return GateStep::TimedOut { failures };
    }
    GateStep::Failing { failures, failing_for, recheck_at: result.checked_at + GATE_RECHECK }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("a valid time")
    }

    fn result(checked_at: i64, prometheus: bool, alertmanager: bool) -> GateResult {
        GateResult {
            checked_at: at(checked_at),
            checks: vec![
                CheckResult {
                    check: GateCheck::Prometheus,
                    passed: prometheus,
                    detail: "1 sample at or above 0: {deployment=\"a\"} 3".to_owned(),
                },
                CheckResult {
                    check: GateCheck::Alertmanager,
                    passed: alertmanager,
                    detail: "HighErrorRate{severity=\"critical\"}".to_owned(),
                },
            ],
        }
    }

    const TIMEOUT: SignedDuration = SignedDuration::from_secs(60);

    #[test]
    fn no_outcome_since_the_batch_ended_asks_for_a_check() {
        assert_eq!(judge(TIMEOUT, at(10), None, at(10)), GateStep::Evaluate);
        let before_the_batch = result(9, true, true);
        assert_eq!(judge(TIMEOUT, at(10), Some(&before_the_batch), at(11)), GateStep::Evaluate);
        let stale = result(10, true, true);
        assert_eq!(judge(TIMEOUT, at(10), Some(&stale), at(15)), GateStep::Evaluate);
    }

    #[test]
    fn every_check_passing_opens_the_gate() {
        assert_eq!(judge(TIMEOUT, at(10), Some(&result(12, true, true)), at(13)), GateStep::Open);
        // A check made the moment the batch became ready already counts.
        assert_eq!(judge(TIMEOUT, at(10), Some(&result(10, true, true)), at(11)), GateStep::Open);
    }

    #[test]
    fn a_failing_check_holds_with_its_detail_until_the_timeout() {
        let failing = result(40, false, true);
        let GateStep::Failing { failures, failing_for, recheck_at } =
            judge(TIMEOUT, at(10), Some(&failing), at(41))
        else {
            panic!("a failing check holds");
        };
        assert_eq!(failures, "prometheus: 1 sample at or above 0: {deployment=\"a\"} 3");
        assert_eq!(failing_for, SignedDuration::from_secs(31));
        assert_eq!(recheck_at, at(45));

        let both = result(69, false, false);
        assert_eq!(
            judge(TIMEOUT, at(10), Some(&both), at(70)),
            GateStep::TimedOut {
                failures: "prometheus: 1 sample at or above 0: {deployment=\"a\"} 3; \
                           alertmanager: HighErrorRate{severity=\"critical\"}"
                    .to_owned()
            }
        );
    }

    #[test]
    fn a_pass_at_the_last_moment_still_opens_the_gate() {
        assert_eq!(judge(TIMEOUT, at(10), Some(&result(70, true, true)), at(71)), GateStep::Open);
    }
}
