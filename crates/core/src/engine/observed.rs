//! What the engine sees of the cluster: lean snapshots of workloads, ConfigMaps and Secrets holding
//! only the fields a decision reads, and the [`ClusterView`] the controller's caches (or a
//! test's model cluster) answer lookups through. The snapshots deserialize straight from the
//! API server's JSON, skipping everything else, so a cache of ten thousand Deployments never
//! holds their pod specs, and a ConfigMap cache holds digests instead of content.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use fnv::FnvHasher;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::ObjectKey;
use super::disruption_budgets::{DisruptionBudgetSnapshot, PodTemplate};
use super::pod_labels::{Labels, PodLabels};
use super::pods::PodSnapshot;
use super::restart_annotations::RestartAnnotationsOnly;
use crate::crd::WorkloadKind;
use crate::crd::{RESTARTED_AT_ANNOTATION, RESTARTED_BY_ANNOTATION, RUN_RECORD_ANNOTATION_PREFIX};

/// Lookups into the cluster as last observed. Implementations must not block: the engine is
/// called inside a reconcile and treats every answer as already known.
pub trait ClusterView {
    /// The Deployment with this namespace and name, if it exists.
    fn deployment(&self, key: &ObjectKey) -> Option<Arc<DeploymentSnapshot>>;
    /// Every known Deployment; read only when a run is planned.
    fn deployments(&self) -> Vec<Arc<DeploymentSnapshot>>;
    /// The ConfigMap with this namespace and name, if it exists.
    fn config_map(&self, key: &ObjectKey) -> Option<Arc<ConfigMapSnapshot>>;
    /// The Secret with this namespace and name, if it exists and `spec.secretTriggers`
    /// names it.
    fn secret(&self, key: &ObjectKey) -> Option<Arc<SecretSnapshot>>;
    /// The Pending pods in the target namespaces; read while a run is active. A view
    /// without a pod cache sees none, so capacity never holds a run back there.
    fn pending_pods(&self) -> Vec<Arc<PodSnapshot>> {
        Vec::new()
    }
    /// The PodDisruptionBudgets in the target namespaces; read while a run is active. A
    /// view without a budget cache sees none, so no budget holds a restart there.
    fn disruption_budgets(&self) -> Vec<Arc<DisruptionBudgetSnapshot>> {
        Vec::new()
    }
}

/// A fixed cluster held in maps: what tests, benchmarks and tools hand the engine.
#[derive(Clone, Debug, Default)]
pub struct StaticCluster {
    pub deployments: BTreeMap<ObjectKey, Arc<DeploymentSnapshot>>,
    pub config_maps: BTreeMap<ObjectKey, Arc<ConfigMapSnapshot>>,
    pub secrets: BTreeMap<ObjectKey, Arc<SecretSnapshot>>,
    pub pending_pods: Vec<Arc<PodSnapshot>>,
    pub disruption_budgets: Vec<Arc<DisruptionBudgetSnapshot>>,
}

impl StaticCluster {
    pub fn with_deployments(deployments: impl IntoIterator<Item = DeploymentSnapshot>) -> Self {
        Self {
            deployments: deployments
                .into_iter()
                .map(|deployment| (deployment.key(), Arc::new(deployment)))
                .collect(),
            config_maps: BTreeMap::new(),
            secrets: BTreeMap::new(),
            pending_pods: Vec::new(),
            disruption_budgets: Vec::new(),
        }
    }
}

impl ClusterView for StaticCluster {
    fn deployment(&self, key: &ObjectKey) -> Option<Arc<DeploymentSnapshot>> {
        self.deployments.get(key).cloned()
    }
    fn deployments(&self) -> Vec<Arc<DeploymentSnapshot>> {
        self.deployments.values().cloned().collect()
    }
    fn config_map(&self, key: &ObjectKey) -> Option<Arc<ConfigMapSnapshot>> {
        self.config_maps.get(key).cloned()
    }
    fn secret(&self, key: &ObjectKey) -> Option<Arc<SecretSnapshot>> {
        self.secrets.get(key).cloned()
    }
    fn pending_pods(&self) -> Vec<Arc<PodSnapshot>> {
        self.pending_pods.clone()
    }
    fn disruption_budgets(&self) -> Vec<Arc<DisruptionBudgetSnapshot>> {
        self.disruption_budgets.clone()
    }
}

