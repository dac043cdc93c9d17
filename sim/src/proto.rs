//! Decoding of Kubernetes protobuf request bodies (`application/
//! vnd.kubernetes.protobuf`): the `k8s\0` envelope (`runtime.Unknown` with
//! its TypeMeta) and the messages kubectl's typed commands send
//! (`kubectl create namespace|configmap|secret|deployment`), turned into the
//! JSON objects the rest of the server handles. Field numbers follow the
//! upstream `generated.proto` files; fields outside this subset are skipped.
//! Non-pointer scalar fields that hold their zero value are dropped, as JSON
//! `omitempty` would.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    /// A pointer int: zero is meaningful.
    IntKeep,
    Bool,
    BoolKeep,
    Msg(&'static [F]),
    RepStr,
    RepMsg(&'static [F]),
    MapStr,
    MapBytes,
    MapQuantity,
    IntOrString,
}

type F = (u64, &'static str, Ty);

const REQUIREMENT: &[F] =
    &[(1, "key", Ty::Str), (2, "operator", Ty::Str), (3, "values", Ty::RepStr)];
const LABEL_SELECTOR: &[F] =
    &[(1, "matchLabels", Ty::MapStr), (2, "matchExpressions", Ty::RepMsg(REQUIREMENT))];
const OBJECT_META: &[F] = &[
    (1, "name", Ty::Str),
    (2, "generateName", Ty::Str),
    (3, "namespace", Ty::Str),
    (5, "uid", Ty::Str),
    (6, "resourceVersion", Ty::Str),
    (7, "generation", Ty::Int),
    (11, "labels", Ty::MapStr),
    (12, "annotations", Ty::MapStr),
    (14, "finalizers", Ty::RepStr),
];
const PORT: &[F] = &[
    (1, "name", Ty::Str),
    (2, "hostPort", Ty::Int),
    (3, "containerPort", Ty::Int),
    (4, "protocol", Ty::Str),
    (5, "hostIP", Ty::Str),
];
const ENV: &[F] = &[(1, "name", Ty::Str), (2, "value", Ty::Str)];
const RESOURCES: &[F] = &[(1, "limits", Ty::MapQuantity), (2, "requests", Ty::MapQuantity)];
const CONTAINER: &[F] = &[
    (1, "name", Ty::Str),
    (2, "image", Ty::Str),
    (3, "command", Ty::RepStr),
    (4, "args", Ty::RepStr),
    (5, "workingDir", Ty::Str),
    (6, "ports", Ty::RepMsg(PORT)),
    (7, "env", Ty::RepMsg(ENV)),
    (8, "resources", Ty::Msg(RESOURCES)),
    (13, "terminationMessagePath", Ty::Str),
    (14, "imagePullPolicy", Ty::Str),
    (20, "terminationMessagePolicy", Ty::Str),
];
const POD_SPEC: &[F] = &[
    (2, "containers", Ty::RepMsg(CONTAINER)),
    (3, "restartPolicy", Ty::Str),
    (4, "terminationGracePeriodSeconds", Ty::IntKeep),
    (6, "dnsPolicy", Ty::Str),
    (7, "nodeSelector", Ty::MapStr),
    (8, "serviceAccountName", Ty::Str),
    (19, "schedulerName", Ty::Str),
    (20, "initContainers", Ty::RepMsg(CONTAINER)),
];
const POD_TEMPLATE: &[F] = &[(1, "metadata", Ty::Msg(OBJECT_META)), (2, "spec", Ty::Msg(POD_SPEC))];
const ROLLING: &[F] = &[(1, "maxUnavailable", Ty::IntOrString), (2, "maxSurge", Ty::IntOrString)];
const STRATEGY: &[F] = &[(1, "type", Ty::Str), (2, "rollingUpdate", Ty::Msg(ROLLING))];
const DEPLOYMENT_SPEC: &[F] = &[
    (1, "replicas", Ty::IntKeep),
    (2, "selector", Ty::Msg(LABEL_SELECTOR)),
    (3, "template", Ty::Msg(POD_TEMPLATE)),
    (4, "strategy", Ty::Msg(STRATEGY)),
    (5, "minReadySeconds", Ty::Int),
    (6, "revisionHistoryLimit", Ty::IntKeep),
    (7, "paused", Ty::Bool),
    (9, "progressDeadlineSeconds", Ty::IntKeep),
];
const DEPLOYMENT: &[F] =
    &[(1, "metadata", Ty::Msg(OBJECT_META)), (2, "spec", Ty::Msg(DEPLOYMENT_SPEC))];
const NAMESPACE_SPEC: &[F] = &[(1, "finalizers", Ty::RepStr)];
const NAMESPACE: &[F] =
    &[(1, "metadata", Ty::Msg(OBJECT_META)), (2, "spec", Ty::Msg(NAMESPACE_SPEC))];
const CONFIG_MAP: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "data", Ty::MapStr),
    (3, "binaryData", Ty::MapBytes),
    (4, "immutable", Ty::BoolKeep),
];
const SECRET: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "data", Ty::MapBytes),
    (3, "type", Ty::Str),
    (4, "stringData", Ty::MapStr),
    (5, "immutable", Ty::BoolKeep),
];
const TYPE_META: &[F] = &[(1, "apiVersion", Ty::Str), (2, "kind", Ty::Str)];

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
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(|| bad("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad("varint too long"))
    }

    fn next(&mut self) -> Result<Option<(u64, Wire<'a>)>, ApiError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (field, wire) = (key >> 3, key & 7);
        let w = match wire {
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
                    .filter(|e| *e <= self.buf.len())
                    .ok_or_else(|| bad("truncated field"))?;
                let b = &self.buf[self.pos..end];
                self.pos = end;
                Wire::Bytes(b)
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
        Ok(Some((field, w)))
    }
}

fn utf8(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| bad("string is not UTF-8"))
}

