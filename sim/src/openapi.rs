//! The OpenAPI v3 documents the API server publishes at `/openapi/v3`: the
//! index of group-versions and one document per group-version, built from the
//! served resources (the CRDs' `openAPIV3Schema`s, and small described
//! schemas for the built-in kinds). kubectl reads them for two things, both of
//! which this module serves faithfully:
//! - `kubectl explain`: it finds the kind through the document's `paths`
//!   (an operation on `/apis/<g>/<v>/[namespaces/{namespace}/]<plural>`
//!   carrying `x-kubernetes-group-version-kind`), then the schema in
//!   `components.schemas` whose `x-kubernetes-group-version-kind` list holds
//!   that GVK, and walks `properties`, `items`, `additionalProperties`,
//!   `$ref` and `allOf`.
//! - `kubectl apply|create|replace` with `--validate=strict` (the default):
//!   it looks for the PATCH operation of the GVK and its `fieldValidation`
//!   query parameter to decide that the server validates (else it validates
//!   client-side, or fails when it cannot). PATCH request bodies do not list
//!   strategic-merge-patch, so kubectl keeps computing strategic merge
//!   patches from its compiled-in types for built-ins.
//!
//! Wiring (server core): `GET /openapi/v3` answers [`index`] (or
//! [`index_for`]); `GET /openapi/v3/<gv path>` (with or without
//! `?hash=<hash>`, the hash being [`document_hash`] of the document) answers
//! the document, both `Content-Type: application/json`; a hashed URL may be
//! sent with `Cache-Control: public, immutable`, an unhashed one with
//! `no-cache, private`. Unknown group-versions are 404.
//! [`gv_path`] gives `api/v1` or `apis/<group>/<version>`.

use serde_json::{Map, Value, json};

/// One served resource of a group-version, for its document.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceSchema {
    /// Kind, e.g. `ServiceRefresh`.
    pub kind: String,
    /// Plural resource name (URL segment), e.g. `servicerefreshes`.
    pub plural: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Has a `/status` subresource.
    pub status_subresource: bool,
    /// The CRD version's `openAPIV3Schema`; `None` for built-ins (a small
    /// described schema of the kind is used, see [`builtin_schema`]).
    pub schema: Option<Value>,
}

/// `api/v1` for the core group, `apis/<group>/<version>` otherwise.
pub fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// A stable hash of a document, for its `serverRelativeURL` (`?hash=`):
/// upper-case hex like the real server's (which uses SHA-512; any stable
/// digest serves the clients' caches equally).
pub fn document_hash(doc: &Value) -> String {
    let text = doc.to_string();
    let mut out = String::new();
    for seed in [0xcbf2_9ce4_8422_2325_u64, 0x8422_2325_cbf2_9ce4_u64] {
        let mut hash = seed;
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.push_str(&format!("{hash:016X}"));
    }
    out
}

/// The `/openapi/v3` index from `(gv path, hash)` pairs.
pub fn index(entries: &[(String, String)]) -> Value {
    let mut paths = Map::new();
    for (path, hash) in entries {
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
        );
    }
    json!({ "paths": Value::Object(paths) })
}

/// The `/openapi/v3` index from `(gv path, document)` pairs.
pub fn index_for(documents: &[(String, Value)]) -> Value {
    let entries: Vec<(String, String)> =
        documents.iter().map(|(path, doc)| (path.clone(), document_hash(doc))).collect();
    index(&entries)
}

/// The reverse-domain prefix of definition names for a group.
fn definition_prefix(group: &str) -> String {
    match group {
        "" => "io.k8s.api.core".to_owned(),
        "apiextensions.k8s.io" => {
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions".to_owned()
        }
        g if g.ends_with(".k8s.io") || !g.contains('.') => {
            let short = g.trim_end_matches(".k8s.io").split('.').next().unwrap_or(g);
            format!("io.k8s.api.{short}")
        }
        g => {
            let mut parts: Vec<&str> = g.split('.').collect();
            parts.reverse();
            parts.join(".")
        }
    }
}

/// The definition name of a kind, e.g. `io.gisops.v1alpha1.ServiceRefresh`,
/// `io.k8s.api.apps.v1.Deployment`.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    format!("{}.{version}.{kind}", definition_prefix(group))
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

const API_VERSION_DESC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DESC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DESC: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A property referring to a definition, as the real documents write it.
fn ref_property(name: &str, description: &str) -> Value {
    json!({"description": description, "default": {}, "allOf": [reference(name)]})
}