/// The metadata fields the engine and the caches need; everything else (managedFields,
/// annotations, owner references) is skipped while parsing.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LeanMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<RunRecordsOnly>,
    deletion_timestamp: Option<Time>,
}

impl From<LeanMeta> for ObjectMeta {
    fn from(meta: LeanMeta) -> Self {
        ObjectMeta {
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            resource_version: meta.resource_version,
            generation: meta.generation,
            labels: meta.labels,
            annotations: meta
                .annotations
                .map(|records| records.0)
                .filter(|records| !records.is_empty()),
            deletion_timestamp: meta.deletion_timestamp,
            ..ObjectMeta::default()
        }
    }
}

/// Metadata annotations, keeping only the run records (`gisops.io/run-…`): the rest, such as
/// kubectl's last-applied copy of the whole object, would dominate a cache's memory.
#[derive(Default)]
struct RunRecordsOnly(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for RunRecordsOnly {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keep;
        impl<'de> Visitor<'de> for Keep {
            type Value = RunRecordsOnly;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a map of annotations")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut kept = BTreeMap::new();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key.starts_with(RUN_RECORD_ANNOTATION_PREFIX) {
                        kept.insert(key.into_owned(), map.next_value::<String>()?);
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
                Ok(RunRecordsOnly(kept))
            }
        }
        deserializer.deserialize_map(Keep)
    }
}

/// A workload (Deployment, StatefulSet or DaemonSet) as the engine reads it: identity,
/// labels, whether it is paused, the run that last restarted it, and the rollout status
/// `kubectl rollout status` judges for its kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DeploymentSnapshot {
    /// Which kind of workload this is. Not read from the JSON (a list's items carry no
    /// `kind`): the watch, or whoever parsed the object, sets it.
    pub kind: WorkloadKind,
    /// Name, namespace, uid, resourceVersion, generation, run records and deletionTimestamp
    /// only; the labels are in [`Self::labels`].
    pub metadata: ObjectMeta,
    /// `metadata.labels`, in one allocation (a map of them would cost more than the rest of
    /// the snapshot; see [`Labels`]).
    pub labels: Labels,
    /// `spec.paused`.
    pub paused: bool,
    /// `spec.replicas`; `None` when absent (kubectl then skips its "updated < desired" check).
    pub replicas: Option<i32>,
    /// The pod template's `gisops.io/restarted-by` annotation: the run that restarted it last.
    pub restarted_by: Option<String>,
    /// The pod template's `kubectl.kubernetes.io/restartedAt` annotation: for a restart by
    /// this operator, the restarting run's start.
    pub restarted_at: Option<String>,
    /// `status`, if the Deployment controller has written one.
    pub rollout: Option<RolloutStatus>,
    /// A StatefulSet's or DaemonSet's `spec.updateStrategy`.
    pub update_strategy: UpdateStrategy,
    /// The pod template's labels, held against [`Self::labels`] (see [`Self::pod_labels`]):
    /// which PodDisruptionBudgets cover its pods.
    pub template_labels: PodLabels,
}

impl PodTemplate for DeploymentSnapshot {
    fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or_default()
    }
    fn pod_labels(&self) -> BTreeMap<String, String> {
        DeploymentSnapshot::pod_labels(self)
    }
}

/// A StatefulSet's or DaemonSet's `spec.updateStrategy`, as `kubectl rollout status` reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UpdateStrategy {
    /// `type`: `RollingUpdate` or `OnDelete` (the API server defaults it to `RollingUpdate`).
    pub type_: Option<String>,
    /// Whether `rollingUpdate` is present (the API server defaults it for a StatefulSet).
    pub rolling_update: bool,
    /// `rollingUpdate.partition` of a StatefulSet.
    pub partition: Option<i32>,
}

impl UpdateStrategy {
    /// `OnDelete`: a template change replaces no pod until someone deletes it.
    pub fn is_on_delete(&self) -> bool {
        self.type_.as_deref() == Some("OnDelete")
    }
}

