//! Property tests: random histories of a small cluster driven through the engine in the
//! controller's real order of writes (decide, send the patches, write the status), with the
//! crashes that order allows: after k of n patches, after the patches but before the status
//! write, a status write that fails, and patch responses that are lost although the patch
//! went through. Caches may be stale per Deployment. Other runs restart Deployments too,
//! rollouts progress, succeed and fail, Deployments disappear, time passes, triggers and
//! cancel requests arrive. The checks are the promises a run makes whatever happens.

use std::collections::{BTreeMap, BTreeSet};

use jiff::SignedDuration;
use proptest::prelude::*;
use serde_json::json;

use super::run_active;
use super::test_support::{ModelCluster, ModelView, NS};
use crate::crd::{
    BatchPhase, CANCEL_REQUESTED_AT_ANNOTATION, FailurePolicy, ServiceRefreshStatus, ServiceResult,
};
use crate::engine::plan::{service_key, trigger_digest};
use crate::engine::readiness;
use crate::engine::{Decision, ObjectKey, RestartOutcome, RunId, RunSlot, Transition};

/// How the controller's side of one pass goes after `decide` returned.
#[derive(Clone, Copy, Debug)]
enum Delivery {
    /// Patches sent, outcomes recorded, status written.
    Full,
    /// The operator dies after this many of the patches reached the API server.
    CrashAfterPatches(usize),
    /// Every patch sent, then the status write fails (a conflict, a timeout).
    StatusWriteFails,
}

#[derive(Clone, Debug)]
enum Op {
    /// One reconcile pass. Bit i of `stale_mask` reads Deployment i from the cache as it was
    /// one pass earlier; bit i of `transient_mask` fails patch i transiently, and with
    /// `lost_response` that patch reached the server although the client saw an error.
    Pass {
        stale_mask: u8,
        delivery: Delivery,
        transient_mask: u8,
        lost_response: bool,
        rejected: Option<usize>,
    },
    /// The Deployment controller moves Deployment `index`: 0 starts, 1 finishes, 2 fails.
    Rollout {
        index: usize,
        step: u8,
    },
    Delete {
        index: usize,
    },
    Advance {
        seconds: i64,
    },
    /// `spec.trigger` gets a new value.
    NewTrigger,
    /// `gisops.io/cancel-requested-at` gets a new value.
    Cancel,
    Admission(bool),
    /// Spec edits during a run: they may only reach batches not started.
    SetBatchSize(u32),
    Exclude {
        index: usize,
    },
    Suspend(bool),
    /// Another resource's run restarts Deployment `index` and starts rolling it out.
    ForeignRestart {
        index: usize,
    },
}

fn delivery() -> impl Strategy<Value = Delivery> {
    prop_oneof![
        6 => Just(Delivery::Full),
        1 => (0..4usize).prop_map(Delivery::CrashAfterPatches),
        1 => Just(Delivery::StatusWriteFails),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (
            prop_oneof![3 => Just(0u8), 1 => any::<u8>()],
            delivery(),
            prop_oneof![3 => Just(0u8), 1 => any::<u8>()],
            any::<bool>(),
            prop::option::weighted(0.05, 0..4usize),
        )
            .prop_map(|(stale_mask, delivery, transient_mask, lost_response, rejected)| Op::Pass {
                stale_mask,
                delivery,
                transient_mask,
                lost_response,
                rejected
            }),
        5 => (0..8usize, 0..3u8).prop_map(|(index, step)| Op::Rollout { index, step }),
        1 => (0..8usize).prop_map(|index| Op::Delete { index }),
        2 => (0..50i64).prop_map(|seconds| Op::Advance { seconds }),
        1 => Just(Op::NewTrigger),
        1 => Just(Op::Cancel),
        1 => any::<bool>().prop_map(Op::Admission),
        1 => (1..=4u32).prop_map(Op::SetBatchSize),
        1 => (0..8usize).prop_map(|index| Op::Exclude { index }),
        1 => prop::bool::weighted(0.3).prop_map(Op::Suspend),
        1 => (0..8usize).prop_map(|index| Op::ForeignRestart { index }),
    ]
}

#[derive(Clone, Debug)]
struct Setup {
    replicas: Vec<i32>,
    batch_size: u32,
    abort: bool,
}

fn setup() -> impl Strategy<Value = Setup> {
    (prop::collection::vec(0..3i32, 1..=8), 1..=4u32, any::<bool>())
        .prop_map(|(replicas, batch_size, abort)| Setup { replicas, batch_size, abort })
}

const FOREIGN_RUN: &str = "arcgis/other/1-89abcdef";

