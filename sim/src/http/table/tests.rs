//! Tests of Table columns, cells and rows, including `kubectl get` printing
//! them.

use serde_json::{Value, json};

use super::cells::{human_duration_ms, json_path_cell};
use super::columns::{
    NAME_DESC, columns_for_builtin, columns_for_crd, columns_for_printer_columns,
};
use super::jsonpath::eval_json_path;
use super::*;

// 2025-01-01T00:10:00Z
const NOW: u64 = 1_735_690_200_000;

fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "servicerefreshes.gisops.io"},
        "spec": {"group": "gisops.io", "versions": [{
            "name": "v1alpha1", "served": true, "storage": true,
            "additionalPrinterColumns": [
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                {"name": "Progress", "type": "string", "jsonPath": ".status.progress", "description": "ready/total"},
                {"name": "Failed", "type": "integer", "jsonPath": ".status.totals.failed"},
                {"name": "First", "type": "string", "jsonPath": ".status.batches[0].phase", "priority": 1},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
            ]
        }]}
    })
}

fn sr() -> Value {
    json!({
        "apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
        "metadata": {"name": "nightly", "namespace": "arcgis", "creationTimestamp": "2025-01-01T00:06:48Z",
                     "resourceVersion": "42", "labels": {"a": "b"}},
        "spec": {"selector": {}},
        "status": {"phase": "Running", "progress": "3/10", "totals": {"failed": 1},
                   "batches": [{"phase": "Succeeded"}, {"phase": "Running"}]}
    })
}

#[test]
fn human_durations_match_kubernetes() {
    let s = |secs: i64| human_duration_ms(secs * 1000);
    assert_eq!(s(-5), "<invalid>");
    assert_eq!(human_duration_ms(-1500), "0s");
    assert_eq!(s(0), "0s");
    assert_eq!(s(5), "5s");
    assert_eq!(s(119), "119s");
    assert_eq!(s(120), "2m");
    assert_eq!(s(192), "3m12s");
    assert_eq!(s(600), "10m");
    assert_eq!(s(3 * 3600 - 1), "179m");
    assert_eq!(s(3 * 3600), "3h");
    assert_eq!(s(3 * 3600 + 25 * 60), "3h25m");
    assert_eq!(s(8 * 3600), "8h");
    assert_eq!(s(47 * 3600), "47h");
    assert_eq!(s(51 * 3600), "2d3h");
    assert_eq!(s(10 * 86400), "10d");
    assert_eq!(s(800 * 86400), "2y70d");
    assert_eq!(s(9 * 365 * 86400), "9y");
}

#[test]
fn json_path_evaluation() {
    let obj = sr();
    assert_eq!(eval_json_path(&obj, ".status.phase"), Some(&json!("Running")));
    assert_eq!(eval_json_path(&obj, ".status.totals.failed"), Some(&json!(1)));
    assert_eq!(eval_json_path(&obj, ".status.batches[1].phase"), Some(&json!("Running")));
    assert_eq!(eval_json_path(&obj, ".status.batches[-1].phase"), Some(&json!("Running")));
    assert_eq!(eval_json_path(&obj, "{.metadata.labels.a}"), Some(&json!("b")));
    assert_eq!(eval_json_path(&obj, ".metadata['labels']['a']"), Some(&json!("b")));
    assert_eq!(eval_json_path(&obj, ".status.batches[5].phase"), None);
    assert_eq!(eval_json_path(&obj, ".status.nothing"), None);
    let dotted = json!({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}});
    assert_eq!(
        eval_json_path(&dotted, ".metadata.labels.app\\.kubernetes\\.io/name"),
        Some(&json!("x"))
    );
}

#[test]
fn json_path_filter_picks_a_condition() {
    let obj = json!({"status": {"conditions": [
        {"type": "Reconciling", "status": "False", "reason": "RunFailed"},
        {"type": "Ready", "status": "False", "reason": "RunFailed", "message": "2 failed"},
    ]}});
    let path = |p: &str| eval_json_path(&obj, p);
    assert_eq!(path(".status.conditions[?(@.type==\"Ready\")].message"), Some(&json!("2 failed")));
    assert_eq!(
        path(".status.conditions[?(@.type == 'Reconciling')].status"),
        Some(&json!("False"))
    );
    assert_eq!(path(".status.conditions[?(@.type==\"Stalled\")].reason"), None);
    assert_eq!(path(".status[?(@.type==\"Ready\")]"), None, "a filter applies to arrays only");
    assert_eq!(path(".status.conditions[?(@.type=Ready)]"), None, "not an equality filter");
}