/// The part of a Deployment's status that decides readiness.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RolloutStatus {
    pub observed_generation: Option<i64>,
    pub replicas: Option<i32>,
    pub updated_replicas: Option<i32>,
    pub available_replicas: Option<i32>,
    /// Reason of the first `Progressing` condition: kubectl reads that one only.
    pub progressing_reason: Option<String>,
    /// A StatefulSet's `readyReplicas`.
    pub ready_replicas: Option<i32>,
    /// A StatefulSet's `currentReplicas`, `currentRevision` and `updateRevision`.
    pub current_replicas: Option<i32>,
    pub current_revision: Option<String>,
    pub update_revision: Option<String>,
    /// A DaemonSet's `desiredNumberScheduled`, `updatedNumberScheduled` and
    /// `numberAvailable`.
    pub desired_number_scheduled: Option<i32>,
    pub updated_number_scheduled: Option<i32>,
    pub number_available: Option<i32>,
}

impl DeploymentSnapshot {
    /// The namespace and name; empty strings for an object without them (never stored).
    pub fn key(&self) -> ObjectKey {
        ObjectKey::workload(
            self.kind,
            self.metadata.namespace.as_deref().unwrap_or_default(),
            self.metadata.name.as_deref().unwrap_or_default(),
        )
    }

    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn generation(&self) -> i64 {
        self.metadata.generation.unwrap_or(0)
    }

