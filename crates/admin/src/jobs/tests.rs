//! The status mapping, times and results of jobs, from ServiceRefresh objects as the operator
//! leaves them at each stage of a run.

use serde_json::json;

use super::*;
use crate::ledger::Ledger;
use jiff::Timestamp;
use servicerefresh_core::crd::ServiceRefreshStatus;

/// Job ids as the API makes them (UUIDv7), submitted at 1_700_000_000_000 and 256 ms before.
const JOB: &str = "j018bcfe568007abc8bccddeeff001122";
const OLDER: &str = "j018bcfe567007fee9eddccbbaa998877";

fn context() -> JobContext {
    JobContext {
        target: TargetRef { namespace: "arcgis".into(), name: "all".into() },
        context_root: "/arcgis/admin".into(),
    }
}

fn status(value: serde_json::Value) -> ServiceRefreshStatus {
    serde_json::from_value(value).expect("status fixture parses")
}

/// The target with `annotations` and status, whose ledger holds JOB and OLDER, both
/// submitted by alice.
fn refresh(
    annotations: &[(&str, &str)],
    status_value: Option<serde_json::Value>,
) -> ServiceRefresh {
    refresh_with_ledger(annotations, status_value, &ledger(&[(JOB, "alice"), (OLDER, "alice")]))
}

fn refresh_with_ledger(
    annotations: &[(&str, &str)],
    status_value: Option<serde_json::Value>,
    ledger: &Ledger,
) -> ServiceRefresh {
    let mut fixture = ServiceRefresh::fixture("all");
    for (key, value) in annotations {
        fixture = fixture.annotation(key, value);
    }
    let mut value = status_value.unwrap_or_else(|| json!({}));
    let body = ledger.apply_body(&ServiceRefresh::fixture("all").build());
    value["jobs"] = body["status"]["jobs"].clone();
    fixture.status(status(value)).build()
}

fn run(number: u64, request: Option<&str>, end: Option<&str>) -> serde_json::Value {
    json!({
        "id": format!("arcgis/all/{number}-abc"), "number": number, "reason": "RunRequested",
        "message": "annotation gisops.io/run-requested-at set", "request": request,
        "startTime": "2023-11-14T22:13:20Z", "endTime": end,
    })
}

fn batches() -> serde_json::Value {
    json!([
        {"index": 1, "phase": "Completed", "startTime": "2023-11-14T22:13:21.000000Z",
         "endTime": "2023-11-14T22:13:25.000000Z", "services": [
            {"name": "a", "result": "Ready"},
            {"name": "b", "namespace": "other", "result": "Failed", "message": "deployment \"b\" exceeded its progress deadline"},
        ]},
        {"index": 2, "phase": "Running", "startTime": "2023-11-14T22:13:26.000000Z",
         "messageTime": "2023-11-14T22:13:27.500000Z", "services": [
            {"name": "c", "generation": 2, "message": "Waiting for deployment \"c\" rollout to finish"},
        ]},
    ])
}

fn ledger(entries: &[(&str, &str)]) -> Ledger {
    entries.iter().fold(Ledger::default(), |ledger, (id, user)| {
        let at = crate::ledger::submitted_at(id).expect("a job id");
        ledger.with_submitted(id, user, Timestamp::from_millisecond(at).expect("time"))
    })
}

#[test]
fn a_request_no_run_handled_is_submitted_and_names_its_submitter() {
    let object = refresh(&[(RUN_REQUESTED_AT_ANNOTATION, JOB)], None);
    let job = find(&object, None, JOB, &context()).expect("pending job");
    assert_eq!(job.status, JobStatus::Submitted);
    assert_eq!(
        (job.starttime, job.endtime, job.updatedtime),
        (1_700_000_000_000, 0, 1_700_000_000_000)
    );
    assert_eq!(job.username.as_deref(), Some("alice"));
    assert_eq!(job.operation_uri, "/arcgis/admin/services/refreshAllServices");
    assert!(job.result.is_none());
    assert!(job.messages[0].description.contains("Submitted by alice"));
    assert_eq!(pending_request(&object), Some(JOB));
    assert!(find(&object, None, "j-unknown", &context()).is_none());
}

#[test]
fn a_request_waiting_for_the_run_in_progress_or_a_slot_is_submitted() {
    let object = refresh(
        &[(RUN_REQUESTED_AT_ANNOTATION, JOB)],
        Some(json!({
            "phase": "Running", "run": run(3, Some(OLDER), None), "batches": batches(),
            "triggers": {"runRequestedAt": OLDER},
            "conditions": [{"type": "Reconciling", "status": "True", "reason": "Queued",
                "message": "a run (RunRequested) is waiting for a free run slot",
                "lastTransitionTime": "2023-11-14T22:13:20Z"}],
        })),
    );
    let job = find(&object, None, JOB, &context()).unwrap();
    assert_eq!(job.status, JobStatus::Submitted);
    let text: Vec<&str> = job.messages.iter().map(|m| m.description.as_str()).collect();
    assert!(text.iter().any(|m| m.contains("Run 3 is in progress")), "{text:?}");
    assert!(text.iter().any(|m| m.starts_with("Queued: a run")), "{text:?}");
    // The run in progress serves the older job.
    assert_eq!(find(&object, None, OLDER, &context()).unwrap().status, JobStatus::Executing);
}

