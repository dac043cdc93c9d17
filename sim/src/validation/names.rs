//! Object name rules: DNS-1123 labels and subdomains, with the real
//! server's messages.

use serde_json::json;

use crate::error::Cause;
use crate::registry::ResourceDef;

/// The real server's messages for invalid names.
pub const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
pub const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// The group of the RBAC kinds, whose names are path segments.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The messages of `path.IsValidPathSegmentName`.
pub fn path_segment_messages(name: &str) -> Vec<String> {
    for illegal in [".", ".."] {
        if name == illegal {
            return vec![format!("may not be '{illegal}'")];
        }
    }
    ["/", "%"]
        .iter()
        .filter(|illegal| name.contains(**illegal))
        .map(|illegal| format!("may not contain '{illegal}'"))
        .collect()
}

/// Whether `name` is a DNS-1123 label: at most 63 lower-case
/// alphanumerics or `-`, starting and ending alphanumeric.
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    let lower_alphanumeric = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= 63
                && lower_alphanumeric(first)
                && lower_alphanumeric(last)
                && bytes.iter().all(|&byte| lower_alphanumeric(byte) || byte == b'-')
        }
        _ => false,
    }
}

/// Whether `name` is a DNS-1123 subdomain: dot-separated labels, at most
/// 253 characters.
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// Checks `metadata.name`: namespaces are DNS labels, RBAC objects path
/// segments, everything else a DNS subdomain.
pub fn validate_name(def: &ResourceDef, name: &str) -> Option<Cause> {
    let invalid = |message| Some(Cause::invalid("metadata.name", &json!(name), message));
    if def.plural == "namespaces" {
        if !is_dns_label(name) {
            return invalid(LABEL_MSG);
        }
    } else if def.group == RBAC_GROUP && !def.is_custom() {
        // RBAC names are path segments (`system:discovery`).
        return path_segment_messages(name).first().and_then(|message| invalid(message));
    } else if !is_dns_subdomain(name) {
        return invalid(SUBDOMAIN_MSG);
    }
    None
}
