//! What becomes of one service of the running batch in this pass, as pure functions of its
//! row, its Deployment as cached, the batch's clock and the in-flight budget: a restarted
//! service is judged by its rollout ([`judge_rollout`]); one not restarted yet is restarted,
//! held or given a result ([`launch`]).

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

use super::RunContext;
use super::budget::{InFlight, marked_by, rolled_out_by_another_run};
use crate::crd::{BatchStatus, ServiceResult, ServiceStatus};
use crate::engine::observed::DeploymentSnapshot;
use crate::engine::readiness::{self, Verdict};
use crate::engine::results::reason;
use crate::engine::run::{MESSAGE_CANCELLED, MESSAGE_GONE, MESSAGE_PAUSED, MESSAGE_REPLACED};

/// The running batch's deadline and message-refresh times, as of one pass.
pub(super) struct BatchClock {
    pub deadline: Timestamp,
    pub timed_out: bool,
    /// No restart may be sent now (the API server forbids it, or the maintenance windows
    /// closed): a service that would be restarted does not time out for that, while one held
    /// for its own reason (a disruption budget, another run's rollout) still does.
    pub restarts_paused: bool,
    /// When the waiting messages may be refreshed next.
    pub refresh_due: Timestamp,
    pub may_refresh: bool,
    /// `spec.batchTimeout` as written, for messages.
    pub timeout_text: String,
}

impl BatchClock {
    /// The clock of `batch` at `now`. A batch without a start time (a hand-edited status)
    /// counts from `start_if_missing`.
    pub fn of(
        batch: &BatchStatus,
        timeout: SignedDuration,
        timeout_text: &str,
        now: Timestamp,
        refresh_every: SignedDuration,
    ) -> Self {
        let start = batch.start_time.as_ref().map_or(now, |time| time.0);
        let deadline = start.checked_add(timeout).unwrap_or(Timestamp::MAX);
        // Messages were last written with the batch's start unless refreshed since.
        let written = batch.message_time.as_ref().map_or(start, |time: &MicroTime| time.0);
        let refresh_due = written.checked_add(refresh_every).unwrap_or(Timestamp::MAX);
        Self {
            deadline,
            timed_out: now >= deadline,
            restarts_paused: false,
            refresh_due,
            may_refresh: now >= refresh_due,
            timeout_text: timeout_text.to_owned(),
        }
    }
}

/// A result given in this pass: the result, its reason and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Finish {
    pub result: ServiceResult,
    pub reason: &'static str,
    pub message: Option<String>,
}

impl Finish {
    fn new(result: ServiceResult, reason: &'static str, message: impl Into<String>) -> Self {
        Self { result, reason, message: Some(message.into()) }
    }
}

/// The rollout of a restarted service, as this pass judges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum RolloutVerdict {
    /// It has its result. `still_rolling` is set for a timed-out rollout that goes on, which
    /// keeps its place in the in-flight budget of later batches.
    Finished { finish: Finish, still_rolling: bool },
    /// Still rolling out, with kubectl's message.
    Waiting(String),
}

/// The generation a service's restart produced, known from its row or adopted from the
/// Deployment when this run's patch reached it but its outcome was never recorded (a crash
/// between patch and status write). `None`: not restarted yet.
pub(super) fn restart_generation(
    row: &ServiceStatus,
    deployment: Option<&DeploymentSnapshot>,
    run: &RunContext,
) -> Option<(i64, bool)> {
    match (row.generation, deployment) {
        (Some(generation), _) => Some((generation, false)),
        // If another run restarted it since, its current rollout includes ours.
        (None, Some(deployment)) if marked_by(deployment, &run.id, &run.record_annotation) => {
            Some((deployment.generation(), true))
        }
        (None, _) => None,
    }
}

