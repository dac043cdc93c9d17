//! The minimum interval between two restarts of one Deployment by this operator
//! (`--min-restart-interval`). When the operator last restarted a Deployment is read from
//! what it wrote: the pod template's `kubectl.kubernetes.io/restartedAt` (the restarting
//! run's start) and, when the run that restarted it is one of this resource's, that run's end
//! in the status history, the latest moment its restart can have been sent (the end is stored
//! in whole seconds, so up to a second after it).

use jiff::{SignedDuration, Timestamp};

use crate::crd::ServiceRefreshStatus;
use crate::engine::observed::DeploymentSnapshot;

/// How much later than a stored run end (whole seconds) the run may have ended.
const STORED_PRECISION: SignedDuration = SignedDuration::from_secs(1);

/// The latest time this operator may have restarted `deployment` before the run `current`,
/// or `None` when it carries no restart of ours (or only one by `current` itself).
pub fn last_restart(
    deployment: &DeploymentSnapshot,
    status: &ServiceRefreshStatus,
    current: &str,
) -> Option<Timestamp> {
    let run = deployment.restarted_by.as_deref()?;
    if run == current {
        return None;
    }
    let stamped = deployment.restarted_at.as_deref().and_then(|text| text.parse().ok());
    let ended = status
        .history
        .iter()
        .find(|summary| summary.id == run)
        .and_then(|summary| summary.end_time.as_ref().or(summary.start_time.as_ref()))
        .and_then(|time| time.0.checked_add(STORED_PRECISION).ok());
    stamped.max(ended)
}

/// When a Deployment last restarted at `last` may be restarted again, if that is after `now`.
pub fn blocked_until(
    last: Option<Timestamp>,
    interval: SignedDuration,
    now: Timestamp,
) -> Option<Timestamp> {
    let allowed = last?.checked_add(interval).ok()?;
    (allowed > now).then_some(allowed)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::crd::{Phase, RunSummary, Totals};

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_795_717_589 + seconds).expect("in range")
    }

    fn restarted(by: &str, at_text: &str) -> DeploymentSnapshot {
        DeploymentSnapshot {
            restarted_by: Some(by.into()),
            restarted_at: Some(at_text.into()),
            ..DeploymentSnapshot::default()
        }
    }

    const FIVE_MINUTES: SignedDuration = SignedDuration::from_mins(5);

    #[test]
    fn the_stamp_of_a_foreign_run_counts() {
        let deployment = restarted("arcgis/other/3-89abcdef", &at(0).to_string());
        let last = last_restart(&deployment, &ServiceRefreshStatus::default(), "arcgis/r/2-0123");
        assert_eq!(last, Some(at(0)));
        assert_eq!(blocked_until(last, FIVE_MINUTES, at(60)), Some(at(300)));
        assert_eq!(blocked_until(last, FIVE_MINUTES, at(300)), None);
    }

    #[test]
    fn an_own_earlier_run_counts_until_its_end() {
        let status = ServiceRefreshStatus {
            history: vec![RunSummary {
                id: "arcgis/r/1-0123".into(),
                number: 1,
                reason: "Created".into(),
                request: None,
                phase: Phase::Succeeded,
                message: None,
                start_time: Some(Time(at(0))),
                end_time: Some(Time(at(200))),
                totals: Totals::default(),
            }],
            ..ServiceRefreshStatus::default()
        };
        let deployment = restarted("arcgis/r/1-0123", &at(0).to_string());
        let last = last_restart(&deployment, &status, "arcgis/r/2-0123");
        assert_eq!(last, Some(at(201)), "the restart may have gone out as late as the run's end");
        assert_eq!(blocked_until(last, FIVE_MINUTES, at(400)), Some(at(501)));
    }

    #[test]
    fn the_current_run_and_unrestarted_deployments_do_not_block() {
        let deployment = restarted("arcgis/r/2-0123", &at(0).to_string());
        let status = ServiceRefreshStatus::default();
        assert_eq!(last_restart(&deployment, &status, "arcgis/r/2-0123"), None);
        assert_eq!(last_restart(&DeploymentSnapshot::default(), &status, "arcgis/r/2-0123"), None);
        assert_eq!(blocked_until(None, FIVE_MINUTES, at(0)), None);
    }
}
