//! The one place where the CLI reads a `ServiceRefreshStatus`. It turns the status and the
//! run's plan (read through the core's run view) into the few facts the commands and the
//! renderer need: the current run and past runs, the batches with each service's result,
//! the batches still to come as `batchSize` will cut them, counts, and the conditions'
//! reasons.

use jiff::Timestamp;

use servicerefresh_core::crd::{BatchPhase, Phase, ServiceRefreshStatus, ServiceResult, Totals};
use servicerefresh_core::engine::Plan;
use servicerefresh_core::engine::results::display_name;
use servicerefresh_core::engine::schedule::Schedule;
use servicerefresh_core::engine::view::{self as core_view, RunView as CoreRunView};

/// What the CLI knows about one ServiceRefresh's status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanView {
    /// Phase of the resource: of the current run, or how the last run ended.
    pub phase: Option<Phase>,
    /// The current (or last) run.
    pub run: Option<RunView>,
    /// Earlier runs, newest first. Includes the current run once it has ended.
    pub history: Vec<RunView>,
    /// The current run's batches: those started (the earliest may be summed up in
    /// `earlier`), then those to come, as `batchSize` will cut them.
    pub batches: Vec<BatchView>,
    /// The earliest batches of a long run, summed up in the status.
    pub earlier: Option<BatchView>,
    /// Services skipped without a batch: excluded, cancelled before their batch, a dry run.
    pub unbatched: Vec<ServiceView>,
    /// Counts over the current run's plan, as the operator recorded them.
    pub totals: Totals,
    /// The kstatus conditions.
    pub conditions: Vec<ConditionView>,
    /// The `gisops.io/run-requested-at` value the operator handled last.
    pub handled_request: Option<String>,
}

/// One run: the current one or an entry of the history.
#[derive(Clone, Debug, PartialEq)]
pub struct RunView {
    pub number: u64,
    pub id: String,
    /// Why it started: Created, TriggerChanged, RunRequested, ConfigMapChanged or SecretChanged.
    pub reason: String,
    pub message: Option<String>,
    /// The `gisops.io/run-requested-at` value this run serves, if any.
    pub request: Option<String>,
    /// The run's phase: Running, Suspended or Pending while active, how it ended afterwards.
    pub phase: Phase,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    /// Whether a cancel request reached this run.
    pub cancel_requested: bool,
    pub dry_run: bool,
    /// Counts at the end of the run; for the active run, the live counts.
    pub totals: Totals,
}

#[cfg(test)]
impl RunView {
    /// A running run requested under `request`, with nothing counted yet.
    pub fn fixture(number: u64, request: Option<&str>) -> Self {
        RunView {
            number,
            id: format!("ns/x/{number}"),
            reason: "RunRequested".into(),
            message: None,
            request: request.map(String::from),
            phase: Phase::Running,
            start: None,
            end: None,
            cancel_requested: false,
            dry_run: false,
            totals: Totals::default(),
        }
    }
}

impl RunView {
    /// Whether the run is still going.
    pub fn active(&self) -> bool {
        self.end.is_none()
    }
}

/// One batch of the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchView {
    /// Number of the batch in the run, counting from 1; for batches the status sums up, the
    /// number of the last of them.
    pub index: u32,
    /// How many batches this entry stands for: more than one when the status sums up the
    /// earliest batches of a long run.
    pub folded: u32,
    pub phase: BatchPhase,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub services: Vec<ServiceView>,
}

/// One service (Deployment) of the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceView {
    /// The Deployment's name, prefixed with `namespace/` when it lives in another namespace
    /// than the ServiceRefresh.
    pub name: String,
    /// Its result; `None` while it waits or rolls out.
    pub result: Option<ServiceResult>,
    /// Why it is not Ready, or what it waits for.
    pub message: Option<String>,
}

/// Results counted over a set of services.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub ready: usize,
    /// Failed, TimedOut and Gone together.
    pub failed: usize,
    pub skipped: usize,
    /// Services without a result yet.
    pub waiting: usize,
}

impl Counts {
    pub fn of<'a>(services: impl IntoIterator<Item = &'a ServiceView>) -> Self {
        let mut counts = Counts::default();
        for service in services {
            match service.result {
                Some(ServiceResult::Ready) => counts.ready += 1,
                Some(ServiceResult::Skipped) => counts.skipped += 1,
                Some(_) => counts.failed += 1,
                None => counts.waiting += 1,
            }
        }
        counts
    }

    /// Services with a result.
    pub fn done(&self) -> usize {
        self.ready + self.failed + self.skipped
    }

    pub fn total(&self) -> usize {
        self.done() + self.waiting
    }
}

