//! Following the run that serves a request, through a watch on that one object (a field
//! selector on `metadata.name`), never by polling. Each observed status is located against the
//! request: still waiting (for the active run to end, for a run slot, for the operator), our
//! run active, or our run ended. Only a run that serves the request counts, never an earlier
//! one; when another client overwrote the annotation before our run started, the run serving
//! the newer value serves ours too, and the user is told.

use std::collections::BTreeSet;
use std::pin::pin;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::time::Instant;

use super::cluster::Target;
use super::error::CliError;
use super::progress::Progress;
use super::request::RunRequest;
use super::view::{PlanView, RunView};
use servicerefresh_core::crd::{Phase, RUN_REQUESTED_AT_ANNOTATION, ServiceRefresh};
use servicerefresh_core::engine::Plan;

/// Watch failures that last this long without a single good event end the command.
const WATCH_FAILURE_GRACE: Duration = Duration::from_secs(30);

/// Where the request stands in one observed status.
#[derive(Clone, Debug, PartialEq)]
pub enum Located<'a> {
    /// Our run has not started; the text says what it waits for.
    Waiting(String),
    /// Our run is active.
    Active(&'a RunView),
    /// Our run has ended. `current` tells whether it is still the status's current run
    /// (then the plan's batches are its own) or already only an entry of the history.
    Ended { run: &'a RunView, current: bool },
}

/// Finds the run serving `request` in `plan`.
pub fn locate<'a>(request: &RunRequest, plan: &'a PlanView) -> Located<'a> {
    let current = plan.run.as_ref().filter(|run| request.is_served_by(run));
    // A run that started and ended between two observations is only in the history, maybe
    // with a later run (serving a still newer request) current already: the earliest counts.
    let past = plan.history.iter().filter(|run| request.is_served_by(run)).min_by_key(|r| r.number);
    match (current, past) {
        (Some(run), past) if past.is_none_or(|past| past.number >= run.number) => {
            if run.active() {
                Located::Active(run)
            } else {
                Located::Ended { run, current: true }
            }
        }
        (_, Some(run)) => Located::Ended { run, current: false },
        _ => Located::Waiting(waiting_for(plan)),
    }
}

fn waiting_for(plan: &PlanView) -> String {
    if let Some(run) = plan.active_run() {
        let cancel = if run.phase == Phase::Suspended {
            ", suspended by spec.suspend"
        } else if run.cancel_requested {
            ", cancel requested"
        } else {
            ""
        };
        return format!(
            "run {} ({}{cancel}) is active at batch {}/{}; this request starts one follow-up run when it ends",
            run.number,
            run.reason,
            plan.batch_position(),
            plan.total_batches()
        );
    }
    if let Some(blocked) = plan.blocked() {
        return format!(
            "no run can start while the ServiceRefresh is Stalled ({}): {}",
            blocked.reason, blocked.message
        );
    }
    if let Some(queued) = plan.true_condition("Reconciling").filter(|c| c.reason == "Queued") {
        return format!("queued: {}", queued.message);
    }
    "the operator has not picked up the request yet".to_owned()
}

/// How following ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Our run ended in this phase.
    Ended(Phase),
    /// `--timeout` passed first.
    TimedOut,
    /// Interrupted (Ctrl-C) before the run ended.
    Interrupted,
}

/// What following found.
pub struct Followed {
    pub outcome: Outcome,
    /// Our run, once it started.
    pub run: Option<RunView>,
    /// Whether the plan's batches belong to `run`.
    pub plan_is_runs: bool,
    /// The last status seen.
    pub plan: PlanView,
    pub object: Option<ServiceRefresh>,
}

