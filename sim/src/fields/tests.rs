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
