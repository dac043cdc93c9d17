//! What webhooks are told: the transitions of a pass that people asked to hear about (a run
//! starting, a batch with failures, a hold, a run's end), rendered as CloudEvents 1.0 or as
//! Slack text. Pure: the shell resolves the receivers, signs the bodies, sends and retries.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::transitions::{EventReason, Transition};
use crate::crd::{GROUP, NotifyEvent, Phase};

/// Prefix of every CloudEvents `type` the operator sends.
pub const EVENT_TYPE_PREFIX: &str = "io.gisops.servicerefresh";

/// One notification about one ServiceRefresh, ready to render for any receiver.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub event: NotifyEvent,
    /// Unique per notification and stable for it, so a receiver can drop a repeat.
    pub id: String,
    /// The ServiceRefresh, `NAMESPACE/NAME`.
    pub refresh: String,
    /// The run it is about, as written to Deployments.
    pub run: String,
    pub time: Timestamp,
    /// One line for people, the same words as the Kubernetes Event.
    pub text: String,
    /// The facts, for programs.
    pub data: Value,
}

impl Notification {
    /// The CloudEvents `type`, such as `io.gisops.servicerefresh.run.started`.
    pub fn event_type(&self) -> String {
        let suffix = match self.event {
            NotifyEvent::RunStarted => "run.started",
            NotifyEvent::BatchFailed => "batch.failed",
            NotifyEvent::Held => "run.held",
            NotifyEvent::RunFinished => "run.finished",
        };
        format!("{EVENT_TYPE_PREFIX}.{suffix}")
    }

    /// A CloudEvents 1.0 event in structured JSON mode.
    pub fn cloud_event(&self) -> Value {
        let (namespace, name) = self.refresh.split_once('/').unwrap_or(("", &self.refresh));
        json!({
            "specversion": "1.0",
            "id": self.id,
            "source": format!("/apis/{GROUP}/v1alpha1/namespaces/{namespace}/servicerefreshes/{name}"),
            "type": self.event_type(),
            "subject": self.run,
            "time": self.time.to_string(),
            "datacontenttype": "application/json",
            "data": self.data,
        })
    }

    /// A body for Slack-compatible incoming webhooks.
    pub fn slack(&self) -> Value {
        json!({"text": format!("ServiceRefresh {}: {}", self.refresh, self.text)})
    }
}

/// The notifications `transitions` make for the ServiceRefresh `refresh` (`NAMESPACE/NAME`),
/// in the order they happened. `now` is the pass's time.
pub fn notifications(
    refresh: &str,
    transitions: &[Transition],
    now: Timestamp,
) -> Vec<Notification> {
    transitions.iter().filter_map(|transition| notification(refresh, transition, now)).collect()
}

fn notification(refresh: &str, transition: &Transition, now: Timestamp) -> Option<Notification> {
    let text = transition.event().map(|note| note.message).unwrap_or_default();
    let (event, run, id_suffix, data) = match transition {
        Transition::RunStarted {
            run,
            number,
            reason,
            trigger,
            services,
            batches,
            batch_size,
            dry_run,
        } => (
            NotifyEvent::RunStarted,
            run.clone(),
            "started".to_owned(),
            json!({
                "run": run, "number": number, "reason": reason, "trigger": trigger,
                "services": services, "batches": batches, "batchSize": batch_size, "dryRun": dry_run,
            }),
        ),
        Transition::BatchCompleted { run, batch, batches, ready, failed, skipped, seconds }
            if *failed > 0 =>
        {
            (
                NotifyEvent::BatchFailed,
                run.clone(),
                format!("batch-{batch}"),
                json!({
                    "run": run, "batch": batch, "batches": batches, "ready": ready,
                    "failed": failed, "skipped": skipped, "seconds": seconds,
                }),
            )
        }
        Transition::Waiting { run, reason, message } => (
            NotifyEvent::Held,
            run.clone(),
            format!("held-{reason}-{}", now.as_millisecond()),
            json!({"run": run, "reason": reason.as_str(), "message": message}),
        ),
        Transition::Notice(note) if note.reason == EventReason::RestartStorm => (
            NotifyEvent::Held,
            String::new(),
            format!("held-RestartStorm-{}", now.as_millisecond()),
            json!({"reason": "RestartStorm", "message": note.message}),
        ),
        Transition::RunFinished { run, number, reason, phase, totals, message, seconds } => (
            NotifyEvent::RunFinished,
            run.clone(),
            "finished".to_owned(),
            json!({
                "run": run, "number": number, "reason": reason, "phase": phase_name(*phase),
                "totals": totals, "message": message, "seconds": seconds,
            }),
        ),
        _ => return None,
    };
    let id = if run.is_empty() {
        format!("{refresh}/{id_suffix}")
    } else {
        format!("{run}/{id_suffix}")
    };
    Some(Notification { event, id, refresh: refresh.to_owned(), run, time: now, text, data })
}

