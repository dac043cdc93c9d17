//! Capacity-aware pacing in the run loop: each pass looks at the run's pending pods
//! ([`Capacity`]), records a block as the `WaitingForCapacity` wait, and keeps the run's
//! effective batch size in `status.run.pacing`, announcing every change with an Event. The
//! size bounds both the batches cut and the rollouts in flight; while blocked, no restart
//! starts at all.

use super::RunContext;
use crate::crd::{BatchPhase, PacingStatus, ServiceRefreshStatus};
use crate::engine::capacity::{self, Capacity};
use crate::engine::run::Pass;
use crate::engine::spec::ValidSpec;
use crate::engine::transitions::{EventReason, EventSeverity};
use crate::engine::waits::{Wait, WaitReason};

/// The run's pacing as of this pass.
pub(super) struct Pace {
    enabled: bool,
    /// Why no restart may start now: a pod of this run waits for room past the grace.
    blocked: Option<String>,
    size: usize,
    limit: usize,
}

impl Pace {
    /// Looks at the run's pending pods: a block that begins halves the effective size, and
    /// any block is the pass's wait.
    pub fn observe(
        pass: &mut Pass,
        status: &mut ServiceRefreshStatus,
        spec: &ValidSpec,
        run: &RunContext,
    ) -> Self {
        let limit = spec.batch_size.get();
        let mut pace = Pace { enabled: spec.capacity_aware, blocked: None, size: limit, limit };
        if !pace.enabled {
            if let Some(record) = status.run.as_mut() {
                record.pacing = None;
            }
            return pace;
        }
        let pods = pass.observation.cluster.pending_pods();
        let capacity = Capacity::of_run(&pods, &run.id, pass.now, spec.batch_timeout);
        if let Some(at) = capacity.recheck_at {
            pass.out.wake_no_later_than(at);
        }
        let current_batch = status
            .batches
            .iter()
            .rev()
            .find(|batch| batch.phase == BatchPhase::Running)
            .or(status.batches.last())
            .map(|batch| batch.index);
        let Some(record) = status.run.as_mut() else {
            return pace;
        };
        let mut pacing = record
            .pacing
            .clone()
            .unwrap_or(PacingStatus { effective_batch_size: limit as u32, ..Default::default() });
        pace.size = (pacing.effective_batch_size as usize).clamp(1, limit);
        pace.blocked = capacity.message();
        if let Some(message) = &pace.blocked {
            if !pacing.capacity_blocked {
                let before = pace.size;
                pace.size = capacity::shrunk(before);
                announce(pass, before, pace.size, &format!("a pod waits for room: {message}"));
            }
            pacing.capacity_blocked = true;
            pacing.blocked_in_batch = current_batch.or(pacing.blocked_in_batch);
        } else {
            pacing.capacity_blocked = false;
        }
        pacing.effective_batch_size = pace.size as u32;
        record.pacing = (pace.size < limit || pacing.capacity_blocked).then_some(pacing);
        if let Some(message) = pace.blocked.clone() {
            let wait = Wait {
                reason: WaitReason::WaitingForCapacity,
                message: format!(
                    "no restart starts until the scheduler places it; effective batch size \
                     {}: {message}",
                    pace.size
                ),
                until: None,
            };
            pass.wait(status, wait);
        }
        pace
    }

    /// How many services the next batch takes.
    pub fn batch_size(&self) -> usize {
        self.size
    }

    /// How many of the run's rollouts may be in flight now, and why none may start.
    pub fn in_flight_limit(&self) -> (usize, Option<&str>) {
        match &self.blocked {
            Some(message) => (0, Some(message)),
            None => (self.size, None),
        }
    }

    /// Whether a new batch must wait for room.
    pub fn holds_new_batches(&self) -> bool {
        self.blocked.is_some()
    }

    /// After batch `index` completed: one larger, unless a pod was blocked during it.
    pub fn batch_completed(
        &mut self,
        pass: &mut Pass,
        status: &mut ServiceRefreshStatus,
        index: u32,
    ) {
        if !self.enabled || self.blocked.is_some() {
            return;
        }
        let Some(pacing) = status.run.as_mut().and_then(|record| record.pacing.as_mut()) else {
            return;
        };
        if pacing.blocked_in_batch.is_some_and(|blocked| blocked >= index) {
            return;
        }
        let before = self.size;
        self.size = capacity::grown(before, self.limit);
        pacing.effective_batch_size = self.size as u32;
        if self.size >= self.limit
            && let Some(record) = status.run.as_mut()
        {
            record.pacing = None;
        }
        announce(
            pass,
            before,
            self.size,
            &format!("batch {index} finished with no pod waiting for room"),
        );
    }
}

/// An Event for each change of the effective batch size.
fn announce(pass: &mut Pass, before: usize, after: usize, why: &str) {
    if before != after {
        pass.out.notice(
            EventSeverity::Normal,
            EventReason::BatchSizeChanged,
            format!("Effective batch size {before} -> {after}: {why}"),
        );
    }
}
