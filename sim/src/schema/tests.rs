//! Tests of pruning, defaulting and validation against structural schemas.

use serde_json::{Value, json};

use super::*;
use crate::error::{ApiError, Cause};

/// The 422 body the server answers for these errors on a custom resource.
fn invalid_status(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> Value {
    let causes: Vec<Cause> = errors.iter().map(Cause::from).collect();
    ApiError::invalid(kind, group, name, &causes).to_status()
}

/// Mimics the project's ServiceRefresh schema.
fn crd_schema() -> Value {
    json!({
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["selector"],
                "properties": {
                    "selector": {
                        "type": "object",
                        "properties": {
                            "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "matchExpressions": {"type": "array", "items": {
                                "type": "object",
                                "required": ["key", "operator"],
                                "properties": {
                                    "key": {"type": "string"},
                                    "operator": {"type": "string"},
                                    "values": {"type": "array", "items": {"type": "string"}}
                                }
                            }}
                        }
                    },
                    "batchSize": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 100, "default": 10},
                    "batchTimeout": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$", "default": "10m"},
                    "failurePolicy": {"type": "string", "enum": ["Continue", "Abort"], "default": "Continue"},
                    "trigger": {"type": "string", "nullable": true},
                    "namePatterns": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "configMapTriggers": {"type": "array", "items": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "keys": {"type": "array", "items": {"type": "string"}, "default": []}
                        }
                    }}
                }
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {
                "phase": {"type": "string"}
            }}
        }
    })
}

fn object(spec: Value) -> Value {
    json!({"apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
           "metadata": {"name": "x", "namespace": "arcgis"}, "spec": spec})
}

