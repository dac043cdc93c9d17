//! Request decoding: what the real server does to a request's object before
//! admission. A built-in kind is decoded into its typed form (the
//! k8s-openapi schema standing in for the Go structs): a value of the wrong
//! type is a 400 (`Deployment in version "v1" cannot be handled as a
//! Deployment: json: cannot unmarshal ...`), and unknown fields are dropped.
//! A custom resource's unknown fields are those its schema prunes. What
//! happens to unknown fields is the request's `fieldValidation`: dropped
//! silently (`Ignore`), dropped with a `Warning` each (`Warn`, the default),
//! or refused (`Strict`). The wording depends on how the object came: a
//! body (POST, PUT), a patch's result, or an apply configuration.

use serde_json::Value;

use crate::error::{ApiError, Cause};
use crate::registry::ResourceDef;
use crate::schema;

/// The `fieldValidation` of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Unknown fields are dropped silently.
    Ignore,
    /// Unknown fields are dropped with a warning each (the default).
    #[default]
    Warn,
    /// Unknown fields are an error.
    Strict,
}

impl FieldValidation {
    /// The query parameter's value; `Err` with the real server's 400 for an
    /// unsupported one.
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Ignore") => Ok(Self::Ignore),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// How the object to decode reached the server.
pub enum Source<'a> {
    /// A POST or PUT body.
    Body,
    /// The result of a JSON, merge or strategic merge patch.
    Patch,
    /// A server-side apply configuration for the object `namespace/name`.
    Apply { namespace: &'a str, name: &'a str },
}

/// Decodes `object` (of `def`) as the real server would, dropping unknown
/// fields; returns the warnings to send.
pub fn decode(
    def: &ResourceDef,
    object: &mut Value,
    validation: FieldValidation,
    source: Source<'_>,
) -> Result<Vec<String>, ApiError> {
    let unknown = if def.is_custom() {
        match &def.schema {
            Some(structural) => schema::prune(structural, object),
            None => Vec::new(),
        }
    } else {
        let schemas = schema::builtin_schemas();
        let Some(root) = schemas.root(&def.group, &def.version, &def.kind) else {
            return Ok(Vec::new());
        };
        // A patch's error quotes the object as it was before decoding; an
        // apply's names list items by their keys.
        let before = matches!(source, Source::Patch | Source::Apply { .. }).then(|| object.clone());
        match schema::decode(schemas, root, object) {
            Ok(decoded) => decoded.unknown_fields,
            Err(error) => {
                let original = before.unwrap_or(Value::Null);
                return Err(decode_error(def, &original, &error, &source));
            }
        }
    };
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let messages: Vec<String> =
        unknown.iter().map(|path| format!("unknown field {path:?}")).collect();
    if let Source::Apply { namespace, name } = source {
        let errors: Vec<String> = unknown
            .iter()
            .map(|path| format!("{}: field not declared in schema", typed_path(object, path)))
            .collect();
        return Err(typed_patch_error(def, namespace, name, &errors));
    }
    match validation {
        FieldValidation::Ignore => Ok(Vec::new()),
        FieldValidation::Warn => Ok(messages),
        FieldValidation::Strict => {
            let strict = format!("strict decoding error: {}", messages.join(", "));
            Err(match source {
                Source::Patch => ApiError::bad_request(strict),
                _ => cannot_be_handled(def, &strict),
            })
        }
    }
}

/// `<Kind> in version "<v>" cannot be handled as a <Kind>: <why>`.
fn cannot_be_handled(def: &ResourceDef, why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{kind} in version {version:?} cannot be handled as a {kind}: {why}",
        kind = def.kind,
        version = def.version,
    ))
}

/// The 500 server-side apply answers when the applied configuration does
/// not convert to the typed object.
fn typed_patch_error(
    def: &ResourceDef,
    namespace: &str,
    name: &str,
    errors: &[String],
) -> ApiError {
    let what = match errors {
        [one] => one.clone(),
        many => format!("errors:\n  {}", many.join("\n  ")),
    };
    let gvk = format!("{}/{}, Kind={}", def.group, def.version, def.kind);
    ApiError::unknown(format!(
        "failed to create typed patch object ({namespace}/{name}; {gvk}): {what}"
    ))
}

fn decode_error(
    def: &ResourceDef,
    original: &Value,
    error: &schema::DecodeError,
    source: &Source<'_>,
) -> ApiError {
    match source {
        Source::Body => cannot_be_handled(def, &error.message),
        Source::Patch => ApiError::invalid(
            "",
            "",
            "",
            &[Cause::invalid("patch", &Value::String(original.to_string()), &error.message)],
        ),
        Source::Apply { namespace, name } => match &error.typed {
            Some((path, what)) => {
                let typed = format!("{}: {what}", typed_path(original, path));
                typed_patch_error(def, namespace, name, &[typed])
            }
            None => cannot_be_handled(def, &error.message),
        },
    }
}

/// The keys of the built-in associative lists (`x-kubernetes-list-map-keys`
/// of the real schemas) by the list's field name and its parent's.
fn list_map_keys(parent: &str, list: &str) -> &'static [&'static str] {
    match list {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => &["name"],
        "ports" if parent == "spec" => &["port", "protocol"],
        "ports" => &["containerPort", "protocol"],
        "volumeMounts" => &["mountPath"],
        "volumeDevices" => &["devicePath"],
        "conditions" => &["type"],
        "hostAliases" => &["ip"],
        _ => &[],
    }
}

/// A decoder path (`spec.template.spec.containers[0].foo`) as
/// structured-merge-diff prints it: with a leading dot, and items of
/// associative lists named by their keys (`containers[name="web"]`) when
/// the item has them all.
fn typed_path(object: &Value, path: &str) -> String {
    let mut out = String::new();
    let mut node = Some(object);
    let mut field = "";
    for segment in path.split('.') {
        let (name, indices) = match segment.find('[') {
            Some(at) => (&segment[..at], &segment[at..]),
            None => (segment, ""),
        };
        out.push('.');
        out.push_str(name);
        node = node.and_then(|node| node.get(name));
        let parent = std::mem::replace(&mut field, name);
        for index in indices.split('[').filter(|index| !index.is_empty()) {
            let index = index.trim_end_matches(']');
            let item = index.parse::<usize>().ok().and_then(|i| node.and_then(|n| n.get(i)));
            let keys = list_map_keys(parent, field);
            let values: Option<Vec<String>> = item.filter(|_| !keys.is_empty()).and_then(|item| {
                keys.iter()
                    .map(|key| {
                        // A port's protocol has a default the typed form fills.
                        let value = item
                            .get(*key)
                            .cloned()
                            .or_else(|| (*key == "protocol").then(|| Value::String("TCP".into())));
                        value.map(|value| format!("{key}={value}"))
                    })
                    .collect()
            });
            match values {
                Some(values) => out.push_str(&format!("[{}]", values.join(","))),
                None => out.push_str(&format!("[{index}]")),
            }
            node = item;
        }
    }
    out
}
