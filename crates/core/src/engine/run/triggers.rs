//! When a run starts and which triggers it has handled: creation, `spec.trigger`, the
//! run-requested annotation and watched ConfigMap and Secret content, compared with what the
//! last run recorded at its start, so any number of changes during a run add up to one
//! follow-up. Also the cancel annotation, the baselines of newly watched objects, and
//! planning a run. ConfigMaps and Secrets follow the same rules; only their digests are kept.

use std::borrow::Cow;
use std::ops::Deref;
use std::sync::Arc;

use super::outputs::Outputs;
use super::{EXCLUDE_NOTE, Pass, run_active, summary};
use crate::crd::{
    CANCEL_REQUESTED_AT_ANNOTATION, ConfigMapHash, FORCE_ANNOTATION, Phase,
    RUN_REQUESTED_AT_ANNOTATION, RunStatus, ServiceRefresh, ServiceRefreshStatus, TriggerRecord,
};
use crate::engine::RunId;
use crate::engine::conditions;
use crate::engine::observed::{ConfigMapSnapshot, SecretSnapshot};
use crate::engine::plan::{
    self, Plan, PlanEntry, config_map_digest, is_legacy_digest, trigger_digest,
};
use crate::engine::spec::{TriggerSource, ValidSpec, WatchedObject};
use crate::engine::transitions::{EventReason, EventSeverity, Transition};

/// Run reasons, as written to `status.run.reason`.
pub const REASON_CREATED: &str = "Created";
pub const REASON_TRIGGER_CHANGED: &str = "TriggerChanged";
pub const REASON_RUN_REQUESTED: &str = "RunRequested";
pub const REASON_CONFIG_MAP_CHANGED: &str = "ConfigMapChanged";
pub const REASON_SECRET_CHANGED: &str = "SecretChanged";

/// Characters of a trigger token quoted in messages; the token may be 1024 long.
const QUOTED_TOKEN: usize = 64;

/// Why a run is due.
pub(super) struct Trigger {
    pub reason: &'static str,
    pub message: String,
    /// Whether a person asked for it (creation, a run request), rather than a trigger change.
    pub by_person: bool,
}

fn annotation<'r>(refresh: &'r ServiceRefresh, key: &str) -> Option<&'r String> {
    refresh.metadata.annotations.as_ref()?.get(key)
}

/// A watched object's entry digests, whichever kind it is.
enum Content {
    ConfigMap(Arc<ConfigMapSnapshot>),
    Secret(Arc<SecretSnapshot>),
}

impl Deref for Content {
    type Target = ConfigMapSnapshot;
    fn deref(&self) -> &ConfigMapSnapshot {
        match self {
            Self::ConfigMap(config_map) => config_map,
            Self::Secret(secret) => secret,
        }
    }
}

fn content(pass: &Pass, watched: &WatchedObject) -> Option<Content> {
    let cluster = pass.observation.cluster;
    match watched.source {
        TriggerSource::ConfigMap => cluster.config_map(&watched.key).map(Content::ConfigMap),
        TriggerSource::Secret => cluster.secret(&watched.key).map(Content::Secret),
    }
}

/// The first watched ConfigMap or Secret that does not exist.
pub(super) fn missing_trigger_object<'s>(
    pass: &Pass,
    spec: &'s ValidSpec,
) -> Option<&'s WatchedObject> {
    spec.trigger_objects().find(|watched| content(pass, watched).is_none())
}

fn current_digests(pass: &Pass, watched: &[WatchedObject]) -> Vec<ConfigMapHash> {
    watched
        .iter()
        .filter_map(|watched| {
            let content = content(pass, watched)?;
            Some(ConfigMapHash {
                namespace: watched.key.namespace.clone(),
                name: watched.key.name.clone(),
                hash: config_map_digest(&content, &watched.keys),
            })
        })
        .collect()
}

/// A trigger object seen for the first time only sets the baseline later changes are
/// measured against: adding a trigger to the spec is a spec edit, and spec edits start
/// nothing. A digest in an earlier version's format is replaced the same way (a change
/// made while the operator was being upgraded goes unnoticed, rather than every resource
/// running at once). Entries for objects no longer watched are dropped.
pub(super) fn record_config_map_baselines(
    pass: &Pass,
    status: &mut ServiceRefreshStatus,
    spec: &ValidSpec,
) {
    let config_maps = baselines(pass, &status.triggers.config_maps, &spec.config_maps);
    if config_maps != status.triggers.config_maps {
        status.triggers.config_maps = config_maps;
    }
    let secrets = baselines(pass, &status.triggers.secrets, &spec.secrets);
    if secrets != status.triggers.secrets {
        status.triggers.secrets = secrets;
    }
}

