//! Canary first and slow start in the property tests. [`Pacing`] is the main model's share:
//! it puts a canary and slow start into the generated specs and checks, on every pass and
//! every persisted status, that no batch is larger than its slow-start (or canary) size,
//! that the batch after the canary starts only once the soak has passed with every canary
//! ready in the cache the pass read, and that a canary that failed or turned unready ended
//! the run as Failed with only the canaries restarted (the main model's in-flight check keeps
//! `batchSize` under them).
//!
//! Its own, smaller model (random fleets and specs against rollouts that finish, fail, or
//! turn unready, pods the scheduler cannot place, and passing time) keeps what the main
//! model's edits, waves, budgets and exclusions blur: every batch takes exactly its
//! slow-start size, or the rest of the fleet, while capacity never shrank it.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::crd::{BatchPhase, Phase, ServiceRefreshStatus, ServiceResult};
use crate::engine::canary::scheduled_size;
use crate::engine::positions::PositionSet;
use crate::engine::readiness::{self, Verdict};
use crate::engine::results::reason;
use crate::engine::run::run_active;
use crate::engine::run::test_support::{ModelCluster, ModelView};
use crate::engine::{ObjectKey, Plan};

/// The spec's canary and slow start in the main model (never edited during a history).
#[derive(Clone, Debug, Default)]
pub struct Pacing {
    canary: Option<(NonZeroUsize, SignedDuration)>,
    slow_start: bool,
}

impl Pacing {
    /// A canary of `size` (cut to `batch_size`) soaking `soak` seconds, and slow start.
    pub fn new(canary: Option<(u32, i64)>, batch_size: u32, slow_start: bool) -> Self {
        let canary = canary.and_then(|(size, soak)| {
            let size = NonZeroUsize::new(size.min(batch_size) as usize)?;
            Some((size, SignedDuration::from_secs(soak)))
        });
        Pacing { canary, slow_start }
    }

    /// `spec.pacing` of the generated resource.
    pub fn spec_fields(&self, spec: &mut Value) {
        let mut pacing = json!({"slowStart": self.slow_start});
        if let Some((size, soak)) = self.canary {
            pacing["canary"] = json!({"size": size.get(), "soak": format!("{}s", soak.as_secs())});
        }
        spec["pacing"] = pacing;
    }

    /// The smallest batch size admission lets an edit set: the canary's size.
    pub fn canary_size(&self) -> u32 {
        self.canary.map_or(1, |(size, _)| u32::try_from(size.get()).unwrap_or(u32::MAX))
    }

    /// A pass that starts the batch after the canary does so only once the soak has passed
    /// since the canary batch completed, with every canary that became ready still ready in
    /// the cache the pass read.
    pub fn check_pass(
        &self,
        input: Option<&ServiceRefreshStatus>,
        output: &ServiceRefreshStatus,
        input_plan: Option<&Plan>,
        cache: &ModelView,
        now: Timestamp,
    ) -> Result<(), TestCaseError> {
        let Some((_, soak)) = self.canary else { return Ok(()) };
        let Some(run) = output.run.as_ref().filter(|run| !run.dry_run) else { return Ok(()) };
        let same_run = input.and_then(|input| input.run.as_ref()).map(|r| &r.id) == Some(&run.id);
        let had_second =
            input.is_some_and(|input| input.batches.iter().any(|batch| batch.index >= 2));
        let started_second = output.batches.iter().any(|batch| batch.index == 2);
        if !same_run || had_second || !started_second || output.earlier_batches.is_some() {
            return Ok(());
        }
        let Some(canary_batch) = output.batches.iter().find(|batch| batch.index == 1) else {
            return Err(TestCaseError::fail("batch 2 started without a canary batch"));
        };
        let ended = canary_batch.end_time.as_ref().map(|time| time.0);
        let soaked = ended.and_then(|ended| ended.checked_add(soak).ok());
        prop_assert!(
            soaked.is_some_and(|until| now >= until),
            "batch 2 started at {now} before the soak ended ({soaked:?})"
        );
        let resulted = crate::engine::results::resulted_positions(&output.results);
        let Some(plan) = input_plan else { return Ok(()) };
        let positions = canary_batch.positions.as_deref();
        for (position, key) in positions_and_keys(plan, positions) {
            if resulted.contains(position) {
                continue;
            }
            let ready = cache.deployments.get(&key).is_some_and(|deployment| {
                readiness::verdict(deployment, deployment.generation()) == Verdict::Ready
            });
            prop_assert!(ready, "batch 2 started while canary {key} was not ready");
        }
        Ok(())
    }

