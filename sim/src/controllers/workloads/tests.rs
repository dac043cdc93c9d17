//! The controllers' arithmetic: what one StatefulSet or DaemonSet sync
//! creates and deletes, the statuses they write, the update limits, the
//! revisions' data and hashes.

use serde_json::{Value, json};

use super::daemon_set::{self, DaemonSpec, NodePods};
use super::history::{go_json, revision_hash, template_patch};
use super::int_or_percent;
use super::pods::PodView;
use super::stateful_set::{self, Action, Counts, SetSpec};

fn set(spec: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": spec})
}

fn spec(extra: Value) -> SetSpec {
    let mut base = json!({
        "replicas": 3,
        "podManagementPolicy": "OrderedReady",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
    });
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            base.insert(key.clone(), value.clone());
        }
    }
    SetSpec::of(&set(base))
}

/// A pod view: `state` is `ready`, `pending` or `unready`.
fn pod(name: &str, revision: &str, state: &str) -> PodView {
    PodView {
        name: name.to_owned(),
        revision: revision.to_owned(),
        node: "sim-worker-1".to_owned(),
        created: (String::new(), name.to_owned()),
        phase: if state == "pending" { "Pending" } else { "Running" }.to_owned(),
        ready: state == "ready",
        available: state == "ready",
        available_at: None,
        deleting: false,
    }
}

fn members(pods: &[(u64, &str, &str)]) -> Vec<(u64, PodView)> {
    pods.iter()
        .map(|(ordinal, revision, state)| {
            (*ordinal, pod(&format!("web-{ordinal}"), revision, state))
        })
        .collect()
}

fn replace(name: &str) -> Action {
    Action::Replace(name.to_owned())
}

#[test]
fn ordered_ready_creates_one_pod_at_a_time_and_parallel_all_at_once() {
    let ordered = spec(json!({}));
    let none: Vec<(u64, PodView)> = Vec::new();
    assert_eq!(
        stateful_set::plan(&ordered, &none, "new", 0, false),
        [Action::Create { ordinal: 0, update: true }]
    );
    // The next waits until its predecessor runs ready.
    let starting = members(&[(0, "new", "pending")]);
    assert!(stateful_set::plan(&ordered, &starting, "new", 0, false).is_empty());
    let running = members(&[(0, "new", "ready")]);
    assert_eq!(
        stateful_set::plan(&ordered, &running, "new", 0, false),
        [Action::Create { ordinal: 1, update: true }]
    );
    let parallel = spec(json!({"podManagementPolicy": "Parallel"}));
    let created: Vec<u64> = stateful_set::plan(&parallel, &starting, "new", 0, false)
        .into_iter()
        .filter_map(|action| match action {
            Action::Create { ordinal, .. } => Some(ordinal),
            _ => None,
        })
        .collect();
    assert_eq!(created, [1, 2]);
    // A set being deleted gets nothing new.
    assert!(stateful_set::plan(&ordered, &none, "new", 0, true).is_empty());
    // Ordinals start where spec.ordinals says.
    let shifted = spec(json!({"ordinals": {"start": 5}}));
    assert_eq!(
        stateful_set::plan(&shifted, &none, "new", 0, false),
        [Action::Create { ordinal: 5, update: true }]
    );
}

#[test]
fn scaling_down_removes_the_highest_ordinals_first() {
    let ordered = spec(json!({}));
    let five = members(&[
        (0, "r", "ready"),
        (1, "r", "ready"),
        (2, "r", "ready"),
        (3, "r", "ready"),
        (4, "r", "ready"),
    ]);
    assert_eq!(
        stateful_set::plan(&ordered, &five, "r", 5, false),
        [Action::Delete("web-4".into())]
    );
    let parallel = spec(json!({"podManagementPolicy": "Parallel"}));
    assert_eq!(
        stateful_set::plan(&parallel, &five, "r", 5, false),
        [Action::Delete("web-4".into()), Action::Delete("web-3".into())]
    );
    // In order, nothing goes while a kept pod is not ready.
    let unready =
        members(&[(0, "r", "ready"), (1, "r", "unready"), (2, "r", "ready"), (3, "r", "ready")]);
    assert!(stateful_set::plan(&ordered, &unready, "r", 4, false).is_empty());
}

