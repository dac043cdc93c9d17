//! What changed in one pass, as facts: runs and batches starting and ending, services
//! reaching their results, and the notices a person should see. The shell turns each into a
//! structured log line and metrics, and [`Transition::event`] renders the ones worth a
//! Kubernetes Event, with a stable [`EventReason`].

use std::fmt;

use super::ObjectKey;
use super::waits::WaitReason;
use crate::crd::{Phase, ServiceResult, Totals};

/// Severity of a Kubernetes Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventSeverity {
    Normal,
    Warning,
}

/// The `reason` of every Event the operator records; stable words tools can match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventReason {
    RunStarted,
    RunSucceeded,
    RunFailed,
    RunCancelled,
    BatchStarted,
    BatchCompleted,
    Suspended,
    CancelRequested,
    NoActiveRun,
    ExcludeUnmatched,
    TriggerKeysMissing,
    InvalidSpec,
    CrossNamespaceRefused,
    NamespaceNotWatched,
    ConfigMapNotFound,
    SecretNotFound,
    SecretsNotWatched,
    StatusWriteRefused,
    RestartStorm,
    /// The API server forbids a write the run needs (a missing RBAC grant).
    Forbidden,
    /// The health gate still failed at its timeout and `failurePolicy: Continue` went on.
    HealthGateTimedOut,
    /// Capacity-aware pacing changed the run's effective batch size.
    BatchSizeChanged,
    /// A canary failed or turned unready during its soak: the run ends.
    CanaryFailed,
    /// A wait began; the Event's reason is the wait's own word.
    Waiting(WaitReason),
}

impl EventReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RunStarted => "RunStarted",
            Self::RunSucceeded => "RunSucceeded",
            Self::RunFailed => "RunFailed",
            Self::RunCancelled => "RunCancelled",
            Self::BatchStarted => "BatchStarted",
            Self::BatchCompleted => "BatchCompleted",
            Self::Suspended => "Suspended",
            Self::CancelRequested => "CancelRequested",
            Self::NoActiveRun => "NoActiveRun",
            Self::ExcludeUnmatched => "ExcludeUnmatched",
            Self::TriggerKeysMissing => "TriggerKeysMissing",
            Self::InvalidSpec => "InvalidSpec",
            Self::CrossNamespaceRefused => "CrossNamespaceRefused",
            Self::NamespaceNotWatched => "NamespaceNotWatched",
            Self::ConfigMapNotFound => "ConfigMapNotFound",
            Self::SecretNotFound => "SecretNotFound",
            Self::SecretsNotWatched => "SecretsNotWatched",
            Self::StatusWriteRefused => "StatusWriteRefused",
            Self::RestartStorm => "RestartStorm",
            Self::Forbidden => "Forbidden",
            Self::HealthGateTimedOut => "HealthGateTimedOut",
            Self::BatchSizeChanged => "BatchSizeChanged",
            Self::CanaryFailed => "CanaryFailed",
            Self::Waiting(reason) => reason.as_str(),
        }
    }

    /// The reason for a Stalled condition reason, when the stall deserves its own Event.
    pub fn for_stall(reason: &str) -> Option<Self> {
        [
            Self::InvalidSpec,
            Self::CrossNamespaceRefused,
            Self::NamespaceNotWatched,
            Self::ConfigMapNotFound,
            Self::SecretNotFound,
            Self::SecretsNotWatched,
            Self::RestartStorm,
            Self::Forbidden,
        ]
        .into_iter()
        .find(|candidate| candidate.as_str() == reason)
    }
}

impl fmt::Display for EventReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A Kubernetes Event to record on the ServiceRefresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNote {
    pub severity: EventSeverity,
    pub reason: EventReason,
    pub message: String,
}

/// One fact about what a pass changed. `run` is the run id as written to Deployments.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    RunStarted {
        run: String,
        number: u64,
        reason: String,
        /// Why, in words (which trigger changed).
        trigger: String,
        services: usize,
        batches: usize,
        batch_size: usize,
        dry_run: bool,
    },
    BatchStarted {
        run: String,
        batch: u32,
        batches: usize,
        services: usize,
    },
    BatchCompleted {
        run: String,
        batch: u32,
        batches: usize,
        ready: usize,
        failed: usize,
        skipped: usize,
        seconds: f64,
    },
    /// A planned Deployment got its result.
    ServiceFinished {
        run: String,
        batch: u32,
        deployment: ObjectKey,
        result: ServiceResult,
        message: Option<String>,
    },
    RunFinished {
        run: String,
        number: u64,
        reason: String,
        phase: Phase,
        totals: Totals,
        /// The run's closing message (what failed, or how it went).
        message: String,
        seconds: f64,
    },
    /// The resource began to wait for something other than its rollouts.
    Waiting {
        run: String,
        reason: WaitReason,
        message: String,
    },
    /// Anything else a person should hear about, as an Event.
    Notice(EventNote),
}

