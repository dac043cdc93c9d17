//! Restart-storm protection: runs started by trigger changes (a watched ConfigMap,
//! `spec.trigger`) are counted over the last hour, and once `spec.maxRunsPerHour` of them
//! have started, the next one stalls the resource instead (`RestartStorm`) until a person
//! requests a run. The count comes from the current run and the run history in the status;
//! a run a person requested (or the creation run) ends the count, because a person has
//! looked since.

use jiff::{SignedDuration, Timestamp};

use crate::crd::ServiceRefreshStatus;

/// The horizon `spec.maxRunsPerHour` counts over.
pub const STORM_HORIZON: SignedDuration = SignedDuration::from_hours(1);

/// Run reasons that a trigger change, not a person, caused.
const TRIGGER_REASONS: [&str; 3] = ["ConfigMapChanged", "SecretChanged", "TriggerChanged"];

/// How many trigger-started runs started within `horizon` before `now`, counting back to the
/// last run started any other way.
pub fn trigger_runs_within(
    status: &ServiceRefreshStatus,
    horizon: SignedDuration,
    now: Timestamp,
) -> u32 {
    let since = now.checked_sub(horizon).unwrap_or(Timestamp::MIN);
    let active = status.run.as_ref().filter(|run| run.end_time.is_none());
    let runs = active
        .map(|run| (run.reason.as_str(), run.start_time.as_ref()))
        .into_iter()
        .chain(status.history.iter().map(|run| (run.reason.as_str(), run.start_time.as_ref())));
    let mut count = 0;
    for (reason, start) in runs {
        if !TRIGGER_REASONS.contains(&reason) {
            break;
        }
        match start {
            Some(start) if start.0 > since => count += 1,
            _ => break,
        }
    }
    count
}

/// The stall message for a storm of `count` runs against a limit of `limit`.
pub fn storm_message(trigger: &str, limit: u32) -> String {
    format!(
        "restart storm: trigger changes started {limit} runs within an hour \
         (spec.maxRunsPerHour), and another is due ({trigger}); runs started by trigger \
         changes are stopped until a person requests a run (annotation \
         gisops.io/run-requested-at, or servicerefresh start)"
    )
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::crd::{Phase, RunSummary, Totals};

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_795_717_589 + seconds).expect("in range")
    }

    fn summary(reason: &str, start: i64) -> RunSummary {
        RunSummary {
            id: format!("run-{start}"),
            number: 1,
            reason: reason.into(),
            request: None,
            phase: Phase::Succeeded,
            message: None,
            start_time: Some(Time(at(start))),
            end_time: Some(Time(at(start + 10))),
            totals: Totals::default(),
        }
    }

    fn history(runs: &[(&str, i64)]) -> ServiceRefreshStatus {
        ServiceRefreshStatus {
            history: runs.iter().map(|(reason, start)| summary(reason, *start)).collect(),
            ..ServiceRefreshStatus::default()
        }
    }

    #[test]
    fn trigger_runs_of_the_last_hour_count() {
        let status = history(&[
            ("ConfigMapChanged", 3000),
            ("TriggerChanged", 2000),
            ("ConfigMapChanged", 100),
            ("ConfigMapChanged", -10),
        ]);
        assert_eq!(trigger_runs_within(&status, STORM_HORIZON, at(3650)), 3);
        assert_eq!(trigger_runs_within(&status, STORM_HORIZON, at(5500)), 2);
        // A run started exactly an hour ago has left the hour.
        let edge = history(&[("ConfigMapChanged", 100)]);
        assert_eq!(trigger_runs_within(&edge, STORM_HORIZON, at(3699)), 1);
        assert_eq!(trigger_runs_within(&edge, STORM_HORIZON, at(3700)), 0);
    }

    #[test]
    fn a_run_a_person_requested_ends_the_count() {
        let status =
            history(&[("ConfigMapChanged", 300), ("RunRequested", 200), ("ConfigMapChanged", 100)]);
        assert_eq!(trigger_runs_within(&status, STORM_HORIZON, at(400)), 1);
        let created = history(&[("Created", 100)]);
        assert_eq!(trigger_runs_within(&created, STORM_HORIZON, at(400)), 0);
    }

    #[test]
    fn the_message_names_the_trigger_and_what_clears_it() {
        let message = storm_message("ConfigMap arcgis/proxy changed", 6);
        assert!(message.contains("ConfigMap arcgis/proxy changed"), "{message}");
        assert!(message.contains("gisops.io/run-requested-at"), "{message}");
    }
}
