//! Deletion as a real API server and its controllers do it: finalizers
//! (generation bumped when the deletion starts, no new finalizer on an
//! object being deleted), the garbage collector's propagation policies and
//! `blockOwnerDeletion`, dangling owners, `DeleteOptions` validation, and a
//! CRD that stays Terminating until its custom resources are gone.

mod common;

use common::*;
use serde_json::{Value, json};
use servicerefresh_sim::SimConfig;

const DEPLOYS: &str = "/apis/apps/v1/namespaces/arcgis/deployments";
const CMS: &str = "/api/v1/namespaces/arcgis/configmaps";
const CRD: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.sim.io";
const WIDGETS: &str = "/apis/example.sim.io/v1/namespaces/arcgis/widgets";

fn cfg() -> SimConfig {
    SimConfig { rollout_ms: 100, ..Default::default() }
}

async fn delete_with(c: &RawHttpClient, path: &str, options: &Value) -> Resp {
    c.send("DELETE", path, "application/json", Some(options.to_string())).await
}

async fn gone(c: &RawHttpClient, path: &str) {
    eventually(&format!("{path} gone"), || async {
        (c.get(path).await.status == 404).then_some(())
    })
    .await;
}

fn configmap(name: &str, extra: Value) -> Value {
    let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    if let (Some(metadata), Some(extra)) = (cm["metadata"].as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            metadata.insert(key.clone(), value.clone());
        }
    }
    cm
}

fn owner_ref(owner: &Value, block: bool) -> Value {
    json!({
        "apiVersion": owner["apiVersion"].as_str().unwrap_or("v1"),
        "kind": owner["kind"].as_str().unwrap_or("ConfigMap"),
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block,
    })
}

#[tokio::test]
async fn finalizers_bump_generation_and_refuse_new_ones_while_deleting() {
    let (h, c) = sim(cfg()).await;
    let mut d = deployment("held");
    d["metadata"]["finalizers"] = json!(["example.com/a"]);
    let created = c.post(DEPLOYS, &d).await.body;
    assert_eq!(created["metadata"]["generation"], 1);
    let path = format!("{DEPLOYS}/held");
    let del = c.delete(&path).await;
    assert_eq!(del.status, 200, "{}", del.body);
    assert!(del.body["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(del.body["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(del.body["metadata"]["generation"], 2, "generation bumped when the deletion starts");
    // A second delete changes nothing.
    let again = c.delete(&path).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["metadata"]["resourceVersion"], del.body["metadata"]["resourceVersion"]);
    assert_eq!(again.body["metadata"]["generation"], 2);
    // No new finalizer on an object being deleted: the real 422.
    let add = c
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":["example.com/a","example.com/b","example.com/c"]}}"#,
        )
        .await;
    assert_eq!(add.status, 422, "{}", add.body);
    assert_eq!(add.body["reason"], "Invalid");
    assert_eq!(
        add.body["message"],
        "Deployment.apps \"held\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"example.com/b\", \"example.com/c\"}"
    );
    assert_eq!(add.body["details"]["causes"][0]["reason"], "FieldValueForbidden");
    assert_eq!(add.body["details"]["causes"][0]["field"], "metadata.finalizers");
    // Removing the last finalizer deletes it.
    let r =
        c.patch(&path, "application/merge-patch+json", r#"{"metadata":{"finalizers":[]}}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(c.get(&path).await.status, 404);
    // Without generation (a ConfigMap) nothing is bumped.
    c.post(CMS, &configmap("cm", json!({"finalizers": ["example.com/a"]}))).await;
    let del = c.delete(&format!("{CMS}/cm")).await;
    assert!(del.body["metadata"].get("generation").is_none());
    h.shutdown().await;
}

#[tokio::test]
async fn delete_options_are_validated_and_preconditions_checked() {
    let (h, c) = sim(cfg()).await;
    let cm = c.post(CMS, &configmap("x", json!({}))).await.body;
    let path = format!("{CMS}/x");
    let r = delete_with(&c, &path, &json!({"propagationPolicy": "Sideways"})).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body["message"],
        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Sideways\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
    );
    let r =
        delete_with(&c, &path, &json!({"propagationPolicy": "Orphan", "orphanDependents": true}))
            .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = delete_with(&c, &path, &json!({"preconditions": {"resourceVersion": "1"}})).await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.body["message"],
        format!(
            "Operation cannot be fulfilled on ConfigMap \"x\": the ResourceVersion in the precondition (1) does not match the ResourceVersion in record ({}). The object might have been modified",
            cm["metadata"]["resourceVersion"].as_str().unwrap()
        )
    );
    let r = delete_with(&c, &path, &json!({"preconditions": {"uid": "nope"}})).await;
    assert_eq!(r.status, 409);
    // The deprecated orphanDependents: false answers 202 while finalizers hold.
    c.post(CMS, &configmap("held", json!({"finalizers": ["example.com/a"]}))).await;
    let r = delete_with(&c, &format!("{CMS}/held"), &json!({"orphanDependents": false})).await;
    assert_eq!(r.status, 202);
    let r = delete_with(&c, &path, &json!({})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["kind"], "Status");
    assert_eq!(r.body["status"], "Success");
    h.shutdown().await;
}

