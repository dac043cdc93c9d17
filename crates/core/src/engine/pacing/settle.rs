//! `spec.triggerSettle`: watched ConfigMaps must stay unchanged for the settle time before
//! their change starts a run, so a burst of edits (a tool rewriting keys one by one, a
//! controller fighting another) becomes one run after it ends. The engine has no clock: the
//! status records since when the content has looked as it does now, and each pass compares
//! that with the observation's time.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

use crate::crd::TriggerSettling;

/// Where the watched ConfigMaps' changes stand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settle {
    /// No change since the last run's start.
    Unchanged,
    /// Changed, but changed again less than the settle time ago; look again at `until`.
    Settling { until: Timestamp },
    /// Changed, and unchanged since for the settle time: a run is due.
    Settled,
}

/// Decides whether the change to the watched ConfigMaps (`changed`: a digest of their
/// current content, `None` when it equals what the last run recorded) has settled, given the
/// settling record the status held. Returns the record to keep and the verdict. A zero
/// settle time settles every change at once and keeps no record.
pub fn settle(
    recorded: Option<&TriggerSettling>,
    changed: Option<String>,
    settle_for: SignedDuration,
    now: Timestamp,
) -> (Option<TriggerSettling>, Settle) {
    let Some(digest) = changed else {
        return (None, Settle::Unchanged);
    };
    if settle_for.is_zero() {
        return (None, Settle::Settled);
    }
    let since =
        recorded.filter(|record| record.digest == digest).map_or(now, |record| record.since.0);
    let until = since.checked_add(settle_for).unwrap_or(Timestamp::MAX);
    let verdict = if now >= until { Settle::Settled } else { Settle::Settling { until } };
    (Some(TriggerSettling { digest, since: MicroTime(since) }), verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_795_717_589 + seconds).expect("in range")
    }

    const FIVE: SignedDuration = SignedDuration::from_secs(5);

    #[test]
    fn no_change_keeps_no_record() {
        let record = TriggerSettling { digest: "a".into(), since: MicroTime(at(0)) };
        assert_eq!(settle(Some(&record), None, FIVE, at(9)), (None, Settle::Unchanged));
    }

    #[test]
    fn a_change_settles_after_the_settle_time_without_further_change() {
        let (record, verdict) = settle(None, Some("a".into()), FIVE, at(0));
        assert_eq!(verdict, Settle::Settling { until: at(5) });
        let (record, verdict) = settle(record.as_ref(), Some("a".into()), FIVE, at(4));
        assert_eq!(verdict, Settle::Settling { until: at(5) });
        let (_, verdict) = settle(record.as_ref(), Some("a".into()), FIVE, at(5));
        assert_eq!(verdict, Settle::Settled);
    }

    #[test]
    fn every_further_change_restarts_the_settle_time() {
        let mut record = None;
        for (second, digest) in [(0, "a"), (2, "b"), (4, "c"), (6, "d")] {
            let (next, verdict) = settle(record.as_ref(), Some(digest.into()), FIVE, at(second));
            assert_eq!(verdict, Settle::Settling { until: at(second + 5) }, "{digest}");
            record = next;
        }
        let (_, verdict) = settle(record.as_ref(), Some("d".into()), FIVE, at(11));
        assert_eq!(verdict, Settle::Settled);
    }

    #[test]
    fn zero_settles_at_once() {
        assert_eq!(
            settle(None, Some("a".into()), SignedDuration::ZERO, at(0)),
            (None, Settle::Settled)
        );
    }
}