/// The model: the cluster plus what the checks need to remember across passes.
struct Model {
    cluster: ModelCluster,
    keys: Vec<ObjectKey>,
    /// The largest batchSize the spec has had: a batch keeps the size it was cut with.
    max_batch_size: usize,
    abort: bool,
    /// The cache one pass ago, for stale reads.
    previous_view: ModelView,
    /// The plan of each run as first persisted.
    plans: BTreeMap<String, Vec<ObjectKey>>,
    /// Per run, the batches started when a cancel was first persisted.
    started_at_cancel: BTreeMap<String, BTreeSet<u32>>,
    new_triggers: u64,
    cancels: u64,
    foreign_restarts: u64,
    /// Rollouts (run, Deployment) that completed or exceeded their progress deadline after
    /// the run restarted them: they left the in-flight budget for good, whatever the
    /// Deployment does later on its own.
    settled_rollouts: BTreeSet<(String, ObjectKey)>,
}

impl Model {
    fn new(setup: &Setup) -> Self {
        let policy = if setup.abort { "Abort" } else { "Continue" };
        let mut cluster = ModelCluster::new(json!({
            "selector": {},
            "batchSize": setup.batch_size,
            "batchTimeout": "60s",
            "failurePolicy": policy,
            "trigger": "0",
        }));
        let keys: Vec<ObjectKey> = setup
            .replicas
            .iter()
            .enumerate()
            .map(|(index, &replicas)| cluster.add(NS, &format!("svc-{index}"), replicas))
            .collect();
        let previous_view = cluster.view();
        Self {
            cluster,
            keys,
            max_batch_size: setup.batch_size as usize,
            abort: setup.abort,
            previous_view,
            plans: BTreeMap::new(),
            started_at_cancel: BTreeMap::new(),
            new_triggers: 0,
            cancels: 0,
            foreign_restarts: 0,
            settled_rollouts: BTreeSet::new(),
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Pass { stale_mask, delivery, transient_mask, lost_response, rejected } => {
                self.pass(*stale_mask, *delivery, *transient_mask, *lost_response, *rejected)?;
            }
            Op::Rollout { index, step } => {
                if let Some(key) = self.keys.get(*index).cloned() {
                    match step {
                        0 => self.cluster.start_rollout(&key),
                        1 => self.cluster.roll_out(&key),
                        _ => self.cluster.fail_rollout(&key),
                    }
                    self.note_settled(&key);
                }
            }
            Op::Delete { index } => {
                if let Some(key) = self.keys.get(*index) {
                    self.cluster.deployments.remove(key);
                }
            }
            Op::Advance { seconds } => self.cluster.now += SignedDuration::from_secs(*seconds),
            Op::NewTrigger => {
                self.new_triggers += 1;
                self.cluster.refresh.spec.trigger = Some(self.new_triggers.to_string());
            }
            Op::Cancel => {
                self.cancels += 1;
                self.cluster.annotate(CANCEL_REQUESTED_AT_ANNOTATION, &self.cancels.to_string());
            }
            Op::Admission(allowed) => {
                self.cluster.run_slot =
                    if *allowed { RunSlot::Granted } else { RunSlot::Busy { holders: vec![] } };
            }
            Op::SetBatchSize(size) => {
                self.cluster.refresh.spec.batch_size = *size;
                self.max_batch_size = self.max_batch_size.max(*size as usize);
            }
            Op::Exclude { index } => {
                if let Some(key) = self.keys.get(*index) {
                    self.cluster.refresh.spec.exclude.push(key.name.clone());
                }
            }
            Op::Suspend(suspend) => self.cluster.refresh.spec.suspend = *suspend,
            Op::ForeignRestart { index } => {
                if let Some(key) = self.keys.get(*index).cloned()
                    && self.cluster.deployments.contains_key(&key)
                {
                    self.foreign_restarts += 1;
                    let restart = crate::engine::Restart {
                        deployment: key.clone(),
                        restarted_at: format!("foreign-{}", self.foreign_restarts),
                        restarted_by: FOREIGN_RUN.to_owned(),
                        record_annotation: "gisops.io/run-89abcdef".to_owned(),
                        resource_version: None,
                    };
                    self.cluster.patch(&restart);
                    self.cluster.start_rollout(&key);
                }
            }
        }
        Ok(())
    }

    /// Records a rollout of a run that has just completed or failed.
    fn note_settled(&mut self, key: &ObjectKey) {
        let Some(deployment) = self.cluster.deployments.get(key) else { return };
        let snapshot = &deployment.snapshot;
        let Some(run) = snapshot.restarted_by.clone() else { return };
        if !readiness::verdict(snapshot, snapshot.generation()).is_waiting() {
            self.settled_rollouts.insert((run, key.clone()));
        }
    }

    /// The cache a pass reads: each Deployment fresh, or as it was one pass ago.
    fn cache(&self, stale_mask: u8) -> ModelView {
        let mut view = self.cluster.view();
        for (index, key) in self.keys.iter().enumerate() {
            if stale_mask & (1 << (index % 8)) != 0 {
                match self.previous_view.deployments.get(key) {
                    Some(old) => view.deployments.insert(key.clone(), old.clone()),
                    None => view.deployments.remove(key),
                };
            }
        }
        view
    }