/// Judges the rollout of a service restarted with `generation`.
pub(super) fn judge_rollout(
    row: &ServiceStatus,
    deployment: Option<&DeploymentSnapshot>,
    generation: i64,
    clock: &BatchClock,
) -> RolloutVerdict {
    let finished = |finish| RolloutVerdict::Finished { finish, still_rolling: false };
    let Some(deployment) = deployment else {
        return finished(Finish::new(ServiceResult::Gone, reason::DELETED, MESSAGE_GONE));
    };
    if row.uid.is_some() && deployment.metadata.uid != row.uid {
        // A new Deployment of the same name: its pods are fresh anyway, and waiting for the
        // old object's generation would only time out.
        return finished(Finish::new(ServiceResult::Gone, reason::REPLACED, MESSAGE_REPLACED));
    }
    match readiness::verdict(deployment, generation) {
        Verdict::Ready => {
            finished(Finish { result: ServiceResult::Ready, reason: "", message: None })
        }
        Verdict::Failed(message) => {
            let why = if deployment.kind.is_deployment() {
                reason::PROGRESS_DEADLINE_EXCEEDED
            } else {
                reason::NOT_ROLLING_UPDATE
            };
            finished(Finish::new(ServiceResult::Failed, why, message))
        }
        Verdict::Waiting(message) if clock.timed_out => RolloutVerdict::Finished {
            finish: Finish::new(
                ServiceResult::TimedOut,
                reason::ROLLOUT_TIMED_OUT,
                format!("not ready after spec.batchTimeout {}: {message}", clock.timeout_text),
            ),
            still_rolling: true,
        },
        Verdict::Waiting(message) => RolloutVerdict::Waiting(message),
    }
}

/// What becomes of a service not restarted yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Launch {
    /// It gets its result without a restart. `keep_uid`: a restart decided earlier whose
    /// patch was never confirmed keeps its uid, so the next batches hold its place until the
    /// cache can show whether it landed.
    Finish { finish: Finish, keep_uid: bool },
    /// It waits, with the reason in its message.
    Hold(String),
    /// Send its restart now.
    Restart,
}

/// Decides for a service of the running batch that has not been restarted.
pub(super) fn launch(
    row: &ServiceStatus,
    deployment: Option<&DeploymentSnapshot>,
    run: &RunContext,
    (budget, disruption): (&InFlight, Option<&str>),
    clock: &BatchClock,
) -> Launch {
    let finish = |finish| Launch::Finish { finish, keep_uid: false };
    let Some(deployment) = deployment else {
        return finish(Finish::new(ServiceResult::Gone, reason::DELETED, MESSAGE_GONE));
    };
    if row.uid.is_some() && deployment.metadata.uid != row.uid {
        // The object a restart was decided for (whether its patch landed or not) was
        // deleted and created again: the new one starts with fresh pods.
        return finish(Finish::new(ServiceResult::Gone, reason::REPLACED, MESSAGE_REPLACED));
    }
    if deployment.paused {
        return finish(Finish::new(ServiceResult::Skipped, reason::PAUSED, MESSAGE_PAUSED));
    }
    if !deployment.kind.is_deployment() && deployment.update_strategy.is_on_delete() {
        return finish(Finish::new(
            ServiceResult::Skipped,
            reason::ON_DELETE,
            on_delete_message(deployment),
        ));
    }
    if run.cancelling {
        let message = format!("{MESSAGE_CANCELLED} before this Deployment was restarted");
        return finish(Finish::new(ServiceResult::Skipped, reason::CANCELLED, message));
    }
    let another_run = rolled_out_by_another_run(deployment, &run.id).map(|other| {
        format!(
            "held: run {other} is rolling this Deployment out; it is restarted once that \
             rollout ends"
        )
    });
    let held_by_budget = another_run.is_none() && disruption.is_some();
    let hold = another_run
        .or_else(|| disruption.map(str::to_owned))
        .or_else(|| {
            budget
                .capacity_hold()
                .map(|why| format!("held: capacity-aware pacing starts no restart while {why}"))
        })
        .or_else(|| {
            budget.full().then(|| {
                format!(
                    "held: {} rollouts of this run are in flight, the most batchSize allows; \
                     timed-out rollouts keep their place until they end",
                    budget.used()
                )
            })
        });
    if clock.timed_out && (hold.is_some() || !clock.restarts_paused) {
        let why = hold.or_else(|| row.message.clone()).unwrap_or_else(|| {
            "the restart patch has not succeeded (see the operator's log for the API errors)"
                .to_owned()
        });
        let message =
            format!("not restarted within spec.batchTimeout {}: {why}", clock.timeout_text);
        if held_by_budget {
            return Launch::Finish {
                finish: Finish::new(ServiceResult::Skipped, reason::DISRUPTION_BUDGET, message),
                keep_uid: false,
            };
        }
        return Launch::Finish {
            finish: Finish::new(ServiceResult::TimedOut, reason::RESTART_TIMED_OUT, message),
            keep_uid: true,
        };
    }
    match hold {
        Some(message) => Launch::Hold(message),
        None => Launch::Restart,
    }
}

