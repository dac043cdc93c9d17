//! Tests of the rollout model, including `kubectl rollout status` reading
//! the statuses it produces.

use serde_json::{Value, json};

use super::plan::surge_and_unavailable;
use super::status::rfc3339;
use super::template_hash::{new_replica_set_name, pod_template_hash};
use super::*;

const T0: u64 = 1_764_000_000_000;

pub(super) fn deployment(replicas: u64, generation: u64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "arcgis", "generation": generation},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]}
            }
        }
    })
}

pub(super) fn n(status: &Value, key: &str) -> u64 {
    status.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn cond<'a>(status: &'a Value, kind: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .unwrap_or_else(|| panic!("no {kind} condition in {status}"))
}

/// A Deployment that finished its first rollout at T0 + 10s, with status.
fn settled(replicas: u64) -> (Value, RolloutPlan) {
    let mut d = deployment(replicas, 1, "nginx:1");
    let plan = begin(&d, None, T0, 10_000, false);
    d["status"] = status_at(&d, &plan, T0 + 10_000);
    (d, plan)
}

#[test]
fn hash_is_stable_and_key_order_independent() {
    let a = deployment(3, 1, "nginx:1");
    let mut b = a.clone();
    b["spec"]["template"] = serde_json::from_str(
        r#"{"spec":{"containers":[{"image":"nginx:1","name":"web"}]},"metadata":{"labels":{"app":"web"}}}"#,
    )
    .unwrap();
    assert_eq!(pod_template_hash(&a), pod_template_hash(&b));
    let h = pod_template_hash(&a);
    assert!(!h.is_empty() && h.len() <= 10);
    assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    assert_ne!(h, pod_template_hash(&deployment(3, 1, "nginx:2")));
    assert_eq!(new_replica_set_name(&a), format!("web-{h}"));
}

#[test]
fn fresh_deployment_becomes_available() {
    let d = deployment(3, 1, "nginx:1");
    let plan = begin(&d, None, T0, 6_000, false);
    let s = status_at(&d, &plan, T0);
    assert_eq!(n(&s, "observedGeneration"), 1);
    assert_eq!(n(&s, "replicas"), 3);
    assert_eq!(n(&s, "updatedReplicas"), 3);
    assert_eq!(n(&s, "availableReplicas"), 0);
    assert_eq!(n(&s, "unavailableReplicas"), 3);
    assert_eq!(cond(&s, "Available")["status"], "False");
    assert_eq!(cond(&s, "Available")["reason"], "MinimumReplicasUnavailable");
    assert_eq!(cond(&s, "Progressing")["reason"], "NewReplicaSetCreated");
    assert!(!is_complete(&s, &d));
    let s = status_at(&d, &plan, T0 + 6_000);
    assert!(is_complete(&s, &d));
    assert_eq!(s.get("unavailableReplicas"), None);
    assert_eq!(cond(&s, "Available")["reason"], "MinimumReplicasAvailable");
    let p = cond(&s, "Progressing");
    assert_eq!(p["reason"], "NewReplicaSetAvailable");
    let rs = new_replica_set_name(&d);
    assert_eq!(p["message"], format!("ReplicaSet \"{rs}\" has successfully progressed."));
    assert_eq!(p["lastUpdateTime"], rfc3339(T0 + 6_000));
    assert_eq!(p["lastTransitionTime"], rfc3339(T0));
}

