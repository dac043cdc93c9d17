//! Sizing a Deployment's ReplicaSets: the new one (created when missing,
//! following the Deployment's annotations and revision) and the old ones
//! scaled to what the rollout keeps, each with its pods and its status as
//! the ReplicaSet controller writes it.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::events::record_scaling;
use super::objects::{build_replica_set, copied_annotations};
use super::pods::ensure_pods;
use super::{
    CONTROLLER_MANAGER, DESIRED_REPLICAS_ANNOTATION, Defs, Desired, MAX_REPLICAS_ANNOTATION,
    MAX_REVISION_HISTORY_CHARS, REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION, Rollout,
    annotation, create_object, name_of, namespace_of, replica_sets, revision_of, spec_replicas,
};
use crate::controllers::owners::{is_controlled_by, is_deleting};
use crate::state::SimState;
use crate::store::StoreInner;
use crate::util::{metadata_mut, metadata_str};
use crate::write::{self, WriteOptions};

pub(super) fn ensure_new_replica_set(
    rollout: &Rollout<'_>,
    store: &mut StoreInner,
    name: &str,
    desired: Desired,
) {
    let Rollout { sim, defs, deployment, plan, workload } = *rollout;
    let max_replicas = plan.replicas + plan.max_surge;
    let rs = match store.get(&replica_sets(), namespace_of(deployment), name) {
        Some(rs) => rs,
        None => {
            let hash = name.rsplit('-').next().unwrap_or("");
            let rs = build_replica_set(
                deployment,
                hash,
                workload.revision,
                desired.replicas,
                max_replicas,
            );
            let created = match create_object(sim, store, &defs.replica_sets, rs) {
                Ok(created) => created,
                Err(error) => {
                    tracing::debug!(error = %error, replica_set = name, "creating a ReplicaSet failed");
                    return;
                }
            };
            if desired.replicas > 0 {
                record_scaling(sim, store, deployment, name, 0, desired.replicas);
            }
            Arc::new(created)
        }
    };
    let uid = metadata_str(deployment, "uid").unwrap_or("");
    if !is_controlled_by(&rs, uid) || is_deleting(&rs) {
        return;
    }
    let mut updated = (*rs).clone();
    // The new ReplicaSet follows the Deployment's annotations and revision.
    let mut annotations = copied_annotations(deployment);
    let current_revision = revision_of(&rs);
    if current_revision < workload.revision {
        annotations.insert(REVISION_ANNOTATION.into(), json!(workload.revision.to_string()));
        if current_revision > 0 {
            let history = annotation(&rs, REVISION_HISTORY_ANNOTATION).unwrap_or("");
            let mut revisions: Vec<&str> =
                history.split(',').filter(|revision| !revision.is_empty()).collect();
            let old = current_revision.to_string();
            revisions.push(&old);
            while revisions.join(",").len() > MAX_REVISION_HISTORY_CHARS && revisions.len() > 1 {
                revisions.remove(0);
            }
            annotations.insert(REVISION_HISTORY_ANNOTATION.into(), json!(revisions.join(",")));
        }
    }
    set_size(&mut updated, desired.replicas, plan.replicas, max_replicas, annotations);
    let rs = update_replica_set(sim, store, defs, deployment, &rs, updated);
    ensure_pods(sim, store, defs, &rs, desired);
}

pub(super) fn ensure_old_replica_set(
    rollout: &Rollout<'_>,
    store: &mut StoreInner,
    name: &str,
    desired: Desired,
) {
    let Rollout { sim, defs, deployment, plan, .. } = *rollout;
    let Some(rs) = store.get(&replica_sets(), namespace_of(deployment), name) else {
        return;
    };
    let uid = metadata_str(deployment, "uid").unwrap_or("");
    if !is_controlled_by(&rs, uid) || is_deleting(&rs) {
        return;
    }
    let mut updated = (*rs).clone();
    let max_replicas = plan.replicas + plan.max_surge;
    set_size(&mut updated, desired.replicas, plan.replicas, max_replicas, Map::new());
    let rs = update_replica_set(sim, store, defs, deployment, &rs, updated);
    ensure_pods(sim, store, defs, &rs, desired);
}

/// Sets a ReplicaSet's size, its replicas annotations and `annotations`.
fn set_size(
    rs: &mut Value,
    replicas: u64,
    desired_replicas: u64,
    max_replicas: u64,
    mut annotations: Map<String, Value>,
) {
    if let Some(spec) = rs.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), json!(replicas));
    }
    annotations.insert(DESIRED_REPLICAS_ANNOTATION.into(), json!(desired_replicas.to_string()));
    annotations.insert(MAX_REPLICAS_ANNOTATION.into(), json!(max_replicas.to_string()));
    if let Some(metadata) = metadata_mut(rs) {
        let current = metadata.entry("annotations").or_insert_with(|| json!({}));
        if let Some(current) = current.as_object_mut() {
            for (key, value) in annotations {
                current.insert(key, value);
            }
        }
    }
}

/// Writes a changed ReplicaSet (recording the scaling Event); returns the
/// stored state.
fn update_replica_set(
    sim: &SimState,
    store: &mut StoreInner,
    defs: &Defs,
    deployment: &Value,
    rs: &Arc<Value>,
    updated: Value,
) -> Arc<Value> {
    if updated == **rs {
        return rs.clone();
    }
    let from = spec_replicas(rs);
    let to = spec_replicas(&updated);
    match write::update(
        store,
        &defs.replica_sets,
        rs,
        updated,
        &WriteOptions::internal(CONTROLLER_MANAGER),
    ) {
        Ok(stored) => {
            if from != to {
                record_scaling(sim, store, deployment, name_of(rs), from, to);
            }
            Arc::new(stored)
        }
        Err(error) => {
            tracing::debug!(error = %error, replica_set = name_of(rs), "scaling a ReplicaSet failed");
            rs.clone()
        }
    }
}