    /// Every persisted batch is no larger than its slow-start (or canary) size under the
    /// largest `batchSize` the spec had; a canary that failed ended the run as Failed after
    /// its one batch, with no service beyond the canaries restarted by it.
    pub fn check_persisted(
        &self,
        status: &ServiceRefreshStatus,
        plan: &Plan,
        max_batch_size: usize,
        restarted_by_run: impl Fn(&ObjectKey) -> bool,
    ) -> Result<(), TestCaseError> {
        let canary_size = self.canary.map(|(size, _)| size);
        for batch in &status.batches {
            let size = keys_at(plan, batch.positions.as_deref()).len();
            let scheduled =
                scheduled_size(batch.index, max_batch_size, canary_size, self.slow_start);
            prop_assert!(size <= scheduled, "batch {} has {size} > {scheduled}", batch.index);
        }
        if !status.results.iter().any(|group| group.reason == reason::CANARY_FAILED) {
            return Ok(());
        }
        prop_assert!(self.canary.is_some(), "a canary failed without a canary");
        prop_assert!(!run_active(status), "a failed canary leaves the run active");
        // The run's own phase is in the history (the resource's phase may already say the
        // next run waits for its slot).
        let run = status.run.as_ref().map(|run| run.id.as_str());
        let ended = status.history.iter().find(|summary| Some(summary.id.as_str()) == run);
        prop_assert_eq!(ended.map(|summary| summary.phase), Some(Phase::Failed));
        prop_assert_eq!(status.batches.len(), 1, "batches after a failed canary");
        let canaries: BTreeSet<ObjectKey> = status
            .batches
            .first()
            .map(|batch| keys_at(plan, batch.positions.as_deref()))
            .unwrap_or_default()
            .into_iter()
            .collect();
        for entry in plan.entries() {
            prop_assert!(
                canaries.contains(&entry.key) || !restarted_by_run(&entry.key),
                "{} restarted beyond the canaries {canaries:?}",
                entry.key
            );
        }
        Ok(())
    }
}

/// The positions of `text` in `plan`, with their keys.
fn positions_and_keys(plan: &Plan, text: Option<&str>) -> Vec<(u32, ObjectKey)> {
    let positions = text.and_then(|text| PositionSet::parse(text).ok()).unwrap_or_default();
    positions
        .iter()
        .filter_map(|position| plan.get(position).map(|entry| (position, entry.key.clone())))
        .collect()
}

#[derive(Clone, Debug)]
struct CanarySetup {
    deployments: usize,
    batch_size: u32,
    /// The canary's size (at most the batch size) and soak in seconds.
    canary: Option<(u32, i64)>,
    slow_start: bool,
    abort: bool,
}

#[derive(Clone, Debug)]
enum CanaryOp {
    Pass,
    /// The Deployment controller moves Deployment `index`: 0 starts, 1 finishes, 2 fails.
    Rollout {
        index: usize,
        step: u8,
    },
    /// The Deployment controller finishes every rollout.
    RollOutAll,
    /// A pod of Deployment `index` stops being available after its rollout finished.
    TurnUnready {
        index: usize,
    },
    /// A pod of Deployment `index` cannot be scheduled (true) or is placed (false).
    Unschedulable {
        index: usize,
        blocked: bool,
    },
    Advance(i64),
}

fn setup() -> impl Strategy<Value = CanarySetup> {
    (1..=8usize, 1..=4u32, any::<bool>(), any::<bool>())
        .prop_flat_map(|(deployments, batch_size, slow_start, abort)| {
            let canary =
                prop::option::weighted(0.75, (1..=batch_size, prop_oneof![Just(0i64), 1..120i64]));
            (Just(deployments), Just(batch_size), canary, Just(slow_start), Just(abort))
        })
        .prop_map(|(deployments, batch_size, canary, slow_start, abort)| CanarySetup {
            deployments,
            batch_size,
            canary,
            slow_start,
            abort,
        })
}

fn op() -> impl Strategy<Value = CanaryOp> {
    prop_oneof![
        10 => Just(CanaryOp::Pass),
        8 => (0..8usize, prop_oneof![2 => Just(0u8), 6 => Just(1u8), 1 => Just(2u8)])
            .prop_map(|(index, step)| CanaryOp::Rollout { index, step }),
        1 => (0..8usize).prop_map(|index| CanaryOp::TurnUnready { index }),
        3 => Just(CanaryOp::RollOutAll),
        2 => (0..8usize, any::<bool>())
            .prop_map(|(index, blocked)| CanaryOp::Unschedulable { index, blocked }),
        4 => (1..90i64).prop_map(CanaryOp::Advance),
    ]
}

