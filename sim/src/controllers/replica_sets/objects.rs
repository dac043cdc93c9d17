//! The objects the Deployment and ReplicaSet controllers create: a
//! ReplicaSet for a pod template (hash label, selector, owner reference,
//! annotations) and a pod of a ReplicaSet, made from its template as every
//! workload controller makes its pods.

use serde_json::{Map, Value, json};

use super::{
    ANNOTATIONS_NOT_COPIED, DESIRED_REPLICAS_ANNOTATION, HASH_LABEL, MAX_REPLICAS_ANNOTATION,
    REVISION_ANNOTATION, name_of, namespace_of, spec_replicas,
};
use crate::controllers::nodes::{FIXED_NODES, self_bound_node};
use crate::controllers::owners::controller_reference;
use crate::state::SimState;
use crate::util::metadata_mut;

/// A new ReplicaSet for the Deployment's template.
pub fn build_replica_set(
    deployment: &Value,
    hash: &str,
    revision: u64,
    replicas: u64,
    max_replicas: u64,
) -> Value {
    let name = format!("{}-{hash}", name_of(deployment));
    let mut template = deployment.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    if let Some(metadata) = metadata_mut(&mut template) {
        let labels = metadata.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(HASH_LABEL.into(), json!(hash));
        }
    }
    let labels = template.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({}));
    let mut selector = deployment.pointer("/spec/selector").cloned().unwrap_or_else(|| json!({}));
    if let Some(selector) = selector.as_object_mut() {
        let match_labels = selector.entry("matchLabels").or_insert_with(|| json!({}));
        if let Some(match_labels) = match_labels.as_object_mut() {
            match_labels.insert(HASH_LABEL.into(), json!(hash));
        }
    }
    let mut annotations = copied_annotations(deployment);
    annotations.insert(REVISION_ANNOTATION.into(), json!(revision.to_string()));
    annotations
        .insert(DESIRED_REPLICAS_ANNOTATION.into(), json!(spec_replicas(deployment).to_string()));
    annotations.insert(MAX_REPLICAS_ANNOTATION.into(), json!(max_replicas.to_string()));
    let mut spec = json!({"replicas": replicas, "selector": selector, "template": template});
    if let Some(min_ready) = deployment.pointer("/spec/minReadySeconds") {
        spec["minReadySeconds"] = min_ready.clone();
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": namespace_of(deployment),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [controller_reference(deployment, "apps/v1", "Deployment")],
        },
        "spec": spec,
    })
}

/// The Deployment's annotations a ReplicaSet carries.
pub fn copied_annotations(deployment: &Value) -> Map<String, Value> {
    deployment
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .map(|annotations| {
            annotations
                .iter()
                .filter(|(key, _)| !ANNOTATIONS_NOT_COPIED.contains(&key.as_str()))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// A new pod of a ReplicaSet: bound to `node` when given; without nodes
/// (no capacity modelled), bound to one of `sim-worker-1..3` at random;
/// else unbound, for the scheduler.
pub fn build_pod(sim: &SimState, rs: &Value, node: Option<&str>) -> Value {
    let template = rs.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    let node = node.map(String::from).or_else(|| self_bound_node(sim, &FIXED_NODES));
    let metadata = json!({
        "generateName": format!("{}-", name_of(rs)),
        "namespace": namespace_of(rs),
        "ownerReferences": [controller_reference(rs, "apps/v1", "ReplicaSet")],
    });
    pod_from_template(&template, metadata, node.as_deref())
}

/// A pod made from a pod template as the API server stores it: `metadata`
/// (name, namespace, owner) with the template's labels and annotations,
/// and the template's spec bound to `node` (when given; else left for the
/// scheduler) with what admission adds (the scheduler's name, the
/// ServiceAccount, priority, the default tolerations).
pub fn pod_from_template(template: &Value, mut metadata: Value, node: Option<&str>) -> Value {
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    if let Some(fields) = spec.as_object_mut() {
        if let Some(node) = node {
            fields.insert("nodeName".into(), json!(node));
        }
        fields.entry("schedulerName").or_insert(json!("default-scheduler"));
        let account = fields
            .get("serviceAccountName")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        fields.insert("serviceAccountName".into(), json!(account));
        fields.insert("serviceAccount".into(), json!(account));
        fields.entry("enableServiceLinks").or_insert(json!(true));
        fields.entry("priority").or_insert(json!(0));
        fields.entry("preemptionPolicy").or_insert(json!("PreemptLowerPriority"));
        fields.entry("tolerations").or_insert(json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ]));
    }
    for key in ["labels", "annotations"] {
        if let Some(value) = template.pointer(&format!("/metadata/{key}")) {
            metadata[key] = value.clone();
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}
