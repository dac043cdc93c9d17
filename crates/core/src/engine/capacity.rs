//! Capacity-aware pacing, decided purely: which of a run's pods are blocked (waiting
//! unschedulable past [`UNSCHEDULABLE_GRACE`]), when a pod not blocked yet will be, and how
//! the run's effective batch size moves: halved (down to 1) when a block begins, one larger
//! after each batch that finished with nothing blocked, never above `batchSize`.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use super::pods::PodSnapshot;

/// How long a pod of the run may wait unschedulable before it counts as blocked. A freed
/// node is usually taken within a second or two (an old pod of a rolling workload ends);
/// reacting sooner would shrink batches for room that was about to come back.
pub const UNSCHEDULABLE_GRACE: SignedDuration = SignedDuration::from_secs(3);

/// What the run's pending pods say about room on the nodes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Capacity {
    /// The run's pods blocked past the grace, in (namespace, name) order.
    pub blocked: Vec<Arc<PodSnapshot>>,
    /// When the first pod of the run waiting unschedulable within the grace passes it.
    pub recheck_at: Option<Timestamp>,
}

impl Capacity {
    /// Looks at the Pending pods created by run `run`'s restarts. A pod blocks from the
    /// grace on until it has waited `give_up_after` (`batchTimeout`): by then its service
    /// has timed out, and a pod that never fits must not hold the run for ever.
    pub fn of_run(
        pods: &[Arc<PodSnapshot>],
        run: &str,
        now: Timestamp,
        give_up_after: SignedDuration,
    ) -> Self {
        let mut capacity = Capacity::default();
        for pod in pods.iter().filter(|pod| pod.restarted_by.as_deref() == Some(run)) {
            let Some(waiting) = &pod.unschedulable else {
                continue;
            };
            let blocked_at = waiting.since.checked_add(UNSCHEDULABLE_GRACE).unwrap_or(now);
            let given_up_at = waiting.since.checked_add(give_up_after).unwrap_or(Timestamp::MAX);
            if now >= given_up_at {
                continue;
            }
            let next_look = if now >= blocked_at {
                capacity.blocked.push(pod.clone());
                given_up_at
            } else {
                blocked_at
            };
            capacity.recheck_at =
                Some(capacity.recheck_at.map_or(next_look, |at| at.min(next_look)));
        }
        capacity.blocked.sort_by_key(|pod| pod.key());
        capacity
    }

    pub fn is_blocked(&self) -> bool {
        !self.blocked.is_empty()
    }

    /// The status message of a block: how many pods, the first one's workload and pod, and
    /// the scheduler's words.
    pub fn message(&self) -> Option<String> {
        let first = self.blocked.first()?;
        let scheduler = first.unschedulable.as_ref().map_or("", |waiting| &waiting.message);
        let workload = first
            .workload
            .as_ref()
            .map_or_else(String::new, |workload| format!(" of {} {}", workload.kind, workload.key));
        let others = match self.blocked.len() - 1 {
            0 => String::new(),
            1 => " (and 1 more pod)".to_owned(),
            more => format!(" (and {more} more pods)"),
        };
        Some(format!("pod {}{workload} cannot be scheduled{others}: {scheduler}", first.key().name))
    }
}

/// The effective batch size once a block begins: half, at least 1.
pub fn shrunk(size: usize) -> usize {
    (size / 2).max(1)
}

/// The effective batch size after a batch that finished with nothing blocked: one more, at
/// most `limit` (`batchSize`).
pub fn grown(size: usize, limit: usize) -> usize {
    size.saturating_add(1).min(limit)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::engine::ObjectKey;
    use crate::engine::pods::{Unschedulable, WorkloadRef};

    const TIMEOUT: SignedDuration = SignedDuration::from_secs(60);

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("a valid time")
    }

    fn pod(name: &str, run: &str, unschedulable_since: Option<i64>) -> Arc<PodSnapshot> {
        Arc::new(PodSnapshot {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("arcgis".to_owned()),
                ..ObjectMeta::default()
            },
            workload: Some(WorkloadRef {
                kind: "Deployment".to_owned(),
                key: ObjectKey::new("arcgis", name.split('-').next().unwrap_or(name)),
            }),
            restarted_by: Some(run.to_owned()),
            unschedulable: unschedulable_since.map(|since| Unschedulable {
                since: at(since),
                message: "0/3 nodes are available: 3 Insufficient cpu.".to_owned(),
            }),
        })
    }

    #[test]
    fn only_this_runs_pods_unschedulable_past_the_grace_block() {
        let pods = [
            pod("web-1", "run-a", Some(0)),
            pod("map-1", "run-a", Some(9)),
            pod("geo-1", "run-b", Some(0)),
            pod("api-1", "run-a", None),
        ];
        let capacity = Capacity::of_run(&pods, "run-a", at(10), TIMEOUT);
        assert_eq!(capacity.blocked.len(), 1);
        assert_eq!(capacity.blocked[0].key().name, "web-1");
        assert_eq!(capacity.recheck_at, Some(at(9) + UNSCHEDULABLE_GRACE));
        assert_eq!(
            capacity.message().as_deref(),
            Some(
                "pod web-1 of Deployment arcgis/web cannot be scheduled: 0/3 nodes are \
                 available: 3 Insufficient cpu."
            )
        );

        let later = Capacity::of_run(&pods, "run-a", at(9) + UNSCHEDULABLE_GRACE, TIMEOUT);
        assert_eq!(later.blocked.len(), 2);
        assert_eq!(later.recheck_at, Some(at(0) + TIMEOUT), "when the first stops blocking");
        assert!(later.message().is_some_and(|message| message.contains("(and 1 more pod)")));
        assert!(!Capacity::of_run(&pods, "run-c", at(10), TIMEOUT).is_blocked());
    }

    #[test]
    fn a_pod_that_never_fits_stops_holding_the_run_after_batch_timeout() {
        let pods = [pod("web-1", "run-a", Some(0))];
        assert!(Capacity::of_run(&pods, "run-a", at(59), TIMEOUT).is_blocked());
        let given_up = Capacity::of_run(&pods, "run-a", at(60), TIMEOUT);
        assert_eq!((given_up.is_blocked(), given_up.recheck_at), (false, None));
    }

    #[test]
    fn the_size_halves_down_to_one_and_grows_by_one_up_to_the_batch_size() {
        assert_eq!([10, 5, 3, 2, 1].map(shrunk), [5, 2, 1, 1, 1]);
        assert_eq!(grown(1, 10), 2);
        assert_eq!(grown(10, 10), 10);
        assert_eq!(grown(12, 10), 10, "a lowered batchSize caps it at once");
    }
}
