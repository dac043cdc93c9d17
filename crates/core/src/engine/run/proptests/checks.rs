//! The promises the property tests check: about each decision against the status it started
//! from, about every status that reaches the API server, about the cluster whatever the
//! status says, and, once the world settles, about the whole history (one run per trigger
//! burst, every result backed by what really happened to the Deployment).

use std::collections::BTreeSet;

use jiff::SignedDuration;
use proptest::prelude::*;

use super::model::{BATCH_TIMEOUT_SECONDS, FOREIGN_RUN, GATE_TIMEOUT_SECONDS, Model, Reached};
use crate::crd::{BatchPhase, ServiceRefreshStatus, ServiceResult};
use crate::engine::disruption_budgets::DisruptionBudgets;
use crate::engine::plan::service_key;
use crate::engine::readiness;
use crate::engine::results::reason::{self, DISRUPTION_BUDGET};
use crate::engine::run::test_support::{ModelView, NS};
use crate::engine::run::{
    MESSAGE_DRY_RUN, MESSAGE_GONE, MESSAGE_PAUSED, MESSAGE_REPLACED, run_active,
};
use crate::engine::view::{RunView, ServiceView};
use crate::engine::{Decision, ObjectKey, Plan, RunId, Transition};

/// Every service of `status`'s run, named through its plan.
pub fn all_services(status: &ServiceRefreshStatus, plan: Option<&Plan>) -> Vec<ServiceView> {
    RunView::new(status, plan, NS).services().cloned().collect()
}

/// No batch after a run's first starts while the health gate fails, unless the gate failed
/// for its whole timeout and `failurePolicy: Continue` goes on.
pub fn check_gate(
    input: Option<&ServiceRefreshStatus>,
    gate_passes: Option<bool>,
    abort: bool,
    now: jiff::Timestamp,
    decision: &Decision,
) -> Result<(), TestCaseError> {
    if gate_passes != Some(false) {
        return Ok(());
    }
    for transition in &decision.transitions {
        let Transition::BatchStarted { batch, .. } = transition else {
            continue;
        };
        if *batch <= 1 {
            continue;
        }
        // The previous batch ended in this pass or before it; a run that ends and gives way
        // to the next one within the pass leaves it only in the status the pass started from.
        let previous_end = [Some(&decision.status), input]
            .into_iter()
            .flatten()
            .flat_map(|status| &status.batches)
            .find(|listed| listed.index == batch - 1)
            .and_then(|listed| listed.end_time.as_ref())
            .map(|end| end.0);
        let gate_timed_out = previous_end.is_some_and(|end| {
            now.duration_since(end) >= SignedDuration::from_secs(GATE_TIMEOUT_SECONDS)
        });
        prop_assert!(
            !abort && gate_timed_out,
            "batch {batch} started at {now} while the health gate failed (batch {} ended {previous_end:?})",
            batch - 1
        );
    }
    Ok(())
}

/// Promises about a single decision, checked against the status it started from.
/// Capacity-aware pacing: no restart is sent while a pod of the pass's run waits for a
/// node past the grace (and less than batchTimeout), and the effective batch size stays
/// within 1..=batchSize. Returns whether the pass was held for capacity.
pub fn check_capacity(
    batch_size: u32,
    input: Option<&ServiceRefreshStatus>,
    cache: &crate::engine::StaticCluster,
    now: jiff::Timestamp,
    decision: &Decision,
) -> Result<bool, TestCaseError> {
    use crate::engine::ClusterView;
    use crate::engine::capacity::Capacity;

    // An ended run keeps the size it last ran with, whatever the spec says since.
    if let Some(run) = decision.status.run.as_ref().filter(|run| run.end_time.is_none())
        && let Some(pacing) = &run.pacing
    {
        // The spec's batchSize now: an edit applies to the effective size at once, while
        // `run.batchSize` records the size the last batch started with.
        let limit = batch_size;
        prop_assert!(
            (1..=limit.max(1)).contains(&pacing.effective_batch_size),
            "effective batch size {} outside 1..={limit}",
            pacing.effective_batch_size
        );
    }
    let Some(run) =
        input.and_then(|status| status.run.as_ref()).filter(|run| run.end_time.is_none())
    else {
        return Ok(false);
    };
    let timeout = jiff::SignedDuration::from_secs(super::model::BATCH_TIMEOUT_SECONDS);
    let capacity = Capacity::of_run(&cache.pending_pods(), &run.id, now, timeout);
    if capacity.is_blocked() {
        prop_assert!(
            decision.restarts.is_empty(),
            "restarts sent while a pod of the run waits for a node: {:?}",
            capacity.message()
        );
    }
    Ok(capacity.is_blocked())
}

