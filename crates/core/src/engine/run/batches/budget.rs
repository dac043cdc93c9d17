//! The in-flight budget across batches: which rollouts of a run outside the running batch
//! still hold a place (timed out but rolling, restarted by a pass whose record was lost, or
//! sent but never confirmed), and which Deployments another run is rolling out.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

use super::RunContext;
use crate::crd::{ServiceRefreshStatus, ServiceResult};
use crate::engine::observed::DeploymentSnapshot;
use crate::engine::run::Pass;
use crate::engine::{ObjectKey, RunId, plan, readiness};

/// How far behind the API server the watch cache may plausibly lag. A restart whose patch
/// was sent but never confirmed (its response or the status write recording it was lost)
/// may be rolling although the cache does not show it yet; once its batch has ended, it keeps
/// a place in the in-flight budget this long, or for as long as it is seen rolling.
pub const UNCONFIRMED_RESTART_GRACE: SignedDuration = SignedDuration::from_secs(30);
impl Pass<'_> {
    /// Rollouts of this run outside the batch at `position` that still hold a place in the
    /// in-flight budget: restarted, still rolling, and either timed out in an earlier batch or
    /// restarted by a pass whose status write was lost (a crash after it moved on to a later
    /// batch). Each is awaited, so its completion frees the place at once.
    pub(super) fn rollouts_in_flight_elsewhere(
        &mut self,
        status: &ServiceRefreshStatus,
        position: usize,
        run: &RunContext,
    ) -> usize {
        let mut in_flight = 0;
        for (index, batch) in status.batches.iter().enumerate() {
            if index == position {
                continue;
            }
            for service in &batch.services {
                let key = plan::service_key(service, self.own_namespace);
                let still_rolling = match (service.generation, service.result) {
                    (Some(generation), Some(ServiceResult::TimedOut)) => {
                        self.observation.cluster.deployment(&key).is_some_and(|deployment| {
                            readiness::verdict(&deployment, generation).is_waiting()
                        })
                    }
                    (None, Some(ServiceResult::TimedOut)) if service.uid.is_some() => {
                        self.unconfirmed_restart_in_flight(&key, batch.end_time.as_ref(), run)
                    }
                    // Outside the running batch, only batches not started have services
                    // without a result.
                    (None, None) => {
                        self.observation.cluster.deployment(&key).is_some_and(|deployment| {
                            marked_by(&deployment, &run.id, &run.record_annotation)
                                && readiness::verdict(&deployment, deployment.generation())
                                    .is_waiting()
                        })
                    }
                    _ => false,
                };
                if still_rolling {
                    in_flight += 1;
                    self.awaiting.insert(key);
                }
            }
        }
        in_flight
    }

    /// Whether a restart sent in a batch that timed out before it was confirmed may still be
    /// rolling: seen rolling with this run's mark, or not seen at all and the cache not yet
    /// trustworthy (within [`UNCONFIRMED_RESTART_GRACE`] of the batch's end).
    fn unconfirmed_restart_in_flight(
        &mut self,
        key: &ObjectKey,
        batch_end: Option<&MicroTime>,
        run: &RunContext,
    ) -> bool {
        let Some(deployment) = self.observation.cluster.deployment(key) else {
            return false;
        };
        if marked_by(&deployment, &run.id, &run.record_annotation) {
            return readiness::verdict(&deployment, deployment.generation()).is_waiting();
        }
        let trusted_from = batch_end
            .and_then(|end| end.0.checked_add(UNCONFIRMED_RESTART_GRACE).ok())
            .unwrap_or(Timestamp::MIN);
        if self.now >= trusted_from {
            return false;
        }
        self.wake_no_later_than(trusted_from);
        true
    }
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
