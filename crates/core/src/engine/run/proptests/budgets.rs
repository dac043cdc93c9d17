//! The property model's PodDisruptionBudgets: which generated Deployments each budget
//! covers, and the promises about them. No decision restarts a service while a budget
//! covering it allows no disruption, and never are two of the run's rollouts under one
//! budget in flight at once.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use crate::crd::ServiceRefreshStatus;
use crate::engine::disruption_budgets::DisruptionBudgets;
use crate::engine::run::test_support::{ModelCluster, ModelView};
use crate::engine::{Decision, ObjectKey};

/// The budgets of a setup: `groups[i]` puts Deployment i under budget `pdb-<n>` (0: none).
pub fn budget_members(groups: &[u8], keys: &[ObjectKey]) -> BTreeMap<String, Vec<ObjectKey>> {
    let mut members: BTreeMap<String, Vec<ObjectKey>> = BTreeMap::new();
    for (key, group) in keys.iter().zip(groups) {
        if *group > 0 {
            members.entry(budget_name(*group)).or_default().push(key.clone());
        }
    }
    members
}

pub fn budget_name(group: u8) -> String {
    format!("pdb-{group}")
}

/// Gives a Deployment created again the pod labels of the budgets it was under.
pub fn relabel(
    cluster: &mut ModelCluster,
    members: &BTreeMap<String, Vec<ObjectKey>>,
    key: &ObjectKey,
) {
    for (name, keys) in members {
        if keys.contains(key) && cluster.deployments.contains_key(key) {
            let deployment = cluster.deployment_mut(key);
            let mut labels = deployment.pod_labels();
            labels.insert(format!("budget-{name}"), "in".to_owned());
            deployment.set_pod_labels(labels);
        }
    }
}

/// No restart the pass decides (rather than sends again, undecided since an earlier pass)
/// touches a service whose budget, as the pass saw it, allows no disruption. Returns
/// whether a service of the decision waits for a budget.
pub fn check_restarts_allowed(
    input: Option<&ServiceRefreshStatus>,
    cache: &ModelView,
    decision: &Decision,
) -> Result<bool, TestCaseError> {
    let budgets = DisruptionBudgets::new(cache.disruption_budgets.iter().cloned());
    let decided_before: BTreeSet<String> = input
        .into_iter()
        .flat_map(|status| &status.batches)
        .flat_map(|batch| &batch.services)
        .filter(|row| row.uid.is_some())
        .map(|row| row.name.clone())
        .collect();
    for restart in &decision.restarts {
        if decided_before.contains(&restart.deployment.name) {
            continue;
        }
        let Some(workload) = cache.deployments.get(&restart.deployment) else { continue };
        for budget in budgets.covering(workload) {
            prop_assert!(
                budget.refusal().is_none(),
                "{} restarted while {}",
                restart.deployment,
                budget.refusal().unwrap_or_default()
            );
        }
    }
    Ok(decision
        .status
        .waiting
        .as_ref()
        .is_some_and(|waiting| waiting.reason == "WaitingForDisruptionBudget"))
}

/// At most one of `in_flight` under each budget of the cluster.
pub fn check_one_in_flight_per_budget(
    cluster: &ModelCluster,
    in_flight: &[ObjectKey],
) -> Result<(), TestCaseError> {
    let view = cluster.view();
    let budgets = DisruptionBudgets::new(view.disruption_budgets.iter().cloned());
    let mut under: BTreeMap<ObjectKey, ObjectKey> = BTreeMap::new();
    for key in in_flight {
        let Some(workload) = view.deployments.get(key) else { continue };
        for budget in budgets.covering(workload) {
            if let Some(other) = under.insert(budget.key(), key.clone()) {
                return Err(TestCaseError::fail(format!(
                    "{other} and {key} in flight together under PodDisruptionBudget {}",
                    budget.key()
                )));
            }
        }
    }
    Ok(())
}
