//! The REST layer of the simulated API server: path routing for
//! `/api/v1/...` and `/apis/<group>/<version>/...`, discovery documents,
//! verbs (get, list, watch, create, update, patch, delete, deletecollection)
//! with their query parameters, content negotiation (JSON, Table, YAML
//! bodies), and the write pipeline every change goes through: system
//! metadata, status isolation, defaulting and validation, generation,
//! managedFields, no-op detection, finalizers, and CRD registration.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, Cause, GroupResource};
use crate::fields::{self, Ctx, Scope};
use crate::patch::{self, ListType};
use crate::registry::ResourceDef;
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::Sim;
use crate::store::{EventType, StoreInner};
use crate::util::{NAME_ALPHABET, meta_mut, meta_str, now_rfc3339};
use crate::{builtin, crd, hooks, watch};

/// Query parameters.
pub type Query = HashMap<String, String>;

/// A JSON response.
pub fn json_response(code: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = code;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The `Status` response of an error.
pub fn error_response(e: &ApiError) -> Response {
    json_response(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.to_status(),
    )
}

fn not_found_text() -> Response {
    let mut r = Response::new(Body::from("404 page not found\n"));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// Entry point for every `/api` and `/apis` request.
pub async fn handle(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return error_response(&ApiError::bad_request(format!("reading body: {e}"))),
    };
    let latency = sim.faults().latency_ms;
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let query: Query = parts.uri.query().map(url_decode_pairs).unwrap_or_default();
    let path = parts.uri.path().to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let result = match segs.as_slice() {
        ["api"] => Ok(json_response(
            StatusCode::OK,
            &json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": sim.addr.to_string()}],
            }),
        )),
        ["api", "v1"] => {
            Ok(json_response(StatusCode::OK, &sim.store.lock().registry.resource_list("", "v1")))
        }
        ["apis"] => Ok(json_response(StatusCode::OK, &sim.store.lock().registry.group_list())),
        ["apis", g] => match sim.store.lock().registry.group(g) {
            Some(v) => Ok(json_response(StatusCode::OK, &v)),
            None => Err(ApiError::no_resource()),
        },
        ["apis", g, v] => {
            let st = sim.store.lock();
            if st.registry.has_group_version(g, v) {
                Ok(json_response(StatusCode::OK, &st.registry.resource_list(g, v)))
            } else {
                Err(ApiError::no_resource())
            }
        }
        ["api", "v1", rest @ ..] => {
            resource_request(&sim, "", "v1", rest, &parts.method, &query, &parts.headers, bytes)
                .await
        }
        ["apis", g, v, rest @ ..] => {
            let (g, v) = (g.to_string(), v.to_string());
            resource_request(&sim, &g, &v, rest, &parts.method, &query, &parts.headers, bytes).await
        }
        _ => return not_found_text(),
    };
    match result {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn url_decode_pairs(q: &str) -> Query {
    let mut out = Query::new();
    for pair in q.split('&') {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A resolved resource request target.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resource.
    pub def: Arc<ResourceDef>,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Object name from the path.
    pub name: Option<String>,
    /// Subresource (`status`).
    pub sub: Option<String>,
}

fn resolve(sim: &Sim, group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
    let st = sim.store.lock();
    let reg = &st.registry;
    let nsd = if rest.len() >= 3 && rest[0] == "namespaces" {
        reg.get(group, version, rest[2]).filter(|d| d.namespaced)
    } else {
        None
    };
    let (def, namespace, name, sub, extra) = match nsd {
        Some(def) => (def, Some(rest[1].to_string()), rest.get(3), rest.get(4), rest.len() > 5),
        None => {
            let def = reg.get(group, version, rest[0]).ok_or_else(ApiError::no_resource)?;
            if def.namespaced {
                if rest.len() > 1 {
                    return Err(ApiError::no_resource());
                }
                (def, None, None, None, false)
            } else {
                (def, None, rest.get(1), rest.get(2), rest.len() > 3)
            }
        }
    };
    if extra {
        return Err(ApiError::no_resource());
    }
    let sub = sub.map(|s| s.to_string());
    if let Some(s) = &sub {
        let ok =
            (s == "status" && def.status_subresource) || (s == "scale" && def.scale_subresource);
        if !ok {
            return Err(ApiError::no_resource());
        }
    }
    Ok(Target { def, namespace, name: name.map(|s| s.to_string()), sub })
}

fn is_true(q: &Query, k: &str) -> bool {
    matches!(q.get(k).map(String::as_str), Some("true") | Some("1"))
}

#[allow(clippy::too_many_arguments)]
async fn resource_request(
    sim: &Arc<Sim>,
    group: &str,
    version: &str,
    rest: &[&str],
    method: &Method,
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let t = resolve(sim, group, version, rest)?;
    let verb = match (method.clone(), &t.name) {
        (Method::GET, None) if is_true(q, "watch") => "watch",
        (Method::GET, None) => "list",
        (Method::GET, Some(_)) => "get",
        (Method::POST, None) => "create",
        (Method::PUT, Some(_)) => "update",
        (Method::PATCH, Some(_)) => "patch",
        (Method::DELETE, Some(_)) => "delete",
        (Method::DELETE, None) => "deletecollection",
        (m, _) => {
            return Err(ApiError::method_not_allowed(m.as_str(), &t.def.gr()));
        }
    };
    let resource = match &t.sub {
        Some(s) => format!("{}/{s}", t.def.plural),
        None => t.def.plural.clone(),
    };
    sim.count(verb, &resource);
    if matches!(verb, "create" | "update" | "patch" | "delete" | "deletecollection")
        && let Some(e) = sim.injected_fault(&t.def.gr(), t.name.as_deref().unwrap_or(""))
    {
        return Err(e);
    }
    let table = wants_table(headers);
    if t.sub.as_deref() == Some("scale") {
        return scale_request(sim, &t, verb, q, headers, &body);
    }
    match verb {
        "get" if wants_metadata(headers) => get_metadata(sim, &t),
        "get" => get(sim, &t, q, table),
        "list" => list(sim, &t, q, table, wants_metadata(headers)),
        "watch" => watch::start(sim.clone(), &t, q, table, wants_metadata(headers)),
        "create" => create(sim, &t, q, headers, &body),
        "update" => update(sim, &t, q, headers, &body),
        "patch" => patch_request(sim, &t, q, headers, &body),
        "delete" => delete(sim, &t, q, &body),
        _ => delete_collection(sim, &t, q),
    }
}

/// Whether the client asked for `PartialObjectMetadata` (kube-rs' metadata
/// APIs).
pub fn wants_metadata(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=PartialObjectMetadata"))
}

/// An object as `meta.k8s.io/v1` `PartialObjectMetadata`.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

/// The object as served at the request's version.
pub fn present(def: &ResourceDef, obj: &Value) -> Value {
    if builtin::is_events_v1(def) {
        return builtin::event_from_core(obj.clone());
    }
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.insert("apiVersion".into(), json!(def.api_version()));
        m.insert("kind".into(), json!(def.kind));
    }
    v
}

/// The storage group-resource of a definition.
pub fn storage_gr(def: &ResourceDef) -> GroupResource {
    if builtin::is_events_v1(def) {
        return GroupResource::new("", "events");
    }
    def.gr()
}

/// The apiVersion objects of a resource are stored with.
fn storage_api_version(def: &ResourceDef) -> String {
    if builtin::is_events_v1(def) { "v1".to_string() } else { def.api_version() }
}

/// Converts a request object to its storage form.
fn to_storage(def: &ResourceDef, obj: Value) -> Value {
    if builtin::is_events_v1(def) { builtin::event_to_core(obj) } else { obj }
}

/// The CRD object defining a custom resource.
pub fn crd_object(sim: &Sim, def: &ResourceDef) -> Option<Arc<Value>> {
    let name = def.crd.as_deref()?;
    sim.store.lock().get(
        &GroupResource::new("apiextensions.k8s.io", "customresourcedefinitions"),
        "",
        name,
    )
}

fn get_metadata(sim: &Sim, t: &Target) -> Result<Response, ApiError> {
    let name = t.name.as_deref().unwrap_or("");
    let ns = t.namespace.as_deref().unwrap_or("");
    let obj = sim
        .store
        .lock()
        .get(&storage_gr(&t.def), ns, name)
        .ok_or_else(|| ApiError::not_found(&t.def.gr(), name))?;
    Ok(json_response(StatusCode::OK, &partial_metadata(&obj)))
}

fn get(sim: &Sim, t: &Target, q: &Query, table: bool) -> Result<Response, ApiError> {
    let name = t.name.as_deref().unwrap_or("");
    let ns = t.namespace.as_deref().unwrap_or("");
    let obj = sim
        .store
        .lock()
        .get(&storage_gr(&t.def), ns, name)
        .ok_or_else(|| ApiError::not_found(&t.def.gr(), name))?;
    if table {
        let crd = crd_object(sim, &t.def);
        let rv = meta_str(&obj, "resourceVersion").unwrap_or("").to_string();
        let tbl = hooks::table(
            &t.def,
            crd.as_deref(),
            &[obj],
            &rv,
            q.get("includeObject").map(String::as_str),
        )?;
        return Ok(json_response(StatusCode::OK, &tbl));
    }
    Ok(json_response(StatusCode::OK, &present(&t.def, &obj)))
}

/// The fields a resource supports in field selectors.
pub fn supported_fields(def: &ResourceDef) -> Vec<&'static str> {
    let mut f = vec!["metadata.name", "metadata.namespace"];
    if def.plural == "events" && def.group.is_empty() {
        f.extend([
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]);
    }
    if def.plural == "events" && def.group == "events.k8s.io" {
        f.extend([
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "reason",
            "reportingController",
            "type",
        ]);
    }
    if def.plural == "namespaces" {
        f.push("status.phase");
    }
    f
}