#[test]
fn rolling_update_of_ten_moves_like_the_controller() {
    let (d, prev) = settled(10);
    let mut d2 = deployment(10, 2, "nginx:2");
    d2["status"] = d["status"].clone();
    let plan = begin(&d2, Some(&prev), T0 + 60_000, 20_000, false);
    assert_eq!((plan.max_surge, plan.max_unavailable), (3, 2));
    assert_eq!(plan.wave_ms, 10_000);
    let at = |dt: u64| status_at(&d2, &plan, T0 + 60_000 + dt);
    // First wave: surge 3 + 2 old terminated, so 5 new pods, 8 old.
    let s = at(0);
    assert_eq!(n(&s, "observedGeneration"), 2);
    assert_eq!(
        (n(&s, "replicas"), n(&s, "updatedReplicas"), n(&s, "availableReplicas")),
        (13, 5, 8)
    );
    assert_eq!(n(&s, "unavailableReplicas"), 2);
    assert_eq!(cond(&s, "Available")["status"], "True");
    // Available never went False: its transition time is the first rollout's.
    assert_eq!(cond(&s, "Available")["lastTransitionTime"], rfc3339(T0 + 10_000));
    assert_eq!(cond(&s, "Progressing")["reason"], "NewReplicaSetCreated");
    let s = at(9_999);
    assert_eq!(n(&s, "updatedReplicas"), 5);
    let s = at(10_000);
    assert_eq!(
        (n(&s, "replicas"), n(&s, "updatedReplicas"), n(&s, "availableReplicas")),
        (13, 10, 8)
    );
    let p = cond(&s, "Progressing");
    assert_eq!(p["reason"], "ReplicaSetUpdated");
    assert_eq!(p["message"], format!("ReplicaSet \"{}\" is progressing.", plan.new_rs_name));
    assert!(!is_complete(&s, &d2));
    let s = at(20_000);
    assert_eq!(
        (n(&s, "replicas"), n(&s, "updatedReplicas"), n(&s, "availableReplicas")),
        (10, 10, 10)
    );
    assert!(is_complete(&s, &d2));
    assert_eq!(cond(&s, "Progressing")["reason"], "NewReplicaSetAvailable");
    assert_eq!(status_at(&d2, &plan, T0 + 999_999_999), s);
}

#[test]
fn failing_rollout_times_out_exactly_after_the_deadline() {
    let (d, prev) = settled(4);
    let mut d2 = deployment(4, 2, "nginx:broken");
    d2["spec"]["progressDeadlineSeconds"] = json!(30);
    d2["status"] = d["status"].clone();
    let start = T0 + 100_000;
    let plan = begin(&d2, Some(&prev), start, 10_000, true);
    let s = status_at(&d2, &plan, start + 20_000);
    // surge 1, unavailable 1: two new pods that never become ready.
    assert_eq!(
        (n(&s, "replicas"), n(&s, "updatedReplicas"), n(&s, "availableReplicas")),
        (5, 2, 3)
    );
    assert_eq!(cond(&s, "Progressing")["status"], "True");
    let s = status_at(&d2, &plan, start + 30_000);
    assert_eq!(cond(&s, "Progressing")["status"], "True");
    let s = status_at(&d2, &plan, start + 30_001);
    let p = cond(&s, "Progressing");
    assert_eq!(p["status"], "False");
    assert_eq!(p["reason"], "ProgressDeadlineExceeded");
    assert_eq!(
        p["message"],
        format!("ReplicaSet \"{}\" has timed out progressing.", plan.new_rs_name)
    );
    assert_eq!(p["lastTransitionTime"], rfc3339(start + 30_001));
    assert!(!is_complete(&s, &d2));
    assert_eq!(cond(&s, "Available")["status"], "True");
    // It stays so.
    assert_eq!(status_at(&d2, &plan, start + 3_600_000), s);
}

#[test]
fn slow_waves_time_out_then_recover() {
    let (d, prev) = settled(4);
    let mut d2 = deployment(4, 2, "nginx:2");
    d2["spec"]["progressDeadlineSeconds"] = json!(5);
    d2["status"] = d["status"].clone();
    let plan = begin(&d2, Some(&prev), T0 + 100_000, 20_000, false);
    assert_eq!(plan.wave_ms, 10_000);
    let s = status_at(&d2, &plan, T0 + 106_000);
    assert_eq!(cond(&s, "Progressing")["reason"], "ProgressDeadlineExceeded");
    let s = status_at(&d2, &plan, T0 + 110_000);
    let p = cond(&s, "Progressing");
    assert_eq!(p["reason"], "ReplicaSetUpdated");
    assert_eq!(p["status"], "True");
    assert_eq!(p["lastTransitionTime"], rfc3339(T0 + 110_000));
}

#[test]
fn scaled_to_zero_completes_at_once() {
    let (d, prev) = settled(3);
    let mut d2 = d.clone();
    d2["spec"]["replicas"] = json!(0);
    d2["metadata"]["generation"] = json!(2);
    let plan = begin(&d2, Some(&prev), T0 + 50_000, 30_000, false);
    let s = status_at(&d2, &plan, T0 + 50_000);
    assert_eq!(n(&s, "observedGeneration"), 2);
    assert_eq!(s.get("replicas"), None);
    assert!(is_complete(&s, &d2));
    assert_eq!(cond(&s, "Available")["status"], "True");
    assert_eq!(cond(&s, "Progressing")["reason"], "NewReplicaSetAvailable");
    // A fresh zero-replica Deployment too.
    let z = deployment(0, 1, "nginx:1");
    let plan = begin(&z, None, T0, 30_000, false);
    assert!(is_complete(&status_at(&z, &plan, T0), &z));
}

