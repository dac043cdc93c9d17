//! What a pass produces besides the status, gathered in one place that every part of the
//! state machine writes to: the plan objects and restarts to send, what changed, when to
//! look again, which workloads to hear about, and whether a run slot is wanted.

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::batches::DeferredResults;
use crate::crd::{ServiceRefreshPlan, ServiceRefreshStatus};
use crate::engine::transitions::{EventReason, EventSeverity, Transition};
use crate::engine::{Decision, ObjectKey, Restart};

#[derive(Default)]
pub(super) struct Outputs {
    pub plan_objects: Vec<ServiceRefreshPlan>,
    pub restarts: Vec<Restart>,
    pub transitions: Vec<Transition>,
    pub wake_at: Option<Timestamp>,
    pub wants_run_slot: bool,
    pub awaiting: BTreeSet<ObjectKey>,
    pub wants_health_check: bool,
    /// Results reached in the running batch that may wait for a later write.
    pub deferred: Option<DeferredResults>,
}

impl Outputs {
    pub fn notice(&mut self, severity: EventSeverity, reason: EventReason, message: String) {
        self.transitions.push(Transition::notice(severity, reason, message));
    }

    /// Asks for another pass no later than `at`.
    pub fn wake_no_later_than(&mut self, at: Timestamp) {
        self.wake_at = Some(self.wake_at.map_or(at, |known| known.min(at)));
    }

    pub fn into_decision(self, status: ServiceRefreshStatus) -> Decision {
        Decision {
            status,
            plan_objects: self.plan_objects,
            restarts: self.restarts,
            transitions: self.transitions,
            wake_at: self.wake_at,
            wants_run_slot: self.wants_run_slot,
            awaiting: self.awaiting,
            wants_health_check: self.wants_health_check,
        }
    }
}