/// Parsed selectors of a list or watch.
pub struct Selectors {
    /// labelSelector.
    pub label: LabelSelector,
    /// fieldSelector.
    pub field: FieldSelector,
}

impl Selectors {
    /// Parses both selectors.
    pub fn parse(def: &ResourceDef, q: &Query) -> Result<Self, ApiError> {
        let mut field = FieldSelector::parse(
            q.get("fieldSelector").map(String::as_str).unwrap_or(""),
            &supported_fields(def),
        )?;
        if builtin::is_events_v1(def) {
            field.map_paths(builtin::event_field_to_core);
        }
        Ok(Selectors {
            label: LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))?,
            field,
        })
    }

    /// Whether an object matches both.
    pub fn matches(&self, obj: &Value) -> bool {
        self.label.matches(obj) && self.field.matches(obj)
    }
}

const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn list(
    sim: &Sim,
    t: &Target,
    q: &Query,
    table: bool,
    metadata: bool,
) -> Result<Response, ApiError> {
    let sel = Selectors::parse(&t.def, q)?;
    let limit: usize = match q.get("limit").map(String::as_str) {
        None | Some("") => 0,
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("limit: invalid value {l:?}")))?
            .max(0) as usize,
    };
    let mut st = sim.store.lock();
    let (rv, items, offset) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (id, offset) = decode_continue(token)?;
            let (rv, items) = st.snapshot(id).ok_or_else(|| ApiError::expired(CONTINUE_EXPIRED))?;
            (rv, items, offset)
        }
        None => {
            let all = st.list(&storage_gr(&t.def), t.namespace.as_deref());
            let items: Vec<Arc<Value>> = all.into_iter().filter(|o| sel.matches(o)).collect();
            (st.rv, Arc::new(items), 0)
        }
    };
    let end = if limit > 0 { (offset + limit).min(items.len()) } else { items.len() };
    let page: Vec<Arc<Value>> = items.get(offset..end).map(<[_]>::to_vec).unwrap_or_default();
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    if end < items.len() {
        let id = match q.get("continue").filter(|c| !c.is_empty()) {
            Some(token) => decode_continue(token)?.0,
            None => st.save_snapshot(items.clone()),
        };
        meta.insert("continue".into(), json!(encode_continue(id, end, rv)));
        meta.insert("remainingItemCount".into(), json!(items.len() - end));
    }
    drop(st);
    let meta = Value::Object(meta);
    if metadata {
        let items: Vec<Value> = page.iter().map(|o| partial_metadata(o)).collect();
        return Ok(json_response(
            StatusCode::OK,
            &json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": items,
            }),
        ));
    }
    if table {
        let crd = crd_object(sim, &t.def);
        let mut tbl = hooks::table(
            &t.def,
            crd.as_deref(),
            &page,
            &rv.to_string(),
            q.get("includeObject").map(String::as_str),
        )?;
        if let (Some(m), Some(tm)) =
            (meta.as_object(), tbl.get_mut("metadata").and_then(Value::as_object_mut))
        {
            for (k, v) in m {
                tm.insert(k.clone(), v.clone());
            }
        }
        return Ok(json_response(StatusCode::OK, &tbl));
    }
    let converted: Vec<Value>;
    let items: Vec<ListItem<'_>> = if builtin::is_events_v1(&t.def) {
        converted = page.iter().map(|o| present(&t.def, o)).collect();
        converted.iter().map(|o| ListItem { obj: o, type_meta: None }).collect()
    } else {
        let av = t.def.api_version();
        page.iter()
            .map(|o| ListItem {
                obj: o,
                // Typed lists omit the items' kind; custom resource lists keep it.
                type_meta: t.def.is_custom().then(|| (av.clone(), t.def.kind.clone())),
            })
            .collect()
    };
    let body = ListBody {
        kind: format!("{}List", t.def.kind),
        api_version: t.def.api_version(),
        metadata: &meta,
        items,
    };
    let bytes = serde_json::to_vec(&body)
        .map_err(|e| ApiError::internal(format!("encoding the list: {e}")))?;
    let mut r = Response::new(Body::from(bytes));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

