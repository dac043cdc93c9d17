//! Which resources wait on which Deployment. A Deployment's pod template names only the last
//! run that restarted it; when two runs overlap, the other one must still hear about the
//! rollout it waits for. Every pass records what its resource awaits, and the Deployment
//! watch routes each change to all of them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use super::lock;
use crate::engine::ObjectKey;

#[derive(Default)]
pub struct AwaitIndex {
    state: Mutex<Index>,
}

#[derive(Default)]
struct Index {
    by_deployment: HashMap<ObjectKey, BTreeSet<ObjectKey>>,
    by_refresh: HashMap<ObjectKey, BTreeSet<ObjectKey>>,
}

impl AwaitIndex {
    /// Replaces what `refresh` awaits.
    pub fn set(&self, refresh: &ObjectKey, deployments: &BTreeSet<ObjectKey>) {
        let mut index = lock(&self.state);
        if index.by_refresh.get(refresh) == Some(deployments) {
            return;
        }
        let previous = index.by_refresh.remove(refresh).unwrap_or_default();
        for deployment in &previous {
            if let Some(waiters) = index.by_deployment.get_mut(deployment) {
                waiters.remove(refresh);
                if waiters.is_empty() {
                    index.by_deployment.remove(deployment);
                }
            }
        }
        for deployment in deployments {
            index.by_deployment.entry(deployment.clone()).or_default().insert(refresh.clone());
        }
        if !deployments.is_empty() {
            index.by_refresh.insert(refresh.clone(), deployments.clone());
        }
    }

    /// Every awaited workload in `namespace`: what a PodDisruptionBudget there may concern.
    pub fn awaited_in(&self, namespace: &str) -> Vec<ObjectKey> {
        lock(&self.state)
            .by_deployment
            .keys()
            .filter(|key| key.namespace == namespace)
            .cloned()
            .collect()
    }

    /// The resources waiting on `deployment`.
    pub fn waiting_on(&self, deployment: &ObjectKey) -> Vec<ObjectKey> {
        lock(&self.state)
            .by_deployment
            .get(deployment)
            .map(|waiters| waiters.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new("arcgis", name)
    }

    #[test]
    fn overlapping_runs_both_hear_about_a_shared_deployment() {
        let index = AwaitIndex::default();
        index.set(&key("run-a"), &BTreeSet::from([key("d1"), key("d2")]));
        index.set(&key("run-b"), &BTreeSet::from([key("d2")]));
        assert_eq!(index.waiting_on(&key("d2")), vec![key("run-a"), key("run-b")]);
        assert_eq!(index.waiting_on(&key("d1")), vec![key("run-a")]);
        assert!(index.waiting_on(&key("d3")).is_empty());
        let mut awaited = index.awaited_in("arcgis");
        awaited.sort();
        assert_eq!(awaited, [key("d1"), key("d2")]);
        assert!(index.awaited_in("other").is_empty());
    }

    #[test]
    fn a_new_set_replaces_the_old_and_empty_forgets() {
        let index = AwaitIndex::default();
        index.set(&key("run-a"), &BTreeSet::from([key("d1")]));
        index.set(&key("run-a"), &BTreeSet::from([key("d2")]));
        assert!(index.waiting_on(&key("d1")).is_empty());
        assert_eq!(index.waiting_on(&key("d2")), vec![key("run-a")]);
        index.set(&key("run-a"), &BTreeSet::new());
        assert!(index.waiting_on(&key("d2")).is_empty());
        assert!(lock(&index.state).by_refresh.is_empty());
    }
}