    fn pass(
        &mut self,
        stale_mask: u8,
        delivery: Delivery,
        transient_mask: u8,
        lost_response: bool,
        rejected: Option<usize>,
    ) -> Result<(), TestCaseError> {
        let cache = self.cache(stale_mask);
        self.previous_view = self.cluster.view();
        let input = self.cluster.refresh.status.clone();

        let decision = self.cluster.pass_with(&cache);
        check_decision(input.as_ref(), &decision)?;
        self.check_new_results(input.as_ref(), &decision.status, &cache)?;

        let sent = match delivery {
            Delivery::CrashAfterPatches(count) => count.min(decision.restarts.len()),
            _ => decision.restarts.len(),
        };
        let mut outcomes = Vec::new();
        for (position, restart) in decision.restarts.iter().take(sent).enumerate() {
            let outcome = if transient_mask & (1 << (position % 8)) != 0 {
                if lost_response {
                    self.cluster.patch(restart);
                }
                RestartOutcome::Transient("503 Service Unavailable".to_owned())
            } else if rejected == Some(position) {
                RestartOutcome::Rejected("admission webhook denied the request".to_owned())
            } else {
                self.cluster.patch(restart)
            };
            outcomes.push((restart.deployment.clone(), outcome));
        }
        match delivery {
            Delivery::Full => {
                self.cluster.record(&outcomes);
                let status = self.cluster.status().clone();
                self.check_persisted(&status)?;
            }
            Delivery::CrashAfterPatches(_) | Delivery::StatusWriteFails => {
                self.cluster.refresh.status = input;
            }
        }
        self.check_cluster()
    }