fn model(setup: &CanarySetup) -> (ModelCluster, Vec<ObjectKey>) {
    let mut pacing = json!({"slowStart": setup.slow_start});
    if let Some((size, soak)) = setup.canary {
        pacing["canary"] = json!({"size": size, "soak": format!("{soak}s")});
    }
    let policy = if setup.abort { "Abort" } else { "Continue" };
    let mut cluster = ModelCluster::new(json!({
        "selector": {}, "batchSize": setup.batch_size, "batchTimeout": "60s",
        "failurePolicy": policy, "pacing": pacing,
    }));
    let keys = cluster.add_many(setup.deployments);
    (cluster, keys)
}

/// The keys at the positions of `text` in `plan`.
fn keys_at(plan: &Plan, text: Option<&str>) -> Vec<ObjectKey> {
    let positions = text.and_then(|text| PositionSet::parse(text).ok()).unwrap_or_default();
    positions
        .iter()
        .filter_map(|position| plan.get(position).map(|entry| entry.key.clone()))
        .collect()
}

fn is_ready(cluster: &ModelCluster, key: &ObjectKey) -> bool {
    cluster.deployments.get(key).is_some_and(|deployment| {
        readiness::verdict(&deployment.snapshot, deployment.snapshot.generation()) == Verdict::Ready
    })
}

/// What one history established, for the checks that it reached something.
#[derive(Default)]
struct Seen {
    soaked: bool,
    canary_failed: bool,
    past_the_canary: bool,
}

