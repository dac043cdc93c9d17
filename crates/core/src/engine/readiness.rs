//! The readiness verdict on one restarted workload. It is the rule `kubectl rollout status`
//! applies to its kind (kubectl's `DeploymentStatusViewer`, `StatefulSetStatusViewer` and
//! `DaemonSetStatusViewer`), word for word in its messages, plus one gate of our own: a
//! status that has not yet observed the generation our restart produced is never judged, so
//! a status left over from the previous rollout cannot read as Ready. `kubectl_verdicts.yaml`
//! holds crafted states of every kind with the real kubectl's verdicts; the `kubectl_table`
//! tests hold the engine to them.

use super::observed::{DeploymentSnapshot, RolloutStatus};
use crate::crd::WorkloadKind;

/// What `kubectl rollout status` would conclude about a Deployment right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Rolled out: every desired replica is updated and available, and no old one is left.
    Ready,
    /// Still rolling out; the message is the one kubectl prints while it waits.
    Waiting(String),
    /// The rollout will not finish on its own; the message is kubectl's error.
    Failed(String),
}

impl Verdict {
    pub fn is_waiting(&self) -> bool {
        matches!(self, Self::Waiting(_))
    }
}

/// The Progressing condition reason the Deployment controller sets when a rollout stalls
/// past `spec.progressDeadlineSeconds`.
const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";

/// kubectl's error for a StatefulSet or DaemonSet whose update strategy is not
/// `RollingUpdate` (it names the StatefulSet constant for both kinds).
pub const ONLY_ROLLING_UPDATE: &str =
    "rollout status is only available for RollingUpdate strategy type";

/// Judges `workload` after a restart whose patch left it at `restart_generation`.
pub fn verdict(workload: &DeploymentSnapshot, restart_generation: i64) -> Verdict {
    match workload.kind {
        WorkloadKind::Deployment => deployment_verdict(workload, restart_generation),
        WorkloadKind::StatefulSet => stateful_set_verdict(workload, restart_generation),
        WorkloadKind::DaemonSet => daemon_set_verdict(workload, restart_generation),
    }
}

/// The line `kubectl rollout status` prints for `workload` when it judges it rolled out.
pub fn ready_message(workload: &DeploymentSnapshot) -> String {
    let name = workload.name();
    let no_status = RolloutStatus::default();
    let status = workload.rollout.as_ref().unwrap_or(&no_status);
    match workload.kind {
        WorkloadKind::Deployment => format!("deployment {name:?} successfully rolled out"),
        WorkloadKind::DaemonSet => format!("daemon set {name:?} successfully rolled out"),
        WorkloadKind::StatefulSet if workload.update_strategy.rolling_update => format!(
            "partitioned roll out complete: {} new pods have been updated...",
            status.updated_replicas.unwrap_or(0)
        ),
        WorkloadKind::StatefulSet => format!(
            "statefulset rolling update complete {} pods at revision {}...",
            status.current_replicas.unwrap_or(0),
            status.current_revision.as_deref().unwrap_or_default()
        ),
    }
}

/// kubectl's `StatefulSetStatusViewer`.
fn stateful_set_verdict(set: &DeploymentSnapshot, restart_generation: i64) -> Verdict {
    let strategy = &set.update_strategy;
    if strategy.type_.as_deref() != Some("RollingUpdate") {
        return Verdict::Failed(ONLY_ROLLING_UPDATE.to_owned());
    }
    let no_status = RolloutStatus::default();
    let status = set.rollout.as_ref().unwrap_or(&no_status);
    let observed_generation = status.observed_generation.unwrap_or(0);
    if observed_generation == 0
        || set.generation() > observed_generation
        || restart_generation > observed_generation
    {
        return Verdict::Waiting(
            "Waiting for statefulset spec update to be observed...".to_owned(),
        );
    }
    let ready = i64::from(status.ready_replicas.unwrap_or(0));
    let updated = i64::from(status.updated_replicas.unwrap_or(0));
    if let Some(desired) = set.replicas.map(i64::from)
        && ready < desired
    {
        return Verdict::Waiting(format!("Waiting for {} pods to be ready...", desired - ready));
    }
    if strategy.rolling_update {
        if let (Some(desired), Some(partition)) = (set.replicas, strategy.partition) {
            let wanted = i64::from(desired) - i64::from(partition);
            if updated < wanted {
                return Verdict::Waiting(format!(
                    "Waiting for partitioned roll out to finish: {updated} out of {wanted} new pods have been updated..."
                ));
            }
        }
        return Verdict::Ready;
    }
    let update_revision = status.update_revision.as_deref().unwrap_or_default();
    if update_revision != status.current_revision.as_deref().unwrap_or_default() {
        return Verdict::Waiting(format!(
            "waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}..."
        ));
    }
    Verdict::Ready
}

