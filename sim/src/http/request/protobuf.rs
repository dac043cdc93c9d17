//! Decoding of Kubernetes protobuf request bodies
//! (`application/vnd.kubernetes.protobuf`) into the JSON objects the rest of
//! the server handles: the messages kubectl's typed commands send
//! (`kubectl create namespace|configmap|secret|deployment|service|pdb`).
//!
//! A body is the `k8s\0` envelope (`runtime.Unknown` with its TypeMeta)
//! around the message. Field numbers follow the upstream `generated.proto`
//! files; fields outside this subset are skipped. Non-pointer scalar fields
//! that hold their zero value are dropped, as JSON `omitempty` would.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// How a message field is encoded and turned into JSON.
#[derive(Clone, Copy)]
enum FieldType {
    /// A string, dropped when empty.
    Str,
    /// An integer, dropped when zero.
    Int,
    /// A pointer int: zero is meaningful.
    IntKeep,
    /// A boolean, dropped when false.
    Bool,
    /// A pointer boolean: false is meaningful.
    BoolKeep,
    /// A nested message with these fields.
    Msg(&'static [FieldSpec]),
    /// A repeated string.
    RepStr,
    /// A repeated message with these fields.
    RepMsg(&'static [FieldSpec]),
    /// A map of strings.
    MapStr,
    /// A map of bytes (base64 in JSON).
    MapBytes,
    /// A map of `resource.Quantity` (their string form in JSON).
    MapQuantity,
    /// An `intstr.IntOrString`.
    IntOrString,
}

/// A message field: (field number, JSON name, type).
type FieldSpec = (u64, &'static str, FieldType);

const REQUIREMENT: &[FieldSpec] = &[
    (1, "key", FieldType::Str),
    (2, "operator", FieldType::Str),
    (3, "values", FieldType::RepStr),
];
const LABEL_SELECTOR: &[FieldSpec] = &[
    (1, "matchLabels", FieldType::MapStr),
    (2, "matchExpressions", FieldType::RepMsg(REQUIREMENT)),
];
const OBJECT_META: &[FieldSpec] = &[
    (1, "name", FieldType::Str),
    (2, "generateName", FieldType::Str),
    (3, "namespace", FieldType::Str),
    (5, "uid", FieldType::Str),
    (6, "resourceVersion", FieldType::Str),
    (7, "generation", FieldType::Int),
    (11, "labels", FieldType::MapStr),
    (12, "annotations", FieldType::MapStr),
    (14, "finalizers", FieldType::RepStr),
];
const PORT: &[FieldSpec] = &[
    (1, "name", FieldType::Str),
    (2, "hostPort", FieldType::Int),
    (3, "containerPort", FieldType::Int),
    (4, "protocol", FieldType::Str),
    (5, "hostIP", FieldType::Str),
];
const ENV: &[FieldSpec] = &[(1, "name", FieldType::Str), (2, "value", FieldType::Str)];
const RESOURCES: &[FieldSpec] =
    &[(1, "limits", FieldType::MapQuantity), (2, "requests", FieldType::MapQuantity)];
const CONTAINER: &[FieldSpec] = &[
    (1, "name", FieldType::Str),
    (2, "image", FieldType::Str),
    (3, "command", FieldType::RepStr),
    (4, "args", FieldType::RepStr),
    (5, "workingDir", FieldType::Str),
    (6, "ports", FieldType::RepMsg(PORT)),
    (7, "env", FieldType::RepMsg(ENV)),
    (8, "resources", FieldType::Msg(RESOURCES)),
    (13, "terminationMessagePath", FieldType::Str),
    (14, "imagePullPolicy", FieldType::Str),
    (20, "terminationMessagePolicy", FieldType::Str),
];
const POD_SPEC: &[FieldSpec] = &[
    (2, "containers", FieldType::RepMsg(CONTAINER)),
    (3, "restartPolicy", FieldType::Str),
    (4, "terminationGracePeriodSeconds", FieldType::IntKeep),
    (6, "dnsPolicy", FieldType::Str),
    (7, "nodeSelector", FieldType::MapStr),
    (8, "serviceAccountName", FieldType::Str),
    (19, "schedulerName", FieldType::Str),
    (20, "initContainers", FieldType::RepMsg(CONTAINER)),
];
const POD_TEMPLATE: &[FieldSpec] =
    &[(1, "metadata", FieldType::Msg(OBJECT_META)), (2, "spec", FieldType::Msg(POD_SPEC))];
const ROLLING: &[FieldSpec] =
    &[(1, "maxUnavailable", FieldType::IntOrString), (2, "maxSurge", FieldType::IntOrString)];
const STRATEGY: &[FieldSpec] =
    &[(1, "type", FieldType::Str), (2, "rollingUpdate", FieldType::Msg(ROLLING))];
const DEPLOYMENT_SPEC: &[FieldSpec] = &[
    (1, "replicas", FieldType::IntKeep),
    (2, "selector", FieldType::Msg(LABEL_SELECTOR)),
    (3, "template", FieldType::Msg(POD_TEMPLATE)),
    (4, "strategy", FieldType::Msg(STRATEGY)),
    (5, "minReadySeconds", FieldType::Int),
    (6, "revisionHistoryLimit", FieldType::IntKeep),
    (7, "paused", FieldType::Bool),
    (9, "progressDeadlineSeconds", FieldType::IntKeep),
];
const DEPLOYMENT: &[FieldSpec] =
    &[(1, "metadata", FieldType::Msg(OBJECT_META)), (2, "spec", FieldType::Msg(DEPLOYMENT_SPEC))];
const NAMESPACE_SPEC: &[FieldSpec] = &[(1, "finalizers", FieldType::RepStr)];
const NAMESPACE: &[FieldSpec] =
    &[(1, "metadata", FieldType::Msg(OBJECT_META)), (2, "spec", FieldType::Msg(NAMESPACE_SPEC))];
const CONFIG_MAP: &[FieldSpec] = &[
    (1, "metadata", FieldType::Msg(OBJECT_META)),
    (2, "data", FieldType::MapStr),
    (3, "binaryData", FieldType::MapBytes),
    (4, "immutable", FieldType::BoolKeep),
];
const SECRET: &[FieldSpec] = &[
    (1, "metadata", FieldType::Msg(OBJECT_META)),
    (2, "data", FieldType::MapBytes),
    (3, "type", FieldType::Str),
    (4, "stringData", FieldType::MapStr),
    (5, "immutable", FieldType::BoolKeep),
];
const SERVICE_PORT: &[FieldSpec] = &[
    (1, "name", FieldType::Str),
    (2, "protocol", FieldType::Str),
    (3, "port", FieldType::Int),
    (4, "targetPort", FieldType::IntOrString),
    (5, "nodePort", FieldType::Int),
    (6, "appProtocol", FieldType::Str),
];
const SERVICE_SPEC: &[FieldSpec] = &[
    (1, "ports", FieldType::RepMsg(SERVICE_PORT)),
    (2, "selector", FieldType::MapStr),
    (3, "clusterIP", FieldType::Str),
    (4, "type", FieldType::Str),
    (5, "externalIPs", FieldType::RepStr),
    (7, "sessionAffinity", FieldType::Str),
    (10, "externalName", FieldType::Str),
];
const SERVICE: &[FieldSpec] =
    &[(1, "metadata", FieldType::Msg(OBJECT_META)), (2, "spec", FieldType::Msg(SERVICE_SPEC))];
const BUDGET_SPEC: &[FieldSpec] = &[
    (1, "minAvailable", FieldType::IntOrString),
    (2, "selector", FieldType::Msg(LABEL_SELECTOR)),
    (3, "maxUnavailable", FieldType::IntOrString),
];
const BUDGET: &[FieldSpec] =
    &[(1, "metadata", FieldType::Msg(OBJECT_META)), (2, "spec", FieldType::Msg(BUDGET_SPEC))];
// Authentication and authorization: ServiceAccounts, the RBAC kinds, and
// the reviews and TokenRequests of `kubectl auth` and `kubectl create token`.
const OBJECT_REFERENCE: &[FieldSpec] = &[
    (1, "kind", FieldType::Str),
    (2, "namespace", FieldType::Str),
    (3, "name", FieldType::Str),
    (4, "uid", FieldType::Str),
    (5, "apiVersion", FieldType::Str),
];
const SERVICE_ACCOUNT: &[FieldSpec] = &[
    (1, "metadata", FieldType::Msg(OBJECT_META)),
    (2, "secrets", FieldType::RepMsg(OBJECT_REFERENCE)),
    (3, "imagePullSecrets", FieldType::RepMsg(&[(1, "name", FieldType::Str)])),
    (4, "automountServiceAccountToken", FieldType::BoolKeep),
];
const POLICY_RULE: &[FieldSpec] = &[
    (1, "verbs", FieldType::RepStr),
    (2, "apiGroups", FieldType::RepStr),
    (3, "resources", FieldType::RepStr),
    (4, "resourceNames", FieldType::RepStr),
    (5, "nonResourceURLs", FieldType::RepStr),
];
const ROLE: &[FieldSpec] =
    &[(1, "metadata", FieldType::Msg(OBJECT_META)), (2, "rules", FieldType::RepMsg(POLICY_RULE))];
const CLUSTER_ROLE: &[FieldSpec] = &[
    (1, "metadata", FieldType::Msg(OBJECT_META)),
    (2, "rules", FieldType::RepMsg(POLICY_RULE)),
    (
        3,
        "aggregationRule",
        FieldType::Msg(&[(1, "clusterRoleSelectors", FieldType::RepMsg(LABEL_SELECTOR))]),
    ),
];
const SUBJECT: &[FieldSpec] = &[
    (1, "kind", FieldType::Str),
    (2, "apiGroup", FieldType::Str),
    (3, "name", FieldType::Str),
    (4, "namespace", FieldType::Str),
];
const ROLE_REF: &[FieldSpec] =
    &[(1, "apiGroup", FieldType::Str), (2, "kind", FieldType::Str), (3, "name", FieldType::Str)];
const ROLE_BINDING: &[FieldSpec] = &[
    (1, "metadata", FieldType::Msg(OBJECT_META)),
    (2, "subjects", FieldType::RepMsg(SUBJECT)),
    (3, "roleRef", FieldType::Msg(ROLE_REF)),
];
const BOUND_OBJECT_REFERENCE: &[FieldSpec] = &[
    (1, "kind", FieldType::Str),
    (2, "apiVersion", FieldType::Str),
    (3, "name", FieldType::Str),
    (4, "uid", FieldType::Str),
];
const TOKEN_REQUEST: &[FieldSpec] = &[
    (1, "metadata", FieldType::Msg(OBJECT_META)),
    (
        2,
        "spec",
        FieldType::Msg(&[
            (1, "audiences", FieldType::RepStr),
            (3, "boundObjectRef", FieldType::Msg(BOUND_OBJECT_REFERENCE)),
            (4, "expirationSeconds", FieldType::IntKeep),
        ]),
    ),
];
const TOKEN_REVIEW: &[FieldSpec] = &[
    (1, "metadata", FieldType::Msg(OBJECT_META)),
    (
        2,
        "spec",
        FieldType::Msg(&[(1, "token", FieldType::Str), (2, "audiences", FieldType::RepStr)]),
    ),
];
const SELF_SUBJECT_REVIEW: &[FieldSpec] = &[(1, "metadata", FieldType::Msg(OBJECT_META))];
const RESOURCE_ATTRIBUTES: &[FieldSpec] = &[
    (1, "namespace", FieldType::Str),
    (2, "verb", FieldType::Str),
    (3, "group", FieldType::Str),
    (4, "version", FieldType::Str),
    (5, "resource", FieldType::Str),
    (6, "subresource", FieldType::Str),
    (7, "name", FieldType::Str),
];
const NON_RESOURCE_ATTRIBUTES: &[FieldSpec] =
    &[(1, "path", FieldType::Str), (2, "verb", FieldType::Str)];
const SELF_SUBJECT_ACCESS_REVIEW: &[FieldSpec] = &[
    (1, "metadata", FieldType::Msg(OBJECT_META)),
    (
        2,
        "spec",
        FieldType::Msg(&[
            (1, "resourceAttributes", FieldType::Msg(RESOURCE_ATTRIBUTES)),
            (2, "nonResourceAttributes", FieldType::Msg(NON_RESOURCE_ATTRIBUTES)),
        ]),
    ),
];
const SUBJECT_ACCESS_REVIEW: &[FieldSpec] = &[
    (1, "metadata", FieldType::Msg(OBJECT_META)),
    (
        2,
        "spec",
        FieldType::Msg(&[
            (1, "resourceAttributes", FieldType::Msg(RESOURCE_ATTRIBUTES)),
            (2, "nonResourceAttributes", FieldType::Msg(NON_RESOURCE_ATTRIBUTES)),
            (3, "user", FieldType::Str),
            (4, "groups", FieldType::RepStr),
            (6, "uid", FieldType::Str),
        ]),
    ),
];
const SELF_SUBJECT_RULES_REVIEW: &[FieldSpec] = &[
    (1, "metadata", FieldType::Msg(OBJECT_META)),
    (2, "spec", FieldType::Msg(&[(1, "namespace", FieldType::Str)])),
];

const TYPE_META: &[FieldSpec] = &[(1, "apiVersion", FieldType::Str), (2, "kind", FieldType::Str)];

fn bad(msg: &str) -> ApiError {
    ApiError::bad_request(format!("unable to decode protobuf body: {msg}"))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Skip,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or_else(|| bad("truncated varint"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(bad("varint too long"))
    }

    fn next(&mut self) -> Result<Option<(u64, Wire<'a>)>, ApiError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (field, wire_type) = (key >> 3, key & 7);
        let wire = match wire_type {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.pos += 8;
                Wire::Skip
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| bad("length"))?;
                let end = self
                    .pos
                    .checked_add(len)
                    .filter(|end| *end <= self.buf.len())
                    .ok_or_else(|| bad("truncated field"))?;
                let bytes = &self.buf[self.pos..end];
                self.pos = end;
                Wire::Bytes(bytes)
            }
            5 => {
                self.pos += 4;
                Wire::Skip
            }
            _ => return Err(bad("unsupported wire type")),
        };
        if self.pos > self.buf.len() {
            return Err(bad("truncated field"));
        }
        Ok(Some((field, wire)))
    }
}

fn utf8(bytes: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| bad("string is not UTF-8"))
}

/// One entry of a map field; `value_type` says how its value is encoded.
fn map_entry(bytes: &[u8], value_type: FieldType) -> Result<(String, Value), ApiError> {
    let mut reader = Reader { buf: bytes, pos: 0 };
    let (mut key, mut value) = (String::new(), Value::String(String::new()));
    while let Some((field, wire)) = reader.next()? {
        match (field, wire) {
            (1, Wire::Bytes(bytes)) => key = utf8(bytes)?,
            (2, Wire::Bytes(bytes)) => {
                value = match value_type {
                    FieldType::MapBytes => {
                        Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
                    }
                    FieldType::MapQuantity => decode(bytes, &[(1, "string", FieldType::Str)])?
                        .get("string")
                        .cloned()
                        .unwrap_or(Value::String(String::new())),
                    _ => Value::String(utf8(bytes)?),
                }
            }
            _ => {}
        }
    }
    Ok((key, value))
}

fn decode(buf: &[u8], fields: &[FieldSpec]) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    let mut reader = Reader { buf, pos: 0 };
    while let Some((number, wire)) = reader.next()? {
        let Some((_, name, field_type)) =
            fields.iter().find(|(field_number, _, _)| *field_number == number)
        else {
            continue;
        };
        let name = (*name).to_string();
        match (*field_type, wire) {
            (FieldType::Str, Wire::Bytes(bytes)) if !bytes.is_empty() => {
                out.insert(name, Value::String(utf8(bytes)?));
            }
            (FieldType::Int, Wire::Varint(value)) if value != 0 => {
                out.insert(name, json!(value as i64));
            }
            (FieldType::IntKeep, Wire::Varint(value)) => {
                out.insert(name, json!(value as i64));
            }
            (FieldType::Bool, Wire::Varint(value)) if value != 0 => {
                out.insert(name, json!(true));
            }
            (FieldType::BoolKeep, Wire::Varint(value)) => {
                out.insert(name, json!(value != 0));
            }
            (FieldType::Msg(nested), Wire::Bytes(bytes)) => {
                let message = decode(bytes, nested)?;
                if !message.is_empty() {
                    out.insert(name, Value::Object(message));
                }
            }
            (FieldType::RepStr, Wire::Bytes(bytes)) => {
                if let Some(array) = out.entry(name).or_insert_with(|| json!([])).as_array_mut() {
                    array.push(Value::String(utf8(bytes)?));
                }
            }
            (FieldType::RepMsg(nested), Wire::Bytes(bytes)) => {
                let message = decode(bytes, nested)?;
                if let Some(array) = out.entry(name).or_insert_with(|| json!([])).as_array_mut() {
                    array.push(Value::Object(message));
                }
            }
            (
                FieldType::MapStr | FieldType::MapBytes | FieldType::MapQuantity,
                Wire::Bytes(bytes),
            ) => {
                let (key, value) = map_entry(bytes, *field_type)?;
                if let Some(map) = out.entry(name).or_insert_with(|| json!({})).as_object_mut() {
                    map.insert(key, value);
                }
            }
            (FieldType::IntOrString, Wire::Bytes(bytes)) => {
                let message = decode(
                    bytes,
                    &[
                        (1, "type", FieldType::Int),
                        (2, "intVal", FieldType::Int),
                        (3, "strVal", FieldType::Str),
                    ],
                )?;
                let value = if message.get("type").and_then(Value::as_i64) == Some(1) {
                    message.get("strVal").cloned().unwrap_or(json!(""))
                } else {
                    message.get("intVal").cloned().unwrap_or(json!(0))
                };
                out.insert(name, value);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Decodes a protobuf request body into the JSON object it stands for.
pub fn decode_object(body: &[u8]) -> Result<Value, ApiError> {
    let payload = body.strip_prefix(b"k8s\0").ok_or_else(|| bad("missing the k8s envelope"))?;
    let mut reader = Reader { buf: payload, pos: 0 };
    let (mut type_meta, mut raw) = (Map::new(), &[][..]);
    while let Some((field, wire)) = reader.next()? {
        match (field, wire) {
            (1, Wire::Bytes(bytes)) => type_meta = decode(bytes, TYPE_META)?,
            (2, Wire::Bytes(bytes)) => raw = bytes,
            _ => {}
        }
    }
    let api_version = type_meta.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string();
    let kind = type_meta.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
    let fields = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("apps/v1", "Deployment") => DEPLOYMENT,
        ("v1", "Service") => SERVICE,
        ("policy/v1", "PodDisruptionBudget") => BUDGET,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("rbac.authorization.k8s.io/v1", "Role") => ROLE,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => CLUSTER_ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => ROLE_BINDING,
        ("authentication.k8s.io/v1", "TokenRequest") => TOKEN_REQUEST,
        ("authentication.k8s.io/v1", "TokenReview") => TOKEN_REVIEW,
        ("authentication.k8s.io/v1", "SelfSubjectReview") => SELF_SUBJECT_REVIEW,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => SELF_SUBJECT_ACCESS_REVIEW,
        ("authorization.k8s.io/v1", "SubjectAccessReview" | "LocalSubjectAccessReview") => {
            SUBJECT_ACCESS_REVIEW
        }
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => SELF_SUBJECT_RULES_REVIEW,
        _ => {
            return Err(ApiError::unsupported_media(format!(
                "the simulated API server cannot decode protobuf for {api_version}, Kind={kind}; send application/json"
            )));
        }
    };
    let mut object = decode(raw, fields)?;
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    Ok(Value::Object(object))
}
