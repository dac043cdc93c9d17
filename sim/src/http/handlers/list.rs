//! LIST of a collection: selectors, pagination with `limit` and `continue`
//! (a snapshot per paginated list, so that pages stay consistent; a list at
//! `resourceVersion=0` whole, as the watch cache answers it), and the list as
//! objects, a Table or PartialObjectMetadata.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::http::request::{ListSelectors, Representation, ResourceRequest};
use crate::http::response::{json_response, list_response, partial_metadata};
use crate::http::table::{self, TableMetadata};
use crate::state::SimState;

/// The real server's message for a `continue` token older than the
/// compaction window.
const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// LIST of a collection.
pub fn list(sim: &Arc<SimState>, request: &ResourceRequest) -> Result<Response, ApiError> {
    let target = &request.target;
    let query = &request.query;
    let selectors = ListSelectors::from_query(&target.def, query)?;
    let limit: usize = match query.get("limit").map(String::as_str) {
        None | Some("") => 0,
        Some(limit) => limit
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("limit: invalid value {limit:?}")))?
            .max(0) as usize,
    };
    // The real server answers `resourceVersion=0` from its watch cache, which does not page
    // ("serve paginated requests about revision 0 from watch cache to avoid overwhelming
    // etcd", the cacher's `shouldDelegateList`): the whole list, however many `limit` asked.
    let limit = if query.get("resourceVersion").is_some_and(|rv| rv == "0") { 0 } else { limit };
    let continue_token = query.get("continue").filter(|token| !token.is_empty());
    let mut store = sim.store.lock();
    let (rv, items, offset) = match continue_token {
        Some(token) => {
            let (snapshot_id, offset) = decode_continue(token)?;
            let (rv, items) =
                store.snapshot(snapshot_id).ok_or_else(|| ApiError::expired(CONTINUE_EXPIRED))?;
            (rv, items, offset)
        }
        None => {
            let all = store.list(&target.def.storage_gr(), target.namespace.as_deref());
            let matching: Vec<Arc<Value>> =
                all.into_iter().filter(|object| selectors.matches(object)).collect();
            (store.rv, Arc::new(matching), 0)
        }
    };
    let end = if limit > 0 { (offset + limit).min(items.len()) } else { items.len() };
    let page: Vec<Arc<Value>> = items.get(offset..end).map(<[_]>::to_vec).unwrap_or_default();
    let mut metadata = Map::new();
    metadata.insert("resourceVersion".into(), json!(rv.to_string()));
    if end < items.len() {
        let snapshot_id = match continue_token {
            Some(token) => decode_continue(token)?.0,
            None => store.save_snapshot(items.clone()),
        };
        metadata.insert("continue".into(), json!(encode_continue(snapshot_id, end, rv)));
        metadata.insert("remainingItemCount".into(), json!(items.len() - end));
    }
    drop(store);
    let metadata = Value::Object(metadata);
    match request.representation {
        Representation::Metadata => {
            let items: Vec<Value> = page.iter().map(|object| partial_metadata(object)).collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": metadata,
                    "items": items,
                }),
            ))
        }
        Representation::Table => {
            let crd = sim.store.lock().defining_crd(&target.def);
            let include = table::include_object(query.get("includeObject").map(String::as_str))?;
            let metadata = TableMetadata::List(&metadata);
            let table =
                table::resource_table(&target.def, crd.as_deref(), &page, metadata, include);
            Ok(json_response(StatusCode::OK, &table))
        }
        Representation::Object => list_response(&target.def, &page, &metadata),
    }
}

/// A `continue` token: the snapshot and the offset of the next page (and
/// the list's resourceVersion, which clients may inspect).
fn encode_continue(snapshot_id: u64, offset: usize, rv: u64) -> String {
    let raw =
        json!({"v": "meta.k8s.io/v1", "rv": rv, "id": snapshot_id, "start": offset}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// The snapshot id and offset of a `continue` token.
fn decode_continue(token: &str) -> Result<(u64, usize), ApiError> {
    let invalid = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| invalid())?;
    let decoded: Value = serde_json::from_slice(&raw).map_err(|_| invalid())?;
    let snapshot_id = decoded.get("id").and_then(Value::as_u64).ok_or_else(invalid)?;
    let start = decoded.get("start").and_then(Value::as_u64).ok_or_else(invalid)?;
    Ok((snapshot_id, start as usize))
}
