//! The generated CRD: committed copy in sync, every field described for `kubectl explain`,
//! and the schema constraints the API server enforces for us.

use serde_json::Value;
use servicerefresh::crd::{crd, crd_yaml};

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
    assert_eq!(columns, ["Phase", "Progress", "Batch", "Failed", "Age"]);
    assert_eq!(crd["spec"]["names"]["shortNames"][0], "sref");
    assert_eq!(crd["spec"]["names"]["categories"], serde_json::json!(["gisops"]));
    assert_eq!(crd["spec"]["versions"][0]["subresources"]["status"], serde_json::json!({}));
}
