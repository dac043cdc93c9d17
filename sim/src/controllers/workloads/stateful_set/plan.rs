//! One sync of the StatefulSet controller as pure arithmetic over the
//! pods it sees: what `updateStatefulSet` creates and deletes (`plan`),
//! the pod counts and the status it writes (`count`, `status`, with
//! `completeRollingUpdate`), and the spec it reads (`SetSpec`).

use serde_json::{Map, Value, json};

use super::super::int_or_percent;
use super::super::pods::PodView;

/// What the controller reads of a StatefulSet's spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetSpec {
    pub replicas: u64,
    /// `spec.ordinals.start`.
    pub start: u64,
    /// `podManagementPolicy: Parallel`.
    pub parallel: bool,
    /// `updateStrategy.type: RollingUpdate` (else `OnDelete`).
    pub rolling: bool,
    /// `updateStrategy.rollingUpdate.partition` when `rollingUpdate` is set.
    pub partition: Option<u64>,
    /// `rollingUpdate.maxUnavailable` in pods (rounded down, at least 1),
    /// when it is set.
    pub max_unavailable: Option<u64>,
    pub min_ready_seconds: u64,
    pub history_limit: usize,
}

impl SetSpec {
    pub fn of(set: &Value) -> SetSpec {
        let spec = |pointer: &str| set.pointer(&format!("/spec{pointer}"));
        let number = |pointer: &str| spec(pointer).and_then(Value::as_u64);
        let replicas = number("/replicas").unwrap_or(1);
        let rolling_update =
            spec("/updateStrategy/rollingUpdate").filter(|value| value.is_object());
        SetSpec {
            replicas,
            start: number("/ordinals/start").unwrap_or(0),
            parallel: spec("/podManagementPolicy").and_then(Value::as_str) == Some("Parallel"),
            rolling: spec("/updateStrategy/type").and_then(Value::as_str) != Some("OnDelete"),
            partition: rolling_update
                .map(|rolling| rolling.get("partition").and_then(Value::as_u64).unwrap_or(0)),
            max_unavailable: rolling_update
                .and_then(|rolling| rolling.get("maxUnavailable"))
                .map(|value| int_or_percent(value, replicas, false).max(1)),
            min_ready_seconds: number("/minReadySeconds").unwrap_or(0),
            history_limit: number("/revisionHistoryLimit").unwrap_or(10) as usize,
        }
    }

    /// Whether a new pod at `index` (from the first ordinal) is made from
    /// the current revision rather than the update revision
    /// (`newVersionedStatefulSetPod`).
    fn keeps_current(&self, index: u64, current_replicas: u64) -> bool {
        (self.rolling && self.partition.is_none() && index < current_replicas)
            || self.partition.is_some_and(|partition| index < partition)
    }

    /// How many pods a rollout replaces one after another (the rollout
    /// time is split among them).
    pub fn steps(&self) -> u64 {
        let to_replace = self.replicas - self.partition.unwrap_or(0).min(self.replicas);
        let batch = if self.parallel { self.max_unavailable.unwrap_or(1) } else { 1 };
        to_replace.div_ceil(batch.max(1)).max(1)
    }
}

/// What one sync does to the pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the pod of this ordinal, from the update revision (`update`)
    /// or the current one.
    Create { ordinal: u64, update: bool },
    /// Delete this pod (a failed one, or one beyond the replicas).
    Delete(String),
    /// Delete this pod to replace it at the update revision (a rolling
    /// update, which counts it out of `currentReplicas` at once).
    Replace(String),
}

/// The first pod that is not healthy: a slot (index) or a condemned pod
/// (ordinal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unhealthy {
    Slot(usize),
    Condemned(u64),
}

