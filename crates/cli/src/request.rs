//! Asking the operator for something through the ServiceRefresh's annotations: a run
//! (`gisops.io/run-requested-at`) or a cancellation (`gisops.io/cancel-requested-at`), each
//! set to a fresh unique value. The write is conditional on the resourceVersion just read, so
//! the CLI knows exactly what the object looked like the instant before its request: the
//! annotation's previous value and the last run number, which is how it later recognises the
//! run that serves its request (see `follow`).

use std::hash::{BuildHasher, Hasher};

use serde_json::json;

use super::cluster::Target;
use super::error::CliError;
use super::view::{PlanView, RunView};
use servicerefresh_core::crd::{
    CANCEL_REQUESTED_AT_ANNOTATION, FORCE_ANNOTATION, RUN_REQUESTED_AT_ANNOTATION, ServiceRefresh,
};

/// Conditional writes retried this many times when others keep changing the object.
const MAX_ATTEMPTS: usize = 10;

/// A run request the CLI has written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRequest {
    /// The value written to `gisops.io/run-requested-at`.
    pub value: String,
    /// The annotation's value the instant before ours replaced it.
    pub previous: Option<String>,
    /// The number of the latest run at that instant (0 before the first run). Only a later
    /// run can serve the request.
    pub runs_before: u64,
    /// The object's uid, to notice a delete and re-create.
    pub uid: Option<String>,
}

impl RunRequest {
    /// Whether a run that records `request` as the value it serves started for this request.
    /// The operator records the annotation value it found unhandled at run start: ours, or a
    /// value another client wrote after ours (which supersedes it), but never the value that
    /// was there before ours, which an operator acting on a stale read may still pick up.
    pub fn is_served_by(&self, run: &RunView) -> bool {
        run.number > self.runs_before
            && run.request.as_deref().is_some_and(|value| Some(value) != self.previous.as_deref())
    }
}

/// A fresh value for a request annotation: the current time to the nanosecond (RFC 3339, UTC)
/// and a short random suffix, so two clients asking in the same instant still differ.
pub fn fresh_value() -> String {
    // `RandomState` is seeded from the operating system's randomness for each instance.
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    format!("{:.9}-{:06x}", jiff::Timestamp::now(), random & 0xff_ffff)
}

fn annotation<'a>(refresh: &'a ServiceRefresh, key: &str) -> Option<&'a String> {
    refresh.metadata.annotations.as_ref()?.get(key)
}

/// Requests a run. Returns the request and the object as our write left it.
pub async fn request_run(
    target: &Target,
    force: bool,
) -> Result<(RunRequest, ServiceRefresh), CliError> {
    let value = fresh_value();
    for _ in 0..MAX_ATTEMPTS {
        let current = target.get().await?;
        let previous = annotation(&current, RUN_REQUESTED_AT_ANNOTATION).cloned();
        let runs_before =
            current.status.as_ref().and_then(|s| s.run.as_ref()).map_or(0, |run| run.number);
        let mut annotations = json!({ RUN_REQUESTED_AT_ANNOTATION: value });
        // A force left from an earlier request must not force this one.
        if force {
            annotations[FORCE_ANNOTATION] = json!("true");
        } else if annotation(&current, FORCE_ANNOTATION).is_some() {
            annotations[FORCE_ANNOTATION] = serde_json::Value::Null;
        }
        let written = target
            .patch_metadata_if_unchanged(current.metadata.resource_version.as_deref(), annotations)
            .await?;
        if let Some(written) = written {
            let request =
                RunRequest { value, previous, runs_before, uid: written.metadata.uid.clone() };
            return Ok((request, written));
        }
    }
    Err(contended(target))
}

/// What `cancel` found and did.
#[derive(Clone, Debug, PartialEq)]
pub enum CancelOutcome {
    /// The cancel annotation was set while this run was active.
    Requested { run: RunView, value: String },
    /// The active run had a cancel request already; nothing was written.
    AlreadyRequested { run: RunView },
    /// No run is active; nothing was written.
    NoActiveRun { plan: Box<PlanView> },
}

/// Requests cancellation of the active run, if there is one. With no active run nothing is
/// written: the operator would only record that there was nothing to cancel.
pub async fn request_cancel(target: &Target) -> Result<CancelOutcome, CliError> {
    let value = fresh_value();
    for _ in 0..MAX_ATTEMPTS {
        let current = target.get().await?;
        let plan = PlanView::of(&current, None);
        let Some(run) = plan.active_run().cloned() else {
            return Ok(CancelOutcome::NoActiveRun { plan: Box::new(plan) });
        };
        if run.cancel_requested {
            return Ok(CancelOutcome::AlreadyRequested { run });
        }
        let written = target
            .patch_metadata_if_unchanged(
                current.metadata.resource_version.as_deref(),
                json!({ CANCEL_REQUESTED_AT_ANNOTATION: value }),
            )
            .await?;
        if written.is_some() {
            return Ok(CancelOutcome::Requested { run, value });
        }
    }
    Err(contended(target))
}

fn contended(target: &Target) -> CliError {
    CliError::Contended {
        namespace: target.namespace.clone(),
        name: target.name.clone(),
        attempts: MAX_ATTEMPTS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(number: u64, request: Option<&str>) -> RunView {
        RunView::fixture(number, request)
    }

    #[test]
    fn fresh_values_differ_and_start_with_a_timestamp() {
        let (a, b) = (fresh_value(), fresh_value());
        assert_ne!(a, b);
        let (time, suffix) = a.rsplit_once('-').unwrap();
        assert!(time.parse::<jiff::Timestamp>().is_ok(), "{a}");
        assert!(time.ends_with('Z') && time.len() == "2026-01-01T00:00:00.123456789Z".len());
        assert_eq!(suffix.len(), 6);
    }

    #[test]
    fn only_a_later_run_serving_a_new_value_serves_the_request() {
        let request = RunRequest {
            value: "ours".into(),
            previous: Some("older".into()),
            runs_before: 3,
            uid: None,
        };
        assert!(request.is_served_by(&run(4, Some("ours"))));
        // Another client overwrote ours before the run started: the newer value serves it.
        assert!(request.is_served_by(&run(4, Some("newer"))));
        // The run that was active when we asked, even if it serves a request.
        assert!(!request.is_served_by(&run(3, Some("ours"))));
        // A run that started from a read older than our write.
        assert!(!request.is_served_by(&run(4, Some("older"))));
        // A run started by another trigger.
        assert!(!request.is_served_by(&run(5, None)));
    }
}