#[test]
fn scale_up_with_same_template_creates_no_new_replica_set() {
    let (d, prev) = settled(2);
    let mut d2 = d.clone();
    d2["spec"]["replicas"] = json!(4);
    d2["metadata"]["generation"] = json!(2);
    let plan = begin(&d2, Some(&prev), T0 + 50_000, 5_000, false);
    assert!(!plan.template_changed);
    let s = status_at(&d2, &plan, T0 + 50_000);
    assert_eq!((n(&s, "updatedReplicas"), n(&s, "availableReplicas")), (4, 2));
    assert_eq!(cond(&s, "Progressing")["reason"], "ReplicaSetUpdated");
    let s = status_at(&d2, &plan, T0 + 55_000);
    assert!(is_complete(&s, &d2));
}

#[test]
fn paused_does_not_roll() {
    let (d, prev) = settled(3);
    let mut d2 = deployment(3, 2, "nginx:2");
    d2["spec"]["paused"] = json!(true);
    d2["status"] = d["status"].clone();
    let plan = begin(&d2, Some(&prev), T0 + 50_000, 5_000, false);
    let s = status_at(&d2, &plan, T0 + 500_000);
    assert_eq!(n(&s, "observedGeneration"), 2);
    assert_eq!((n(&s, "updatedReplicas"), n(&s, "availableReplicas")), (0, 3));
    let p = cond(&s, "Progressing");
    assert_eq!(
        (p["status"].as_str(), p["reason"].as_str()),
        (Some("Unknown"), Some("DeploymentPaused"))
    );
    assert_eq!(p["message"], "Deployment is paused");
    assert!(!is_complete(&s, &d2));
    // Resuming rolls.
    let mut d3 = d2.clone();
    d3["spec"]["paused"] = json!(false);
    d3["metadata"]["generation"] = json!(3);
    d3["status"] = s;
    let plan3 = begin(&d3, Some(&plan), T0 + 600_000, 5_000, false);
    assert!(plan3.resumed && plan3.template_changed);
    let s = status_at(&d3, &plan3, T0 + 605_000);
    assert!(is_complete(&s, &d3));
}

#[test]
fn second_change_mid_rollout_restarts_the_plan() {
    let (d, prev) = settled(10);
    let mut d2 = deployment(10, 2, "nginx:2");
    d2["status"] = d["status"].clone();
    let p2 = begin(&d2, Some(&prev), T0 + 60_000, 20_000, false);
    let mid = status_at(&d2, &p2, T0 + 65_000);
    assert_eq!(n(&mid, "availableReplicas"), 8);
    let mut d3 = deployment(10, 3, "nginx:3");
    d3["status"] = mid;
    let p3 = begin(&d3, Some(&p2), T0 + 65_000, 20_000, false);
    assert_ne!(p3.new_rs_name, p2.new_rs_name);
    assert_eq!(p3.from, PodCounts { old: 8, ..PodCounts::default() });
    let s = status_at(&d3, &p3, T0 + 65_000);
    assert_eq!(n(&s, "observedGeneration"), 3);
    assert_eq!(n(&s, "updatedReplicas"), 5);
    assert_eq!(n(&s, "availableReplicas"), 8);
    // Same reason as before: the controller's set-condition rule keeps
    // the previous message until the next progress rewrites it.
    assert_eq!(cond(&s, "Progressing")["reason"], "NewReplicaSetCreated");
    let s = status_at(&d3, &p3, T0 + 75_000);
    assert_eq!(
        cond(&s, "Progressing")["message"],
        format!("ReplicaSet \"{}\" is progressing.", p3.new_rs_name)
    );
    let s = status_at(&d3, &p3, T0 + 85_000);
    assert!(is_complete(&s, &d3));
    assert!(cond(&s, "Progressing")["message"].as_str().unwrap().contains(&p3.new_rs_name));
    // Without the previous plan the stored status is the starting point.
    let p3b = begin(&d3, None, T0 + 65_000, 20_000, false);
    assert_eq!(p3b.from.old, 8);
}

