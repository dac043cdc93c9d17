//! Behaviour tests of the simulated API server over HTTP: discovery, error
//! Status bodies, metadata rules, patches, apply, selectors, pagination.

mod common;

use common::*;
use serde_json::{Value, json};
use servicerefresh_sim::SimConfig;

const DEPLOYS: &str = "/apis/apps/v1/namespaces/arcgis/deployments";
const WIDGETS: &str = "/apis/example.sim.io/v1/namespaces/arcgis/widgets";

fn cfg() -> SimConfig {
    SimConfig { deployments: 5, rollout_ms: 200, ..Default::default() }
}

#[tokio::test]
async fn discovery_documents() {
    let (h, c) = sim(cfg()).await;
    let v = c.get("/version").await;
    assert_eq!(v.status, 200);
    assert_eq!(v.body["major"], "1");
    let api = c.get("/api").await.body;
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));
    let apis = c.get("/apis").await.body;
    assert_eq!(apis["kind"], "APIGroupList");
    let groups: Vec<&str> =
        apis["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    for g in ["apps", "coordination.k8s.io", "apiextensions.k8s.io", "events.k8s.io"] {
        assert!(groups.contains(&g), "{g} in {groups:?}");
    }
    let apps = c.get("/apis/apps/v1").await.body;
    assert_eq!(apps["kind"], "APIResourceList");
    let res = apps["resources"].as_array().unwrap();
    let d = res.iter().find(|r| r["name"] == "deployments").unwrap();
    assert_eq!(d["namespaced"], true);
    assert_eq!(d["kind"], "Deployment");
    assert!(d["shortNames"].as_array().unwrap().contains(&json!("deploy")));
    assert!(d["verbs"].as_array().unwrap().contains(&json!("watch")));
    assert!(res.iter().any(|r| r["name"] == "deployments/status"));
    let core = c.get("/api/v1").await.body;
    assert!(core["resources"].as_array().unwrap().iter().any(|r| r["name"] == "configmaps"));
    // CRD appears in discovery, then disappears.
    assert_eq!(c.get("/apis/example.sim.io/v1").await.status, 404);
    assert_eq!(c.create_widget_crd().await, 201);
    let wl = c.get("/apis/example.sim.io/v1").await.body;
    let names: Vec<&str> =
        wl["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["widgets", "widgets/status"]);
    let crd = c
        .get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.sim.io")
        .await
        .body;
    let conds = crd["status"]["conditions"].as_array().unwrap();
    assert!(conds.iter().any(|c| c["type"] == "Established" && c["status"] == "True"));
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "Widget");
    let del = c
        .delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.sim.io")
        .await;
    assert_eq!(del.status, 200);
    // The CRD finalizer removes it once its (here no) custom resources are gone.
    eventually("the CRD gone from discovery", || async {
        (c.get("/apis/example.sim.io/v1").await.status == 404).then_some(())
    })
    .await;
    assert_eq!(c.get(WIDGETS).await.status, 404);
    h.shutdown().await;
}