#[test]
fn crd_table_rows() {
    let cols = columns_for_crd(&crd(), "v1alpha1");
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Name", "Phase", "Progress", "Failed", "First", "Age"]);
    let mut pending = sr();
    pending["metadata"]["name"] = json!("fresh");
    pending.as_object_mut().unwrap().remove("status");
    let t = table(&cols, &[sr(), pending], "77", IncludeObject::Metadata, NOW);
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(t["metadata"]["resourceVersion"], "77");
    assert_eq!(
        t["columnDefinitions"][0],
        json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESC, "priority": 0})
    );
    assert_eq!(
        t["columnDefinitions"][1]["description"],
        "Custom resource definition column (in JSONPath format): .status.phase"
    );
    assert_eq!(t["columnDefinitions"][2]["description"], "ready/total");
    assert_eq!(t["columnDefinitions"][4]["priority"], 1);
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["nightly", "Running", "3/10", 1, "Succeeded", "3m12s"])
    );
    assert_eq!(t["rows"][1]["cells"], json!(["fresh", null, null, null, null, "3m12s"]));
    assert_eq!(
        t["rows"][0]["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": sr()["metadata"]})
    );
    let full = table(&cols, &[sr()], "77", IncludeObject::Object, NOW);
    assert_eq!(full["rows"][0]["object"], sr());
    let none = table(&cols, &[sr()], "77", IncludeObject::None, NOW);
    assert_eq!(none["rows"][0].get("object"), None);
    let empty = table(&cols, &[], "77", IncludeObject::Metadata, NOW);
    assert_eq!(empty["rows"], json!([]));
}

#[test]
fn crd_without_printer_columns_gets_age() {
    let mut c = crd();
    c["spec"]["versions"][0].as_object_mut().unwrap().remove("additionalPrinterColumns");
    let cols = columns_for_crd(&c, "v1alpha1");
    let t = table(&cols, &[sr()], "1", IncludeObject::None, NOW);
    assert_eq!(t["columnDefinitions"][1]["name"], "Age");
    assert_eq!(t["columnDefinitions"][1]["type"], "date");
    assert_eq!(t["rows"][0]["cells"], json!(["nightly", "3m12s"]));
}

#[test]
fn string_columns_print_any_value() {
    let obj = json!({"status": {"n": 5, "m": {"a": 1}, "flag": true}});
    assert_eq!(json_path_cell("string", ".status.n", &obj, NOW), json!("5"));
    assert_eq!(json_path_cell("string", ".status.m", &obj, NOW), json!("map[a:1]"));
    assert_eq!(json_path_cell("boolean", ".status.flag", &obj, NOW), json!(true));
    assert_eq!(json_path_cell("integer", ".status.flag", &obj, NOW), Value::Null);
    assert_eq!(json_path_cell("date", ".status.n", &obj, NOW), Value::Null);
    let bad = json!({"t": "yesterday"});
    assert_eq!(json_path_cell("date", ".t", &bad, NOW), json!("<invalid>"));
}

