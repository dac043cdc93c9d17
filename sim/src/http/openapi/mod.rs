//! The OpenAPI documents the API server publishes: at `/openapi/v3` the
//! index of group-versions and one document per group-version, built from
//! the served resources (the CRDs' `openAPIV3Schema`s, and the built-in
//! kinds' compiled-in schemas, the same that typed decoding checks), with
//! the operations of `paths`; at `/openapi/v2` one Swagger 2.0 document of
//! the same definitions, as JSON or protobuf (`v2`).
//!
//! kubectl reads them for two things, both of which this module serves
//! faithfully:
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
//! A hashed document URL (`?hash=` [`document_hash`]) may be cached by
//! clients (`Cache-Control: public, immutable`), an unhashed one not
//! (`no-cache, private`); unknown group-versions are 404.

mod paths;
mod schemas;
mod v2;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value, json};

use crate::registry::Registry;
use crate::schema;
use paths::resource_paths;
use schemas::{builtin_schema, kind_schema, list_meta, list_schema, object_meta};
pub use v2::{encode_protobuf, swagger_document};

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
fn index(entries: &[(String, String)]) -> Value {
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

/// Definition names of the metadata types every kind refers to.
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
pub const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

pub const API_VERSION_DESC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
pub const KIND_DESC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
pub const METADATA_DESC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
pub const LIST_METADATA_DESC: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// An `x-kubernetes-group-version-kind` entry.
pub fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

/// A `$ref` to a schema of the document.
pub fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A property referring to a definition, as the real documents write it.
pub fn ref_property(name: &str, description: &str) -> Value {
    json!({"description": description, "default": {}, "allOf": [reference(name)]})
}

/// The OpenAPI v3 document of one group-version: `paths` with the
/// resources' operations and `components.schemas` with each kind, its List,
/// and the ObjectMeta / ListMeta definitions they refer to.
pub fn group_version_document(group: &str, version: &str, resources: &[ResourceSchema]) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for res in resources {
        let definition = definition_name(group, version, &res.kind);
        let compiled = match &res.schema {
            Some(_) => None,
            None => compiled_definitions(group, version, &res.kind, COMPONENTS_PREFIX),
        };
        match compiled {
            Some(definitions) => {
                for (name, schema) in definitions {
                    schemas.entry(name).or_insert(schema);
                }
            }
            None => {
                let schema =
                    res.schema.clone().unwrap_or_else(|| builtin_schema(group, version, &res.kind));
                schemas.insert(definition.clone(), kind_schema(group, version, &res.kind, &schema));
            }
        }
        schemas.insert(
            definition_name(group, version, &format!("{}List", res.kind)),
            list_schema(group, version, &res.kind),
        );
        resource_paths(group, version, res, &mut paths);
    }
    schemas.entry(OBJECT_META).or_insert_with(object_meta);
    schemas.entry(LIST_META).or_insert_with(list_meta);
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

/// Where a v3 document's references point.
const COMPONENTS_PREFIX: &str = "#/components/schemas/";

/// The definitions of a built-in kind compiled into the server (the kind's
/// and every one it refers to), references rewritten to `prefix`, the kind
/// marked with its GVK; `None` for a kind without a compiled-in schema.
pub fn compiled_definitions(
    group: &str,
    version: &str,
    kind: &str,
    prefix: &str,
) -> Option<Vec<(String, Value)>> {
    let schemas = schema::builtin_schemas();
    let root = schemas.root(group, version, kind)?;
    let definitions = schemas
        .closure(&[root])
        .into_iter()
        .filter_map(|name| {
            let mut definition = schemas.definitions.get(&name)?.clone();
            if schema::BuiltinSchemas::is_free_form(&name)
                && let Some(fields) = definition.as_object_mut()
            {
                // Published as any value (their Go types decode anything).
                fields.retain(|key, _| key == "description");
            }
            schema::rewrite_refs(&mut definition, prefix);
            if prefix == COMPONENTS_PREFIX {
                wrap_ref_siblings(&mut definition);
            }
            if name == root
                && let Some(fields) = definition.as_object_mut()
            {
                fields.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!([gvk(group, version, kind)]),
                );
            }
            Some((name, definition))
        })
        .collect();
    Some(definitions)
}

/// A reference with siblings (a description, a default) written as the
/// real v3 documents do: `allOf: [{$ref}]` beside them.
fn wrap_ref_siblings(schema: &mut Value) {
    match schema {
        Value::Object(fields) => {
            if fields.len() > 1
                && fields.get("$ref").is_some_and(Value::is_string)
                && let Some(reference) = fields.remove("$ref")
            {
                fields.insert("allOf".into(), json!([{ "$ref": reference }]));
            }
            for value in fields.values_mut() {
                wrap_ref_siblings(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(wrap_ref_siblings),
        _ => {}
    }
}

/// The group-versions the registry serves, in first-seen order.
fn group_versions(registry: &Registry) -> Vec<(String, String)> {
    let mut group_versions: Vec<(String, String)> = Vec::new();
    for def in registry.all() {
        if !group_versions
            .iter()
            .any(|(group, version)| *group == def.group && *version == def.version)
        {
            group_versions.push((def.group.clone(), def.version.clone()));
        }
    }
    group_versions
}

fn registry_document(registry: &Registry, group: &str, version: &str) -> Value {
    let resources: Vec<ResourceSchema> = registry
        .all()
        .filter(|def| def.group == group && def.version == version)
        .map(|def| ResourceSchema {
            kind: def.kind.clone(),
            plural: def.plural.clone(),
            namespaced: def.namespaced,
            status_subresource: def.status_subresource,
            schema: def.schema.clone(),
        })
        .collect();
    group_version_document(group, version, &resources)
}

/// The `/openapi/v3` index of what the registry serves.
pub fn served_index(registry: &Registry) -> Value {
    let documents: Vec<(String, Value)> = group_versions(registry)
        .into_iter()
        .map(|(group, version)| {
            (gv_path(&group, &version), registry_document(registry, &group, &version))
        })
        .collect();
    index_for(&documents)
}

/// The document at `/openapi/v3/<path>` (e.g. `apis/apps/v1`); `None` for
/// a group-version the registry does not serve.
pub fn served_document(registry: &Registry, path: &str) -> Option<Value> {
    group_versions(registry)
        .into_iter()
        .find(|(group, version)| gv_path(group, version) == path)
        .map(|(group, version)| registry_document(registry, &group, &version))
}
