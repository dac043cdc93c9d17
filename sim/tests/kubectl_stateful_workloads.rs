//! StatefulSets and DaemonSets through every installed kubectl (1.27 to
//! the installed one): `apply`, `rollout status` (its waiting and success
//! messages, partitioned StatefulSets), `rollout restart`, `rollout
//! history` (and `--revision`), `rollout undo` (and a skipped one), `get
//! sts/ds -o wide`, `get controllerrevisions`, `scale`, `describe`; frozen
//! fixtures whose crafted statuses `rollout status` judges; `OnDelete`,
//! `maxUnavailable`, the failure knob and the generated fleet's
//! StatefulSets and DaemonSets.

mod common;

use std::path::{Path, PathBuf};

use common::kubectl::{self, KubectlBin};
use common::{RawHttpClient, eventually};
use serde_json::{Value, json};
use servicerefresh_sim::{SimConfig, SimHandle};

const STS_MANIFEST: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  replicas: 3
  serviceName: web
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: agent
        image: busybox:1.36
";

/// Whether `line` is `template` with a number at each `{n}`.
fn matches(line: &str, template: &str) -> bool {
    let mut rest = line;
    for (index, part) in template.split("{n}").enumerate() {
        if index > 0 {
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits == 0 {
                return false;
            }
            rest = &rest[digits..];
        }
        match rest.strip_prefix(part) {
            Some(after) => rest = after,
            None => return false,
        }
    }
    rest.is_empty()
}

/// The lines a `rollout status` printed, each checked against the
/// messages kubectl has for the kind; the last one returned.
fn status_lines(version: &str, out: &str, templates: &[&str]) -> Vec<String> {
    let lines: Vec<String> =
        out.lines().filter(|line| !line.trim().is_empty()).map(String::from).collect();
    for line in &lines {
        assert!(
            templates.iter().any(|template| matches(line, template)),
            "kubectl {version}: unexpected rollout status line {line:?} in\n{out}"
        );
    }
    assert!(!lines.is_empty(), "kubectl {version}: no output");
    lines
}

const STS_MESSAGES: [&str; 4] = [
    "Waiting for statefulset spec update to be observed...",
    "Waiting for {n} pods to be ready...",
    "Waiting for partitioned roll out to finish: {n} out of {n} new pods have been updated...",
    "partitioned roll out complete: {n} new pods have been updated...",
];

fn ds_messages(name: &str) -> [String; 4] {
    [
        "Waiting for daemon set spec update to be observed...".to_owned(),
        format!(
            "Waiting for daemon set {name:?} rollout to finish: {{n}} out of {{n}} new pods have been updated..."
        ),
        format!(
            "Waiting for daemon set {name:?} rollout to finish: {{n}} of {{n}} updated pods are available..."
        ),
        format!("daemon set {name:?} successfully rolled out"),
    ]
}

/// Waits for a rollout with `kubectl rollout status`; its last line.
async fn rolled_out(bin: &KubectlBin, config: &Path, ns: &str, target: &str) -> String {
    let out = bin.ok(config, &["rollout", "status", target, "-n", ns, "--timeout=60s"]).await;
    let templates: Vec<String> = if target.starts_with("sts/") {
        STS_MESSAGES.iter().map(|m| m.to_string()).collect()
    } else {
        ds_messages(target.trim_start_matches("ds/")).to_vec()
    };
    let templates: Vec<&str> = templates.iter().map(String::as_str).collect();
    let lines = status_lines(&bin.version, &out, &templates);
    lines.last().cloned().unwrap_or_default()
}

/// The rows of a table, split on whitespace.
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split_whitespace().map(String::from).collect())
        .collect()
}

