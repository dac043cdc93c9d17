//! Tests of field sets and their `fieldsV1` encoding.

use serde_json::json;

use super::field_set::{Scope, field_set, from_fields_v1, to_fields_v1};
use crate::patch::builtin_ssa_list;

#[test]
fn fields_v1_round_trip() {
    let obj = json!({"metadata": {"name": "x", "labels": {"a": "b"}}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let set = field_set(&obj, &builtin_ssa_list, Scope::All);
    let v1 = to_fields_v1(&set);
    assert_eq!(
        v1,
        json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
    );
    assert_eq!(from_fields_v1(&v1), set);
}

/// `changed_fields` says what comparing the two full field sets says.
#[test]
fn changed_fields_match_full_field_sets() {
    use super::FieldSet;
    use super::field_set::{changed_fields, get_at, is_list_element};
    let base = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "x", "uid": "u", "labels": {"a": "b"}, "annotations": {"k": "v"}, "finalizers": ["f1"]},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [
            {"name": "c", "image": "i", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80, "protocol": "TCP"}]},
            {"name": "d", "image": "j"}
        ], "volumes": [], "nodeSelector": {}}}},
        "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
    });
    let variants = [
        json!({"metadata": {"annotations": {"k": "w", "n": "1"}}}),
        json!({"metadata": {"labels": null, "finalizers": ["f1", "f2"]}}),
        json!({"spec": {"replicas": 3}}),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i2"}]}}}}),
        json!({"spec": {"template": {"spec": {"volumes": [{"name": "v", "emptyDir": {}}], "nodeSelector": {"z": "1"}}}}}),
        json!({"spec": null}),
        json!({"status": {"replicas": 1, "conditions": [{"type": "Progressing", "status": "True"}]}}),
        json!({"metadata": {"uid": "other", "resourceVersion": "9"}}),
    ];
    for variant in variants {
        let mut new = base.clone();
        json_patch::merge(&mut new, &variant);
        for scope in [Scope::All, Scope::NoStatus, Scope::StatusOnly] {
            let old_fields = field_set(&base, &builtin_ssa_list, scope);
            let new_fields = field_set(&new, &builtin_ssa_list, scope);
            let expected_changed: FieldSet = new_fields
                .iter()
                .filter(|path| {
                    if is_list_element(path) {
                        !old_fields.contains(*path)
                    } else {
                        get_at(&base, path) != get_at(&new, path)
                    }
                })
                .cloned()
                .collect();
            let expected_removed: FieldSet = old_fields.difference(&new_fields).cloned().collect();
            let (changed, removed) = changed_fields(&base, &new, &builtin_ssa_list, scope);
            assert_eq!(changed, expected_changed, "{variant} {scope:?}");
            assert_eq!(removed, expected_removed, "{variant} {scope:?}");
        }
    }
}