#[tokio::test]
async fn the_garbage_collector_follows_owner_references() {
    let (h, c) = sim(cfg()).await;
    // Background: a dependent goes once its only owner is gone.
    let owner = c.post(CMS, &configmap("owner", json!({}))).await.body;
    c.post(CMS, &configmap("dep", json!({"ownerReferences": [owner_ref(&owner, false)]}))).await;
    // A second owner keeps a dependent alive; the reference to the gone one
    // is removed.
    let other = c.post(CMS, &configmap("other", json!({}))).await.body;
    c.post(
        CMS,
        &configmap(
            "shared",
            json!({"ownerReferences": [owner_ref(&owner, false), owner_ref(&other, false)]}),
        ),
    )
    .await;
    assert_eq!(c.delete(&format!("{CMS}/owner")).await.status, 200);
    gone(&c, &format!("{CMS}/dep")).await;
    let shared = eventually("the dangling reference removed", || async {
        let shared = c.get(&format!("{CMS}/shared")).await.body;
        (shared["metadata"]["ownerReferences"].as_array()?.len() == 1).then_some(shared)
    })
    .await;
    assert_eq!(shared["metadata"]["ownerReferences"][0]["name"], "other");

    // A dependent created for an owner that does not exist is collected.
    let ghost = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "uid": "00000000-0000-4000-8000-000000000000"}});
    c.post(CMS, &configmap("orphaned", json!({"ownerReferences": [owner_ref(&ghost, false)]})))
        .await;
    gone(&c, &format!("{CMS}/orphaned")).await;
    // An owner of a kind the server does not serve is not judged.
    let unknown = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g", "uid": "u"}});
    c.post(CMS, &configmap("kept", json!({"ownerReferences": [owner_ref(&unknown, true)]}))).await;

    // Foreground: only dependents with blockOwnerDeletion hold the owner.
    let boss = c.post(CMS, &configmap("boss", json!({}))).await.body;
    c.post(
        CMS,
        &configmap(
            "blocker",
            json!({"ownerReferences": [owner_ref(&boss, true)], "finalizers": ["example.com/hold"]}),
        ),
    )
    .await;
    c.post(
        CMS,
        &configmap("loose", json!({"ownerReferences": [owner_ref(&boss, false)], "finalizers": ["example.com/hold"]})),
    )
    .await;
    let r =
        delete_with(&c, &format!("{CMS}/boss"), &json!({"propagationPolicy": "Foreground"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    assert!(r.body["metadata"]["deletionTimestamp"].is_string());
    // Both dependents are being deleted; the blocking one holds the owner.
    eventually("dependents deleting", || async {
        let b = c.get(&format!("{CMS}/blocker")).await.body;
        let l = c.get(&format!("{CMS}/loose")).await.body;
        (b["metadata"]["deletionTimestamp"].is_string()
            && l["metadata"]["deletionTimestamp"].is_string())
        .then_some(())
    })
    .await;
    let boss_now = c.get(&format!("{CMS}/boss")).await.body;
    assert_eq!(boss_now["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    c.patch(
        &format!("{CMS}/blocker"),
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":null}}"#,
    )
    .await;
    gone(&c, &format!("{CMS}/boss")).await;
    // The non-blocking dependent did not hold the owner, and is still held
    // by its own finalizer.
    let loose = c.get(&format!("{CMS}/loose")).await.body;
    assert!(loose["metadata"]["deletionTimestamp"].is_string());
    c.patch(
        &format!("{CMS}/loose"),
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":null}}"#,
    )
    .await;
    assert_eq!(c.get(&format!("{CMS}/loose")).await.status, 404);

    // Orphan (as a query parameter): the owner waits for its dependents to
    // lose their reference, then goes.
    let parent = c.post(CMS, &configmap("parent", json!({}))).await.body;
    c.post(CMS, &configmap("child", json!({"ownerReferences": [owner_ref(&parent, true)]}))).await;
    let r = c.send("DELETE", &format!("{CMS}/parent?propagationPolicy=Orphan"), "", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["metadata"]["finalizers"], json!(["orphan"]));
    gone(&c, &format!("{CMS}/parent")).await;
    let child = c.get(&format!("{CMS}/child")).await.body;
    assert!(child["metadata"].get("ownerReferences").is_none(), "{child}");
    assert_eq!(c.get(&format!("{CMS}/kept")).await.status, 200);
    h.shutdown().await;
}

#[tokio::test]
async fn a_deleted_crd_is_terminating_until_its_custom_resources_are_gone() {
    let (h, c) = sim(cfg()).await;
    assert_eq!(c.create_widget_crd().await, 201);
    let w = |name: &str, finalizers: Value| {
        json!({"apiVersion": "example.sim.io/v1", "kind": "Widget",
               "metadata": {"name": name, "finalizers": finalizers}, "spec": {"size": 1}})
    };
    assert_eq!(c.post(WIDGETS, &w("held", json!(["example.com/hold"]))).await.status, 201);
    assert_eq!(c.post(WIDGETS, &w("free", json!([]))).await.status, 201);
    let del = c.delete(CRD).await;
    assert_eq!(del.status, 200);
    assert!(del.body["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        del.body["metadata"]["finalizers"],
        json!(["customresourcecleanup.apiextensions.k8s.io"])
    );
    let terminating = |crd: &Value| {
        crd["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Terminating"))
            .cloned()
    };
    assert_eq!(terminating(&del.body).unwrap()["reason"], "InstanceDeletionPending");
    // The free widget goes; the held one waits for its finalizer, and the
    // CRD with it.
    gone(&c, &format!("{WIDGETS}/free")).await;
    let crd = eventually("instance deletion in progress", || async {
        let crd = c.get(CRD).await.body;
        (terminating(&crd)?["reason"] == "InstanceDeletionInProgress").then_some(crd)
    })
    .await;
    assert_eq!(terminating(&crd).unwrap()["status"], "True");
    assert_eq!(terminating(&crd).unwrap()["message"], "CustomResource deletion is in progress");
    let held = c.get(&format!("{WIDGETS}/held")).await.body;
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    // No new custom resources meanwhile.
    let r = c.post(WIDGETS, &w("late", json!([]))).await;
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(
        r.body["message"],
        "create not allowed while custom resource definition is terminating"
    );
    let r = c
        .patch(
            &format!("{WIDGETS}/held"),
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":null}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    gone(&c, CRD).await;
    assert_eq!(c.get("/apis/example.sim.io/v1").await.status, 404);
    h.shutdown().await;
}
