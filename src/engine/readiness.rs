//! The readiness verdict on one restarted Deployment. It is the rule `kubectl rollout status`
//! applies (kubectl's `DeploymentStatusViewer`), word for word in its messages, plus one gate
//! of our own: a status that has not yet observed the generation our restart produced is
//! never judged, so a status left over from the previous rollout cannot read as Ready.

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
mod tests {
    use super::*;
    use crate::engine::observed::RolloutStatus;

    struct Row {
        what: &'static str,
        generation: i64,
        spec_replicas: Option<i32>,
        paused: bool,
        /// (observedGeneration, replicas, updated, available); None = no status at all.
        status: Option<(i64, i32, i32, i32)>,
        progressing: Option<(&'static str, &'static str)>,
        restart_generation: i64,
        /// What `kubectl rollout status deployment/web` prints (ours, for the gate row).
        expected: Verdict,
    }

    fn deployment(row: &Row) -> DeploymentSnapshot {
        let mut deployment = DeploymentSnapshot::default();
        deployment.metadata.name = Some("web".to_owned());
        deployment.metadata.generation = Some(row.generation);
        deployment.replicas = row.spec_replicas;
        deployment.paused = row.paused;
        deployment.rollout =
            row.status.map(|(observed, replicas, updated, available)| RolloutStatus {
                observed_generation: Some(observed),
                replicas: Some(replicas),
                updated_replicas: Some(updated),
                available_replicas: Some(available),
                progressing_reason: row.progressing.map(|(_, reason)| reason.to_owned()),
            });
        deployment
    }

    fn waiting(message: &str) -> Verdict {
        Verdict::Waiting(message.to_owned())
    }

    #[test]
    fn verdicts_follow_kubectl_rollout_status() {
        let observe = "Waiting for deployment spec update to be observed...";
        let rows = [
            Row {
                what: "patched, controller has not observed the new generation yet",
                generation: 5,
                spec_replicas: Some(3),
                paused: false,
                status: Some((4, 3, 3, 3)),
                progressing: Some(("True", "NewReplicaSetAvailable")),
                restart_generation: 5,
                expected: waiting(observe),
            },
            Row {
                what: "stale cache right after our patch: old generation, old fully ready status; \
                       kubectl would say 'successfully rolled out', our gate says wait",
                generation: 4,
                spec_replicas: Some(3),
                paused: false,
                status: Some((4, 3, 3, 3)),
                progressing: Some(("True", "NewReplicaSetAvailable")),
                restart_generation: 5,
                expected: waiting(observe),
            },
            Row {
                what: "new ReplicaSet scaling up",
                generation: 5,
                spec_replicas: Some(3),
                paused: false,
                status: Some((5, 4, 1, 3)),
                progressing: Some(("True", "ReplicaSetUpdated")),
                restart_generation: 5,
                expected: waiting(
                    "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated...",
                ),
            },
            Row {
                what: "all updated, old replicas still terminating",
                generation: 5,
                spec_replicas: Some(3),
                paused: false,
                status: Some((5, 5, 3, 3)),
                progressing: Some(("True", "ReplicaSetUpdated")),
                restart_generation: 5,
                expected: waiting(
                    "Waiting for deployment \"web\" rollout to finish: 2 old replicas are pending termination...",
                ),
            },
            Row {
                what: "all updated, not all available",
                generation: 5,
                spec_replicas: Some(3),
                paused: false,
                status: Some((5, 3, 3, 1)),
                progressing: Some(("True", "ReplicaSetUpdated")),
                restart_generation: 5,
                expected: waiting(
                    "Waiting for deployment \"web\" rollout to finish: 1 of 3 updated replicas are available...",
                ),
            },
            Row {
                what: "complete",
                generation: 5,
                spec_replicas: Some(3),
                paused: false,
                status: Some((5, 3, 3, 3)),
                progressing: Some(("True", "NewReplicaSetAvailable")),
                restart_generation: 5,
                expected: Verdict::Ready,
            },
            Row {
                what: "observedGeneration ahead of our restart (someone edited the spec since): judged",
                generation: 7,
                spec_replicas: Some(2),
                paused: false,
                status: Some((7, 2, 2, 2)),
                progressing: Some(("True", "NewReplicaSetAvailable")),
                restart_generation: 5,
                expected: Verdict::Ready,
            },
            Row {
                what: "scaled to zero",
                generation: 5,
                spec_replicas: Some(0),
                paused: false,
                status: Some((5, 0, 0, 0)),
                progressing: Some(("True", "NewReplicaSetAvailable")),
                restart_generation: 5,
                expected: Verdict::Ready,
            },
            Row {
                what: "progress deadline exceeded",
                generation: 5,
                spec_replicas: Some(3),
                paused: false,
                status: Some((5, 4, 1, 3)),
                progressing: Some(("False", "ProgressDeadlineExceeded")),
                restart_generation: 5,
                expected: Verdict::Failed(
                    "deployment \"web\" exceeded its progress deadline".to_owned(),
                ),
            },
            Row {
                what: "progress deadline exceeded but generation not observed: kubectl still waits",
                generation: 6,
                spec_replicas: Some(3),
                paused: false,
                status: Some((5, 4, 1, 3)),
                progressing: Some(("False", "ProgressDeadlineExceeded")),
                restart_generation: 6,
                expected: waiting(observe),
            },
            Row {
                what: "no status at all (freshly created or never reconciled)",
                generation: 1,
                spec_replicas: Some(1),
                paused: false,
                status: None,
                progressing: None,
                restart_generation: 1,
                expected: waiting(observe),
            },
            Row {
                what: "spec.replicas absent: kubectl skips the updated-versus-desired check",
                generation: 2,
                spec_replicas: None,
                paused: false,
                status: Some((2, 0, 0, 0)),
                progressing: Some(("True", "ReplicaSetUpdated")),
                restart_generation: 2,
                expected: Verdict::Ready,
            },
            Row {
                what: "spec.replicas absent, old replicas left",
                generation: 2,
                spec_replicas: None,
                paused: false,
                status: Some((2, 2, 1, 1)),
                progressing: Some(("True", "ReplicaSetUpdated")),
                restart_generation: 2,
                expected: waiting(
                    "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination...",
                ),
            },
            Row {
                what: "spec.replicas absent, one replica rolled out",
                generation: 2,
                spec_replicas: None,
                paused: false,
                status: Some((2, 1, 1, 1)),
                progressing: Some(("True", "NewReplicaSetAvailable")),
                restart_generation: 2,
                expected: Verdict::Ready,
            },
            Row {
                what: "paused: the controller observes the generation but rolls nothing out, \
                       so kubectl waits forever on the updated count",
                generation: 5,
                spec_replicas: Some(3),
                paused: true,
                status: Some((5, 3, 0, 3)),
                progressing: Some(("Unknown", "DeploymentPaused")),
                restart_generation: 5,
                expected: waiting(
                    "Waiting for deployment \"web\" rollout to finish: 0 out of 3 new replicas have been updated...",
                ),
            },
            Row {
                what: "surge: more replicas than desired, all updated and available but old pods left",
                generation: 3,
                spec_replicas: Some(2),
                paused: false,
                status: Some((3, 3, 2, 2)),
                progressing: Some(("True", "ReplicaSetUpdated")),
                restart_generation: 3,
                expected: waiting(
                    "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination...",
                ),
            },
        ];
        for row in &rows {
            assert_eq!(
                verdict(&deployment(row), row.restart_generation),
                row.expected,
                "{}",
                row.what
            );
        }
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