/// While the API server forbids restarts, a pass sends no plan and no restart before the
/// shell's back-off ran out, and one probe at most after it; an active run is stalled.
pub fn check_forbidden(
    forbidden: Option<&crate::engine::Forbidden>,
    now: jiff::Timestamp,
    decision: &Decision,
) -> Result<(), TestCaseError> {
    let Some(forbidden) = forbidden else {
        return Ok(());
    };
    let allowed = usize::from(forbidden.retry_due(now));
    prop_assert!(
        decision.restarts.len() <= allowed,
        "{} restarts sent while forbidden (at most {allowed})",
        decision.restarts.len()
    );
    if allowed == 0 {
        prop_assert!(decision.plan_objects.is_empty(), "a run planned while forbidden");
    }
    if run_active(&decision.status) {
        // Forbidden, or a stall that needs a person more (an unusable spec).
        let stalled = crate::engine::conditions::find(
            &decision.status.conditions,
            crate::engine::conditions::STALLED,
        );
        prop_assert!(
            stalled.is_some_and(|c| c.status == "True"),
            "an active run whose restarts are forbidden is stalled: {stalled:?}"
        );
    }
    Ok(())
}

pub fn check_decision(
    input: Option<&ServiceRefreshStatus>,
    input_plan: Option<&Plan>,
    decision: &Decision,
) -> Result<(), TestCaseError> {
    let output_running: BTreeSet<ObjectKey> = decision
        .status
        .batches
        .iter()
        .filter(|batch| batch.phase == BatchPhase::Running)
        .flat_map(|batch| batch.services.iter())
        // The controller writes this status before the patches: each restart must be on it,
        // with the uid of the object it patches.
        .filter(|service| {
            service.result.is_none() && service.generation.is_none() && service.uid.is_some()
        })
        .map(|service| service_key(service, NS))
        .collect();
    let persisted_run = input.and_then(|status| status.run.as_ref());
    for restart in &decision.restarts {
        // Restarts come only from the batch this pass leaves running, for a run whose start
        // was persisted before, and carry that persisted start.
        prop_assert!(
            output_running.contains(&restart.deployment),
            "{} restarted outside the running batch or off the record",
            restart.deployment
        );
        let run = persisted_run.filter(|run| run.id == restart.restarted_by);
        prop_assert!(run.is_some(), "a restart for a run not persisted: {}", restart.restarted_by);
        prop_assert!(
            !run.is_some_and(|run| run.dry_run),
            "a dry run restarted {}",
            restart.deployment
        );
        let persisted_start = run.and_then(|run| run.start_time.as_ref()).map(|t| t.0.to_string());
        prop_assert_eq!(Some(restart.restarted_at.clone()), persisted_start);
        let id: Result<RunId, _> = restart.restarted_by.parse();
        prop_assert!(id.is_ok_and(|id| id.owner == ObjectKey::new(NS, "refresh")));
    }
    if let Some(input) = input
        && run_active(input)
    {
        // A trigger seen during a run waits for the run's end: a new run starts only in a
        // pass that ended the previous one.
        let input_id = input.run.as_ref().map(|run| run.id.clone());
        if decision.status.run.as_ref().map(|run| run.id.clone()) != input_id {
            let ended = decision
                .status
                .history
                .iter()
                .any(|summary| Some(&summary.id) == input_id.as_ref());
            prop_assert!(ended, "a run started while {:?} was active", input_id);
        }
    }
    if decision.status.batches.iter().any(|batch| batch.phase == BatchPhase::Running)
        && !decision.restarts.is_empty()
    {
        prop_assert!(decision.wake_at.is_some(), "a running batch needs a deadline to wake for");
    }
    let same_run = decision.status.run.as_ref().map(|r| &r.id)
        == input.and_then(|i| i.run.as_ref()).map(|r| &r.id);
    for transition in &decision.transitions {
        if let Transition::ServiceFinished { deployment, .. } = transition {
            let had_result = same_run
                && input.is_some_and(|input| {
                    all_services(input, input_plan)
                        .iter()
                        .any(|service| service.key == *deployment && service.result.is_some())
                });
            prop_assert!(!had_result, "{deployment} got a second result");
        }
    }
    Ok(())
}