#[tokio::test]
async fn error_status_bodies() {
    let (h, c) = sim(cfg()).await;
    let nf = c.get(&format!("{DEPLOYS}/nope")).await;
    assert_eq!(nf.status, 404);
    assert_eq!(
        nf.body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "deployments.apps \"nope\" not found", "reason": "NotFound",
               "details": {"name": "nope", "group": "apps", "kind": "deployments"}, "code": 404})
    );
    let cm_nf = c.get("/api/v1/namespaces/arcgis/configmaps/x").await.body;
    assert_eq!(cm_nf["message"], "configmaps \"x\" not found");
    assert_eq!(cm_nf["details"], json!({"name": "x", "kind": "configmaps"}));

    assert_eq!(c.post(DEPLOYS, &deployment("web")).await.status, 201);
    let dup = c.post(DEPLOYS, &deployment("web")).await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.body["reason"], "AlreadyExists");
    assert_eq!(dup.body["message"], "deployments.apps \"web\" already exists");

    let cur = c.get(&format!("{DEPLOYS}/web")).await.body;
    let mut stale = cur.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    stale["spec"]["replicas"] = json!(5);
    let conflict = c.put(&format!("{DEPLOYS}/web"), &stale).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.body["reason"], "Conflict");
    assert_eq!(
        conflict.body["message"],
        "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );

    let bad = c.post(DEPLOYS, &deployment("Bad_Name")).await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.body["reason"], "Invalid");
    assert!(bad.body["message"].as_str().unwrap().starts_with("Deployment.apps \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"));
    assert_eq!(bad.body["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(bad.body["details"]["causes"][0]["reason"], "FieldValueInvalid");
    assert_eq!(bad.body["details"]["kind"], "Deployment");

    let mut nosel = deployment("nosel");
    nosel["spec"]["template"]["metadata"]["labels"] = json!({"other": "x"});
    let inv = c.post(DEPLOYS, &nosel).await;
    assert_eq!(inv.status, 422);
    assert_eq!(inv.body["details"]["causes"][0]["field"], "spec.template.metadata.labels");

    let ns404 = c.post("/apis/apps/v1/namespaces/nowhere/deployments", &deployment("x")).await;
    assert_eq!(ns404.status, 404);
    assert_eq!(ns404.body["message"], "namespaces \"nowhere\" not found");

    let mut wrong_ns = deployment("y");
    wrong_ns["metadata"]["namespace"] = json!("default");
    let mismatch = c.post(DEPLOYS, &wrong_ns).await;
    assert_eq!(mismatch.status, 400);
    assert_eq!(mismatch.body["reason"], "BadRequest");

    let not_allowed = c.post(&format!("{DEPLOYS}/web"), &deployment("web")).await;
    assert_eq!(not_allowed.status, 405);
    assert_eq!(not_allowed.body["reason"], "MethodNotAllowed");

    let unknown_patch = c.patch(&format!("{DEPLOYS}/web"), "text/plain", "{}").await;
    assert_eq!(unknown_patch.status, 415);
    assert_eq!(unknown_patch.body["reason"], "UnsupportedMediaType");

    let no_manager = c
        .patch(
            &format!("{DEPLOYS}/web"),
            "application/apply-patch+yaml",
            "apiVersion: apps/v1\nkind: Deployment\n",
        )
        .await;
    assert_eq!(no_manager.status, 422);
    assert_eq!(no_manager.body["details"]["causes"][0]["field"], "fieldManager");

    let no_resource = c.get("/apis/apps/v1/namespaces/arcgis/widgets").await;
    assert_eq!(no_resource.status, 404);
    assert_eq!(no_resource.body["message"], "the server could not find the requested resource");

    let del = c.delete(&format!("{DEPLOYS}/web")).await;
    assert_eq!(del.status, 200);
    assert_eq!(del.body["status"], "Success");
    assert_eq!(del.body["details"]["name"], "web");
    assert_eq!(c.delete(&format!("{DEPLOYS}/web")).await.status, 404);
    h.shutdown().await;
}

#[tokio::test]
async fn metadata_generation_and_status_isolation() {
    let (h, c) = sim(cfg()).await;
    let created = c.post(DEPLOYS, &deployment("gen")).await.body;
    assert_eq!(created["metadata"]["generation"], 1);
    assert!(created["metadata"]["uid"].as_str().unwrap().len() == 36);
    assert!(created["metadata"]["creationTimestamp"].is_string());
    // Defaults.
    assert_eq!(created["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(created["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(created["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(
        created["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    let path = format!("{DEPLOYS}/gen");
    // Metadata-only change: no generation bump, RV bump.
    let r = c.merge_patch(&path, r#"{"metadata":{"annotations":{"a":"b"}}}"#).await;
    assert_eq!(r["metadata"]["generation"], 1);
    assert!(rv(&r) > rv(&created));
    // Spec change bumps.
    let r = c.merge_patch(&path, r#"{"spec":{"replicas":3}}"#).await;
    assert_eq!(r["metadata"]["generation"], 2);
    // Status through the main resource is ignored.
    let r2 = c.merge_patch(&path, r#"{"status":{"replicas":99}}"#).await;
    assert_ne!(r2["status"]["replicas"], 99);
    // Spec through /status is ignored, status is taken.
    let r3 = c
        .merge_patch(
            &format!("{path}/status"),
            r#"{"spec":{"replicas":7},"status":{"observedGeneration":42}}"#,
        )
        .await;
    assert_eq!(r3["spec"]["replicas"], 3);
    assert_eq!(r3["status"]["observedGeneration"], 42);
    assert_eq!(r3["metadata"]["generation"], 2);
    // generateName.
    let mut g = deployment("");
    g["metadata"] = json!({"generateName": "web-", "labels": {"app": ""}});
    g["spec"]["selector"]["matchLabels"] = json!({"app": "gn"});
    g["spec"]["template"]["metadata"]["labels"] = json!({"app": "gn"});
    let gn = c.post(DEPLOYS, &g).await;
    assert_eq!(gn.status, 201);
    let name = gn.body["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
    // RVs are cluster-wide and increase.
    let cm = c
        .post(
            "/api/v1/namespaces/arcgis/configmaps",
            &json!({"metadata": {"name": "c"}, "data": {"k": "v"}}),
        )
        .await
        .body;
    assert!(rv(&cm) > rv(&gn.body));
    assert!(cm.pointer("/metadata/generation").is_none());
    h.shutdown().await;
}

#[tokio::test]
async fn custom_resources_generation_status_and_schema() {
    let (h, c) = sim(cfg()).await;
    assert_eq!(c.create_widget_crd().await, 201);
    let w = json!({"apiVersion": "example.sim.io/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 2, "junk": 1}, "status": {"phase": "X"}});
    let created = c.post(WIDGETS, &w).await;
    assert_eq!(created.status, 201);
    let b = created.body;
    assert_eq!(b["spec"]["colour"], "red", "default applied");
    assert!(b["spec"].get("junk").is_none(), "pruned");
    assert!(b.get("status").is_none(), "status dropped on create");
    assert_eq!(b["metadata"]["generation"], 1);
    // Strict field validation rejects unknown fields.
    let strict = c.send("POST", &format!("{WIDGETS}?fieldValidation=Strict"), "application/json",
        Some(json!({"apiVersion": "example.sim.io/v1", "kind": "Widget", "metadata": {"name": "s"}, "spec": {"size": 2, "junk": 1}}).to_string())).await;
    assert_eq!(strict.status, 400);
    assert!(strict.body["message"].as_str().unwrap().contains("unknown field \"spec.junk\""));
    // Validation.
    let bad = c.post(WIDGETS, &json!({"apiVersion": "example.sim.io/v1", "kind": "Widget", "metadata": {"name": "bad"}, "spec": {"size": 11, "colour": "pink"}})).await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Widget.example.sim.io \"bad\" is invalid: [")
    );
    let fields: Vec<&str> = bad.body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"spec.size") && fields.contains(&"spec.colour"), "{fields:?}");
    // Update without resourceVersion is rejected for custom resources.
    let mut nv = b.clone();
    nv["metadata"].as_object_mut().unwrap().remove("resourceVersion");
    let r = c.put(&format!("{WIDGETS}/w"), &nv).await;
    assert_eq!(r.status, 422);
    // Status subresource: main endpoint ignores status, generation unchanged.
    let s = c.merge_patch(&format!("{WIDGETS}/w/status"), r#"{"status":{"phase":"Ready"}}"#).await;
    assert_eq!(s["status"]["phase"], "Ready");
    assert_eq!(s["metadata"]["generation"], 1);
    let m = c
        .merge_patch(&format!("{WIDGETS}/w"), r#"{"status":{"phase":"Nope"},"spec":{"size":3}}"#)
        .await;
    assert_eq!(m["status"]["phase"], "Ready");
    assert_eq!(m["metadata"]["generation"], 2);
    let l = c.merge_patch(&format!("{WIDGETS}/w"), r#"{"metadata":{"labels":{"x":"y"}}}"#).await;
    assert_eq!(l["metadata"]["generation"], 2);
    // SMP is not for custom resources.
    let smp = c
        .patch(
            &format!("{WIDGETS}/w"),
            "application/strategic-merge-patch+json",
            r#"{"spec":{"size":4}}"#,
        )
        .await;
    assert_eq!(smp.status, 415);
    assert_eq!(
        smp.body["message"],
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    );
    // DELETE returns the object for custom resources.
    let d = c.delete(&format!("{WIDGETS}/w")).await;
    assert_eq!(d.status, 200);
    assert_eq!(d.body["kind"], "Widget");
    h.shutdown().await;
}

#[tokio::test]
async fn patch_types_on_deployments() {
    let (h, c) = sim(cfg()).await;
    c.post(DEPLOYS, &deployment("p")).await;
    let path = format!("{DEPLOYS}/p");
    // SMP: annotations merge, containers merge by name, env by name.
    let smp = r#"{"metadata":{"annotations":{"x":"1"}},"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"now"}},"spec":{"containers":[{"name":"web","image":"nginx:1.28","env":[{"name":"B","value":"2"}]}]}}}}"#;
    let r = c.patch(&path, "application/strategic-merge-patch+json", smp).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cs = r.body["spec"]["template"]["spec"]["containers"].as_array().unwrap().clone();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0]["image"], "nginx:1.28");
    assert_eq!(cs[0]["env"], json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]));
    assert_eq!(cs[1]["name"], "side");
    assert_eq!(
        r.body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        "now"
    );
    // SMP $patch: delete on a list element.
    let r = c
        .patch(
            &path,
            "application/strategic-merge-patch+json",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"side","$patch":"delete"}]}}}}"#,
        )
        .await
        .body;
    assert_eq!(r["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(), 1);
    // Merge patch replaces lists.
    let r = c.merge_patch(&path, r#"{"metadata":{"annotations":{"x":null}},"spec":{"template":{"spec":{"containers":[{"name":"only","image":"a:1"}]}}}}"#).await;
    assert!(r["metadata"]["annotations"].get("x").is_none());
    assert_eq!(r["spec"]["template"]["spec"]["containers"][0]["name"], "only");
    // JSON patch.
    let r = c.patch(&path, "application/json-patch+json", r#"[{"op":"replace","path":"/spec/replicas","value":4},{"op":"add","path":"/metadata/labels/j","value":"p"}]"#).await.body;
    assert_eq!(r["spec"]["replicas"], 4);
    assert_eq!(r["metadata"]["labels"]["j"], "p");
    let failed = c
        .patch(
            &path,
            "application/json-patch+json",
            r#"[{"op":"test","path":"/spec/replicas","value":1}]"#,
        )
        .await;
    assert_eq!(failed.status, 422);
    // Patch of a missing object.
    assert_eq!(
        c.patch(&format!("{DEPLOYS}/missing"), "application/merge-patch+json", "{}").await.status,
        404
    );
    // Patch carrying a stale resourceVersion conflicts.
    let stale = c
        .patch(
            &path,
            "application/merge-patch+json",
            r#"{"metadata":{"resourceVersion":"1"},"spec":{"replicas":1}}"#,
        )
        .await;
    assert_eq!(stale.status, 409);
    h.shutdown().await;
}

#[tokio::test]
async fn identical_writes_do_not_bump_resource_version() {
    let (h, c) = sim(cfg()).await;
    c.post(DEPLOYS, &deployment("idem")).await;
    let path = format!("{DEPLOYS}/idem");
    let w = c.watch(&format!("{DEPLOYS}?watch=true")).await;
    let p =
        r#"{"spec":{"template":{"metadata":{"annotations":{"gisops.io/restarted-by":"run-1"}}}}}"#;
    // The Deployment controller writes status while the first patch rolls out, so on a
    // Deployment only the spec side is stable: no new generation, no new template change.
    let a = c.merge_patch(&path, p).await;
    let b = c.merge_patch(&path, p).await;
    assert_eq!(a["metadata"]["generation"], b["metadata"]["generation"]);
    assert_eq!(a["spec"], b["spec"]);
    let s = c.patch(&path, "application/strategic-merge-patch+json", p).await.body;
    assert_eq!(s["metadata"]["generation"], a["metadata"]["generation"]);
    assert_eq!(h.stats().template_changes.get("arcgis/idem").copied(), Some(1));
    drop(w);
    // Watch events: a ConfigMap (no controller writes interleave).
    let cms = "/api/v1/namespaces/arcgis/configmaps";
    let cm = c.post(cms, &json!({"metadata": {"name": "idem"}, "data": {"a": "1"}})).await.body;
    let mut w = c.watch(&format!("{cms}?watch=true&resourceVersion={}", rv(&cm))).await;
    let p = r#"{"data":{"b":"2"}}"#;
    let a = c.merge_patch(&format!("{cms}/idem"), p).await;
    let b = c.patch(&format!("{cms}/idem"), "application/strategic-merge-patch+json", p).await.body;
    assert_eq!(rv(&a), rv(&b));
    let same = c.put(&format!("{cms}/idem"), &b).await.body;
    assert_eq!(rv(&same), rv(&a));
    let marker = c.merge_patch(&format!("{cms}/idem"), r#"{"data":{"c":"3"}}"#).await;
    let first = w.next().await.unwrap();
    assert_eq!((first["type"].as_str(), rv(&first["object"])), (Some("MODIFIED"), rv(&a)));
    let second = w.next().await.unwrap();
    assert_eq!(rv(&second["object"]), rv(&marker), "no event for the no-op writes");
    h.shutdown().await;
}

#[tokio::test]
async fn server_side_apply() {
    let (h, c) = sim(cfg()).await;
    let path = "/api/v1/namespaces/arcgis/configmaps/applied";
    let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  labels:\n    a: one\ndata:\n  k1: v1\n  k2: v2\n";
    let created =
        c.patch(&format!("{path}?fieldManager=alice"), "application/apply-patch+yaml", doc).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let mf = &created.body["metadata"]["managedFields"][0];
    assert_eq!(mf["manager"], "alice");
    assert_eq!(mf["operation"], "Apply");
    assert_eq!(
        mf["fieldsV1"],
        json!({"f:data": {"f:k1": {}, "f:k2": {}}, "f:metadata": {"f:labels": {"f:a": {}}}})
    );
    // Same apply again: no change.
    let again = c
        .patch(&format!("{path}?fieldManager=alice"), "application/apply-patch+yaml", doc)
        .await
        .body;
    assert_eq!(rv(&again), rv(&created.body));
    // Bob conflicts on k1.
    let bob = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  k1: bob\n";
    let conflict =
        c.patch(&format!("{path}?fieldManager=bob"), "application/apply-patch+yaml", bob).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.body["reason"], "Conflict");
    assert_eq!(
        conflict.body["message"],
        "Apply failed with 1 conflict: conflict with \"alice\" using v1: .data.k1"
    );
    assert_eq!(conflict.body["details"]["causes"][0]["field"], ".data.k1");
    // Same value: shared ownership, no conflict.
    let shared = c
        .patch(
            &format!("{path}?fieldManager=carol"),
            "application/apply-patch+yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  k2: v2\n",
        )
        .await;
    assert_eq!(shared.status, 200);
    // Force takes ownership.
    let forced = c
        .patch(&format!("{path}?fieldManager=bob&force=true"), "application/apply-patch+yaml", bob)
        .await;
    assert_eq!(forced.status, 200);
    assert_eq!(forced.body["data"]["k1"], "bob");
    let alice = forced.body["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == "alice")
        .unwrap()
        .clone();
    assert_eq!(alice["fieldsV1"]["f:data"], json!({"f:k2": {}}));
    // Alice drops k2 from her config: still owned by carol, so it stays;
    // she drops the label a: nobody else owns it, so it goes.
    let r = c
        .patch(
            &format!("{path}?fieldManager=alice"),
            "application/apply-patch+yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata: {}\n",
        )
        .await
        .body;
    assert_eq!(r["data"]["k2"], "v2");
    assert!(r["metadata"].get("labels").and_then(|l| l.get("a")).is_none(), "{r}");
    // The emptied `labels` goes with its last label, as the real server prunes a named
    // field its applier stopped naming.
    assert!(r["metadata"].get("labels").is_none(), "{r}");
    // resourceVersion precondition.
    let cur = rv(&r);
    let stale = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  resourceVersion: \"{}\"\ndata:\n  k3: x\n",
        cur - 1
    );
    let s = c
        .patch(&format!("{path}?fieldManager=lease"), "application/apply-patch+yaml", &stale)
        .await;
    assert_eq!(s.status, 409);
    assert!(s.body["message"].as_str().unwrap().contains("the object has been modified"));
    let fresh = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  resourceVersion: \"{cur}\"\ndata:\n  k3: x\n"
    );
    assert_eq!(
        c.patch(&format!("{path}?fieldManager=lease"), "application/apply-patch+yaml", &fresh)
            .await
            .status,
        200
    );
    // A JSON body works too, and Update operations are tracked.
    let u = c.merge_patch(&format!("{path}?fieldManager=editor"), r#"{"data":{"k4":"e"}}"#).await;
    let ed = u["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == "editor")
        .unwrap()
        .clone();
    assert_eq!(ed["operation"], "Update");
    assert_eq!(ed["fieldsV1"], json!({"f:data": {"f:k4": {}}}));
    // Apply on a deployment: containers merge by name.
    c.post(DEPLOYS, &deployment("ssa")).await;
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ssa"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}})
    .to_string();
    let r = c
        .patch(
            &format!("{DEPLOYS}/ssa?fieldManager=op&force=true"),
            "application/apply-patch+yaml",
            &dep,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cs = r.body["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0]["image"], "nginx:2");
    h.shutdown().await;
}

#[tokio::test]
async fn selectors_and_pagination() {
    let (h, c) = sim(SimConfig { deployments: 30, ..cfg() }).await;
    let all = c.get(DEPLOYS).await.body;
    assert_eq!(all["kind"], "DeploymentList");
    assert_eq!(all["items"].as_array().unwrap().len(), 30);
    let first = all["items"][0]["metadata"]["name"].as_str().unwrap().to_string();
    let by_name = c.get(&format!("{DEPLOYS}?fieldSelector=metadata.name%3D{first}")).await.body;
    assert_eq!(by_name["items"].as_array().unwrap().len(), 1);
    let not_name = c.get(&format!("{DEPLOYS}?fieldSelector=metadata.name!%3D{first}")).await.body;
    assert_eq!(not_name["items"].as_array().unwrap().len(), 29);
    let bad_field = c.get(&format!("{DEPLOYS}?fieldSelector=spec.replicas%3D1")).await;
    assert_eq!(bad_field.status, 400);
    let count = |sel: &str| {
        let c = c.clone();
        let sel = sel.to_string();
        async move {
            let r = c.get(&format!("{DEPLOYS}?labelSelector={}", urlenc(&sel))).await;
            assert_eq!(r.status, 200, "{sel}: {}", r.body);
            r.body["items"].as_array().unwrap().len()
        }
    };
    let types: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["labels"]["arcgis/service-type"].as_str().unwrap().to_string())
        .collect();
    let maps = types.iter().filter(|t| *t == "MapServer").count();
    let feats = types.iter().filter(|t| *t == "FeatureServer").count();
    assert_eq!(count("arcgis/service-type=MapServer").await, maps);
    assert_eq!(count("arcgis/service-type==MapServer").await, maps);
    assert_eq!(count("arcgis/service-type!=MapServer").await, 30 - maps);
    assert_eq!(count("arcgis/service-type in (MapServer,FeatureServer)").await, maps + feats);
    assert_eq!(count("arcgis/service-type notin (MapServer)").await, 30 - maps);
    assert_eq!(count("app.kubernetes.io/managed-by").await, 30);
    assert_eq!(count("!app.kubernetes.io/managed-by").await, 0);
    assert_eq!(
        count("app.kubernetes.io/managed-by=arcgis,arcgis/service-type=MapServer").await,
        maps
    );
    let bad = c.get(&format!("{DEPLOYS}?labelSelector={}", urlenc("a in b"))).await;
    assert_eq!(bad.status, 400);
    // Cluster-wide list.
    let cluster = c.get("/apis/apps/v1/deployments").await.body;
    assert_eq!(cluster["items"].as_array().unwrap().len(), 30);
    // Pagination: consistent snapshot even with writes between pages.
    let p1 = c.get(&format!("{DEPLOYS}?limit=12")).await.body;
    assert_eq!(p1["items"].as_array().unwrap().len(), 12);
    assert_eq!(p1["metadata"]["remainingItemCount"], 18);
    let token = p1["metadata"]["continue"].as_str().unwrap().to_string();
    c.post(DEPLOYS, &deployment("aaa-new")).await;
    let p2 = c.get(&format!("{DEPLOYS}?limit=12&continue={token}")).await.body;
    let p3 = c
        .get(&format!(
            "{DEPLOYS}?limit=12&continue={}",
            p2["metadata"]["continue"].as_str().unwrap()
        ))
        .await
        .body;
    assert_eq!(p3["items"].as_array().unwrap().len(), 6);
    assert!(p3["metadata"].get("continue").is_none());
    assert_eq!(p1["metadata"]["resourceVersion"], p3["metadata"]["resourceVersion"]);
    let mut names: Vec<Value> = Vec::new();
    for p in [&p1, &p2, &p3] {
        names.extend(p["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].clone()));
    }
    let want: Vec<Value> =
        all["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].clone()).collect();
    assert_eq!(names, want);
    let garbage = c.get(&format!("{DEPLOYS}?limit=1&continue=%21%21")).await;
    assert_eq!(garbage.status, 400);
    // resourceVersion=0 is the watch cache's answer, which a real server never pages: the
    // whole list, whatever `limit` asked, and no continue token.
    for rv_match in ["", "&resourceVersionMatch=NotOlderThan"] {
        let cached = c.get(&format!("{DEPLOYS}?limit=12&resourceVersion=0{rv_match}")).await.body;
        assert_eq!(cached["items"].as_array().unwrap().len(), 31, "{rv_match}");
        assert!(cached["metadata"].get("continue").is_none());
        assert!(cached["metadata"].get("remainingItemCount").is_none());
    }
    // Any other resourceVersion pages as without one.
    let rv = p3["metadata"]["resourceVersion"].as_str().unwrap();
    let newer = c
        .get(&format!("{DEPLOYS}?limit=12&resourceVersion={rv}&resourceVersionMatch=NotOlderThan"))
        .await
        .body;
    assert_eq!(newer["items"].as_array().unwrap().len(), 12);
    assert!(newer["metadata"]["continue"].is_string());
    h.shutdown().await;
}

#[tokio::test]
async fn expired_continue_token_is_410() {
    let (h, c) = sim(SimConfig { deployments: 10, event_window: 5, ..cfg() }).await;
    let p1 = c.get(&format!("{DEPLOYS}?limit=3")).await.body;
    let token = p1["metadata"]["continue"].as_str().unwrap().to_string();
    for i in 0..8 {
        c.post(
            "/api/v1/namespaces/arcgis/configmaps",
            &json!({"metadata": {"name": format!("c{i}")}}),
        )
        .await;
    }
    let r = c.get(&format!("{DEPLOYS}?limit=3&continue={token}")).await;
    assert_eq!(r.status, 410);
    assert_eq!(r.body["reason"], "Expired");
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("The provided continue parameter is too old")
    );
    h.shutdown().await;
}

fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn namespaces_lifecycle_and_delete_semantics() {
    let (h, c) = sim(cfg()).await;
    let ns = c.post("/api/v1/namespaces", &json!({"metadata": {"name": "team"}})).await.body;
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    c.post("/api/v1/namespaces/team/configmaps", &json!({"metadata": {"name": "x"}})).await;
    // Finalizers hold a deletion.
    let cm = c
        .post(
            "/api/v1/namespaces/arcgis/configmaps",
            &json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
        )
        .await
        .body;
    let d = c.delete("/api/v1/namespaces/arcgis/configmaps/held").await;
    // 200 with the object: only `orphanDependents: false` gets a 202.
    assert_eq!(d.status, 200);
    assert!(d.body["metadata"]["deletionTimestamp"].is_string());
    assert!(rv(&d.body) > rv(&cm));
    let rel = c
        .patch(
            "/api/v1/namespaces/arcgis/configmaps/held",
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":null}}"#,
        )
        .await;
    assert_eq!(rel.status, 200);
    assert_eq!(c.get("/api/v1/namespaces/arcgis/configmaps/held").await.status, 404);
    // Namespace deletion removes content, then the namespace.
    let del = c.delete("/api/v1/namespaces/team").await;
    assert_eq!(del.status, 200);
    assert_eq!(del.body["status"]["phase"], "Terminating");
    eventually("the namespace gone", || async {
        (c.get("/api/v1/namespaces/team").await.status == 404).then_some(())
    })
    .await;
    assert_eq!(c.get("/api/v1/namespaces/team/configmaps/x").await.status, 404);
    assert_eq!(
        c.post("/api/v1/namespaces/team/configmaps", &json!({"metadata": {"name": "y"}}))
            .await
            .status,
        404
    );
    // Dry run does not persist.
    let dry = c
        .send(
            "POST",
            "/api/v1/namespaces/arcgis/configmaps?dryRun=All",
            "application/json",
            Some(json!({"metadata": {"name": "dry"}}).to_string()),
        )
        .await;
    assert_eq!(dry.status, 201);
    assert_eq!(c.get("/api/v1/namespaces/arcgis/configmaps/dry").await.status, 404);
    // Leases, events in both groups.
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "leader"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}});
    assert_eq!(
        c.post("/apis/coordination.k8s.io/v1/namespaces/arcgis/leases", &lease).await.status,
        201
    );
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "x", "reportingInstance": "y",
        "action": "Restart", "reason": "Restarted", "type": "Normal", "note": "hello",
        "regarding": {"kind": "Deployment", "name": "d", "namespace": "arcgis"}});
    assert_eq!(c.post("/apis/events.k8s.io/v1/namespaces/arcgis/events", &ev).await.status, 201);
    h.shutdown().await;
}

#[tokio::test]
async fn request_counters_and_stats_endpoint() {
    let (h, c) = sim(cfg()).await;
    h.reset_stats();
    c.get(DEPLOYS).await;
    c.get(DEPLOYS).await;
    c.post(DEPLOYS, &deployment("s")).await;
    c.patch(&format!("{DEPLOYS}/s/status"), "application/merge-patch+json", "{}").await;
    let s = h.stats();
    assert_eq!(s.requests.get("list deployments"), Some(&2));
    assert_eq!(s.requests.get("create deployments"), Some(&1));
    assert_eq!(s.requests.get("patch deployments/status"), Some(&1));
    let web = c.get("/sim/v1/stats").await.body;
    assert_eq!(web["requests"]["list deployments"], 2);
    h.shutdown().await;
}

#[tokio::test]
async fn fault_injection() {
    let (h, c) = sim(cfg()).await;
    let r = c
        .send(
            "POST",
            "/sim/v1/faults",
            "application/json",
            Some(r#"{"write_error_rate": 1.0}"#.into()),
        )
        .await;
    assert_eq!(r.status, 200);
    let mut codes = std::collections::BTreeSet::new();
    for i in 0..20 {
        let r = c
            .post(
                "/api/v1/namespaces/arcgis/configmaps",
                &json!({"metadata": {"name": format!("f{i}")}}),
            )
            .await;
        // 429 comes from the priority and fairness filter, in plain text.
        if r.status != 429 {
            assert_eq!(r.body["kind"], "Status");
        }
        codes.insert(r.status);
    }
    assert_eq!(codes, [429u16, 500, 504].into_iter().collect());
    // Reads are unaffected.
    assert_eq!(c.get(DEPLOYS).await.status, 200);
    h.set_faults(servicerefresh_sim::FaultConfig {
        watch_drop_every_ms: Some(100),
        ..Default::default()
    });
    let mut w = c.watch(&format!("{DEPLOYS}?watch=1")).await;
    // The initial ADDED events, then the stream ends on its own.
    let mut n = 0;
    while let Some(ev) = w.next().await {
        assert_eq!(ev["type"], "ADDED");
        n += 1;
    }
    assert_eq!(n, 5);
    h.set_faults(Default::default());
    assert_eq!(
        c.post("/api/v1/namespaces/arcgis/configmaps", &json!({"metadata": {"name": "ok"}}))
            .await
            .status,
        201
    );
    h.shutdown().await;
}

#[tokio::test]
async fn events_share_storage_across_groups() {
    let (h, c) = sim(cfg()).await;
    let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "d.17a"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "gisops.io/servicerefresh",
        "reportingInstance": "op-1", "action": "Restart", "reason": "BatchStarted", "type": "Normal",
        "note": "batch 1/3 started", "regarding": {"kind": "ServiceRefresh", "name": "nightly", "namespace": "arcgis"}});
    let created = c.post("/apis/events.k8s.io/v1/namespaces/arcgis/events", &ev).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["note"], "batch 1/3 started");
    let core = c
        .get("/api/v1/namespaces/arcgis/events?fieldSelector=involvedObject.name%3Dnightly,involvedObject.kind%3DServiceRefresh")
        .await
        .body;
    let items = core["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["message"], "batch 1/3 started");
    assert_eq!(items[0]["involvedObject"]["name"], "nightly");
    assert_eq!(items[0]["reportingComponent"], "gisops.io/servicerefresh");
    let v1 = c.get("/apis/events.k8s.io/v1/namespaces/arcgis/events?fieldSelector=regarding.name%3Dnightly").await.body;
    assert_eq!(v1["items"][0]["regarding"]["name"], "nightly");
    let patched = c
        .patch(
            "/apis/events.k8s.io/v1/namespaces/arcgis/events/d.17a",
            "application/merge-patch+json",
            r#"{"series":{"count":2,"lastObservedTime":"2026-01-01T00:00:01.000000Z"}}"#,
        )
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.body["series"]["count"], 2);
    assert_eq!(patched.body["note"], "batch 1/3 started");
    h.shutdown().await;
}

#[tokio::test]
async fn scale_subresource() {
    let (h, c) = sim(cfg()).await;
    c.post(DEPLOYS, &deployment("sc")).await;
    let s = c.get(&format!("{DEPLOYS}/sc/scale")).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.body["kind"], "Scale");
    assert_eq!(s.body["apiVersion"], "autoscaling/v1");
    assert_eq!(s.body["spec"]["replicas"], 2);
    assert_eq!(s.body["status"]["selector"], "app=sc");
    let p = c
        .patch(
            &format!("{DEPLOYS}/sc/scale"),
            "application/merge-patch+json",
            r#"{"spec":{"replicas":5}}"#,
        )
        .await;
    assert_eq!(p.status, 200);
    assert_eq!(p.body["spec"]["replicas"], 5);
    let d = c.get(&format!("{DEPLOYS}/sc")).await.body;
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(d["metadata"]["generation"], 2);
    let mut stale = p.body.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    assert_eq!(c.put(&format!("{DEPLOYS}/sc/scale"), &stale).await.status, 409);
    let apps = c.get("/apis/apps/v1").await.body;
    let scale = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "deployments/scale")
        .cloned()
        .unwrap();
    assert_eq!(scale["group"], "autoscaling");
    h.shutdown().await;
}