    /// Promises about every status that reaches the API server.
    fn check_persisted(&mut self, status: &ServiceRefreshStatus) -> Result<(), TestCaseError> {
        let Some(run) = &status.run else { return Ok(()) };
        let planned: Vec<ObjectKey> = status
            .batches
            .iter()
            .flat_map(|batch| batch.all_services(NS))
            .map(|s| service_key(&s, NS))
            .collect();
        let unique: BTreeSet<&ObjectKey> = planned.iter().collect();
        prop_assert_eq!(unique.len(), planned.len(), "a Deployment is planned twice");
        let first_plan = self.plans.entry(run.id.clone()).or_insert_with(|| planned.clone());
        prop_assert_eq!(&*first_plan, &planned, "the plan of a run changed");

        // Under Abort, no batch after one with a failure ever starts.
        if self.abort {
            let first_failed = status
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

        // Batches run strictly one after another.
        let running =
            status.batches.iter().filter(|batch| batch.phase == BatchPhase::Running).count();
        prop_assert!(running <= 1);
        if let Some(first_open) =
            status.batches.iter().position(|batch| batch.phase != BatchPhase::Completed)
        {
            prop_assert!(
                status.batches[first_open + 1..]
                    .iter()
                    .all(|batch| batch.phase == BatchPhase::Pending)
            );
        }

        // Ready only ever follows a restart of this run that really changed the template.
        for service in status.batches.iter().flat_map(|batch| batch.all_services(NS)) {
            if service.result == Some(ServiceResult::Ready) {
                let key = service_key(&service, NS);
                let restarted =
                    self.cluster.template_changes.contains_key(&(run.id.clone(), key.clone()));
                prop_assert!(restarted, "{} is Ready without a restart by {}", key, run.id);
            }
        }

        // An ended run gave every planned Deployment its one result.
        if run.end_time.is_some() {
            prop_assert!(status.batches.iter().all(|batch| batch.phase == BatchPhase::Completed));
            for service in status.batches.iter().flat_map(|batch| batch.all_services(NS)) {
                prop_assert!(service.result.is_some(), "{} ended without a result", service.name);
            }
        }
        Ok(())
    }

    /// A Ready verdict needs the cache the pass read to show our restart rolled out: a status
    /// left over from before the patch must never count.
    fn check_new_results(
        &self,
        input: Option<&ServiceRefreshStatus>,
        output: &ServiceRefreshStatus,
        cache: &ModelView,
    ) -> Result<(), TestCaseError> {
        let Some(run) = &output.run else { return Ok(()) };
        let was_ready: BTreeSet<ObjectKey> = input
            .filter(|input| input.run.as_ref().map(|r| &r.id) == Some(&run.id))
            .into_iter()
            .flat_map(|input| input.batches.iter().flat_map(|batch| batch.all_services(NS)))
            .filter(|service| service.result == Some(ServiceResult::Ready))
            .map(|service| service_key(&service, NS))
            .collect();
        for service in output.batches.iter().flat_map(|batch| batch.all_services(NS)) {
            let key = service_key(&service, NS);
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
    fn check_cluster(&self) -> Result<(), TestCaseError> {
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
        let seen_complete: BTreeSet<ObjectKey> = status
            .batches
            .iter()
            .flat_map(|batch| batch.all_services(NS))
            .filter(|service| {
                matches!(service.result, Some(result) if result != ServiceResult::TimedOut)
            })
            .map(|service| service_key(&service, NS))
            .collect();
        let in_flight = self
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
            .count();
        prop_assert!(
            in_flight <= self.max_batch_size,
            "{in_flight} Deployments in flight with batchSize {}",
            self.max_batch_size
        );
        Ok(())
    }

    /// Lets the world settle: every patch succeeds, rollouts finish, time passes. Any run
    /// must end, and every trigger must be handled.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        self.cluster.run_slot = RunSlot::Granted;
        self.cluster.refresh.spec.suspend = false;
        for _ in 0..400 {
            self.pass(0, Delivery::Full, 0, false, None)?;
            self.cluster.roll_out_all();
            let status = self.cluster.status();
            let expected = self.cluster.refresh.spec.trigger.as_deref().map(trigger_digest);
            let trigger_handled = status.triggers.token_digest == expected;
            if !run_active(status) && trigger_handled && status.run.is_some() {
                return Ok(());
            }
            self.cluster.now += SignedDuration::from_secs(20);
        }
        Err(TestCaseError::fail("the run never ended"))
    }
}

/// Promises about a single decision, checked against the status it started from.
fn check_decision(
    input: Option<&ServiceRefreshStatus>,
    decision: &Decision,
) -> Result<(), TestCaseError> {
    let output_running: BTreeSet<ObjectKey> = decision
        .status
        .batches
        .iter()
        .filter(|batch| batch.phase == BatchPhase::Running)
        .flat_map(|batch| batch.services.iter())
        .filter(|service| service.result.is_none() && service.generation.is_none())
        .map(|service| service_key(service, NS))
        .collect();
    let persisted_run = input.and_then(|status| status.run.as_ref());
    for restart in &decision.restarts {
        // Restarts come only from the batch this pass leaves running, for a run whose start
        // was persisted before, and carry that persisted start.
        prop_assert!(
            output_running.contains(&restart.deployment),
            "{} restarted outside the running batch",
            restart.deployment
        );
        let run = persisted_run.filter(|run| run.id == restart.restarted_by);
        prop_assert!(run.is_some(), "a restart for a run not persisted: {}", restart.restarted_by);
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
    for transition in &decision.transitions {
        if let Transition::ServiceFinished { deployment, .. } = transition {
            let had_result = input
                .into_iter()
                .flat_map(|status| status.batches.iter().flat_map(|batch| batch.services.iter()))
                .any(|service| {
                    service_key(service, NS) == *deployment
                        && service.result.is_some()
                        && decision.status.run.as_ref().map(|r| &r.id)
                            == input.and_then(|i| i.run.as_ref()).map(|r| &r.id)
                });
            prop_assert!(!had_result, "{deployment} got a second result");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn runs_keep_their_promises(setup in setup(), ops in prop::collection::vec(op(), 0..60)) {
        let mut model = Model::new(&setup);
        for op in &ops {
            model.apply(op)?;
        }
        model.drain()?;

        let status = model.cluster.status().clone();
        model.check_persisted(&status)?;
        // Coalescing: never more runs than the creation plus one per new trigger value.
        let runs = status.run.as_ref().map_or(0, |run| run.number);
        prop_assert!(runs >= 1 && runs <= 1 + model.new_triggers, "{runs} runs for {} triggers", model.new_triggers);
        let policy = model.cluster.refresh.spec.failure_policy;
        prop_assert_eq!(policy == FailurePolicy::Abort, model.abort);

        // Once settled, a pass with nothing new changes nothing.
        let settled = model.cluster.pass();
        prop_assert_eq!(&settled.status, &status);
        prop_assert!(settled.restarts.is_empty() && settled.transitions.is_empty());
    }

    #[test]
    fn passes_without_news_reach_a_fixed_point(setup in setup(), ops in prop::collection::vec(op(), 0..40)) {
        let mut model = Model::new(&setup);
        for op in &ops {
            model.apply(op)?;
        }
        // With the world frozen (no patch applied, no time passing), passes converge.
        let view = model.cluster.view();
        let mut previous = model.cluster.refresh.status.clone();
        let mut converged = false;
        for _ in 0..8 {
            let decision = model.cluster.pass_with(&view);
            if previous.as_ref() == Some(&decision.status) {
                converged = true;
                break;
            }
            previous = Some(decision.status);
        }
        prop_assert!(converged, "status kept changing with nothing new");
    }
}
