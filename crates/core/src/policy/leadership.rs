//! Leadership as the write path sees it: the fence every write checks right before it is
//! sent, and the terms that keep a pass begun under one leadership from writing under the
//! next.
//!
//! The rule: this replica may write while the Lease names it as holder and its last renewal
//! plus the validity has not passed on the local monotonic clock. The validity is the lease
//! duration minus a safety margin, the margin being the lease duration minus the renew
//! deadline (15 s - 10 s = 5 s by default): the fence closes that long before any other
//! replica may consider the Lease expired, which covers drift between the replicas' clocks
//! and the time a request takes to reach the API server.
//!
//! A renewal counts from the moment it was *sent* (or the renewTime it wrote, whichever is
//! earlier), never from when its answer arrived: a process paused between sending and
//! hearing back must not extend its fence by the pause. The monotonic clock keeps running
//! while a process is stopped (SIGSTOP), so a resumed leader finds its fence closed.
//!
//! Only readings of the Lease that show this replica as holder *and were renewals it sent*
//! open or extend the fence; any reading that shows another holder (or none) closes it.
//! Each opening of the fence starts a new term; a pass records the term it started under and
//! every write checks that term, so a pass that began before a lapse never writes after the
//! replica leads again.
//!
//! Everything here is synchronous and takes the time as an argument: the IO shell reads the
//! clock and the Lease.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::lock;

/// A leadership term: incremented each time this replica starts leading.
pub type Term = u64;

/// What one answer about the Lease says, as seen by this replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseReading {
    /// A renewal (or acquisition) this replica sent, answered with itself as the holder.
    /// `renewed_at` is the earlier of when the request was sent and the renewTime it wrote,
    /// on the local monotonic clock.
    Renewed { renewed_at: Instant },
    /// The Lease names another holder, or none.
    HeldByOther,
}

/// Why a term ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossReason {
    /// No renewal arrived in time: the fence closed by the clock.
    Expired,
    /// The Lease showed another holder or none.
    Taken,
    /// This replica stepped down (it is shutting down).
    SteppedDown,
}

impl LossReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "renewal deadline passed",
            Self::Taken => "the lease is held by another replica",
            Self::SteppedDown => "stepped down",
        }
    }
}

/// A change of leadership since the last [`Leadership::poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Acquired { term: Term },
    Lost { term: Term, reason: LossReason },
}

/// Why a write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum Refused {
    #[error("this replica does not hold the leader Lease")]
    NotLeader,
    #[error("the leader Lease was not renewed within the renew deadline")]
    Expired,
    #[error("leadership changed since this pass started (term {started} ended)")]
    TermEnded { started: Term },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// No leader election: this replica always leads (development, tests, one replica).
    Always,
    /// The fence stays open for `validity` after each renewal.
    Elected { validity: Duration },
}

#[derive(Debug)]
struct State {
    mode: Mode,
    term: Term,
    /// The fence's deadline in the current term; `None` while not leading.
    held_until: Option<Instant>,
    /// Set when a reading showed another holder; tells `Taken` from `Expired`.
    taken: bool,
    stepped_down: bool,
    /// The term the last poll reported as leading.
    reported: Option<Term>,
}

impl State {
    fn leading(&self, now: Instant) -> bool {
        match self.mode {
            Mode::Always => !self.stepped_down,
            Mode::Elected { .. } => self.held_until.is_some_and(|until| now < until),
        }
    }
}

/// This replica's leadership: the fence and its terms.
#[derive(Debug)]
pub struct Leadership {
    state: Mutex<State>,
}

impl Default for Leadership {
    /// Without leader election: leading from the start, in term 1.
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                mode: Mode::Always,
                term: 1,
                held_until: None,
                taken: false,
                stepped_down: false,
                reported: None,
            }),
        }
    }
}

impl Leadership {
    /// With leader election: not leading until a renewal is observed; each renewal keeps the
    /// fence open for `validity`.
    pub fn elected(validity: Duration) -> Self {
        let leadership = Self::default();
        leadership.elect(validity);
        leadership
    }

    /// Switches to leader election (before anything has written): not leading until a
    /// renewal is observed.
    pub fn elect(&self, validity: Duration) {
        let mut state = lock(&self.state);
        state.mode = Mode::Elected { validity };
        state.held_until = None;
        state.term = 0;
        state.reported = None;
    }

    pub fn is_elected(&self) -> bool {
        matches!(lock(&self.state).mode, Mode::Elected { .. })
    }

    /// Takes in what an answer about the Lease said, received at `now`.
    pub fn observe(&self, reading: LeaseReading, now: Instant) {
        let mut state = lock(&self.state);
        let Mode::Elected { validity } = state.mode else {
            return;
        };
        if state.stepped_down {
            return;
        }
        match reading {
            LeaseReading::Renewed { renewed_at } => {
                let until = renewed_at + validity;
                if until <= now {
                    // An answer that took longer than the validity (or a process that was
                    // paused meanwhile) proves nothing about the present.
                    return;
                }
                if !state.leading(now) {
                    state.term += 1;
                    state.taken = false;
                    state.held_until = Some(until);
                } else if state.held_until.is_none_or(|held| held < until) {
                    state.held_until = Some(until);
                }
            }
            LeaseReading::HeldByOther => {
                if state.held_until.take().is_some() {
                    state.taken = true;
                }
            }
        }
    }

