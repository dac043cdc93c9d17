//! The lean snapshot of a Secret that `spec.secretTriggers` names: a digest per key of its
//! `data`, taken while the watch's JSON is parsed, so no Secret value is ever held, logged
//! or written anywhere (the status keeps only a digest over these digests).

use std::ops::Deref;

use serde::Deserialize;

use super::observed::ConfigMapSnapshot;

/// A Secret as the engine reads it: its identity and a digest of each `data` entry (taken
/// of the base64 text the API server sends; equal bytes have equal encodings). It parses as
/// a ConfigMap snapshot does, and is a type of its own only so the watch knows its API.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct SecretSnapshot(pub ConfigMapSnapshot);

impl Deref for SecretSnapshot {
    type Target = ConfigMapSnapshot;
    fn deref(&self) -> &ConfigMapSnapshot {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_secret_keeps_digests_not_values() {
        let planted = "c3VwZXItc2VjcmV0LXBsYW50ZWQ="; // base64 of "super-secret-planted"
        let secret: SecretSnapshot = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "tls", "namespace": "arcgis", "resourceVersion": "7",
                         "managedFields": [{"manager": "kubectl"}]},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": planted, "tls.key": "a2V5"}
        }))
        .expect("a Secret parses");
        assert_eq!(secret.metadata.name.as_deref(), Some("tls"));
        assert_eq!(secret.entries.keys().collect::<Vec<_>>(), ["tls.crt", "tls.key"]);
        let shown = format!("{secret:?}");
        assert!(!shown.contains(planted) && !shown.contains("super-secret"), "{shown}");

        let rotated: SecretSnapshot = serde_json::from_value(json!({
            "metadata": {"name": "tls", "namespace": "arcgis"},
            "data": {"tls.crt": "b3RoZXI=", "tls.key": "a2V5"}
        }))
        .expect("a Secret parses");
        assert_ne!(secret.entries["tls.crt"], rotated.entries["tls.crt"]);
        assert_eq!(secret.entries["tls.key"], rotated.entries["tls.key"]);
    }

    #[test]
    fn a_secret_without_data_has_no_entries() {
        let empty: SecretSnapshot =
            serde_json::from_value(json!({"metadata": {"name": "empty", "namespace": "arcgis"}}))
                .expect("an empty Secret parses");
        assert!(empty.entries.is_empty());
    }
}