    /// The workload's own labels (`metadata.labels`), as a map for selectors.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.labels.to_map()
    }

    /// Sets the workload's own labels, keeping its pod template's.
    pub fn set_labels(&mut self, labels: &BTreeMap<String, String>) {
        let pod_labels = self.pod_labels();
        self.labels = Labels::new(labels);
        self.template_labels = PodLabels::new(&self.labels, pod_labels);
    }

    /// The pod template's labels.
    pub fn pod_labels(&self) -> BTreeMap<String, String> {
        self.template_labels.resolve(&self.labels)
    }

    /// Sets the pod template's labels.
    pub fn set_pod_labels(&mut self, labels: BTreeMap<String, String>) {
        self.template_labels = PodLabels::new(&self.labels, labels);
    }

    /// The run id a resource recorded on this Deployment under `annotation`.
    pub fn run_record(&self, annotation: &str) -> Option<&str> {
        self.metadata.annotations.as_ref()?.get(annotation).map(String::as_str)
    }

    /// The snapshot of a full Deployment object, as the cache would have parsed it.
    pub fn from_deployment(deployment: &Deployment) -> Self {
        let status = deployment.status.as_ref();
        let labels = Labels::new(deployment.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()));
        Self {
            kind: WorkloadKind::Deployment,
            metadata: ObjectMeta {
                name: deployment.metadata.name.clone(),
                namespace: deployment.metadata.namespace.clone(),
                uid: deployment.metadata.uid.clone(),
                resource_version: deployment.metadata.resource_version.clone(),
                generation: deployment.metadata.generation,
                annotations: deployment
                    .metadata
                    .annotations
                    .as_ref()
                    .map(|annotations| {
                        annotations
                            .iter()
                            .filter(|(key, _)| key.starts_with(RUN_RECORD_ANNOTATION_PREFIX))
                            .map(|(key, value)| (key.clone(), value.clone()))
                            .collect::<BTreeMap<_, _>>()
                    })
                    .filter(|records| !records.is_empty()),
                deletion_timestamp: deployment.metadata.deletion_timestamp.clone(),
                ..ObjectMeta::default()
            },
            paused: deployment.spec.paused.unwrap_or(false),
            replicas: deployment.spec.replicas,
            restarted_by: template_annotation(deployment, RESTARTED_BY_ANNOTATION),
            restarted_at: template_annotation(deployment, RESTARTED_AT_ANNOTATION),
            rollout: status.map(|status| RolloutStatus {
                observed_generation: status.observed_generation,
                replicas: status.replicas,
                updated_replicas: status.updated_replicas,
                available_replicas: status.available_replicas,
                progressing_reason: status
                    .conditions
                    .iter()
                    .flatten()
                    .find(|condition| condition.type_.as_deref() == Some("Progressing"))
                    .and_then(|condition| condition.reason.clone()),
                ..RolloutStatus::default()
            }),
            update_strategy: UpdateStrategy::default(),
            labels: labels.clone(),
            template_labels: PodLabels::new(
                &labels,
                deployment
                    .spec
                    .template
                    .metadata
                    .as_ref()
                    .and_then(|meta| meta.labels.clone())
                    .unwrap_or_default(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for DeploymentSnapshot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Wire {
            metadata: LeanMeta,
            spec: Option<WireSpec>,
            status: Option<WireStatus>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        #[serde(rename_all = "camelCase")]
        struct WireSpec {
            paused: Option<bool>,
            replicas: Option<i32>,
            template: Option<WireTemplate>,
            update_strategy: Option<WireUpdateStrategy>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct WireUpdateStrategy {
            #[serde(rename = "type")]
            type_: Option<String>,
            rolling_update: Option<WireRollingUpdate>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct WireRollingUpdate {
            // A DaemonSet's maxUnavailable/maxSurge may be strings or numbers: ignored.
            partition: Option<i32>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct WireTemplate {
            metadata: Option<WireTemplateMeta>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct WireTemplateMeta {
            annotations: Option<RestartAnnotationsOnly>,
            labels: Option<BTreeMap<String, String>>,
        }
        #[derive(Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct WireStatus {
            observed_generation: Option<i64>,
            replicas: Option<i32>,
            updated_replicas: Option<i32>,
            available_replicas: Option<i32>,
            conditions: Option<FirstProgressingReason>,
            ready_replicas: Option<i32>,
            current_replicas: Option<i32>,
            current_revision: Option<String>,
            update_revision: Option<String>,
            desired_number_scheduled: Option<i32>,
            updated_number_scheduled: Option<i32>,
            number_available: Option<i32>,
        }

        let wire = Wire::deserialize(deserializer)?;
        let spec = wire.spec.unwrap_or_default();
        let template_meta = spec.template.and_then(|template| template.metadata);
        let (restart, pod_labels) = template_meta
            .map(|meta| (meta.annotations.unwrap_or_default(), meta.labels.unwrap_or_default()))
            .unwrap_or_default();
        let strategy = spec.update_strategy.unwrap_or_default();
        let mut metadata: ObjectMeta = wire.metadata.into();
        let labels = Labels::new(&metadata.labels.take().unwrap_or_default());
        let template_labels = PodLabels::new(&labels, pod_labels);
        Ok(Self {
            kind: WorkloadKind::Deployment,
            metadata,
            paused: spec.paused.unwrap_or(false),
            replicas: spec.replicas,
            restarted_by: restart.restarted_by,
            restarted_at: restart.restarted_at,
            rollout: wire.status.map(|status| RolloutStatus {
                observed_generation: status.observed_generation,
                replicas: status.replicas,
                updated_replicas: status.updated_replicas,
                available_replicas: status.available_replicas,
                progressing_reason: status.conditions.and_then(|reason| reason.0),
                ready_replicas: status.ready_replicas,
                current_replicas: status.current_replicas,
                current_revision: status.current_revision,
                update_revision: status.update_revision,
                desired_number_scheduled: status.desired_number_scheduled,
                updated_number_scheduled: status.updated_number_scheduled,
                number_available: status.number_available,
            }),
            update_strategy: UpdateStrategy {
                type_: strategy.type_,
                rolling_update: strategy.rolling_update.is_some(),
                partition: strategy.rolling_update.and_then(|rolling| rolling.partition),
            },
            labels,
            template_labels,
        })
    }
}

/// A pod-template annotation of a full Deployment object.
fn template_annotation(deployment: &Deployment, key: &str) -> Option<String> {
    deployment
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|meta| meta.annotations.as_ref())
        .and_then(|annotations| annotations.get(key))
        .cloned()
}

/// The conditions list, keeping only the reason of the first `Progressing` condition.
struct FirstProgressingReason(Option<String>);

impl<'de> Deserialize<'de> for FirstProgressingReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct WireCondition {
            #[serde(rename = "type")]
            type_: Option<String>,
            reason: Option<String>,
        }
        let conditions = Vec::<WireCondition>::deserialize(deserializer)?;
        Ok(Self(
            conditions
                .into_iter()
                .find(|condition| condition.type_.as_deref() == Some("Progressing"))
                .and_then(|condition| condition.reason),
        ))
    }
}

/// Digest of one ConfigMap entry (key and value), so a cached ConfigMap costs a few bytes per
/// key whatever its content.
pub type EntryDigest = u64;

/// A ConfigMap as the engine reads it: its identity and a digest per key of `data` and
/// `binaryData`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigMapSnapshot {
    /// Name, namespace, uid, resourceVersion and labels only.
    pub metadata: ObjectMeta,
    /// Digest of each entry, by key; `data` and `binaryData` keys never collide (the API
    /// server refuses a key in both).
    pub entries: BTreeMap<String, EntryDigest>,
}

impl ConfigMapSnapshot {
    /// The snapshot of string entries, for tests.
    #[cfg(test)]
    pub fn from_data<'a>(
        namespace: &str,
        name: &str,
        data: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        Self {
            metadata: ObjectMeta {
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            entries: data
                .into_iter()
                .map(|(key, value)| (key.to_owned(), entry_digest(b'd', key, value.as_bytes())))
                .collect(),
        }
    }
}

/// A Secret that `spec.secretTriggers` names, as the engine reads it: its identity and a
/// digest of each `data` entry (taken of the base64 text the API server sends; equal bytes
/// have equal encodings), parsed as a ConfigMap snapshot is, so no Secret value is ever held,
/// logged or written anywhere (the status keeps only a digest over these digests). A type of
/// its own only so the watch knows its API.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct SecretSnapshot(pub ConfigMapSnapshot);

impl std::ops::Deref for SecretSnapshot {
    type Target = ConfigMapSnapshot;
    fn deref(&self) -> &ConfigMapSnapshot {
        &self.0
    }
}

/// FNV-1a over a tagged, length-prefixed entry: length prefixes keep ("ab", "c") and
/// ("a", "bc") apart, and the tag keeps a `data` value apart from the same `binaryData`.
/// FNV is fixed by its definition, unlike std's hashers, so a digest never changes between
/// builds and an operator upgrade never fakes a content change.
pub fn entry_digest(tag: u8, key: &str, value: &[u8]) -> EntryDigest {
    use std::hash::Hasher;
    let mut hasher = FnvHasher::default();
    hasher.write(&[tag]);
    hasher.write(&(key.len() as u64).to_le_bytes());
    hasher.write(key.as_bytes());
    hasher.write(&(value.len() as u64).to_le_bytes());
    hasher.write(value);
    hasher.finish()
}

impl<'de> Deserialize<'de> for ConfigMapSnapshot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize, Default)]
        #[serde(default, rename_all = "camelCase")]
        struct Wire {
            metadata: LeanMeta,
            data: Option<Digests<b'd'>>,
            binary_data: Option<Digests<b'b'>>,
        }
        let wire = Wire::deserialize(deserializer)?;
        let mut entries = wire.data.map(|digests| digests.0).unwrap_or_default();
        entries.extend(wire.binary_data.map(|digests| digests.0).unwrap_or_default());
        Ok(Self { metadata: wire.metadata.into(), entries })
    }
}

