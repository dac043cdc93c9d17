//! The StatefulSet and DaemonSet controllers through the API: the objects
//! they make (pods with their identity and revision, ControllerRevisions
//! with the template patch), OnDelete, maxUnavailable, scaling, node
//! selectors, the failure knob, garbage collection, validation, and the
//! generated fleet's StatefulSets and DaemonSets (settled, labelled like
//! its Deployments, failing ones drawn among every kind).

mod common;

use std::collections::BTreeMap;

use common::{RawHttpClient, eventually, sim};
use serde_json::{Value, json};
use servicerefresh_sim::SimConfig;

const NS: &str = "apps";
const SETS: &str = "/apis/apps/v1/namespaces/apps/statefulsets";
const DAEMONS: &str = "/apis/apps/v1/namespaces/apps/daemonsets";
const REVISIONS: &str = "/apis/apps/v1/namespaces/apps/controllerrevisions";
/// What `kubectl rollout restart` sends.
const RESTART: &str = r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"now"}}}}}"#;

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn stateful_set(name: &str, replicas: u64, strategy: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "annotations": {"team": "gis"}},
        "spec": {
            "replicas": replicas, "serviceName": format!("{name}-headless"),
            "selector": {"matchLabels": {"app": name}},
            "updateStrategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "db", "image": "postgres:16"}]},
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        },
    })
}

fn daemon_set(name: &str, node_selector: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"nodeSelector": node_selector, "containers": [{"name": "agent", "image": "busybox:1.36"}]},
            },
        },
    })
}

async fn setup() -> (servicerefresh_sim::SimHandle, RawHttpClient) {
    let (h, c) = sim(SimConfig { rollout_ms: 150, ..Default::default() }).await;
    let created = c.post("/api/v1/namespaces", &json!({"metadata": {"name": NS}})).await;
    assert_eq!(created.status, 201);
    (h, c)
}

async fn create(c: &RawHttpClient, path: &str, object: &Value) -> Value {
    let created = c.post(path, object).await;
    assert_eq!(created.status, 201, "{}", created.body);
    created.body
}

/// Waits until the workload at `path` satisfies `done`; the object.
async fn until(c: &RawHttpClient, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually(what, || async {
        let object = c.get(path).await.body;
        done(&object).then_some(object)
    })
    .await
}

fn rolled_out(set: &Value) -> bool {
    let status = &set["status"];
    status["observedGeneration"] == set["metadata"]["generation"]
        && status["currentRevision"] == status["updateRevision"]
        && status["readyReplicas"] == set["spec"]["replicas"]
        && status["updatedReplicas"] == set["spec"]["replicas"]
}

fn daemon_rolled_out(daemon: &Value) -> bool {
    let status = &daemon["status"];
    status["observedGeneration"] == daemon["metadata"]["generation"]
        && status["updatedNumberScheduled"] == status["desiredNumberScheduled"]
        && status["numberAvailable"] == status["desiredNumberScheduled"]
}

async fn pods(c: &RawHttpClient, selector: &str) -> Vec<Value> {
    items(&c.get(&format!("/api/v1/namespaces/{NS}/pods?labelSelector={selector}")).await.body)
}

