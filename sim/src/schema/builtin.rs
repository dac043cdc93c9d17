//! The schemas of the built-in kinds, as the real API server compiles them
//! in: the k8s-openapi types' JSON schemas (generated from the same OpenAPI
//! definitions the real server publishes), collected once into one table of
//! definitions keyed by their real names (`io.k8s.api.apps.v1.Deployment`),
//! with the kinds that name their root. Typed decoding (`decode`) and the
//! published OpenAPI documents both read this table, so what the sim
//! validates and what it publishes agree.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::api::{
    apps, authentication, authorization, coordination, core, events, policy, rbac,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::Value;

/// The definitions of the built-in kinds and their roots.
#[derive(Debug)]
pub struct BuiltinSchemas {
    /// Every definition, by its real name.
    pub definitions: BTreeMap<String, Value>,
    /// (group, version, kind) → the kind's definition name.
    kinds: BTreeMap<(String, String, String), String>,
}

/// The prefix of the references between definitions.
const REF_PREFIX: &str = "#/$defs/";

/// Definitions the real server decodes as any JSON (custom unmarshallers
/// or `interface{}`): no type check, no unknown fields.
const FREE_FORM: [&str; 7] = [
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
];

impl BuiltinSchemas {
    /// The definition name of a built-in kind, if the sim knows its schema.
    pub fn root(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .map(String::as_str)
    }

    /// The definition a schema refers to (`$ref`), with its name.
    pub fn referenced<'a>(&'a self, schema: &Value) -> Option<(&'a str, &'a Value)> {
        let name = schema.get("$ref").and_then(Value::as_str)?.strip_prefix(REF_PREFIX)?;
        self.definitions.get_key_value(name).map(|(name, value)| (name.as_str(), value))
    }

    /// Whether a definition decodes as any JSON.
    pub fn is_free_form(name: &str) -> bool {
        FREE_FORM.contains(&name)
    }

    /// Every definition `name` refers to, itself included, transitively.
    pub fn closure(&self, names: &[&str]) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        let mut pending: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        while let Some(name) = pending.pop() {
            if seen.contains(&name) {
                continue;
            }
            if let Some(definition) = self.definitions.get(&name) {
                collect_refs(definition, &mut pending);
            }
            seen.push(name);
        }
        seen.sort();
        seen
    }
}

/// The definition names a schema refers to.
fn collect_refs(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(fields) => {
            for (key, value) in fields {
                if key == "$ref"
                    && let Some(name) = value.as_str().and_then(|r| r.strip_prefix(REF_PREFIX))
                {
                    out.push(name.to_string());
                } else {
                    collect_refs(value, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

/// Rewrites the references of a schema for a document whose definitions
/// live under `prefix` (`#/definitions/`, `#/components/schemas/`).
pub fn rewrite_refs(schema: &mut Value, prefix: &str) {
    match schema {
        Value::Object(fields) => {
            for (key, value) in fields.iter_mut() {
                if key == "$ref" {
                    if let Some(name) = value.as_str().and_then(|r| r.strip_prefix(REF_PREFIX)) {
                        *value = Value::String(format!("{prefix}{name}"));
                    }
                } else {
                    rewrite_refs(value, prefix);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rewrite_refs(item, prefix)),
        _ => {}
    }
}

struct Collector {
    generator: SchemaGenerator,
    kinds: BTreeMap<(String, String, String), String>,
}

impl Collector {
    fn add<T: JsonSchema>(&mut self, group: &str, version: &str, kind: &str) {
        self.generator.subschema_for::<T>();
        self.kinds.insert(
            (group.to_string(), version.to_string(), kind.to_string()),
            T::schema_name().into_owned(),
        );
    }
}

/// The table of built-in schemas, built on first use.
pub fn builtin_schemas() -> &'static BuiltinSchemas {
    static SCHEMAS: OnceLock<BuiltinSchemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let mut c = Collector { generator: SchemaGenerator::default(), kinds: BTreeMap::new() };
        c.add::<core::v1::Namespace>("", "v1", "Namespace");
        c.add::<core::v1::ConfigMap>("", "v1", "ConfigMap");
        c.add::<core::v1::Event>("", "v1", "Event");
        c.add::<core::v1::Secret>("", "v1", "Secret");
        c.add::<core::v1::Pod>("", "v1", "Pod");
        c.add::<core::v1::Node>("", "v1", "Node");
        c.add::<core::v1::Service>("", "v1", "Service");
        c.add::<core::v1::ServiceAccount>("", "v1", "ServiceAccount");
        c.add::<core::v1::Endpoints>("", "v1", "Endpoints");
        c.add::<apps::v1::Deployment>("apps", "v1", "Deployment");
        c.add::<apps::v1::ReplicaSet>("apps", "v1", "ReplicaSet");
        c.add::<apps::v1::StatefulSet>("apps", "v1", "StatefulSet");
        c.add::<apps::v1::DaemonSet>("apps", "v1", "DaemonSet");
        c.add::<apps::v1::ControllerRevision>("apps", "v1", "ControllerRevision");
        c.add::<events::v1::Event>("events.k8s.io", "v1", "Event");
        c.add::<coordination::v1::Lease>("coordination.k8s.io", "v1", "Lease");
        c.add::<apiextensions::v1::CustomResourceDefinition>(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
        );
        c.add::<policy::v1::PodDisruptionBudget>("policy", "v1", "PodDisruptionBudget");
        c.add::<rbac::v1::Role>("rbac.authorization.k8s.io", "v1", "Role");
        c.add::<rbac::v1::ClusterRole>("rbac.authorization.k8s.io", "v1", "ClusterRole");
        c.add::<rbac::v1::RoleBinding>("rbac.authorization.k8s.io", "v1", "RoleBinding");
        c.add::<rbac::v1::ClusterRoleBinding>(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
        );
        c.add::<authentication::v1::TokenReview>("authentication.k8s.io", "v1", "TokenReview");
        c.add::<authorization::v1::SubjectAccessReview>(
            "authorization.k8s.io",
            "v1",
            "SubjectAccessReview",
        );
        c.add::<authorization::v1::SelfSubjectAccessReview>(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectAccessReview",
        );
        let definitions = c.generator.take_definitions(false).into_iter().collect();
        BuiltinSchemas { definitions, kinds: c.kinds }
    })
}
