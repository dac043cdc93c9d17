//! The StatefulSet controller (`pkg/controller/statefulset`): revisions
//! from the pod template (`getStatefulSetRevisions`), pods `<set>-<ordinal>`
//! created in ordinal order, each waiting for its predecessors to be
//! Running and Ready (`OrderedReady`) or all at once (`Parallel`), extra
//! ordinals removed from the highest down, and a RollingUpdate that
//! replaces pods from the highest ordinal down to the partition, one at a
//! time, or `maxUnavailable` at a time when it is set; with `OnDelete` only
//! deleted pods come back at the new revision. The status as
//! `updateStatefulSet` computes it, the rolling update completed
//! (`completeRollingUpdate`) once every pod is updated and ready, and the
//! history truncated to `revisionHistoryLimit`.
//!
//! `plan` holds one sync of the real controller over the pods it sees as
//! arithmetic; `sync` repeats it until it asks for nothing more (the sim
//! deletes pods at once, so the next sync can follow at once), writing
//! the status each one would.

use std::sync::Arc;

use serde_json::{Value, json};

mod plan;

#[cfg(test)]
pub use plan::Counts;
pub use plan::{Action, SetSpec, count, plan, status};

use super::history::{self, HASH_LABEL};
use super::pods::{self, PodView, REVISION_LABEL, owned_pods};
use super::{Ctx, Kind, Outcome, record_normal, write_status};
use crate::controllers::nodes::{node_names, self_bound_node};
use crate::controllers::owners::{controller_reference, is_deleting};
use crate::controllers::replica_sets::pod_from_template;
use crate::store::StoreInner;
use crate::util::{metadata_mut, metadata_str};

/// The label naming a StatefulSet pod (its stable network identity).
const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding a pod's ordinal (`PodIndexLabel`, on since 1.28).
const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The set's pods with a valid ordinal (`<set>-<n>`), viewed at `now_ms`.
fn members(
    name: &str,
    pods: &[Arc<Value>],
    min_ready_seconds: u64,
    now_ms: u64,
) -> Vec<(u64, PodView)> {
    let prefix = format!("{name}-");
    pods.iter()
        .filter_map(|pod| {
            let ordinal = metadata_str(pod, "name")?.strip_prefix(&prefix)?;
            if ordinal.is_empty() || !ordinal.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            Some((ordinal.parse().ok()?, PodView::of(pod, min_ready_seconds, now_ms)))
        })
        .collect()
}

/// The current and update revisions and the collision count
/// (`getStatefulSetRevisions`); the update revision is created, or an
/// equal older one renumbered, as the template requires.
fn revisions(
    ctx: &mut Ctx<'_>,
    store: &mut StoreInner,
    set: &Value,
) -> Option<(Arc<Value>, Arc<Value>, i64)> {
    let owned = history::owned(store, ctx.defs, set);
    let mut collision_count =
        set.pointer("/status/collisionCount").and_then(Value::as_i64).unwrap_or(0);
    let data = history::template_patch(set);
    let next = owned.last().map_or(1, |last| history::number_of(last) + 1);
    let equal = owned.iter().rev().find(|revision| revision.get("data") == Some(&data));
    let update = match equal {
        Some(equal) if owned.last().is_some_and(|last| last.get("data") == Some(&data)) => {
            equal.clone()
        }
        Some(equal) => history::renumber(store, ctx.defs, equal, next),
        None => loop {
            let hash = history::revision_hash(&data, Some(collision_count));
            let revision =
                history::build(set, "StatefulSet", HASH_LABEL, &hash, data.clone(), next);
            match history::create(ctx.sim, store, ctx.defs, revision) {
                Ok(created) => break created,
                Err(error) if error.reason == "AlreadyExists" => {
                    let name =
                        history::revision_name(metadata_str(set, "name").unwrap_or(""), &hash);
                    let namespace = metadata_str(set, "namespace").unwrap_or("");
                    let existing = store.get(&ctx.defs.revisions.storage_gr(), namespace, &name)?;
                    if existing.get("data") == Some(&data) {
                        break existing;
                    }
                    collision_count += 1;
                }
                Err(error) => {
                    tracing::debug!(error = %error, "creating a StatefulSet revision failed");
                    return None;
                }
            }
        },
    };
    let stored_current = set.pointer("/status/currentRevision").and_then(Value::as_str);
    let current = owned
        .iter()
        .find(|revision| metadata_str(revision, "name") == stored_current)
        .cloned()
        .unwrap_or_else(|| update.clone());
    Some((current, update, collision_count))
}

