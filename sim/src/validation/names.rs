//! Object name rules: DNS-1123 labels and subdomains, DNS-1035 labels,
//! with the real server's messages.

use serde_json::json;

use super::metadata::{max_len_error, subdomain_errors};
use crate::error::Cause;
use crate::registry::ResourceDef;

/// The real server's message for an invalid DNS label.
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

/// The real server's message for a Service name (a DNS-1035 label).
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// Whether `name` is a DNS-1035 label: a DNS-1123 label starting with a
/// letter.
fn is_dns1035_label(name: &str) -> bool {
    is_dns_label(name) && name.starts_with(|ch: char| ch.is_ascii_lowercase())
}

/// Checks `metadata.name`: namespaces are DNS labels, Services DNS-1035
/// labels, RBAC objects path segments, everything else a DNS subdomain.
pub fn validate_name(def: &ResourceDef, name: &str) -> Option<Cause> {
    let invalid = |message: &str| Some(Cause::invalid("metadata.name", &json!(name), message));
    if def.is("", "namespaces") || def.is("apps", "statefulsets") {
        // A StatefulSet's name becomes its pods' hostnames.
        if !is_dns_label(name) {
            return invalid(LABEL_MSG);
        }
    } else if def.is("", "services") {
        if name.len() > 63 {
            return invalid(&max_len_error(63));
        }
        if !is_dns1035_label(name) {
            return invalid(DNS1035_MSG);
        }
    } else if def.group == RBAC_GROUP && !def.is_custom() {
        // RBAC names are path segments (`system:discovery`).
        return path_segment_messages(name).first().and_then(|message| invalid(message));
    } else if let Some(message) = subdomain_errors(name).first() {
        return invalid(message);
    }
    None
}
