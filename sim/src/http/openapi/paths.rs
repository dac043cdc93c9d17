//! The `paths` of a group-version document: the collection, item and
//! status operations of each resource, with the GVK extension and the write
//! parameters (`fieldValidation` among them) kubectl looks for.

use serde_json::{Map, Value, json};

use super::{ResourceSchema, definition_name, gvk, reference};

fn query_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": "string", "uniqueItems": true},
    })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "description": description,
        "required": true,
        "schema": {"type": "string", "uniqueItems": true},
    })
}

const FIELD_VALIDATION_DESC: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.";

fn write_params(patch: bool) -> Vec<Value> {
    let mut params = vec![
        query_param(
            "dryRun",
            "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
        ),
        query_param(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
        ),
        query_param("fieldValidation", FIELD_VALIDATION_DESC),
    ];
    if patch {
        params.push(json!({
            "name": "force",
            "in": "query",
            "description": "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
            "schema": {"type": "boolean", "uniqueItems": true},
        }));
    }
    params
}

fn json_content(schema: Value) -> Value {
    json!({
        "application/json": {"schema": schema.clone()},
        "application/yaml": {"schema": schema},
    })
}

fn ok_response(schema: Value) -> Value {
    json!({"200": {"description": "OK", "content": json_content(schema)}})
}

struct OpContext<'a> {
    group: &'a str,
    version: &'a str,
    kind: &'a str,
    op_suffix: String,
}

impl OpContext<'_> {
    fn op(&self, action: &str, verb: &str, description: String, responses: Value) -> Value {
        json!({
            "tags": [self.op_suffix.clone()],
            "description": description,
            "operationId": format!("{verb}{}", self.op_suffix),
            "responses": responses,
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk(self.group, self.version, self.kind),
        })
    }
}

/// A write operation: `operation` with the write query parameters (those
/// of PATCH include `force`) and its request body.
fn write_operation(mut operation: Value, patch: bool, request_body: Value) -> Value {
    if let Some(fields) = operation.as_object_mut() {
        fields.insert("parameters".to_owned(), Value::Array(write_params(patch)));
        fields.insert("requestBody".to_owned(), request_body);
    }
    operation
}

/// The operation-id suffix of a kind, e.g.
/// `GisopsIoV1alpha1NamespacedServiceRefresh`.
pub fn operation_suffix(group: &str, version: &str, kind: &str, namespaced: bool) -> String {
    let mut group_part = String::new();
    for word in group.split(['.', '-']).filter(|word| !word.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            group_part.extend(first.to_uppercase());
            group_part.push_str(chars.as_str());
        }
    }
    if group.is_empty() {
        group_part.push_str("Core");
    }
    let mut version_part = String::new();
    let mut chars = version.chars();
    if let Some(first) = chars.next() {
        version_part.extend(first.to_uppercase());
        version_part.push_str(chars.as_str());
    }
    let scope = if namespaced { "Namespaced" } else { "" };
    format!("{group_part}{version_part}{scope}{kind}")
}

/// Adds the operations of one resource to `paths`.
pub fn resource_paths(
    group: &str,
    version: &str,
    res: &ResourceSchema,
    paths: &mut Map<String, Value>,
) {
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let collection = if res.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", res.plural)
    } else {
        format!("{prefix}/{}", res.plural)
    };
    let kind = res.kind.as_str();
    let ctx = OpContext {
        group,
        version,
        kind,
        op_suffix: operation_suffix(group, version, kind, res.namespaced),
    };
    let item_ref = reference(&definition_name(group, version, kind));
    let list_ref = reference(&definition_name(group, version, &format!("{kind}List")));
    let mut common = vec![query_param(
        "pretty",
        "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
    )];
    if res.namespaced {
        common.push(path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    let body = |content_types: &[&str]| {
        let mut content = Map::new();
        for ct in content_types {
            content.insert((*ct).to_owned(), json!({"schema": item_ref.clone()}));
        }
        json!({"content": Value::Object(content), "required": true})
    };
    let patch_body = json!({
        "content": {
            "application/apply-patch+yaml": {"schema": {"type": "object"}},
            "application/json-patch+json": {"schema": {"type": "object"}},
            "application/merge-patch+json": {"schema": {"type": "object"}},
        },
        "required": true,
    });

    paths.insert(
        collection.clone(),
        json!({
            "get": ctx.op("list", "list", format!("list or watch objects of kind {kind}"), ok_response(list_ref)),
            "post": write_operation(
                ctx.op("post", "create", format!("create a {kind}"), ok_response(item_ref.clone())),
                false,
                body(&["application/json", "application/yaml"]),
            ),
            "parameters": common.clone(),
        }),
    );

    let mut item_common = vec![path_param("name", &format!("name of the {kind}"))];
    item_common.extend(common);
    let item_ops = |sub: &str| {
        let what = if sub.is_empty() {
            format!("the specified {kind}")
        } else {
            format!("{sub} of the specified {kind}")
        };
        let verb_suffix = if sub.is_empty() { "" } else { "Status" };
        let mut ops = Map::new();
        ops.insert(
            "get".into(),
            ctx.op(
                "get",
                &format!("read{verb_suffix}"),
                format!("read {what}"),
                ok_response(item_ref.clone()),
            ),
        );
        let replace = format!("replace{verb_suffix}");
        let replace =
            ctx.op("put", &replace, format!("replace {what}"), ok_response(item_ref.clone()));
        let request_body = body(&["application/json", "application/yaml"]);
        ops.insert("put".into(), write_operation(replace, false, request_body));
        let patch = format!("patch{verb_suffix}");
        let patch = ctx.op(
            "patch",
            &patch,
            format!("partially update {what}"),
            ok_response(item_ref.clone()),
        );
        ops.insert("patch".into(), write_operation(patch, true, patch_body.clone()));
        if sub.is_empty() {
            ops.insert(
                "delete".into(),
                ctx.op(
                    "delete",
                    "delete",
                    format!("delete a {kind}"),
                    ok_response(item_ref.clone()),
                ),
            );
        }
        ops.insert("parameters".into(), Value::Array(item_common.clone()));
        Value::Object(ops)
    };
    paths.insert(format!("{collection}/{{name}}"), item_ops(""));
    if res.status_subresource {
        paths.insert(format!("{collection}/{{name}}/status"), item_ops("status"));
    }
}
