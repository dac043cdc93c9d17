//! The readiness verdict on one restarted Deployment. It is the rule `kubectl rollout status`
//! applies (kubectl's `DeploymentStatusViewer`), word for word in its messages, plus one gate
//! of our own: a status that has not yet observed the generation our restart produced is
//! never judged, so a status left over from the previous rollout cannot read as Ready.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};

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

/// The Progressing condition reason the Deployment controller sets when a rollout stalls
/// past `spec.progressDeadlineSeconds`.
const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";

/// Judges `deployment` after a restart whose patch left it at `restart_generation`.
pub fn verdict(deployment: &Deployment, restart_generation: i64) -> Verdict {
    let name = deployment.metadata.name.as_deref().unwrap_or_default();
    let generation = deployment.metadata.generation.unwrap_or(0);
    let no_status = DeploymentStatus::default();
    let status = deployment.status.as_ref().unwrap_or(&no_status);
    let observed_generation = status.observed_generation.unwrap_or(0);

    // kubectl only requires generation <= observedGeneration; we also require our own
    // generation, because right after the patch a cached object may still carry the old
    // generation together with the old, fully ready status.
    if generation > observed_generation || restart_generation > observed_generation {
        return Verdict::Waiting("Waiting for deployment spec update to be observed...".to_owned());
    }

    let progress_deadline_exceeded = status.conditions.iter().flatten().any(|condition| {
        condition.type_.as_deref() == Some("Progressing")
            && condition.reason.as_deref() == Some(PROGRESS_DEADLINE_EXCEEDED)
    });
    if progress_deadline_exceeded {
        return Verdict::Failed(format!("deployment {name:?} exceeded its progress deadline"));
    }

    // The API server defaults spec.replicas to 1, so a missing value is 1, not "no check".
    let desired = deployment.spec.replicas.unwrap_or(1);
    let replicas = status.replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);

    if updated < desired {
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
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec};

    use super::*;

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

    fn deployment(row: &Row) -> Deployment {
        let mut deployment = Deployment::default();
        deployment.metadata.name = Some("web".to_owned());
        deployment.metadata.generation = Some(row.generation);
        deployment.spec = DeploymentSpec {
            replicas: row.spec_replicas,
            paused: row.paused.then_some(true),
            ..DeploymentSpec::default()
        };
        deployment.status =
            row.status.map(|(observed, replicas, updated, available)| DeploymentStatus {
                observed_generation: Some(observed),
                replicas: Some(replicas),
                updated_replicas: Some(updated),
                ready_replicas: Some(available),
                available_replicas: Some(available),
                conditions: row.progressing.map(|(status, reason)| {
                    vec![DeploymentCondition {
                        type_: Some("Progressing".to_owned()),
                        status: Some(status.to_owned()),
                        reason: Some(reason.to_owned()),
                        ..DeploymentCondition::default()
                    }]
                }),
                ..DeploymentStatus::default()
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
                what: "spec.replicas absent means the API default of 1",
                generation: 2,
                spec_replicas: None,
                paused: false,
                status: Some((2, 0, 0, 0)),
                progressing: Some(("True", "ReplicaSetUpdated")),
                restart_generation: 2,
                expected: waiting(
                    "Waiting for deployment \"web\" rollout to finish: 0 out of 1 new replicas have been updated...",
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
        assert!(rows.len() >= 12);
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
        let deployment = Deployment::default();
        assert_eq!(
            verdict(&deployment, 1),
            Verdict::Waiting("Waiting for deployment spec update to be observed...".to_owned())
        );
        let observed = Deployment {
            status: Some(DeploymentStatus {
                observed_generation: Some(1),
                ..DeploymentStatus::default()
            }),
            ..Deployment::default()
        };
        assert_eq!(
            verdict(&observed, 1),
            Verdict::Waiting(
                "Waiting for deployment \"\" rollout to finish: 0 out of 1 new replicas have been updated...".to_owned()
            )
        );
    }
}
