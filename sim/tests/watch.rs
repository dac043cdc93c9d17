//! Watch behaviour: resume from a resourceVersion, 410 for compacted
//! versions, bookmarks, streaming lists, selector transitions, timeouts and
//! DELETED events.

mod common;

use common::*;
use serde_json::json;
use servicerefresh_sim::SimConfig;

const CMS: &str = "/api/v1/namespaces/arcgis/configmaps";

fn cfg() -> SimConfig {
    SimConfig { deployments: 3, rollout_ms: 100, ..Default::default() }
}

fn cm(name: &str, v: &str) -> serde_json::Value {
    json!({"metadata": {"name": name, "labels": {"tier": v}}, "data": {"v": v}})
}

#[tokio::test]
async fn resume_from_resource_version() {
    let (h, c) = sim(cfg()).await;
    let a = c.post(CMS, &cm("a", "1")).await.body;
    let b = c.post(CMS, &cm("b", "1")).await.body;
    let a2 = c.merge_patch(&format!("{CMS}/a"), r#"{"data":{"v":"2"}}"#).await;
    let del = c.delete(&format!("{CMS}/b")).await;
    assert_eq!(del.status, 200);
    // Resume after the first create: b ADDED, a MODIFIED, b DELETED.
    let mut w = c.watch(&format!("{CMS}?watch=true&resourceVersion={}", rv(&a))).await;
    assert_eq!(w.status, 200);
    let e1 = w.next().await.unwrap();
    assert_eq!((e1["type"].as_str(), rv(&e1["object"])), (Some("ADDED"), rv(&b)));
    assert_eq!(e1["object"]["kind"], "ConfigMap");
    assert_eq!(e1["object"]["apiVersion"], "v1");
    let e2 = w.next().await.unwrap();
    assert_eq!((e2["type"].as_str(), rv(&e2["object"])), (Some("MODIFIED"), rv(&a2)));
    let e3 = w.next().await.unwrap();
    assert_eq!(e3["type"], "DELETED");
    assert_eq!(e3["object"]["metadata"]["name"], "b");
    assert!(rv(&e3["object"]) > rv(&a2), "DELETED carries a new resourceVersion");
    // Live events follow.
    let c2 = c.post(CMS, &cm("c", "1")).await.body;
    let e4 = w.next().await.unwrap();
    assert_eq!((e4["type"].as_str(), rv(&e4["object"])), (Some("ADDED"), rv(&c2)));
    // resourceVersion 0: synthetic ADDED for the current state.
    let mut w0 = c.watch(&format!("{CMS}?watch=1&resourceVersion=0")).await;
    let mut names = vec![];
    for _ in 0..2 {
        let e = w0.next().await.unwrap();
        assert_eq!(e["type"], "ADDED");
        names.push(e["object"]["metadata"]["name"].as_str().unwrap().to_string());
    }
    assert_eq!(names, vec!["a", "c"]);
    h.shutdown().await;
}

#[tokio::test]
async fn compacted_resource_version_is_410_error_event() {
    let (h, c) = sim(SimConfig { event_window: 5, ..cfg() }).await;
    let first = c.post(CMS, &cm("x0", "1")).await.body;
    for i in 1..10 {
        c.post(CMS, &cm(&format!("x{i}"), "1")).await;
    }
    let mut w = c.watch(&format!("{CMS}?watch=true&resourceVersion={}", rv(&first))).await;
    assert_eq!(w.status, 200);
    let e = w.next().await.unwrap();
    assert_eq!(e["type"], "ERROR");
    assert_eq!(e["object"]["kind"], "Status");
    assert_eq!(e["object"]["code"], 410);
    assert_eq!(e["object"]["reason"], "Expired");
    assert!(
        e["object"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("too old resource version: {} (", rv(&first)))
    );
    assert!(w.next().await.is_none(), "stream closes after the error");
    h.shutdown().await;
}

#[tokio::test]
async fn bookmarks_and_streaming_lists() {
    let (h, c) = sim(SimConfig { bookmark_interval_ms: 100, ..cfg() }).await;
    let a = c.post(CMS, &cm("a", "1")).await.body;
    let mut w = c
        .watch(&format!("{CMS}?watch=true&allowWatchBookmarks=true&resourceVersion={}", rv(&a)))
        .await;
    let b = w.until(|e| e["type"] == "BOOKMARK").await;
    assert_eq!(b["object"]["kind"], "ConfigMap");
    assert_eq!(b["object"]["apiVersion"], "v1");
    assert!(rv(&b["object"]) >= rv(&a));
    assert!(b["object"].get("data").is_none());
    // sendInitialEvents: ADDED for current state, then the end bookmark.
    let mut s = c
        .watch(&format!("{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion="))
        .await;
    let e = s.next().await.unwrap();
    assert_eq!(e["type"], "ADDED");
    assert_eq!(e["object"]["metadata"]["name"], "a");
    let end = s.next().await.unwrap();
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
    let bad = c.get(&format!("{CMS}?watch=true&sendInitialEvents=true")).await;
    assert_eq!(bad.status, 422);
    h.shutdown().await;
}

#[tokio::test]
async fn selector_transitions_and_timeout() {
    let (h, c) = sim(cfg()).await;
    let a = c.post(CMS, &cm("a", "front")).await.body;
    let mut w = c
        .watch(&format!("{CMS}?watch=true&labelSelector=tier%3Dback&resourceVersion={}", rv(&a)))
        .await;
    c.patch(
        &format!("{CMS}/a"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"tier":"back"}}}"#,
    )
    .await;
    c.patch(&format!("{CMS}/a"), "application/merge-patch+json", r#"{"data":{"v":"9"}}"#).await;
    c.patch(
        &format!("{CMS}/a"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"tier":"front"}}}"#,
    )
    .await;
    let types: Vec<String> = [w.next().await, w.next().await, w.next().await]
        .into_iter()
        .map(|e| e.unwrap()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, vec!["ADDED", "MODIFIED", "DELETED"]);
    // fieldSelector on the name, as kubectl wait does, and timeoutSeconds.
    let mut t = c
        .watch(&format!("{CMS}?watch=true&fieldSelector=metadata.name%3Da&timeoutSeconds=1"))
        .await;
    let first = t.next().await.unwrap();
    assert_eq!(first["object"]["metadata"]["name"], "a");
    assert!(t.next().await.is_none(), "closed by timeoutSeconds");
    // Cluster-wide watch sees other namespaces.
    let mut all = c.watch("/api/v1/configmaps?watch=true").await;
    c.post("/api/v1/namespaces/default/configmaps", &cm("d", "x")).await;
    let e = all.until(|e| e["object"]["metadata"]["namespace"] == "default").await;
    assert_eq!(e["object"]["metadata"]["name"], "d");
    h.shutdown().await;
}