/// A list response, serialized without copying the stored objects.
#[derive(serde::Serialize)]
struct ListBody<'a> {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: &'a Value,
    items: Vec<ListItem<'a>>,
}

/// One stored object as a list item: its apiVersion and kind replaced
/// (custom resources) or left out (built-in types).
struct ListItem<'a> {
    obj: &'a Value,
    type_meta: Option<(String, String)>,
}

impl serde::Serialize for ListItem<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(m) = self.obj.as_object() else {
            return self.obj.serialize(s);
        };
        let mut map = s.serialize_map(None)?;
        if let Some((av, kind)) = &self.type_meta {
            map.serialize_entry("apiVersion", av)?;
            map.serialize_entry("kind", kind)?;
        }
        for (k, v) in m {
            if k != "apiVersion" && k != "kind" {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

fn encode_continue(id: u64, offset: usize, rv: u64) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv, "id": id, "start": offset}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str) -> Result<(u64, usize), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let id = v.get("id").and_then(Value::as_u64).ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_u64).ok_or_else(bad)?;
    Ok((id, start as usize))
}

/// Parses a request body (JSON, or YAML for YAML content types).
pub fn parse_body(body: &[u8], headers: &HeaderMap) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if ct.contains("protobuf") {
        return crate::proto::decode_object(body);
    }
    if ct.contains("cbor") {
        return Err(ApiError::unsupported_media(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
        ));
    }
    parse_body_as(body, ct.contains("yaml"))
}

fn parse_body_as(body: &[u8], yaml: bool) -> Result<Value, ApiError> {
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) if yaml => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("body is not UTF-8"))?;
            serde_saphyr::from_str(text).map_err(|ye| {
                ApiError::bad_request(format!("error decoding YAML: {ye}; json: {e}"))
            })?
        }
        Err(e) => {
            return Err(ApiError::bad_request(format!(
                "couldn't get version/kind; json parse error: {e}"
            )));
        }
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: json: cannot unmarshal into Go value of type struct",
        ));
    }
    Ok(v)
}

/// Options of one write.
pub struct WriteOpts<'a> {
    /// Field manager.
    pub manager: String,
    /// Subresource written.
    pub sub: Option<&'a str>,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// Record an Update operation in managedFields (false for apply, which
    /// sets them itself).
    pub track: bool,
    /// `fieldValidation=Strict`.
    pub strict: bool,
}

fn manager_of(q: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.clone();
    }
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("unknown");
    let prefix = ua.split('/').next().unwrap_or(ua);
    prefix.chars().take(128).collect()
}