/// kubectl's `DaemonSetStatusViewer`.
fn daemon_set_verdict(daemon: &DeploymentSnapshot, restart_generation: i64) -> Verdict {
    if daemon.update_strategy.type_.as_deref() != Some("RollingUpdate") {
        return Verdict::Failed(ONLY_ROLLING_UPDATE.to_owned());
    }
    let name = daemon.name();
    let no_status = RolloutStatus::default();
    let status = daemon.rollout.as_ref().unwrap_or(&no_status);
    let observed_generation = status.observed_generation.unwrap_or(0);
    if daemon.generation() > observed_generation || restart_generation > observed_generation {
        return Verdict::Waiting("Waiting for daemon set spec update to be observed...".to_owned());
    }
    let desired = status.desired_number_scheduled.unwrap_or(0);
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    if updated < desired {
        return Verdict::Waiting(format!(
            "Waiting for daemon set {name:?} rollout to finish: {updated} out of {desired} new pods have been updated..."
        ));
    }
    if available < desired {
        return Verdict::Waiting(format!(
            "Waiting for daemon set {name:?} rollout to finish: {available} of {desired} updated pods are available..."
        ));
    }
    Verdict::Ready
}

/// kubectl's `DeploymentStatusViewer`.
fn deployment_verdict(deployment: &DeploymentSnapshot, restart_generation: i64) -> Verdict {
    let name = deployment.name();
    let generation = deployment.generation();
    let no_status = Default::default();
    let status = deployment.rollout.as_ref().unwrap_or(&no_status);
    let observed_generation = status.observed_generation.unwrap_or(0);

    // kubectl only requires generation <= observedGeneration; we also require our own
    // generation, because right after the patch a cached object may still carry the old
    // generation together with the old, fully ready status.
    if generation > observed_generation || restart_generation > observed_generation {
        return Verdict::Waiting("Waiting for deployment spec update to be observed...".to_owned());
    }

    // kubectl looks at the first Progressing condition only.
    if status.progressing_reason.as_deref() == Some(PROGRESS_DEADLINE_EXCEEDED) {
        return Verdict::Failed(format!("deployment {name:?} exceeded its progress deadline"));
    }

    // Widened so that no status, however odd, can overflow the subtraction below.
    let replicas = i64::from(status.replicas.unwrap_or(0));
    let updated = i64::from(status.updated_replicas.unwrap_or(0));
    let available = i64::from(status.available_replicas.unwrap_or(0));

    // Like kubectl, no "updated < desired" check when spec.replicas is absent (the API
    // server defaults it, so only a hand-made object lacks it).
    if let Some(desired) = deployment.replicas.map(i64::from)
        && updated < desired
    {
        return Verdict::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {updated} out of {desired} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return Verdict::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return Verdict::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    Verdict::Ready
}

#[cfg(test)]
mod kubectl_table;

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(generation: i64, observed: i64) -> DeploymentSnapshot {
        let mut deployment = DeploymentSnapshot {
            replicas: Some(3),
            rollout: Some(RolloutStatus {
                observed_generation: Some(observed),
                replicas: Some(3),
                updated_replicas: Some(3),
                available_replicas: Some(3),
                progressing_reason: Some("NewReplicaSetAvailable".to_owned()),
                ..RolloutStatus::default()
            }),
            ..DeploymentSnapshot::default()
        };
        deployment.metadata.name = Some("web".to_owned());
        deployment.metadata.generation = Some(generation);
        deployment
    }

    #[test]
    fn a_status_from_before_our_restart_is_never_judged() {
        let observe =
            Verdict::Waiting("Waiting for deployment spec update to be observed...".to_owned());
        // A stale cache right after our patch: the old generation with its fully ready status.
        // kubectl would say "successfully rolled out"; the engine waits for generation 5.
        assert_eq!(verdict(&complete(4, 4), 5), observe);
        // The patched object, not observed yet: both wait.
        assert_eq!(verdict(&complete(5, 4), 5), observe);
        assert_eq!(verdict(&complete(5, 5), 5), Verdict::Ready);
        // Someone changed the spec again since our restart and it rolled out: that rollout
        // includes ours.
        assert_eq!(verdict(&complete(7, 7), 5), Verdict::Ready);
    }

    #[test]
    fn missing_metadata_and_status_fields_count_as_zero() {
        let deployment = DeploymentSnapshot::default();
        assert_eq!(
            verdict(&deployment, 1),
            Verdict::Waiting("Waiting for deployment spec update to be observed...".to_owned())
        );
        let observed = DeploymentSnapshot {
            replicas: Some(1),
            rollout: Some(RolloutStatus { observed_generation: Some(1), ..Default::default() }),
            ..DeploymentSnapshot::default()
        };
        assert_eq!(
            verdict(&observed, 1),
            Verdict::Waiting(
                "Waiting for deployment \"\" rollout to finish: 0 out of 1 new replicas have been updated...".to_owned()
            )
        );
    }

    #[test]
    fn extreme_counts_do_not_overflow() {
        let deployment = DeploymentSnapshot {
            replicas: Some(i32::MAX),
            rollout: Some(RolloutStatus {
                observed_generation: Some(0),
                replicas: Some(i32::MAX),
                updated_replicas: Some(i32::MIN),
                available_replicas: Some(0),
                progressing_reason: None,
                ..RolloutStatus::default()
            }),
            ..DeploymentSnapshot::default()
        };
        assert!(verdict(&deployment, 0).is_waiting());
        let surplus = DeploymentSnapshot { replicas: None, ..deployment };
        assert_eq!(
            verdict(&surplus, 0),
            Verdict::Waiting(format!(
                "Waiting for deployment \"\" rollout to finish: {} old replicas are pending termination...",
                i64::from(i32::MAX) - i64::from(i32::MIN)
            ))
        );
    }
}