/// Why a workload with `updateStrategy: OnDelete` is left alone.
fn on_delete_message(workload: &DeploymentSnapshot) -> String {
    format!(
        "not restarted: this {} has updateStrategy OnDelete, so a pod-template change replaces \
         none of its pods until they are deleted, and servicerefresh deletes no pods; delete \
         its pods to restart it, or switch it to RollingUpdate",
        workload.kind
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::observed::RolloutStatus;

    pub(super) fn run(cancelling: bool) -> RunContext {
        RunContext {
            id: "arcgis/refresh/1-0123456789abcdef".into(),
            record_annotation: "gisops.io/run-01234567".into(),
            restarted_at: "2026-11-26T18:26:29Z".into(),
            cancelling,
        }
    }

    pub(super) fn clock(timed_out: bool) -> BatchClock {
        BatchClock {
            deadline: Timestamp::UNIX_EPOCH,
            timed_out,
            restarts_paused: false,
            refresh_due: Timestamp::UNIX_EPOCH,
            may_refresh: false,
            timeout_text: "10m".into(),
        }
    }

    pub(super) fn row() -> ServiceStatus {
        ServiceStatus {
            name: "web".into(),
            position: Some(0),
            namespace: None,
            kind: None,
            generation: None,
            uid: None,
            result: None,
            reason: None,
            message: None,
        }
    }

    fn deployment(generation: i64, updated: i32, available: i32) -> DeploymentSnapshot {
        let mut deployment = DeploymentSnapshot::default();
        deployment.metadata.name = Some("web".into());
        deployment.metadata.uid = Some("uid-1".into());
        deployment.metadata.generation = Some(generation);
        deployment.replicas = Some(2);
        deployment.rollout = Some(RolloutStatus {
            observed_generation: Some(generation),
            replicas: Some(2),
            updated_replicas: Some(updated),
            available_replicas: Some(available),
            progressing_reason: None,
            ..RolloutStatus::default()
        });
        deployment
    }

    pub(super) fn budget(used: usize) -> InFlight {
        InFlight::new(2, used)
    }

    #[test]
    fn a_rollout_is_judged_by_kubectl_and_times_out_still_rolling() {
        let rolling = deployment(2, 1, 1);
        let verdict = judge_rollout(&row(), Some(&rolling), 2, &clock(false));
        assert!(
            matches!(verdict, RolloutVerdict::Waiting(ref m) if m.contains("rollout to finish"))
        );
        let RolloutVerdict::Finished { finish, still_rolling } =
            judge_rollout(&row(), Some(&rolling), 2, &clock(true))
        else {
            panic!("a timed-out rollout has a result");
        };
        assert_eq!(
            (finish.result, finish.reason, still_rolling),
            (ServiceResult::TimedOut, reason::ROLLOUT_TIMED_OUT, true)
        );
        assert!(
            finish
                .message
                .is_some_and(|m| m.starts_with("not ready after spec.batchTimeout 10m: "))
        );
        let ready = judge_rollout(&row(), Some(&deployment(2, 2, 2)), 2, &clock(true));
        assert_eq!(
            ready,
            RolloutVerdict::Finished {
                finish: Finish { result: ServiceResult::Ready, reason: "", message: None },
                still_rolling: false
            }
        );
    }

    #[test]
    fn a_deleted_or_replaced_deployment_is_gone() {
        let gone = judge_rollout(&row(), None, 2, &clock(false));
        assert!(matches!(
            gone,
            RolloutVerdict::Finished { finish: Finish { reason: reason::DELETED, .. }, .. }
        ));
        let mut restarted = row();
        restarted.uid = Some("uid-0".into());
        let replaced = judge_rollout(&restarted, Some(&deployment(2, 2, 2)), 2, &clock(false));
        assert!(matches!(
            replaced,
            RolloutVerdict::Finished { finish: Finish { reason: reason::REPLACED, .. }, .. }
        ));
    }

    #[test]
    fn a_restart_of_this_run_recorded_nowhere_is_adopted() {
        let run = run(false);
        let mut marked = deployment(7, 2, 2);
        marked.restarted_by = Some(run.id.clone());
        assert_eq!(restart_generation(&row(), Some(&marked), &run), Some((7, true)));
        assert_eq!(restart_generation(&row(), Some(&deployment(7, 2, 2)), &run), None);
        let mut known = row();
        known.generation = Some(3);
        assert_eq!(restart_generation(&known, Some(&marked), &run), Some((3, false)));
    }

    #[test]
    fn a_service_is_restarted_only_with_room_in_the_budget_and_before_the_deadline() {
        let run = run(false);
        let idle = deployment(1, 2, 2);
        assert_eq!(
            launch(&row(), Some(&idle), &run, (&budget(1), None), &clock(false)),
            Launch::Restart
        );
        let held = launch(&row(), Some(&idle), &run, (&budget(2), None), &clock(false));
        assert!(
            matches!(held, Launch::Hold(ref m) if m.starts_with("held: 2 rollouts of this run"))
        );
        let Launch::Finish { finish, keep_uid } =
            launch(&row(), Some(&idle), &run, (&budget(2), None), &clock(true))
        else {
            panic!("the deadline gives a result");
        };
        assert!(keep_uid);
        assert_eq!(
            (finish.result, finish.reason),
            (ServiceResult::TimedOut, reason::RESTART_TIMED_OUT)
        );
        assert!(finish.message.is_some_and(|m| m.contains("held: 2 rollouts")));
    }

    #[test]
    fn paused_deleted_cancelled_and_foreign_rollouts() {
        let run = run(false);
        let mut paused = deployment(1, 2, 2);
        paused.paused = true;
        assert!(matches!(
            launch(&row(), Some(&paused), &run, (&budget(0), None), &clock(false)),
            Launch::Finish {
                finish: Finish { result: ServiceResult::Skipped, reason: reason::PAUSED, .. },
                ..
            }
        ));
        assert!(matches!(
            launch(&row(), None, &run, (&budget(0), None), &clock(false)),
            Launch::Finish { finish: Finish { result: ServiceResult::Gone, .. }, .. }
        ));
        assert!(matches!(
            launch(
                &row(),
                Some(&deployment(1, 2, 2)),
                &self::run(true),
                (&budget(0), None),
                &clock(false)
            ),
            Launch::Finish { finish: Finish { reason: reason::CANCELLED, .. }, .. }
        ));
        let mut foreign = deployment(2, 1, 1);
        foreign.restarted_by = Some("arcgis/other/1-89abcdef".into());
        assert!(matches!(
            launch(&row(), Some(&foreign), &run, (&budget(0), None), &clock(false)),
            Launch::Hold(ref m) if m.contains("run arcgis/other/1-89abcdef is rolling")
        ));
    }
}

#[cfg(test)]
mod kind_tests {
    use super::tests::{budget, clock, row, run};
    use super::*;
    use crate::crd::WorkloadKind;
    use crate::engine::observed::UpdateStrategy;

    fn set(kind: WorkloadKind, strategy: &str) -> DeploymentSnapshot {
        let mut set = DeploymentSnapshot { kind, ..DeploymentSnapshot::default() };
        set.metadata.name = Some("relational-store".into());
        set.metadata.generation = Some(1);
        set.update_strategy = UpdateStrategy {
            type_: Some(strategy.to_owned()),
            rolling_update: strategy == "RollingUpdate",
            partition: None,
        };
        set
    }

    #[test]
    fn an_on_delete_workload_is_skipped_saying_why() {
        for kind in [WorkloadKind::StatefulSet, WorkloadKind::DaemonSet] {
            let Launch::Finish { finish, keep_uid: false } = launch(
                &row(),
                Some(&set(kind, "OnDelete")),
                &run(false),
                (&budget(0), None),
                &clock(false),
            ) else {
                panic!("an OnDelete {kind} gets a result without a restart");
            };
            assert_eq!((finish.result, finish.reason), (ServiceResult::Skipped, reason::ON_DELETE));
            let message = finish.message.unwrap_or_default();
            assert!(
                message.contains(&format!("this {kind} has updateStrategy OnDelete")),
                "{message}"
            );
            assert!(message.contains("deletes no pods"), "{message}");
            let rolling = set(kind, "RollingUpdate");
            assert_eq!(
                launch(&row(), Some(&rolling), &run(false), (&budget(0), None), &clock(false)),
                Launch::Restart
            );
        }
    }

    #[test]
    fn a_strategy_switched_away_from_rolling_update_fails_with_kubectls_error() {
        let switched = set(WorkloadKind::StatefulSet, "OnDelete");
        let RolloutVerdict::Finished { finish, .. } =
            judge_rollout(&row(), Some(&switched), 1, &clock(false))
        else {
            panic!("kubectl cannot judge it");
        };
        assert_eq!(
            (finish.result, finish.reason),
            (ServiceResult::Failed, reason::NOT_ROLLING_UPDATE)
        );
        assert_eq!(finish.message.as_deref(), Some(readiness::ONLY_ROLLING_UPDATE));
    }
}