#[test]
fn a_rolling_update_replaces_the_highest_ordinal_first_one_at_a_time() {
    let ordered = spec(json!({}));
    let old = members(&[(0, "old", "ready"), (1, "old", "ready"), (2, "old", "ready")]);
    assert_eq!(stateful_set::plan(&ordered, &old, "new", 3, false), [replace("web-2")]);
    // The replaced pod is recreated at the update revision...
    let gone = members(&[(0, "old", "ready"), (1, "old", "ready")]);
    assert_eq!(
        stateful_set::plan(&ordered, &gone, "new", 2, false),
        [Action::Create { ordinal: 2, update: true }]
    );
    // ...and the next waits for it to be ready.
    let starting = members(&[(0, "old", "ready"), (1, "old", "ready"), (2, "new", "pending")]);
    assert!(stateful_set::plan(&ordered, &starting, "new", 2, false).is_empty());
    let ready = members(&[(0, "old", "ready"), (1, "old", "ready"), (2, "new", "ready")]);
    assert_eq!(stateful_set::plan(&ordered, &ready, "new", 2, false), [replace("web-1")]);
    // A new pod that never becomes ready stalls the rollout.
    let failing = members(&[(0, "old", "ready"), (1, "old", "ready"), (2, "new", "unready")]);
    assert!(stateful_set::plan(&ordered, &failing, "new", 2, false).is_empty());
    let done = members(&[(0, "new", "ready"), (1, "new", "ready"), (2, "new", "ready")]);
    assert!(stateful_set::plan(&ordered, &done, "new", 3, false).is_empty());
}

#[test]
fn a_partition_keeps_the_ordinals_below_it_at_the_old_revision() {
    let partitioned = spec(
        json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
    );
    let updated = members(&[(0, "old", "ready"), (1, "old", "ready"), (2, "new", "ready")]);
    assert!(stateful_set::plan(&partitioned, &updated, "new", 2, false).is_empty());
    // A deleted pod below the partition comes back at the current revision.
    let missing = members(&[(0, "old", "ready"), (2, "new", "ready")]);
    assert_eq!(
        stateful_set::plan(&partitioned, &missing, "new", 1, false),
        [Action::Create { ordinal: 1, update: false }]
    );
    assert_eq!(partitioned.steps(), 1);
}

