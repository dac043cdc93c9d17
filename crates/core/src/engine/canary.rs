//! Canary first and slow start, decided purely: how many services each batch of a run
//! takes (the canary batch, then 1, 2, 4, … under slow start, never above `batchSize`), and
//! how the soak after the canary batch stands: still running, over, or failed by a canary
//! that is no longer ready. "Ready" is `kubectl rollout status`'s verdict on the
//! Deployment's current generation.

use std::num::NonZeroUsize;
use std::sync::Arc;

use jiff::Timestamp;

use super::ObjectKey;
use super::observed::DeploymentSnapshot;
use super::readiness::{self, Verdict};

/// The number of services batch `index` (1 for the run's first batch) takes before capacity
/// pacing has its say: the canary's size for the first batch when there is a canary; under
/// slow start 1, 2, 4, … for the batches after it; `limit` (`batchSize`) otherwise, and
/// never more than `limit`.
pub fn scheduled_size(
    index: u32,
    limit: usize,
    canary: Option<NonZeroUsize>,
    slow_start: bool,
) -> usize {
    let index = index.max(1);
    if let Some(canary) = canary
        && index == 1
    {
        return canary.get().min(limit);
    }
    if !slow_start {
        return limit;
    }
    let step = index - 1 - u32::from(canary.is_some());
    1usize.checked_shl(step).unwrap_or(usize::MAX).min(limit)
}

/// Where the soak after the canary batch stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Soak {
    /// Every canary is ready and the soak goes on until `until`.
    Soaking { until: Timestamp },
    /// The soak time has passed with every canary ready.
    Over,
    /// A canary is not ready (or is gone): the run must end.
    Failed { canary: ObjectKey, why: String },
}

/// Judges the soak at `now`: each canary (with its Deployment as observed, `None` when it is
/// gone) must be ready on every look, until `until`.
pub fn judge_soak(
    canaries: &[(ObjectKey, Option<Arc<DeploymentSnapshot>>)],
    until: Timestamp,
    now: Timestamp,
) -> Soak {
    for (key, deployment) in canaries {
        let Some(deployment) = deployment else {
            return Soak::Failed {
                canary: key.clone(),
                why: "was deleted during the soak".to_owned(),
            };
        };
        match readiness::verdict(deployment, deployment.generation()) {
            Verdict::Ready => {}
            Verdict::Waiting(message) => {
                return Soak::Failed {
                    canary: key.clone(),
                    why: format!("became unready during the soak: {message}"),
                };
            }
            Verdict::Failed(message) => {
                return Soak::Failed {
                    canary: key.clone(),
                    why: format!("failed during the soak: {message}"),
                };
            }
        }
    }
    if now >= until { Soak::Over } else { Soak::Soaking { until } }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::engine::observed::RolloutStatus;

    fn size(n: usize) -> Option<NonZeroUsize> {
        NonZeroUsize::new(n)
    }

    #[test]
    fn slow_start_doubles_from_one_up_to_the_batch_size() {
        let sizes: Vec<usize> =
            (1..=6).map(|index| scheduled_size(index, 10, None, true)).collect();
        assert_eq!(sizes, [1, 2, 4, 8, 10, 10]);
        let plain: Vec<usize> =
            (1..=3).map(|index| scheduled_size(index, 10, None, false)).collect();
        assert_eq!(plain, [10, 10, 10]);
        assert_eq!(scheduled_size(200, 10, None, true), 10, "no overflow for late batches");
    }

    #[test]
    fn the_canary_batch_comes_first_and_slow_start_begins_after_it() {
        let sizes: Vec<usize> =
            (1..=5).map(|index| scheduled_size(index, 10, size(3), true)).collect();
        assert_eq!(sizes, [3, 1, 2, 4, 8]);
        let sizes: Vec<usize> =
            (1..=3).map(|index| scheduled_size(index, 10, size(3), false)).collect();
        assert_eq!(sizes, [3, 10, 10]);
        assert_eq!(scheduled_size(1, 2, size(5), false), 2, "never above batchSize");
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("a valid time")
    }

    fn deployment(name: &str, available: i32) -> (ObjectKey, Option<Arc<DeploymentSnapshot>>) {
        let mut snapshot = DeploymentSnapshot::default();
        snapshot.metadata.namespace = Some("arcgis".to_owned());
        snapshot.metadata.name = Some(name.to_owned());
        snapshot.metadata.generation = Some(2);
        snapshot.replicas = Some(2);
        snapshot.rollout = Some(RolloutStatus {
            observed_generation: Some(2),
            replicas: Some(2),
            updated_replicas: Some(2),
            available_replicas: Some(available),
            progressing_reason: Some("NewReplicaSetAvailable".to_owned()),
            ..RolloutStatus::default()
        });
        (ObjectKey::new("arcgis", name), Some(Arc::new(snapshot)))
    }

    #[test]
    fn ready_canaries_soak_until_the_end_then_the_soak_is_over() {
        let canaries = [deployment("web", 2), deployment("map", 2)];
        let until = at(0) + SignedDuration::from_mins(5);
        assert_eq!(judge_soak(&canaries, until, at(10)), Soak::Soaking { until });
        assert_eq!(judge_soak(&canaries, until, until), Soak::Over);
        assert_eq!(judge_soak(&[], until, until), Soak::Over);
    }

    #[test]
    fn an_unready_or_deleted_canary_fails_the_soak_even_at_its_end() {
        let until = at(300);
        let unready = [deployment("web", 2), deployment("map", 1)];
        let Soak::Failed { canary, why } = judge_soak(&unready, until, until) else {
            panic!("an unready canary fails the soak");
        };
        assert_eq!(canary, ObjectKey::new("arcgis", "map"));
        assert_eq!(
            why,
            "became unready during the soak: Waiting for deployment \"map\" rollout to finish: \
             1 of 2 updated replicas are available..."
        );
        let gone = [(ObjectKey::new("arcgis", "web"), None)];
        assert_eq!(
            judge_soak(&gone, until, at(1)),
            Soak::Failed {
                canary: ObjectKey::new("arcgis", "web"),
                why: "was deleted during the soak".to_owned()
            }
        );
    }
}