/// One kstatus condition.
#[derive(Clone, Debug, PartialEq)]
pub struct ConditionView {
    pub type_: String,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl BatchView {
    pub fn counts(&self) -> Counts {
        Counts::of(&self.services)
    }

    /// Time from the batch's start to its end, or to `now` while it runs.
    pub fn elapsed(&self, now: Timestamp) -> Option<jiff::SignedDuration> {
        let start = self.start?;
        Some(self.end.unwrap_or(now).duration_since(start))
    }

    /// Services that failed, timed out or disappeared.
    pub fn failures(&self) -> impl Iterator<Item = &ServiceView> {
        self.services.iter().filter(|s| s.result.is_some_and(ServiceResult::is_failure))
    }

    /// Whether the batch's restarts have begun.
    pub fn started(&self) -> bool {
        self.phase != BatchPhase::Pending || self.start.is_some()
    }
}

impl PlanView {
    /// The view of a ServiceRefresh's status (empty without one), with the services named
    /// through its run's `plan` when it is known.
    pub fn of(refresh: &servicerefresh_core::crd::ServiceRefresh, plan: Option<&Plan>) -> Self {
        let own_namespace = refresh.metadata.namespace.as_deref().unwrap_or_default();
        refresh
            .status
            .as_ref()
            .map(|status| Self::from_status(status, own_namespace, plan))
            .unwrap_or_default()
    }