#[test]
fn max_unavailable_replaces_that_many_pods_at_once() {
    let wide = spec(
        json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 2}}}),
    );
    let old = members(&[(0, "old", "ready"), (1, "old", "ready"), (2, "old", "ready")]);
    assert_eq!(
        stateful_set::plan(&wide, &old, "new", 3, false),
        [replace("web-2"), replace("web-1")]
    );
    // One pod unavailable leaves room for one more.
    let one_down = members(&[(0, "old", "ready"), (1, "old", "ready"), (2, "new", "pending")]);
    let parallel = spec(json!({
        "podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 2}},
    }));
    assert_eq!(stateful_set::plan(&parallel, &one_down, "new", 2, false), [replace("web-1")]);
    // Percentages round down, to at least one pod.
    let percent = spec(
        json!({"replicas": 5, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": "50%"}}}),
    );
    assert_eq!(percent.max_unavailable, Some(2));
    let tiny = spec(
        json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": "10%"}}}),
    );
    assert_eq!(tiny.max_unavailable, Some(1));
    assert_eq!(parallel.steps(), 2);
    assert_eq!(wide.steps(), 3, "OrderedReady still starts them one at a time");
}

#[test]
fn on_delete_replaces_no_pod_and_recreates_deleted_ones_at_the_update_revision() {
    let on_delete = spec(json!({"updateStrategy": {"type": "OnDelete"}}));
    let old = members(&[(0, "old", "ready"), (1, "old", "ready"), (2, "old", "ready")]);
    assert!(stateful_set::plan(&on_delete, &old, "new", 3, false).is_empty());
    let deleted = members(&[(0, "old", "ready"), (2, "old", "ready")]);
    assert_eq!(
        stateful_set::plan(&on_delete, &deleted, "new", 2, false),
        [Action::Create { ordinal: 1, update: true }]
    );
}

#[test]
fn the_status_completes_the_rolling_update_once_every_pod_is_updated_and_ready() {
    let rolling = spec(json!({}));
    let old = members(&[(0, "old", "ready"), (1, "new", "ready"), (2, "new", "pending")]);
    let counts = stateful_set::count(&old, "old", "new");
    assert_eq!(counts, Counts { replicas: 3, ready: 2, available: 2, current: 1, updated: 2 });
    let status = stateful_set::status(&rolling, 4, counts, 0, "old", "new", 0);
    assert_eq!(
        status,
        json!({
            "observedGeneration": 4, "replicas": 3, "readyReplicas": 2, "currentReplicas": 1,
            "updatedReplicas": 2, "currentRevision": "old", "updateRevision": "new",
            "collisionCount": 0, "availableReplicas": 2,
        })
    );
    // A replaced pod leaves currentReplicas at once.
    let replaced = stateful_set::status(&rolling, 4, counts, 1, "old", "new", 0);
    assert_eq!(replaced.get("currentReplicas"), None, "0 is omitted: {replaced}");
    let done = members(&[(0, "new", "ready"), (1, "new", "ready"), (2, "new", "ready")]);
    let counts = stateful_set::count(&done, "old", "new");
    let status = stateful_set::status(&rolling, 4, counts, 0, "old", "new", 0);
    assert_eq!(status["currentRevision"], "new");
    assert_eq!(status["currentReplicas"], 3);
    // Nothing ready: the counts that are 0 are omitted, replicas and
    // availableReplicas are not.
    let none = stateful_set::status(&rolling, 1, Counts::default(), 0, "r", "r", 0);
    assert_eq!(
        none,
        json!({"observedGeneration": 1, "replicas": 0, "currentRevision": "r", "updateRevision": "r", "collisionCount": 0, "availableReplicas": 0})
    );
    // OnDelete never completes a rollout by itself.
    let on_delete = spec(json!({"updateStrategy": {"type": "OnDelete"}}));
    let status = stateful_set::status(&on_delete, 2, counts, 0, "old", "new", 0);
    assert_eq!(status["currentRevision"], "old");
}

fn daemon(strategy: Value) -> DaemonSpec {
    DaemonSpec::of(&json!({
        "metadata": {"name": "agent", "annotations": {"deprecated.daemonset.template.generation": "2"}},
        "spec": {"updateStrategy": strategy},
    }))
}

fn node(name: &str, pods: &[(&str, bool, &str)]) -> NodePods {
    NodePods {
        node: name.to_owned(),
        should_run: true,
        pods: pods
            .iter()
            .map(|(pod_name, updated, state)| (pod(pod_name, "", state), *updated))
            .collect(),
    }
}

#[test]
fn daemon_set_limits_round_up_and_never_both_zero() {
    let default = daemon(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
    );
    assert_eq!(default.limits(3), (0, 1));
    assert_eq!(default.steps(3), 3);
    let half = daemon(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%", "maxSurge": 0}}),
    );
    assert_eq!(half.limits(3), (0, 2));
    assert_eq!(half.steps(3), 2);
    let surge = daemon(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}),
    );
    assert_eq!(surge.limits(3), (1, 0));
    let zero = daemon(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}),
    );
    assert_eq!(zero.limits(3), (0, 1));
    assert_eq!(zero.limits(0), (0, 0));
    assert_eq!(daemon(json!({"type": "OnDelete"})).limits(3), (0, 0));
    assert_eq!(int_or_percent(&json!("25%"), 10, true), 3);
    assert_eq!(int_or_percent(&json!("25%"), 10, false), 2);
    assert_eq!(int_or_percent(&json!(4), 10, false), 4);
}

#[test]
fn a_daemon_set_sync_creates_missing_pods_then_replaces_within_max_unavailable() {
    let default = daemon(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
    );
    let empty = [node("a", &[]), node("b", &[("agent-b", true, "ready")])];
    let plan = daemon_set::plan(&default, &empty, false);
    assert_eq!((plan.create, plan.delete), (vec!["a".to_owned()], vec![]));
    let old =
        [node("a", &[("agent-a", false, "ready")]), node("b", &[("agent-b", false, "ready")])];
    let plan = daemon_set::plan(&default, &old, false);
    assert_eq!((plan.create, plan.delete), (vec![], vec!["agent-a".to_owned()]));
    // A new pod not yet available takes the one unavailable slot.
    let rolling =
        [node("a", &[("agent-a2", true, "pending")]), node("b", &[("agent-b", false, "ready")])];
    assert_eq!(daemon_set::plan(&default, &rolling, false), daemon_set::Plan::default());
    // An old pod that is not available is replaced at once.
    let broken =
        [node("a", &[("agent-a2", true, "pending")]), node("b", &[("agent-b", false, "unready")])];
    assert_eq!(daemon_set::plan(&default, &broken, false).delete, ["agent-b"]);
    // More than one pod on a node without surge: all but the oldest go.
    let doubled = [node("a", &[("agent-a", true, "ready"), ("agent-a2", true, "ready")])];
    assert_eq!(daemon_set::plan(&default, &doubled, false).delete, ["agent-a2"]);
    assert_eq!(daemon_set::plan(&default, &old, true), daemon_set::Plan::default());
}

