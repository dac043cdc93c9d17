//! What a resource request asks for: the target its path names (resource,
//! namespace, name, subresource), the verb, the representation it accepts
//! (object, Table, PartialObjectMetadata), its query (`query`), its body
//! (`body`, `protobuf`) and the options of writes and lists (`options`).

mod body;
mod options;
mod protobuf;
mod query;

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, header};

use crate::auth::UserInfo;
use crate::error::ApiError;
use crate::registry::{Registry, ResourceDef};

pub use body::{parse_delete_options, parse_json_or_yaml, parse_object};
pub use options::{
    ListSelectors, PatchFormat, delete_options, patch_format, unsupported_patch_type, write_options,
};
pub use query::{Query, is_true, parse_query};

/// The resource a request's path names.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resource at the path's version.
    pub def: Arc<ResourceDef>,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Object name from the path.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`, `log`, `token`).
    pub subresource: Option<String>,
}

impl Target {
    /// The namespace, "" when the path has none.
    pub fn namespace_or_empty(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    /// The object name, "" when the path has none.
    pub fn name_or_empty(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// The path below `/api/v1` or `/apis/<group>/<version>`:
    /// `[namespaces/<ns>/]<plural>[/<name>[/<subresource>]]`. A path that
    /// names no served resource is 404.
    pub fn resolve(
        registry: &Registry,
        group: &str,
        version: &str,
        path: &[&str],
    ) -> Result<Target, ApiError> {
        let namespaced_def = if path.len() >= 3 && path[0] == "namespaces" {
            registry.get(group, version, path[2]).filter(|def| def.namespaced)
        } else {
            None
        };
        let (def, namespace, name, subresource, too_long) = match namespaced_def {
            Some(def) => (def, Some(path[1].to_string()), path.get(3), path.get(4), path.len() > 5),
            None => {
                let plural = path.first().ok_or_else(ApiError::no_resource)?;
                let def = registry.get(group, version, plural).ok_or_else(ApiError::no_resource)?;
                if def.namespaced {
                    // All namespaces: only the collection.
                    if path.len() > 1 {
                        return Err(ApiError::no_resource());
                    }
                    (def, None, None, None, false)
                } else {
                    (def, None, path.get(1), path.get(2), path.len() > 3)
                }
            }
        };
        if too_long {
            return Err(ApiError::no_resource());
        }
        let subresource = subresource.map(|subresource| subresource.to_string());
        if let Some(subresource) = &subresource {
            let served = (subresource == "status" && def.status_subresource)
                || (subresource == "scale" && def.scale_subresource)
                || def.create_subresource(subresource).is_some()
                || def.get_subresource(subresource);
            if !served {
                return Err(ApiError::no_resource());
            }
        }
        Ok(Target { def, namespace, name: name.map(|name| name.to_string()), subresource })
    }
}

/// The Kubernetes verb of a request, from its method and whether it names
/// an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// GET of an object.
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=true`.
    Watch,
    /// POST to a collection.
    Create,
    /// PUT of an object.
    Update,
    /// PATCH of an object.
    Patch,
    /// DELETE of an object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

impl Verb {
    /// The verb of `method` on `target`; 405 for a method the target does
    /// not allow.
    pub fn of(method: &Method, target: &Target, query: &Query) -> Result<Verb, ApiError> {
        let names_object = target.name.is_some();
        Ok(match (method.clone(), names_object) {
            (Method::GET, false) if is_true(query, "watch") => Verb::Watch,
            (Method::GET, false) => Verb::List,
            (Method::GET, true) => Verb::Get,
            (Method::POST, false) => Verb::Create,
            (Method::POST, true)
                if target.subresource.as_deref().is_some_and(|subresource| {
                    target.def.create_subresource(subresource).is_some()
                }) =>
            {
                Verb::Create
            }
            (Method::PUT, true) => Verb::Update,
            (Method::PATCH, true) => Verb::Patch,
            (Method::DELETE, true) => Verb::Delete,
            (Method::DELETE, false) => Verb::DeleteCollection,
            (other, _) => {
                return Err(ApiError::method_not_allowed(other.as_str(), &target.def.gr()));
            }
        })
    }

    /// The name the stats and the real server's audit log use.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }

    /// Whether the verb changes objects.
    pub fn is_write(self) -> bool {
        !matches!(self, Verb::Get | Verb::List | Verb::Watch)
    }
}

/// The representation a client accepts for objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// The objects themselves.
    Object,
    /// A `meta.k8s.io/v1` Table (`kubectl get`).
    Table,
    /// `PartialObjectMetadata` (kube-rs' metadata APIs).
    Metadata,
}

impl Representation {
    /// From the `Accept` header; metadata wins when both are asked for.
    pub fn accepted(headers: &HeaderMap) -> Representation {
        let accept =
            headers.get(header::ACCEPT).and_then(|value| value.to_str().ok()).unwrap_or("");
        if accept.contains("as=PartialObjectMetadata") {
            Representation::Metadata
        } else if accept.contains("as=Table") {
            Representation::Table
        } else {
            Representation::Object
        }
    }
}

/// A resource request, parsed as far as every handler needs it; the body
/// stays raw because only writes read it, each in its own format.
pub struct ResourceRequest {
    pub target: Target,
    pub verb: Verb,
    pub query: Query,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub representation: Representation,
    /// The user the authentication filter found (`http::auth`).
    pub user: UserInfo,
}