    /// The view of `status`, for a ServiceRefresh in `own_namespace`.
    pub fn from_status(
        status: &ServiceRefreshStatus,
        own_namespace: &str,
        plan: Option<&Plan>,
    ) -> Self {
        let run_view = CoreRunView::new(status, plan, own_namespace);
        let service = |service: &core_view::ServiceView| ServiceView {
            name: display_name(&service.key, own_namespace),
            result: service.result,
            message: service.message.clone(),
        };
        let earlier = status.earlier_batches.as_ref().map(|earlier| BatchView {
            index: earlier.batches,
            folded: earlier.batches,
            phase: BatchPhase::Completed,
            start: earlier.start_time.as_ref().map(|t| t.0),
            end: earlier.end_time.as_ref().map(|t| t.0),
            services: run_view.earlier_services.iter().map(service).collect(),
        });
        let mut batches: Vec<BatchView> = Vec::new();
        batches.extend(run_view.batches.iter().map(|batch| BatchView {
            index: batch.index,
            folded: 1,
            phase: batch.phase,
            start: batch.start_time,
            end: batch.end_time,
            services: batch.services.iter().map(service).collect(),
        }));
        // The batches still to come, as the run's schedule will cut them (canary, slow
        // start, the effective size).
        let started = earlier.as_ref().map_or(0, |earlier| earlier.index);
        let first_pending = batches.last().map_or(started, |batch| batch.index) + 1;
        let schedule = status.run.as_ref().map(Schedule::of_run);
        let to_come = schedule.map(|schedule| schedule.cut(&run_view.not_started, first_pending));
        for (index, chunk) in to_come.unwrap_or_default() {
            batches.push(BatchView {
                index,
                folded: 1,
                phase: BatchPhase::Pending,
                start: None,
                end: None,
                services: chunk.iter().map(service).collect(),
            });
        }
        let unbatched: Vec<ServiceView> = run_view.unbatched.iter().map(service).collect();
        let history: Vec<RunView> = status
            .history
            .iter()
            .map(|summary| RunView {
                number: summary.number,
                id: summary.id.clone(),
                reason: summary.reason.clone(),
                message: summary.message.clone(),
                request: summary.request.clone(),
                phase: summary.phase,
                start: summary.start_time.as_ref().map(|t| t.0),
                end: summary.end_time.as_ref().map(|t| t.0),
                cancel_requested: summary.phase == Phase::Cancelled,
                dry_run: false,
                totals: summary.totals.clone(),
            })
            .collect();
        let run = status.run.as_ref().map(|run| {
            let ended = run.end_time.is_some();
            let recorded = history.iter().find(|past| past.id == run.id);
            let phase = if !ended {
                status.phase.filter(|p| !is_terminal(*p)).unwrap_or(Phase::Running)
            } else if let Some(recorded) = recorded {
                recorded.phase
            } else if let Some(phase) = status.phase.filter(|p| is_terminal(*p)) {
                phase
            } else if status.totals.failed > 0 {
                Phase::Failed
            } else if run.cancel_request.is_some() {
                Phase::Cancelled
            } else {
                Phase::Succeeded
            };
            RunView {
                number: run.number,
                id: run.id.clone(),
                reason: run.reason.clone(),
                message: run.message.clone(),
                request: run.request.clone(),
                phase,
                start: run.start_time.as_ref().map(|t| t.0),
                end: run.end_time.as_ref().map(|t| t.0),
                cancel_requested: run.cancel_request.is_some(),
                dry_run: run.dry_run,
                totals: status.totals.clone(),
            }
        });
        let conditions = status
            .conditions
            .iter()
            .map(|c| ConditionView {
                type_: c.type_.clone(),
                status: c.status == "True",
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
            .collect();
        PlanView {
            phase: status.phase,
            run,
            history,
            batches,
            earlier,
            unbatched,
            totals: status.totals.clone(),
            conditions,
            handled_request: status.triggers.run_requested_at.clone(),
        }
    }

    /// Results over the whole plan.
    pub fn counts(&self) -> Counts {
        Counts::of(self.services())
    }

    /// Every service of the plan: the earliest batches', the listed batches', the skipped.
    pub fn services(&self) -> impl Iterator<Item = &ServiceView> {
        self.earlier
            .iter()
            .chain(&self.batches)
            .flat_map(|batch| &batch.services)
            .chain(&self.unbatched)
    }

    /// The batches in order: the earliest summed up (if any), then those listed.
    pub fn listed_batches(&self) -> impl Iterator<Item = &BatchView> {
        self.earlier.iter().chain(&self.batches)
    }

    /// How many batches the run has: those summed up, those listed, and those to come.
    pub fn total_batches(&self) -> usize {
        self.earlier.as_ref().map_or(0, |earlier| earlier.folded as usize) + self.batches.len()
    }

    /// The batch being restarted: the first one not completed, once it has started.
    pub fn current_batch(&self) -> Option<&BatchView> {
        self.batches.iter().find(|b| b.phase != BatchPhase::Completed).filter(|b| b.started())
    }

    /// 1-based number of the first batch not completed (the number of batches when all are).
    pub fn batch_position(&self) -> usize {
        let earlier = self.earlier.as_ref().map_or(0, |earlier| earlier.folded as usize);
        earlier
            + self
                .batches
                .iter()
                .position(|b| b.phase != BatchPhase::Completed)
                .map_or(self.batches.len(), |i| i + 1)
    }

    /// The active run, if any.
    pub fn active_run(&self) -> Option<&RunView> {
        self.run.as_ref().filter(|run| run.active())
    }

    /// A condition that is True, by type.
    pub fn true_condition(&self, type_: &str) -> Option<&ConditionView> {
        self.conditions.iter().find(|c| c.type_ == type_ && c.status)
    }

    /// Why the resource cannot start a run, when it is Stalled for a reason other than the
    /// failure of its last run: an unusable spec or a missing trigger ConfigMap.
    pub fn blocked(&self) -> Option<&ConditionView> {
        self.true_condition("Stalled").filter(|c| c.reason != "RunFailed")
    }
}

/// Whether a run in this phase has ended.
pub fn is_terminal(phase: Phase) -> bool {
    matches!(phase, Phase::Succeeded | Phase::Failed | Phase::Cancelled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use servicerefresh_core::crd::{BatchStatus, RunStatus, RunSummary, ServiceStatus};

    fn service(name: &str, result: Option<ServiceResult>) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            position: None,
            reason: None,
            namespace: None,
            kind: None,
            generation: None,
            uid: None,
            result,
            message: None,
        }
    }

    fn status_with_ended_run_and_follow_up_queued() -> ServiceRefreshStatus {
        let run = RunStatus {
            id: "arcgis/x/2-abc".into(),
            number: 2,
            reason: "RunRequested".into(),
            message: None,
            request: Some("r2".into()),
            cancel_request: None,
            dry_run: false,
            force: false,
            plan: None,
            next_position: 0,
            batch_size: None,
            canary_size: None,
            slow_start: false,
            pacing: None,
            selection: None,
            start_time: Some(Time(Timestamp::from_second(100).unwrap())),
            end_time: Some(Time(Timestamp::from_second(160).unwrap())),
        };
        ServiceRefreshStatus {
            // A follow-up is queued: the phase no longer tells how run 2 ended.
            phase: Some(Phase::Pending),
            run: Some(run),
            batches: vec![BatchStatus {
                index: 1,
                phase: BatchPhase::Completed,
                start_time: None,
                end_time: None,
                message_time: None,
                positions: None,
                wave: None,
                counts: None,
                ready: vec![],
                services: vec![
                    service("a", Some(ServiceResult::Ready)),
                    ServiceStatus {
                        namespace: Some("other".into()),
                        ..service("b", Some(ServiceResult::TimedOut))
                    },
                    service("c", Some(ServiceResult::Skipped)),
                ],
            }],
            history: vec![RunSummary {
                id: "arcgis/x/2-abc".into(),
                number: 2,
                reason: "RunRequested".into(),
                request: Some("r2".into()),
                phase: Phase::Failed,
                message: None,
                start_time: None,
                end_time: None,
                totals: Totals::default(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_batches_to_come_are_cut_as_the_canary_and_slow_start_cut_them() {
        let entries = (0..12)
            .map(|i| servicerefresh_core::engine::PlanEntry {
                key: servicerefresh_core::engine::ObjectKey::new("arcgis", format!("s{i}")),
                wave: 0,
            })
            .collect();
        let plan = Plan::new("arcgis/x/3-abc", entries);
        let mut status = status_with_ended_run_and_follow_up_queued();
        status.phase = Some(Phase::Running);
        status.batches.clear();
        status.history.clear();
        let run = status.run.as_mut().expect("a run");
        (run.id, run.end_time, run.batch_size) = ("arcgis/x/3-abc".into(), None, Some(4));
        (run.canary_size, run.slow_start) = (Some(2), true);
        run.plan = Some(servicerefresh_core::crd::PlanRef {
            name: "x-plan-1-0".into(),
            parts: 1,
            services: 12,
            digest: plan.digest().to_owned(),
        });
        let view = PlanView::from_status(&status, "arcgis", Some(&plan));
        let sizes: Vec<(usize, usize)> =
            view.batches.iter().map(|batch| (batch.index as usize, batch.services.len())).collect();
        // 2 canaries, then 1, 2, 4, and the 3 left: batchSize alone would cut 4, 4, 4.
        assert_eq!(sizes, [(1, 2), (2, 1), (3, 2), (4, 4), (5, 3)]);
        assert_eq!(view.total_batches(), 5);
        assert_eq!(view.batches[1].services[0].name, "s2", "in plan order");
    }

    #[test]
    fn an_ended_run_takes_its_phase_from_history_not_from_a_queued_follow_up() {
        let view =
            PlanView::from_status(&status_with_ended_run_and_follow_up_queued(), "arcgis", None);
        let run = view.run.as_ref().unwrap();
        assert_eq!(run.phase, Phase::Failed);
        assert!(!run.active());
        assert!(view.active_run().is_none());
    }

    #[test]
    fn counts_group_failures_and_qualify_foreign_namespaces() {
        let view =
            PlanView::from_status(&status_with_ended_run_and_follow_up_queued(), "arcgis", None);
        let counts = view.counts();
        assert_eq!((counts.ready, counts.failed, counts.skipped, counts.waiting), (1, 1, 1, 0));
        assert_eq!(counts.done(), 3);
        let failures: Vec<_> = view.batches[0].failures().map(|s| s.name.as_str()).collect();
        assert_eq!(failures, ["other/b"]);
        assert_eq!(view.batch_position(), 1);
        assert!(view.current_batch().is_none());
    }

    #[test]
    fn an_active_run_keeps_the_live_phase() {
        let mut status = status_with_ended_run_and_follow_up_queued();
        status.phase = Some(Phase::Suspended);
        if let Some(run) = status.run.as_mut() {
            run.end_time = None;
        }
        status.batches[0].phase = BatchPhase::Running;
        status.batches[0].services[2].result = None;
        let view = PlanView::from_status(&status, "arcgis", None);
        assert_eq!(view.active_run().map(|r| r.phase), Some(Phase::Suspended));
        assert_eq!(view.current_batch().map(|b| b.index), Some(1));
        assert_eq!(view.counts().waiting, 1);
    }
}
