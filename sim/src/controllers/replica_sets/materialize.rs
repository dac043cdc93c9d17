//! The objects of Deployments the controllers never saw roll out: a
//! generated fleet's, created settled (its ReplicaSet at revision 1 with
//! ready pods, as if the controllers had long finished), and, for a fleet
//! too large to start with them, those of the template it ran before its
//! first rollout (on the nodes its reservation held).

use std::sync::Arc;

use serde_json::{Value, json};

use super::kubelet::{PodPhase, pod_status};
use super::objects::{build_pod, build_replica_set};
use super::pods::create_pod;
use super::{
    Defs, create_object, name_of, namespace_of, pods, replica_sets, revision_of,
    set_replica_set_status, spec_replicas,
};
use crate::controllers::rollout::{pod_template_hash, surge_and_unavailable};
use crate::state::SimState;
use crate::store::{EventType, StoreInner};

/// Creates the ReplicaSet (and its ready pods) of the template `previous`
/// ran, for a Deployment whose objects were never made.
pub(super) fn materialize_previous(
    sim: &SimState,
    store: &mut StoreInner,
    defs: &Defs,
    deployment: &Value,
    previous: &Value,
    pods: u64,
) -> Option<Arc<Value>> {
    let hash = pod_template_hash(previous);
    let revision = revision_of(previous).max(1);
    let mut template_source = deployment.clone();
    if let (Some(fields), Some(template)) =
        (template_source.pointer_mut("/spec"), previous.pointer("/spec/template"))
        && let Some(fields) = fields.as_object_mut()
    {
        fields.insert("template".into(), template.clone());
    }
    // Pods of a generated fleet that held their room on the nodes run there.
    let key = (namespace_of(deployment).to_string(), name_of(deployment).to_string());
    let reserved: Vec<String> = sim
        .node_cache()
        .take_reservation(&key)
        .map(|shares| shares.into_iter().map(|(node, _)| node).collect())
        .unwrap_or_default();
    let rs = build_replica_set(&template_source, &hash, revision, pods, pods);
    let created = create_object(sim, store, &defs.replica_sets, rs).ok()?;
    set_replica_set_status(store, &defs.replica_sets, &created, pods, pods);
    let created = store.get(&replica_sets(), namespace_of(&created), name_of(&created))?;
    for index in 0..pods as usize {
        let node = reserved.get(index).map(String::as_str);
        create_pod(sim, store, defs, &created, PodPhase::Ready, node);
    }
    store.get(&replica_sets(), namespace_of(&created), name_of(&created))
}

/// Creates the objects of a Deployment that is already rolled out (the
/// generated fleet): its ReplicaSet at revision 1 with ready pods, on
/// `nodes` when given (one per replica). Their statuses are committed
/// directly, as the fleet's Deployment status is: the objects start
/// settled, as if the controllers had long finished.
pub fn materialize_settled(
    sim: &SimState,
    store: &mut StoreInner,
    defs: &Defs,
    deployment: &Value,
    nodes: Option<&[String]>,
) {
    let hash = pod_template_hash(deployment);
    let replicas = spec_replicas(deployment);
    let (max_surge, _) = surge_and_unavailable(deployment, replicas);
    let rs = build_replica_set(deployment, &hash, 1, replicas, replicas + max_surge);
    let mut rs = match create_object(sim, store, &defs.replica_sets, rs) {
        Ok(created) => created,
        Err(error) => {
            tracing::debug!(error = %error, "creating a fleet ReplicaSet failed");
            return;
        }
    };
    for index in 0..replicas as usize {
        let node = nodes.and_then(|nodes| nodes.get(index)).map(String::as_str);
        match create_object(sim, store, &defs.pods, build_pod(sim, &rs, node)) {
            Ok(mut pod) => {
                let status = pod_status(&pod, PodPhase::Ready, sim, store);
                if let Some(fields) = pod.as_object_mut() {
                    fields.insert("status".into(), status);
                }
                store.commit(&pods(), pod, EventType::Modified);
            }
            Err(error) => tracing::debug!(error = %error, "creating a fleet pod failed"),
        }
    }
    let generation = rs.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
    if let Some(fields) = rs.as_object_mut() {
        fields.insert(
            "status".into(),
            json!({
                "replicas": replicas,
                "fullyLabeledReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "observedGeneration": generation,
            }),
        );
    }
    store.commit(&replica_sets(), rs, EventType::Modified);
}