/// The counts and printer-column strings, recomputed from the services themselves.
fn check_totals(status: &ServiceRefreshStatus, plan: &Plan) -> Result<(), TestCaseError> {
    let services = all_services(status, Some(plan));
    let count = |wanted: fn(Option<ServiceResult>) -> bool| {
        u32::try_from(services.iter().filter(|service| wanted(service.result)).count())
            .unwrap_or(u32::MAX)
    };
    let totals = &status.totals;
    prop_assert_eq!(totals.services as usize, services.len(), "totals.services");
    prop_assert_eq!(totals.ready, count(|result| result == Some(ServiceResult::Ready)));
    prop_assert_eq!(totals.skipped, count(|result| result == Some(ServiceResult::Skipped)));
    prop_assert_eq!(totals.failed, count(|result| result.is_some_and(ServiceResult::is_failure)));
    prop_assert!(totals.restarted >= totals.ready && totals.restarted <= totals.services);
    prop_assert_eq!(status.progress.clone(), Some(format!("{}/{}", totals.ready, totals.services)));
    let (current, total) = status
        .batch
        .as_deref()
        .and_then(|batch| batch.split_once('/'))
        .and_then(|(current, total)| {
            Some((current.parse::<u32>().ok()?, total.parse::<u32>().ok()?))
        })
        .ok_or_else(|| TestCaseError::fail(format!("batch column {:?}", status.batch)))?;
    let started = status.batches.last().map_or(0, |batch| batch.index);
    prop_assert!(current <= total && started <= total, "batch column {current}/{total}");
    if !run_active(status) {
        prop_assert_eq!(current, started, "an ended run shows its last batch");
        if status.phase == Some(crate::crd::Phase::Succeeded) {
            prop_assert_eq!(current, total, "a run that went through ran every batch");
        }
    }
    Ok(())
}

