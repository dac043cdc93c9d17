//! The Kubernetes name and key grammars a spec refers to: RFC 1123 labels and subdomains,
//! label keys and values, and ConfigMap keys. Each check returns the problem in words, and
//! the caller names the field.

fn is_alphanumeric_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// RFC 1123 label: what namespaces are.
pub fn check_dns_label(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err("must be 1 to 63 characters long".to_owned());
    }
    if !is_rfc1123_part(name) {
        return Err("is not a valid name: use lowercase letters, digits and '-', starting and ending with a letter or digit".to_owned());
    }
    Ok(())
}

/// RFC 1123 subdomain: what Deployment and ConfigMap names are.
pub fn check_dns_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("must be 1 to 253 characters long".to_owned());
    }
    if !name.split('.').all(is_rfc1123_part) {
        return Err("is not a valid name: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit".to_owned());
    }
    Ok(())
}

fn is_rfc1123_part(part: &str) -> bool {
    let starts_and_ends_well = part.chars().next().is_some_and(is_alphanumeric_lower)
        && part.chars().last().is_some_and(is_alphanumeric_lower);
    starts_and_ends_well && part.chars().all(|c| is_alphanumeric_lower(c) || c == '-')
}

pub fn check_config_map_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 253 {
        return Err("must be 1 to 253 characters long".to_owned());
    }
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(
            "is not a valid ConfigMap key: use letters, digits, '-', '_' and '.'".to_owned()
        );
    }
    Ok(())
}

/// The "name" part of a qualified name: 1 to 63 characters, alphanumeric at both ends,
/// with '-', '_' and '.' inside.
fn is_qualified_name_part(name: &str) -> bool {
    name.len() <= 63
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && check_dns_subdomain(prefix).is_err()
    {
        return Err(format!("label key {key:?} has an invalid prefix {prefix:?}"));
    }
    if !is_qualified_name_part(name) {
        return Err(format!(
            "label key {key:?} is not valid: the name part must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_qualified_name_part(value) {
        Ok(())
    } else {
        Err(format!(
            "label value {value:?} is not valid: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc_1123() {
        assert!(check_dns_label("arcgis").is_ok());
        assert!(check_dns_label("Arcgis").is_err());
        assert!(check_dns_label("-a").is_err());
        assert!(check_dns_label(&"a".repeat(63)).is_ok(), "63 characters is the limit, inclusive");
        assert!(check_dns_label(&"a".repeat(64)).is_err());
        assert!(check_dns_subdomain("a.b-c.d").is_ok());
        assert!(check_dns_subdomain("a..b").is_err());
        // Long names without dots are valid subdomains (a real API server accepts them).
        assert!(check_dns_subdomain(&"a".repeat(200)).is_ok());
        assert!(check_dns_subdomain(&"a".repeat(253)).is_ok(), "253 is the limit, inclusive");
        assert!(check_dns_subdomain(&"a".repeat(254)).is_err());
    }

    #[test]
    fn label_keys_and_values_follow_kubernetes() {
        assert!(check_label_key("app.kubernetes.io/name").is_ok());
        assert!(check_label_key("Bad_Prefix/x").is_err());
        assert!(check_label_key("bad key!").is_err());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("a_b.c-d").is_ok());
        assert!(check_label_value("-lead").is_err());
        assert!(check_config_map_key("ca.crt").is_ok());
        assert!(check_config_map_key("a b").is_err());
        // The API server's limit is 253 characters, inclusive.
        assert!(check_config_map_key(&"k".repeat(253)).is_ok());
        assert!(check_config_map_key(&"k".repeat(254)).is_err());
        assert!(check_config_map_key("").is_err());
    }
}