/// The schema of a kind as published: the given schema with `apiVersion`,
/// `kind` and `metadata` (a reference to ObjectMeta) added at the root, and
/// the GVK extension.
fn kind_schema(group: &str, version: &str, kind: &str, schema: &Value) -> Value {
    let mut root = match schema {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    if !root.contains_key("type") {
        root.insert("type".into(), json!("object"));
    }
    let mut props = root
        .remove("properties")
        .and_then(|p| match p {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    props.insert("apiVersion".into(), json!({"description": API_VERSION_DESC, "type": "string"}));
    props.insert("kind".into(), json!({"description": KIND_DESC, "type": "string"}));
    props.insert("metadata".into(), ref_property(OBJECT_META, METADATA_DESC));
    root.insert("properties".into(), Value::Object(props));
    root.insert("x-kubernetes-group-version-kind".into(), json!([gvk(group, version, kind)]));
    Value::Object(root)
}

fn list_schema(group: &str, version: &str, kind: &str) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind}"),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DESC, "type": "string"},
            "items": {
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", kind.to_lowercase()),
                "type": "array",
                "items": reference(&definition_name(group, version, kind)),
            },
            "kind": {"description": KIND_DESC, "type": "string"},
            "metadata": ref_property(LIST_META, LIST_METADATA_DESC),
        },
        "x-kubernetes-group-version-kind": [gvk(group, version, &format!("{kind}List"))],
    })
}

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

fn with(mut op: Value, key: &str, value: Value) -> Value {
    if let Some(m) = op.as_object_mut() {
        m.insert(key.to_owned(), value);
    }
    op
}

fn operation_suffix(group: &str, version: &str, kind: &str, namespaced: bool) -> String {
    let mut group_part = String::new();
    for word in group.split(['.', '-']).filter(|w| !w.is_empty()) {
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

fn resource_paths(
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
            "post": with(
                with(
                    ctx.op("post", "create", format!("create a {kind}"), ok_response(item_ref.clone())),
                    "parameters",
                    Value::Array(write_params(false)),
                ),
                "requestBody",
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
        ops.insert(
            "put".into(),
            with(
                with(
                    ctx.op(
                        "put",
                        &format!("replace{verb_suffix}"),
                        format!("replace {what}"),
                        ok_response(item_ref.clone()),
                    ),
                    "parameters",
                    Value::Array(write_params(false)),
                ),
                "requestBody",
                body(&["application/json", "application/yaml"]),
            ),
        );
        ops.insert(
            "patch".into(),
            with(
                with(
                    ctx.op(
                        "patch",
                        &format!("patch{verb_suffix}"),
                        format!("partially update {what}"),
                        ok_response(item_ref.clone()),
                    ),
                    "parameters",
                    Value::Array(write_params(true)),
                ),
                "requestBody",
                patch_body.clone(),
            ),
        );
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

/// The OpenAPI v3 document of one group-version: `paths` with the
/// resources' operations and `components.schemas` with each kind, its List,
/// and the ObjectMeta / ListMeta definitions they refer to.
pub fn group_version_document(group: &str, version: &str, resources: &[ResourceSchema]) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for res in resources {
        let schema =
            res.schema.clone().unwrap_or_else(|| builtin_schema(group, version, &res.kind));
        schemas.insert(
            definition_name(group, version, &res.kind),
            kind_schema(group, version, &res.kind, &schema),
        );
        schemas.insert(
            definition_name(group, version, &format!("{}List", res.kind)),
            list_schema(group, version, &res.kind),
        );
        resource_paths(group, version, res, &mut paths);
    }
    schemas.insert(OBJECT_META.into(), object_meta());
    schemas.insert(LIST_META.into(), list_meta());
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": Value::Object(paths),
        "components": {
            "schemas": Value::Object(schemas),
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer Token authentication",
                    "name": "authorization",
                    "in": "header",
                },
            },
        },
    })
}

fn s(description: &str) -> Value {
    json!({"description": description, "type": "string"})
}

fn int(description: &str) -> Value {
    json!({"description": description, "type": "integer", "format": "int32"})
}

fn time(description: &str) -> Value {
    json!({"description": description, "type": "string", "format": "date-time"})
}

fn string_map(description: &str) -> Value {
    json!({"description": description, "type": "object", "additionalProperties": {"type": "string", "default": ""}})
}