    /// The term to write under, if this replica may write at `now`.
    pub fn permit(&self, now: Instant) -> Result<Term, Refused> {
        let state = lock(&self.state);
        if state.leading(now) {
            Ok(state.term)
        } else if state.held_until.is_some() {
            Err(Refused::Expired)
        } else {
            Err(Refused::NotLeader)
        }
    }

    /// Whether a pass begun in `term` may still write at `now`.
    pub fn permit_term(&self, term: Term, now: Instant) -> Result<(), Refused> {
        let current = self.permit(now)?;
        if current == term { Ok(()) } else { Err(Refused::TermEnded { started: term }) }
    }

    /// When the fence closes unless renewed; `None` while not leading or without election.
    pub fn deadline(&self) -> Option<Instant> {
        lock(&self.state).held_until
    }

    /// Stops leading for good: every later write is refused and renewals are ignored.
    pub fn step_down(&self) {
        let mut state = lock(&self.state);
        state.stepped_down = true;
        state.held_until = None;
    }

    /// The changes since the last poll, losses first: what the shell logs and acts on.
    pub fn poll(&self, now: Instant) -> Vec<Change> {
        let mut state = lock(&self.state);
        let current = state.leading(now).then_some(state.term);
        let mut changes = Vec::new();
        if current == state.reported {
            return changes;
        }
        if let Some(term) = state.reported {
            let reason = if state.stepped_down {
                LossReason::SteppedDown
            } else if state.taken && current.is_none() {
                LossReason::Taken
            } else {
                LossReason::Expired
            };
            changes.push(Change::Lost { term, reason });
        }
        if let Some(term) = current {
            changes.push(Change::Acquired { term });
        }
        state.reported = current;
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALIDITY: Duration = Duration::from_secs(10);

    fn at(base: Instant, millis: u64) -> Instant {
        base + Duration::from_millis(millis)
    }

    #[test]
    fn without_election_every_write_is_permitted_until_stepping_down() {
        let leadership = Leadership::default();
        let now = Instant::now();
        let term = leadership.permit(now).expect("leads");
        assert_eq!(leadership.permit_term(term, now + Duration::from_secs(3600)), Ok(()));
        assert_eq!(leadership.poll(now), vec![Change::Acquired { term }]);
        leadership.step_down();
        assert_eq!(leadership.permit(now), Err(Refused::NotLeader));
        assert_eq!(
            leadership.poll(now),
            vec![Change::Lost { term, reason: LossReason::SteppedDown }]
        );
    }

    #[test]
    fn an_elected_replica_writes_only_after_a_renewal_and_until_its_validity_ends() {
        let leadership = Leadership::elected(VALIDITY);
        let base = Instant::now();
        assert_eq!(leadership.permit(base), Err(Refused::NotLeader));
        assert!(leadership.poll(base).is_empty());

        leadership.observe(LeaseReading::Renewed { renewed_at: base }, at(base, 40));
        let term = leadership.permit(at(base, 50)).expect("leads after the renewal");
        assert_eq!(leadership.poll(at(base, 50)), vec![Change::Acquired { term }]);
        assert_eq!(leadership.permit_term(term, at(base, 9_999)), Ok(()));
        // The fence is measured from the renewal, not from when its answer arrived.
        assert_eq!(leadership.permit(at(base, 10_000)), Err(Refused::Expired));
        assert_eq!(leadership.deadline(), Some(at(base, 10_000)));
        assert_eq!(
            leadership.poll(at(base, 10_000)),
            vec![Change::Lost { term, reason: LossReason::Expired }]
        );
    }

    #[test]
    fn renewals_extend_the_term_and_never_shorten_it() {
        let leadership = Leadership::elected(VALIDITY);
        let base = Instant::now();
        leadership.observe(LeaseReading::Renewed { renewed_at: base }, base);
        let term = leadership.permit(base).expect("leads");
        leadership.observe(LeaseReading::Renewed { renewed_at: at(base, 3_000) }, at(base, 3_010));
        // An answer to an older request arriving late must not pull the deadline back.
        leadership.observe(LeaseReading::Renewed { renewed_at: at(base, 1_000) }, at(base, 3_020));
        assert_eq!(leadership.deadline(), Some(at(base, 13_000)));
        assert_eq!(leadership.permit_term(term, at(base, 12_999)), Ok(()));
        leadership.poll(base);
        assert!(leadership.poll(at(base, 12_000)).is_empty(), "same term, nothing to report");
    }

    #[test]
    fn a_paused_leader_finds_its_fence_closed_and_a_late_answer_does_not_reopen_it() {
        // SIGSTOP after the renewal was sent; SIGCONT 30 s later, when the answer is read.
        let leadership = Leadership::elected(VALIDITY);
        let base = Instant::now();
        leadership.observe(LeaseReading::Renewed { renewed_at: base }, at(base, 5));
        let term = leadership.permit(at(base, 5)).expect("leads");
        leadership.observe(LeaseReading::Renewed { renewed_at: at(base, 3_000) }, at(base, 33_000));
        assert_eq!(leadership.permit(at(base, 33_000)), Err(Refused::Expired));
        assert_eq!(leadership.permit_term(term, at(base, 33_000)), Err(Refused::Expired));
    }

    #[test]
    fn another_holder_closes_the_fence_at_once() {
        let leadership = Leadership::elected(VALIDITY);
        let base = Instant::now();
        leadership.observe(LeaseReading::Renewed { renewed_at: base }, base);
        let term = leadership.permit(base).expect("leads");
        leadership.poll(base);
        leadership.observe(LeaseReading::HeldByOther, at(base, 100));
        assert_eq!(leadership.permit(at(base, 100)), Err(Refused::NotLeader));
        assert_eq!(
            leadership.poll(at(base, 100)),
            vec![Change::Lost { term, reason: LossReason::Taken }]
        );
    }

    #[test]
    fn leading_again_starts_a_new_term_that_refuses_passes_of_the_old_one() {
        let leadership = Leadership::elected(VALIDITY);
        let base = Instant::now();
        leadership.observe(LeaseReading::Renewed { renewed_at: base }, base);
        let first = leadership.permit(base).expect("leads");
        leadership.poll(base);
        // The fence lapses (renewals failed), then a renewal gets through.
        leadership
            .observe(LeaseReading::Renewed { renewed_at: at(base, 12_000) }, at(base, 12_050));
        let second = leadership.permit(at(base, 12_100)).expect("leads again");
        assert_ne!(first, second);
        assert_eq!(
            leadership.permit_term(first, at(base, 12_100)),
            Err(Refused::TermEnded { started: first })
        );
        assert_eq!(
            leadership.poll(at(base, 12_100)),
            vec![
                Change::Lost { term: first, reason: LossReason::Expired },
                Change::Acquired { term: second }
            ]
        );
    }

    #[test]
    fn a_stale_renewal_proves_nothing() {
        let leadership = Leadership::elected(VALIDITY);
        let base = Instant::now();
        leadership.observe(LeaseReading::Renewed { renewed_at: base }, at(base, 10_000));
        assert_eq!(leadership.permit(at(base, 10_000)), Err(Refused::NotLeader));
        assert!(leadership.poll(at(base, 10_000)).is_empty());
    }

    #[test]
    fn after_stepping_down_renewals_are_ignored() {
        let leadership = Leadership::elected(VALIDITY);
        let base = Instant::now();
        leadership.observe(LeaseReading::Renewed { renewed_at: base }, base);
        let term = leadership.permit(base).expect("leads");
        leadership.poll(base);
        leadership.step_down();
        leadership.observe(LeaseReading::Renewed { renewed_at: at(base, 10) }, at(base, 20));
        assert_eq!(leadership.permit(at(base, 20)), Err(Refused::NotLeader));
        assert_eq!(
            leadership.poll(at(base, 20)),
            vec![Change::Lost { term, reason: LossReason::SteppedDown }]
        );
    }

    #[test]
    fn a_lost_term_is_reported_once_and_a_poisoned_lock_is_taken_over() {
        let leadership = std::sync::Arc::new(Leadership::elected(VALIDITY));
        let base = Instant::now();
        leadership.observe(LeaseReading::Renewed { renewed_at: base }, base);
        leadership.poll(base);
        let poisoner = leadership.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.state.lock();
            panic!("poison the lock");
        })
        .join();
        assert_eq!(leadership.poll(at(base, 20_000)).len(), 1);
        assert!(leadership.poll(at(base, 20_000)).is_empty());
    }

    #[test]
    fn each_loss_reason_has_its_own_readable_message() {
        // The shell logs the reason when leadership is lost; an operator reading the log
        // must be able to tell an expiry from a takeover from a shutdown.
        let reasons = [LossReason::Expired, LossReason::Taken, LossReason::SteppedDown];
        for reason in reasons {
            assert!(!reason.as_str().trim().is_empty(), "{reason:?} has no message");
        }
        let messages: std::collections::BTreeSet<&str> =
            reasons.iter().map(|reason| reason.as_str()).collect();
        assert_eq!(messages.len(), reasons.len(), "messages must differ: {messages:?}");
    }

    #[test]
    fn is_elected_tells_whether_leader_election_is_in_use() {
        let leadership = Leadership::default();
        assert!(!leadership.is_elected(), "without election this replica simply leads");
        leadership.elect(VALIDITY);
        assert!(leadership.is_elected());
        assert!(Leadership::elected(VALIDITY).is_elected());
    }
}