fn phase_name(phase: Phase) -> String {
    serde_json::to_value(phase)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{phase:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Totals;
    use crate::engine::WaitReason;
    use crate::engine::transitions::{EventNote, EventSeverity};

    const RUN: &str = "arcgis/refresh/1-0123";

    fn now() -> Timestamp {
        "2026-12-07T12:00:00Z".parse().expect("a timestamp")
    }

    fn batch(batch: u32, failed: usize) -> Transition {
        Transition::BatchCompleted {
            run: RUN.to_owned(),
            batch,
            batches: 3,
            ready: 10 - failed,
            failed,
            skipped: 0,
            seconds: 2.5,
        }
    }

    fn started() -> Transition {
        Transition::RunStarted {
            run: RUN.to_owned(),
            number: 1,
            reason: "ConfigMapChanged".to_owned(),
            trigger: "ConfigMap arcgis/proxy changed".to_owned(),
            services: 30,
            batches: 3,
            batch_size: 10,
            dry_run: false,
        }
    }

    fn finished(phase: Phase) -> Transition {
        Transition::RunFinished {
            run: RUN.to_owned(),
            number: 1,
            reason: "ConfigMapChanged".to_owned(),
            phase,
            totals: Totals { services: 30, ..Totals::default() },
            message: "Run 1 failed: 2 of 30 Deployments failed".to_owned(),
            seconds: 61.0,
        }
    }

    #[test]
    fn a_run_is_told_as_started_batch_failed_held_and_finished_in_order() {
        let transitions = [
            started(),
            batch(1, 0),
            batch(2, 2),
            Transition::Waiting {
                run: RUN.to_owned(),
                reason: WaitReason::OutsideWindow,
                message: "outside the maintenance windows until 22:00".to_owned(),
            },
            finished(Phase::Failed),
        ];
        let told = notifications("arcgis/refresh", &transitions, now());
        let kinds: Vec<_> = told.iter().map(|notification| notification.event).collect();
        assert_eq!(
            kinds,
            [
                NotifyEvent::RunStarted,
                NotifyEvent::BatchFailed,
                NotifyEvent::Held,
                NotifyEvent::RunFinished
            ],
            "a batch without failures is not told"
        );
        let ids: std::collections::BTreeSet<_> = told.iter().map(|n| n.id.clone()).collect();
        assert_eq!(ids.len(), 4, "every notification has its own id: {ids:?}");
        assert_eq!(told[1].data["failed"], 2);
        assert_eq!(told[3].data["phase"], "Failed");
    }

    #[test]
    fn a_cloud_event_carries_the_required_attributes() {
        let told = notifications("arcgis/refresh", &[started()], now());
        let event = told[0].cloud_event();
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["type"], "io.gisops.servicerefresh.run.started");
        assert_eq!(
            event["source"],
            "/apis/gisops.io/v1alpha1/namespaces/arcgis/servicerefreshes/refresh"
        );
        assert_eq!(event["subject"], RUN);
        assert_eq!(event["id"], format!("{RUN}/started"));
        assert_eq!(event["time"], "2026-12-07T12:00:00Z");
        assert_eq!(event["data"]["services"], 30);
        let slack = told[0].slack();
        let text = slack["text"].as_str().expect("text");
        assert!(text.starts_with("ServiceRefresh arcgis/refresh: Run 1 started"), "{text}");
    }

    #[test]
    fn a_restart_storm_is_told_as_a_hold_other_notices_are_not_told() {
        let notice = |reason, message: &str| {
            Transition::Notice(EventNote {
                severity: EventSeverity::Warning,
                reason,
                message: message.to_owned(),
            })
        };
        let told = notifications(
            "arcgis/refresh",
            &[
                notice(EventReason::RestartStorm, "7 runs within an hour"),
                notice(EventReason::InvalidSpec, "spec.batchSize"),
            ],
            now(),
        );
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].event, NotifyEvent::Held);
        assert_eq!(told[0].data["reason"], "RestartStorm");
        assert_eq!(told[0].data["message"], "7 runs within an hour", "the storm's, not the other");
        assert!(told[0].id.starts_with("arcgis/refresh/held-RestartStorm-"));
    }
}