fn write_opts<'a>(
    q: &Query,
    headers: &HeaderMap,
    sub: Option<&'a str>,
) -> Result<WriteOpts<'a>, ApiError> {
    let dry_run = match q.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError {
                code: 400,
                reason: "BadRequest",
                message: format!("dryRun: Unsupported value: {other:?}: supported values: \"All\""),
                details: None,
            });
        }
    };
    Ok(WriteOpts {
        manager: manager_of(q, headers),
        sub,
        dry_run,
        track: true,
        strict: q.get("fieldValidation").map(String::as_str) == Some("Strict"),
    })
}

/// List rules by field path.
pub type ListRules<'a> = Box<dyn Fn(&[String]) -> ListType + 'a>;

/// List rules for a resource (server-side apply and ownership).
pub fn ssa_lists(def: &ResourceDef) -> ListRules<'_> {
    match &def.schema {
        Some(schema) if def.is_custom() => {
            Box::new(move |p: &[String]| patch::schema_list_type(schema, p))
        }
        _ => Box::new(patch::builtin_ssa_list),
    }
}

fn scope_of(def: &ResourceDef, sub: Option<&str>) -> Scope {
    if sub == Some("status") {
        Scope::StatusOnly
    } else if def.status_subresource {
        Scope::NoStatus
    } else {
        Scope::All
    }
}

fn kind_name(def: &ResourceDef) -> (String, String) {
    (def.kind.clone(), def.group.clone())
}

/// Defaulting and validation of an object about to be stored.
fn admit(
    def: &ResourceDef,
    obj: &mut Value,
    old: Option<&Value>,
    strict: bool,
) -> Result<(), ApiError> {
    let name = meta_str(obj, "name").unwrap_or("").to_string();
    let (kind, group) = kind_name(def);
    if def.is_custom() {
        hooks::cr_admit(def, obj, strict)?;
    } else {
        builtin::default_object(def, obj);
        let causes = builtin::validate_object(def, obj, old);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&kind, &group, &name, &causes));
        }
    }
    if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
        let causes = crd::validate(obj);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&kind, &group, &name, &causes));
        }
        crd::prepare(obj, &now_rfc3339());
    }
    Ok(())
}

fn check_kind(def: &ResourceDef, obj: &mut Value) -> Result<(), ApiError> {
    let av = obj.get("apiVersion").and_then(Value::as_str).map(String::from);
    let kind = obj.get("kind").and_then(Value::as_str).map(String::from);
    if def.is_custom() && (kind.as_deref().unwrap_or("").is_empty()) {
        return Err(ApiError::bad_request(format!("Object 'Kind' is missing in '{obj}'")));
    }
    if let Some(k) = &kind
        && !k.is_empty()
        && *k != def.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({k}) does not match the kind on the URL ({})",
            def.kind
        )));
    }
    if let Some(a) = &av
        && !a.is_empty()
        && *a != def.api_version()
    {
        let group_of = |s: &str| s.rsplit_once('/').map(|(g, _)| g.to_string()).unwrap_or_default();
        if group_of(a) != def.group {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({a}) does not match the expected API version ({})",
                def.api_version()
            )));
        }
    }
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!(def.api_version()));
        m.insert("kind".into(), json!(def.kind));
    }
    Ok(())
}