#[tokio::test]
async fn finalizer_json_patches_like_kube_runtime() {
    let (h, c) = sim(cfg()).await;
    assert_eq!(c.create_widget_crd().await, 201);
    let w = json!({"apiVersion": "example.sim.io/v1", "kind": "Widget", "metadata": {"name": "f"}, "spec": {"size": 1}});
    c.post(WIDGETS, &w).await;
    let path = format!("{WIDGETS}/f");
    let add = r#"[{"op":"test","path":"/metadata/finalizers","value":null},{"op":"add","path":"/metadata/finalizers","value":["gisops.io/cleanup"]}]"#;
    let r = c.patch(&path, "application/json-patch+json", add).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["metadata"]["finalizers"], json!(["gisops.io/cleanup"]));
    assert_eq!(c.patch(&path, "application/json-patch+json", add).await.status, 422);
    let d = c.delete(&path).await;
    assert_eq!(d.status, 200);
    assert!(d.body["metadata"]["deletionTimestamp"].is_string());
    let remove = r#"[{"op":"test","path":"/metadata/finalizers/0","value":"gisops.io/cleanup"},{"op":"remove","path":"/metadata/finalizers/0"}]"#;
    let r = c.patch(&path, "application/json-patch+json", remove).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(c.get(&path).await.status, 404);
    h.shutdown().await;
}