fn baselines(
    pass: &Pass,
    recorded: &[ConfigMapHash],
    watched: &[WatchedObject],
) -> Vec<ConfigMapHash> {
    let current = current_digests(pass, watched);
    watched
        .iter()
        .filter_map(|watched| {
            let same = |entry: &&ConfigMapHash| {
                entry.namespace == watched.key.namespace && entry.name == watched.key.name
            };
            recorded
                .iter()
                .find(same)
                .filter(|entry| !is_legacy_digest(&entry.hash))
                .or_else(|| current.iter().find(same))
                .cloned()
        })
        .collect()
}

/// Keeps the `TriggerKeysMissing` condition current and announces a new set of missing
/// keys once: a listed key that does not exist is most likely a typo, and its changes
/// would otherwise go unnoticed until it is created.
pub(super) fn track_missing_keys(
    pass: &mut Pass,
    status: &mut ServiceRefreshStatus,
    spec: &ValidSpec,
) {
    let lists_keys = spec.trigger_objects().any(|watched| !watched.keys.is_empty());
    if !lists_keys {
        conditions::apply_missing_keys(&mut status.conditions, None, 0, pass.now_seconds());
        return;
    }
    let generation = pass.observation.refresh.metadata.generation.unwrap_or(0);
    let absent = spec
        .trigger_objects()
        .find(|watched| !watched.keys.is_empty() && content(pass, watched).is_none());
    if let Some(absent) = absent {
        conditions::apply_keys_unknown(
            &mut status.conditions,
            absent.source,
            &absent.key.to_string(),
            generation,
            pass.now_seconds(),
        );
        return;
    }
    let missing: Vec<String> = spec
        .trigger_objects()
        .filter_map(|watched| Some((watched, content(pass, watched)?)))
        .flat_map(|(watched, content)| {
            plan::missing_keys(&content, &watched.keys)
                .into_iter()
                .map(|key| format!("{} {}[{key}]", watched.source.kind(), watched.key))
                .collect::<Vec<_>>()
        })
        .collect();
    let before = conditions::find(&status.conditions, conditions::TRIGGER_KEYS_MISSING)
        .map(|condition| condition.message.clone());
    conditions::apply_missing_keys(
        &mut status.conditions,
        Some(&missing),
        generation,
        pass.now_seconds(),
    );
    let after = conditions::find(&status.conditions, conditions::TRIGGER_KEYS_MISSING)
        .map(|condition| condition.message.clone());
    if !missing.is_empty() && before != after {
        pass.out.notice(
            EventSeverity::Warning,
            EventReason::TriggerKeysMissing,
            after.unwrap_or_default(),
        );
    }
}

/// Why a new run is due, comparing the triggers with the values the last run recorded at
/// its start. A trigger that was removed (no token, no annotation) is no new value and
/// starts nothing. A change of a ConfigMap trigger's `keys` changes its digest and so
/// counts as a content change.
pub(super) fn pending_trigger(
    pass: &Pass,
    status: &ServiceRefreshStatus,
    spec: &ValidSpec,
) -> Option<Trigger> {
    let refresh = pass.observation.refresh;
    let recorded = &status.triggers;
    if status.run.is_none() && recorded.recorded_at.is_none() && spec.run_on_create {
        return Some(Trigger {
            reason: REASON_CREATED,
            message: "ServiceRefresh created".to_owned(),
            by_person: true,
        });
    }
    let mut found: Vec<Trigger> = Vec::new();
    if let Some(token) = &refresh.spec.trigger {
        let handled = match (&recorded.token_digest, &recorded.token) {
            (Some(digest), _) => *digest == trigger_digest(token),
            (None, Some(legacy)) => legacy == token,
            (None, None) => false,
        };
        if !handled {
            let quoted: String = token.chars().take(QUOTED_TOKEN).collect();
            let ellipsis = if quoted.len() < token.len() { "..." } else { "" };
            found.push(Trigger {
                reason: REASON_TRIGGER_CHANGED,
                message: format!("spec.trigger changed to {quoted:?}{ellipsis}"),
                by_person: false,
            });
        }
    }
    if let Some(requested) = annotation(refresh, RUN_REQUESTED_AT_ANNOTATION)
        && recorded.run_requested_at.as_ref() != Some(requested)
    {
        found.push(Trigger {
            reason: REASON_RUN_REQUESTED,
            message: format!("annotation {RUN_REQUESTED_AT_ANNOTATION} set to {requested:?}"),
            by_person: true,
        });
    }
    if super::pacing::config_maps_settled(pass, status, spec) {
        let sources = [
            (TriggerSource::ConfigMap, &spec.config_maps, &recorded.config_maps),
            (TriggerSource::Secret, &spec.secrets, &recorded.secrets),
        ];
        for (source, watched, recorded) in sources {
            let reason = match source {
                TriggerSource::ConfigMap => REASON_CONFIG_MAP_CHANGED,
                TriggerSource::Secret => REASON_SECRET_CHANGED,
            };
            for current in current_digests(pass, watched) {
                if changed_since_recorded(recorded, &current) {
                    found.push(Trigger {
                        reason,
                        message: format!(
                            "{} {}/{} changed",
                            source.kind(),
                            current.namespace,
                            current.name
                        ),
                        by_person: false,
                    });
                }
            }
        }
    }
    let reason = found.first()?.reason;
    let by_person = found.iter().any(|trigger| trigger.by_person);
    let message = found.into_iter().map(|trigger| trigger.message).collect::<Vec<_>>().join("; ");
    Some(Trigger { reason, message, by_person })
}