#[test]
fn the_running_run_is_executing_with_its_plan_and_cancelling_once_asked() {
    let running = json!({
        "phase": "Running", "run": run(4, Some(JOB), None), "batches": batches(),
        "totals": {"services": 3, "restarted": 3, "ready": 1, "failed": 1},
        "triggers": {"runRequestedAt": JOB},
    });
    let object = refresh(&[(RUN_REQUESTED_AT_ANNOTATION, JOB)], Some(running.clone()));
    let job = find(&object, None, JOB, &context()).unwrap();
    assert_eq!(job.status, JobStatus::Executing);
    assert_eq!(job.starttime, 1_700_000_000_000);
    assert_eq!(job.endtime, 0);
    assert_eq!(job.updatedtime, 1_700_000_007_500, "the latest batch time");
    let result = job.result.as_ref().unwrap();
    assert_eq!(result.service_refresh, "arcgis/all");
    assert_eq!((result.run.number, result.progress), (4, Progress { done: 2, total: 3 }));
    assert_eq!(result.batches.len(), 2);
    assert_eq!(result.batches[1].status, "EXECUTING");
    let b = &result.batches[0].services[1];
    assert_eq!((b.namespace.as_str(), b.result), ("other", Some(ServiceResult::Failed)));
    assert_eq!(result.batches[0].services[0].namespace, "arcgis");
    assert_eq!(result.failures.len(), 1);
    assert!(job.messages.iter().any(|m| m.kind == MessageKind::Error
        && m.description == "other/b: Failed: deployment \"b\" exceeded its progress deadline"));

    // A cancel the operator has not seen yet already reads as CANCELLING...
    let asked = refresh(
        &[(RUN_REQUESTED_AT_ANNOTATION, JOB), (CANCEL_REQUESTED_AT_ANNOTATION, "now")],
        Some(running.clone()),
    );
    assert_eq!(find(&asked, None, JOB, &context()).unwrap().status, JobStatus::Cancelling);
    // ...and so does one it recorded.
    let mut recorded = running;
    recorded["run"]["cancelRequest"] = json!("now");
    recorded["triggers"]["cancelRequestedAt"] = json!("now");
    let seen = refresh(
        &[(RUN_REQUESTED_AT_ANNOTATION, JOB), (CANCEL_REQUESTED_AT_ANNOTATION, "now")],
        Some(recorded),
    );
    let job = find(&seen, None, JOB, &context()).unwrap();
    assert_eq!(job.status, JobStatus::Cancelling);
    assert!(job.messages.iter().any(|m| m.description.starts_with("Cancel requested")));
}

#[test]
fn ended_runs_map_to_completed_failed_and_cancelled() {
    for (phase, expected) in [
        ("Succeeded", JobStatus::Completed),
        ("Failed", JobStatus::Failed),
        ("Cancelled", JobStatus::Cancelled),
    ] {
        let mut ended = run(5, Some(JOB), Some("2023-11-14T22:14:00Z"));
        ended["message"] = json!(format!("Run 5 {phase}"));
        let object = refresh(
            &[(RUN_REQUESTED_AT_ANNOTATION, JOB)],
            Some(json!({
                "phase": phase, "run": ended, "batches": batches(),
                "triggers": {"runRequestedAt": JOB},
                "history": [{"id": "arcgis/all/5-abc", "number": 5, "reason": "RunRequested", "request": JOB,
                    "phase": phase, "message": format!("Run 5 {phase}"), "totals": {"services": 3}}],
            })),
        );
        let job = find(&object, None, JOB, &context()).unwrap();
        assert_eq!(job.status, expected, "{phase}");
        assert!(job.status.is_final());
        assert_eq!(job.endtime, 1_700_000_040_000);
        assert_eq!(job.result.as_ref().unwrap().batches.len(), 2, "the latest run keeps its plan");
        let last = job.messages.last().unwrap();
        assert_eq!(last.description, format!("Run 5 {phase}"));
        assert_eq!(last.kind == MessageKind::Error, expected == JobStatus::Failed);
    }
}