#[test]
fn a_daemon_set_with_max_surge_starts_the_new_pod_before_removing_the_old() {
    let surge = daemon(
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}),
    );
    let old =
        [node("a", &[("agent-a", false, "ready")]), node("b", &[("agent-b", false, "ready")])];
    let plan = daemon_set::plan(&surge, &old, false);
    assert_eq!((plan.create, plan.delete), (vec!["a".to_owned()], vec![]));
    let surged = [
        node("a", &[("agent-a", false, "ready"), ("agent-a2", true, "pending")]),
        node("b", &[("agent-b", false, "ready")]),
    ];
    assert_eq!(daemon_set::plan(&surge, &surged, false), daemon_set::Plan::default());
    let available = [
        node("a", &[("agent-a", false, "ready"), ("agent-a2", true, "ready")]),
        node("b", &[("agent-b", false, "ready")]),
    ];
    assert_eq!(daemon_set::plan(&surge, &available, false).delete, ["agent-a"]);
}

#[test]
fn the_daemon_set_status_counts_the_oldest_pod_of_each_node() {
    let nodes = [
        node("a", &[("agent-a", true, "ready")]),
        node("b", &[("agent-b", false, "ready")]),
        node("c", &[("agent-c", true, "pending")]),
        node("d", &[]),
        NodePods { should_run: false, ..node("e", &[("agent-e", false, "ready")]) },
    ];
    let status = daemon_set::status(Some(&json!({"collisionCount": 1})), 3, &nodes);
    assert_eq!(
        status,
        json!({
            "collisionCount": 1, "observedGeneration": 3, "desiredNumberScheduled": 4,
            "currentNumberScheduled": 3, "numberMisscheduled": 1, "numberReady": 2,
            "updatedNumberScheduled": 2, "numberAvailable": 2, "numberUnavailable": 2,
        })
    );
    let settled = [node("a", &[("agent-a", true, "ready")])];
    let status = daemon_set::status(None, 1, &settled);
    assert_eq!(status.get("numberUnavailable"), None, "0 is omitted: {status}");
    assert_eq!(status["numberMisscheduled"], 0, "not omitted");
}

#[test]
fn a_pod_is_updated_by_its_hash_or_its_template_generation() {
    let spec = daemon(json!({"type": "RollingUpdate"}));
    let view = pod("agent-a", "abc", "ready");
    assert!(spec.is_updated(&view, None, "abc"));
    assert!(!spec.is_updated(&view, Some("1"), "xyz"));
    assert!(spec.is_updated(&view, Some("2"), "xyz"));
}

#[test]
fn revision_data_is_the_template_patch_as_go_encodes_it() {
    let workload = json!({"spec": {"template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
    }}});
    let data = template_patch(&workload);
    assert_eq!(
        go_json(&data),
        r#"{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"image":"nginx","name":"web","resources":{}}]}}}}"#
    );
    assert_eq!(
        go_json(&json!({"b": "<a&b>", "a": [1, true, null]})),
        r#"{"a":[1,true,null],"b":"\u003ca\u0026b\u003e"}"#
    );
}

#[test]
fn the_revision_hash_is_fnv1_of_the_data_and_the_collision_count() {
    let data = json!({"spec": {"template": {"$patch": "replace", "metadata": {"creationTimestamp": null}, "spec": {"containers": [{"image": "nginx", "name": "web", "resources": {}}]}}}});
    // FNV-1 (32 bit) of the bytes and "0" is 3452453801, safe-encoded.
    assert_eq!(revision_hash(&data, Some(0)), "7896897d45");
    assert_ne!(revision_hash(&data, Some(1)), revision_hash(&data, Some(0)));
    assert_ne!(revision_hash(&data, None), revision_hash(&data, Some(0)));
}
