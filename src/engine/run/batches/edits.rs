//! Spec edits during a run: they reach only the batches not started yet.

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
            cluster.deployment(&plan::service_key(service, own_namespace)).is_some_and(
                |deployment| {
                    deployment.restarted_by.as_deref() == Some(run.as_str())
                        || deployment.run_record(&record) == Some(run.as_str())
                },
            )
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
        let already_cut =
            pending.iter().zip(first_index..).enumerate().all(|(position, (batch, index))| {
                let is_last = position + 1 == pending.len();
                let size = batch.services.len();
                batch.index == index
                    && batch.start_time.is_none()
                    && batch.end_time.is_none()
                    && (size == spec.batch_size || (is_last && size > 0 && size < spec.batch_size))
            });
        if !already_cut {
            let services: Vec<ServiceStatus> =
                pending.iter().flat_map(|batch| batch.services.iter().cloned()).collect();
            let recut = plan::cut_batches(&services, spec.batch_size, first_index);
            status.batches.truncate(first_pending);
            status.batches.extend(recut);
        }
    }
}
