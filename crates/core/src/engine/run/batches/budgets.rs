//! PodDisruptionBudget awareness in the run loop. A batch is cut short before a service
//! that shares a budget with one already in it ([`trim_batch`]), so a later batch takes it;
//! and while a batch runs, the [`DisruptionGuard`] holds back a service whose budget covers
//! another rollout of the run in flight, or allows no disruption now. A held service takes
//! no in-flight place; the pass states the `WaitingForDisruptionBudget` wait, and a service
//! still held when `batchTimeout` passes ends Skipped (`DisruptionBudget`).

use std::collections::{BTreeMap, BTreeSet};

use crate::crd::ServiceRefreshStatus;
use crate::engine::disruption_budgets::DisruptionBudgets;
use crate::engine::observed::DeploymentSnapshot;
use crate::engine::plan::{self, Plan};
use crate::engine::run::Pass;
use crate::engine::spec::ValidSpec;
use crate::engine::waits::{Wait, WaitReason};
use crate::engine::{ClusterView, ObjectKey, results};

/// What the budgets allow in one pass over the running batch.
pub(super) struct DisruptionGuard {
    budgets: Option<DisruptionBudgets>,
    /// Each budget covering a rollout of the run in flight, and that rollout's workload.
    taken: BTreeMap<ObjectKey, ObjectKey>,
    /// The first hold of the pass, worded for `status.waiting`.
    first_hold: Option<String>,
}

impl DisruptionGuard {
    /// The budgets this pass observes; none when `spec.pacing.respectDisruptionBudgets` is
    /// false.
    pub fn observe(pass: &Pass, spec: &ValidSpec) -> Self {
        let budgets = spec
            .respect_disruption_budgets
            .then(|| DisruptionBudgets::new(pass.observation.cluster.disruption_budgets()));
        Self { budgets, taken: BTreeMap::new(), first_hold: None }
    }

    /// Starts a batch's pass: the rollouts of the run in flight outside it take their
    /// budgets.
    pub fn begin_batch(&mut self, cluster: &dyn ClusterView, elsewhere: &[ObjectKey]) {
        self.taken.clear();
        // A hold in a batch that ended in this pass (at its timeout) holds nothing now.
        self.first_hold = None;
        for key in elsewhere {
            self.in_flight(cluster, key);
        }
    }

    /// A rollout of the run in flight (rolling, or its restart just sent) takes every budget
    /// covering its pods.
    pub fn in_flight(&mut self, cluster: &dyn ClusterView, key: &ObjectKey) {
        let Some(budgets) = &self.budgets else {
            return;
        };
        let Some(workload) = cluster.deployment(key) else {
            return;
        };
        for budget in budgets.covering(&workload) {
            self.taken.entry(budget.key()).or_insert_with(|| key.clone());
        }
    }

    /// Why `workload` may not be restarted now, if a budget holds it: one covering it
    /// covers another rollout in flight, or allows no disruption.
    pub fn hold(&self, workload: &DeploymentSnapshot) -> Option<String> {
        let budgets = self.budgets.as_ref()?;
        let key = workload.key();
        let covering = budgets.covering(workload);
        let shared = covering.iter().find_map(|budget| {
            let other = self.taken.get(&budget.key()).filter(|other| **other != key)?;
            Some(format!(
                "held: PodDisruptionBudget {} also covers {}, whose rollout is in flight; no \
                 two services under one budget roll out together",
                budget.key(),
                other.describe()
            ))
        });
        let why = shared.or_else(|| {
            covering.iter().find_map(|budget| {
                let refusal = budget.refusal()?;
                Some(format!(
                    "held: PodDisruptionBudget {} allows no disruption now: {refusal}; it is \
                     restarted once the budget allows one",
                    budget.key()
                ))
            })
        })?;
        Some(why)
    }

    /// Notes that `key` waits, held for `why` (what [`Self::hold`] said).
    pub fn held(&mut self, key: &ObjectKey, why: &str) {
        self.first_hold.get_or_insert_with(|| format!("{} is {why}", key.describe()));
    }

    /// States the pass's wait for a budget, if a service was held. The batch may also be
    /// one a budget cut short: the next service waits for a rollout under its budget.
    pub fn state_wait(
        &mut self,
        pass: &mut Pass,
        status: &ServiceRefreshStatus,
        running: usize,
        batch_size: usize,
    ) {
        if self.budgets.is_none() {
            return;
        }
        let message =
            self.first_hold.take().or_else(|| cut_short(pass, status, running, batch_size));
        if let Some(message) = message {
            let wait =
                Wait { reason: WaitReason::WaitingForDisruptionBudget, message, until: None };
            pass.wait(status, wait);
        }
    }
}

/// Why the running batch (at `running`) holds fewer services than `batch_size` while the
/// next one of the plan waits: a budget covers both it and a rollout of the batch in flight.
fn cut_short(
    pass: &Pass,
    status: &ServiceRefreshStatus,
    running: usize,
    batch_size: usize,
) -> Option<String> {
    let batch = status.batches.get(running)?;
    if batch.services.len() >= batch_size {
        return None;
    }
    let plan = pass.plan_of(status)?;
    let cluster = pass.observation.cluster;
    let budgets = DisruptionBudgets::new(cluster.disruption_budgets());
    let next = next_unresulted(plan, status)?;
    let waiting = cluster.deployment(&next.key)?;
    let covering = budgets.covering(&waiting);
    if batch.wave.is_some_and(|wave| wave != next.wave) {
        return None;
    }
    batch.services.iter().filter(|row| row.result.is_none()).find_map(|row| {
        let key = plan::service_key(row, pass.own_namespace);
        let rolling = cluster.deployment(&key)?;
        let shared = budgets.covering(&rolling);
        let budget = covering
            .iter()
            .find(|budget| shared.iter().any(|other| other.key() == budget.key()))?;
        Some(format!(
            "{} waits for the next batch: PodDisruptionBudget {} also covers {}, in flight in \
             batch {}",
            next.key.describe(),
            budget.key(),
            key.describe(),
            batch.index
        ))
    })
}

/// The first plan entry from the run's cursor without a result.
fn next_unresulted<'plan>(
    plan: &'plan Plan,
    status: &ServiceRefreshStatus,
) -> Option<&'plan crate::engine::plan::PlanEntry> {
    let cursor = status.run.as_ref().map_or(0, |run| run.next_position);
    let resulted = results::resulted_positions(&status.results);
    (cursor..plan.end())
        .filter(|position| !resulted.contains(*position))
        .find_map(|position| plan.get(position))
}

/// The batch cut from `positions`, ending before the first service a budget shares with
/// one already in it (the first service always stays). The next batch starts with it.
pub(super) fn trim_batch(
    pass: &Pass,
    spec: &ValidSpec,
    plan: &Plan,
    mut positions: Vec<u32>,
) -> Vec<u32> {
    if !spec.respect_disruption_budgets {
        return positions;
    }
    let cluster = pass.observation.cluster;
    let budgets = DisruptionBudgets::new(cluster.disruption_budgets());
    let mut taken = BTreeSet::new();
    let mut keep = positions.len();
    for (index, position) in positions.iter().enumerate() {
        let Some(workload) = plan.get(*position).and_then(|entry| cluster.deployment(&entry.key))
        else {
            continue;
        };
        let covering: Vec<ObjectKey> =
            budgets.covering(&workload).iter().map(|budget| budget.key()).collect();
        // Nothing is taken before the first service, so it always stays.
        if covering.iter().any(|budget| taken.contains(budget)) {
            keep = index;
            break;
        }
        taken.extend(covering);
    }
    positions.truncate(keep);
    positions
}