#[test]
fn settled_plan_keeps_the_stored_status() {
    let (d, _) = settled(3);
    let plan = super::settled(&d, T0 + 500_000);
    assert_eq!(status_at(&d, &plan, T0 + 900_000), d["status"]);
    // A later template change rolls from it, keeping condition times.
    let mut d2 = deployment(3, 2, "nginx:2");
    d2["status"] = d["status"].clone();
    let p2 = begin(&d2, Some(&plan), T0 + 1_000_000, 10_000, false);
    assert!(p2.template_changed);
    assert_eq!(p2.from.old, 3);
    let s = status_at(&d2, &p2, T0 + 1_010_000);
    assert!(is_complete(&s, &d2));
    assert_eq!(cond(&s, "Available")["lastTransitionTime"], rfc3339(T0 + 10_000));
    assert_eq!(cond(&s, "Progressing")["lastTransitionTime"], rfc3339(T0));
    // A scale-down of a settled Deployment is done at once and keeps
    // the condition as it was.
    let mut d3 = d.clone();
    d3["spec"]["replicas"] = json!(1);
    d3["metadata"]["generation"] = json!(2);
    let p3 = begin(&d3, Some(&plan), T0 + 1_000_000, 10_000, false);
    let s = status_at(&d3, &p3, T0 + 1_000_000);
    assert!(is_complete(&s, &d3));
    assert_eq!(cond(&s, "Progressing"), cond(&d["status"], "Progressing"));
}

#[test]
fn surge_and_unavailable_follow_kubernetes_rounding() {
    let d = |r: u64, strategy: Value| {
        let mut d = deployment(r, 1, "x");
        d["spec"]["strategy"] = strategy;
        d
    };
    assert_eq!(surge_and_unavailable(&d(10, json!({})), 10), (3, 2));
    assert_eq!(surge_and_unavailable(&d(1, json!({})), 1), (1, 0));
    assert_eq!(surge_and_unavailable(&d(3, json!({})), 3), (1, 0));
    let s =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}});
    assert_eq!(surge_and_unavailable(&d(3, s), 3), (0, 1));
    let s =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 1}});
    assert_eq!(surge_and_unavailable(&d(3, s), 3), (2, 1));
    assert_eq!(surge_and_unavailable(&d(3, json!({"type": "Recreate"})), 3), (0, 3));
}

/// `kubectl rollout status` reads these statuses as the real ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_status_reads_the_statuses() {
    use crate::http::kubectl_harness::{Kubectl, json_response};
    use axum::extract::RawQuery;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use std::sync::{Arc, Mutex};

    let current = Arc::new(Mutex::new(Value::Null));
    let (c1, c2) = (current.clone(), current.clone());
    let routes = axum::Router::new()
        .route(
            "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
            get(move || async move { json_response(c1.lock().unwrap().clone()) }),
        )
        .route(
            "/apis/apps/v1/namespaces/{ns}/deployments",
            get(move |RawQuery(q): RawQuery| async move {
                if q.unwrap_or_default().contains("watch=true") {
                    return StatusCode::NOT_FOUND.into_response();
                }
                let obj = c2.lock().unwrap().clone();
                json_response(json!({"kind": "DeploymentList", "apiVersion": "apps/v1",
                    "metadata": {"resourceVersion": "9"}, "items": [obj]}))
            }),
        );
    let Some(k) = Kubectl::start(routes).await else {
        return;
    };
    let set = |mut d: Value, status: Value| {
        d["apiVersion"] = json!("apps/v1");
        d["kind"] = json!("Deployment");
        d["metadata"]["resourceVersion"] = json!("9");
        d["status"] = status;
        *current.lock().unwrap() = d;
    };
    async fn status(k: &Kubectl) -> (bool, String, String) {
        k.run(&["rollout", "status", "deployment/web", "--watch=false"]).await
    }

    let (d, prev) = settled(10);
    let mut d2 = deployment(10, 2, "nginx:2");
    d2["spec"]["progressDeadlineSeconds"] = json!(60);
    // Right after the patch: the previous rollout's status is still there.
    set(d2.clone(), d["status"].clone());
    let (ok, out, err) = status(&k).await;
    assert!(ok, "{err}");
    assert_eq!(out, "Waiting for deployment spec update to be observed...\n");

    let start = T0 + 100_000;
    let plan = begin(&d2, Some(&prev), start, 20_000, false);
    set(d2.clone(), status_at(&d2, &plan, start));
    let (_, out, _) = status(&k).await;
    assert_eq!(
        out,
        "Waiting for deployment \"web\" rollout to finish: 5 out of 10 new replicas have been updated...\n"
    );
    set(d2.clone(), status_at(&d2, &plan, start + 10_000));
    let (_, out, _) = status(&k).await;
    assert_eq!(
        out,
        "Waiting for deployment \"web\" rollout to finish: 3 old replicas are pending termination...\n"
    );
    set(d2.clone(), status_at(&d2, &plan, start + 20_000));
    let (ok, out, _) = status(&k).await;
    assert!(ok);
    assert_eq!(out, "deployment \"web\" successfully rolled out\n");

    let failing = begin(&d2, Some(&prev), start, 20_000, true);
    set(d2.clone(), status_at(&d2, &failing, start + 60_000));
    let (ok, out, _) = status(&k).await;
    assert!(ok);
    assert_eq!(
        out,
        "Waiting for deployment \"web\" rollout to finish: 5 out of 10 new replicas have been updated...\n"
    );
    set(d2.clone(), status_at(&d2, &failing, start + 60_001));
    let (ok, _, err) = status(&k).await;
    assert!(!ok);
    // (Before it, stderr may hold the test server's refused watch.)
    assert!(err.ends_with("error: deployment \"web\" exceeded its progress deadline\n"), "{err}");
}

