//! Server-side printing: the `meta.k8s.io/v1` `Table` the API server returns
//! when a client (kubectl get) sends
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, with the columns
//! of the real printers (`columns`, the apps workloads' in
//! `workload_columns`, Nodes' in `nodes`, each a `column_def`), their cells
//! (`cells`, `jsonpath`), and the rows' `object` according to
//! `includeObject`.
//!
//! kubectl asks for no `includeObject`, and the server's default is
//! `Metadata`: a `PartialObjectMetadata`. Ages are computed against the
//! simulated time (milliseconds since the Unix epoch); a paginated list's
//! `continue` and `remainingItemCount` travel in the table's metadata.

mod cells;
mod column_def;
mod columns;
mod jsonpath;
mod nodes;
mod workload_columns;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::registry::ResourceDef;
use crate::util::now_ms;
use cells::cell;
use columns::{ColumnDef, columns_for_builtin, columns_for_crd};

/// `includeObject` query parameter of a Table request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object in the rows.
    None,
    /// The object's metadata as `PartialObjectMetadata` (the server default,
    /// what kubectl gets unless it sorts).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the query parameter value (`None`, `Metadata`, `Object`);
    /// absent means `Metadata`. Other values are rejected by the server.
    fn from_query(value: Option<&str>) -> Option<Self> {
        match value {
            None | Some("") | Some("Metadata") => Some(Self::Metadata),
            Some("None") => Some(Self::None),
            Some("Object") => Some(Self::Object),
            Some(_) => None,
        }
    }
}

/// The `includeObject` query parameter, or the 400 the server answers for
/// an unsupported value.
pub fn include_object(query_value: Option<&str>) -> Result<IncludeObject, ApiError> {
    IncludeObject::from_query(query_value).ok_or_else(|| {
        ApiError::bad_request(format!(
            "includeObject: Unsupported value: {:?}: supported values: \"None\", \"Metadata\", \"Object\"",
            query_value.unwrap_or("")
        ))
    })
}

/// What goes into a Table's `metadata`.
pub enum TableMetadata<'a> {
    /// One object (a GET or a watch event): its resourceVersion.
    Object(&'a str),
    /// A list: its metadata (resourceVersion, continue, remainingItemCount).
    List(&'a Value),
}

/// The Table of stored objects of `def` (`crd` is the defining CRD of a
/// custom resource).
pub fn resource_table(
    def: &ResourceDef,
    crd: Option<&Value>,
    stored: &[Arc<Value>],
    metadata: TableMetadata<'_>,
    include_object: IncludeObject,
) -> Value {
    let columns = match crd {
        Some(crd) => columns_for_crd(crd, &def.version),
        None if def.is("", "nodes") => nodes::columns(),
        None => columns_for_builtin(&def.plural),
    };
    let objects: Vec<Value> = stored.iter().map(|object| def.to_served(object)).collect();
    match metadata {
        TableMetadata::Object(rv) => table(&columns, &objects, rv, include_object, now_ms()),
        TableMetadata::List(list_meta) => {
            table_with_list_meta(&columns, &objects, list_meta, include_object, now_ms())
        }
    }
}

/// The `Table` for `objects` with `columns`. `resource_version` goes to the
/// table's `metadata.resourceVersion` (the list's, or the object's on a GET).
fn table(
    columns: &[ColumnDef],
    objects: &[Value],
    resource_version: &str,
    include_object: IncludeObject,
    now_ms: u64,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let cells: Vec<Value> =
                columns.iter().map(|column| cell(column, object, now_ms)).collect();
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(cells));
            match include_object {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    row.insert(
                        "object".into(),
                        json!({
                            "kind": "PartialObjectMetadata",
                            "apiVersion": "meta.k8s.io/v1",
                            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
                        }),
                    );
                }
                IncludeObject::Object => {
                    row.insert("object".into(), object.clone());
                }
            }
            Value::Object(row)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns.iter().map(ColumnDef::definition).collect::<Vec<_>>(),
        "rows": rows,
    })
}

/// [`table`] with the list's whole `metadata` (resourceVersion, continue,
/// remainingItemCount) as the table's metadata.
fn table_with_list_meta(
    columns: &[ColumnDef],
    objects: &[Value],
    list_meta: &Value,
    include_object: IncludeObject,
    now_ms: u64,
) -> Value {
    let mut table = table(columns, objects, "", include_object, now_ms);
    if let Some(fields) = table.as_object_mut() {
        let metadata = match list_meta {
            Value::Object(_) => list_meta.clone(),
            _ => json!({}),
        };
        fields.insert("metadata".into(), metadata);
    }
    table
}
