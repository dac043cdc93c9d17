//! The real `kubectl` on what a rollout leaves behind and on deletion:
//! `rollout history` and `rollout undo`, `get rs` and `get pods` during and
//! after a rollout, the ScalingReplicaSet Events, `delete --cascade`
//! (background, foreground, orphan), and a Terminating namespace.

mod common;

use common::*;
use serde_json::{Value, json};
use servicerefresh_sim::SimConfig;

const NS: &str = "team";

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

async fn setup(tag: &str) -> Option<(servicerefresh_sim::SimHandle, RawHttpClient, Kubectl)> {
    if !kubectl_available() {
        eprintln!("kubectl not installed: skipping");
        return None;
    }
    let (h, c) = sim(SimConfig { rollout_ms: 300, ..Default::default() }).await;
    let k = Kubectl::for_sim(&h, tag);
    k.ok(&["create", "namespace", NS]).await;
    Some((h, c, k))
}

/// Creates `web` (2 replicas of nginx:1.27) and waits for its rollout.
async fn web(k: &Kubectl) {
    k.ok(&["create", "deployment", "web", "-n", NS, "--image=nginx:1.27", "--replicas=2"]).await;
    k.ok(&["rollout", "status", "deployment/web", "-n", NS, "--timeout=60s"]).await;
}