#[test]
fn rfc3339_drops_milliseconds() {
    assert_eq!(rfc3339(1_000_999), "1970-01-01T00:16:40Z");
}

#[test]
fn a_plan_that_follows_pods_moves_only_when_they_become_ready() {
    // A new template rolled over two settled pods, whose new pods the kubelet runs for real.
    let (settled, previous) = settled(2);
    let mut d = settled.clone();
    d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    d["metadata"]["generation"] = json!(2);
    let mut plan = begin(&d, Some(&previous), T0 + 20_000, 2_000, true);
    plan.follow_pods();
    assert!(!plan.fail, "the pods decide, not the failure knob");
    let first = plan.counts_at(T0 + 600_000);
    assert_eq!(
        first,
        PodCounts { old: 2, new_total: 1, new_ready: 0, ..PodCounts::default() },
        "surge 1, then wait"
    );
    assert_eq!(
        next_change_after(&plan, T0 + 20_000),
        Some(T0 + 20_000 + 600_001),
        "only the deadline"
    );

    assert!(plan.observe_ready(T0 + 30_000, 1));
    assert_eq!(
        plan.counts_at(T0 + 30_000),
        PodCounts { old: 1, new_total: 2, new_ready: 1, ..PodCounts::default() }
    );
    assert!(!plan.observe_ready(T0 + 31_000, 1), "nothing new");
    assert!(plan.observe_ready(T0 + 40_000, 2));
    let done = status_at(&d, &plan, T0 + 40_000);
    assert!(is_complete(&done, &d), "{done}");
    assert_eq!(cond(&done, "Progressing")["reason"], "NewReplicaSetAvailable");

    // A pod turning unready afterwards lowers the counts and availability, not Progressing.
    assert!(plan.observe_ready(T0 + 50_000, 1));
    let degraded = status_at(&d, &plan, T0 + 50_000);
    assert_eq!((n(&degraded, "readyReplicas"), n(&degraded, "unavailableReplicas")), (1, 1));
    assert_eq!(cond(&degraded, "Available")["status"], "False");
    assert_eq!(cond(&degraded, "Progressing")["reason"], "NewReplicaSetAvailable");
    assert_eq!(next_change_after(&plan, T0 + 50_000), None, "a complete rollout has no deadline");
}

#[test]
fn a_plan_that_follows_pods_times_out_without_progress() {
    let mut d = deployment(1, 1, "app:1");
    d["spec"]["progressDeadlineSeconds"] = json!(30);
    let mut plan = begin(&d, None, T0, 2_000, false);
    plan.follow_pods();
    let waiting = status_at(&d, &plan, T0 + 30_000);
    assert_eq!(cond(&waiting, "Progressing")["reason"], "NewReplicaSetCreated");
    let stalled = status_at(&d, &plan, T0 + 30_001);
    assert_eq!(cond(&stalled, "Progressing")["reason"], "ProgressDeadlineExceeded");
    assert!(plan.observe_ready(T0 + 40_000, 1));
    let recovered = status_at(&d, &plan, T0 + 40_000);
    assert_eq!(cond(&recovered, "Progressing")["reason"], "NewReplicaSetAvailable");
}