impl Model {
    /// Promises about every status that reaches the API server.
    pub fn check_persisted(&mut self, status: &ServiceRefreshStatus) -> Result<(), TestCaseError> {
        let Some(run) = &status.run else { return Ok(()) };
        let Some(plan) = self.cluster.plan_of(status) else {
            // A run's plan objects are written over by the next run's, so an ended run's plan
            // may be gone when the next run's first status write failed; an active run's never.
            prop_assert!(
                run.end_time.is_some(),
                "the plan of active run {} is not written",
                run.id
            );
            return Ok(());
        };
        check_totals(status, &plan)?;
        let planned: Vec<ObjectKey> =
            plan.entries().iter().map(|entry| entry.key.clone()).collect();
        let unique: BTreeSet<&ObjectKey> = planned.iter().collect();
        prop_assert_eq!(unique.len(), planned.len(), "a Deployment is planned twice");
        let first_plan = self.plans.entry(run.id.clone()).or_insert_with(|| planned.clone());
        prop_assert_eq!(&*first_plan, &planned, "the plan of a run changed");

        if super::kinds::check_waves(&mut self.batches_seen, status, &plan)? {
            self.reach(Reached::LaterWaveStarted);
        }
        if super::kinds::check_on_delete(&self.shape, &self.cluster, status, &plan)? {
            self.reach(Reached::OnDeleteSkipped);
        }
        let restarted_by_run = |key: &ObjectKey| self.restarted_by(&run.id, key);
        self.pacing.check_persisted(status, &plan, self.max_batch_size, restarted_by_run)?;

        let view = RunView::new(status, Some(&plan), NS);
        // Under Abort, no batch after one with a failure ever starts.
        if self.abort {
            let first_failed = view
                .batches
                .iter()
                .find(|batch| {
                    batch.services.iter().any(|s| s.result.is_some_and(|r| r.is_failure()))
                })
                .map(|batch| batch.index);
            if let Some(first_failed) = first_failed {
                for batch in status.batches.iter().filter(|batch| batch.index > first_failed) {
                    prop_assert!(
                        batch.start_time.is_none(),
                        "batch {} started after a failure under Abort",
                        batch.index
                    );
                }
            }
        }

        // No batch starts after a cancel is seen.
        let started: BTreeSet<u32> = status
            .batches
            .iter()
            .filter(|batch| batch.start_time.is_some())
            .map(|batch| batch.index)
            .collect();
        if run.cancel_request.is_some() {
            let at_cancel =
                self.started_at_cancel.entry(run.id.clone()).or_insert_with(|| started.clone());
            prop_assert!(
                started.is_subset(at_cancel),
                "batches {:?} started after the cancel (started then: {:?})",
                started,
                at_cancel
            );
        }

        // Batches run strictly one after another: only the newest may be running, and each
        // is numbered after the one before.
        for (index, batch) in status.batches.iter().enumerate() {
            let last = index + 1 == status.batches.len();
            prop_assert!(
                last || batch.phase == BatchPhase::Completed,
                "batch {} open",
                batch.index
            );
            prop_assert!(batch.phase != BatchPhase::Pending, "a pending batch in the status");
            if let Some(next) = status.batches.get(index + 1) {
                prop_assert_eq!(next.index, batch.index + 1);
            }
        }

        // A batch with a timed-out service lasted at least spec.batchTimeout.
        for batch in &view.batches {
            let timed_out =
                batch.services.iter().any(|s| s.result == Some(ServiceResult::TimedOut));
            if let (true, Some(start), Some(end)) = (timed_out, &batch.start_time, &batch.end_time)
            {
                let lasted = end.duration_since(*start);
                prop_assert!(
                    lasted >= SignedDuration::from_secs(BATCH_TIMEOUT_SECONDS),
                    "batch {} timed out after {lasted:?}",
                    batch.index
                );
            }
        }

        // Ready only ever follows a restart of this run that really changed the template.
        for service in view.services() {
            if service.result == Some(ServiceResult::Ready) {
                let restarted = self.restarted_by(&run.id, &service.key);
                prop_assert!(restarted, "{} is Ready without a restart by {}", service.key, run.id);
            }
        }

        // An ended run gave every planned Deployment its one result.
        if run.end_time.is_some() {
            prop_assert!(status.batches.iter().all(|batch| batch.phase == BatchPhase::Completed));
            prop_assert_eq!(view.services().count(), plan.len(), "every planned service is listed");
            for service in view.services() {
                prop_assert!(service.result.is_some(), "{} ended without a result", service.key);
            }
        }
        Ok(())
    }

