//! The in-flight budget: never more than `batchSize` of a run's rollouts at once. Besides
//! the running batch's own, rollouts elsewhere hold a place: timed out but still rolling,
//! sent but never confirmed (within the cache lag the engine tolerates), or restarted by a
//! pass whose record was lost (a Deployment of a later batch that already carries this run).
//! Also which Deployments another run is rolling out, which wait uncounted.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

use super::RunContext;
use crate::crd::{ServiceRefreshStatus, ServiceResult, ServiceStatus};
use crate::engine::observed::DeploymentSnapshot;
use crate::engine::run::Pass;
use crate::engine::{ObjectKey, RunId, plan, readiness, results};

/// How far behind the API server the watch cache may plausibly lag. A restart whose patch
/// was sent but never confirmed (its response or the status write recording it was lost)
/// may be rolling although the cache does not show it yet; once its batch has ended, it keeps
/// a place in the in-flight budget this long, or for as long as it is seen rolling.
pub const UNCONFIRMED_RESTART_GRACE: SignedDuration = SignedDuration::from_secs(30);

/// Places taken in the in-flight budget out of the run's effective batch size (`batchSize`
/// unless capacity-aware pacing lowered it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct InFlight {
    limit: usize,
    used: usize,
    /// Why no restart may start however many places are free: a pod of the run waits for
    /// room on the nodes.
    capacity_hold: Option<String>,
}

impl InFlight {
    pub fn new(limit: usize, used: usize) -> Self {
        Self { limit, used, capacity_hold: None }
    }

    /// The same budget, closed to new restarts while `hold` says why.
    pub fn held_for_capacity(mut self, hold: Option<&str>) -> Self {
        self.capacity_hold = hold.map(str::to_owned);
        self
    }

    /// Why no restart may start now, beyond the count.
    pub fn capacity_hold(&self) -> Option<&str> {
        self.capacity_hold.as_deref()
    }

    /// Whether no place is left for another restart.
    pub fn full(&self) -> bool {
        self.used >= self.limit
    }

    pub fn used(&self) -> usize {
        self.used
    }

    /// Takes a place for a rollout that starts or goes on.
    pub fn take(&mut self) {
        self.used += 1;
    }
}

/// Rollouts of this run outside the batch at `position` that hold a place in the budget.
/// Each is awaited, so its end frees the place at once.
pub(super) fn rollouts_in_flight_elsewhere(
    pass: &mut Pass,
    status: &ServiceRefreshStatus,
    position: usize,
    run: &RunContext,
) -> Vec<ObjectKey> {
    let mut in_flight = Vec::new();
    for (index, batch) in status.batches.iter().enumerate() {
        if index == position {
            continue;
        }
        for row in &batch.services {
            let (holds, trusted_from) = holds_place(pass, row, batch.end_time.as_ref(), run);
            if let Some(at) = trusted_from {
                pass.out.wake_no_later_than(at);
            }
            if holds {
                let key = plan::service_key(row, pass.own_namespace);
                pass.out.awaiting.insert(key.clone());
                in_flight.push(key);
            }
        }
    }
    in_flight.extend(lost_restarts_in_flight(pass, status, run));
    in_flight
}

/// Whether a completed batch's row still holds a place: a timed-out rollout still rolling,
/// or a restart that timed out unconfirmed while the cache cannot be trusted to show it
/// (then also when it can be: the time to look again).
pub(super) fn holds_place(
    pass: &Pass,
    row: &ServiceStatus,
    batch_end: Option<&MicroTime>,
    run: &RunContext,
) -> (bool, Option<Timestamp>) {
    if row.result != Some(ServiceResult::TimedOut) {
        return (false, None);
    }
    let key = plan::service_key(row, pass.own_namespace);
    let deployment = pass.observation.cluster.deployment(&key);
    match (row.generation, deployment) {
        (Some(generation), Some(deployment)) => {
            (readiness::verdict(&deployment, generation).is_waiting(), None)
        }
        (None, Some(deployment)) if row.uid.is_some() => {
            if marked_by(&deployment, &run.id, &run.record_annotation) {
                let rolling = readiness::verdict(&deployment, deployment.generation()).is_waiting();
                return (rolling, None);
            }
            let trusted_from = batch_end
                .and_then(|end| end.0.checked_add(UNCONFIRMED_RESTART_GRACE).ok())
                .unwrap_or(Timestamp::MIN);
            if pass.now >= trusted_from {
                return (false, None);
            }
            (true, Some(trusted_from))
        }
        _ => (false, None),
    }
}

/// Services not in a batch yet that already carry this run and are rolling: restarted by a
/// pass whose status write was lost. Only a status written by an older operator or restored
/// from a backup can look like this, since every restart is on record before it is sent.
fn lost_restarts_in_flight(
    pass: &mut Pass,
    status: &ServiceRefreshStatus,
    run: &RunContext,
) -> Vec<ObjectKey> {
    let Some(plan) = pass.plan_of(status) else {
        return Vec::new();
    };
    let cursor = status.run.as_ref().map_or(0, |run| run.next_position);
    let resulted = results::resulted_positions(&status.results);
    let cluster = pass.observation.cluster;
    let rolling: Vec<_> = (cursor..plan.end())
        .filter(|position| !resulted.contains(*position))
        .filter_map(|position| plan.get(position))
        .filter(|entry| {
            cluster.deployment(&entry.key).is_some_and(|deployment| {
                marked_by(&deployment, &run.id, &run.record_annotation)
                    && readiness::verdict(&deployment, deployment.generation()).is_waiting()
            })
        })
        .map(|entry| entry.key.clone())
        .collect();
    pass.out.awaiting.extend(rolling.iter().cloned());
    rolling
}

/// Whether the patch of run `run` (recorded under `record_annotation`) reached the
/// Deployment, whatever the status recorded.
pub(super) fn marked_by(
    deployment: &DeploymentSnapshot,
    run: &str,
    record_annotation: &str,
) -> bool {
    deployment.restarted_by.as_deref() == Some(run)
        || deployment.run_record(record_annotation) == Some(run)
}

/// The run rolling `deployment` out right now, when that is another run than `run`: its
/// pod template names a run, and the rollout of its current generation has not ended.
pub(super) fn rolled_out_by_another_run(
    deployment: &DeploymentSnapshot,
    run: &str,
) -> Option<RunId> {
    let other: RunId = deployment.restarted_by.as_deref()?.parse().ok()?;
    let rolling = readiness::verdict(deployment, deployment.generation()).is_waiting();
    (other.to_string() != run && rolling).then_some(other)
}

#[cfg(test)]
mod tests {
    use super::InFlight;

    #[test]
    fn the_budget_is_full_at_batch_size() {
        let mut budget = InFlight::new(2, 1);
        assert!(!budget.full());
        budget.take();
        assert!(budget.full());
        assert_eq!(budget.used(), 2);
        assert!(InFlight::new(1, 3).full(), "places held elsewhere may exceed the limit");
    }
}