#[test]
fn older_jobs_come_from_the_history_without_their_plan() {
    let object = refresh(
        &[(RUN_REQUESTED_AT_ANNOTATION, JOB)],
        Some(json!({
            "phase": "Succeeded", "run": run(6, Some(JOB), Some("2023-11-14T22:14:00Z")),
            "triggers": {"runRequestedAt": JOB},
            "history": [
                {"id": "arcgis/all/6-abc", "number": 6, "reason": "RunRequested", "request": JOB,
                 "phase": "Succeeded", "totals": {"services": 3, "ready": 3}},
                {"id": "arcgis/all/5-abc", "number": 5, "reason": "RunRequested", "request": OLDER,
                 "phase": "Failed", "message": "Run 5 failed: 1 of 3 Deployments failed: arcgis/b: Failed: x",
                 "startTime": "2023-11-14T22:10:00Z", "endTime": "2023-11-14T22:11:00Z",
                 "totals": {"services": 3, "ready": 2, "failed": 1}},
            ],
        })),
    );
    let older = find(&object, None, OLDER, &context()).unwrap();
    assert_eq!(older.status, JobStatus::Failed);
    assert_eq!((older.starttime, older.endtime), (1_699_999_800_000, 1_699_999_860_000));
    let result = older.result.as_ref().unwrap();
    assert!(result.batches.is_empty());
    assert_eq!(result.totals.failed, 1);
    assert_eq!(result.progress, Progress { done: 3, total: 3 });
    assert!(
        older
            .messages
            .iter()
            .any(|m| m.kind == MessageKind::Error && m.description.contains("arcgis/b"))
    );
    let ids: Vec<String> = list(&object, &context()).into_iter().map(|job| job.jobid).collect();
    assert_eq!(ids, vec![JOB.to_owned(), OLDER.to_owned()], "newest first");
}

#[test]
fn a_withdrawn_request_reads_cancelled_and_an_unusable_spec_warns() {
    let withdrawn = ledger(&[(JOB, "alice")])
        .with_withdrawn(JOB, Timestamp::from_millisecond(1_700_000_001_000).expect("time"))
        .expect("a ledger job");
    let object = refresh_with_ledger(&[], None, &withdrawn);
    let job = find(&object, None, JOB, &context()).unwrap();
    assert_eq!((job.status, job.endtime), (JobStatus::Cancelled, 1_700_000_001_000));
    assert!(job.result.is_none());
    assert_eq!(list(&object, &context()).len(), 1);

    let stalled = refresh(
        &[(RUN_REQUESTED_AT_ANNOTATION, JOB)],
        Some(json!({"phase": "Failed", "conditions": [{"type": "Stalled", "status": "True",
            "reason": "InvalidSpec", "message": "spec.batchTimeout \"soon\" is not a duration",
            "lastTransitionTime": "2023-11-14T22:13:20Z"}]})),
    );
    let job = find(&stalled, None, JOB, &context()).unwrap();
    assert_eq!(job.status, JobStatus::Submitted);
    assert!(
        job.messages
            .iter()
            .any(|m| m.kind == MessageKind::Warning && m.description.contains("InvalidSpec"))
    );
}

#[test]
fn the_job_json_has_arcgis_field_names() {
    let object = refresh(&[(RUN_REQUESTED_AT_ANNOTATION, JOB)], None);
    let value = serde_json::to_value(find(&object, None, JOB, &context()).unwrap()).unwrap();
    let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    for key in [
        "jobid",
        "status",
        "starttime",
        "endtime",
        "updatedtime",
        "operationURI",
        "username",
        "messages",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert_eq!(value["status"], "SUBMITTED");
    assert_eq!(value["messages"][0]["type"], "esriJobMessageTypeInformative");
}

#[test]
fn run_requests_that_are_no_ledger_job_are_no_jobs() {
    // Whoever may annotate can set any request value, and a person who may edit the status
    // by hand any ledger entry; neither makes a job, let alone one with a submitter.
    let forged_ledger: ServiceRefreshStatus = status(json!({"jobs": [
        {"id": "jFORGED", "username": "system:admin", "submitTime": "2023-11-14T22:13:20.000000Z"},
    ]}));
    let mut object = refresh_with_ledger(
        &[(RUN_REQUESTED_AT_ANNOTATION, "jFORGED")],
        Some(json!({"run": run(1, Some("2023-11-14T22:13:20Z-3f9a1c"), None),
                    "history": [{"id": "h", "number": 1, "reason": "RunRequested", "request": JOB,
                                 "phase": "Succeeded", "totals": {}}]})),
        &Ledger::default(),
    );
    if let Some(status) = object.status.as_mut() {
        status.jobs = forged_ledger.jobs;
    }
    assert_eq!(pending_request(&object), Some("jFORGED"), "the request still starts a run");
    for id in ["jFORGED", "2023-11-14T22:13:20Z-3f9a1c", JOB] {
        assert!(find(&object, None, id, &context()).is_none(), "{id}");
    }
    assert!(list(&object, &context()).is_empty());
}
