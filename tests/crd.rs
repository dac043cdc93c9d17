//! The generated CRD: committed copy in sync, every field described for `kubectl explain`,
//! and the schema constraints the API server enforces for us.

mod common;

use serde_json::Value;
use servicerefresh_core::crd::{crd, crd_yaml};

fn schema() -> Value {
    let crd = serde_json::to_value(crd()).expect("CRD serializes");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn undescribed_fields(schema: &Value, path: &str, missing: &mut Vec<String>) {
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let field = format!("{path}.{name}");
            if property.get("description").and_then(Value::as_str).is_none_or(str::is_empty) {
                missing.push(field.clone());
            }
            undescribed_fields(property, &field, missing);
        }
    }
    if let Some(items) = schema.get("items") {
        undescribed_fields(items, &format!("{path}[]"), missing);
    }
    if let Some(additional) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        undescribed_fields(additional, &format!("{path}{{}}"), missing);
    }
}

#[test]
fn committed_crd_matches_generated() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/servicerefresh.yaml"))
            .expect("crds/servicerefresh.yaml exists");
    assert!(
        committed == crd_yaml().expect("CRD renders"),
        "crds/servicerefresh.yaml is stale: run `cargo run -q -- crd > crds/servicerefresh.yaml`"
    );
}

#[test]
fn every_field_has_a_description() {
    let schema = schema();
    let mut missing = Vec::new();
    undescribed_fields(&schema, "", &mut missing);
    assert!(missing.is_empty(), "fields without description: {missing:#?}");
    assert!(schema["description"].as_str().is_some_and(|d| !d.is_empty()));
}

#[test]
fn schema_states_what_a_schema_can() {
    let spec = &schema()["properties"]["spec"];
    assert_eq!(spec["required"], serde_json::json!(["selector"]));
    let batch_size = &spec["properties"]["batchSize"];
    assert_eq!(batch_size["default"], 10);
    assert_eq!(batch_size["minimum"].as_f64(), Some(1.0));
    assert_eq!(batch_size["maximum"].as_f64(), Some(100.0));
    assert_eq!(
        spec["properties"]["failurePolicy"]["enum"],
        serde_json::json!(["Continue", "Abort"])
    );
    assert_eq!(spec["properties"]["failurePolicy"]["default"], "Continue");
    assert_eq!(spec["properties"]["batchTimeout"]["default"], "10m");
    assert!(spec["properties"]["batchTimeout"]["pattern"].is_string());
}

#[test]
fn printer_columns_short_names_and_category() {
    let crd = serde_json::to_value(crd()).expect("CRD serializes");
    let columns: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        columns,
        ["Phase", "Progress", "Batch", "Failed", "Reason", "Message", "Age", "Kinds"]
    );
    let column = |name: &str| {
        crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .and_then(|columns| columns.iter().find(|c| c["name"] == name).cloned())
            .expect("the column")
    };
    // The Ready condition carries the reason of every situation (running, waiting, stalled).
    assert_eq!(column("Reason")["jsonPath"], r#".status.conditions[?(@.type=="Ready")].reason"#);
    assert_eq!(column("Reason").get("priority"), None, "in the default columns");
    assert_eq!(column("Message")["priority"], 1, "with -o wide");
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "sref");
    assert_eq!(crd["spec"]["names"]["categories"], serde_json::json!(["gisops"]));
    assert_eq!(crd["spec"]["versions"][0]["subresources"]["status"], serde_json::json!({}));
}

/// `fixture` is contained in `stored`: every field it sets is there with the same value.
fn contained(fixture: &Value, stored: &Value) -> bool {
    match (fixture, stored) {
        (Value::Object(fixture), Value::Object(stored)) => fixture
            .iter()
            .all(|(key, value)| stored.get(key).is_some_and(|stored| contained(value, stored))),
        (Value::Array(fixture), Value::Array(stored)) => {
            fixture.len() == stored.len()
                && fixture.iter().zip(stored).all(|(fixture, stored)| contained(fixture, stored))
        }
        (fixture, stored) => fixture == stored,
    }
}

/// The Argo CD health check's fixtures (charts/servicerefresh/argocd/fixtures) are
/// ServiceRefreshes the operator's types read and the API server accepts: spec and status pass
/// the CRD's schema (server-side apply refuses fields the schema does not declare) and are
/// stored as written, so the fixtures cannot drift from the resource's real shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_argo_cd_fixtures_are_valid_service_refreshes() {
    use kube::api::{Patch, PatchParams};
    use servicerefresh_core::crd::ServiceRefresh;

    let cluster = common::SimCluster::start(servicerefresh_sim::SimConfig::default()).await;
    let api = cluster.refreshes();
    let params = PatchParams::apply("argocd-fixtures").force();
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("charts/servicerefresh/argocd/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .expect("fixtures")
        .map(|entry| entry.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        let name = file.file_stem().and_then(|stem| stem.to_str()).expect("name").to_owned();
        let text = std::fs::read_to_string(&file).expect("read fixture");
        let mut object: Value = serde_saphyr::from_str(&text).expect("YAML");
        // A phase from a future operator: neither the operator's types nor the schema take it.
        let future = name == "unknown-phase";
        let read = serde_json::from_value::<ServiceRefresh>(object.clone());
        assert_eq!(read.is_err(), future, "{name}: the operator reads it: {read:?}");
        let status = object.as_object_mut().and_then(|fields| fields.remove("status"));
        object["metadata"] = serde_json::json!({"name": name, "namespace": common::NAMESPACE});
        api.patch(&name, &params, &Patch::Apply(&object))
            .await
            .unwrap_or_else(|error| panic!("{name}: the spec is refused: {error}"));
        let Some(status) = status else {
            continue;
        };
        let body = serde_json::json!({
            "apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh", "status": status,
        });
        let stored = api.patch_status(&name, &params, &Patch::Apply(&body)).await;
        if future {
            let error = stored.expect_err("phase Hibernating is refused");
            assert!(error.to_string().contains("Hibernating"), "{error}");
            continue;
        }
        let stored =
            stored.unwrap_or_else(|error| panic!("{name}: the status is refused: {error}"));
        // Both through the operator's types, which write times in one format.
        let stored = serde_json::to_value(stored.status).expect("JSON");
        let written: servicerefresh_core::crd::ServiceRefreshStatus =
            serde_json::from_value(status).expect("the status reads");
        let written = serde_json::to_value(written).expect("JSON");
        assert!(contained(&written, &stored), "{name}: stored as\n{stored:#}\nnot as\n{written:#}");
    }
    cluster.sim.shutdown().await;
}
