//! Property tests: random histories of a small cluster (rollouts progressing, succeeding and
//! failing, deletions, time passing, patches that fail transiently or are rejected, lost
//! status writes and lost patch outcomes, stale caches, new triggers) driven through the
//! engine, checking the promises a run makes whatever happens in between.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::SignedDuration;
use k8s_openapi::api::apps::v1::Deployment;
use proptest::prelude::*;
use serde_json::json;

use super::test_support::{Cluster, NS};
use super::{run_active, run_owner};
use crate::crd::{
    BatchPhase, FailurePolicy, RESTARTED_BY_ANNOTATION, ServiceRefreshStatus, ServiceResult,
};
use crate::engine::plan::service_key;
use crate::engine::{Decision, ObjectKey, RestartOutcome};

/// How the controller's side of one pass goes after `decide` returned.
#[derive(Clone, Copy, Debug)]
enum Delivery {
    /// Status written, patches sent, outcomes recorded.
    Full,
    /// Status written, patches sent, then the operator dies before recording the outcomes.
    LoseOutcomes,
    /// The status write fails (say, a conflict), patches are sent, outcomes are lost.
    LoseStatusWrite,
    /// Status written, then the operator dies before sending any patch.
    NoPatches,
}

#[derive(Clone, Debug)]
enum Op {
    /// One reconcile pass, possibly against the cache as it was one pass earlier.
    Pass {
        stale: bool,
        delivery: Delivery,
        transient_mask: u8,
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
    Admission(bool),
    /// Spec edits during a run: they may only reach batches not started.
    SetBatchSize(u32),
    Exclude {
        index: usize,
    },
    Suspend(bool),
}

fn delivery() -> impl Strategy<Value = Delivery> {
    prop_oneof![
        6 => Just(Delivery::Full),
        1 => Just(Delivery::LoseOutcomes),
        1 => Just(Delivery::LoseStatusWrite),
        1 => Just(Delivery::NoPatches),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (
            prop::bool::weighted(0.25),
            delivery(),
            prop_oneof![3 => Just(0u8), 1 => any::<u8>()],
            prop::option::weighted(0.05, 0..4usize),
        )
            .prop_map(|(stale, delivery, transient_mask, rejected)| Op::Pass {
                stale,
                delivery,
                transient_mask,
                rejected
            }),
        5 => (0..8usize, 0..3u8).prop_map(|(index, step)| Op::Rollout { index, step }),
        1 => (0..8usize).prop_map(|index| Op::Delete { index }),
        2 => (0..50i64).prop_map(|seconds| Op::Advance { seconds }),
        1 => Just(Op::NewTrigger),
        1 => any::<bool>().prop_map(Op::Admission),
        1 => (1..=4u32).prop_map(Op::SetBatchSize),
        1 => (0..8usize).prop_map(|index| Op::Exclude { index }),
        1 => prop::bool::weighted(0.3).prop_map(Op::Suspend),
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

/// The model: the cluster plus what the checks need to remember across passes.
struct Model {
    cluster: Cluster,
    keys: Vec<ObjectKey>,
    /// The largest batchSize the spec has had: a batch keeps the size it was cut with.
    max_batch_size: usize,
    abort: bool,
    /// The cache one pass ago, for stale passes.
    previous_snapshot: Vec<Arc<Deployment>>,
    /// The plan of each run as first persisted.
    plans: BTreeMap<String, Vec<ObjectKey>>,
    new_triggers: u64,
}

impl Model {
    fn new(setup: &Setup) -> Self {
        let policy = if setup.abort { "Abort" } else { "Continue" };
        let mut cluster = Cluster::new(json!({
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
        let previous_snapshot = cluster.snapshot();
        Self {
            cluster,
            keys,
            max_batch_size: setup.batch_size as usize,
            abort: setup.abort,
            previous_snapshot,
            plans: BTreeMap::new(),
            new_triggers: 0,
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Pass { stale, delivery, transient_mask, rejected } => {
                self.pass(*stale, *delivery, *transient_mask, *rejected)?;
            }
            Op::Rollout { index, step } => {
                if let Some(key) = self.keys.get(*index).cloned() {
                    match step {
                        0 => self.cluster.start_rollout(&key),
                        1 => self.cluster.roll_out(&key),
                        _ => self.cluster.fail_rollout(&key),
                    }
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
            Op::Admission(allowed) => self.cluster.may_start_run = *allowed,
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
        }
        Ok(())
    }

    fn pass(
        &mut self,
        stale: bool,
        delivery: Delivery,
        transient_mask: u8,
        rejected: Option<usize>,
    ) -> Result<(), TestCaseError> {
        let current = self.cluster.snapshot();
        let cache = if stale { self.previous_snapshot.clone() } else { current.clone() };
        self.previous_snapshot = current;
        let input = self.cluster.refresh.status.clone();

        let decision = self.cluster.pass_with(&cache);
        check_decision(input.as_ref(), &decision)?;
        self.check_new_results(input.as_ref(), &decision.status, &cache)?;
        if matches!(delivery, Delivery::LoseStatusWrite) {
            self.cluster.refresh.status = input;
        } else {
            self.check_persisted(&decision.status)?;
        }
        if matches!(delivery, Delivery::NoPatches) {
            return Ok(());
        }

        let mut outcomes = Vec::new();
        for (position, restart) in decision.restarts.iter().enumerate() {
            let outcome = if transient_mask & (1 << (position % 8)) != 0 {
                RestartOutcome::Transient("503 Service Unavailable".to_owned())
            } else if rejected == Some(position) {
                RestartOutcome::Rejected("admission webhook denied the request".to_owned())
            } else {
                self.cluster.patch(restart)
            };
            outcomes.push((restart.deployment.clone(), outcome));
        }
        if matches!(delivery, Delivery::Full) {
            self.cluster.record(&outcomes);
            let status = self.cluster.status().clone();
            self.check_persisted(&status)?;
        }
        self.check_cluster()
    }

    /// Promises about every status that reaches the API server.
    fn check_persisted(&mut self, status: &ServiceRefreshStatus) -> Result<(), TestCaseError> {
        let Some(run) = &status.run else { return Ok(()) };
        let planned: Vec<ObjectKey> = status
            .batches
            .iter()
            .flat_map(|batch| batch.services.iter())
            .map(|s| service_key(s, NS))
            .collect();
        let unique: BTreeSet<&ObjectKey> = planned.iter().collect();
        prop_assert_eq!(unique.len(), planned.len(), "a Deployment is planned twice");
        let first_plan = self.plans.entry(run.id.clone()).or_insert_with(|| planned.clone());
        prop_assert_eq!(&*first_plan, &planned, "the plan of a run changed");

        // (d) Under Abort, no batch after one with a failure ever starts.
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
        for service in status.batches.iter().flat_map(|batch| batch.services.iter()) {
            if service.result == Some(ServiceResult::Ready) {
                let key = service_key(service, NS);
                let restarted =
                    self.cluster.template_changes.contains_key(&(run.id.clone(), key.clone()));
                prop_assert!(restarted, "{} is Ready without a restart by {}", key, run.id);
            }
        }

        // (c) An ended run gave every planned Deployment its one result.
        if run.end_time.is_some() {
            prop_assert!(status.batches.iter().all(|batch| batch.phase == BatchPhase::Completed));
            for service in status.batches.iter().flat_map(|batch| batch.services.iter()) {
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
        cache: &[Arc<Deployment>],
    ) -> Result<(), TestCaseError> {
        let Some(run) = &output.run else { return Ok(()) };
        let was_ready: BTreeSet<ObjectKey> = input
            .filter(|input| input.run.as_ref().map(|r| &r.id) == Some(&run.id))
            .into_iter()
            .flat_map(|input| input.batches.iter().flat_map(|batch| batch.services.iter()))
            .filter(|service| service.result == Some(ServiceResult::Ready))
            .map(|service| service_key(service, NS))
            .collect();
        for service in output.batches.iter().flat_map(|batch| batch.services.iter()) {
            let key = service_key(service, NS);
            if service.result != Some(ServiceResult::Ready) || was_ready.contains(&key) {
                continue;
            }
            let patched = self.cluster.patch_generations.get(&(run.id.clone(), key.clone()));
            let seen = cache.iter().find(|d| {
                d.metadata.namespace.as_deref() == Some(key.namespace.as_str())
                    && d.metadata.name.as_deref() == Some(key.name.as_str())
            });
            let observed =
                seen.and_then(|d| d.status.as_ref()).and_then(|status| status.observed_generation);
            prop_assert!(
                patched.is_some() && observed >= patched.copied(),
                "{key} judged Ready on observedGeneration {observed:?} before our patch's {patched:?}"
            );
        }
        Ok(())
    }

    /// Promises about the cluster, whatever the status says.
    fn check_cluster(&self) -> Result<(), TestCaseError> {
        // (a) A run changes each pod template at most once.
        for ((run_id, key), changes) in &self.cluster.template_changes {
            prop_assert!(*changes <= 1, "{key} was restarted {changes} times by {run_id}");
        }
        // (b) At most batchSize Deployments of the run are restarted and still unresolved.
        let Some(status) = &self.cluster.refresh.status else { return Ok(()) };
        let Some(run) = &status.run else { return Ok(()) };
        let unresolved: BTreeSet<ObjectKey> = status
            .batches
            .iter()
            .flat_map(|batch| batch.services.iter())
            .filter(|service| service.result.is_none())
            .map(|service| service_key(service, NS))
            .collect();
        let in_flight = self
            .cluster
            .deployments
            .iter()
            .filter(|(key, deployment)| {
                let ours = deployment
                    .spec
                    .template
                    .metadata
                    .as_ref()
                    .and_then(|metadata| metadata.annotations.as_ref())
                    .and_then(|annotations| annotations.get(RESTARTED_BY_ANNOTATION))
                    == Some(&run.id);
                ours && unresolved.contains(*key)
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
        self.cluster.may_start_run = true;
        self.cluster.refresh.spec.suspend = false;
        for _ in 0..400 {
            self.pass(false, Delivery::Full, 0, None)?;
            self.cluster.roll_out_all();
            let status = self.cluster.status();
            let trigger_handled = status.triggers.token == self.cluster.refresh.spec.trigger;
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
    let input_running: BTreeSet<ObjectKey> = input
        .into_iter()
        .flat_map(|status| status.batches.iter())
        .filter(|batch| batch.phase == BatchPhase::Running && batch.start_time.is_some())
        .flat_map(|batch| batch.services.iter())
        .filter(|service| service.result.is_none() && service.generation.is_none())
        .map(|service| service_key(service, NS))
        .collect();
    for restart in &decision.restarts {
        // Restarts come only from a batch whose start was persisted before this pass.
        prop_assert!(
            input_running.contains(&restart.deployment),
            "{} restarted outside a persisted running batch",
            restart.deployment
        );
        prop_assert_eq!(
            run_owner(&restart.restarted_by),
            Some((NS.to_owned(), "refresh".to_owned()))
        );
    }
    if let Some(input) = input
        && run_active(input)
    {
        // A trigger seen during a run waits for the run's end.
        prop_assert_eq!(
            decision.status.run.as_ref().map(|run| &run.id),
            input.run.as_ref().map(|run| &run.id)
        );
    }
    if decision.status.batches.iter().any(|batch| batch.phase == BatchPhase::Running)
        && !decision.restarts.is_empty()
    {
        prop_assert!(decision.wake_at.is_some(), "a running batch needs a deadline to wake for");
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
        prop_assert!(settled.restarts.is_empty() && settled.events.is_empty());
    }

    #[test]
    fn passes_without_news_reach_a_fixed_point(setup in setup(), ops in prop::collection::vec(op(), 0..40)) {
        let mut model = Model::new(&setup);
        for op in &ops {
            model.apply(op)?;
        }
        // With the world frozen (no patch applied, no time passing), passes converge.
        let snapshot = model.cluster.snapshot();
        let mut previous = model.cluster.refresh.status.clone();
        let mut converged = false;
        for _ in 0..8 {
            let decision = model.cluster.pass_with(&snapshot);
            if previous.as_ref() == Some(&decision.status) {
                converged = true;
                break;
            }
            previous = Some(decision.status);
        }
        prop_assert!(converged, "status kept changing with nothing new");
    }
}