/// Checks that a namespace exists and accepts new content.
fn check_namespace(
    st: &StoreInner,
    def: &ResourceDef,
    ns: &str,
    name: &str,
) -> Result<(), ApiError> {
    let ns_gr = GroupResource::new("", "namespaces");
    match st.get(&ns_gr, "", ns) {
        None => Err(ApiError::not_found(&ns_gr, ns)),
        Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => Err(ApiError::forbidden(
            &def.gr(),
            name,
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// Creates an object: the shared path of POST, apply-create and the fleet.
pub fn persist_create(
    sim: &Sim,
    st: &mut StoreInner,
    def: &ResourceDef,
    url_ns: Option<&str>,
    mut obj: Value,
    o: &WriteOpts<'_>,
) -> Result<Value, ApiError> {
    check_kind(def, &mut obj)?;
    let mut obj = to_storage(def, obj);
    let now = now_rfc3339();
    let Some(meta) = meta_mut(&mut obj) else {
        return Err(ApiError::bad_request("object is not a JSON object"));
    };
    let body_ns = meta.get("namespace").and_then(Value::as_str).unwrap_or("").to_string();
    let ns = if def.namespaced {
        let url_ns = url_ns.unwrap_or("");
        if !body_ns.is_empty() && !url_ns.is_empty() && body_ns != url_ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let ns = if url_ns.is_empty() { body_ns } else { url_ns.to_string() };
        meta.insert("namespace".into(), json!(ns));
        ns
    } else {
        meta.remove("namespace");
        String::new()
    };
    let mut name = meta.get("name").and_then(Value::as_str).unwrap_or("").to_string();
    let (kind, group) = kind_name(def);
    if name.is_empty() {
        let prefix = meta.get("generateName").and_then(Value::as_str).unwrap_or("").to_string();
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                &kind,
                &group,
                "",
                &[Cause::required("metadata.name", "name or generateName is required")],
            ));
        }
        let base: String = prefix.chars().take(58).collect();
        for _ in 0..16 {
            let candidate = format!("{base}{}", sim.random_string(NAME_ALPHABET, 5));
            if st.get(&storage_gr(def), &ns, &candidate).is_none() {
                name = candidate;
                break;
            }
        }
        meta.insert("name".into(), json!(name));
    }
    if let Some(c) = builtin::validate_name(def, &name) {
        return Err(ApiError::invalid(&kind, &group, &name, &[c]));
    }
    if o.track && meta.get("resourceVersion").and_then(Value::as_str).is_some_and(|r| !r.is_empty())
    {
        return Err(ApiError::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    meta.remove("resourceVersion");
    meta.insert("uid".into(), json!(sim.uuid()));
    meta.insert("creationTimestamp".into(), json!(now));
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    meta.remove("selfLink");
    if def.has_generation {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    if o.track {
        meta.remove("managedFields");
    }
    if def.namespaced {
        check_namespace(st, def, &ns, &name)?;
    }
    if st.get(&storage_gr(def), &ns, &name).is_some() {
        return Err(ApiError::already_exists(&def.gr(), &name));
    }
    if def.status_subresource
        && o.sub.is_none()
        && def.plural != "namespaces"
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    admit(def, &mut obj, None, o.strict)?;
    if o.track {
        let lists = ssa_lists(def);
        let av = def.api_version();
        let ctx = Ctx {
            manager: &o.manager,
            subresource: None,
            api_version: &av,
            lists: &*lists,
            scope: scope_of(def, None),
            now: &now,
        };
        fields::track_update(None, &mut obj, &ctx);
    }
    if o.dry_run {
        return Ok(obj);
    }
    let stored = st.commit(&storage_gr(def), obj, EventType::Added);
    after_commit(st, def, &stored, false);
    Ok((*stored).clone())
}

/// Registry side effects of CRD writes.
fn after_commit(st: &mut StoreInner, def: &ResourceDef, obj: &Value, deleted: bool) {
    if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
        let name = meta_str(obj, "name").unwrap_or("").to_string();
        st.registry.remove_crd(&name);
        if !deleted {
            for d in crd::defs(obj) {
                st.registry.add(d);
            }
        }
    }
}

fn copy_system_meta(old: &Value, new: &mut Value) {
    let keys = [
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "name",
        "namespace",
    ];
    let old_meta = old.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
    if let Some(m) = meta_mut(new) {
        for k in keys {
            match old_meta.get(k) {
                Some(v) => {
                    m.insert(k.to_string(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        m.remove("selfLink");
    }
}

/// Updates an object: the shared path of PUT, every patch type and the
/// controller's status writes. Returns the stored (or unchanged) object.
pub fn persist_update(
    st: &mut StoreInner,
    def: &ResourceDef,
    old: &Arc<Value>,
    incoming: Value,
    o: &WriteOpts<'_>,
) -> Result<Value, ApiError> {
    let incoming = to_storage(def, incoming);
    let name = meta_str(old, "name").unwrap_or("").to_string();
    let old_rv = meta_str(old, "resourceVersion").unwrap_or("").to_string();
    let incoming_rv = meta_str(&incoming, "resourceVersion").unwrap_or("").to_string();
    if !incoming_rv.is_empty() && incoming_rv != old_rv {
        return Err(ApiError::conflict_modified(&def.gr(), &name));
    }
    if incoming_rv.is_empty() && !def.unconditional_update && o.track {
        let (kind, group) = kind_name(def);
        return Err(ApiError::invalid(
            &kind,
            &group,
            &name,
            &[Cause::new(
                "FieldValueInvalid",
                "Invalid value: 0x0: must be specified for an update",
                "metadata.resourceVersion",
            )],
        ));
    }
    let incoming_mf = incoming.pointer("/metadata/managedFields").cloned();
    let mut new = if o.sub == Some("status") {
        let mut n = (**old).clone();
        if let Some(m) = n.as_object_mut() {
            match incoming.get("status") {
                Some(s) => {
                    m.insert("status".into(), s.clone());
                }
                None => {
                    m.remove("status");
                }
            }
        }
        n
    } else {
        let mut n = incoming;
        if def.status_subresource
            && let Some(m) = n.as_object_mut()
        {
            match old.get("status") {
                Some(s) => {
                    m.insert("status".into(), s.clone());
                }
                None => {
                    m.remove("status");
                }
            }
        }
        n
    };
    if !new.is_object() {
        return Err(ApiError::bad_request("object is not a JSON object"));
    }
    copy_system_meta(old, &mut new);
    if let Some(m) = new.as_object_mut() {
        m.insert("apiVersion".into(), json!(storage_api_version(def)));
        m.insert("kind".into(), json!(def.kind));
    }
    admit(def, &mut new, Some(old), o.strict)?;
    if def.has_generation && builtin::generation_changes(def, old, &new) {
        let g = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
        if let Some(m) = meta_mut(&mut new) {
            m.insert("generation".into(), json!(g + 1));
        }
    }
    let now = now_rfc3339();
    if o.track {
        let lists = ssa_lists(def);
        let av = def.api_version();
        let ctx = Ctx {
            manager: &o.manager,
            subresource: o.sub,
            api_version: &av,
            lists: &*lists,
            scope: scope_of(def, o.sub),
            now: &now,
        };
        // A request that rewrites managedFields (as kubectl does when it
        // migrates client-side apply ownership) replaces them before the
        // update itself is tracked.
        let old_mf = old.pointer("/metadata/managedFields");
        match incoming_mf.as_ref().filter(|mf| Some(*mf) != old_mf && o.sub.is_none()) {
            Some(mf) => {
                let mut base = (**old).clone();
                if let Some(m) = meta_mut(&mut base) {
                    m.insert("managedFields".into(), mf.clone());
                }
                fields::track_update(Some(&base), &mut new, &ctx);
            }
            None => fields::track_update(Some(old), &mut new, &ctx),
        }
    } else if let Some(m) = meta_mut(&mut new) {
        match incoming_mf {
            Some(mf) => {
                m.insert("managedFields".into(), mf);
            }
            None => {
                m.remove("managedFields");
            }
        }
    }
    if let Some(m) = meta_mut(&mut new) {
        m.insert("resourceVersion".into(), json!(old_rv));
    }
    let mut old_cmp = (**old).clone();
    if let Some(m) = old_cmp.as_object_mut() {
        m.insert("apiVersion".into(), json!(storage_api_version(def)));
        m.insert("kind".into(), json!(def.kind));
    }
    if new == old_cmp {
        return Ok(present(def, old));
    }
    if o.dry_run {
        return Ok(new);
    }
    let finalizers_empty =
        new.pointer("/metadata/finalizers").and_then(Value::as_array).is_none_or(Vec::is_empty);
    if new.pointer("/metadata/deletionTimestamp").is_some() && finalizers_empty {
        let stored = st.commit(&storage_gr(def), new, EventType::Deleted);
        after_commit(st, def, &stored, true);
        return Ok((*stored).clone());
    }
    let stored = st.commit(&storage_gr(def), new, EventType::Modified);
    after_commit(st, def, &stored, false);
    Ok((*stored).clone())
}

fn create(
    sim: &Sim,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let obj = parse_body(body, headers)?;
    let o = write_opts(q, headers, None)?;
    let mut st = sim.store.lock();
    let out = persist_create(sim, &mut st, &t.def, t.namespace.as_deref(), obj, &o)?;
    Ok(json_response(StatusCode::CREATED, &present(&t.def, &out)))
}

fn check_name(t: &Target, obj: &Value) -> Result<(), ApiError> {
    let url = t.name.as_deref().unwrap_or("");
    let body = meta_str(obj, "name").unwrap_or("");
    if body != url {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body}) does not match the name on the URL ({url})"
        )));
    }
    if let (Some(url_ns), Some(body_ns)) = (t.namespace.as_deref(), meta_str(obj, "namespace"))
        && !body_ns.is_empty()
        && body_ns != url_ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn update(
    sim: &Sim,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mut obj = parse_body(body, headers)?;
    check_name(t, &obj)?;
    check_kind(&t.def, &mut obj)?;
    let o = write_opts(q, headers, t.sub.as_deref())?;
    let name = t.name.as_deref().unwrap_or("");
    let ns = t.namespace.as_deref().unwrap_or("");
    let mut st = sim.store.lock();
    let Some(old) = st.get(&storage_gr(&t.def), ns, name) else {
        if t.def.plural == "events" && t.sub.is_none() {
            let out = persist_create(sim, &mut st, &t.def, t.namespace.as_deref(), obj, &o)?;
            return Ok(json_response(StatusCode::CREATED, &present(&t.def, &out)));
        }
        return Err(ApiError::not_found(&t.def.gr(), name));
    };
    let out = persist_update(&mut st, &t.def, &old, obj, &o)?;
    Ok(json_response(StatusCode::OK, &present(&t.def, &out)))
}

const PATCH_TYPES_CR: &str =
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

fn patch_request(
    sim: &Sim,
    t: &Target,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let accepted = if t.def.is_custom() {
        PATCH_TYPES_CR.to_string()
    } else {
        format!("{PATCH_TYPES_CR}, application/strategic-merge-patch+json")
    };
    let unsupported = || {
        ApiError::unsupported_media(format!(
            "the body of the request was in an unknown format - accepted media types include: {accepted}"
        ))
    };
    let kind = match ct.as_str() {
        "application/json-patch+json" => "json",
        "application/merge-patch+json" => "merge",
        "application/strategic-merge-patch+json" if !t.def.is_custom() => "smp",
        "application/apply-patch+yaml" | "application/apply-patch+json" => "apply",
        _ => return Err(unsupported()),
    };
    let mut o = write_opts(q, headers, t.sub.as_deref())?;
    let force = is_true(q, "force");
    if kind == "apply" {
        if q.get("fieldManager").is_none_or(String::is_empty) {
            return Err(ApiError::invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                &[Cause::required("fieldManager", "is required for apply patch")],
            ));
        }
        return apply_request(sim, t, q, body, force, o);
    }
    if q.contains_key("force") {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            &[Cause::new(
                "FieldValueForbidden",
                "Forbidden: may not be specified for non-apply patch",
                "force",
            )],
        ));
    }
    let patch_doc: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let name = t.name.as_deref().unwrap_or("");
    let ns = t.namespace.as_deref().unwrap_or("");
    let mut st = sim.store.lock();
    let old = st
        .get(&storage_gr(&t.def), ns, name)
        .ok_or_else(|| ApiError::not_found(&t.def.gr(), name))?;
    let base = present(&t.def, &old);
    let patched = match kind {
        "json" => {
            let mut v = base.clone();
            patch::json_patch(&mut v, &patch_doc)?;
            v
        }
        "merge" => {
            if !patch_doc.is_object() {
                return Err(ApiError::bad_request("merge patch is not a JSON object"));
            }
            let mut v = base.clone();
            patch::merge_patch(&mut v, &patch_doc);
            v
        }
        _ => {
            if !patch_doc.is_object() {
                return Err(ApiError::bad_request("strategic merge patch is not a JSON object"));
            }
            patch::strategic_merge(&base, &patch_doc, &patch::builtin_smp_list)?
        }
    };
    let mut patched = patched;
    // The name and namespace cannot change through a patch.
    if let Some(m) = meta_mut(&mut patched) {
        m.insert("name".into(), json!(name));
        if !ns.is_empty() {
            m.insert("namespace".into(), json!(ns));
        }
    }
    o.track = true;
    let out = persist_update(&mut st, &t.def, &old, patched, &o)?;
    Ok(json_response(StatusCode::OK, &present(&t.def, &out)))
}

fn apply_request(
    sim: &Sim,
    t: &Target,
    q: &Query,
    body: &[u8],
    force: bool,
    mut o: WriteOpts<'_>,
) -> Result<Response, ApiError> {
    let _ = q;
    let mut applied = parse_body_as(body, true)?;
    if applied.get("apiVersion").and_then(Value::as_str).is_none_or(str::is_empty)
        || applied.get("kind").and_then(Value::as_str).is_none_or(str::is_empty)
    {
        return Err(ApiError::bad_request(
            "error decoding YAML: Object 'Kind' is missing or apiVersion is missing in the applied configuration",
        ));
    }
    let name = t.name.as_deref().unwrap_or("").to_string();
    let ns = t.namespace.as_deref().unwrap_or("").to_string();
    match meta_str(&applied, "name") {
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        _ => {}
    }
    if let Some(m) = meta_mut(&mut applied) {
        m.insert("name".into(), json!(name));
        if t.def.namespaced {
            match m.get("namespace").and_then(Value::as_str) {
                Some(bns) if !bns.is_empty() && bns != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    m.insert("namespace".into(), json!(ns));
                }
            }
        }
    }
    let mut applied_cmp = applied.clone();
    check_kind(&t.def, &mut applied_cmp)?;
    let applied_rv = meta_str(&applied, "resourceVersion").unwrap_or("").to_string();
    if let Some(m) = meta_mut(&mut applied) {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    let mut st = sim.store.lock();
    let live = st.get(&storage_gr(&t.def), &ns, &name);
    let now = now_rfc3339();
    let lists = ssa_lists(&t.def);
    let av = t.def.api_version();
    let ctx = Ctx {
        manager: &o.manager,
        subresource: o.sub,
        api_version: &av,
        lists: &*lists,
        scope: scope_of(&t.def, o.sub),
        now: &now,
    };
    o.track = false;
    match live {
        None => {
            if !applied_rv.is_empty() {
                return Err(ApiError::not_found(&t.def.gr(), &name));
            }
            if o.sub.is_some() {
                return Err(ApiError::not_found(&t.def.gr(), &name));
            }
            let merged = fields::apply(None, &applied, force, &ctx)?;
            let out = persist_create(sim, &mut st, &t.def, t.namespace.as_deref(), merged, &o)?;
            Ok(json_response(StatusCode::CREATED, &present(&t.def, &out)))
        }
        Some(old) => {
            let old_rv = meta_str(&old, "resourceVersion").unwrap_or("");
            if !applied_rv.is_empty() && applied_rv != old_rv {
                return Err(ApiError::conflict_modified(&t.def.gr(), &name));
            }
            let live_v = present(&t.def, &old);
            let merged = fields::apply(Some(&live_v), &applied, force, &ctx)?;
            let out = persist_update(&mut st, &t.def, &old, merged, &o)?;
            Ok(json_response(StatusCode::OK, &present(&t.def, &out)))
        }
    }
}

fn delete_options(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(json!({}))
}

fn success_status(def: &ResourceDef, obj: &Value) -> Value {
    let mut details = Map::new();
    details.insert("name".into(), json!(meta_str(obj, "name").unwrap_or("")));
    if !def.group.is_empty() {
        details.insert("group".into(), json!(def.group));
    }
    details.insert("kind".into(), json!(def.plural));
    details.insert("uid".into(), json!(meta_str(obj, "uid").unwrap_or("")));
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// Deletes one object (finalizers respected). Returns the response body and
/// whether it was removed immediately.
pub fn delete_object(
    st: &mut StoreInner,
    def: &ResourceDef,
    old: &Arc<Value>,
    dry_run: bool,
) -> (Value, bool) {
    let has_finalizers = old
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    let is_ns = def.plural == "namespaces" && def.group.is_empty();
    if has_finalizers && !is_ns {
        if old.pointer("/metadata/deletionTimestamp").is_some() || dry_run {
            return (present(def, old), false);
        }
        let mut new = (**old).clone();
        if let Some(m) = meta_mut(&mut new) {
            m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
        }
        let stored = st.commit(&storage_gr(def), new, EventType::Modified);
        return (present(def, &stored), false);
    }
    if dry_run {
        return (present(def, old), true);
    }
    if is_ns {
        let ns_name = meta_str(old, "name").unwrap_or("").to_string();
        let mut term = (**old).clone();
        if let Some(m) = meta_mut(&mut term) {
            m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
        }
        if let Some(m) = term.as_object_mut() {
            m.insert("status".into(), json!({"phase": "Terminating"}));
        }
        let term = st.commit(&storage_gr(def), term, EventType::Modified);
        let grs: Vec<GroupResource> = st.collections.keys().cloned().collect();
        for gr in grs {
            for obj in st.list(&gr, Some(&ns_name)) {
                let mut last = (*obj).clone();
                if let Some(m) = meta_mut(&mut last) {
                    m.insert("deletionTimestamp".into(), json!(now_rfc3339()));
                }
                st.commit(&gr, last, EventType::Deleted);
            }
        }
        st.commit(&storage_gr(def), (*term).clone(), EventType::Deleted);
        return (present(def, &term), true);
    }
    if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
        let group = old.pointer("/spec/group").and_then(Value::as_str).unwrap_or("");
        let plural = old.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or("");
        let gr = GroupResource::new(group, plural);
        for obj in st.list(&gr, None) {
            st.commit(&gr, (*obj).clone(), EventType::Deleted);
        }
    }
    let stored = st.commit(&storage_gr(def), (**old).clone(), EventType::Deleted);
    after_commit(st, def, &stored, true);
    let body = if def.return_deleted_object {
        present(def, &stored)
    } else {
        success_status(def, &stored)
    };
    (body, true)
}

fn delete(sim: &Sim, t: &Target, q: &Query, body: &[u8]) -> Result<Response, ApiError> {
    let opts = delete_options(body);
    let dry_run = q.get("dryRun").map(String::as_str) == Some("All")
        || opts
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "All"));
    let name = t.name.as_deref().unwrap_or("");
    let ns = t.namespace.as_deref().unwrap_or("");
    let mut st = sim.store.lock();
    let old = st
        .get(&storage_gr(&t.def), ns, name)
        .ok_or_else(|| ApiError::not_found(&t.def.gr(), name))?;
    if let Some(uid) = opts.pointer("/preconditions/uid").and_then(Value::as_str) {
        let actual = meta_str(&old, "uid").unwrap_or("");
        if uid != actual {
            return Err(ApiError::conflict(
                &t.def.gr(),
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = opts.pointer("/preconditions/resourceVersion").and_then(Value::as_str) {
        let actual = meta_str(&old, "resourceVersion").unwrap_or("");
        if rv != actual {
            return Err(ApiError::conflict(
                &t.def.gr(),
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            ));
        }
    }
    let (body, removed) = delete_object(&mut st, &t.def, &old, dry_run);
    let code = if removed { StatusCode::OK } else { StatusCode::ACCEPTED };
    Ok(json_response(code, &body))
}

fn delete_collection(sim: &Sim, t: &Target, q: &Query) -> Result<Response, ApiError> {
    let sel = Selectors::parse(&t.def, q)?;
    let dry_run = q.get("dryRun").map(String::as_str) == Some("All");
    let mut st = sim.store.lock();
    let items: Vec<Arc<Value>> = st
        .list(&storage_gr(&t.def), t.namespace.as_deref())
        .into_iter()
        .filter(|o| sel.matches(o))
        .collect();
    let mut out = Vec::new();
    for old in items {
        let (body, _) = delete_object(&mut st, &t.def, &old, dry_run);
        out.push(present(&t.def, &body_object(&body, &old)));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", t.def.kind),
            "apiVersion": t.def.api_version(),
            "metadata": {"resourceVersion": st.rv.to_string()},
            "items": out,
        }),
    ))
}