/// A string map whose values are digested as they are read and never kept. `binaryData`
/// values are digested in their base64 form: equal bytes have equal encodings.
struct Digests<const TAG: u8>(BTreeMap<String, EntryDigest>);

impl<'de, const TAG: u8> Deserialize<'de> for Digests<TAG> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Digesting<const TAG: u8>;
        impl<'de, const TAG: u8> Visitor<'de> for Digesting<TAG> {
            type Value = Digests<TAG>;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut digests = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<std::borrow::Cow<'de, str>>()?;
                    let digest = entry_digest(TAG, &key, value.as_bytes());
                    digests.insert(key, digest);
                }
                Ok(Digests(digests))
            }
        }
        deserializer.deserialize_map(Digesting::<TAG>)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A view of Deployments alone, as a tool without pod or budget caches builds it.
    struct DeploymentsOnly;

    impl ClusterView for DeploymentsOnly {
        fn deployment(&self, _: &ObjectKey) -> Option<Arc<DeploymentSnapshot>> {
            None
        }
        fn deployments(&self) -> Vec<Arc<DeploymentSnapshot>> {
            Vec::new()
        }
        fn config_map(&self, _: &ObjectKey) -> Option<Arc<ConfigMapSnapshot>> {
            None
        }
        fn secret(&self, _: &ObjectKey) -> Option<Arc<SecretSnapshot>> {
            None
        }
    }

    #[test]
    fn a_view_without_pod_or_budget_caches_sees_nothing_to_wait_for() {
        assert!(DeploymentsOnly.pending_pods().is_empty(), "capacity never holds a run");
        assert!(DeploymentsOnly.disruption_budgets().is_empty(), "no budget holds a restart");
    }

    #[test]
    fn a_cached_workload_is_covered_by_its_pod_template_labels_not_its_own() {
        let workload: DeploymentSnapshot = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "arcgis",
                "labels": {"app": "web", "team": "gis"}},
            "spec": {"template": {"metadata": {"labels": {"app": "web", "role": "map"}}}},
        }))
        .expect("a Deployment");
        let expected: BTreeMap<String, String> =
            [("app", "web"), ("role", "map")].map(|(k, v)| (k.to_owned(), v.to_owned())).into();
        assert_eq!(workload.pod_labels(), expected);
        let budget = |selector: serde_json::Value| -> DisruptionBudgetSnapshot {
            serde_json::from_value(json!({
                "metadata": {"name": "pdb", "namespace": "arcgis"},
                "spec": {"selector": selector},
            }))
            .expect("a budget")
        };
        assert!(budget(json!({"matchLabels": {"role": "map"}})).covers(&workload));
        assert!(!budget(json!({"matchLabels": {"team": "gis"}})).covers(&workload));
    }

    #[test]
    fn a_deployment_parses_into_only_what_the_engine_reads() {
        let snapshot: DeploymentSnapshot = serde_json::from_value(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web", "namespace": "arcgis", "uid": "u-1", "resourceVersion": "42",
                "generation": 3, "labels": {"app": "gis"},
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{...}",
                    "gisops.io/run-0123abcd": "arcgis/r/1-0123abcd"
                },
                "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
            },
            "spec": {
                "replicas": 2, "paused": true,
                "selector": {"matchLabels": {"app": "gis"}},
                "template": {
                    "metadata": {"annotations": {
                        "gisops.io/restarted-by": "arcgis/r/1-abc",
                        "kubectl.kubernetes.io/restartedAt": "2026-11-26T18:40:02Z"
                    }},
                    "spec": {"containers": [{"name": "c", "image": "x"}]}
                }
            },
            "status": {
                "observedGeneration": 3, "replicas": 3, "updatedReplicas": 1,
                "readyReplicas": 2, "availableReplicas": 2,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
                    {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
                ]
            }
        }))
        .expect("parses");
        assert_eq!(snapshot.key(), ObjectKey::new("arcgis", "web"));
        assert_eq!(
            snapshot.metadata.annotations,
            Some(BTreeMap::from([(
                "gisops.io/run-0123abcd".to_owned(),
                "arcgis/r/1-0123abcd".to_owned()
            )])),
            "only the run records are kept"
        );
        assert_eq!(snapshot.metadata.managed_fields, None);
        assert_eq!(snapshot.labels(), BTreeMap::from([("app".to_owned(), "gis".to_owned())]));
        assert_eq!(snapshot.metadata.labels, None, "held once, in `labels`");
        assert_eq!(snapshot.generation(), 3);
        assert!(snapshot.paused);
        assert_eq!(snapshot.replicas, Some(2));
        assert_eq!(snapshot.restarted_by.as_deref(), Some("arcgis/r/1-abc"));
        assert_eq!(snapshot.restarted_at.as_deref(), Some("2026-11-26T18:40:02Z"));
        let rollout = snapshot.rollout.expect("status");
        assert_eq!(rollout.updated_replicas, Some(1));
        assert_eq!(rollout.progressing_reason.as_deref(), Some("ReplicaSetUpdated"));
    }

    #[test]
    fn malformed_objects_are_refused_saying_what_was_expected() {
        // A watch that cannot parse an object logs the error; it must say what was wrong.
        let deployment = |object: serde_json::Value| {
            serde_json::from_value::<DeploymentSnapshot>(object).expect_err("malformed").to_string()
        };
        let error = deployment(json!({
            "metadata": {"name": "web", "namespace": "arcgis", "annotations": "not a map"},
            "spec": {"selector": {}, "template": {}}
        }));
        assert!(error.contains("expected a map of annotations"), "{error}");
        let error = deployment(json!({
            "metadata": {"name": "web", "namespace": "arcgis"},
            "spec": {"selector": {}, "template": {"metadata": {"annotations": ["a list"]}}}
        }));
        assert!(error.contains("expected a map of annotations"), "{error}");
        let error = serde_json::from_value::<ConfigMapSnapshot>(json!({
            "metadata": {"name": "proxy", "namespace": "arcgis"},
            "data": "not a map"
        }))
        .expect_err("data must be a map")
        .to_string();
        assert!(error.contains("expected a map of strings"), "{error}");
    }

    #[test]
    fn a_static_cluster_finds_its_deployments_by_namespace_and_name() {
        let deployment = |namespace: &str, name: &str| -> DeploymentSnapshot {
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"selector": {}, "template": {}}
            }))
            .expect("deployment")
        };
        let cluster =
            StaticCluster::with_deployments([deployment("arcgis", "a"), deployment("other", "a")]);
        assert_eq!(cluster.deployments().len(), 2);
        let found = cluster.deployment(&ObjectKey::new("other", "a")).expect("found");
        assert_eq!(found.metadata.namespace.as_deref(), Some("other"));
        assert!(cluster.deployment(&ObjectKey::new("arcgis", "b")).is_none());
    }

    #[test]
    fn parsing_and_converting_a_deployment_agree() {
        // The watch cache parses; the patch memo converts a patch response. Both must see the
        // same Deployment, or a memo entry would look like a different object.
        let agree = |full: &Deployment| {
            let parsed: DeploymentSnapshot =
                serde_json::from_value(serde_json::to_value(full).expect("json")).expect("parses");
            assert_eq!(parsed, DeploymentSnapshot::from_deployment(full));
            parsed
        };
        let full: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "arcgis", "generation": 2},
            "spec": {
                "selector": {},
                "template": {"metadata": {"annotations": {"gisops.io/restarted-by": "x/y/1-z"}}}
            },
            "status": {
                "observedGeneration": 2, "replicas": 3, "updatedReplicas": 2,
                "availableReplicas": 1,
                "conditions": [
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
                ]
            }
        }))
        .expect("deployment");
        let parsed = agree(&full);
        assert_eq!(parsed.replicas, None);
        let rollout = parsed.rollout.expect("status");
        assert_eq!(
            (rollout.replicas, rollout.updated_replicas, rollout.available_replicas),
            (Some(3), Some(2), Some(1)),
            "kubectl's rollout message reads all three"
        );

        let full: Deployment = serde_json::from_value(json!({
            "metadata": {
                "name": "web", "namespace": "arcgis", "uid": "u-1", "resourceVersion": "7",
                "generation": 3, "labels": {"app": "gis"},
                "deletionTimestamp": "2026-11-26T18:00:00Z",
                "annotations": {"gisops.io/run-0123": "x/y/1-z", "owner": "team-a"}
            },
            "spec": {"selector": {}, "template": {}, "replicas": 2, "paused": true}
        }))
        .expect("deployment");
        let parsed = agree(&full);
        assert_eq!(parsed.metadata.uid.as_deref(), Some("u-1"));
        assert_eq!(parsed.run_record("gisops.io/run-0123"), Some("x/y/1-z"));
        assert_eq!(parsed.metadata.annotations.as_ref().map(BTreeMap::len), Some(1));
        assert!(parsed.paused);

        let unrelated_only: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "arcgis", "annotations": {"owner": "team-a"}},
            "spec": {"selector": {}, "template": {}}
        }))
        .expect("deployment");
        assert_eq!(agree(&unrelated_only).metadata.annotations, None);
    }

    #[test]
    fn a_config_map_keeps_digests_not_content() {
        let snapshot: ConfigMapSnapshot = serde_json::from_value(json!({
            "metadata": {"name": "proxy", "namespace": "arcgis"},
            "data": {"proxy": "http://p:3128", "noProxy": "svc"},
            "binaryData": {"cert": "AAE="}
        }))
        .expect("parses");
        assert_eq!(
            snapshot.entries.keys().map(String::as_str).collect::<Vec<_>>(),
            ["cert", "noProxy", "proxy"]
        );
        assert_eq!(snapshot.entries["proxy"], entry_digest(b'd', "proxy", b"http://p:3128"));
        assert_ne!(entry_digest(b'd', "ab", b"c"), entry_digest(b'd', "a", b"bc"));
        assert_ne!(entry_digest(b'd', "k", b"v"), entry_digest(b'b', "k", b"v"));
        // Pinned: a different value after an upgrade would start a run on every resource.
        assert_eq!(entry_digest(b'd', "a", b"b"), 0x4cf3_09c7_eb48_439e);
    }

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
