//! The objects whose content starts a run when it changes: ConfigMaps
//! (`spec.configMapTriggers`) and Secrets (`spec.secretTriggers`), named the same way.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A ConfigMap or Secret whose content is watched; a change to it starts a new run.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectTrigger {
    /// Name of the object.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Namespace of the object. Default: the ServiceRefresh's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Keys whose values are watched. Default: every key (a ConfigMap's `data` and
    /// `binaryData`, a Secret's `data`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

/// An entry of `spec.configMapTriggers`.
pub type ConfigMapTrigger = ObjectTrigger;
/// An entry of `spec.secretTriggers`.
pub type SecretTrigger = ObjectTrigger;