impl Transition {
    pub fn notice(severity: EventSeverity, reason: EventReason, message: String) -> Self {
        Self::Notice(EventNote { severity, reason, message })
    }

    /// The Event this transition records, if it deserves one. Per-service results do not:
    /// a fleet of thousands would flood the event stream; the status lists them.
    pub fn event(&self) -> Option<EventNote> {
        let (severity, reason, message) = match self {
            Self::RunStarted {
                number, trigger, services, batches, batch_size, dry_run, ..
            } => {
                let dry = if *dry_run { " (dry run)" } else { "" };
                (
                    EventSeverity::Normal,
                    EventReason::RunStarted,
                    format!(
                        "Run {number}{dry} started ({trigger}): {services} Deployments in \
                         {batches} batches of up to {batch_size}"
                    ),
                )
            }
            Self::BatchStarted { batch, batches, services, .. } => (
                EventSeverity::Normal,
                EventReason::BatchStarted,
                format!("Batch {batch} of {batches} started: {services} Deployments"),
            ),
            Self::BatchCompleted { batch, batches, ready: 0, failed: 0, skipped, .. }
                if *skipped > 0 =>
            {
                (
                    EventSeverity::Normal,
                    EventReason::BatchCompleted,
                    format!(
                        "Batch {batch} of {batches} skipped: {skipped} Deployments, none restarted"
                    ),
                )
            }
            Self::BatchCompleted { batch, batches, ready, failed, skipped, .. } => (
                if *failed > 0 { EventSeverity::Warning } else { EventSeverity::Normal },
                EventReason::BatchCompleted,
                format!(
                    "Batch {batch} of {batches} completed: {ready} ready, {failed} failed, \
                     {skipped} skipped"
                ),
            ),
            Self::ServiceFinished { .. } => return None,
            Self::Waiting { reason, message, .. } => {
                (EventSeverity::Normal, EventReason::Waiting(*reason), message.clone())
            }
            Self::RunFinished { phase, message, .. } => match phase {
                Phase::Succeeded => {
                    (EventSeverity::Normal, EventReason::RunSucceeded, message.clone())
                }
                Phase::Cancelled => {
                    (EventSeverity::Warning, EventReason::RunCancelled, message.clone())
                }
                _ => (EventSeverity::Warning, EventReason::RunFailed, message.clone()),
            },
            Self::Notice(note) => return Some(note.clone()),
        };
        Some(EventNote { severity, reason, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_with_failures_completes_with_a_warning_one_without_normally() {
        let severity = |failed| {
            Transition::BatchCompleted {
                run: "arcgis/refresh/1-0123".to_owned(),
                batch: 1,
                batches: 2,
                ready: 9,
                failed,
                skipped: 0,
                seconds: 3.0,
            }
            .event()
            .expect("an event")
            .severity
        };
        assert_eq!(severity(0), EventSeverity::Normal);
        assert_eq!(severity(1), EventSeverity::Warning);
    }

    #[test]
    fn only_a_batch_of_skipped_services_is_told_as_skipped() {
        let message = |skipped| {
            Transition::BatchCompleted {
                run: "arcgis/refresh/1-0123".to_owned(),
                batch: 1,
                batches: 2,
                ready: 0,
                failed: 0,
                skipped,
                seconds: 0.0,
            }
            .event()
            .expect("an event")
            .message
        };
        assert_eq!(message(2), "Batch 1 of 2 skipped: 2 Deployments, none restarted");
        assert_eq!(message(0), "Batch 1 of 2 completed: 0 ready, 0 failed, 0 skipped");
    }

    #[test]
    fn event_reasons_print_as_kubernetes_shows_them() {
        assert_eq!(EventReason::BatchStarted.to_string(), "BatchStarted");
        assert_eq!(EventReason::InvalidSpec.to_string(), "InvalidSpec");
    }
}
