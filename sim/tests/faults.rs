//! Fault injection as a real API server fails: 500, 429 with `Retry-After`
//! and 504 timeouts, per request kind; a 409 only for a stale
//! resourceVersion (the write pipeline's real check), so a patch without one
//! is never answered 409, and one with a stale one always is. Rules fail
//! chosen requests deterministically: the first of one kind after another
//! kind arrived, a given number of times, answered 500, 429, 504 or etcd's
//! `request is too large`.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{Value, json};
use servicerefresh_sim::{FaultConfig, FaultMix, FaultRule, RuleError, SimConfig};

const DEPLOYS: &str = "/apis/apps/v1/namespaces/arcgis/deployments";
const CMS: &str = "/api/v1/namespaces/arcgis/configmaps";

fn cfg() -> SimConfig {
    SimConfig { rollout_ms: 100, ..Default::default() }
}

fn rate(write_error_rate: f64) -> FaultConfig {
    FaultConfig { write_error_rate, ..Default::default() }
}

#[tokio::test]
async fn patches_without_resource_version_are_never_conflicts() {
    let (h, c) = sim(cfg()).await;
    c.post(DEPLOYS, &deployment("web")).await;
    h.set_faults(rate(0.7));
    let mut codes = BTreeSet::new();
    for i in 0..120 {
        let patch = format!(r#"{{"metadata":{{"annotations":{{"n":"{i}"}}}}}}"#);
        let merge =
            c.patch(&format!("{DEPLOYS}/web"), "application/merge-patch+json", &patch).await;
        let json = c
            .patch(
                &format!("{DEPLOYS}/web"),
                "application/json-patch+json",
                &format!(r#"[{{"op":"add","path":"/metadata/labels/n","value":"{i}"}}]"#),
            )
            .await;
        let strategic = c
            .patch(&format!("{DEPLOYS}/web"), "application/strategic-merge-patch+json", &patch)
            .await;
        for r in [merge, json, strategic] {
            assert_ne!(r.status, 409, "{}", r.body);
            codes.insert(r.status);
        }
    }
    assert_eq!(codes, [200u16, 429, 500, 504].into_iter().collect());
    h.shutdown().await;
}

#[tokio::test]
async fn a_stale_resource_version_is_always_a_conflict() {
    let (h, c) = sim(cfg()).await;
    let created = c.post(CMS, &json!({"metadata": {"name": "x"}, "data": {"a": "1"}})).await.body;
    let stale = created["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    c.patch(&format!("{CMS}/x"), "application/merge-patch+json", r#"{"data":{"a":"2"}}"#).await;
    let with_stale =
        format!(r#"{{"metadata":{{"resourceVersion":"{stale}"}},"data":{{"a":"3"}}}}"#);
    for _ in 0..20 {
        let r = c.patch(&format!("{CMS}/x"), "application/merge-patch+json", &with_stale).await;
        assert_eq!(r.status, 409, "{}", r.body);
        assert_eq!(r.body["reason"], "Conflict");
        assert_eq!(
            r.body["message"],
            "Operation cannot be fulfilled on configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again"
        );
        let mut put = c.get(&format!("{CMS}/x")).await.body;
        put["metadata"]["resourceVersion"] = json!(stale);
        assert_eq!(c.put(&format!("{CMS}/x"), &put).await.status, 409);
    }
    // Under faults a stale patch meets an injected error or its 409; a
    // fresh one meets an injected error or succeeds: 409 still means stale.
    h.set_faults(rate(0.5));
    let mut stale_codes = BTreeSet::new();
    let mut fresh_codes = BTreeSet::new();
    for i in 0..80 {
        let r = c.patch(&format!("{CMS}/x"), "application/merge-patch+json", &with_stale).await;
        stale_codes.insert(r.status);
        h.set_faults(rate(0.0));
        let current = c.get(&format!("{CMS}/x")).await.body;
        h.set_faults(rate(0.5));
        let fresh = format!(
            r#"{{"metadata":{{"resourceVersion":"{}"}},"data":{{"a":"{i}"}}}}"#,
            current["metadata"]["resourceVersion"].as_str().unwrap()
        );
        fresh_codes.insert(
            c.patch(&format!("{CMS}/x"), "application/merge-patch+json", &fresh).await.status,
        );
    }
    assert!(stale_codes.contains(&409) && !stale_codes.contains(&200), "{stale_codes:?}");
    assert!(!fresh_codes.contains(&409) && fresh_codes.contains(&200), "{fresh_codes:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn the_mix_sets_rates_per_request_kind_and_what_the_errors_are() {
    let (h, c) = sim(cfg()).await;
    // Only 429s, on lists of ConfigMaps; everything else works.
    h.set_fault_mix(FaultMix {
        error_rates: [("list configmaps".to_string(), 1.0)].into_iter().collect(),
        internal_error_weight: 0.0,
        timeout_weight: 0.0,
        retry_after_seconds: 3,
        ..FaultMix::default()
    });
    let r = reqwest::get(format!("{}{CMS}", c.base)).await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    assert_eq!(r.text().await.unwrap(), "Too many requests, please try again later.\n");
    assert_eq!(c.get(DEPLOYS).await.status, 200);
    assert_eq!(c.post(CMS, &json!({"metadata": {"name": "ok"}})).await.status, 201);
    assert_eq!(c.get(&format!("{CMS}/ok")).await.status, 200);

    // Timeouts of writes that still happen: the client sees 504, the
    // object exists.
    h.set_fault_mix(FaultMix {
        error_rates: [("create".to_string(), 1.0)].into_iter().collect(),
        internal_error_weight: 0.0,
        too_many_requests_weight: 0.0,
        timeout_commits: true,
        ..FaultMix::default()
    });
    let r = c.post(CMS, &json!({"metadata": {"name": "late"}})).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.body["reason"], "Timeout");
    assert_eq!(r.body["message"], "Timeout: request did not complete within the allotted timeout");
    assert_eq!(c.get(&format!("{CMS}/late")).await.status, 200);
    // ... or that do not.
    h.set_fault_mix(FaultMix { timeout_commits: false, ..h_mix(&c).await });
    assert_eq!(c.post(CMS, &json!({"metadata": {"name": "lost"}})).await.status, 504);
    assert_eq!(c.get(&format!("{CMS}/lost")).await.status, 404);

    // Watches can be refused, never timed out.
    h.set_fault_mix(FaultMix {
        error_rates: [("watch".to_string(), 1.0)].into_iter().collect(),
        internal_error_weight: 0.0,
        too_many_requests_weight: 0.0,
        ..FaultMix::default()
    });
    let w = c.watch(&format!("{CMS}?watch=true")).await;
    assert_eq!(w.status, 200, "only timeouts are weighed, and watches have none");
    h.shutdown().await;
}

/// The mix as `/sim/v1/faults` serves it.
async fn h_mix(c: &RawHttpClient) -> FaultMix {
    serde_json::from_value(c.get("/sim/v1/faults").await.body).expect("a fault mix")
}

#[tokio::test]
async fn the_faults_endpoint_keeps_its_json_shape() {
    let (h, c) = sim(cfg()).await;
    let r = c.post("/sim/v1/faults", &json!({"write_error_rate": 0.25, "latency_ms": 0})).await;
    assert_eq!(r.status, 200);
    let body = c.get("/sim/v1/faults").await.body;
    assert_eq!(body["write_error_rate"], 0.25);
    assert_eq!(body["latency_ms"], 0);
    assert_eq!(body["watch_drop_every_ms"], Value::Null);
    assert_eq!(body["retry_after_seconds"], 1);
    assert_eq!(body["internal_error_weight"], 1.0);
    let config: FaultConfig =
        serde_json::from_value(body.clone()).expect("the old shape still reads");
    assert_eq!(config, rate(0.25));
    let r = c
        .post(
            "/sim/v1/faults",
            &json!({"writeErrorRate": 0.5, "errorRates": {"get": 0.1}, "timeoutMs": 5}),
        )
        .await;
    assert_eq!(r.status, 200);
    let mix = h_mix(&c).await;
    assert_eq!(mix.error_rates.get("get"), Some(&0.1));
    assert_eq!(mix.timeout_ms, 5);
    h.set_faults(FaultConfig::default());
    h.shutdown().await;
}

#[tokio::test]
async fn a_rule_fails_exactly_the_write_that_follows_another_kind() {
    let (h, c) = sim(cfg()).await;
    c.post(CMS, &json!({"metadata": {"name": "x"}, "data": {"a": "0"}})).await;
    // The first patch of ConfigMap x after a Deployment was created is lost, twice.
    let r = c
        .post(
            "/sim/v1/faults",
            &json!({"rules": [{"fail": "patch configmaps", "after": "create deployments", "times": 2}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let patch = |value: &str| format!(r#"{{"data":{{"a":"{value}"}}}}"#);
    let cm = format!("{CMS}/x");
    assert_eq!(c.patch(&cm, "application/merge-patch+json", &patch("1")).await.status, 200);
    for round in 0..3 {
        c.post(DEPLOYS, &deployment(&format!("web-{round}"))).await;
        let lost = c.patch(&cm, "application/merge-patch+json", &patch("lost")).await;
        let kept = c.patch(&cm, "application/merge-patch+json", &patch(&round.to_string())).await;
        if round < 2 {
            assert_eq!(lost.status, 500, "round {round}: {}", lost.body);
            assert_eq!(
                lost.body["message"],
                "Internal error occurred: etcdserver: request timed out"
            );
        } else {
            assert_eq!(lost.status, 200, "spent after two");
        }
        assert_eq!(kept.status, 200, "round {round}: only the first patch after the create");
    }
    assert_eq!(c.get(&cm).await.body["data"]["a"], "2", "the failed patches were not applied");
    let rule = &h.fault_mix().rules[0];
    assert_eq!((rule.fired, rule.times, rule.armed), (2, Some(0), false));
    let served = c.get("/sim/v1/faults").await.body;
    assert_eq!(served["rules"][0]["fired"], 2, "{served}");
    h.shutdown().await;
}

#[tokio::test]
async fn a_rule_can_time_out_a_write_that_still_happens_or_hang_until_shutdown() {
    let (h, c) = sim(cfg()).await;
    c.post(CMS, &json!({"metadata": {"name": "x"}, "data": {"a": "0"}})).await;
    let index = h.add_fault_rule(FaultRule {
        fail: "patch configmaps".into(),
        times: None,
        error: RuleError::Timeout,
        commits: true,
        ..FaultRule::default()
    });
    let cm = format!("{CMS}/x");
    for value in ["1", "2"] {
        let body = format!(r#"{{"data":{{"a":"{value}"}}}}"#);
        let r = c.patch(&cm, "application/merge-patch+json", &body).await;
        assert_eq!(r.status, 504, "{}", r.body);
        assert_eq!(c.get(&cm).await.body["data"]["a"], value, "committed despite the 504");
    }
    assert_eq!(h.fault_mix().rules[index].fired, 2);

    // A write that hangs is in flight (the request log shows no answer) until the sim
    // shuts down.
    h.set_fault_mix(FaultMix {
        rules: vec![FaultRule {
            fail: "patch configmaps".into(),
            error: RuleError::Timeout,
            hang_ms: 600_000,
            ..FaultRule::default()
        }],
        ..FaultMix::default()
    });
    let hanging = tokio::spawn({
        let c = c.clone();
        async move { c.patch(&cm, "application/merge-patch+json", r#"{"data":{"a":"3"}}"#).await }
    });
    eventually("the patch to hang", || async { (h.fault_mix().rules[0].fired == 1).then_some(()) })
        .await;
    let pending = h.requests().into_iter().rfind(|r| r.path.ends_with("/configmaps/x"));
    assert_eq!(pending.map(|r| (r.verb, r.code)), Some(("patch".to_owned(), None)));
    h.shutdown().await;
    let answered = hanging.await.expect("the client task");
    assert_eq!(answered.status, 504, "answered at shutdown, not after ten minutes");
}

/// The Status the API server passes on when etcd refuses an object: a 500 without reason or
/// details (the storage error is not converted; kube-apiserver logs it as one that is not a
/// `metav1.Status`).
fn assert_request_too_large(r: &Resp) {
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(
        r.body,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "etcdserver: request is too large",
            "code": 500,
        })
    );
}

#[tokio::test]
async fn etcd_refusing_a_large_object_is_selectable_per_verb_and_resource() {
    let (h, c) = sim(cfg()).await;
    c.post(CMS, &json!({"metadata": {"name": "x"}, "data": {"a": "0"}})).await;
    h.add_fault_rule(FaultRule {
        fail: "update configmaps".into(),
        times: Some(2),
        error: RuleError::RequestTooLarge,
        ..FaultRule::default()
    });
    let cm = format!("{CMS}/x");
    let mut put = c.get(&cm).await.body;
    put["data"]["a"] = json!("1");
    for _ in 0..2 {
        assert_request_too_large(&c.put(&cm, &put).await);
    }
    let patched = c.patch(&cm, "application/merge-patch+json", r#"{"data":{"b":"2"}}"#).await;
    assert_eq!(patched.status, 200, "other verbs of the resource pass: {}", patched.body);
    assert_eq!(c.post(DEPLOYS, &deployment("web")).await.status, 201, "other resources pass");
    assert_eq!(c.get(&cm).await.body["data"], json!({"a": "0", "b": "2"}), "nothing carried out");
    let mut put = c.get(&cm).await.body;
    put["data"]["a"] = json!("3");
    assert_eq!(c.put(&cm, &put).await.status, 200, "spent after two");

    // As a weighted kind of the rates, by `verb resource`.
    h.set_fault_mix(FaultMix {
        error_rates: [("create configmaps".to_string(), 1.0)].into_iter().collect(),
        internal_error_weight: 0.0,
        too_many_requests_weight: 0.0,
        timeout_weight: 0.0,
        request_too_large_weight: 1.0,
        ..FaultMix::default()
    });
    assert_request_too_large(&c.post(CMS, &json!({"metadata": {"name": "big"}})).await);
    assert_eq!(c.get(&format!("{CMS}/big")).await.status, 404);
    assert_eq!(c.post(DEPLOYS, &deployment("api")).await.status, 201);
    let served = c.get("/sim/v1/faults").await.body;
    assert_eq!(served["request_too_large_weight"], 1.0, "{served}");
    let r = c
        .post(
            "/sim/v1/faults",
            &json!({"rules": [{"fail": "patch configmaps", "error": "RequestTooLarge"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_request_too_large(
        &c.patch(&cm, "application/merge-patch+json", r#"{"data":{"c":"4"}}"#).await,
    );
    h.shutdown().await;
}