/// A new pod of the set (`newStatefulSetPod`): its identity, the
/// revision's template and label, a volume per claim template.
fn new_pod(
    set: &Value,
    template: &Value,
    revision: &str,
    ordinal: u64,
    node: Option<&str>,
) -> Value {
    let set_name = metadata_str(set, "name").unwrap_or("");
    let name = format!("{set_name}-{ordinal}");
    let metadata = json!({
        "name": name,
        "generateName": format!("{set_name}-"),
        "namespace": metadata_str(set, "namespace").unwrap_or(""),
        "ownerReferences": [controller_reference(set, "apps/v1", "StatefulSet")],
    });
    let mut pod = pod_from_template(template, metadata, node);
    if let Some(metadata) = metadata_mut(&mut pod) {
        let labels = metadata.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(REVISION_LABEL.into(), json!(revision));
            labels.insert(POD_NAME_LABEL.into(), json!(name));
            labels.insert(POD_INDEX_LABEL.into(), json!(ordinal.to_string()));
        }
    }
    if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("hostname".into(), json!(name));
        if let Some(service) = set.pointer("/spec/serviceName").and_then(Value::as_str)
            && !service.is_empty()
        {
            spec.insert("subdomain".into(), json!(service));
        }
        let claims = set.pointer("/spec/volumeClaimTemplates").and_then(Value::as_array);
        let claim_names: Vec<&str> = claims
            .into_iter()
            .flatten()
            .filter_map(|claim| claim.pointer("/metadata/name").and_then(Value::as_str))
            .collect();
        if !claim_names.is_empty() {
            let mut volumes: Vec<Value> = claim_names
                .iter()
                .map(|claim| {
                    json!({"name": claim, "persistentVolumeClaim": {"claimName": format!("{claim}-{name}")}})
                })
                .collect();
            let kept = spec
                .get("volumes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|volume| !claim_names.iter().any(|claim| volume["name"] == *claim));
            volumes.extend(kept.cloned());
            spec.insert("volumes".into(), json!(volumes));
        }
    }
    pod
}

/// The component its Events come from.
const COMPONENT: &str = "statefulset-controller";

/// Syncs one StatefulSet: revisions, pods, status, history.
pub fn sync(ctx: &mut Ctx<'_>, store: &mut StoreInner, set: &Value) -> Outcome {
    let spec = SetSpec::of(set);
    let name = metadata_str(set, "name").unwrap_or("").to_string();
    let Some((current, update, collision_count)) = revisions(ctx, store, set) else {
        return Outcome::default();
    };
    let current_name = metadata_str(&current, "name").unwrap_or("").to_string();
    let update_name = metadata_str(&update, "name").unwrap_or("").to_string();
    let templates = (history::template_of(&current), history::template_of(&update));
    let current_replicas =
        set.pointer("/status/currentReplicas").and_then(Value::as_u64).unwrap_or(0);
    let deleting = is_deleting(set);
    let prefix = format!("{name}-");
    let (fail, good) = (ctx.knobs.fail, ctx.knobs.good.clone());
    let fails = move |revision: &str| fail && good.as_deref() != Some(revision);
    let generation = set.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    // Each round is one sync of the real controller: the status it writes
    // counts the pods it found, before its own creations and deletions.
    let mut rounds = 4 * (spec.replicas as usize + 4);
    let (pods, members, settled, next_start) = loop {
        let pods = owned_pods(store, ctx.defs, set, &prefix);
        let pod_fails = |pod: &Value| {
            let revision = pod.pointer(&format!("/metadata/labels/{REVISION_LABEL}"));
            fails(revision.and_then(Value::as_str).unwrap_or(""))
        };
        let next_start = pods::start_due(ctx, store, &pods, &pod_fails);
        let pods = owned_pods(store, ctx.defs, set, &prefix);
        let members = members(&name, &pods, spec.min_ready_seconds, ctx.now_ms);
        rounds = rounds.saturating_sub(1);
        let actions = if rounds == 0 {
            Vec::new()
        } else {
            plan(&spec, &members, &update_name, current_replicas, deleting)
        };
        let counts = count(&members, &current_name, &update_name);
        let replaced =
            actions.iter().filter(|action| matches!(action, Action::Replace(_))).count() as u64;
        let status = status(
            &spec,
            generation,
            counts,
            replaced,
            &current_name,
            &update_name,
            collision_count,
        );
        let settled = status.get("currentRevision") == status.get("updateRevision")
            && counts.ready == spec.replicas
            && counts.updated == spec.replicas
            && counts.replicas == spec.replicas;
        let done = actions.is_empty();
        for action in actions {
            apply(ctx, store, set, &templates, [&current_name, &update_name], &fails, action);
        }
        if !ctx.settling || done {
            write_status(ctx, store, Kind::StatefulSet, set, status);
        }
        if done {
            break (pods, members, settled, next_start);
        }
    };
    truncate_history(ctx, store, set, &spec, &pods, [&current_name, &update_name]);
    let available_at = members.iter().filter_map(|(_, view)| view.available_at).min();
    Outcome {
        next_due: [next_start, available_at].into_iter().flatten().min(),
        settled_revision: settled.then_some(update_name),
    }
}