fn changed_since_recorded(recorded: &[ConfigMapHash], current: &ConfigMapHash) -> bool {
    recorded.iter().any(|entry| {
        entry.namespace == current.namespace
            && entry.name == current.name
            && entry.hash != current.hash
    })
}

/// A digest of the watched ConfigMaps' and Secrets' content when it differs from what the
/// last run recorded; `None` when nothing changed.
pub(super) fn config_map_change(
    pass: &Pass,
    status: &ServiceRefreshStatus,
    spec: &ValidSpec,
) -> Option<String> {
    let config_maps = current_digests(pass, &spec.config_maps);
    let secrets = current_digests(pass, &spec.secrets);
    let changed =
        config_maps.iter().any(|entry| changed_since_recorded(&status.triggers.config_maps, entry))
            || secrets.iter().any(|entry| changed_since_recorded(&status.triggers.secrets, entry));
    if !changed {
        return None;
    }
    // ConfigMap entries as before, so a settle in progress survives an upgrade.
    let text: Vec<String> = config_maps
        .iter()
        .map(|entry| format!("{}/{}={}", entry.namespace, entry.name, entry.hash))
        .chain(
            secrets
                .iter()
                .map(|entry| format!("secret:{}/{}={}", entry.namespace, entry.name, entry.hash)),
        )
        .collect();
    Some(trigger_digest(&text.join(";")))
}

/// The trigger values a starting run (or a `runOnCreate: false` creation) handles. A
/// removed token or annotation keeps its last value, so putting the same value back
/// later is still no change.
pub(super) fn current_triggers(
    pass: &Pass,
    status: &ServiceRefreshStatus,
    spec: &ValidSpec,
) -> TriggerRecord {
    let refresh = pass.observation.refresh;
    let recorded = &status.triggers;
    TriggerRecord {
        recorded_at: Some(pass.now_time()),
        token_digest: refresh
            .spec
            .trigger
            .as_deref()
            .map(trigger_digest)
            .or_else(|| recorded.token_digest.clone())
            .or_else(|| recorded.token.as_deref().map(trigger_digest)),
        token: None,
        run_requested_at: annotation(refresh, RUN_REQUESTED_AT_ANNOTATION)
            .cloned()
            .or_else(|| recorded.run_requested_at.clone()),
        cancel_requested_at: recorded.cancel_requested_at.clone(),
        config_maps: current_digests(pass, &spec.config_maps),
        secrets: current_digests(pass, &spec.secrets),
        settling: None,
        storm: None,
    }
}

