//! The readiness verdict on one restarted Deployment. It is the rule `kubectl rollout status`
//! applies (kubectl's `DeploymentStatusViewer`), word for word in its messages, plus one gate
//! of our own: a status that has not yet observed the generation our restart produced is
//! never judged, so a status left over from the previous rollout cannot read as Ready.
//! `kubectl_verdicts.yaml` holds 42 crafted states with the real kubectl's verdicts; the
//! `kubectl_table` tests hold the engine to them.

use super::observed::DeploymentSnapshot;

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

/// Judges `deployment` after a restart whose patch left it at `restart_generation`.
pub fn verdict(deployment: &DeploymentSnapshot, restart_generation: i64) -> Verdict {
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
    use crate::engine::observed::RolloutStatus;

    fn complete(generation: i64, observed: i64) -> DeploymentSnapshot {
        let mut deployment = DeploymentSnapshot {
            replicas: Some(3),
            rollout: Some(RolloutStatus {
                observed_generation: Some(observed),
                replicas: Some(3),
                updated_replicas: Some(3),
                available_replicas: Some(3),
                progressing_reason: Some("NewReplicaSetAvailable".to_owned()),
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