fn check_history(setup: &CanarySetup, ops: &[CanaryOp]) -> Result<Seen, TestCaseError> {
    let (mut cluster, keys) = model(setup);
    let limit = setup.batch_size as usize;
    let canary_size = setup.canary.and_then(|(size, _)| NonZeroUsize::new(size as usize));
    let mut seen = Seen::default();
    let mut shrunk = false;
    let mut checked_batches = BTreeSet::new();
    let mut settled: BTreeSet<ObjectKey> = BTreeSet::new();
    let ops = ops.iter().chain(std::iter::repeat_n(&CanaryOp::Pass, 3));
    for op in ops {
        // Rollouts that completed or failed left the budget for good, whatever the
        // Deployment does later on its own (a pod turning unready).
        for (key, deployment) in &cluster.deployments {
            let snapshot = &deployment.snapshot;
            if snapshot.restarted_by.is_some()
                && !readiness::verdict(snapshot, snapshot.generation()).is_waiting()
            {
                settled.insert(key.clone());
            }
        }
        match op {
            CanaryOp::Pass => {}
            CanaryOp::Rollout { index, step } => {
                if let Some(key) = keys.get(*index) {
                    match step {
                        0 => cluster.start_rollout(key),
                        1 => cluster.roll_out(key),
                        _ => cluster.fail_rollout(key),
                    }
                }
                continue;
            }
            CanaryOp::RollOutAll => {
                cluster.roll_out_all();
                continue;
            }
            CanaryOp::TurnUnready { index } => {
                if let Some(key) = keys.get(*index)
                    && let Some(rollout) = cluster.deployment_mut(key).rollout.as_mut()
                {
                    rollout.available_replicas = Some(0);
                }
                continue;
            }
            CanaryOp::Unschedulable { index, blocked } => {
                if let Some(key) = keys.get(*index) {
                    if *blocked { cluster.block_pod(key) } else { cluster.place_pod(key) }
                }
                continue;
            }
            CanaryOp::Advance(seconds) => {
                cluster.now += SignedDuration::from_secs(*seconds);
                continue;
            }
        }
        let before = cluster.refresh.status.clone();
        let canaries_ready_before: Vec<bool> = match (&before, cluster.plan()) {
            (Some(status), Some(plan)) => status
                .batches
                .iter()
                .find(|batch| batch.index == 1)
                .map(|batch| keys_at(&plan, batch.positions.as_deref()))
                .unwrap_or_default()
                .iter()
                .map(|key| is_ready(&cluster, key))
                .collect(),
            _ => Vec::new(),
        };
        let decision = cluster.pass();
        cluster.apply(&decision);
        let status = cluster.status().clone();
        let Some(plan) = cluster.plan() else { continue };
        shrunk |= status.run.as_ref().is_some_and(|run| run.pacing.is_some());

        // Every batch no larger than its scheduled size; exactly that (or the rest) unless
        // capacity shrank the effective size.
        let mut cut_before = 0usize;
        for batch in &status.batches {
            let size = keys_at(&plan, batch.positions.as_deref()).len();
            let scheduled = scheduled_size(batch.index, limit, canary_size, setup.slow_start);
            prop_assert!(size <= scheduled, "batch {} has {size} > {scheduled}", batch.index);
            if !shrunk && checked_batches.insert(batch.index) {
                let remaining = plan.len() - cut_before;
                prop_assert_eq!(size, scheduled.min(remaining), "batch {}", batch.index);
            }
            cut_before += size;
        }

        // Never more than batchSize of the run's rollouts in flight: Deployments the run
        // restarted whose rollout has neither completed nor failed since, and which the run
        // has not seen complete (the main model's rule).
        let run = status.run.as_ref().map(|run| run.id.clone()).unwrap_or_default();
        let seen_complete: BTreeSet<ObjectKey> = cluster
            .run_view()
            .services()
            .filter(|service| {
                service.result.is_some_and(|result| result != ServiceResult::TimedOut)
            })
            .map(|service| service.key.clone())
            .collect();
        let in_flight = cluster
            .deployments
            .iter()
            .filter(|(key, deployment)| {
                let snapshot = &deployment.snapshot;
                snapshot.restarted_by.as_deref() == Some(run.as_str())
                    && !seen_complete.contains(*key)
                    && !settled.contains(*key)
                    && readiness::verdict(snapshot, snapshot.generation()).is_waiting()
            })
            .count();
        prop_assert!(in_flight <= limit, "{in_flight} rollouts in flight, batchSize {limit}");

        let Some((_, soak)) = setup.canary else { continue };
        let Some(canary_batch) = status.batches.iter().find(|batch| batch.index == 1) else {
            continue;
        };
        let canaries = keys_at(&plan, canary_batch.positions.as_deref());
        if status.waiting.as_ref().is_some_and(|waiting| waiting.reason == "CanarySoak") {
            seen.soaked = true;
        }
        // The batch after the canary starts only after the soak, every canary ready.
        let started_second = status.batches.iter().any(|batch| batch.index == 2)
            && before.as_ref().is_some_and(|before| !before.batches.iter().any(|b| b.index == 2));
        if started_second {
            seen.past_the_canary = true;
            let end = canary_batch.end_time.as_ref().map(|time| time.0);
            let soaked_until = end.map(|end| end + SignedDuration::from_secs(soak));
            prop_assert!(
                soaked_until.is_some_and(|until| cluster.now >= until),
                "batch 2 started at {} before the soak ended ({soaked_until:?})",
                cluster.now
            );
            prop_assert!(
                canaries_ready_before.iter().all(|ready| *ready),
                "batch 2 started while a canary was not ready"
            );
        }
        // A canary that failed ends the run as Failed, with only the canaries restarted.
        let canary_failed =
            status.results.iter().any(|group| group.reason == reason::CANARY_FAILED);
        if canary_failed {
            seen.canary_failed = true;
            prop_assert!(!run_active(&status));
            prop_assert_eq!(status.phase, Some(Phase::Failed));
            let restarted: BTreeSet<ObjectKey> =
                cluster.template_changes.keys().map(|(_, key)| key.clone()).collect();
            let canaries: BTreeSet<ObjectKey> = canaries.iter().cloned().collect();
            prop_assert!(restarted.is_subset(&canaries), "{restarted:?} beyond {canaries:?}");
            prop_assert_eq!(status.batches.len(), 1);
        }
        let canary_batch_failed = canary_batch.phase == BatchPhase::Completed
            && canary_batch.counts.as_ref().is_some_and(|counts| counts.failed > 0);
        if canary_batch_failed && canaries.len() < plan.len() && !run_active(&status) {
            prop_assert_eq!(status.phase, Some(Phase::Failed));
            prop_assert!(
                canary_failed || status.run.as_ref().is_some_and(|r| r.cancel_request.is_some())
            );
        }
    }
    Ok(seen)
}

#[test]
fn canaries_soak_fail_alone_and_slow_start_doubles() {
    let cases = super::cases();
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    });
    let reach = std::cell::RefCell::new([0u32; 3]);
    let strategy = (setup(), prop::collection::vec(op(), 1..80));
    let result = runner.run(&strategy, |(setup, ops)| {
        let seen = check_history(&setup, &ops)?;
        let mut reach = reach.borrow_mut();
        reach[0] += u32::from(seen.soaked);
        reach[1] += u32::from(seen.canary_failed);
        reach[2] += u32::from(seen.past_the_canary);
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let reach = reach.into_inner();
    println!("canary soaked / failed / passed in {reach:?} of {cases} cases");
    for count in reach {
        assert!(f64::from(count) >= 0.02 * f64::from(cases), "{reach:?} of {cases}: too rare");
    }
}