/// A new value of `gisops.io/cancel-requested-at` cancels the active run; with no run
/// active it changes nothing, and an Event says so. Each value acts once.
pub(super) fn take_cancel_request(
    out: &mut Outputs,
    refresh: &ServiceRefresh,
    status: &mut ServiceRefreshStatus,
) {
    let Some(value) = annotation(refresh, CANCEL_REQUESTED_AT_ANNOTATION) else {
        return;
    };
    if status.triggers.cancel_requested_at.as_ref() == Some(value) {
        return;
    }
    status.triggers.cancel_requested_at = Some(value.clone());
    let active = run_active(status);
    match status.run.as_mut() {
        Some(run) if active && run.cancel_request.is_none() => {
            run.cancel_request = Some(value.clone());
            let message = format!(
                "Cancel requested ({CANCEL_REQUESTED_AT_ANNOTATION}={value:?}): run {} starts \
                     no new batch; the batch in flight finishes and the rest is skipped",
                run.number
            );
            out.notice(EventSeverity::Normal, EventReason::CancelRequested, message);
        }
        _ => out.notice(
            EventSeverity::Normal,
            EventReason::NoActiveRun,
            format!(
                "Cancel request ({CANCEL_REQUESTED_AT_ANNOTATION}={value:?}) changes nothing: \
                     no run is active"
            ),
        ),
    }
}

/// Plans a run: the selected services in restart order become the plan, written to plan
/// objects before the status that refers to them. Restarts wait for the next pass, which the
/// controller runs as soon as both are written: their `restartedAt` is the run's persisted
/// start, so a crash in between resumes this plan with identical patches.
pub(super) fn start_run(
    pass: &mut Pass,
    status: &mut ServiceRefreshStatus,
    spec: &ValidSpec,
    refresh: &ServiceRefresh,
    trigger: Trigger,
) {
    let selection = plan::select(spec, pass.observation.cluster);
    let number = status.run.as_ref().map_or(0, |run| run.number) + 1;
    let id = RunId::new(refresh, number).to_string();
    let mut entries: Vec<PlanEntry> = selection
        .deployments
        .iter()
        .map(|key| {
            let workload = pass.observation.cluster.deployment(key);
            let labels = workload.as_ref().map(|workload| workload.labels());
            PlanEntry { key: key.clone(), wave: spec.wave_of(labels.as_ref()) }
        })
        .collect();
    // Waves in order, each in the selection's order; stable, so without waves nothing moves.
    entries.sort_by_key(|entry| entry.wave);
    let plan = Plan::new(id.clone(), entries);
    // The request this run serves: a run-requested-at value not handled before.
    let request = annotation(refresh, RUN_REQUESTED_AT_ANNOTATION)
        .filter(|value| status.triggers.run_requested_at.as_ref() != Some(*value))
        .cloned();
    // A force applies to the request it accompanies, never to a trigger change.
    let force = request.is_some()
        && annotation(refresh, FORCE_ANNOTATION).is_some_and(|value| value == "true");
    let mut message = trigger.message.clone();
    if !selection.unmatched_excludes.is_empty() {
        let names = selection.unmatched_excludes.join(", ");
        message.push_str(&format!("; {EXCLUDE_NOTE}{names}"));
        pass.out.notice(
            EventSeverity::Warning,
            EventReason::ExcludeUnmatched,
            format!(
                "spec.exclude names no Deployment in namespace(s) {}: {names}",
                spec.namespaces.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        );
    }

    pass.out.plan_objects = plan.objects(refresh, number);
    status.triggers = current_triggers(pass, status, spec);
    status.batches.clear();
    status.earlier_batches = None;
    status.results.clear();
    // The printer columns are the new run's from now on (BATCH keeps a total only within a run).
    status.batch = None;
    status.run = Some(RunStatus {
        id: id.clone(),
        number,
        reason: trigger.reason.to_owned(),
        message: Some(message),
        request,
        cancel_request: None,
        dry_run: spec.dry_run,
        force,
        plan: Some(plan.reference(refresh, number)),
        next_position: 0,
        batch_size: u32::try_from(spec.batch_size.get()).ok(),
        canary_size: spec.canary.as_ref().and_then(|canary| u32::try_from(canary.size.get()).ok()),
        slow_start: spec.slow_start,
        pacing: None,
        selection: Some(spec.selection_digest()),
        start_time: Some(pass.now_time()),
        end_time: None,
    });
    status.phase = Some(Phase::Running);
    pass.out.transitions.push(Transition::RunStarted {
        run: id,
        number,
        reason: trigger.reason.to_owned(),
        trigger: trigger.message,
        services: plan.len(),
        batches: summary::schedule_of(None, spec).batches_for(plan.len(), 1),
        batch_size: spec.batch_size.get(),
        dry_run: spec.dry_run,
    });

    let empty = plan.is_empty();
    pass.plan = Some(Cow::Owned(plan));
    if spec.dry_run {
        super::batches::cut_dry_run(pass, status, spec);
    }
    if spec.dry_run || empty {
        summary::end_run(pass, status);
    } else {
        pass.out.wake_no_later_than(pass.now);
    }
}