fn string_list(description: &str) -> Value {
    json!({"description": description, "type": "array", "items": {"type": "string", "default": ""}})
}

fn object_meta() -> Value {
    json!({
        "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
        "type": "object",
        "properties": {
            "annotations": string_map("Annotations is an unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata. They are not queryable and should be preserved when modifying objects. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/annotations"),
            "creationTimestamp": time("CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
            "deletionGracePeriodSeconds": json!({"description": "Number of seconds allowed for this object to gracefully terminate before it will be removed from the system. Only set when deletionTimestamp is also set. May only be shortened. Read-only.", "type": "integer", "format": "int64"}),
            "deletionTimestamp": time("DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted. This field is set by the server when a graceful deletion is requested by the user, and is not directly settable by a client. Populated by the system when a graceful deletion is requested. Read-only. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
            "finalizers": json!({"description": "Must be empty before the object is deleted from the registry. Each entry is an identifier for the responsible component that will remove the entry from the list. If the deletionTimestamp of the object is non-nil, entries in this list can only be removed.", "type": "array", "items": {"type": "string", "default": ""}, "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"}),
            "generateName": s("GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided. If this field is used, the name returned to the client will be different than the name passed. This value will also be combined with a unique suffix. The provided value has the same validation rules as the Name field, and may be truncated by the length of the suffix required to make the value unique on the server.\n\nApplied only if Name is not specified. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#idempotency"),
            "generation": json!({"description": "A sequence number representing a specific generation of the desired state. Populated by the system. Read-only.", "type": "integer", "format": "int64"}),
            "labels": string_map("Map of string keys and values that can be used to organize and categorize (scope and select) objects. May match selectors of replication controllers and services. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels"),
            "managedFields": json!({"description": "ManagedFields maps workflow-id and version to the set of fields that are managed by that workflow. This is mostly for internal housekeeping, and users typically shouldn't need to set or understand this field. A workflow can be the user's name, a controller's name, or the name of a specific apply path like \"ci-cd\". The set of fields is always in the version that the workflow used when modifying the object.", "type": "array", "items": {"description": "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource that the fieldset applies to.", "type": "object", "properties": {
                "apiVersion": s("APIVersion defines the version of this resource that this field set applies to. The format is \"group/version\" just like the top-level APIVersion field. It is necessary to track the version of a field set because it cannot be automatically converted."),
                "fieldsType": s("FieldsType is the discriminator for the different fields format and version. There is currently only one possible value: \"FieldsV1\""),
                "fieldsV1": json!({"description": "FieldsV1 holds the first JSON version format as described in the \"FieldsV1\" type.", "type": "object"}),
                "manager": s("Manager is an identifier of the workflow managing these fields."),
                "operation": s("Operation is the type of operation which lead to this ManagedFieldsEntry being created. The only valid values for this field are 'Apply' and 'Update'."),
                "subresource": s("Subresource is the name of the subresource used to update that object, or empty string if the object was updated through the main resource. The value of this field is used to distinguish between managers, even if they share the same name. For example, a status update will be distinct from a regular update using the same manager name. Note that the APIVersion field is not related to the Subresource field and it always corresponds to the version of the main resource."),
                "time": time("Time is the timestamp of when the ManagedFields entry was added. The timestamp will also be updated if a field is added, the manager changes any of the owned fields value or removes a field. The timestamp does not update when a field is removed from the entry because another manager took it over."),
            }}, "x-kubernetes-list-type": "atomic"}),
            "name": s("Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"),
            "namespace": s("Namespace defines the space within which each name must be unique. An empty namespace is equivalent to the \"default\" namespace, but \"default\" is the canonical representation. Not all objects are required to be scoped to a namespace - the value of this field for those objects will be empty.\n\nMust be a DNS_LABEL. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces"),
            "ownerReferences": json!({"description": "List of objects depended by this object. If ALL objects in the list have been deleted, this object will be garbage collected. If this object is managed by a controller, then an entry in this list will point to this controller, with the controller field set to true. There cannot be more than one managing controller.", "type": "array", "items": {"description": "OwnerReference contains enough information to let you identify an owning object. An owning object must be in the same namespace as the dependent, or be cluster-scoped, so there is no namespace field.", "type": "object", "required": ["apiVersion", "kind", "name", "uid"], "properties": {
                "apiVersion": s("API version of the referent."),
                "blockOwnerDeletion": json!({"description": "If true, AND if the owner has the \"foregroundDeletion\" finalizer, then the owner cannot be deleted from the key-value store until this reference is removed.", "type": "boolean"}),
                "controller": json!({"description": "If true, this reference points to the managing controller.", "type": "boolean"}),
                "kind": s("Kind of the referent. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"),
                "name": s("Name of the referent. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"),
                "uid": s("UID of the referent. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#uids"),
            }, "x-kubernetes-map-type": "atomic"}, "x-kubernetes-list-map-keys": ["uid"], "x-kubernetes-list-type": "map", "x-kubernetes-patch-merge-key": "uid", "x-kubernetes-patch-strategy": "merge"}),
            "resourceVersion": s("An opaque value that represents the internal version of this object that can be used by clients to determine when objects have changed. May be used for optimistic concurrency, change detection, and the watch operation on a resource or set of resources. Clients must treat these values as opaque and passed unmodified back to the server. They may only be valid for a particular resource or set of resources.\n\nPopulated by the system. Read-only. Value must be treated as opaque by clients and . More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency"),
            "selfLink": s("Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
            "uid": s("UID is the unique in time and space value for this object. It is typically generated by the server on successful creation of a resource and is not allowed to change on PUT operations.\n\nPopulated by the system. Read-only. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#uids"),
        },
    })
}

fn list_meta() -> Value {
    json!({
        "description": "ListMeta describes metadata that synthetic resources must have, including lists and various status objects. A resource may have only one of {ObjectMeta, ListMeta}.",
        "type": "object",
        "properties": {
            "continue": s("continue may be set if the user set a limit on the number of items returned, and indicates that the server has more data available. The value is opaque and may be used to issue another request to the endpoint that served this list to retrieve the next set of available objects. Continuing a consistent list may not be possible if the server configuration has changed or more than a few minutes have passed. The resourceVersion field returned when using this continue value will be identical to the value in the first response, unless you have received this token from an error message."),
            "remainingItemCount": json!({"description": "remainingItemCount is the number of subsequent items in the list which are not included in this list response. If the list request contained label or field selectors, then the number of remaining items is unknown and the field will be left unset and omitted during serialization. If the list is complete (either because it is not chunking or because this is the last chunk), then there are no more remaining items and this field will be left unset and omitted during serialization.", "type": "integer", "format": "int64"}),
            "resourceVersion": s("String that identifies the server's internal version of this object that can be used by clients to determine when objects have changed. Value must be treated as opaque by clients and passed unmodified back to the server. Populated by the system. Read-only. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency"),
            "selfLink": s("Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
        },
    })
}

fn label_selector(description: &str) -> Value {
    json!({
        "description": description,
        "type": "object",
        "properties": {
            "matchExpressions": {
                "description": "matchExpressions is a list of label selector requirements. The requirements are ANDed.",
                "type": "array",
                "items": {
                    "description": "A label selector requirement is a selector that contains values, a key, and an operator that relates the key and values.",
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": s("key is the label key that the selector applies to."),
                        "operator": s("operator represents a key's relationship to a set of values. Valid operators are In, NotIn, Exists and DoesNotExist."),
                        "values": string_list("values is an array of string values. If the operator is In or NotIn, the values array must be non-empty. If the operator is Exists or DoesNotExist, the values array must be empty. This array is replaced during a strategic merge patch."),
                    },
                },
                "x-kubernetes-list-type": "atomic",
            },
            "matchLabels": string_map("matchLabels is a map of {key,value} pairs. A single {key,value} in the matchLabels map is equivalent to an element of matchExpressions, whose key field is \"key\", the operator is \"In\", and the values array contains only \"value\". The requirements are ANDed."),
        },
        "x-kubernetes-map-type": "atomic",
    })
}

fn pod_template(description: &str) -> Value {
    json!({
        "description": description,
        "type": "object",
        "properties": {
            "metadata": ref_property(OBJECT_META, METADATA_DESC),
            "spec": {
                "description": "Specification of the desired behavior of the pod. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status",
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "required": ["containers"],
                "properties": {
                    "containers": {
                        "description": "List of containers belonging to the pod. Containers cannot currently be added or removed. There must be at least one container in a Pod. Cannot be updated.",
                        "type": "array",
                        "items": {
                            "description": "A single application container that you want to run within a pod.",
                            "type": "object",
                            "required": ["name"],
                            "x-kubernetes-preserve-unknown-fields": true,
                            "properties": {
                                "name": s("Name of the container specified as a DNS_LABEL. Each container in a pod must have a unique name (DNS_LABEL). Cannot be updated."),
                                "image": s("Container image name. More info: https://kubernetes.io/docs/concepts/containers/images This field is optional to allow higher level config management to default or override container images in workload controllers like Deployments and StatefulSets."),
                            },
                        },
                        "x-kubernetes-list-map-keys": ["name"],
                        "x-kubernetes-list-type": "map",
                    },
                },
            },
        },
    })
}

fn condition_list(description: &str) -> Value {
    json!({
        "description": description,
        "type": "array",
        "items": {
            "type": "object",
            "required": ["type", "status"],
            "properties": {
                "lastTransitionTime": time("Last time the condition transitioned from one status to another."),
                "lastUpdateTime": time("The last time this condition was updated."),
                "message": s("A human readable message indicating details about the transition."),
                "reason": s("The reason for the condition's last transition."),
                "status": s("Status of the condition, one of True, False, Unknown."),
                "type": s("Type of deployment condition."),
            },
        },
        "x-kubernetes-list-map-keys": ["type"],
        "x-kubernetes-list-type": "map",
    })
}

/// Small described schemas of the built-in kinds the sim serves (enough for
/// `kubectl explain` of their main fields); unknown fields are preserved.
/// Other kinds get an open object.
pub fn builtin_schema(group: &str, version: &str, kind: &str) -> Value {
    match (group, version, kind) {
        ("apps", "v1", "Deployment") => json!({
            "description": "Deployment enables declarative updates for Pods and ReplicaSets.",
            "type": "object",
            "properties": {
                "spec": {
                    "description": "Specification of the desired behavior of the Deployment.",
                    "type": "object",
                    "required": ["selector", "template"],
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {
                        "minReadySeconds": int("Minimum number of seconds for which a newly created pod should be ready without any of its container crashing, for it to be considered available. Defaults to 0 (pod will be considered available as soon as it is ready)"),
                        "paused": {"description": "Indicates that the deployment is paused.", "type": "boolean"},
                        "progressDeadlineSeconds": int("The maximum time in seconds for a deployment to make progress before it is considered to be failed. The deployment controller will continue to process failed deployments and a condition with a ProgressDeadlineExceeded reason will be surfaced in the deployment status. Note that progress will not be estimated during the time a deployment is paused. Defaults to 600s."),
                        "replicas": int("Number of desired pods. This is a pointer to distinguish between explicit zero and not specified. Defaults to 1."),
                        "revisionHistoryLimit": int("The number of old ReplicaSets to retain to allow rollback. This is a pointer to distinguish between explicit zero and not specified. Defaults to 10."),
                        "selector": label_selector("Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels."),
                        "strategy": {
                            "description": "The deployment strategy to use to replace existing pods with new ones.",
                            "type": "object",
                            "properties": {
                                "rollingUpdate": {
                                    "description": "Rolling update config params. Present only if DeploymentStrategyType = RollingUpdate.",
                                    "type": "object",
                                    "properties": {
                                        "maxSurge": {"description": "The maximum number of pods that can be scheduled above the desired number of pods. Value can be an absolute number (ex: 5) or a percentage of desired pods (ex: 10%). Defaults to 25%.", "x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                        "maxUnavailable": {"description": "The maximum number of pods that can be unavailable during the update. Value can be an absolute number (ex: 5) or a percentage of desired pods (ex: 10%). Absolute number is calculated from percentage by rounding down. Defaults to 25%.", "x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                    },
                                },
                                "type": {"description": "Type of deployment. Can be \"Recreate\" or \"RollingUpdate\". Default is RollingUpdate.", "type": "string", "enum": ["Recreate", "RollingUpdate"]},
                            },
                        },
                        "template": pod_template("Template describes the pods that will be created. The only allowed template.spec.restartPolicy value is \"Always\"."),
                    },
                },
                "status": {
                    "description": "Most recently observed status of the Deployment.",
                    "type": "object",
                    "properties": {
                        "availableReplicas": int("Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
                        "collisionCount": int("Count of hash collisions for the Deployment. The Deployment controller uses this field as a collision avoidance mechanism when it needs to create the name for the newest ReplicaSet."),
                        "conditions": condition_list("Represents the latest available observations of a deployment's current state."),
                        "observedGeneration": {"description": "The generation observed by the deployment controller.", "type": "integer", "format": "int64"},
                        "readyReplicas": int("readyReplicas is the number of pods targeted by this Deployment with a Ready Condition."),
                        "replicas": int("Total number of non-terminated pods targeted by this deployment (their labels match the selector)."),
                        "unavailableReplicas": int("Total number of unavailable pods targeted by this deployment. This is the total number of pods that are still required for the deployment to have 100% available capacity. They may either be pods that are running but not yet available or pods that still have not been created."),
                        "updatedReplicas": int("Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
                    },
                },
            },
        }),
        ("", "v1", "ConfigMap") => json!({
            "description": "ConfigMap holds configuration data for pods to consume.",
            "type": "object",
            "properties": {
                "binaryData": {"description": "BinaryData contains the binary data. Each key must consist of alphanumeric characters, '-', '_' or '.'. BinaryData can contain byte sequences that are not in the UTF-8 range. The keys stored in BinaryData must not overlap with the ones in the Data field, this is enforced during validation process. Using this field will require 1.10+ apiserver and kubelet.", "type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
                "data": string_map("Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process."),
                "immutable": {"description": "Immutable, if set to true, ensures that data stored in the ConfigMap cannot be updated (only object metadata can be modified). If not set to true, the field can be modified at any time. Defaulted to nil.", "type": "boolean"},
            },
        }),
        ("", "v1", "Namespace") => json!({
            "description": "Namespace provides a scope for Names. Use of multiple namespaces is optional.",
            "type": "object",
            "properties": {
                "spec": {"description": "Spec defines the behavior of the Namespace. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status", "type": "object", "properties": {
                    "finalizers": string_list("Finalizers is an opaque list of values that must be empty to permanently remove object from storage. More info: https://kubernetes.io/docs/tasks/administer-cluster/namespaces/"),
                }},
                "status": {"description": "Status describes the current status of a Namespace. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status", "type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {
                    "phase": {"description": "Phase is the current lifecycle phase of the namespace. More info: https://kubernetes.io/docs/tasks/administer-cluster/namespaces/", "type": "string", "enum": ["Active", "Terminating"]},
                }},
            },
        }),
        ("coordination.k8s.io", "v1", "Lease") => json!({
            "description": "Lease defines a lease concept.",
            "type": "object",
            "properties": {
                "spec": {"description": "spec contains the specification of the Lease. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status", "type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {
                    "acquireTime": json!({"description": "acquireTime is a time when the current lease was acquired.", "type": "string", "format": "date-time"}),
                    "holderIdentity": s("holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field."),
                    "leaseDurationSeconds": int("leaseDurationSeconds is a duration that candidates for a lease need to wait to force acquire it. This is measured against the time of last observed renewTime."),
                    "leaseTransitions": int("leaseTransitions is the number of transitions of a lease between holders."),
                    "renewTime": json!({"description": "renewTime is a time when the current holder of a lease has last updated the lease.", "type": "string", "format": "date-time"}),
                }},
            },
        }),
        ("", "v1", "Event") | ("events.k8s.io", "v1", "Event") => json!({
            "description": "Event is a report of an event somewhere in the cluster. Events have a limited retention time and triggers and messages may evolve with time. Event consumers should not rely on the timing of an event with a given Reason reflecting a consistent underlying trigger, or the continued existence of events with that Reason. Events should be treated as informative, best-effort, supplemental data.",
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {
                "message": s("A human-readable description of the status of this operation."),
                "reason": s("This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
                "type": s("Type of this event (Normal, Warning), new types could be added in the future"),
            },
        }),
        _ => json!({
            "description": format!("{kind} is a built-in kind served by the simulated API server."),
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            url,
            format!("/openapi/v3/apis/gisops.io/v1alpha1?hash={}", document_hash(&doc))
        );
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
                patch["requestBody"]["content"]
                    .get("application/strategic-merge-patch+json")
                    .is_none()
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
        let d = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert!(
            d["properties"]["spec"]["properties"]["progressDeadlineSeconds"]["description"]
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
            log.iter()
                .any(|l| l.starts_with("PATCH /apis/apps/v1/namespaces/default/deployments/web")
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
}

/// A throwaway API server with discovery and these OpenAPI documents for
/// `gisops.io/v1alpha1` ServiceRefresh (the project's CRD fixture), `v1`
/// ConfigMap and `apps/v1` Deployment, plus extra routes, and a kubectl
/// pointed at it. Tests only.
#[cfg(test)]
pub(crate) mod kubectl_harness {
    use super::*;
    use axum::Router;
    use axum::extract::{Path, RawQuery};
    use axum::http::{StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use std::sync::Arc;

    /// The kubectl binary the tests run.
    pub const KUBECTL: &str = "/usr/bin/kubectl";

    /// A JSON response.
    pub fn json_response(v: Value) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
    }

    /// The project's CRD fixture.
    pub fn crd() -> Value {
        serde_json::from_str(include_str!("../tests/fixtures/servicerefresh-crd.json"))
            .unwrap_or_default()
    }

    fn documents() -> Vec<(String, Value)> {
        let sr = ResourceSchema {
            kind: "ServiceRefresh".into(),
            plural: "servicerefreshes".into(),
            namespaced: true,
            status_subresource: true,
            schema: Some(crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()),
        };
        let builtin = |kind: &str, plural: &str| ResourceSchema {
            kind: kind.into(),
            plural: plural.into(),
            namespaced: true,
            status_subresource: kind == "Deployment",
            schema: None,
        };
        vec![
            (
                "api/v1".into(),
                group_version_document("", "v1", &[builtin("ConfigMap", "configmaps")]),
            ),
            (
                "apis/apps/v1".into(),
                group_version_document("apps", "v1", &[builtin("Deployment", "deployments")]),
            ),
            (
                "apis/gisops.io/v1alpha1".into(),
                group_version_document("gisops.io", "v1alpha1", &[sr]),
            ),
        ]
    }

    /// Answers a create with the object, its query string in an annotation.
    async fn created(RawQuery(query): RawQuery, body: String) -> Response {
        let mut obj: Value = serde_json::from_str(&body).unwrap_or_default();
        obj["metadata"]["annotations"] = json!({"query": query.unwrap_or_default()});
        (StatusCode::CREATED, [(header::CONTENT_TYPE, "application/json")], obj.to_string())
            .into_response()
    }

    fn discovery() -> Router {
        let group = |name: &str, version: &str| {
            json!({
                "name": name,
                "versions": [{"groupVersion": format!("{name}/{version}"), "version": version}],
                "preferredVersion": {"groupVersion": format!("{name}/{version}"), "version": version},
            })
        };
        let groups = json!({"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [group("apps", "v1"), group("gisops.io", "v1alpha1")]});
        let verbs = json!(["create", "delete", "get", "list", "patch", "update", "watch"]);
        let core = json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap",
             "verbs": verbs, "shortNames": ["cm"]}]});
        let apps = json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment",
             "verbs": verbs, "shortNames": ["deploy"], "categories": ["all"]},
            {"name": "deployments/status", "singularName": "", "namespaced": true, "kind": "Deployment",
             "verbs": ["get", "patch", "update"]}]});
        let gisops = json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "gisops.io/v1alpha1", "resources": [
            {"name": "servicerefreshes", "singularName": "servicerefresh", "namespaced": true, "kind": "ServiceRefresh",
             "verbs": verbs, "shortNames": ["sref", "srefs"], "categories": ["gisops"]},
            {"name": "servicerefreshes/status", "singularName": "", "namespaced": true, "kind": "ServiceRefresh",
             "verbs": ["get", "patch", "update"]}]});
        let docs = Arc::new(documents());
        let docs2 = docs.clone();
        Router::new()
            .route(
                "/api",
                get(|| async {
                    json_response(json!({"kind": "APIVersions", "versions": ["v1"],
                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}))
                }),
            )
            .route("/api/v1", get(move || async move { json_response(core) }))
            .route("/apis", get(move || async move { json_response(groups) }))
            .route("/apis/apps/v1", get(move || async move { json_response(apps) }))
            .route(
                "/apis/gisops.io/v1alpha1",
                get(move || async move { json_response(gisops) }),
            )
            .route(
                "/openapi/v3",
                get(move || async move { json_response(index_for(&docs)) }),
            )
            .route(
                "/openapi/v3/{*path}",
                get(move |Path(path): Path<String>| async move {
                    match docs2.iter().find(|(p, _)| *p == path) {
                        Some((_, d)) => json_response(d.clone()),
                        None => StatusCode::NOT_FOUND.into_response(),
                    }
                }),
            )
            .route(
                "/apis/gisops.io/v1alpha1/namespaces/{ns}/servicerefreshes",
                post(created),
            )
            .route("/api/v1/namespaces/{ns}/configmaps", post(created))
    }

    type Log = Arc<std::sync::Mutex<Vec<String>>>;

    /// GET and PATCH of one existing Deployment and ServiceRefresh; PATCHes
    /// are logged as `PATCH <path>?<query> <content-type>`.
    fn existing(log: Log) -> Router {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "resourceVersion": "7", "generation": 1,
                         "uid": "5d0c3f0e-0000-4000-8000-000000000001"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}
        });
        let sr = json!({
            "apiVersion": "gisops.io/v1alpha1", "kind": "ServiceRefresh",
            "metadata": {"name": "nightly", "namespace": "default", "resourceVersion": "8", "generation": 1,
                         "uid": "5d0c3f0e-0000-4000-8000-000000000002"},
            "spec": {"selector": {}, "batchSize": 10}
        });
        let route = |obj: Value, log: Log| {
            let get_obj = obj.clone();
            get(move || async move { json_response(get_obj) }).patch(
                move |uri: axum::http::Uri, headers: axum::http::HeaderMap| async move {
                    let ct = headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    if let Ok(mut l) = log.lock() {
                        l.push(format!("PATCH {uri} {ct}"));
                    }
                    json_response(obj)
                },
            )
        };
        Router::new()
            .route(
                "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
                route(deployment, log.clone()),
            )
            .route(
                "/apis/gisops.io/v1alpha1/namespaces/{ns}/servicerefreshes/{name}",
                route(sr, log),
            )
    }

    /// A kubectl configured for a running throwaway server.
    pub struct Kubectl {
        dir: std::path::PathBuf,
        log: Log,
    }

    impl Kubectl {
        /// Serves discovery, the documents and `extra` on a loopback port;
        /// `None` (the test is skipped) when kubectl is not installed.
        pub async fn start(extra: Router) -> Option<Self> {
            Self::start_logged(extra, Arc::default()).await
        }

        /// [`Kubectl::start`] plus one existing Deployment (`web`) and
        /// ServiceRefresh (`nightly`) in `default`, with GET and a logging
        /// PATCH (see [`Kubectl::log`]).
        pub async fn start_with_existing() -> Option<Self> {
            let log: Log = Arc::default();
            Self::start_logged(existing(log.clone()), log).await
        }

        async fn start_logged(extra: Router, log: Log) -> Option<Self> {
            if !std::path::Path::new(KUBECTL).exists() {
                eprintln!("{KUBECTL} not installed; skipping");
                return None;
            }
            let app = discovery().merge(extra);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok()?;
            let addr = listener.local_addr().ok()?;
            tokio::spawn(async move { axum::serve(listener, app).await });
            let dir = std::env::temp_dir().join(format!(
                "sim-kubectl-{}-{}",
                std::process::id(),
                addr.port()
            ));
            std::fs::create_dir_all(&dir).ok()?;
            std::fs::write(
                dir.join("kubeconfig"),
                format!(
                    "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: http://{addr}\nusers:\n- name: sim\n  user: {{}}\ncontexts:\n- name: sim\n  context: {{cluster: sim, user: sim, namespace: default}}\ncurrent-context: sim\n"
                ),
            )
            .ok()?;
            Some(Self { dir, log })
        }

        /// The PATCH requests served so far.
        pub fn log(&self) -> Vec<String> {
            self.log.lock().map(|l| l.clone()).unwrap_or_default()
        }

        /// Writes a file next to the kubeconfig and returns its path.
        pub fn write(&self, name: &str, content: &str) -> String {
            let path = self.dir.join(name);
            std::fs::write(&path, content).unwrap_or_default();
            path.to_string_lossy().into_owned()
        }

        /// Runs kubectl: (success, stdout, stderr).
        pub async fn run(&self, args: &[&str]) -> (bool, String, String) {
            let out = tokio::process::Command::new(KUBECTL)
                .args(args)
                .arg("--kubeconfig")
                .arg(self.dir.join("kubeconfig"))
                .arg("--cache-dir")
                .arg(self.dir.join("cache"))
                .output()
                .await;
            match out {
                Ok(out) => (
                    out.status.success(),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                ),
                Err(e) => (false, String::new(), e.to_string()),
            }
        }
    }

    impl Drop for Kubectl {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