fn body_object(body: &Value, old: &Value) -> Value {
    if body.get("kind").and_then(Value::as_str) == Some("Status") {
        old.clone()
    } else {
        body.clone()
    }
}

fn scale_of(obj: &Value) -> Value {
    let m = |k: &str| obj.pointer(&format!("/metadata/{k}")).cloned().unwrap_or(Value::Null);
    let selector = obj
        .pointer("/spec/selector")
        .and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m("name"),
            "namespace": m("namespace"),
            "uid": m("uid"),
            "resourceVersion": m("resourceVersion"),
            "creationTimestamp": m("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// The `/scale` subresource of Deployments (autoscaling/v1 Scale).
fn scale_request(
    sim: &Sim,
    t: &Target,
    verb: &str,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let name = t.name.as_deref().unwrap_or("");
    let ns = t.namespace.as_deref().unwrap_or("");
    let mut st = sim.store.lock();
    let old = st
        .get(&storage_gr(&t.def), ns, name)
        .ok_or_else(|| ApiError::not_found(&t.def.gr(), name))?;
    let current = scale_of(&old);
    let wanted = match verb {
        "get" => return Ok(json_response(StatusCode::OK, &current)),
        "update" => parse_body(body, headers)?,
        "patch" => {
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let doc: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let mut v = current.clone();
            if ct.starts_with("application/json-patch+json") {
                patch::json_patch(&mut v, &doc)?;
            } else if ct.starts_with("application/merge-patch+json") {
                patch::merge_patch(&mut v, &doc);
            } else if ct.starts_with("application/strategic-merge-patch+json") {
                v = patch::strategic_merge(&v, &doc, &patch::builtin_smp_list)?;
            } else {
                return Err(ApiError::unsupported_media(format!(
                    "the body of the request was in an unknown format - accepted media types include: {PATCH_TYPES_CR}, application/strategic-merge-patch+json"
                )));
            }
            v
        }
        other => return Err(ApiError::method_not_allowed(other, &t.def.gr())),
    };
    let replicas = wanted.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            name,
            &[Cause::invalid(
                "spec.replicas",
                &json!(replicas),
                "must be greater than or equal to 0",
            )],
        ));
    }
    let mut new = (*old).clone();
    if let Some(m) = meta_mut(&mut new) {
        let rv = wanted.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
        match rv {
            Value::String(s) if !s.is_empty() => {
                m.insert("resourceVersion".into(), json!(s));
            }
            _ => {}
        }
    }
    if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), json!(replicas));
    }
    let o = write_opts(q, headers, Some("scale"))?;
    let o = WriteOpts { sub: None, ..o };
    let out = persist_update(&mut st, &t.def, &old, new, &o)?;
    Ok(json_response(StatusCode::OK, &scale_of(&out)))
}