fn lines(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split_whitespace().map(String::from).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_history_undo_and_the_objects_a_rollout_leaves() {
    let Some((h, c, k)) = setup("history").await else {
        return;
    };
    let err = k.fails(&["rollout", "undo", "deployment/nope", "-n", NS]).await;
    assert!(err.contains("not found"), "{err}");
    web(&k).await;
    let out = k.ok(&["rollout", "history", "deployment/web", "-n", NS]).await;
    assert_eq!(lines(&out)[1..], [vec!["REVISION", "CHANGE-CAUSE"], vec!["1", "<none>"]], "{out}");

    k.ok(&["set", "image", "deployment/web", "nginx=nginx:1.28", "-n", NS]).await;
    k.ok(&["rollout", "status", "deployment/web", "-n", NS, "--timeout=60s"]).await;
    let out = k.ok(&["rollout", "history", "deployment/web", "-n", NS]).await;
    assert_eq!(
        lines(&out)[1..],
        [vec!["REVISION", "CHANGE-CAUSE"], vec!["1", "<none>"], vec!["2", "<none>"]],
        "{out}"
    );
    let out = k.ok(&["rollout", "history", "deployment/web", "-n", NS, "--revision=1"]).await;
    assert!(out.contains("nginx:1.27") && out.contains("pod-template-hash="), "{out}");

    // Two ReplicaSets: the new one with both pods, the old one scaled to 0.
    let out = k.ok(&["get", "rs", "-n", NS]).await;
    let rows = lines(&out);
    assert_eq!(rows[0], ["NAME", "DESIRED", "CURRENT", "READY", "AGE"], "{out}");
    let mut sizes: Vec<Vec<String>> = rows[1..].iter().map(|row| row[1..4].to_vec()).collect();
    sizes.sort();
    assert_eq!(sizes, [["0", "0", "0"], ["2", "2", "2"]], "{out}");
    let out = k.ok(&["get", "pods", "-n", NS]).await;
    let rows = lines(&out);
    assert_eq!(rows[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], "{out}");
    assert_eq!(rows.len(), 3, "{out}");
    for row in &rows[1..] {
        assert_eq!(row[1..4], ["1/1", "Running", "0"], "{out}");
    }
    let d = json_of(&k.ok(&["get", "deployment/web", "-n", NS, "-o", "json"]).await);
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");
    assert_eq!(d["metadata"]["generation"], 2);

    // Undo copies revision 1's template back: a real template change.
    let out = k.ok(&["rollout", "undo", "deployment/web", "-n", NS]).await;
    assert!(out.contains("rolled back"), "{out}");
    k.ok(&["rollout", "status", "deployment/web", "-n", NS, "--timeout=60s"]).await;
    let d = json_of(&k.ok(&["get", "deployment/web", "-n", NS, "-o", "json"]).await);
    assert_eq!(d["metadata"]["generation"], 3);
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27");
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "3");
    assert_eq!(d["status"]["observedGeneration"], 3);
    // Revision 1's ReplicaSet was reused as revision 3.
    let out = k.ok(&["rollout", "history", "deployment/web", "-n", NS]).await;
    assert_eq!(
        lines(&out)[1..],
        [vec!["REVISION", "CHANGE-CAUSE"], vec!["2", "<none>"], vec!["3", "<none>"]],
        "{out}"
    );
    let list = json_of(&k.ok(&["get", "rs", "-n", NS, "-l", "app=web", "-o", "json"]).await);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let reused = items
        .iter()
        .find(|rs| rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3")
        .expect("the reused ReplicaSet");
    assert_eq!(reused["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"], "1");
    assert_eq!(reused["spec"]["replicas"], 2);
    assert_eq!(reused["status"]["readyReplicas"], 2);
    let hash = reused["metadata"]["labels"]["pod-template-hash"].as_str().unwrap();
    assert_eq!(reused["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(reused["spec"]["selector"]["matchLabels"]["pod-template-hash"], hash);
    assert_eq!(reused["spec"]["template"]["metadata"]["labels"]["pod-template-hash"], hash);
    let owner = &reused["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Deployment");
    assert_eq!(owner["uid"], d["metadata"]["uid"]);
    assert_eq!(
        (owner["controller"].clone(), owner["blockOwnerDeletion"].clone()),
        (json!(true), json!(true))
    );
    let pods = json_of(
        &k.ok(&["get", "pods", "-n", NS, "-l", &format!("pod-template-hash={hash}"), "-o", "json"])
            .await,
    );
    let pods = pods["items"].as_array().unwrap();
    assert_eq!(pods.len(), 2);
    for pod in pods {
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], reused["metadata"]["uid"]);
        assert!(pod["spec"]["nodeName"].is_string());
    }

    // The Deployment controller's Events: every size change of every
    // ReplicaSet, in order.
    let events = c
        .get(&format!("/api/v1/namespaces/{NS}/events?fieldSelector=reason%3DScalingReplicaSet"))
        .await
        .body;
    let mut events: Vec<Value> = events["items"].as_array().unwrap().clone();
    events.sort_by_key(|e| {
        e["metadata"]["resourceVersion"].as_str().unwrap().parse::<u64>().unwrap()
    });
    let messages: Vec<&str> = events.iter().map(|e| e["message"].as_str().unwrap()).collect();
    let old = messages[0].split_whitespace().nth(4).unwrap().to_string();
    let new = messages[1].split_whitespace().nth(4).unwrap().to_string();
    assert_eq!(old, reused["metadata"]["name"].as_str().unwrap());
    assert_eq!(
        messages,
        [
            format!("Scaled up replica set {old} from 0 to 2"),
            format!("Scaled up replica set {new} from 0 to 1"),
            format!("Scaled down replica set {old} from 2 to 1"),
            format!("Scaled up replica set {new} from 1 to 2"),
            format!("Scaled down replica set {old} from 1 to 0"),
            format!("Scaled up replica set {old} from 0 to 1"),
            format!("Scaled down replica set {new} from 2 to 1"),
            format!("Scaled up replica set {old} from 1 to 2"),
            format!("Scaled down replica set {new} from 1 to 0"),
        ]
    );
    assert!(events.iter().all(|e| e["involvedObject"]["kind"] == "Deployment"
        && e["source"]["component"] == "deployment-controller"
        && e["type"] == "Normal"));
    let out =
        k.ok(&["get", "events", "-n", NS, "--field-selector", "reason=ScalingReplicaSet"]).await;
    assert!(out.contains(&format!("Scaled up replica set {old} from 0 to 2")), "{out}");
    h.shutdown().await;
}

/// The Deployment's ReplicaSets and Pods, as (ReplicaSets, Pods) counts.
async fn counts(c: &RawHttpClient) -> (usize, usize) {
    let rs = c.get(&format!("/apis/apps/v1/namespaces/{NS}/replicasets")).await.body;
    let pods = c.get(&format!("/api/v1/namespaces/{NS}/pods")).await.body;
    (rs["items"].as_array().unwrap().len(), pods["items"].as_array().unwrap().len())
}

async fn gone(c: &RawHttpClient, path: &str) {
    eventually(&format!("{path} gone"), || async {
        (c.get(path).await.status == 404).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_cascades_as_on_a_real_cluster() {
    let Some((h, c, k)) = setup("cascade").await else {
        return;
    };
    let deploy = format!("/apis/apps/v1/namespaces/{NS}/deployments/web");

    // Background (kubectl's default): the Deployment goes at once, the
    // garbage collector takes its ReplicaSet and Pods.
    web(&k).await;
    assert_eq!(counts(&c).await, (1, 2));
    let out = k.ok(&["delete", "deployment/web", "-n", NS, "--cascade=background"]).await;
    assert!(out.contains("deleted"), "{out}");
    assert_eq!(c.get(&deploy).await.status, 404);
    eventually("ReplicaSet and Pods collected", || async {
        (counts(&c).await == (0, 0)).then_some(())
    })
    .await;

    // Orphan: the dependents stay and lose their owner reference.
    web(&k).await;
    k.ok(&["delete", "deployment/web", "-n", NS, "--cascade=orphan"]).await;
    assert_eq!(c.get(&deploy).await.status, 404);
    let rs = c.get(&format!("/apis/apps/v1/namespaces/{NS}/replicasets")).await.body;
    let rs = &rs["items"][0];
    assert!(rs["metadata"].get("ownerReferences").is_none(), "{rs}");
    assert_eq!(counts(&c).await, (1, 2));
    // The orphans go with their ReplicaSet (background by default).
    let rs_name = rs["metadata"]["name"].as_str().unwrap().to_string();
    k.ok(&["delete", "rs", &rs_name, "-n", NS]).await;
    eventually("orphaned pods collected", || async { (counts(&c).await == (0, 0)).then_some(()) })
        .await;

    // Foreground: the owner waits, with deletionTimestamp and the
    // foregroundDeletion finalizer, until its blocking dependents are gone.
    // A finalizer on one pod holds the whole chain.
    web(&k).await;
    let pods = c.get(&format!("/api/v1/namespaces/{NS}/pods")).await.body;
    let held = pods["items"][0]["metadata"]["name"].as_str().unwrap().to_string();
    let pod_path = format!("/api/v1/namespaces/{NS}/pods/{held}");
    let r = c
        .patch(
            &pod_path,
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    k.ok(&["delete", "deployment/web", "-n", NS, "--cascade=foreground", "--wait=false"]).await;
    let d = eventually("the ReplicaSet waiting too", || async {
        let rs = c.get(&format!("/apis/apps/v1/namespaces/{NS}/replicasets")).await.body;
        let waiting = rs["items"][0]["metadata"]["finalizers"] == json!(["foregroundDeletion"]);
        let pods = c.get(&format!("/api/v1/namespaces/{NS}/pods")).await.body;
        let held_only = pods["items"].as_array().unwrap().len() == 1;
        (waiting && held_only).then_some(())
    })
    .await;
    let () = d;
    let d = c.get(&deploy).await.body;
    assert!(d["metadata"]["deletionTimestamp"].is_string(), "{d}");
    assert_eq!(d["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    // Generation bumped when the deletion began.
    assert_eq!(d["metadata"]["generation"], 2);
    let pod = c.get(&pod_path).await.body;
    assert!(pod["metadata"]["deletionTimestamp"].is_string());
    let r = c
        .patch(&pod_path, "application/merge-patch+json", r#"{"metadata":{"finalizers":null}}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    gone(&c, &deploy).await;
    assert_eq!(counts(&c).await, (0, 0));

    // `kubectl delete --cascade=foreground` waits until it is all gone.
    web(&k).await;
    k.ok(&["delete", "deployment/web", "-n", NS, "--cascade=foreground"]).await;
    assert_eq!(c.get(&deploy).await.status, 404);
    assert_eq!(counts(&c).await, (0, 0));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_namespace_is_terminating_until_it_is_empty() {
    let Some((h, c, k)) = setup("namespace").await else {
        return;
    };
    web(&k).await;
    k.ok(&["create", "configmap", "held", "-n", NS, "--from-literal=a=b"]).await;
    k.ok(&[
        "patch",
        "configmap",
        "held",
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ])
    .await;
    k.ok(&["delete", "namespace", NS, "--wait=false"]).await;
    let out = k.ok(&["get", "namespace", NS]).await;
    assert!(out.contains("Terminating"), "{out}");
    let err = k.fails(&["create", "configmap", "late", "-n", NS]).await;
    assert!(
        err.contains(&format!(
            "configmaps \"late\" is forbidden: unable to create new content in namespace {NS} because it is being terminated"
        )),
        "{err}"
    );
    // Everything else goes; the held ConfigMap is reported.
    let ns = eventually("the content reported", || async {
        let ns = c.get(&format!("/api/v1/namespaces/{NS}")).await.body;
        let conditions = ns["status"]["conditions"].as_array()?;
        let remaining = conditions.iter().find(|c| c["type"] == "NamespaceContentRemaining")?;
        (remaining["message"]
            == "Some resources are remaining: configmaps. has 1 resource instances")
            .then_some(ns)
    })
    .await;
    let conditions = ns["status"]["conditions"].as_array().unwrap();
    let finalizers =
        conditions.iter().find(|c| c["type"] == "NamespaceFinalizersRemaining").unwrap();
    assert_eq!(finalizers["status"], "True");
    assert_eq!(finalizers["reason"], "SomeFinalizerRemain");
    assert_eq!(
        finalizers["message"],
        "Some finalizers are remaining: example.com/hold in 1 resource instances"
    );
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(counts(&c).await, (0, 0));
    assert_eq!(c.get(&format!("/apis/apps/v1/namespaces/{NS}/deployments/web")).await.status, 404);
    k.ok(&[
        "patch",
        "configmap",
        "held",
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
    .await;
    let out = k.ok(&["wait", "--for=delete", &format!("namespace/{NS}"), "--timeout=30s"]).await;
    assert!(out.contains("deleted") || out.is_empty(), "{out}");
    assert_eq!(c.get(&format!("/api/v1/namespaces/{NS}")).await.status, 404);
    h.shutdown().await;
}