#[test]
fn deployment_rows() {
    let d = json!({
        "metadata": {"name": "web", "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"replicas": 3,
                 "selector": {"matchLabels": {"tier": "front", "app": "web"},
                              "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]},
                 "template": {"spec": {"containers": [
                     {"name": "web", "image": "nginx:1"}, {"name": "sidecar", "image": "envoy:2"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    });
    let cols = columns_for_builtin("deployments");
    let t = table(&cols, &[d], "5", IncludeObject::Metadata, NOW);
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "web",
            "2/3",
            3,
            2,
            "10m",
            "web,sidecar",
            "nginx:1,envoy:2",
            "app=web,env in (dev,prod),tier=front"
        ])
    );
    let priorities: Vec<i64> = cols.iter().map(|c| c.priority).collect();
    assert_eq!(priorities, [0, 0, 0, 0, 0, 1, 1, 1]);
    assert_eq!(t["columnDefinitions"][2]["name"], "Up-to-date");
    // A new Deployment without status.
    let fresh = json!({"metadata": {"name": "n"}, "spec": {}});
    let t = table(&cols[..5], &[fresh], "5", IncludeObject::None, NOW);
    assert_eq!(t["rows"][0]["cells"], json!(["n", "0/1", 0, 0, "<unknown>"]));
}

#[test]
fn other_builtin_rows() {
    let cm = json!({"metadata": {"name": "proxy", "creationTimestamp": "2025-01-01T00:09:55Z"},
                    "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    let t = table(&columns_for_builtin("configmaps"), &[cm], "1", IncludeObject::None, NOW);
    assert_eq!(t["rows"][0]["cells"], json!(["proxy", 3, "5s"]));

    let ns = json!({"metadata": {"name": "arcgis", "creationTimestamp": "2024-12-30T21:10:00Z"},
                    "status": {"phase": "Active"}});
    let t = table(&columns_for_builtin("namespaces"), &[ns], "1", IncludeObject::None, NOW);
    assert_eq!(t["rows"][0]["cells"], json!(["arcgis", "Active", "27h"]));

    let lease = json!({"metadata": {"name": "servicerefresh", "creationTimestamp": "2025-01-01T00:00:00Z"},
                       "spec": {"holderIdentity": "pod-1"}});
    let t = table(&columns_for_builtin("leases"), &[lease], "1", IncludeObject::None, NOW);
    assert_eq!(t["rows"][0]["cells"], json!(["servicerefresh", "pod-1", "10m"]));

    let crd = json!({"metadata": {"name": "servicerefreshes.gisops.io",
                                  "creationTimestamp": "2025-01-01T00:00:00Z"}});
    let cols = columns_for_builtin("customresourcedefinitions");
    assert_eq!(cols[1].name, "Created At");
    let t = table(&cols, &[crd], "1", IncludeObject::None, NOW);
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["servicerefreshes.gisops.io", "2025-01-01T00:00:00Z"])
    );
}

#[test]
fn event_rows() {
    let ev = json!({
        "metadata": {"name": "nightly.1811", "creationTimestamp": "2025-01-01T00:00:00Z"},
        "involvedObject": {"kind": "ServiceRefresh", "name": "nightly", "namespace": "arcgis"},
        "reason": "BatchStarted", "message": "Batch 1/3 started ", "type": "Normal",
        "firstTimestamp": "2025-01-01T00:05:00Z", "lastTimestamp": "2025-01-01T00:09:30Z",
        "count": 2, "source": {"component": "servicerefresh"}
    });
    let cols = columns_for_builtin("events");
    let t = table(&cols, &[ev], "1", IncludeObject::None, NOW);
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "30s",
            "Normal",
            "BatchStarted",
            "servicerefresh/nightly",
            "",
            "servicerefresh",
            "Batch 1/3 started",
            "5m",
            2,
            "nightly.1811"
        ])
    );
    assert_eq!(cols[0].name, "Last Seen");
    assert_eq!(cols[9].format, "name");
    // events.k8s.io-style: eventTime and reporting fields only.
    let ev2 = json!({"metadata": {"name": "e"}, "eventTime": "2025-01-01T00:09:00.000000Z",
                     "involvedObject": {"kind": "Deployment", "name": "web"},
                     "reportingComponent": "ctrl", "reportingInstance": "pod-1"});
    let t = table(&cols, &[ev2], "1", IncludeObject::None, NOW);
    assert_eq!(t["rows"][0]["cells"][0], "60s");
    assert_eq!(t["rows"][0]["cells"][3], "deployment/web");
    assert_eq!(t["rows"][0]["cells"][5], "ctrl, pod-1");
    assert_eq!(t["rows"][0]["cells"][7], "60s");
}

#[test]
fn list_meta_is_kept() {
    let cols = columns_for_printer_columns(&[]);
    assert_eq!(cols.len(), 2);
    let t = table_with_list_meta(
        &cols,
        &[sr()],
        &json!({"resourceVersion": "9", "continue": "abc", "remainingItemCount": 3}),
        IncludeObject::Metadata,
        NOW,
    );
    assert_eq!(
        t["metadata"],
        json!({"resourceVersion": "9", "continue": "abc", "remainingItemCount": 3})
    );
    assert_eq!(t["rows"][0]["cells"], json!(["nightly", "3m12s"]));
}