/// Follows the run serving `request` until it ends, `timeout` passes, or the user interrupts.
pub async fn follow(
    target: &Target,
    request: &RunRequest,
    timeout: Option<Duration>,
    progress: &mut Progress,
) -> Result<Followed, CliError> {
    let config = watcher::Config::default().fields(&format!("metadata.name={}", target.name));
    let mut events = watcher::watcher(target.api.clone(), config).default_backoff().boxed();
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut expired = pin!(async move {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    });
    let mut interrupted = pin!(tokio::signal::ctrl_c());
    let mut last = Followed {
        outcome: Outcome::TimedOut,
        run: None,
        plan_is_runs: false,
        plan: PlanView::default(),
        object: None,
    };
    let mut newer_requests = BTreeSet::new();
    let mut failing_since: Option<Instant> = None;
    // The run's plan, read again only when the status refers to another one.
    let mut run_plan: Option<Plan> = None;

    loop {
        let event = tokio::select! {
            event = events.next() => event,
            () = &mut expired => {
                last.outcome = Outcome::TimedOut;
                return Ok(last);
            }
            _ = &mut interrupted => {
                last.outcome = Outcome::Interrupted;
                return Ok(last);
            }
        };
        let refresh = match event {
            None => {
                return Err(CliError::Watch {
                    namespace: target.namespace.clone(),
                    name: target.name.clone(),
                    server: target.server.clone(),
                    source: watcher::Error::NoResourceVersion.into(),
                });
            }
            Some(Err(err)) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if is_fatal(&err) || since.elapsed() > WATCH_FAILURE_GRACE {
                    return Err(watch_error(target, err).await);
                }
                continue;
            }
            Some(Ok(watcher::Event::Delete(_))) => return Err(deleted(target)),
            Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => {
                failing_since = None;
                continue;
            }
            Some(Ok(watcher::Event::Apply(refresh) | watcher::Event::InitApply(refresh))) => {
                failing_since = None;
                refresh
            }
        };
        if request.uid.is_some() && refresh.metadata.uid != request.uid {
            return Err(deleted(target));
        }
        let reference = refresh.status.as_ref().and_then(|s| s.run.as_ref()?.plan.as_ref());
        if reference.map(|reference| reference.digest.as_str())
            != run_plan.as_ref().map(|plan| plan.digest())
        {
            // A plan that cannot be read leaves the services unnamed, never the run unfollowed.
            run_plan = target.plan_of(&refresh).await.unwrap_or(None);
        }
        let plan = PlanView::of(&refresh, run_plan.as_ref());
        let now = jiff::Timestamp::now();
        let located = locate(request, &plan);
        if matches!(located, Located::Waiting(_))
            && let Some(value) = refresh
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(RUN_REQUESTED_AT_ANNOTATION))
                .filter(|value| **value != request.value)
            && newer_requests.insert(value.clone())
        {
            progress.note(&format!(
                "note: another client set {RUN_REQUESTED_AT_ANNOTATION} to {value:?} before this request started a run; following the run that serves the newer request"
            ));
        }
        let (run, current, ended) = match located {
            Located::Waiting(what) => {
                progress.waiting(&what);
                (None, false, false)
            }
            Located::Active(run) => (Some(run.clone()), true, false),
            Located::Ended { run, current } => (Some(run.clone()), current, true),
        };
        if let Some(run) = &run {
            if last.run.is_none()
                && let Some(served) = run.request.as_deref().filter(|v| *v != request.value)
                && !newer_requests.contains(served)
            {
                progress.note(&format!(
                    "note: run {} serves {served:?}, a request another client made after this one and before it started",
                    run.number
                ));
            }
            if current {
                progress.update(run, &plan, now);
            }
        }
        last = Followed {
            outcome: last.outcome,
            run: run.clone(),
            plan_is_runs: current,
            plan,
            object: Some(refresh),
        };
        if ended && let Some(run) = run {
            last.outcome = Outcome::Ended(run.phase);
            return Ok(last);
        }
    }
}

/// Whether a watch failure will not heal by retrying: the API refusing the request outright.
fn is_fatal(err: &watcher::Error) -> bool {
    let code = match err {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code,
        watcher::Error::WatchError(status) => status.code,
        _ => return false,
    };
    (400..500).contains(&code) && !matches!(code, 408 | 410 | 429)
}

async fn watch_error(target: &Target, err: watcher::Error) -> CliError {
    match err {
        watcher::Error::InitialListFailed(err)
        | watcher::Error::WatchStartFailed(err)
        | watcher::Error::WatchFailed(err) => target.classify(err, "watch").await,
        other => CliError::Watch {
            namespace: target.namespace.clone(),
            name: target.name.clone(),
            server: target.server.clone(),
            source: other.into(),
        },
    }
}

fn deleted(target: &Target) -> CliError {
    CliError::Deleted { namespace: target.namespace.clone(), name: target.name.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::ConditionView;

    fn run(number: u64, request: Option<&str>, ended: Option<Phase>) -> RunView {
        RunView {
            phase: ended.unwrap_or(Phase::Running),
            end: ended.map(|_| jiff::Timestamp::UNIX_EPOCH),
            ..RunView::fixture(number, request)
        }
    }

    fn request() -> RunRequest {
        RunRequest { value: "ours".into(), previous: None, runs_before: 1, uid: None }
    }

    #[test]
    fn waits_while_the_earlier_run_is_active() {
        let plan = PlanView { run: Some(run(1, None, None)), ..Default::default() };
        let Located::Waiting(what) = locate(&request(), &plan) else { panic!() };
        assert!(what.starts_with("run 1 (RunRequested) is active"), "{what}");
        assert!(what.contains("follow-up"), "{what}");
    }

    #[test]
    fn an_ended_earlier_run_is_not_ours_even_when_queued() {
        let plan = PlanView {
            phase: Some(Phase::Pending),
            run: Some(run(1, Some("before"), Some(Phase::Succeeded))),
            conditions: vec![ConditionView {
                type_: "Reconciling".into(),
                status: true,
                reason: "Queued".into(),
                message: "a run (RunRequested) is waiting for a free run slot".into(),
            }],
            ..Default::default()
        };
        assert_eq!(
            locate(&request(), &plan),
            Located::Waiting("queued: a run (RunRequested) is waiting for a free run slot".into())
        );
    }

    #[test]
    fn finds_our_run_current_or_in_history() {
        let active = PlanView { run: Some(run(2, Some("ours"), None)), ..Default::default() };
        assert!(matches!(locate(&request(), &active), Located::Active(r) if r.number == 2));

        let ended = run(2, Some("ours"), Some(Phase::Failed));
        let replaced = PlanView {
            run: Some(run(3, Some("later"), None)),
            history: vec![ended.clone(), run(1, None, Some(Phase::Succeeded))],
            ..Default::default()
        };
        // Run 3 serves a newer request too, but run 2 came first and served ours.
        assert_eq!(locate(&request(), &replaced), Located::Ended { run: &ended, current: false });
    }

    #[test]
    fn a_stalled_resource_says_why_no_run_starts() {
        let plan = PlanView {
            conditions: vec![ConditionView {
                type_: "Stalled".into(),
                status: true,
                reason: "InvalidSpec".into(),
                message: "bad selector".into(),
            }],
            ..Default::default()
        };
        let Located::Waiting(what) = locate(&request(), &plan) else { panic!() };
        assert!(what.contains("Stalled (InvalidSpec): bad selector"), "{what}");
    }
}
