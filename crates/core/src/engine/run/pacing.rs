//! Where the pacing rules ([`crate::engine::pacing`]) meet the run: trigger changes settle
//! before they count, a storm of trigger-started runs stalls the resource, runs start and
//! batches are cut only inside the maintenance windows, and a batch waits while one of its
//! Deployments was restarted less than the minimum interval ago.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::Pass;
use crate::crd::{Phase, RestartStorm, ServiceRefreshStatus};
use crate::engine::conditions::Situation;
use crate::engine::pacing::interval::{blocked_until, last_restart};
use crate::engine::pacing::settle::{Settle, settle};
use crate::engine::pacing::storm::{STORM_HORIZON, storm_message, trigger_runs_within};
use crate::engine::pacing::windows::WindowState;
use crate::engine::spec::ValidSpec;
use crate::engine::waits::{Wait, WaitReason};

/// Keeps `status.triggers.settling` current for the watched ConfigMaps' content (`changed`:
/// its digest when it differs from what the last run recorded), and wakes the resource when
/// a change will have settled.
pub(super) fn settle_config_maps(
    pass: &mut Pass,
    status: &mut ServiceRefreshStatus,
    spec: &ValidSpec,
    changed: Option<String>,
) {
    let (record, verdict) =
        settle(status.triggers.settling.as_ref(), changed, spec.trigger_settle, pass.now);
    if status.triggers.settling != record {
        status.triggers.settling = record;
    }
    if let Settle::Settling { until } = verdict {
        pass.out.wake_no_later_than(until);
    }
}

/// Whether the watched ConfigMaps' change (if any) has stayed unchanged for the settle time.
pub(super) fn config_maps_settled(
    pass: &Pass,
    status: &ServiceRefreshStatus,
    spec: &ValidSpec,
) -> bool {
    spec.trigger_settle.is_zero()
        || status.triggers.settling.as_ref().is_some_and(|record| {
            record.since.0.checked_add(spec.trigger_settle).is_ok_and(|until| until <= pass.now)
        })
}

/// The restart-storm stall, when trigger changes have started `spec.maxRunsPerHour` runs
/// within the hour and another is due, or a storm recorded earlier still stands. `due` is the
/// due run's trigger in words and whether a person asked for it: such a run is never held,
/// and starting it clears the storm.
pub(super) fn storm_stall(
    pass: &Pass,
    status: &mut ServiceRefreshStatus,
    spec: &ValidSpec,
    due: Option<(&str, bool)>,
) -> Option<Situation> {
    if due.is_some_and(|(_, by_person)| by_person) {
        return None;
    }
    if status.triggers.storm.is_none() {
        let (trigger, _) = due?;
        if trigger_runs_within(status, STORM_HORIZON, pass.now) < spec.max_runs_per_hour {
            return None;
        }
        status.triggers.storm =
            Some(RestartStorm { trigger: trigger.to_owned(), since: pass.now_time() });
    }
    let storm = status.triggers.storm.as_ref()?;
    Some(Situation::RestartStorm { message: storm_message(&storm.trigger, spec.max_runs_per_hour) })
}

/// Holds a due run (`reason`: why it is due) outside the maintenance windows: it starts when
/// the next window opens, and every trigger until then adds up to that one run.
pub(super) fn hold_run_start(
    pass: &mut Pass,
    status: &mut ServiceRefreshStatus,
    spec: &ValidSpec,
    reason: &str,
) -> Option<Situation> {
    let wait = outside_window(pass, spec, &format!("a run ({reason}) is due"))?;
    status.phase = Some(Phase::Pending);
    let situation =
        Situation::Waiting { reason: wait.reason.to_string(), message: wait.message.clone() };
    pass.wait(status, wait);
    Some(situation)
}

/// Holds the run before the batch of `positions` while the windows are closed, or while one
/// of its Deployments was restarted by this operator less than the minimum interval ago
/// (unless the run was forced). Returns whether it holds.
pub(super) fn hold_batch(
    pass: &mut Pass,
    status: &ServiceRefreshStatus,
    spec: &ValidSpec,
    positions: &[u32],
) -> bool {
    if let Some(wait) = outside_window(pass, spec, "the next batch waits") {
        pass.wait(status, wait);
        return true;
    }
    let Some(run) = status.run.as_ref().filter(|run| !run.force) else {
        return false;
    };
    let interval = pass.observation.min_restart_interval;
    if interval.is_zero() {
        return false;
    }
    let Some(plan) = pass.plan_of(status) else {
        return false;
    };
    let blocking = positions
        .iter()
        .filter_map(|position| plan.get(*position))
        .filter_map(|entry| {
            let deployment = pass.observation.cluster.deployment(&entry.key)?;
            let last = last_restart(&deployment, status, &run.id);
            Some((blocked_until(last, interval, pass.now)?, entry.key.clone()))
        })
        .max();
    let Some((until, key)) = blocking else {
        return false;
    };
    let message = format!(
        "Deployment {key} was restarted by this operator less than {interval:#} ago \
         (--min-restart-interval); the next batch starts at {} unless the run is forced \
         (gisops.io/force: \"true\" with gisops.io/run-requested-at)",
        Time(until).0.round(jiff::Unit::Second).unwrap_or(until)
    );
    pass.wait(status, Wait { reason: WaitReason::RestartInterval, message, until: Some(until) });
    true
}

/// The wait for the next window, when the schedule's windows are closed now.
pub(in crate::engine::run) fn outside_window(
    pass: &Pass,
    spec: &ValidSpec,
    what: &str,
) -> Option<Wait> {
    let schedule = spec.schedule.as_ref()?;
    let WindowState::Closed { opens } = schedule.state_at(pass.now) else {
        return None;
    };
    let local = opens.to_zoned(schedule.zone().clone());
    Some(Wait {
        reason: WaitReason::OutsideWindow,
        message: format!(
            "outside the maintenance windows: {what} until the next window opens at {} ({})",
            local.strftime("%a %Y-%m-%d %H:%M:%S %Z"),
            schedule.zone_name()
        ),
        until: Some(opens),
    })
}