fn map_entry(b: &[u8], value: Ty) -> Result<(String, Value), ApiError> {
    let mut r = Reader { buf: b, pos: 0 };
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    while let Some((f, w)) = r.next()? {
        match (f, w) {
            (1, Wire::Bytes(b)) => k = utf8(b)?,
            (2, Wire::Bytes(b)) => {
                v = match value {
                    Ty::MapBytes => {
                        Value::String(base64::engine::general_purpose::STANDARD.encode(b))
                    }
                    Ty::MapQuantity => decode(b, &[(1, "string", Ty::Str)])?
                        .get("string")
                        .cloned()
                        .unwrap_or(Value::String(String::new())),
                    _ => Value::String(utf8(b)?),
                }
            }
            _ => {}
        }
    }
    Ok((k, v))
}

fn decode(buf: &[u8], fields: &[F]) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    let mut r = Reader { buf, pos: 0 };
    while let Some((num, w)) = r.next()? {
        let Some((_, name, ty)) = fields.iter().find(|(n, _, _)| *n == num) else {
            continue;
        };
        let name = (*name).to_string();
        match (*ty, w) {
            (Ty::Str, Wire::Bytes(b)) if !b.is_empty() => {
                out.insert(name, Value::String(utf8(b)?));
            }
            (Ty::Int, Wire::Varint(v)) if v != 0 => {
                out.insert(name, json!(v as i64));
            }
            (Ty::IntKeep, Wire::Varint(v)) => {
                out.insert(name, json!(v as i64));
            }
            (Ty::Bool, Wire::Varint(v)) if v != 0 => {
                out.insert(name, json!(true));
            }
            (Ty::BoolKeep, Wire::Varint(v)) => {
                out.insert(name, json!(v != 0));
            }
            (Ty::Msg(sub), Wire::Bytes(b)) => {
                let m = decode(b, sub)?;
                if !m.is_empty() {
                    out.insert(name, Value::Object(m));
                }
            }
            (Ty::RepStr, Wire::Bytes(b)) => {
                if let Some(a) = out.entry(name).or_insert_with(|| json!([])).as_array_mut() {
                    a.push(Value::String(utf8(b)?));
                }
            }
            (Ty::RepMsg(sub), Wire::Bytes(b)) => {
                let m = decode(b, sub)?;
                if let Some(a) = out.entry(name).or_insert_with(|| json!([])).as_array_mut() {
                    a.push(Value::Object(m));
                }
            }
            (Ty::MapStr | Ty::MapBytes | Ty::MapQuantity, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b, *ty)?;
                if let Some(m) = out.entry(name).or_insert_with(|| json!({})).as_object_mut() {
                    m.insert(k, v);
                }
            }
            (Ty::IntOrString, Wire::Bytes(b)) => {
                let m = decode(
                    b,
                    &[(1, "type", Ty::Int), (2, "intVal", Ty::Int), (3, "strVal", Ty::Str)],
                )?;
                let v = if m.get("type").and_then(Value::as_i64) == Some(1) {
                    m.get("strVal").cloned().unwrap_or(json!(""))
                } else {
                    m.get("intVal").cloned().unwrap_or(json!(0))
                };
                out.insert(name, v);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Decodes a protobuf request body into the JSON object it stands for.
pub fn decode_object(body: &[u8]) -> Result<Value, ApiError> {
    let payload = body.strip_prefix(b"k8s\0").ok_or_else(|| bad("missing the k8s envelope"))?;
    let mut r = Reader { buf: payload, pos: 0 };
    let (mut type_meta, mut raw) = (Map::new(), &[][..]);
    while let Some((f, w)) = r.next()? {
        match (f, w) {
            (1, Wire::Bytes(b)) => type_meta = decode(b, TYPE_META)?,
            (2, Wire::Bytes(b)) => raw = b,
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
        _ => {
            return Err(ApiError::unsupported_media(format!(
                "the simulated API server cannot decode protobuf for {api_version}, Kind={kind}; send application/json"
            )));
        }
    };
    let mut obj = decode(raw, fields)?;
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    Ok(Value::Object(obj))
}