/// The real kubectl prints these tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_prints_the_tables() {
    use crate::http::kubectl_harness::{Kubectl, crd as project_crd, json_response};
    use axum::http::HeaderMap;
    use axum::routing::get;

    let sr_table = |headers: HeaderMap| async move {
        let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(accept.contains("as=Table;v=v1;g=meta.k8s.io"), "{accept}");
        let cols = columns_for_crd(&project_crd(), "v1alpha1");
        let mut fresh = sr();
        fresh["metadata"]["name"] = json!("fresh");
        fresh.as_object_mut().map(|m| m.remove("status"));
        json_response(table(&cols, &[sr(), fresh], "77", IncludeObject::Metadata, NOW))
    };
    let deploy_table = || async {
        let d = json!({
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2025-01-01T00:00:00Z",
                         "labels": {"app": "web"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        json_response(table(
            &columns_for_builtin("deployments"),
            &[d],
            "5",
            IncludeObject::Metadata,
            NOW,
        ))
    };
    let routes = axum::Router::new()
        .route("/apis/gisops.io/v1alpha1/namespaces/{ns}/servicerefreshes", get(sr_table))
        .route("/apis/apps/v1/namespaces/{ns}/deployments", get(deploy_table));
    let Some(k) = Kubectl::start(routes).await else {
        return;
    };
    let (ok, out, err) = k.run(&["get", "servicerefreshes"]).await;
    assert!(ok, "{err}");
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "PHASE", "PROGRESS", "BATCH", "FAILED", "AGE"], "{out}");
    // Missing values (null cells) print blank, as with a real server.
    assert_eq!(lines[1], ["nightly", "Running", "3/10", "1", "3m12s"], "{out}");
    assert_eq!(lines[2], ["fresh", "3m12s"], "{out}");

    let (ok, out, err) = k.run(&["get", "sref", "--show-labels"]).await;
    assert!(ok, "{err}");
    assert!(out.lines().nth(1).is_some_and(|l| l.ends_with("a=b")), "{out}");

    let (ok, out, err) = k.run(&["get", "deploy", "-o", "wide"]).await;
    assert!(ok, "{err}");
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        lines[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
        "{out}"
    );
    assert_eq!(lines[1], ["web", "2/3", "3", "2", "10m", "web", "nginx:1", "app=web"], "{out}");
}

#[test]
fn events_k8s_io_and_workload_rows() {
    let ev = json!({
        "metadata": {"name": "e2"},
        "regarding": {"kind": "Deployment", "name": "web"},
        "note": "Scaled up", "reason": "ScalingReplicaSet", "type": "Normal",
        "deprecatedLastTimestamp": "2025-01-01T00:09:50Z", "deprecatedCount": 3,
        "reportingController": "deployment-controller"
    });
    let t = table(&columns_for_builtin("events"), &[ev], "1", IncludeObject::None, NOW);
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "10s",
            "Normal",
            "ScalingReplicaSet",
            "deployment/web",
            "",
            "deployment-controller",
            "Scaled up",
            "<unknown>",
            3,
            "e2"
        ])
    );
    let rs = json!({"metadata": {"name": "web-5d8f9c7b6", "creationTimestamp": "2025-01-01T00:00:00Z"},
                    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                             "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}},
                    "status": {"replicas": 3, "readyReplicas": 2}});
    let t = table(&columns_for_builtin("replicasets"), &[rs], "1", IncludeObject::None, NOW);
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["web-5d8f9c7b6", 3, 3, 2, "10m", "web", "nginx:1", "app=web"])
    );
    let pod = json!({"metadata": {"name": "web-5d8f9c7b6-abcde", "creationTimestamp": "2025-01-01T00:09:00Z"},
                     "spec": {"containers": [{"name": "web"}, {"name": "proxy"}]},
                     "status": {"phase": "Running", "podIP": "10.0.0.7", "containerStatuses": [
                         {"name": "web", "ready": true, "restartCount": 1},
                         {"name": "proxy", "ready": false, "restartCount": 2,
                          "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
    let t = table(&columns_for_builtin("pods"), &[pod], "1", IncludeObject::None, NOW);
    assert_eq!(
        t["rows"][0]["cells"],
        json!([
            "web-5d8f9c7b6-abcde",
            "1/2",
            "CrashLoopBackOff",
            "3",
            "60s",
            "10.0.0.7",
            "<none>",
            "<none>",
            "<none>"
        ])
    );
}

#[test]
fn include_object_query() {
    assert_eq!(IncludeObject::from_query(None), Some(IncludeObject::Metadata));
    assert_eq!(IncludeObject::from_query(Some("Object")), Some(IncludeObject::Object));
    assert_eq!(IncludeObject::from_query(Some("None")), Some(IncludeObject::None));
    assert_eq!(IncludeObject::from_query(Some("bogus")), None);
}
