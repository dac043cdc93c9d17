//! When a run starts and which triggers it has handled: creation, `spec.trigger`, the
//! run-requested annotation and watched ConfigMap content, compared with what the last run
//! recorded at its start, so any number of changes during a run add up to one follow-up.
//! Also the cancel annotation, the baselines of newly watched ConfigMaps, and planning a run.

use std::sync::Arc;

use super::{MESSAGE_DRY_RUN, Pass, run_active};
use crate::crd::{
    BatchPhase, CANCEL_REQUESTED_AT_ANNOTATION, ConfigMapHash, Phase, RUN_REQUESTED_AT_ANNOTATION,
    RunStatus, ServiceRefresh, ServiceRefreshStatus, ServiceResult, ServiceStatus, TriggerRecord,
};
use crate::engine::conditions;
use crate::engine::observed::ConfigMapSnapshot;
use crate::engine::plan::{self, config_map_digest, is_legacy_digest, trigger_digest};
use crate::engine::spec::ValidSpec;
use crate::engine::transitions::{EventReason, EventSeverity, Transition};
use crate::engine::{ObjectKey, RunId};

/// Run reasons, as written to `status.run.reason`.
pub const REASON_CREATED: &str = "Created";
pub const REASON_TRIGGER_CHANGED: &str = "TriggerChanged";
pub const REASON_RUN_REQUESTED: &str = "RunRequested";
pub const REASON_CONFIG_MAP_CHANGED: &str = "ConfigMapChanged";

/// How a run's message names `spec.exclude` entries that match no Deployment.
pub(super) const EXCLUDE_NOTE: &str = "spec.exclude names no existing Deployment: ";

/// Characters of a trigger token quoted in messages; the token may be 1024 long.
const QUOTED_TOKEN: usize = 64;

/// Why a run is due.
pub(super) struct Trigger {
    pub reason: &'static str,
    pub message: String,
}

fn annotation<'r>(refresh: &'r ServiceRefresh, key: &str) -> Option<&'r String> {
    refresh.metadata.annotations.as_ref()?.get(key)
}