    /// A Ready verdict needs the cache the pass read to show our restart rolled out: a status
    /// left over from before the patch must never count.
    pub fn check_new_results(
        &self,
        input: Option<&ServiceRefreshStatus>,
        output: &ServiceRefreshStatus,
        cache: &ModelView,
    ) -> Result<(), TestCaseError> {
        let Some(run) = &output.run else { return Ok(()) };
        let was_ready: BTreeSet<ObjectKey> = input
            .filter(|input| input.run.as_ref().map(|r| &r.id) == Some(&run.id))
            .map(|input| all_services(input, self.cluster.plan_of(input).as_ref()))
            .unwrap_or_default()
            .iter()
            .filter(|service| service.result == Some(ServiceResult::Ready))
            .map(|service| service.key.clone())
            .collect();
        for service in all_services(output, self.cluster.plan_of(output).as_ref()) {
            let key = service.key.clone();
            if service.result != Some(ServiceResult::Ready) || was_ready.contains(&key) {
                continue;
            }
            let patched = self.cluster.patch_generations.get(&(run.id.clone(), key.clone()));
            let observed = cache
                .deployments
                .get(&key)
                .and_then(|d| d.rollout.as_ref())
                .and_then(|status| status.observed_generation);
            prop_assert!(
                patched.is_some() && observed >= patched.copied(),
                "{key} judged Ready on observedGeneration {observed:?} before our patch's {patched:?}"
            );
        }
        Ok(())
    }

    /// Promises about the cluster, whatever the status says.
    pub fn check_cluster(&self) -> Result<(), TestCaseError> {
        // A run changes each pod template at most once.
        for ((run_id, key), changes) in &self.cluster.template_changes {
            if run_id == FOREIGN_RUN {
                continue;
            }
            prop_assert!(*changes <= 1, "{key} was restarted {changes} times by {run_id}");
        }
        // At most batchSize of the run's rollouts are in flight: Deployments carrying the
        // run's identity whose rollout has neither completed nor failed, and which the run has
        // not yet seen complete (a Deployment recorded Ready may later degrade on its own,
        // which is no rollout of ours).
        let Some(status) = &self.cluster.refresh.status else { return Ok(()) };
        let Some(run) = &status.run else { return Ok(()) };
        let seen_complete: BTreeSet<ObjectKey> = all_services(
            status,
            self.cluster.plan_of(status).as_ref(),
        )
        .iter()
        .filter(
            |service| matches!(service.result, Some(result) if result != ServiceResult::TimedOut),
        )
        .map(|service| service.key.clone())
        .collect();
        let in_flight: Vec<ObjectKey> = self
            .cluster
            .deployments
            .iter()
            .filter(|(key, deployment)| {
                let snapshot = &deployment.snapshot;
                snapshot.restarted_by.as_deref() == Some(run.id.as_str())
                    && !seen_complete.contains(*key)
                    && !self.settled_rollouts.contains(&(run.id.clone(), (*key).clone()))
                    && readiness::verdict(snapshot, snapshot.generation()).is_waiting()
            })
            .map(|(key, _)| key.clone())
            .collect();
        super::budgets::check_one_in_flight_per_budget(&self.cluster, &in_flight)?;
        let in_flight = in_flight.len();
        prop_assert!(
            in_flight <= self.max_batch_size,
            "{in_flight} Deployments in flight with batchSize {}",
            self.max_batch_size
        );
        Ok(())
    }