/// One sync of the controller (`updateStatefulSet`) over the set's pods
/// (`members`: ordinal and view), the update revision's name and the
/// stored `status.currentReplicas`.
pub fn plan(
    spec: &SetSpec,
    members: &[(u64, PodView)],
    update_revision: &str,
    current_replicas: u64,
    deleting: bool,
) -> Vec<Action> {
    let count = usize::try_from(spec.replicas).unwrap_or(0);
    let mut slots: Vec<Option<&PodView>> = vec![None; count];
    let mut condemned: Vec<(u64, &PodView)> = Vec::new();
    for (ordinal, view) in members {
        match ordinal.checked_sub(spec.start).filter(|index| *index < spec.replicas) {
            Some(index) => slots[index as usize] = Some(view),
            None => condemned.push((*ordinal, view)),
        }
    }
    condemned.sort_by_key(|(ordinal, _)| std::cmp::Reverse(*ordinal));
    let healthy = |slot: &Option<&PodView>| slot.is_some_and(PodView::healthy);
    let first_unhealthy =
        slots.iter().position(|slot| !healthy(slot)).map(Unhealthy::Slot).or_else(|| {
            condemned
                .iter()
                .rev()
                .find(|(_, view)| !view.healthy())
                .map(|(o, _)| Unhealthy::Condemned(*o))
        });
    if deleting {
        return Vec::new();
    }
    let monotonic = !spec.parallel;
    let mut actions = Vec::new();
    for (index, slot) in slots.iter().enumerate() {
        let index = index as u64;
        let Some(view) = slot else {
            let update = !spec.keeps_current(index, current_replicas);
            actions.push(Action::Create { ordinal: spec.start + index, update });
            if monotonic {
                return actions;
            }
            continue;
        };
        if matches!(view.phase.as_str(), "Failed" | "Succeeded") {
            if !view.deleting {
                actions.push(Action::Delete(view.name.clone()));
            }
            if monotonic {
                return actions;
            }
            continue;
        }
        if monotonic && (view.deleting || !view.running_and_ready() || !view.available) {
            return actions;
        }
    }
    for (ordinal, view) in &condemned {
        if view.deleting {
            if monotonic {
                return actions;
            }
            continue;
        }
        let first = first_unhealthy == Some(Unhealthy::Condemned(*ordinal));
        if monotonic && !first && (!view.running_and_ready() || !view.available) {
            return actions;
        }
        actions.push(Action::Delete(view.name.clone()));
        if monotonic {
            return actions;
        }
    }
    if !spec.rolling {
        return actions;
    }
    let update_min = usize::try_from(spec.partition.unwrap_or(0)).unwrap_or(usize::MAX);
    let outdated = |view: &PodView| view.revision != update_revision && !view.deleting;
    match spec.max_unavailable {
        // `updateStatefulSetAfterInvariantEstablished`.
        Some(max_unavailable) => {
            let unavailable = slots.iter().filter(|slot| !healthy(slot)).count() as u64;
            let mut to_delete = max_unavailable.saturating_sub(unavailable);
            for slot in slots.iter().skip(update_min).rev() {
                if to_delete == 0 {
                    break;
                }
                if let Some(view) = slot
                    && outdated(view)
                {
                    actions.push(Action::Replace(view.name.clone()));
                    to_delete -= 1;
                }
            }
        }
        None => {
            for slot in slots.iter().skip(update_min).rev() {
                let Some(view) = slot else {
                    return actions;
                };
                if outdated(view) {
                    actions.push(Action::Replace(view.name.clone()));
                    return actions;
                }
                if !view.healthy() {
                    return actions;
                }
            }
        }
    }
    actions
}

/// Pod counts of a status (`computeReplicaStatus`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub replicas: u64,
    pub ready: u64,
    pub available: u64,
    pub current: u64,
    pub updated: u64,
}

/// Counts the set's pods against its current and update revisions.
pub fn count(members: &[(u64, PodView)], current: &str, update: &str) -> Counts {
    let mut counts = Counts::default();
    for (_, view) in members {
        counts.replicas += 1;
        if view.running_and_ready() {
            counts.ready += 1;
            if view.available {
                counts.available += 1;
            }
        }
        if !view.deleting {
            counts.current += u64::from(view.revision == current);
            counts.updated += u64::from(view.revision == update);
        }
    }
    counts
}

/// The status the controller writes after a sync that found `counts` and
/// replaced `replaced` pods (`completeRollingUpdate` applied).
pub fn status(
    spec: &SetSpec,
    generation: i64,
    counts: Counts,
    replaced: u64,
    current: &str,
    update: &str,
    collision_count: i64,
) -> Value {
    let (mut current_replicas, mut current_revision) =
        (counts.current.saturating_sub(replaced), current);
    if spec.rolling
        && counts.updated == spec.replicas
        && counts.ready == spec.replicas
        && counts.replicas == spec.replicas
    {
        current_replicas = counts.updated;
        current_revision = update;
    }
    let mut status = Map::new();
    if generation > 0 {
        status.insert("observedGeneration".into(), json!(generation));
    }
    status.insert("replicas".into(), json!(counts.replicas));
    for (key, value) in [
        ("readyReplicas", counts.ready),
        ("currentReplicas", current_replicas),
        ("updatedReplicas", counts.updated),
    ] {
        if value > 0 {
            status.insert(key.into(), json!(value));
        }
    }
    if !current_revision.is_empty() {
        status.insert("currentRevision".into(), json!(current_revision));
    }
    if !update.is_empty() {
        status.insert("updateRevision".into(), json!(update));
    }
    status.insert("collisionCount".into(), json!(collision_count));
    status.insert("availableReplicas".into(), json!(counts.available));
    Value::Object(status)
}
