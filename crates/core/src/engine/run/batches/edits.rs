//! Spec edits during a run: they reach only the batches not started yet.

use super::budget::marked_by;
use crate::crd::BatchStatus;
use crate::crd::{BatchPhase, ServiceRefreshStatus, ServiceResult, ServiceStatus};
use crate::engine::run::{MESSAGE_EXCLUDED, Pass};
use crate::engine::spec::ValidSpec;
use crate::engine::transitions::Transition;
use crate::engine::{RunId, plan};

impl Pass<'_> {
    /// Spec edits during a run reach only the batches not started yet: newly excluded
    /// Deployments there are skipped, and a new batchSize re-cuts them in the same order.
    pub(super) fn apply_spec_edits(&mut self, status: &mut ServiceRefreshStatus, spec: &ValidSpec) {
        let first_pending = status
            .batches
            .iter()
            .rposition(|batch| batch.phase != BatchPhase::Pending)
            .map_or(0, |position| position + 1);
        if first_pending >= status.batches.len() {
            return;
        }
        let run = status.run.as_ref().map(|run| run.id.clone()).unwrap_or_default();
        let record = run.parse::<RunId>().map(|id| id.record_annotation()).unwrap_or_default();
        let cluster = self.observation.cluster;
        let own_namespace = self.own_namespace;
        // A crash can lose the record of a batch whose restarts went out: a Deployment
        // carrying this run was restarted, so excluding it now would hide a rollout in flight.
        let restarted_by_this_run = |service: &ServiceStatus| {
            cluster
                .deployment(&plan::service_key(service, own_namespace))
                .is_some_and(|deployment| marked_by(&deployment, &run, &record))
        };
        for batch in &mut status.batches[first_pending..] {
            for service in &mut batch.services {
                if service.result.is_none()
                    && spec.exclude.contains(&service.name)
                    && !restarted_by_this_run(service)
                {
                    service.result = Some(ServiceResult::Skipped);
                    service.message = Some(MESSAGE_EXCLUDED.to_owned());
                    self.transitions.push(Transition::ServiceFinished {
                        run: run.clone(),
                        batch: batch.index,
                        deployment: plan::service_key(service, self.own_namespace),
                        result: ServiceResult::Skipped,
                        message: service.message.clone(),
                    });
                }
            }
        }
        let first_index = u32::try_from(first_pending + 1).unwrap_or(u32::MAX);
        let pending = &status.batches[first_pending..];
        // Checking the shape first spares re-cutting (and cloning) thousands of services on
        // every pass of a large run.
        let already_cut = cut_as(pending, first_index, spec.batch_size);
        if !already_cut {
            let services: Vec<ServiceStatus> =
                pending.iter().flat_map(|batch| batch.services.iter().cloned()).collect();
            let recut = plan::cut_batches(&services, spec.batch_size, first_index);
            status.batches.truncate(first_pending);
            status.batches.extend(recut);
        }
    }
}

/// Whether `pending` (numbered from `first_index`) is cut in batches of `batch_size`: each
/// full, but the last, which may be smaller, and none started.
fn cut_as(pending: &[BatchStatus], first_index: u32, batch_size: usize) -> bool {
    pending.iter().zip(first_index..).enumerate().all(|(position, (batch, index))| {
        let size = batch.services.len();
        let size_fits = if position + 1 == pending.len() {
            (1..=batch_size).contains(&size)
        } else {
            size == batch_size
        };
        batch.index == index && batch.start_time.is_none() && batch.end_time.is_none() && size_fits
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batches(first_index: u32, sizes: &[usize]) -> Vec<BatchStatus> {
        let batches: Vec<serde_json::Value> = sizes
            .iter()
            .zip(first_index..)
            .map(|(size, index)| {
                let services: Vec<serde_json::Value> = (0..*size)
                    .map(|n| serde_json::json!({"name": format!("s{index}-{n}")}))
                    .collect();
                serde_json::json!({"index": index, "phase": "Pending", "services": services})
            })
            .collect();
        serde_json::from_value(serde_json::Value::Array(batches)).expect("batches")
    }

    #[test]
    fn pending_batches_are_cut_when_full_but_the_last() {
        assert!(cut_as(&batches(2, &[3, 3, 1]), 2, 3));
        assert!(cut_as(&batches(2, &[3, 3, 3]), 2, 3));
        assert!(cut_as(&batches(1, &[2]), 1, 3), "a single short batch");
        assert!(!cut_as(&batches(2, &[3, 1, 3]), 2, 3), "a short batch before the last");
        assert!(!cut_as(&batches(2, &[3, 4]), 2, 3), "a last batch above the size");
        assert!(!cut_as(&batches(2, &[3, 0]), 2, 3), "an empty last batch");
        assert!(!cut_as(&batches(2, &[2, 2]), 2, 3), "another size");
        assert!(!cut_as(&batches(3, &[3, 3]), 2, 3), "numbered from elsewhere");
        let mut started = batches(2, &[3, 3]);
        started[1].start_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            jiff::Timestamp::UNIX_EPOCH,
        ));
        assert!(!cut_as(&started, 2, 3), "a started batch");
        let mut ended = batches(2, &[3]);
        ended[0].end_time = started[1].start_time.clone();
        assert!(!cut_as(&ended, 2, 3), "an ended batch");
    }
}