/// REVISION numbers of `rollout history`.
fn revisions(out: &str) -> Vec<String> {
    let rows = rows(out);
    let header = rows.iter().position(|row| row.first().map(String::as_str) == Some("REVISION"));
    let header = header.unwrap_or_else(|| panic!("no REVISION header in {out}"));
    rows[header + 1..].iter().map(|row| row[0].clone()).collect()
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

async fn pods(c: &RawHttpClient, ns: &str, selector: &str) -> Vec<Value> {
    items(&c.get(&format!("/api/v1/namespaces/{ns}/pods?labelSelector={selector}")).await.body)
}

fn revision_of(pod: &Value) -> String {
    pod["metadata"]["labels"]["controller-revision-hash"].as_str().unwrap_or("").to_owned()
}

struct Setup {
    h: SimHandle,
    c: RawHttpClient,
    /// Removed on drop.
    dir: tempfile::TempDir,
    config: PathBuf,
}

async fn setup(tag: &str, config: SimConfig) -> Setup {
    let (h, c) = common::sim(config).await;
    let dir = common::temp_dir(tag);
    let config = dir.path().join("kubeconfig");
    h.write_kubeconfig(&config).expect("kubeconfig");
    Setup { h, c, dir, config }
}

async fn namespace(c: &RawHttpClient, ns: &str) {
    let created = c.post("/api/v1/namespaces", &json!({"metadata": {"name": ns}})).await;
    assert_eq!(created.status, 201, "{}", created.body);
}

/// The whole kubectl story of one StatefulSet and one DaemonSet.
async fn kubectl_story(bin: &KubectlBin, s: &Setup, ns: &str) {
    let (config, v) = (&s.config, bin.version.as_str());
    let manifest = s.dir.path().join(format!("{ns}.yaml"));
    std::fs::write(&manifest, STS_MANIFEST).expect("manifest");
    let applied =
        bin.ok(config, &["apply", "-n", ns, "-f", manifest.to_str().unwrap_or_default()]).await;
    assert!(applied.contains("statefulset.apps/web created"), "{v}: {applied}");
    assert!(applied.contains("daemonset.apps/agent created"), "{v}: {applied}");
    let last = rolled_out(bin, config, ns, "sts/web").await;
    assert_eq!(last, "partitioned roll out complete: 3 new pods have been updated...", "{v}");
    let last = rolled_out(bin, config, ns, "ds/agent").await;
    assert_eq!(last, "daemon set \"agent\" successfully rolled out", "{v}");

    // The columns of the real printers.
    let table = rows(&bin.ok(config, &["get", "sts", "-n", ns, "-o", "wide"]).await);
    assert_eq!(table[0], ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"], "{v}");
    assert_eq!(
        [&table[1][..2], &table[1][3..]].concat(),
        ["web", "3/3", "nginx", "nginx:1.27"],
        "{v}"
    );
    let table = rows(&bin.ok(config, &["get", "ds", "-n", ns, "-o", "wide"]).await);
    assert_eq!(
        table[0],
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE",
            "SELECTOR",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ],
        "{v}"
    );
    assert_eq!(table[1][..7], ["agent", "3", "3", "3", "3", "3", "<none>"], "{v}");
    assert_eq!(table[1][8..], ["agent", "busybox:1.36", "app=agent"], "{v}");

    // Restart, history, undo: StatefulSet.
    let out = bin.ok(config, &["rollout", "restart", "sts/web", "-n", ns]).await;
    assert_eq!(out.trim(), "statefulset.apps/web restarted", "{v}");
    let last = rolled_out(bin, config, ns, "sts/web").await;
    assert_eq!(last, "partitioned roll out complete: 3 new pods have been updated...", "{v}");
    let history = bin.ok(config, &["rollout", "history", "sts/web", "-n", ns]).await;
    assert!(history.starts_with("statefulset.apps/web"), "{v}: {history}");
    assert_eq!(revisions(&history), ["1", "2"], "{v}: {history}");
    let first = bin.ok(config, &["rollout", "history", "sts/web", "-n", ns, "--revision=1"]).await;
    assert!(first.contains("statefulset.apps/web with revision #1"), "{v}: {first}");
    assert!(first.contains("Image:") && first.contains("nginx:1.27"), "{v}: {first}");
    assert!(!first.contains("restartedAt"), "{v}: revision 1 predates the restart: {first}");
    let second = bin.ok(config, &["rollout", "history", "sts/web", "-n", ns, "--revision=2"]).await;
    assert!(second.contains("kubectl.kubernetes.io/restartedAt"), "{v}: {second}");
    let table =
        rows(&bin.ok(config, &["get", "controllerrevisions", "-n", ns, "-l", "app=web"]).await);
    assert_eq!(table[0], ["NAME", "CONTROLLER", "REVISION", "AGE"], "{v}");
    let mut listed: Vec<(String, String)> =
        table[1..].iter().map(|row| (row[1].clone(), row[2].clone())).collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("statefulset.apps/web".to_owned(), "1".to_owned()),
            ("statefulset.apps/web".into(), "2".into())
        ],
        "{v}"
    );
    let out = bin.ok(config, &["rollout", "undo", "sts/web", "-n", ns]).await;
    assert_eq!(out.trim(), "statefulset.apps/web rolled back", "{v}");
    rolled_out(bin, config, ns, "sts/web").await;
    let history = bin.ok(config, &["rollout", "history", "sts/web", "-n", ns]).await;
    assert_eq!(revisions(&history), ["2", "3"], "{v}: revision 1 came back as 3: {history}");
    let out = bin.ok(config, &["rollout", "undo", "sts/web", "-n", ns, "--to-revision=3"]).await;
    assert_eq!(
        out.trim(),
        "statefulset.apps/web skipped rollback (current template already matches revision 3)",
        "{v}"
    );

    // A partition keeps the ordinals below it at the current revision.
    let partition = r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}"#;
    bin.ok(config, &["patch", "sts/web", "-n", ns, "--type=merge", "-p", partition]).await;
    bin.ok(config, &["rollout", "restart", "sts/web", "-n", ns]).await;
    let last = rolled_out(bin, config, ns, "sts/web").await;
    assert_eq!(last, "partitioned roll out complete: 1 new pods have been updated...", "{v}");
    let set = s.c.get(&format!("/apis/apps/v1/namespaces/{ns}/statefulsets/web")).await.body;
    let (current, update) = (&set["status"]["currentRevision"], &set["status"]["updateRevision"]);
    assert_ne!(current, update, "{v}: {set}");
    let mut by_pod: Vec<(String, String)> = pods(&s.c, ns, "app=web")
        .await
        .iter()
        .map(|pod| (pod["metadata"]["name"].as_str().unwrap_or("").to_owned(), revision_of(pod)))
        .collect();
    by_pod.sort();
    let (current, update) = (current.as_str().unwrap_or(""), update.as_str().unwrap_or(""));
    assert_eq!(
        by_pod,
        [
            ("web-0".to_owned(), current.to_owned()),
            ("web-1".into(), current.into()),
            ("web-2".into(), update.into())
        ],
        "{v}"
    );
    assert_eq!(set["status"]["updatedReplicas"], 1, "{v}");
    assert_eq!(set["status"]["currentReplicas"], 2, "{v}");

    // Restart, history, undo: DaemonSet.
    let out = bin.ok(config, &["rollout", "restart", "ds/agent", "-n", ns]).await;
    assert_eq!(out.trim(), "daemonset.apps/agent restarted", "{v}");
    rolled_out(bin, config, ns, "ds/agent").await;
    let history = bin.ok(config, &["rollout", "history", "ds/agent", "-n", ns]).await;
    assert!(history.starts_with("daemonset.apps/agent"), "{v}: {history}");
    assert_eq!(revisions(&history), ["1", "2"], "{v}: {history}");
    let first = bin.ok(config, &["rollout", "history", "ds/agent", "-n", ns, "--revision=1"]).await;
    assert!(first.contains("daemonset.apps/agent with revision #1"), "{v}: {first}");
    assert!(first.contains("busybox:1.36"), "{v}: {first}");
    let out = bin.ok(config, &["rollout", "undo", "ds/agent", "-n", ns]).await;
    assert_eq!(out.trim(), "daemonset.apps/agent rolled back", "{v}");
    rolled_out(bin, config, ns, "ds/agent").await;
    let history = bin.ok(config, &["rollout", "history", "ds/agent", "-n", ns]).await;
    assert_eq!(revisions(&history), ["2", "3"], "{v}: {history}");
    let table =
        rows(&bin.ok(config, &["get", "controllerrevisions", "-n", ns, "-l", "app=agent"]).await);
    assert!(table[1..].iter().all(|row| row[1] == "daemonset.apps/agent"), "{v}: {table:?}");

    let described = bin.ok(config, &["describe", "sts", "web", "-n", ns]).await;
    for expected in [
        "Replicas:           3 desired | 3 total",
        "Update Strategy:    RollingUpdate",
        "Partition:        2",
        "Pods Status:        3 Running / 0 Waiting / 0 Succeeded / 0 Failed",
        "create Pod web-0 in StatefulSet web successful",
        "delete Pod web-2 in StatefulSet web successful",
    ] {
        assert!(described.contains(expected), "{v}: no {expected:?} in\n{described}");
    }
    let described = bin.ok(config, &["describe", "ds", "agent", "-n", ns]).await;
    for expected in [
        "Desired Number of Nodes Scheduled: 3",
        "Number of Nodes Scheduled with Up-to-date Pods: 3",
        "Number of Nodes Scheduled with Available Pods: 3",
        "Number of Nodes Misscheduled: 0",
        "Pods Status:  3 Running / 0 Waiting / 0 Succeeded / 0 Failed",
        "daemonset-controller  Created pod: agent-",
    ] {
        assert!(described.contains(expected), "{v}: no {expected:?} in\n{described}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rolls_out_statefulsets_and_daemonsets_in_every_version() {
    let bins = kubectl::matrix("stateful");
    if bins.is_empty() {
        eprintln!("no kubectl installed: skipping");
        return;
    }
    let s = setup("stateful", SimConfig { rollout_ms: 600, ..Default::default() }).await;
    for bin in &bins {
        let ns = format!("v-{}", bin.version.replace('.', "-"));
        namespace(&s.c, &ns).await;
        kubectl_story(bin, &s, &ns).await;
    }
    eprintln!(
        "checked kubectl {:?}",
        bins.iter().map(|bin| bin.version.as_str()).collect::<Vec<_>>()
    );
    s.h.shutdown().await;
}

/// A StatefulSet fixture; `spec` and `status` merged over a plain one.
fn frozen_set(name: &str, spec: Value, status: Value) -> Value {
    let mut set = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "annotations": {"sim.gisops.io/frozen": "true"}},
        "spec": {
            "replicas": 3, "serviceName": name, "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    });
    if let (Some(base), Some(extra)) = (set["spec"].as_object_mut(), spec.as_object()) {
        base.extend(extra.clone());
    }
    set["status"] = status;
    set
}

fn frozen_daemon(name: &str, status: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "annotations": {"sim.gisops.io/frozen": "true"}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        },
        "status": status,
    })
}