/// Carries out one action of a sync, with its Event.
fn apply(
    ctx: &mut Ctx<'_>,
    store: &mut StoreInner,
    set: &Value,
    templates: &(Value, Value),
    [current, update]: [&str; 2],
    fails: &dyn Fn(&str) -> bool,
    action: Action,
) {
    let name = metadata_str(set, "name").unwrap_or("");
    let namespace = metadata_str(set, "namespace").unwrap_or("");
    match action {
        Action::Create { ordinal, update: at_update } => {
            let (template, revision) =
                if at_update { (&templates.1, update) } else { (&templates.0, current) };
            // Where the fleet planned it, or where the sim binds pods
            // without nodes; else unbound, for the scheduler.
            let node = ctx
                .planned_nodes
                .get(ordinal as usize)
                .cloned()
                .or_else(|| self_bound_node(ctx.sim, &node_names(store)));
            let pod = new_pod(set, template, revision, ordinal, node.as_deref());
            if let Some(pod_name) = pods::create(ctx, store, pod, fails(revision))
                && !ctx.settling
            {
                let message = format!("create Pod {pod_name} in StatefulSet {name} successful");
                record_normal(ctx.sim, store, COMPONENT, set, "SuccessfulCreate", &message);
            }
        }
        Action::Delete(pod_name) | Action::Replace(pod_name) => {
            if pods::delete(store, ctx.defs, namespace, &pod_name) && !ctx.settling {
                let message = format!("delete Pod {pod_name} in StatefulSet {name} successful");
                record_normal(ctx.sim, store, COMPONENT, set, "SuccessfulDelete", &message);
            }
        }
    }
}

/// Deletes the oldest revisions that no pod, nor the status, uses beyond
/// `revisionHistoryLimit` (`truncateHistory`).
fn truncate_history(
    ctx: &Ctx<'_>,
    store: &mut StoreInner,
    set: &Value,
    spec: &SetSpec,
    pods: &[Arc<Value>],
    live: [&str; 2],
) {
    let in_use = |name: &str| {
        live.contains(&name)
            || pods.iter().any(|pod| {
                pod.pointer(&format!("/metadata/labels/{REVISION_LABEL}")).and_then(Value::as_str)
                    == Some(name)
            })
    };
    let old: Vec<Arc<Value>> = history::owned(store, ctx.defs, set)
        .into_iter()
        .filter(|revision| !in_use(metadata_str(revision, "name").unwrap_or("")))
        .collect();
    let excess = old.len().saturating_sub(spec.history_limit);
    for revision in old.iter().take(excess) {
        history::delete(store, ctx.defs, revision);
    }
}
