//! Tests of the OpenAPI documents, including `kubectl explain` and
//! `kubectl apply --validate=strict` reading them.

use serde_json::{Value, json};

use super::paths::operation_suffix;
use super::*;
use crate::http::kubectl_harness;

fn crd() -> Value {
    kubectl_harness::crd()
}

fn sr_resource() -> ResourceSchema {
    ResourceSchema {
        kind: "ServiceRefresh".into(),
        plural: "servicerefreshes".into(),
        namespaced: true,
        status_subresource: true,
        schema: Some(crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()),
    }
}

#[test]
fn names_and_paths() {
    assert_eq!(gv_path("", "v1"), "api/v1");
    assert_eq!(gv_path("gisops.io", "v1alpha1"), "apis/gisops.io/v1alpha1");
    assert_eq!(
        definition_name("gisops.io", "v1alpha1", "ServiceRefresh"),
        "io.gisops.v1alpha1.ServiceRefresh"
    );
    assert_eq!(definition_name("apps", "v1", "Deployment"), "io.k8s.api.apps.v1.Deployment");
    assert_eq!(definition_name("", "v1", "ConfigMap"), "io.k8s.api.core.v1.ConfigMap");
    assert_eq!(
        definition_name("coordination.k8s.io", "v1", "Lease"),
        "io.k8s.api.coordination.v1.Lease"
    );
    assert_eq!(
        definition_name("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
    );
    assert_eq!(
        operation_suffix("gisops.io", "v1alpha1", "ServiceRefresh", true),
        "GisopsIoV1alpha1NamespacedServiceRefresh"
    );
}

#[test]
fn index_lists_group_versions_with_hashes() {
    let doc = group_version_document("gisops.io", "v1alpha1", &[sr_resource()]);
    let idx = index_for(&[("apis/gisops.io/v1alpha1".into(), doc.clone())]);
    let url = idx["paths"]["apis/gisops.io/v1alpha1"]["serverRelativeURL"].as_str().unwrap();
    assert_eq!(url, format!("/openapi/v3/apis/gisops.io/v1alpha1?hash={}", document_hash(&doc)));
    assert_eq!(document_hash(&doc).len(), 32);
    assert_eq!(document_hash(&doc), document_hash(&doc.clone()));
}

#[test]
fn crd_document_has_kind_list_meta_and_operations() {
    let doc = group_version_document("gisops.io", "v1alpha1", &[sr_resource()]);
    let schemas = &doc["components"]["schemas"];
    let kind = &schemas["io.gisops.v1alpha1.ServiceRefresh"];
    assert_eq!(
        kind["x-kubernetes-group-version-kind"],
        json!([{"group": "gisops.io", "version": "v1alpha1", "kind": "ServiceRefresh"}])
    );
    assert_eq!(
        kind["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(kind["properties"]["apiVersion"]["type"], "string");
    assert!(kind["properties"]["spec"]["properties"]["batchSize"]["description"].is_string());
    assert!(schemas["io.gisops.v1alpha1.ServiceRefreshList"].is_object());
    assert!(schemas[OBJECT_META]["properties"]["labels"].is_object());
    let list_path =
        &doc["paths"]["/apis/gisops.io/v1alpha1/namespaces/{namespace}/servicerefreshes"];
    assert_eq!(
        list_path["get"]["x-kubernetes-group-version-kind"],
        json!({"group": "gisops.io", "version": "v1alpha1", "kind": "ServiceRefresh"})
    );
    for path in [
        "/apis/gisops.io/v1alpha1/namespaces/{namespace}/servicerefreshes/{name}",
        "/apis/gisops.io/v1alpha1/namespaces/{namespace}/servicerefreshes/{name}/status",
    ] {
        let patch = &doc["paths"][path]["patch"];
        let params = patch["parameters"].as_array().unwrap();
        assert!(params.iter().any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
        assert!(
            patch["requestBody"]["content"].get("application/strategic-merge-patch+json").is_none()
        );
    }
    // Every $ref resolves within the document.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(schemas.get(name).is_some(), "dangling ref {name}");
    }
}

#[test]
fn builtin_documents() {
    let doc = group_version_document(
        "apps",
        "v1",
        &[ResourceSchema {
            kind: "Deployment".into(),
            plural: "deployments".into(),
            namespaced: true,
            status_subresource: true,
            schema: None,
        }],
    );
    let schemas = &doc["components"]["schemas"];
    let d = &schemas["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        d["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert_eq!(d["x-kubernetes-group-version-kind"][0]["kind"], "Deployment");
    assert!(
        schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["progressDeadlineSeconds"]
            ["description"]
            .as_str()
            .unwrap()
            .contains("ProgressDeadlineExceeded")
    );
    assert!(
        doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
            .is_object()
    );
    let core = group_version_document(
        "",
        "v1",
        &[ResourceSchema {
            kind: "Namespace".into(),
            plural: "namespaces".into(),
            namespaced: false,
            status_subresource: true,
            schema: None,
        }],
    );
    assert!(core["paths"]["/api/v1/namespaces/{name}"]["patch"].is_object());
    assert!(core["components"]["schemas"]["io.k8s.api.core.v1.Namespace"].is_object());
}

/// Runs the real kubectl explain and create against the documents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_reads_the_documents() {
    let Some(k) = kubectl_harness::Kubectl::start_with_existing().await else {
        return;
    };
    let (ok, out, err) = k.run(&["explain", "servicerefresh.spec.batchSize"]).await;
    assert!(ok, "kubectl explain failed: {err}\n{out}");
    assert!(out.contains("GROUP:      gisops.io"), "{out}");
    assert!(out.contains("KIND:       ServiceRefresh"), "{out}");
    assert!(out.contains("FIELD: batchSize <integer>"), "{out}");
    assert!(out.contains("Number of Deployments restarted together"), "{out}");

    let (ok, out, err) = k.run(&["explain", "sref"]).await;
    assert!(ok, "kubectl explain failed: {err}\n{out}");
    assert!(out.contains("metadata\t<ObjectMeta>"), "{out}");
    assert!(out.contains("spec\t<Object> -required-"), "{out}");

    let (ok, out, err) = k.run(&["explain", "servicerefresh.spec.failurePolicy"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("ENUM:\n    Continue\n    Abort"), "{out}");

    let (ok, out, err) = k.run(&["explain", "servicerefresh.metadata.labels"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("FIELD: labels <map[string]string>"), "{out}");

    let (ok, out, err) = k.run(&["explain", "configmap.data"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("FIELD: data <map[string]string>"), "{out}");

    let (ok, out, err) = k.run(&["explain", "deployment.spec.progressDeadlineSeconds"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("FIELD: progressDeadlineSeconds <integer>"), "{out}");

    // kubectl create finds the fieldValidation parameter and lets the
    // server validate (without it, it validates client-side against
    // /openapi/v2 and fails on a server that lacks it).
    let manifest = k.write(
        "objects.yaml",
        "apiVersion: gisops.io/v1alpha1\nkind: ServiceRefresh\nmetadata:\n  name: nightly\nspec:\n  selector: {}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: proxy\ndata:\n  a: b\n",
    );
    let (ok, out, err) = k
        .run(&[
            "create",
            "-n",
            "default",
            "-f",
            &manifest,
            "-o",
            "jsonpath={.metadata.annotations.query}{\"\\n\"}",
        ])
        .await;
    assert!(ok, "kubectl create failed: {err}\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for line in lines {
        assert!(line.contains("fieldValidation=Strict"), "{out}");
    }

    // kubectl apply to existing objects: a strategic merge patch from
    // its compiled-in types for the Deployment, a merge patch for the
    // custom resource, both server-validated.
    let manifest = k.write(
        "apply.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:2\n---\napiVersion: gisops.io/v1alpha1\nkind: ServiceRefresh\nmetadata:\n  name: nightly\nspec:\n  selector: {}\n  batchSize: 5\n",
    );
    let (ok, out, err) = k.run(&["apply", "-f", &manifest]).await;
    assert!(ok, "kubectl apply failed: {err}\n{out}");
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    assert!(out.contains("servicerefresh.gisops.io/nightly configured"), "{out}");
    let log = k.log();
    assert!(
        log.iter().any(|l| l.starts_with("PATCH /apis/apps/v1/namespaces/default/deployments/web")
            && l.contains("fieldValidation=Strict")
            && l.contains("application/strategic-merge-patch+json")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|l| l.starts_with(
            "PATCH /apis/gisops.io/v1alpha1/namespaces/default/servicerefreshes/nightly"
        ) && l.contains("fieldValidation=Strict")
            && l.contains("application/merge-patch+json")),
        "{log:?}"
    );
}