    /// Promises about the whole history once the world settled.
    pub fn check_settled(&mut self) -> Result<(), TestCaseError> {
        let status = self.cluster.status().clone();
        self.check_persisted(&status)?;
        let Some(run) = &status.run else {
            return Err(TestCaseError::fail("no run after settling"));
        };

        // Trigger changes coalesce, and none is lost: one run for the creation, one per burst.
        prop_assert_eq!(run.number, 1 + self.bursts, "runs for {} trigger bursts", self.bursts);

        let services = all_services(&status, self.cluster.plan_of(&status).as_ref());
        // Every result is backed by what happened to the Deployment.
        for service in &services {
            let key = service.key.clone();
            let message = service.message.as_deref().unwrap_or_default();
            let changed = self.restarted_by(&run.id, &key);
            match service.result {
                Some(ServiceResult::Gone) => {
                    let deleted = self
                        .deleted_during
                        .iter()
                        .any(|(number, deleted)| *deleted == key && number + 1 >= run.number);
                    prop_assert!(
                        deleted,
                        "{key} is Gone but was never deleted during run {}",
                        run.number
                    );
                    prop_assert!(
                        message == MESSAGE_GONE || message == MESSAGE_REPLACED,
                        "{message}"
                    );
                }
                Some(ServiceResult::Ready) => prop_assert!(changed, "{key} Ready without restart"),
                Some(ServiceResult::Failed) if !message.starts_with("restart rejected") => {
                    prop_assert!(changed, "{key} Failed without restart: {message}")
                }
                Some(ServiceResult::TimedOut) if !message.starts_with("not restarted") => {
                    prop_assert!(changed, "{key} TimedOut without restart: {message}")
                }
                _ => {}
            }
        }

        // A run that started after the world settled saw no faults, no edits and every
        // rollout finish: its results are known in advance.
        if run.number > self.run_at_drain && run.cancel_request.is_none() {
            self.reach(Reached::SettledRunJudged);
            let refused = DisruptionBudgets::new(self.cluster.view().disruption_budgets);
            for service in &services {
                let key = service.key.clone();
                let restarts = self.cluster.template_changes.get(&(run.id.clone(), key.clone()));
                let expected = match self.cluster.deployments.get(&key) {
                    _ if run.dry_run => (ServiceResult::Skipped, Some(MESSAGE_DRY_RUN)),
                    None => (ServiceResult::Gone, Some(MESSAGE_GONE)),
                    Some(_) if self.shape.on_delete.contains(&key) => {
                        // The message names the StatefulSet; the reason says why.
                        prop_assert_eq!(service.reason.as_deref(), Some(reason::ON_DELETE));
                        (ServiceResult::Skipped, service.message.as_deref())
                    }
                    Some(deployment) if deployment.snapshot.paused => {
                        (ServiceResult::Skipped, Some(MESSAGE_PAUSED))
                    }
                    // A budget at zero through the settling holds its services to the timeout.
                    Some(deployment)
                        if refused
                            .covering(&deployment.snapshot)
                            .iter()
                            .any(|budget| budget.refusal().is_some()) =>
                    {
                        prop_assert_eq!(
                            service.reason.as_deref(),
                            Some(DISRUPTION_BUDGET),
                            "{}",
                            key
                        );
                        (ServiceResult::Skipped, service.message.as_deref())
                    }
                    Some(_) => (ServiceResult::Ready, None),
                };
                let actual = (service.result, service.message.as_deref());
                prop_assert_eq!(
                    actual,
                    (Some(expected.0), expected.1),
                    "{} in run {}",
                    key,
                    run.number
                );
                let expected_restarts = (expected.0 == ServiceResult::Ready).then_some(&1);
                prop_assert_eq!(
                    restarts,
                    expected_restarts,
                    "restarts of {} by run {}",
                    key,
                    run.number
                );
            }
        }

        // Once settled, a pass with nothing new changes nothing.
        let settled = self.cluster.pass();
        prop_assert_eq!(&settled.status, &status);
        prop_assert!(
            settled.restarts.is_empty(),
            "a settled pass restarted {:?}",
            settled.restarts
        );
        prop_assert!(
            settled.transitions.is_empty(),
            "a settled pass reported {:?}",
            settled.transitions
        );
        Ok(())
    }

    /// With the world frozen (no patch applied, no time passing), passes converge.
    pub fn check_fixed_point(&mut self) -> Result<(), TestCaseError> {
        let view = self.cluster.view();
        let mut previous = self.cluster.refresh.status.clone();
        for _ in 0..8 {
            let decision = self.cluster.pass_with(&view);
            if previous.as_ref() == Some(&decision.status) {
                return Ok(());
            }
            previous = Some(decision.status);
        }
        Err(TestCaseError::fail("status kept changing with nothing new"))
    }
}