fn messages(errors: &[FieldError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn defaults_fill_absent_fields_recursively() {
    let schema = crd_schema();
    let mut obj = object(json!({"selector": {}, "configMapTriggers": [{"name": "proxy"}]}));
    apply_defaults(&schema, &mut obj);
    assert_eq!(obj["spec"]["batchSize"], 10);
    assert_eq!(obj["spec"]["batchTimeout"], "10m");
    assert_eq!(obj["spec"]["failurePolicy"], "Continue");
    assert_eq!(obj["spec"]["configMapTriggers"][0]["keys"], json!([]));
    assert_eq!(obj["metadata"], json!({"name": "x", "namespace": "arcgis"}));
    assert!(validate(&schema, &obj).is_empty());
    // Defaults inside defaults.
    let nested = json!({"type": "object", "properties": {"a": {
        "type": "object", "default": {},
        "properties": {"b": {"type": "integer", "default": 3}}
    }}});
    let mut o = json!({});
    apply_defaults(&nested, &mut o);
    assert_eq!(o, json!({"a": {"b": 3}}));
}

#[test]
fn non_nullable_nulls_are_dropped_then_defaulted() {
    let schema = crd_schema();
    let mut obj = object(json!({"selector": {}, "batchSize": null, "trigger": null}));
    apply_defaults(&schema, &mut obj);
    assert_eq!(obj["spec"]["batchSize"], 10);
    assert_eq!(obj["spec"]["trigger"], Value::Null);
    assert!(validate(&schema, &obj).is_empty());
}

#[test]
fn prune_drops_unknown_fields_only() {
    let schema = crd_schema();
    let mut obj = object(json!({
        "selector": {"matchLabels": {"app": "x"}, "bogus": 1},
        "colour": "red",
        "configMapTriggers": [{"name": "a", "extra": true}]
    }));
    obj["status"] = json!({"phase": "Running", "anything": {"goes": 1}});
    obj["extraTop"] = json!(1);
    let pruned = prune(&schema, &mut obj);
    assert_eq!(
        pruned,
        vec!["extraTop", "spec.colour", "spec.configMapTriggers[0].extra", "spec.selector.bogus"]
    );
    assert_eq!(obj["spec"]["selector"], json!({"matchLabels": {"app": "x"}}));
    assert_eq!(obj["status"]["anything"], json!({"goes": 1}));
    assert_eq!(obj["apiVersion"], "gisops.io/v1alpha1");
    assert_eq!(obj["metadata"]["name"], "x");
}

#[test]
fn minimum_and_maximum() {
    let schema = crd_schema();
    let errs = validate(&schema, &object(json!({"selector": {}, "batchSize": 0})));
    assert_eq!(
        messages(&errs),
        vec![
            "spec.batchSize: Invalid value: 0: spec.batchSize in body should be greater than or equal to 1"
        ]
    );
    assert_eq!(errs[0].reason, FieldErrorReason::Invalid);
    let errs = validate(&schema, &object(json!({"selector": {}, "batchSize": 101})));
    assert_eq!(
        errs[0].message,
        "Invalid value: 101: spec.batchSize in body should be less than or equal to 100"
    );
    let excl = json!({"type": "number", "minimum": 1.5, "exclusiveMinimum": true, "maximum": 3, "exclusiveMaximum": true});
    assert_eq!(
        validate(&excl, &json!(1.5))[0].message,
        "Invalid value: 1.5: <root> in body should be greater than 1.5"
    );
    assert_eq!(
        validate(&excl, &json!(3))[0].message,
        "Invalid value: 3: <root> in body should be less than 3"
    );
}

#[test]
fn required_enum_type_and_pattern() {
    let schema = crd_schema();
    let errs = validate(&schema, &object(json!({"failurePolicy": "Foo"})));
    assert_eq!(
        messages(&errs),
        vec![
            "spec.selector: Required value",
            "spec.failurePolicy: Unsupported value: \"Foo\": supported values: \"Continue\", \"Abort\""
        ]
    );
    assert_eq!(errs[0].reason, FieldErrorReason::Required);
    assert_eq!(errs[1].reason, FieldErrorReason::NotSupported);
    let errs = validate(&schema, &object(json!({"selector": {}, "batchSize": "ten"})));
    assert_eq!(
        messages(&errs),
        vec![
            "spec.batchSize: Invalid value: \"string\": spec.batchSize in body must be of type integer: \"string\""
        ]
    );
    assert_eq!(errs[0].reason, FieldErrorReason::TypeInvalid);
    let errs = validate(&schema, &object(json!({"selector": {}, "batchTimeout": "10x"})));
    assert_eq!(
        messages(&errs),
        vec![
            "spec.batchTimeout: Invalid value: \"10x\": spec.batchTimeout in body should match '^([0-9]+(ms|s|m|h))+$'"
        ]
    );
    let errs = validate(&schema, &json!({"apiVersion": "v", "kind": "k", "metadata": {}}));
    assert_eq!(messages(&errs), vec!["spec: Required value"]);
}

#[test]
fn integers_must_be_whole_and_null_needs_nullable() {
    let s = json!({"type": "integer"});
    assert!(validate(&s, &json!(3)).is_empty());
    assert!(validate(&s, &json!(3.0)).is_empty());
    assert_eq!(
        validate(&s, &json!(3.5))[0].message,
        "Invalid value: \"number\": <root> in body must be of type integer: \"number\""
    );
    let obj = json!({"type": "object", "properties": {"n": {"type": "integer"}, "m": {"type": "string", "nullable": true}}});
    let errs = validate(&obj, &json!({"n": null, "m": null}));
    assert_eq!(
        messages(&errs),
        vec!["n: Invalid value: \"null\": n in body must be of type integer: \"null\""]
    );
    let b = json!({"type": "boolean"});
    assert_eq!(
        validate(&b, &json!("true"))[0].message,
        "Invalid value: \"string\": <root> in body must be of type boolean: \"string\""
    );
}

#[test]
fn string_lengths_and_format() {
    let s = json!({"type": "object", "properties": {
        "a": {"type": "string", "maxLength": 3, "minLength": 2},
        "t": {"type": "string", "format": "date-time"}
    }});
    let errs = validate(&s, &json!({"a": "abcd", "t": "2024-01-02T03:04:05Z"}));
    assert_eq!(messages(&errs), vec!["a: Too long: may not be more than 3 bytes"]);
    assert_eq!(errs[0].reason, FieldErrorReason::TooLong);
    let errs = validate(&s, &json!({"a": "x", "t": "yesterday"}));
    assert_eq!(
        messages(&errs),
        vec![
            "a: Invalid value: \"x\": a in body should be at least 2 chars long",
            "t: Invalid value: \"yesterday\": t in body must be of type date-time: \"yesterday\""
        ]
    );
}

#[test]
fn arrays_items_and_list_types() {
    let schema = crd_schema();
    let errs = validate(
        &schema,
        &object(
            json!({"selector": {"matchExpressions": [{"key": "a"}]}, "namePatterns": ["a", "b", "a"]}),
        ),
    );
    assert_eq!(
        messages(&errs),
        vec![
            "spec.selector.matchExpressions[0].operator: Required value",
            "spec.namePatterns[2]: Duplicate value: \"a\""
        ]
    );
    let s = json!({"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "integer"}});
    assert_eq!(
        messages(&validate(&s, &json!([]))),
        vec![": Invalid value: 0: <root> in body should have at least 1 items"]
    );
    let errs = validate(&s, &json!([1, "x", 3]));
    assert_eq!(
        messages(&errs),
        vec![
            "[1]: Invalid value: \"string\": [1] in body must be of type integer: \"string\"",
            ": Too many: 3: must have at most 2 items"
        ]
    );
    let m = json!({"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                   "items": {"type": "object", "properties": {"name": {"type": "string"}}}});
    assert_eq!(
        messages(&validate(&m, &json!([{"name": "a"}, {"name": "a"}]))),
        vec!["[1]: Duplicate value: map[string]interface {}{\"name\":\"a\"}"]
    );
}

#[test]
fn additional_properties_and_int_or_string() {
    let s = json!({"type": "object", "properties": {
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "surge": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    }});
    assert!(validate(&s, &json!({"labels": {"a": "b"}, "surge": 1})).is_empty());
    assert!(validate(&s, &json!({"surge": "25%"})).is_empty());
    let errs = validate(&s, &json!({"labels": {"a": 1}, "surge": true}));
    assert_eq!(
        messages(&errs),
        vec![
            "labels.a: Invalid value: \"integer\": labels.a in body must be of type string: \"integer\"",
            "surge: Invalid value: \"boolean\": surge in body must be of type integer,string: \"boolean\""
        ]
    );
}

/// The project's CRD, as `servicerefresh crd` generates it.
fn project_schema() -> Value {
    let crd: Value =
        serde_json::from_str(include_str!("../../tests/fixtures/servicerefresh-crd.json")).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn project_crd_defaults_and_validation() {
    let schema = project_schema();
    let mut obj = object(json!({"selector": {"matchLabels": {"app": "map"}}}));
    assert!(prune(&schema, &mut obj).is_empty());
    apply_defaults(&schema, &mut obj);
    assert_eq!(obj["spec"]["batchSize"], 10);
    assert_eq!(obj["spec"]["batchTimeout"], "10m");
    assert_eq!(obj["spec"]["failurePolicy"], "Continue");
    assert_eq!(obj["spec"]["suspend"], false);
    assert_eq!(obj["spec"]["dryRun"], false);
    assert_eq!(obj.get("status"), None);
    assert!(validate(&schema, &obj).is_empty());

    let mut bad = object(json!({
        "batchSize": 0, "batchTimeout": "10x", "failurePolicy": "Foo",
        "configMapTriggers": [{"name": ""}], "colour": "red"
    }));
    assert_eq!(prune(&schema, &mut bad), vec!["spec.colour"]);
    apply_defaults(&schema, &mut bad);
    let errs = validate(&schema, &bad);
    assert_eq!(
        messages(&errs),
        vec![
            "spec.selector: Required value",
            "spec.batchSize: Invalid value: 0: spec.batchSize in body should be greater than or equal to 1",
            "spec.batchTimeout: Invalid value: \"10x\": spec.batchTimeout in body should match '^([0-9]+(ms|s|m|h))+$'",
            "spec.configMapTriggers[0].name: Invalid value: \"\": spec.configMapTriggers[0].name in body should be at least 1 chars long",
            "spec.failurePolicy: Unsupported value: \"Foo\": supported values: \"Continue\", \"Abort\"",
        ]
    );
    let errs = validate(&schema, &object(json!({"selector": {}, "batchSize": 101})));
    assert_eq!(
        messages(&errs),
        vec![
            "spec.batchSize: Invalid value: 101: spec.batchSize in body should be less than or equal to 100"
        ]
    );

    // Status written by the operator: defaults fill the totals.
    let mut with_status = object(json!({"selector": {}}));
    with_status["status"] = json!({"phase": "Running", "history": [{"id": "r1", "phase": "Succeeded", "reason": "Created", "totals": {}}]});
    apply_defaults(&schema, &mut with_status);
    assert_eq!(with_status["status"]["totals"]["services"], 0);
    assert_eq!(with_status["status"]["history"][0]["totals"]["failed"], 0);
    assert_eq!(with_status["status"]["triggers"], json!({}));
    assert!(validate(&schema, &with_status).is_empty());
    with_status["status"]["phase"] = json!("Exploded");
    assert_eq!(
        messages(&validate(&schema, &with_status)),
        vec![
            "status.phase: Unsupported value: \"Exploded\": supported values: \"Pending\", \"Running\", \"Succeeded\", \"Failed\", \"Suspended\""
        ]
    );
}

#[test]
fn invalid_status_body() {
    let schema = crd_schema();
    let errs =
        validate(&schema, &object(json!({"selector": {}, "batchSize": 0, "failurePolicy": "Foo"})));
    let status = invalid_status("ServiceRefresh", "gisops.io", "x", &errs);
    assert_eq!(
        status["message"],
        "ServiceRefresh.gisops.io \"x\" is invalid: [spec.batchSize: Invalid value: 0: spec.batchSize in body should be greater than or equal to 1, spec.failurePolicy: Unsupported value: \"Foo\": supported values: \"Continue\", \"Abort\"]"
    );
    assert_eq!(status["code"], 422);
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["details"]["group"], "gisops.io");
    assert_eq!(status["details"]["kind"], "ServiceRefresh");
    assert_eq!(status["details"]["name"], "x");
    assert_eq!(
        status["details"]["causes"][0],
        json!({"reason": "FieldValueInvalid", "field": "spec.batchSize",
               "message": "Invalid value: 0: spec.batchSize in body should be greater than or equal to 1"})
    );
    let one = invalid_status("ServiceRefresh", "gisops.io", "x", &errs[..1]);
    assert_eq!(
        one["message"],
        "ServiceRefresh.gisops.io \"x\" is invalid: spec.batchSize: Invalid value: 0: spec.batchSize in body should be greater than or equal to 1"
    );
    let core = invalid_status("ConfigMap", "", "c", &errs[..1]);
    assert!(core["message"].as_str().unwrap().starts_with("ConfigMap \"c\" is invalid: "));
    assert_eq!(core["details"].get("group"), None);
}

/// Decodes `object` as a built-in kind; the error message or the unknown
/// fields.
fn decode_as(root: &str, object: Value) -> Result<Vec<String>, String> {
    let mut object = object;
    decode(builtin_schemas(), root, &mut object)
        .map(|decoded| decoded.unknown_fields)
        .map_err(|error| error.message)
}

#[test]
fn typed_decoding_words_errors_as_go() {
    let deployment = "io.k8s.api.apps.v1.Deployment";
    assert_eq!(
        decode_as(deployment, json!({"spec": "x"})),
        Err("json: cannot unmarshal string into Go struct field Deployment.spec of type v1.DeploymentSpec".into())
    );
    assert_eq!(
        decode_as(deployment, json!({"spec": {"template": {"spec": {"containers": {}}}}})),
        Err("json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers of type []v1.Container".into())
    );
    assert_eq!(
        decode_as(deployment, json!({"spec": {"replicas": 3_000_000_000_i64}})),
        Err("json: cannot unmarshal number 3000000000 into Go struct field DeploymentSpec.spec.replicas of type int32".into())
    );
    assert_eq!(
        decode_as(deployment, json!({"spec": {"paused": "yes"}})),
        Err("json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool".into())
    );
    assert_eq!(
        decode_as("io.k8s.api.core.v1.ConfigMap", json!({"data": {"a": 1}})),
        Err("json: cannot unmarshal number into Go struct field ConfigMap.data of type string"
            .into())
    );
    // null sets nothing; quantities may be numbers; unknown fields are
    // reported with their indices.
    assert_eq!(
        decode_as(
            deployment,
            json!({"metadata": {"labels": null}, "spec": {"template": {"spec": {"containers": [
                {"name": "a", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}}, "x": 1}
            ]}}}})
        ),
        Ok(vec!["spec.template.spec.containers[0].x".to_string()])
    );
    let secret = "io.k8s.api.core.v1.Secret";
    assert_eq!(
        decode_as(secret, json!({"data": {"k": "abc"}})),
        Err("illegal base64 data at input byte 0".into())
    );
    assert_eq!(
        decode_as(secret, json!({"data": {"k": "aGVsbG8"}})),
        Err("illegal base64 data at input byte 4".into())
    );
    assert_eq!(decode_as(secret, json!({"data": {"k": "aGVsbG8="}})), Ok(vec![]));
    assert_eq!(
        decode_as("io.k8s.api.core.v1.Pod", json!({"spec": {"containers": [{"resources": {"limits": {"cpu": "1Zi"}}}]}})),
        Err("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".into())
    );
}

#[test]
fn cel_rules_run_with_self_and_old_self() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.a < self.b"},
                {"rule": "self.a >= oldSelf.a", "message": "a may not decrease", "reason": "FieldValueInvalid"},
            ],
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        }},
    });
    let object = json!({"spec": {"a": 2, "b": 1}});
    let errors = validate_rules(&schema, &object, None);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string(),
        "spec: Invalid value: \"object\": failed rule: self.a < self.b"
    );
    let old = json!({"spec": {"a": 3, "b": 4}});
    let errors = validate_rules(&schema, &object, Some(&old));
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "spec: Invalid value: \"object\": failed rule: self.a < self.b",
            "spec: Invalid value: \"object\": a may not decrease"
        ]
    );
    assert!(check_rules(&schema).is_empty());
    let broken = json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.a >"}]});
    assert_eq!(check_rules(&broken).len(), 1);
}

#[test]
fn cel_runtime_errors_are_worded_as_the_server() {
    let schema = json!({"type": "object", "properties": {"spec": {
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self.name == 'x'"}],
        "properties": {"name": {"type": "string"}},
    }}});
    let errors = validate_rules(&schema, &json!({"spec": {}}), None);
    assert_eq!(
        errors[0].to_string(),
        "spec: Invalid value: \"object\": no such key: name evaluating rule: self.name == 'x'"
    );
}
