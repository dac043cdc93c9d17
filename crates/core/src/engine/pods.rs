//! Pending pods as the engine reads them: which workload and run a pod belongs to, and
//! whether the scheduler found no node for it (`PodScheduled=False`, reason
//! `Unschedulable`) and since when. The snapshot deserializes straight from the API
//! server's JSON and keeps nothing else, so the cache of the cluster's Pending pods stays
//! small however large their specs.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Deserializer};

use super::ObjectKey;
use super::restart_annotations::RestartAnnotationsOnly;

/// The label a Deployment's ReplicaSets and their pods carry: the suffix of the
/// ReplicaSet's name after the Deployment's.
const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// A pod as the engine reads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodSnapshot {
    /// Name, namespace, resourceVersion and creationTimestamp only.
    pub metadata: ObjectMeta,
    /// The workload the pod belongs to, by the object key the plan uses for it.
    pub workload: Option<WorkloadRef>,
    /// The pod's `gisops.io/restarted-by` annotation (copied from the template): the run
    /// whose restart created it.
    pub restarted_by: Option<String>,
    /// Set while the scheduler finds no node for the pod.
    pub unschedulable: Option<Unschedulable>,
}

/// The workload that owns a pod: its kind and its namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WorkloadRef {
    /// `Deployment`, `StatefulSet` or `DaemonSet`.
    pub kind: String,
    pub key: ObjectKey,
}

/// The scheduler's verdict on a pod no node takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unschedulable {
    /// Since when the pod has waited for a node: its creation (a pod is Pending and unbound
    /// from then on), or the condition's transition when the creation time is unknown.
    pub since: Timestamp,
    /// The scheduler's message, e.g. `0/3 nodes are available: 3 Insufficient cpu.`.
    pub message: String,
}

impl PodSnapshot {
    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(
            self.metadata.namespace.as_deref().unwrap_or_default(),
            self.metadata.name.as_deref().unwrap_or_default(),
        )
    }
}

impl<'de> Deserialize<'de> for PodSnapshot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct Wire {
            metadata: WireMeta,
            status: WireStatus,
        }
        #[derive(Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct WireMeta {
            name: Option<String>,
            namespace: Option<String>,
            resource_version: Option<String>,
            creation_timestamp: Option<Time>,
            deletion_timestamp: Option<Time>,
            labels: BTreeMap<String, String>,
            annotations: Option<RestartAnnotationsOnly>,
            owner_references: Vec<WireOwner>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct WireOwner {
            kind: String,
            name: String,
            controller: Option<bool>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct WireStatus {
            conditions: Vec<WireCondition>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct WireCondition {
            #[serde(rename = "type")]
            type_: String,
            status: String,
            reason: Option<String>,
            message: Option<String>,
            last_transition_time: Option<Time>,
        }

        let wire = Wire::deserialize(deserializer)?;
        let meta = wire.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let workload = meta
            .owner_references
            .iter()
            .find(|owner| owner.controller == Some(true))
            .and_then(|owner| workload_of(owner.kind.as_str(), &owner.name, &meta.labels))
            .map(|(kind, name)| WorkloadRef { kind, key: ObjectKey::new(&namespace, name) });
        let unschedulable = wire
            .status
            .conditions
            .into_iter()
            .find(|condition| condition.type_ == "PodScheduled")
            .filter(|condition| {
                condition.status == "False" && condition.reason.as_deref() == Some("Unschedulable")
            })
            .and_then(|condition| {
                let since = meta
                    .creation_timestamp
                    .as_ref()
                    .or(condition.last_transition_time.as_ref())
                    .map(|time| time.0)?;
                Some(Unschedulable { since, message: condition.message.unwrap_or_default() })
            });
        Ok(Self {
            metadata: ObjectMeta {
                name: meta.name,
                namespace: meta.namespace,
                resource_version: meta.resource_version,
                creation_timestamp: meta.creation_timestamp,
                deletion_timestamp: meta.deletion_timestamp,
                ..ObjectMeta::default()
            },
            workload,
            restarted_by: meta.annotations.and_then(|annotations| annotations.restarted_by),
            unschedulable,
        })
    }
}

