//! What a Kubernetes API request asks to do: the real API server's `RequestInfoFactory`
//! (apiserver `endpoints/request/requestinfo.go`) over the method, path and query. Resource
//! requests are `/api/<v>/...` and `/apis/<g>/<v>/...` with at least a resource; everything
//! else (discovery documents included) is a non-resource request whose verb is the
//! lower-cased HTTP method. The simulated API server authorizes and logs requests with it,
//! and the operator counts its own requests by the same verbs, so the two never drift apart.

use std::collections::HashMap;

/// The request attributes the authorizer decides on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// An API resource (or subresource) request, as opposed to a path.
    pub resource_request: bool,
    /// The URL path.
    pub path: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`; for non-resource requests the lower-cased method.
    pub verb: String,
    /// API group ("" for the core group).
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Namespace ("" for cluster scope; a namespace's own name for requests
    /// on `namespaces/<name>`).
    pub namespace: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource (`status`, `scale`, `token`), "" for none.
    pub subresource: String,
    /// Object name, "" for collections; a list or watch selecting exactly
    /// one `metadata.name` carries that name.
    pub name: String,
}

/// Subresources of namespaces (`namespaces/<name>/status`), which the
/// path parser must not take for a namespaced resource.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// The request info of `method path?query`, the query as sent (percent-encoded).
pub fn parse(method: &str, path: &str, query: Option<&str>) -> RequestInfo {
    let decoded: HashMap<String, String> = query
        .map(|query| form_urlencoded::parse(query.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    request_info(method, path, &decoded)
}

/// The Kubernetes verb of `method path?query`, as the API server's audit log and authorizer
/// name it: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
/// `deletecollection`; the lower-cased method outside the resource API.
pub fn verb(method: &str, path: &str, query: Option<&str>) -> String {
    parse(method, path, query).verb
}

/// The request info of `method path?query` (query already decoded).
pub fn request_info(method: &str, path: &str, query: &HashMap<String, String>) -> RequestInfo {
    let mut info = RequestInfo {
        resource_request: false,
        path: path.to_string(),
        verb: method.to_ascii_lowercase(),
        ..RequestInfo::default()
    };
    let parts: Vec<&str> =
        path.trim_matches('/').split('/').filter(|part| !part.is_empty()).collect();
    let mut rest: &[&str] = match parts.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => {
            info.api_version = (*version).to_string();
            rest
        }
        ["apis", group, version, rest @ ..] if !rest.is_empty() => {
            info.api_group = (*group).to_string();
            info.api_version = (*version).to_string();
            rest
        }
        _ => return info,
    };
    info.resource_request = true;
    let verb_from_path = matches!(rest.first(), Some(&"watch") | Some(&"proxy"));
    if verb_from_path {
        if rest.len() < 2 {
            // The real parser fails here and the request is served as the
            // partial info it has: a resource request without a resource.
            return info;
        }
        info.verb = rest[0].to_string();
        rest = &rest[1..];
    } else {
        info.verb = match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_string();
    }
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        info.namespace = rest[1].to_string();
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest = &rest[2..];
        }
    }
    if rest.len() >= 3 && info.verb != "proxy" {
        info.subresource = rest[2].to_string();
    }
    if rest.len() >= 2 {
        info.name = rest[1].to_string();
    }
    if let Some(resource) = rest.first() {
        info.resource = (*resource).to_string();
    }
    if info.name.is_empty() && info.verb == "get" {
        let watch = query
            .get("watch")
            .is_some_and(|value| !matches!(value.to_ascii_lowercase().as_str(), "false" | "0"));
        info.verb = if watch { "watch" } else { "list" }.to_string();
        if let Some(name) = query.get("fieldSelector").and_then(|selector| exact_name(selector)) {
            info.name = name;
        }
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".to_string();
    }
    info
}

/// The name a field selector requires exactly (`metadata.name=x` or
/// `metadata.name==x` among its terms), when it is a valid path segment.
fn exact_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let (key, value) = term.split_once("==").or_else(|| term.split_once('='))?;
        let (key, value) = (key.trim(), value.trim());
        (key == "metadata.name" && is_valid_path_segment(value)).then(|| value.to_string())
    })
}

/// `path.IsValidPathSegmentName`: not `.` or `..`, no `/` or `%`.
pub fn is_valid_path_segment(name: &str) -> bool {
    name != "." && name != ".." && !name.contains('/') && !name.contains('%')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: &str, path: &str, query: &[(&str, &str)]) -> RequestInfo {
        let query = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        request_info(method, path, &query)
    }

    #[test]
    fn resource_requests_map_methods_to_verbs() {
        let get = info("GET", "/apis/apps/v1/namespaces/arcgis/deployments/web", &[]);
        assert!(get.resource_request);
        assert_eq!(
            (get.verb.as_str(), get.api_group.as_str(), get.namespace.as_str()),
            ("get", "apps", "arcgis")
        );
        assert_eq!((get.resource.as_str(), get.name.as_str()), ("deployments", "web"));
        assert_eq!(info("GET", "/api/v1/namespaces/a/configmaps", &[]).verb, "list");
        assert_eq!(info("GET", "/api/v1/pods", &[("watch", "true")]).verb, "watch");
        assert_eq!(info("GET", "/api/v1/pods", &[("watch", "false")]).verb, "list");
        assert_eq!(info("GET", "/api/v1/pods", &[("watch", "1")]).verb, "watch");
        assert_eq!(info("POST", "/api/v1/namespaces/a/configmaps", &[]).verb, "create");
        assert_eq!(info("PUT", "/api/v1/namespaces/a/configmaps/x", &[]).verb, "update");
        assert_eq!(info("PATCH", "/api/v1/namespaces/a/configmaps/x", &[]).verb, "patch");
        assert_eq!(info("DELETE", "/api/v1/namespaces/a/configmaps/x", &[]).verb, "delete");
        assert_eq!(info("DELETE", "/api/v1/namespaces/a/configmaps", &[]).verb, "deletecollection");
    }

    #[test]
    fn subresources_namespaces_and_legacy_watch_paths() {
        let status = info("PATCH", "/apis/apps/v1/namespaces/a/deployments/web/status", &[]);
        assert_eq!(
            (status.resource.as_str(), status.subresource.as_str()),
            ("deployments", "status")
        );
        let token = info("POST", "/api/v1/namespaces/a/serviceaccounts/sa/token", &[]);
        assert_eq!(
            (
                token.verb.as_str(),
                token.resource.as_str(),
                token.subresource.as_str(),
                token.name.as_str()
            ),
            ("create", "serviceaccounts", "token", "sa")
        );
        // A namespace is its own namespace; its status is a subresource.
        let namespace = info("GET", "/api/v1/namespaces/a", &[]);
        assert_eq!(
            (namespace.resource.as_str(), namespace.name.as_str(), namespace.namespace.as_str()),
            ("namespaces", "a", "a")
        );
        let finalize = info("PUT", "/api/v1/namespaces/a/finalize", &[]);
        assert_eq!(
            (finalize.resource.as_str(), finalize.subresource.as_str()),
            ("namespaces", "finalize")
        );
        let watch = info("GET", "/api/v1/watch/namespaces/a/pods/p", &[]);
        assert_eq!((watch.verb.as_str(), watch.name.as_str()), ("watch", "p"));
        let cluster = info("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", &[]);
        assert_eq!((cluster.verb.as_str(), cluster.namespace.as_str()), ("list", ""));
    }

    #[test]
    fn a_list_selecting_one_name_carries_it() {
        let list = info(
            "GET",
            "/api/v1/namespaces/a/configmaps",
            &[("fieldSelector", "metadata.name=cfg")],
        );
        assert_eq!((list.verb.as_str(), list.name.as_str()), ("list", "cfg"));
        let watch = info(
            "GET",
            "/api/v1/namespaces/a/configmaps",
            &[("watch", "true"), ("fieldSelector", "status.phase=x,metadata.name==cfg")],
        );
        assert_eq!((watch.verb.as_str(), watch.name.as_str()), ("watch", "cfg"));
        let other = info(
            "GET",
            "/api/v1/namespaces/a/configmaps",
            &[("fieldSelector", "metadata.name!=cfg")],
        );
        assert_eq!(other.name, "");
    }

    #[test]
    fn discovery_and_other_paths_are_non_resource_requests() {
        for path in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps",
            "/apis/apps/v1",
            "/healthz",
            "/version",
            "/openapi/v3",
        ] {
            let request = info("GET", path, &[]);
            assert!(!request.resource_request, "{path}");
            assert_eq!((request.verb.as_str(), request.path.as_str()), ("get", path));
        }
        assert_eq!(info("POST", "/healthz", &[]).verb, "post");
    }

    #[test]
    fn verbs_of_raw_queries_follow_the_audit_log() {
        let cases = [
            ("GET", "/api/v1/namespaces/a/configmaps", None, "list"),
            (
                "GET",
                "/api/v1/namespaces/a/configmaps",
                Some("watch=true&resourceVersion=4"),
                "watch",
            ),
            ("GET", "/api/v1/namespaces/a/configmaps", Some("watch=1"), "watch"),
            ("GET", "/api/v1/namespaces/a/configmaps/c", None, "get"),
            ("HEAD", "/api/v1/namespaces/a/configmaps/c", None, "get"),
            ("GET", "/api/v1/namespaces/a", None, "get"),
            ("GET", "/api/v1/namespaces", None, "list"),
            ("GET", "/apis/apps/v1/deployments", Some("limit=500"), "list"),
            (
                "PATCH",
                "/apis/gisops.io/v1alpha1/namespaces/a/servicerefreshes/r/status",
                None,
                "patch",
            ),
            ("PATCH", "/apis/coordination.k8s.io/v1/namespaces/a/leases/l", None, "patch"),
            ("POST", "/apis/events.k8s.io/v1/namespaces/a/events", None, "create"),
            ("PUT", "/api/v1/namespaces/a/configmaps/c", None, "update"),
            ("DELETE", "/api/v1/namespaces/a/configmaps/c", None, "delete"),
            ("DELETE", "/api/v1/namespaces/a/configmaps", None, "deletecollection"),
            ("GET", "/version", None, "get"),
            ("POST", "/version", None, "post"),
        ];
        for (method, path, query, expected) in cases {
            assert_eq!(verb(method, path, query), expected, "{method} {path}");
        }
        let selected = parse(
            "GET",
            "/api/v1/namespaces/a/configmaps",
            Some("fieldSelector=metadata.name%3Dproxy"),
        );
        assert_eq!((selected.verb.as_str(), selected.name.as_str()), ("list", "proxy"));
    }
}