/// Creates a frozen fixture and writes its status through the status
/// subresource; the stored object.
async fn fixture(c: &RawHttpClient, ns: &str, plural: &str, mut object: Value) -> Value {
    let status =
        object.as_object_mut().and_then(|fields| fields.remove("status")).unwrap_or_default();
    let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let path = format!("/apis/apps/v1/namespaces/{ns}/{plural}");
    let created = c.post(&path, &object).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let body = json!({"status": status}).to_string();
    let written =
        c.patch(&format!("{path}/{name}/status"), "application/merge-patch+json", &body).await;
    assert_eq!(written.status, 200, "{}", written.body);
    written.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_statefulsets_and_daemonsets_are_judged_as_written() {
    let s = setup("frozen-workloads", SimConfig { rollout_ms: 100, ..Default::default() }).await;
    let (c, ns) = (&s.c, "fixtures");
    namespace(c, ns).await;
    let settled = |revision: &str| {
        json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "currentReplicas": 3,
               "updatedReplicas": 3, "currentRevision": revision, "updateRevision": revision,
               "availableReplicas": 3, "collisionCount": 0})
    };
    // (fixture, kubectl's verdict, done)
    let mut cases: Vec<(String, String, bool)> = Vec::new();
    let sets = [
        (
            "unobserved",
            json!({}),
            json!({"replicas": 0, "availableReplicas": 0}),
            "Waiting for statefulset spec update to be observed...",
            false,
        ),
        (
            "unready",
            json!({}),
            json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 1, "availableReplicas": 1}),
            "Waiting for 2 pods to be ready...",
            false,
        ),
        (
            "partitioned",
            json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}),
            json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 1, "availableReplicas": 3}),
            "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...",
            false,
        ),
        (
            "complete",
            json!({}),
            settled("complete-1"),
            "partitioned roll out complete: 3 new pods have been updated...",
            true,
        ),
    ];
    for (name, spec, status, verdict, done) in sets {
        let stored = fixture(c, ns, "statefulsets", frozen_set(name, spec, status.clone())).await;
        assert_eq!(stored["status"], status, "the status exactly as written");
        cases.push((format!("sts/{name}"), verdict.to_owned(), done));
    }
    // Without a rollingUpdate (stored without defaults), kubectl compares
    // the revisions instead.
    let mut plain =
        frozen_set("revisions", json!({"updateStrategy": {"type": "RollingUpdate"}}), json!({}));
    plain["metadata"]["annotations"]["sim.gisops.io/no-defaults"] = json!("true");
    let mut rolling = settled("revisions-1");
    rolling["updateRevision"] = json!("revisions-2");
    rolling["updatedReplicas"] = json!(1);
    plain["status"] = rolling;
    fixture(c, ns, "statefulsets", plain).await;
    cases.push((
        "sts/revisions".into(),
        "waiting for statefulset rolling update to complete 1 pods at revision revisions-2..."
            .into(),
        false,
    ));
    let mut plain =
        frozen_set("same", json!({"updateStrategy": {"type": "RollingUpdate"}}), settled("same-1"));
    plain["metadata"]["annotations"]["sim.gisops.io/no-defaults"] = json!("true");
    fixture(c, ns, "statefulsets", plain).await;
    cases.push((
        "sts/same".into(),
        "statefulset rolling update complete 3 pods at revision same-1...".into(),
        true,
    ));
    let daemons = [
        (
            "spec",
            json!({"observedGeneration": 0, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberMisscheduled": 0, "numberReady": 3}),
            "Waiting for daemon set spec update to be observed...",
            false,
        ),
        (
            "updating",
            json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberMisscheduled": 0, "numberReady": 3, "updatedNumberScheduled": 1, "numberAvailable": 3}),
            "Waiting for daemon set \"updating\" rollout to finish: 1 out of 3 new pods have been updated...",
            false,
        ),
        (
            "starting",
            json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberMisscheduled": 0, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2, "numberUnavailable": 1}),
            "Waiting for daemon set \"starting\" rollout to finish: 2 of 3 updated pods are available...",
            false,
        ),
        (
            "done",
            json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberMisscheduled": 0, "numberReady": 3, "updatedNumberScheduled": 3, "numberAvailable": 3}),
            "daemon set \"done\" successfully rolled out",
            true,
        ),
    ];
    for (name, status, verdict, done) in daemons {
        let stored = fixture(c, ns, "daemonsets", frozen_daemon(name, status.clone())).await;
        assert_eq!(stored["status"], status, "the status exactly as written");
        cases.push((format!("ds/{name}"), verdict.to_owned(), done));
    }
    // The controllers leave them alone: a workload created after them
    // rolls out, and still no pod, revision or status of theirs appears.
    let witness = frozen_set("witness", json!({}), json!({}));
    let mut witness = witness;
    witness["metadata"]["annotations"] = json!({});
    c.post(&format!("/apis/apps/v1/namespaces/{ns}/statefulsets"), &witness).await;
    eventually("the witness rolled out", || async {
        let set = c.get(&format!("/apis/apps/v1/namespaces/{ns}/statefulsets/witness")).await.body;
        (set["status"]["readyReplicas"] == 3).then_some(())
    })
    .await;
    let pods = items(&c.get(&format!("/api/v1/namespaces/{ns}/pods")).await.body);
    assert!(
        pods.iter()
            .all(|pod| pod["metadata"]["name"].as_str().unwrap_or("").starts_with("witness-")),
        "{pods:?}"
    );
    let revisions =
        items(&c.get(&format!("/apis/apps/v1/namespaces/{ns}/controllerrevisions")).await.body);
    assert_eq!(revisions.len(), 1, "the witness's only: {revisions:?}");
    let unready = c.get(&format!("/apis/apps/v1/namespaces/{ns}/statefulsets/unready")).await.body;
    assert_eq!(unready["status"]["readyReplicas"], 1, "{unready}");

    let bins = kubectl::matrix("frozen-workloads");
    if bins.is_empty() {
        eprintln!("no kubectl installed: skipping the kubectl verdicts");
    }
    for bin in &bins {
        for (target, verdict, done) in &cases {
            let out =
                bin.ok(&s.config, &["rollout", "status", target, "-n", ns, "--watch=false"]).await;
            assert_eq!(out.trim(), verdict, "kubectl {} on {target}", bin.version);
            if *done {
                let waited = bin
                    .ok(&s.config, &["rollout", "status", target, "-n", ns, "--timeout=5s"])
                    .await;
                assert_eq!(waited.trim(), verdict, "kubectl {} on {target}", bin.version);
            }
        }
        let on_delete = frozen_set(
            &format!("ondelete-{}", bin.version.replace('.', "-")),
            json!({"updateStrategy": {"type": "OnDelete"}}),
            json!({}),
        );
        let name = on_delete["metadata"]["name"].as_str().unwrap_or("").to_owned();
        fixture(c, ns, "statefulsets", on_delete).await;
        let ran =
            bin.run(&s.config, &["rollout", "status", &format!("sts/{name}"), "-n", ns]).await;
        assert!(!ran.ok(), "kubectl {}: {ran}", bin.version);
        assert!(
            ran.stderr.contains(
                "error: rollout status is only available for RollingUpdate strategy type"
            ),
            "kubectl {}: {ran}",
            bin.version
        );
    }
    s.h.shutdown().await;
}
