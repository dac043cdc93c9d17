//! The ways a resource waits for something other than its own rollouts, and the one record
//! of it in the status (`status.waiting`). Every way to wait is a [`WaitReason`]: a stable
//! word that is at once the `Reconciling` condition's reason, the reason of the Event raised
//! when the wait begins, and the label of the operator's waiting metrics. A pass states its
//! wait afresh each time ([`Waiting::hold`]); a wait not stated again has ended.

use std::fmt;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::crd::WaitingStatus;

/// Why a resource waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WaitReason {
    /// A pod this run restarted cannot be scheduled: no further restart starts, and the
    /// run's effective batch size shrinks.
    WaitingForCapacity,
    /// A service's PodDisruptionBudget allows no disruption now, or another service under
    /// the same budget is in flight.
    WaitingForDisruptionBudget,
    /// The canary batch is ready and must stay ready for the soak time.
    CanarySoak,
    /// The schedule's maintenance windows are closed.
    OutsideWindow,
    /// A health gate check fails after a batch.
    HealthGateFailing,
    /// A service was restarted by this operator less than the minimum interval ago.
    RestartInterval,
}

impl WaitReason {
    /// Every reason, for metrics that show each one from zero.
    pub const ALL: [Self; 6] = [
        Self::WaitingForCapacity,
        Self::WaitingForDisruptionBudget,
        Self::CanarySoak,
        Self::OutsideWindow,
        Self::HealthGateFailing,
        Self::RestartInterval,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WaitingForCapacity => "WaitingForCapacity",
            Self::WaitingForDisruptionBudget => "WaitingForDisruptionBudget",
            Self::CanarySoak => "CanarySoak",
            Self::OutsideWindow => "OutsideWindow",
            Self::HealthGateFailing => "HealthGateFailing",
            Self::RestartInterval => "RestartInterval",
        }
    }

    pub fn parse(reason: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|candidate| candidate.as_str() == reason)
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One wait, as a pass states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wait {
    pub reason: WaitReason,
    /// What it waits for, in words a person acts on.
    pub message: String,
    /// When it ends by itself, if known; the pass wakes then.
    pub until: Option<Timestamp>,
}

/// A pass's view of the resource's wait: the one the status held when the pass began, and
/// the one the pass states. The first wait stated in a pass wins: the earliest check in a
/// pass is the one that blocks.
#[derive(Debug, Default)]
pub struct Waiting {
    before: Option<WaitingStatus>,
    now: Option<WaitingStatus>,
    began: Option<Wait>,
}

impl Waiting {
    /// Starts a pass over the wait `before` held.
    pub fn new(before: Option<WaitingStatus>) -> Self {
        Self { before, now: None, began: None }
    }

    /// States that the resource waits, now, at `now`. Returns true when the pass states a
    /// wait for the first time and it begins here (the status held none, or another reason),
    /// which deserves an Event.
    pub fn hold(&mut self, wait: Wait, now: Timestamp) -> bool {
        if self.now.is_some() {
            return false;
        }
        let reason = wait.reason.as_str();
        let continuing = self.before.as_ref().filter(|before| before.reason == reason);
        let since = continuing.map_or(Time(now), |before| before.since.clone());
        self.now = Some(WaitingStatus {
            reason: reason.to_owned(),
            message: wait.message.clone(),
            since,
            until: wait.until.map(Time),
        });
        let begins = continuing.is_none();
        if begins {
            self.began = Some(wait);
        }
        begins
    }

    /// The wait this pass stated, if any.
    pub fn current(&self) -> Option<&WaitingStatus> {
        self.now.as_ref()
    }

    /// The wait that began in this pass, if one did.
    pub fn began(&self) -> Option<&Wait> {
        self.began.as_ref()
    }

    /// What the status records: the stated wait, or none.
    /// Drops this pass's wait: a run that ended in the pass waits for nothing, whatever held
    /// it earlier in the pass.
    pub fn forget(&mut self) {
        self.now = None;
        self.began = None;
    }

    pub fn into_status(self) -> Option<WaitingStatus> {
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("a valid time")
    }

    fn capacity(message: &str) -> Wait {
        Wait { reason: WaitReason::WaitingForCapacity, message: message.to_owned(), until: None }
    }

    #[test]
    fn a_wait_keeps_its_start_while_its_reason_holds_and_its_message_follows_the_cluster() {
        let mut first = Waiting::new(None);
        assert!(first.hold(capacity("0/3 nodes are available: 3 Insufficient cpu."), at(0)));
        let recorded = first.into_status();

        let mut second = Waiting::new(recorded);
        assert!(!second.hold(capacity("0/3 nodes are available: 2 Insufficient cpu."), at(9)));
        let status = second.into_status().expect("still waiting");
        assert_eq!(status.since, Time(at(0)));
        assert_eq!(status.message, "0/3 nodes are available: 2 Insufficient cpu.");
    }

    #[test]
    fn a_new_reason_is_a_new_wait_and_an_unstated_one_has_ended() {
        let mut first = Waiting::new(None);
        first.hold(capacity("full"), at(0));
        let mut second = Waiting::new(first.into_status());
        let window = Wait {
            reason: WaitReason::OutsideWindow,
            message: "the next window opens at 22:00".to_owned(),
            until: Some(at(3600)),
        };
        assert!(second.hold(window, at(5)));
        let status = second.into_status().expect("waiting");
        assert_eq!((status.reason.as_str(), status.since.clone()), ("OutsideWindow", Time(at(5))));
        assert_eq!(status.until, Some(Time(at(3600))));

        let third = Waiting::new(Some(status));
        assert_eq!(third.into_status(), None, "a wait no pass states again is over");
    }

    #[test]
    fn a_wait_begins_once_and_a_forgotten_one_leaves_nothing() {
        let mut first = Waiting::new(None);
        first.hold(capacity("full"), at(0));
        assert_eq!(first.began(), Some(&capacity("full")));
        // A run that ends in the pass waits for nothing, whatever held it earlier.
        first.forget();
        assert_eq!((first.current(), first.began()), (None, None));
        assert_eq!(first.into_status(), None);

        let mut held = Waiting::new(None);
        held.hold(capacity("full"), at(0));
        let mut continuing = Waiting::new(held.into_status());
        continuing.hold(capacity("still full"), at(5));
        assert_eq!(continuing.began(), None, "the wait began in an earlier pass");
    }

    #[test]
    fn the_first_wait_of_a_pass_wins() {
        let mut waiting = Waiting::new(None);
        assert!(waiting.hold(capacity("full"), at(0)));
        let gate = Wait {
            reason: WaitReason::HealthGateFailing,
            message: "errors".to_owned(),
            until: None,
        };
        assert!(!waiting.hold(gate, at(0)));
        assert_eq!(waiting.current().map(|w| w.reason.as_str()), Some("WaitingForCapacity"));
    }

    #[test]
    fn reasons_read_back_from_their_words() {
        for reason in WaitReason::ALL {
            assert_eq!(WaitReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(WaitReason::parse("Running"), None);
    }
}