/// Pod name → (revision label, ready).
async fn pod_states(c: &RawHttpClient, selector: &str) -> BTreeMap<String, (String, bool)> {
    pods(c, selector)
        .await
        .iter()
        .map(|pod| {
            let ready = pod["status"]["conditions"].as_array().is_some_and(|conditions| {
                conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            let revision = pod["metadata"]["labels"]["controller-revision-hash"].as_str();
            (
                pod["metadata"]["name"].as_str().unwrap_or("").to_owned(),
                (revision.unwrap_or("").to_owned(), ready),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_pods_and_revisions_are_made_as_the_real_controller_makes_them() {
    let (h, c) = setup().await;
    let created = create(&c, SETS, &stateful_set("db", 2, json!(null))).await;
    assert_eq!(
        created["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(created["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(created["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        created["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    let set = until(&c, &format!("{SETS}/db"), "db rolled out", rolled_out).await;
    let revision = set["status"]["currentRevision"].as_str().unwrap_or("").to_owned();
    assert!(revision.starts_with("db-"), "{set}");
    assert_eq!(set["status"]["collisionCount"], 0);
    assert_eq!(set["status"]["availableReplicas"], 2);
    assert_eq!(set["status"]["currentReplicas"], 2);

    let revisions = items(&c.get(REVISIONS).await.body);
    assert_eq!(revisions.len(), 1);
    let cr = &revisions[0];
    assert_eq!(cr["metadata"]["name"], revision.as_str());
    assert_eq!(cr["revision"], 1);
    let hash = revision.trim_start_matches("db-");
    assert_eq!(
        cr["metadata"]["labels"],
        json!({"app": "db", "controller.kubernetes.io/hash": hash})
    );
    assert_eq!(cr["metadata"]["annotations"]["team"], "gis", "the set's annotations");
    let owner = &cr["metadata"]["ownerReferences"][0];
    assert_eq!(
        (
            &owner["kind"],
            &owner["name"],
            &owner["uid"],
            &owner["controller"],
            &owner["blockOwnerDeletion"]
        ),
        (&json!("StatefulSet"), &json!("db"), &set["metadata"]["uid"], &json!(true), &json!(true))
    );
    let template = &cr["data"]["spec"]["template"];
    assert_eq!(template["$patch"], "replace");
    assert_eq!(template["metadata"], json!({"creationTimestamp": null, "labels": {"app": "db"}}));
    assert_eq!(template["spec"]["containers"][0]["image"], "postgres:16");
    assert_eq!(template["spec"]["containers"][0]["resources"], json!({}));
    assert_eq!(cr["data"].as_object().map(|data| data.len()), Some(1), "only spec.template");

    let made = pods(&c, "app=db").await;
    let mut names: Vec<&str> =
        made.iter().filter_map(|pod| pod["metadata"]["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["db-0", "db-1"]);
    let pod = made.iter().find(|pod| pod["metadata"]["name"] == "db-1").expect("db-1");
    assert_eq!(
        pod["metadata"]["labels"],
        json!({
            "app": "db", "controller-revision-hash": revision,
            "statefulset.kubernetes.io/pod-name": "db-1", "apps.kubernetes.io/pod-index": "1",
        })
    );
    assert_eq!(pod["metadata"]["generateName"], "db-");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
    assert_eq!(pod["spec"]["hostname"], "db-1");
    assert_eq!(pod["spec"]["subdomain"], "db-headless");
    assert_eq!(
        pod["spec"]["volumes"],
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-1"}}])
    );
    assert_eq!(pod["status"]["phase"], "Running");
    assert!(pod["spec"]["nodeName"].as_str().is_some_and(|node| node.starts_with("sim-worker-")));

    // The events, in order.
    let events = items(
        &c.get(&format!("/api/v1/namespaces/{NS}/events?fieldSelector=involvedObject.name%3Ddb"))
            .await
            .body,
    );
    let messages: Vec<&str> = events.iter().filter_map(|event| event["message"].as_str()).collect();
    assert_eq!(
        messages,
        [
            "create Pod db-0 in StatefulSet db successful",
            "create Pod db-1 in StatefulSet db successful"
        ]
    );
    assert!(events.iter().all(|event| event["source"]["component"] == "statefulset-controller"
        && event["reason"] == "SuccessfulCreate"));

    // A restart makes revision 2 and replaces every pod, highest first.
    c.patch(&format!("{SETS}/db"), "application/strategic-merge-patch+json", RESTART).await;
    let set = until(&c, &format!("{SETS}/db"), "db restarted", |set| {
        set["metadata"]["generation"] == 2 && rolled_out(set)
    })
    .await;
    let update = set["status"]["updateRevision"].as_str().unwrap_or("").to_owned();
    assert_ne!(update, revision);
    let states = pod_states(&c, "app=db").await;
    assert!(
        states.values().all(|(pod_revision, ready)| *pod_revision == update && *ready),
        "{states:?}"
    );
    let events = items(
        &c.get(&format!("/api/v1/namespaces/{NS}/events?fieldSelector=involvedObject.name%3Ddb"))
            .await
            .body,
    );
    let messages: Vec<&str> =
        events.iter().skip(2).filter_map(|event| event["message"].as_str()).collect();
    assert_eq!(
        messages,
        [
            "delete Pod db-1 in StatefulSet db successful",
            "create Pod db-1 in StatefulSet db successful",
            "delete Pod db-0 in StatefulSet db successful",
            "create Pod db-0 in StatefulSet db successful",
        ]
    );

    // Deleting the set takes its pods and revisions with it.
    assert_eq!(c.delete(&format!("{SETS}/db")).await.status, 200);
    eventually("pods and revisions collected", || async {
        let left = pods(&c, "app=db").await.len() + items(&c.get(REVISIONS).await.body).len();
        (left == 0).then_some(())
    })
    .await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_replaces_only_the_pods_that_are_deleted() {
    let (h, c) = setup().await;
    create(&c, SETS, &stateful_set("od", 3, json!({"type": "OnDelete"}))).await;
    let set = until(&c, &format!("{SETS}/od"), "od rolled out", rolled_out).await;
    let old = set["status"]["currentRevision"].as_str().unwrap_or("").to_owned();
    let before = pod_states(&c, "app=od").await;
    c.patch(&format!("{SETS}/od"), "application/strategic-merge-patch+json", RESTART).await;
    let set = until(&c, &format!("{SETS}/od"), "the new revision", |set| {
        set["status"]["observedGeneration"] == 2
    })
    .await;
    let new = set["status"]["updateRevision"].as_str().unwrap_or("").to_owned();
    assert_ne!(new, old);
    assert_eq!(set["status"]["currentRevision"], old.as_str());
    assert_eq!(set["status"].get("updatedReplicas"), None, "no pod replaced: {set}");
    assert_eq!(pod_states(&c, "app=od").await, before);
    assert_eq!(items(&c.get(REVISIONS).await.body).len(), 2);

    assert_eq!(c.delete(&format!("/api/v1/namespaces/{NS}/pods/od-1")).await.status, 200);
    let set = until(&c, &format!("{SETS}/od"), "od-1 back", |set| {
        set["status"]["readyReplicas"] == 3 && set["status"]["updatedReplicas"] == 1
    })
    .await;
    let states = pod_states(&c, "app=od").await;
    assert_eq!(states["od-1"], (new.clone(), true));
    assert_eq!(states["od-0"], (old.clone(), true));
    assert_eq!(states["od-2"], (old.clone(), true));
    assert_eq!(set["status"]["currentReplicas"], 2);
    assert_eq!(
        set["status"]["currentRevision"],
        old.as_str(),
        "OnDelete never completes by itself"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_unavailable_takes_down_that_many_pods_and_a_failing_revision_stalls() {
    let (h, c) = setup().await;
    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 2}});
    let mut parallel = stateful_set("par", 4, strategy.clone());
    parallel["spec"]["podManagementPolicy"] = json!("Parallel");
    create(&c, SETS, &parallel).await;
    create(&c, SETS, &stateful_set("ord", 4, strategy)).await;
    for name in ["par", "ord"] {
        let set = until(&c, &format!("{SETS}/{name}"), "rolled out", rolled_out).await;
        assert_eq!(set["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"], 2, "kept");
        // The next revision's pods never get ready.
        let patch = json!({
            "metadata": {"annotations": {"sim.gisops.io/fail": "true"}},
            "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}},
        });
        c.merge_patch(&format!("{SETS}/{name}"), &patch.to_string()).await;
    }
    // Parallel: the two highest are replaced together and stay unready.
    let set = until(&c, &format!("{SETS}/par"), "par stalled", |set| {
        set["status"]["updatedReplicas"] == 2 && set["status"]["replicas"] == 4
    })
    .await;
    let (old, new) = (
        set["status"]["currentRevision"].as_str().unwrap_or(""),
        set["status"]["updateRevision"].as_str().unwrap_or(""),
    );
    let states = pod_states(&c, "app=par").await;
    assert_eq!(
        states,
        BTreeMap::from([
            ("par-0".to_owned(), (old.to_owned(), true)),
            ("par-1".to_owned(), (old.to_owned(), true)),
            ("par-2".to_owned(), (new.to_owned(), false)),
            ("par-3".to_owned(), (new.to_owned(), false)),
        ])
    );
    assert_eq!(set["status"]["readyReplicas"], 2);
    // OrderedReady: both go, but the lower comes back first and, never
    // ready, holds the other back.
    let set = until(&c, &format!("{SETS}/ord"), "ord stalled", |set| {
        set["status"]["updatedReplicas"] == 1 && set["status"]["replicas"] == 3
    })
    .await;
    let states = pod_states(&c, "app=ord").await;
    let new = set["status"]["updateRevision"].as_str().unwrap_or("");
    assert_eq!(states.len(), 3, "{states:?}");
    assert_eq!(states["ord-2"], (new.to_owned(), false));
    assert!(states["ord-0"].1 && states["ord-1"].1);
    // A stalled rollout stays stalled: the pods are the same a sync later.
    c.patch(
        &format!("{SETS}/ord"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"poke":"1"}}}"#,
    )
    .await;
    until(&c, &format!("{SETS}/ord"), "the poke seen", |set| {
        set["metadata"]["labels"]["poke"] == "1"
    })
    .await;
    assert_eq!(pod_states(&c, "app=ord").await, states);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_adds_and_removes_the_highest_ordinals_in_order() {
    let (h, c) = setup().await;
    create(&c, SETS, &stateful_set("sc", 2, json!(null))).await;
    until(&c, &format!("{SETS}/sc"), "sc rolled out", rolled_out).await;
    let scaled = c
        .patch(
            &format!("{SETS}/sc/scale"),
            "application/merge-patch+json",
            r#"{"spec":{"replicas":4}}"#,
        )
        .await;
    assert_eq!(scaled.status, 200, "{}", scaled.body);
    assert_eq!(scaled.body["kind"], "Scale");
    until(&c, &format!("{SETS}/sc"), "4 ready", |set| {
        rolled_out(set) && set["status"]["replicas"] == 4
    })
    .await;
    c.patch(
        &format!("{SETS}/sc/scale"),
        "application/merge-patch+json",
        r#"{"spec":{"replicas":1}}"#,
    )
    .await;
    until(&c, &format!("{SETS}/sc"), "1 left", |set| {
        rolled_out(set) && set["status"]["replicas"] == 1
    })
    .await;
    assert_eq!(pod_states(&c, "app=sc").await.keys().collect::<Vec<_>>(), ["sc-0"]);
    let events = items(
        &c.get(&format!("/api/v1/namespaces/{NS}/events?fieldSelector=involvedObject.name%3Dsc"))
            .await
            .body,
    );
    let messages: Vec<&str> = events.iter().filter_map(|event| event["message"].as_str()).collect();
    assert_eq!(
        messages[2..],
        [
            "create Pod sc-2 in StatefulSet sc successful",
            "create Pod sc-3 in StatefulSet sc successful",
            "delete Pod sc-3 in StatefulSet sc successful",
            "delete Pod sc-2 in StatefulSet sc successful",
            "delete Pod sc-1 in StatefulSet sc successful",
        ]
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonsets_run_one_pod_per_matching_node() {
    let (h, c) = setup().await;
    let created =
        create(&c, DAEMONS, &daemon_set("all", json!({"kubernetes.io/os": "linux"}))).await;
    assert_eq!(
        created["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(created["metadata"]["annotations"]["deprecated.daemonset.template.generation"], "1");
    create(&c, DAEMONS, &daemon_set("one", json!({"kubernetes.io/hostname": "sim-worker-2"})))
        .await;
    create(&c, DAEMONS, &daemon_set("none", json!({"kubernetes.io/os": "windows"}))).await;
    let all = until(&c, &format!("{DAEMONS}/all"), "all rolled out", daemon_rolled_out).await;
    assert_eq!(
        all["status"],
        json!({
            "observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
            "numberMisscheduled": 0, "numberReady": 3, "updatedNumberScheduled": 3, "numberAvailable": 3,
        })
    );
    let one = until(&c, &format!("{DAEMONS}/one"), "one rolled out", daemon_rolled_out).await;
    assert_eq!(one["status"]["desiredNumberScheduled"], 1);
    let none = until(&c, &format!("{DAEMONS}/none"), "none observed", |ds| {
        ds["status"]["observedGeneration"] == 1
    })
    .await;
    assert_eq!(
        none["status"],
        json!({"observedGeneration": 1, "desiredNumberScheduled": 0, "currentNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0})
    );
    assert!(pods(&c, "app=none").await.is_empty());

    let mut nodes: Vec<String> = pods(&c, "app=all")
        .await
        .iter()
        .filter_map(|pod| pod["spec"]["nodeName"].as_str().map(String::from))
        .collect();
    nodes.sort();
    assert_eq!(nodes, ["sim-worker-1", "sim-worker-2", "sim-worker-3"]);
    let pod = pods(&c, "app=one").await.pop().expect("one pod");
    assert_eq!(pod["spec"]["nodeName"], "sim-worker-2");
    assert!(
        pod["metadata"]["name"]
            .as_str()
            .is_some_and(|name| name.starts_with("one-") && name.len() == 9)
    );
    assert_eq!(
        pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
        json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["sim-worker-2"]}]}]})
    );
    let tolerations: Vec<&str> = pod["spec"]["tolerations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["key"].as_str())
        .collect();
    assert_eq!(
        tolerations,
        [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
            "node.kubernetes.io/disk-pressure",
            "node.kubernetes.io/memory-pressure",
            "node.kubernetes.io/pid-pressure",
            "node.kubernetes.io/unschedulable",
        ]
    );
    let revision = items(&c.get(&format!("{REVISIONS}?labelSelector=app%3Done")).await.body)
        .pop()
        .expect("a revision");
    let hash = revision["metadata"]["labels"]["controller-revision-hash"].as_str().unwrap_or("");
    assert_eq!(revision["metadata"]["name"], format!("one-{hash}"));
    assert_eq!(pod["metadata"]["labels"]["controller-revision-hash"], hash);
    assert_eq!(pod["metadata"]["labels"]["pod-template-generation"], "1");
    assert_eq!(revision["revision"], 1);

    // A deleted pod comes back on its node; a restart bumps the template
    // generation and replaces the pod.
    let name = pod["metadata"]["name"].as_str().unwrap_or("");
    c.delete(&format!("/api/v1/namespaces/{NS}/pods/{name}")).await;
    eventually("a new pod on the node", || async {
        let states = pod_states(&c, "app=one").await;
        let (name, (_, ready)) = states.into_iter().next()?;
        (ready && name != pod["metadata"]["name"]).then_some(name)
    })
    .await;
    let back = pods(&c, "app=one").await.pop().expect("one pod");
    assert_eq!(back["spec"]["nodeName"], "sim-worker-2");
    c.patch(&format!("{DAEMONS}/one"), "application/strategic-merge-patch+json", RESTART).await;
    let one = until(&c, &format!("{DAEMONS}/one"), "one restarted", |ds| {
        ds["metadata"]["generation"] == 2 && daemon_rolled_out(ds)
    })
    .await;
    assert_eq!(one["metadata"]["annotations"]["deprecated.daemonset.template.generation"], "2");
    let restarted = pods(&c, "app=one").await.pop().expect("one pod");
    assert_eq!(restarted["metadata"]["labels"]["pod-template-generation"], "2");
    assert_eq!(items(&c.get(&format!("{REVISIONS}?labelSelector=app%3Done")).await.body).len(), 2);
    let messages: Vec<String> = items(
        &c.get(&format!("/api/v1/namespaces/{NS}/events?fieldSelector=involvedObject.name%3Done"))
            .await
            .body,
    )
    .iter()
    .map(|event| {
        format!(
            "{} {}",
            event["reason"].as_str().unwrap_or(""),
            event["message"].as_str().unwrap_or("")
        )
    })
    .collect();
    // The pod deleted by hand has no Event of the controller's.
    let back_name = back["metadata"]["name"].as_str().unwrap_or("");
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert!(messages[0].starts_with("SuccessfulCreate Created pod: one-"), "{messages:?}");
    assert_eq!(messages[1], format!("SuccessfulCreate Created pod: {back_name}"));
    assert_eq!(messages[2], format!("SuccessfulDelete Deleted pod: {back_name}"));
    assert_eq!(
        messages[3],
        format!(
            "SuccessfulCreate Created pod: {}",
            restarted["metadata"]["name"].as_str().unwrap_or("")
        )
    );
    h.shutdown().await;
}

#[tokio::test]
async fn invalid_workloads_are_refused_with_the_real_messages() {
    let (h, c) = setup().await;
    let mut bad = stateful_set("bad", 1, json!(null));
    bad["spec"]["podManagementPolicy"] = json!("Sometimes");
    let refused = c.post(SETS, &bad).await;
    assert_eq!(refused.status, 422);
    assert_eq!(
        refused.body["message"],
        r#"StatefulSet.apps "bad" is invalid: spec.podManagementPolicy: Invalid value: "Sometimes": must be 'OrderedReady' or 'Parallel'"#
    );
    create(&c, SETS, &stateful_set("ok", 1, json!(null))).await;
    let changed = c.merge_patch(&format!("{SETS}/ok"), r#"{"spec":{"serviceName":"other"}}"#).await;
    assert_eq!(
        changed["message"],
        r#"StatefulSet.apps "ok" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"#
    );
    let mut surging = daemon_set("surging", json!({}));
    surging["spec"]["updateStrategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}});
    let refused = c.post(DAEMONS, &surging).await;
    assert_eq!(
        refused.body["message"],
        r#"DaemonSet.apps "surging" is invalid: spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:""}: may not be set when maxUnavailable is non-zero"#
    );
    create(&c, DAEMONS, &daemon_set("fixed", json!({}))).await;
    let moved = c.merge_patch(&format!("{DAEMONS}/fixed"), r#"{"spec":{"selector":{"matchLabels":{"app":"fixed","x":"y"}},"template":{"metadata":{"labels":{"x":"y"}}}}}"#).await;
    assert!(
        moved["message"]
            .as_str()
            .is_some_and(|message| message.contains("spec.selector: Invalid value")
                && message.ends_with("field is immutable")),
        "{moved}"
    );
    let mut upper = stateful_set("Upper", 1, json!(null));
    upper["metadata"]["name"] = json!("Upper");
    assert_eq!(c.post(SETS, &upper).await.status, 422, "StatefulSet names are DNS labels");
    h.shutdown().await;
}

/// The generated workloads of a kind, by name.
async fn generated(c: &RawHttpClient, plural: &str) -> Vec<Value> {
    items(&c.get(&format!("/apis/apps/v1/namespaces/arcgis/{plural}?labelSelector=app.kubernetes.io%2Fmanaged-by%3Darcgis")).await.body)
}

fn failing(objects: &[Value]) -> usize {
    objects
        .iter()
        .filter(|object| object["metadata"]["annotations"]["sim.gisops.io/fail"] == "true")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_fleet_has_settled_statefulsets_and_daemonsets_labelled_like_its_deployments()
{
    let config = SimConfig {
        deployments: 3,
        stateful_sets: 4,
        daemon_sets: 2,
        rollout_ms: 150,
        ..Default::default()
    };
    let (h, c) = sim(config).await;
    let deployments = generated(&c, "deployments").await;
    let sets = generated(&c, "statefulsets").await;
    let daemons = generated(&c, "daemonsets").await;
    assert_eq!((deployments.len(), sets.len(), daemons.len()), (3, 4, 2));
    let label_keys = |object: &Value| -> Vec<String> {
        object["metadata"]["labels"]
            .as_object()
            .map(|labels| labels.keys().cloned().collect())
            .unwrap_or_default()
    };
    for object in sets.iter().chain(&daemons) {
        assert_eq!(label_keys(object), label_keys(&deployments[0]), "{object}");
        assert_eq!(object["metadata"]["labels"]["app.kubernetes.io/part-of"], "arcgis-enterprise");
        assert_eq!(object["metadata"]["generation"], 1);
    }
    for set in &sets {
        let name = set["metadata"]["name"].as_str().unwrap_or("");
        assert!(name.starts_with("arcgis-") && name.contains("-store-"), "{name}");
        assert!(rolled_out(set), "settled: {set}");
        let replicas = set["spec"]["replicas"].as_u64().unwrap_or(0);
        assert!((1..=3).contains(&replicas));
        let selector = format!("app.kubernetes.io%2Fname%3D{name}");
        let states = pod_states_in(&c, "arcgis", &selector).await;
        assert_eq!(states.len() as u64, replicas);
        assert!(states.values().all(|(revision, ready)| *ready
            && revision == set["status"]["currentRevision"].as_str().unwrap_or("")));
    }
    for daemon in &daemons {
        assert!(daemon_rolled_out(daemon), "settled: {daemon}");
        assert_eq!(daemon["status"]["desiredNumberScheduled"], 3);
        let name = daemon["metadata"]["name"].as_str().unwrap_or("");
        let states =
            pod_states_in(&c, "arcgis", &format!("app.kubernetes.io%2Fname%3D{name}")).await;
        assert_eq!(states.len(), 3);
    }
    let revisions = items(&c.get("/apis/apps/v1/namespaces/arcgis/controllerrevisions").await.body);
    assert_eq!(revisions.len(), 6);
    assert!(revisions.iter().all(|revision| revision["revision"] == 1));
    let events = items(&c.get("/api/v1/namespaces/arcgis/events").await.body);
    assert!(events.is_empty(), "settled long ago, no Events: {events:?}");

    // A generated StatefulSet and DaemonSet roll out when restarted.
    let set = sets[0]["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let daemon = daemons[0]["metadata"]["name"].as_str().unwrap_or("").to_owned();
    c.patch(
        &format!("/apis/apps/v1/namespaces/arcgis/statefulsets/{set}"),
        "application/strategic-merge-patch+json",
        RESTART,
    )
    .await;
    c.patch(
        &format!("/apis/apps/v1/namespaces/arcgis/daemonsets/{daemon}"),
        "application/strategic-merge-patch+json",
        RESTART,
    )
    .await;
    until(
        &c,
        &format!("/apis/apps/v1/namespaces/arcgis/statefulsets/{set}"),
        "set restarted",
        |s| s["metadata"]["generation"] == 2 && rolled_out(s),
    )
    .await;
    until(
        &c,
        &format!("/apis/apps/v1/namespaces/arcgis/daemonsets/{daemon}"),
        "daemon restarted",
        |d| d["metadata"]["generation"] == 2 && daemon_rolled_out(d),
    )
    .await;
    h.shutdown().await;
}

async fn pod_states_in(
    c: &RawHttpClient,
    ns: &str,
    selector: &str,
) -> BTreeMap<String, (String, bool)> {
    items(&c.get(&format!("/api/v1/namespaces/{ns}/pods?labelSelector={selector}")).await.body)
        .iter()
        .map(|pod| {
            let ready = pod["status"]["conditions"].as_array().is_some_and(|conditions| {
                conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            let revision =
                pod["metadata"]["labels"]["controller-revision-hash"].as_str().unwrap_or("");
            (
                pod["metadata"]["name"].as_str().unwrap_or("").to_owned(),
                (revision.to_owned(), ready),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_workloads_are_drawn_among_every_kind_and_never_finish_their_rollout() {
    // Every workload failing: each kind gets the knob.
    let all = SimConfig {
        deployments: 2,
        stateful_sets: 2,
        daemon_sets: 2,
        fail: 6,
        ..Default::default()
    };
    let (h, c) = sim(all).await;
    for plural in ["deployments", "statefulsets", "daemonsets"] {
        assert_eq!(failing(&generated(&c, plural).await), 2, "{plural}");
    }
    h.shutdown().await;
    // Some failing: that many, among all kinds, the same for the same seed.
    let some = || SimConfig {
        deployments: 4,
        stateful_sets: 4,
        daemon_sets: 4,
        fail: 5,
        seed: 7,
        rollout_ms: 150,
        ..Default::default()
    };
    let (h, c) = sim(some()).await;
    let (sets, daemons) = (generated(&c, "statefulsets").await, generated(&c, "daemonsets").await);
    let drawn = [failing(&generated(&c, "deployments").await), failing(&sets), failing(&daemons)];
    assert_eq!(drawn.iter().sum::<usize>(), 5, "{drawn:?}");
    let (h2, c2) = sim(some()).await;
    let again = [
        failing(&generated(&c2, "deployments").await),
        failing(&generated(&c2, "statefulsets").await),
        failing(&generated(&c2, "daemonsets").await),
    ];
    assert_eq!(again, drawn);
    h2.shutdown().await;
    h.shutdown().await;

    // A failing StatefulSet and DaemonSet start settled, and their restart
    // stalls on the first new pod, which runs but never gets ready.
    let config = SimConfig {
        stateful_sets: 1,
        daemon_sets: 1,
        fail: 2,
        rollout_ms: 150,
        ..Default::default()
    };
    let (h, c) = sim(config).await;
    let set = generated(&c, "statefulsets").await.remove(0);
    let daemon = generated(&c, "daemonsets").await.remove(0);
    assert!(rolled_out(&set) && daemon_rolled_out(&daemon));
    let set_path = format!(
        "/apis/apps/v1/namespaces/arcgis/statefulsets/{}",
        set["metadata"]["name"].as_str().unwrap_or("")
    );
    let daemon_path = format!(
        "/apis/apps/v1/namespaces/arcgis/daemonsets/{}",
        daemon["metadata"]["name"].as_str().unwrap_or("")
    );
    c.patch(&set_path, "application/strategic-merge-patch+json", RESTART).await;
    c.patch(&daemon_path, "application/strategic-merge-patch+json", RESTART).await;
    let replicas = set["spec"]["replicas"].as_u64().unwrap_or(0);
    let stalled = until(&c, &set_path, "the set stalled", |s| {
        s["status"]["observedGeneration"] == 2
            && s["status"]["updatedReplicas"] == 1
            && s["status"]["replicas"] == replicas
    })
    .await;
    let name = set["metadata"]["name"].as_str().unwrap_or("");
    let states = pod_states_in(&c, "arcgis", &format!("app.kubernetes.io%2Fname%3D{name}")).await;
    let highest = format!("{name}-{}", replicas - 1);
    assert_eq!(
        states[&highest],
        (stalled["status"]["updateRevision"].as_str().unwrap_or("").to_owned(), false)
    );
    assert_eq!(states.values().filter(|(_, ready)| *ready).count() as u64, replicas - 1);
    assert_eq!(stalled["status"]["readyReplicas"].as_u64().unwrap_or(0), replicas - 1);
    let stalled = until(&c, &daemon_path, "the daemon stalled", |d| {
        d["status"]["observedGeneration"] == 2
            && d["status"]["updatedNumberScheduled"] == 1
            && d["status"]["numberReady"] == 2
    })
    .await;
    assert_eq!(stalled["status"]["numberUnavailable"], 1);
    let waiting = kubectl_status(
        &h,
        &["rollout", "status", &format!("sts/{name}"), "-n", "arcgis", "--timeout=2s"],
    )
    .await;
    if let Some((ok, out, err)) = waiting {
        assert!(!ok, "{out}{err}");
        assert_eq!(out.lines().last(), Some("Waiting for 1 pods to be ready..."), "{out}");
        assert!(err.contains("timed out waiting for the condition"), "{err}");
    }
    let daemon_name = daemon["metadata"]["name"].as_str().unwrap_or("");
    let waiting = kubectl_status(
        &h,
        &["rollout", "status", &format!("ds/{daemon_name}"), "-n", "arcgis", "--timeout=2s"],
    )
    .await;
    if let Some((ok, out, _)) = waiting {
        assert!(!ok, "{out}");
        let expected = format!(
            "Waiting for daemon set {daemon_name:?} rollout to finish: 1 out of 3 new pods have been updated..."
        );
        assert_eq!(out.lines().last(), Some(expected.as_str()), "{out}");
    }
    // Still stalled after kubectl gave up.
    assert_eq!(c.get(&set_path).await.body["status"]["updatedReplicas"], 1);
    h.shutdown().await;
}

/// Runs the installed kubectl against `h`; `None` when it is not installed.
async fn kubectl_status(
    h: &servicerefresh_sim::SimHandle,
    args: &[&str],
) -> Option<(bool, String, String)> {
    if !common::kubectl_available() {
        eprintln!("kubectl not installed: skipping the rollout status check");
        return None;
    }
    let kubectl = common::Kubectl::for_sim(h, "failing-workloads");
    Some(kubectl.run(args).await)
}
