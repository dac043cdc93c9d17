//! The resources' own behaviour that no engine test reaches: the served manifests, the
//! serde shapes users write and tools read, and the small helpers beside the types.

use super::notify::{NotifyEvent, Webhook};
use super::pacing::Schedule;
use super::plan::PlanGroup;
use super::status::{BatchCounts, ServiceRefreshStatus};
use super::*;
use serde_json::json;

#[test]
fn the_generated_manifests_are_the_committed_ones() {
    // CI also checks `servicerefresh crd` against the file; this keeps the core crate's
    // own tests from passing with manifests that are not the ones users apply.
    let committed = include_str!("../../../../crds/servicerefresh.yaml");
    assert_eq!(crd_yaml().expect("the CRDs serialize"), committed);
}

#[test]
fn both_crds_are_served_in_order() {
    let names: Vec<Option<String>> = crds().into_iter().map(|crd| crd.metadata.name).collect();
    assert_eq!(
        names,
        [Some("servicerefreshes.gisops.io".into()), Some("servicerefreshplans.gisops.io".into())]
    );
    assert_eq!(crd().spec.names.kind, "ServiceRefresh");
    assert_eq!(plan_crd().spec.names.kind, "ServiceRefreshPlan");
}

#[test]
fn descriptions_read_as_paragraphs_and_nothing_else_changes() {
    let mut schema = json!({
        "description": "One line\n  broken in two.\n\nA second paragraph.",
        "properties": {
            "description": {"type": "string", "description": "A field\nnamed description."},
            "rule": "self.a\n&& self.b",
        },
        "anyOf": [{"description": "In\nan array."}],
    });
    join_description_lines(&mut schema);
    assert_eq!(
        schema,
        json!({
            "description": "One line broken in two.\n\nA second paragraph.",
            "properties": {
                "description": {"type": "string", "description": "A field named description."},
                "rule": "self.a\n&& self.b",
            },
            "anyOf": [{"description": "In an array."}],
        })
    );
}

#[test]
fn notify_events_are_named_as_users_write_them() {
    for event in NotifyEvent::ALL {
        assert_eq!(serde_json::to_value(event).expect("serializes"), json!(event.as_str()));
    }
}

#[test]
fn a_webhook_wants_every_event_unless_it_names_some() {
    let webhook = |events: serde_json::Value| -> Webhook {
        serde_json::from_value(json!({"url": "https://hooks.example/x", "events": events}))
            .expect("a valid webhook")
    };
    let every = webhook(json!([]));
    assert!(NotifyEvent::ALL.into_iter().all(|event| every.wants(event)));
    let some = webhook(json!(["Held", "RunFinished"]));
    let wanted: Vec<NotifyEvent> =
        NotifyEvent::ALL.into_iter().filter(|event| some.wants(*event)).collect();
    assert_eq!(wanted, [NotifyEvent::Held, NotifyEvent::RunFinished]);
}

#[test]
fn a_schedule_without_a_time_zone_is_in_utc() {
    let schedule: Schedule = serde_json::from_value(json!({
        "windows": [{"days": ["Sat"], "start": "02:00", "end": "04:00"}]
    }))
    .expect("a valid schedule");
    assert_eq!(schedule.time_zone, "UTC");
}

#[test]
fn a_plan_group_names_its_wave_only_after_the_first() {
    let group = |wave: u32| PlanGroup {
        namespace: "arcgis".into(),
        wave,
        kind: WorkloadKind::Deployment,
        names: vec!["portal".into()],
    };
    let first = serde_json::to_value(group(0)).expect("serializes");
    assert_eq!(first, json!({"namespace": "arcgis", "names": ["portal"]}));
    let later = serde_json::to_value(group(2)).expect("serializes");
    assert_eq!(later["wave"], 2);
}

#[test]
fn a_wait_without_a_reason_reads_as_cleared() {
    let status = |waiting: serde_json::Value| -> ServiceRefreshStatus {
        serde_json::from_value(json!({"waiting": waiting})).expect("a valid status")
    };
    assert_eq!(status(json!({})).waiting, None, "what applying `waiting: {{}}` leaves");
    let held = status(json!({
        "reason": "OutsideWindow",
        "message": "the next window opens at 02:00",
        "since": "2026-12-07T18:00:00Z",
    }));
    assert_eq!(held.waiting.map(|waiting| waiting.reason).as_deref(), Some("OutsideWindow"));
}

#[test]
fn batch_counts_add_up_field_by_field() {
    let mut counts = BatchCounts { ready: 1, restarted: 2, failed: 3, skipped: 4 };
    counts.add(&BatchCounts { ready: 10, restarted: 20, failed: 30, skipped: 40 });
    assert_eq!(counts, BatchCounts { ready: 11, restarted: 22, failed: 33, skipped: 44 });
}