impl Pass<'_> {
    fn config_map(&self, key: &ObjectKey) -> Option<Arc<ConfigMapSnapshot>> {
        self.observation.cluster.config_map(key)
    }

    pub(super) fn missing_config_map(&self, spec: &ValidSpec) -> Option<ObjectKey> {
        spec.config_maps
            .iter()
            .find(|watched| self.config_map(&watched.key).is_none())
            .map(|watched| watched.key.clone())
    }

    fn current_digests(&self, spec: &ValidSpec) -> Vec<ConfigMapHash> {
        spec.config_maps
            .iter()
            .filter_map(|watched| {
                let config_map = self.config_map(&watched.key)?;
                Some(ConfigMapHash {
                    namespace: watched.key.namespace.clone(),
                    name: watched.key.name.clone(),
                    hash: config_map_digest(&config_map, &watched.keys),
                })
            })
            .collect()
    }

    /// A trigger ConfigMap seen for the first time only sets the baseline later changes are
    /// measured against: adding a trigger to the spec is a spec edit, and spec edits start
    /// nothing. A digest in an earlier version's format is replaced the same way (a change
    /// made while the operator was being upgraded goes unnoticed, rather than every resource
    /// running at once). Entries for ConfigMaps no longer watched are dropped.
    pub(super) fn record_config_map_baselines(
        &self,
        status: &mut ServiceRefreshStatus,
        spec: &ValidSpec,
    ) {
        let current = self.current_digests(spec);
        let recorded = &status.triggers.config_maps;
        let baselines: Vec<ConfigMapHash> = spec
            .config_maps
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
            .collect();
        if baselines != status.triggers.config_maps {
            status.triggers.config_maps = baselines;
        }
    }

    /// Keeps the `TriggerKeysMissing` condition current and announces a new set of missing
    /// keys once: a listed key that does not exist is most likely a typo, and its changes
    /// would otherwise go unnoticed until it is created.
    pub(super) fn track_missing_keys(
        &mut self,
        status: &mut ServiceRefreshStatus,
        spec: &ValidSpec,
    ) {
        let lists_keys = spec.config_maps.iter().any(|watched| !watched.keys.is_empty());
        if !lists_keys {
            conditions::apply_missing_keys(&mut status.conditions, None, 0, self.now_seconds());
            return;
        }
        let missing: Vec<String> = spec
            .config_maps
            .iter()
            .filter_map(|watched| Some((watched, self.config_map(&watched.key)?)))
            .flat_map(|(watched, config_map)| {
                plan::missing_keys(&config_map, &watched.keys)
                    .into_iter()
                    .map(|key| format!("{}[{key}]", watched.key))
                    .collect::<Vec<_>>()
            })
            .collect();
        let before = conditions::find(&status.conditions, conditions::TRIGGER_KEYS_MISSING)
            .map(|condition| condition.message.clone());
        let generation = self.observation.refresh.metadata.generation.unwrap_or(0);
        conditions::apply_missing_keys(
            &mut status.conditions,
            Some(&missing),
            generation,
            self.now_seconds(),
        );
        let after = conditions::find(&status.conditions, conditions::TRIGGER_KEYS_MISSING)
            .map(|condition| condition.message.clone());
        if !missing.is_empty() && before != after {
            self.notice(
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
        &self,
        status: &ServiceRefreshStatus,
        spec: &ValidSpec,
    ) -> Option<Trigger> {
        let refresh = self.observation.refresh;
        let recorded = &status.triggers;
        if status.run.is_none() && recorded.recorded_at.is_none() && refresh.spec.run_on_create {
            return Some(Trigger {
                reason: REASON_CREATED,
                message: "ServiceRefresh created".to_owned(),
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
                });
            }
        }
        if let Some(requested) = annotation(refresh, RUN_REQUESTED_AT_ANNOTATION)
            && recorded.run_requested_at.as_ref() != Some(requested)
        {
            found.push(Trigger {
                reason: REASON_RUN_REQUESTED,
                message: format!("annotation {RUN_REQUESTED_AT_ANNOTATION} set to {requested:?}"),
            });
        }
        for current in self.current_digests(spec) {
            let changed = recorded.config_maps.iter().any(|entry| {
                entry.namespace == current.namespace
                    && entry.name == current.name
                    && entry.hash != current.hash
            });
            if changed {
                found.push(Trigger {
                    reason: REASON_CONFIG_MAP_CHANGED,
                    message: format!("ConfigMap {}/{} changed", current.namespace, current.name),
                });
            }
        }
        let reason = found.first()?.reason;
        let message =
            found.into_iter().map(|trigger| trigger.message).collect::<Vec<_>>().join("; ");
        Some(Trigger { reason, message })
    }

    /// The trigger values a starting run (or a `runOnCreate: false` creation) handles. A
    /// removed token or annotation keeps its last value, so putting the same value back
    /// later is still no change.
    pub(super) fn current_triggers(
        &self,
        status: &ServiceRefreshStatus,
        spec: &ValidSpec,
    ) -> TriggerRecord {
        let refresh = self.observation.refresh;
        let recorded = &status.triggers;
        TriggerRecord {
            recorded_at: Some(self.now_time()),
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
            config_maps: self.current_digests(spec),
        }
    }

    /// A new value of `gisops.io/cancel-requested-at` cancels the active run; with no run
    /// active it changes nothing, and an Event says so. Each value acts once.
    pub(super) fn take_cancel_request(&mut self, status: &mut ServiceRefreshStatus) {
        let Some(value) = annotation(self.observation.refresh, CANCEL_REQUESTED_AT_ANNOTATION)
        else {
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
                self.notice(EventSeverity::Normal, EventReason::CancelRequested, message);
            }
            _ => self.notice(
                EventSeverity::Normal,
                EventReason::NoActiveRun,
                format!(
                    "Cancel request ({CANCEL_REQUESTED_AT_ANNOTATION}={value:?}) changes nothing: \
                     no run is active"
                ),
            ),
        }
    }

    /// Plans a run. Restarts wait for the next pass, which the controller runs as soon as the
    /// plan is written: their `restartedAt` is the run's persisted start, so a crash in
    /// between resumes this plan with identical patches rather than making a new one.
    pub(super) fn start_run(
        &mut self,
        status: &mut ServiceRefreshStatus,
        spec: &ValidSpec,
        trigger: Trigger,
    ) {
        let refresh = self.observation.refresh;
        let selection = plan::select(spec, self.observation.cluster);
        let services: Vec<ServiceStatus> = selection
            .deployments
            .iter()
            .map(|key| plan::planned_service(key, self.own_namespace))
            .collect();
        let number = status.run.as_ref().map_or(0, |run| run.number) + 1;
        let id = RunId::new(refresh, number).to_string();
        let dry_run = refresh.spec.dry_run;
        // The request this run serves: a run-requested-at value not handled before.
        let request = annotation(refresh, RUN_REQUESTED_AT_ANNOTATION)
            .filter(|value| status.triggers.run_requested_at.as_ref() != Some(*value))
            .cloned();
        let mut message = trigger.message.clone();
        if !selection.unmatched_excludes.is_empty() {
            let names = selection.unmatched_excludes.join(", ");
            message.push_str(&format!("; {EXCLUDE_NOTE}{names}"));
            self.notice(
                EventSeverity::Warning,
                EventReason::ExcludeUnmatched,
                format!(
                    "spec.exclude names no Deployment in namespace(s) {}: {names}",
                    spec.namespaces.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }

        status.triggers = self.current_triggers(status, spec);
        status.batches = plan::cut_batches(&services, spec.batch_size, 1);
        status.run = Some(RunStatus {
            id: id.clone(),
            number,
            reason: trigger.reason.to_owned(),
            message: Some(message),
            request,
            cancel_request: None,
            dry_run,
            start_time: Some(self.now_time()),
            end_time: None,
        });
        status.phase = Some(Phase::Running);
        self.transitions.push(Transition::RunStarted {
            run: id.clone(),
            number,
            reason: trigger.reason.to_owned(),
            trigger: trigger.message,
            services: services.len(),
            batches: status.batches.len(),
            batch_size: spec.batch_size,
            dry_run,
        });

        if dry_run {
            let now = self.now_micro();
            let own_namespace = self.own_namespace;
            for batch in &mut status.batches {
                for service in &mut batch.services {
                    service.result = Some(ServiceResult::Skipped);
                    service.message = Some(MESSAGE_DRY_RUN.to_owned());
                    self.transitions.push(Transition::ServiceFinished {
                        run: id.clone(),
                        batch: batch.index,
                        deployment: plan::service_key(service, own_namespace),
                        result: ServiceResult::Skipped,
                        message: service.message.clone(),
                    });
                }
                batch.phase = BatchPhase::Completed;
                batch.start_time = Some(now.clone());
                batch.end_time = Some(now.clone());
            }
        }
        if dry_run || services.is_empty() {
            self.end_run(status);
        } else {
            self.wake_no_later_than(self.now);
        }
    }
}
