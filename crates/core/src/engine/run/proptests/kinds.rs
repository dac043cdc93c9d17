//! The fleet's shape in the property model: workloads of every kind (StatefulSets and
//! DaemonSets beside Deployments, one StatefulSet with `updateStrategy: OnDelete`) and
//! ordered waves; and the promises about them: a batch of a later wave starts only once
//! every workload of the waves before has a result, and an `OnDelete` StatefulSet is never
//! restarted and never ends otherwise than Skipped (or Gone, once deleted).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::model::FOREIGN_RUN;
use crate::crd::{ServiceRefreshStatus, ServiceResult, WorkloadKind};
use crate::engine::observed::UpdateStrategy;
use crate::engine::results::reason;
use crate::engine::run::test_support::ModelCluster;
use crate::engine::view::RunView;
use crate::engine::{ObjectKey, Plan};

/// The label of the first wave's workloads.
const TIER: &str = "tier";
const SYSTEM: &str = "system";

/// How the generated fleet is made up.
#[derive(Clone, Debug, Default)]
pub struct Shape {
    /// Workloads cycle through Deployment, StatefulSet, DaemonSet.
    pub mixed_kinds: bool,
    /// `spec.waves`: the even-numbered workloads form the first wave, the rest the last.
    pub waves: bool,
    /// The StatefulSets with `updateStrategy: OnDelete`.
    pub on_delete: BTreeSet<ObjectKey>,
    /// Whether the first StatefulSet is made `OnDelete`.
    pub wants_on_delete: bool,
}

impl Shape {
    /// The kind of the workload at `index`.
    pub fn kind_of(&self, index: usize) -> WorkloadKind {
        if !self.mixed_kinds {
            return WorkloadKind::Deployment;
        }
        [WorkloadKind::Deployment, WorkloadKind::StatefulSet, WorkloadKind::DaemonSet][index % 3]
    }

    /// The spec fields the shape adds.
    pub fn spec_fields(&self, spec: &mut Value) {
        if self.mixed_kinds {
            spec["kinds"] = json!(["Deployment", "StatefulSet", "DaemonSet"]);
        }
        if self.waves {
            spec["waves"] = json!([{"selector": {"matchLabels": {TIER: SYSTEM}}}]);
        }
    }

    /// Creates (or creates again) the workload at `index`, shaped: its wave label, and the
    /// `OnDelete` strategy of the first StatefulSet.
    pub fn create(
        &mut self,
        cluster: &mut ModelCluster,
        index: usize,
        namespace: &str,
        replicas: i32,
    ) -> ObjectKey {
        let kind = self.kind_of(index);
        let key = cluster.add_workload(kind, namespace, &format!("svc-{index}"), replicas);
        let snapshot = cluster.deployment_mut(&key);
        if self.waves && index.is_multiple_of(2) {
            snapshot.set_labels(&BTreeMap::from([(TIER.to_owned(), SYSTEM.to_owned())]));
        }
        let first_stateful_set = kind == WorkloadKind::StatefulSet && index == 1;
        if self.wants_on_delete && first_stateful_set {
            snapshot.update_strategy = UpdateStrategy {
                type_: Some("OnDelete".to_owned()),
                rolling_update: false,
                partition: None,
            };
            self.on_delete.insert(key.clone());
        }
        key
    }

    /// Whether a Pause applies: only Deployments have `spec.paused`.
    pub fn pausable(key: &ObjectKey) -> bool {
        key.kind.is_deployment()
    }
}

/// The first status on record that holds a batch is the one written before its restarts:
/// at that point every workload of an earlier wave must have a result. `seen` remembers the
/// batches (run, index) already checked. Returns whether a batch of a later wave started.
pub fn check_waves(
    seen: &mut BTreeSet<(String, u32)>,
    status: &ServiceRefreshStatus,
    plan: &Plan,
) -> Result<bool, TestCaseError> {
    let Some(run) = &status.run else { return Ok(false) };
    let waves: BTreeMap<&ObjectKey, u32> =
        plan.entries().iter().map(|entry| (&entry.key, entry.wave)).collect();
    let view = RunView::new(status, Some(plan), super::super::test_support::NS);
    let mut later_wave = false;
    for batch in status.batches.iter().filter(|batch| batch.start_time.is_some()) {
        if !seen.insert((run.id.clone(), batch.index)) {
            continue;
        }
        let wave = batch.wave.unwrap_or(0);
        later_wave |= wave > 0;
        for service in view.services() {
            let earlier = waves.get(&service.key).is_some_and(|of| *of < wave);
            prop_assert!(
                !earlier || service.result.is_some(),
                "batch {} of wave {wave} started while {} of wave {:?} had no result",
                batch.index,
                service.key,
                waves.get(&service.key)
            );
        }
    }
    Ok(later_wave)
}

/// An `OnDelete` StatefulSet is never restarted by a run, and an ended run leaves it
/// Skipped for that reason, or Gone when it was deleted. Returns whether one ended Skipped
/// for its strategy.
pub fn check_on_delete(
    shape: &Shape,
    cluster: &ModelCluster,
    status: &ServiceRefreshStatus,
    plan: &Plan,
) -> Result<bool, TestCaseError> {
    for (run, key) in cluster.template_changes.keys() {
        prop_assert!(
            run == FOREIGN_RUN || !shape.on_delete.contains(key),
            "OnDelete {key} restarted by {run}"
        );
    }
    let Some(run) = status.run.as_ref().filter(|run| run.end_time.is_some()) else {
        return Ok(false);
    };
    let mut skipped = false;
    let view = RunView::new(status, Some(plan), super::super::test_support::NS);
    for service in view.services().filter(|service| shape.on_delete.contains(&service.key)) {
        let for_strategy = service.result == Some(ServiceResult::Skipped)
            && service.reason.as_deref() == Some(reason::ON_DELETE);
        skipped |= for_strategy;
        prop_assert!(
            matches!(service.result, Some(ServiceResult::Skipped | ServiceResult::Gone)),
            "OnDelete {} ended {:?} ({:?}) in run {}",
            service.key,
            service.result,
            service.reason,
            run.number
        );
    }
    Ok(skipped)
}