/// The workload kind and name behind a pod's controller: a ReplicaSet's Deployment is its
/// name without the `-<pod-template-hash>` suffix; a StatefulSet or DaemonSet owns its pods.
fn workload_of(
    kind: &str,
    owner: &str,
    labels: &BTreeMap<String, String>,
) -> Option<(String, String)> {
    match kind {
        "ReplicaSet" => {
            let hash = labels.get(POD_TEMPLATE_HASH_LABEL)?;
            let name = owner.strip_suffix(hash.as_str())?.strip_suffix('-')?;
            Some(("Deployment".to_owned(), name.to_owned()))
        }
        "StatefulSet" | "DaemonSet" => Some((kind.to_owned(), owner.to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pending(conditions: serde_json::Value) -> serde_json::Value {
        json!({
            "metadata": {
                "name": "web-5d4f8c7b9-x2k4q", "namespace": "arcgis", "resourceVersion": "7",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"app": "web", "pod-template-hash": "5d4f8c7b9"},
                "annotations": {
                    "gisops.io/restarted-by": "arcgis/nightly/3-0123abcd",
                    "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z",
                    "other": "x".repeat(4096),
                },
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "web-5d4f8c7b9", "uid": "u", "controller": true}],
                "managedFields": [{"manager": "kube-controller-manager"}],
            },
            "spec": {"containers": [{"name": "web", "image": "web:1"}]},
            "status": {"phase": "Pending", "conditions": conditions},
        })
    }

    #[test]
    fn an_unschedulable_pod_names_its_deployment_run_and_the_schedulers_message() {
        let pod: PodSnapshot = serde_json::from_value(pending(json!([{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "lastTransitionTime": "2026-01-01T00:00:02Z",
            "message": "0/3 nodes are available: 3 Insufficient cpu.",
        }])))
        .expect("a pod");
        let workload = pod.workload.clone().expect("owned by a Deployment's ReplicaSet");
        assert_eq!(
            (workload.kind.as_str(), workload.key.to_string()),
            ("Deployment", "arcgis/web".to_owned())
        );
        assert_eq!(pod.restarted_by.as_deref(), Some("arcgis/nightly/3-0123abcd"));
        let blocked = pod.unschedulable.expect("unschedulable");
        assert_eq!(blocked.message, "0/3 nodes are available: 3 Insufficient cpu.");
        assert_eq!(blocked.since.to_string(), "2026-01-01T00:00:00Z", "waiting since creation");
        assert_eq!(pod.metadata.annotations, None, "nothing else is kept");
    }

    #[test]
    fn a_pod_keeps_the_metadata_its_cache_is_keyed_and_ordered_by() {
        // The operator's pod cache keys by namespace and name, resumes its watch from the
        // resource version, and must see a pod being deleted as such.
        let mut object = pending(json!([]));
        object["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:05:00Z");
        let pod: PodSnapshot = serde_json::from_value(object).expect("a pod");
        let meta = &pod.metadata;
        assert_eq!(
            (meta.namespace.as_deref(), meta.name.as_deref(), meta.resource_version.as_deref()),
            (Some("arcgis"), Some("web-5d4f8c7b9-x2k4q"), Some("7"))
        );
        let time = |stamp: &Option<Time>| stamp.as_ref().map(|time| time.0.to_string());
        assert_eq!(time(&meta.creation_timestamp).as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(time(&meta.deletion_timestamp).as_deref(), Some("2026-01-01T00:05:00Z"));
        assert_eq!((meta.labels.as_ref(), meta.owner_references.as_ref()), (None, None));
    }

    #[test]
    fn a_pod_waiting_for_other_reasons_or_bound_is_not_unschedulable() {
        for conditions in [
            json!([]),
            json!([{"type": "PodScheduled", "status": "True"}]),
            json!([{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]),
        ] {
            let pod: PodSnapshot = serde_json::from_value(pending(conditions)).expect("a pod");
            assert_eq!(pod.unschedulable, None);
        }
    }

    #[test]
    fn statefulset_and_daemonset_pods_name_their_owner_and_bare_pods_none() {
        let owned = |kind: &str| {
            let mut pod = pending(json!([]));
            pod["metadata"]["ownerReferences"][0]["kind"] = json!(kind);
            pod["metadata"]["ownerReferences"][0]["name"] = json!("db");
            serde_json::from_value::<PodSnapshot>(pod).expect("a pod").workload
        };
        assert_eq!(owned("StatefulSet").map(|w| w.kind), Some("StatefulSet".to_owned()));
        assert_eq!(owned("DaemonSet").map(|w| w.key.name), Some("db".to_owned()));
        assert_eq!(owned("Job"), None);
        let mut bare = pending(json!([]));
        bare["metadata"]["ownerReferences"] = json!([]);
        assert_eq!(serde_json::from_value::<PodSnapshot>(bare).expect("a pod").workload, None);
    }
}
