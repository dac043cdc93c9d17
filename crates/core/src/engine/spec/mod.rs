//! Validation of a `ServiceRefreshSpec` beyond what the CRD schema can express: durations,
//! label selectors, glob patterns, object names, and the namespaces the operator lets a
//! resource reach. A spec that passes becomes a [`ValidSpec`], the parsed form planning and
//! the run state machine work from; one that fails yields a [`SpecError`] whose message names
//! the offending field so a person can fix it.

mod canary;
mod duration;
mod gate;
mod names;
mod notify;
mod patterns;
mod selector;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hasher;
use std::num::NonZeroUsize;

use fnv::FnvHasher;
use jiff::SignedDuration;

pub use canary::{MAX_SOAK, ValidCanary};
pub use duration::{
    MAX_BATCH_TIMEOUT, MAX_TRIGGER_SETTLE, MIN_BATCH_TIMEOUT, parse_batch_timeout,
    parse_trigger_settle,
};
pub use gate::ValidHealthGate;
pub use patterns::NamePattern;
pub use selector::LabelFilter;

use super::ObjectKey;
use super::pacing::windows::WindowSchedule;
use crate::crd::{
    FailurePolicy, MAX_RUNS_PER_HOUR_LIMIT, ObjectTrigger, ServiceRefreshSpec, WorkloadKind,
};
use names::{check_config_map_key, check_dns_label, check_dns_subdomain};

/// Largest batch the CRD schema allows; checked again because a schema can be bypassed
/// (an older CRD version, or a status written by hand).
pub const MAX_BATCH_SIZE: u32 = 100;

/// Where the operator lets a ServiceRefresh reach: its own namespace only, unless the operator
/// runs with `--allow-cross-namespace`; and never outside `--watch-namespace`, which the
/// operator cannot see.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperatorScope {
    pub watch_namespace: Option<String>,
    pub allow_cross_namespace: bool,
    /// The workload kinds the operator watches besides Deployments (`--workload-kinds`):
    /// a resource may list only kinds the operator can see and was granted to patch.
    pub extra_kinds: BTreeSet<WorkloadKind>,
    /// Whether the operator watches the Secrets `spec.secretTriggers` names
    /// (`--secret-triggers`): without it the operator holds no right to read them.
    pub secret_triggers: bool,
}

impl OperatorScope {
    /// Whether the operator watches workloads of `kind`.
    pub fn watches(&self, kind: WorkloadKind) -> bool {
        kind.is_deployment() || self.extra_kinds.contains(&kind)
    }
}

/// A spec the schema let through but the operator cannot act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("spec.batchTimeout {0:?} is not a duration such as 90s, 10m or 1h30m")]
    MalformedDuration(String),
    #[error("spec.batchTimeout {0:?} is too short; the minimum is 5s")]
    DurationTooShort(String),
    #[error("spec.batchTimeout {0:?} is too long; the maximum is 168h (one week)")]
    DurationTooLong(String),
    #[error("{field}: {problem}")]
    InvalidField { field: String, problem: String },
    #[error(
        "{field}: namespace {namespace:?} is not this ServiceRefresh's namespace {own:?}; \
         the operator refuses cross-namespace selection unless it runs with --allow-cross-namespace"
    )]
    CrossNamespace { field: String, namespace: String, own: String },
    #[error(
        "{field}: the operator watches only namespace {watched:?} (--watch-namespace), so it cannot \
         see anything in namespace {namespace:?}"
    )]
    NotWatched { field: String, namespace: String, watched: String },
    #[error(
        "{field}: the operator does not watch {kind}s; it must run with --workload-kinds \
         including {kind} (the chart's workloadKinds values), which also grants it the right \
         to restart them"
    )]
    KindNotWatched { field: String, kind: WorkloadKind },
    #[error(
        "spec.secretTriggers: the operator does not watch Secrets; it must run with \
         --secret-triggers (the chart's secretTriggers values), which also grants it the \
         right to read the Secrets named there"
    )]
    SecretsNotWatched,
}

impl SpecError {
    fn field(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::InvalidField { field: field.into(), problem: problem.into() }
    }

    /// The Stalled condition reason this error shows as.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::CrossNamespace { .. } => "CrossNamespaceRefused",
            Self::NotWatched { .. } => "NamespaceNotWatched",
            Self::KindNotWatched { .. } => "KindNotWatched",
            Self::SecretsNotWatched => "SecretsNotWatched",
            _ => "InvalidSpec",
        }
    }
}

/// What kind of object a trigger watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TriggerSource {
    ConfigMap,
    Secret,
}

impl TriggerSource {
    /// The kind, as messages name it.
    pub fn kind(self) -> &'static str {
        match self {
            Self::ConfigMap => "ConfigMap",
            Self::Secret => "Secret",
        }
    }

    /// The spec field listing triggers of this kind.
    pub fn field(self) -> &'static str {
        match self {
            Self::ConfigMap => "spec.configMapTriggers",
            Self::Secret => "spec.secretTriggers",
        }
    }
}

/// A ConfigMap or Secret named in `spec.configMapTriggers` or `spec.secretTriggers`, resolved
/// against the resource's namespace, with the keys to hash (empty: all of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedObject {
    pub source: TriggerSource,
    pub key: ObjectKey,
    pub keys: Vec<String>,
}

/// The ConfigMaps `spec.configMapTriggers` watches. This is the one place their namespaces
/// are resolved; two entries for the same ConfigMap merge (and "all keys" wins).
pub fn watched_config_maps(spec: &ServiceRefreshSpec, own_namespace: &str) -> Vec<WatchedObject> {
    watched_objects(TriggerSource::ConfigMap, &spec.config_map_triggers, own_namespace)
}

/// The Secrets `spec.secretTriggers` watches, resolved and merged as ConfigMaps are.
pub fn watched_secrets(spec: &ServiceRefreshSpec, own_namespace: &str) -> Vec<WatchedObject> {
    watched_objects(TriggerSource::Secret, &spec.secret_triggers, own_namespace)
}

fn watched_objects(
    source: TriggerSource,
    triggers: &[ObjectTrigger],
    own_namespace: &str,
) -> Vec<WatchedObject> {
    let mut watched: Vec<WatchedObject> = Vec::new();
    for trigger in triggers {
        let key =
            ObjectKey::new(trigger.namespace.as_deref().unwrap_or(own_namespace), &trigger.name);
        match watched.iter_mut().find(|entry| entry.key == key) {
            Some(entry) if entry.keys.is_empty() || trigger.keys.is_empty() => entry.keys.clear(),
            Some(entry) => {
                let merged: BTreeSet<String> =
                    entry.keys.iter().chain(&trigger.keys).cloned().collect();
                entry.keys = merged.into_iter().collect();
            }
            None => {
                let keys: BTreeSet<String> = trigger.keys.iter().cloned().collect();
                watched.push(WatchedObject { source, key, keys: keys.into_iter().collect() });
            }
        }
    }
    watched.sort_by(|a, b| a.key.cmp(&b.key));
    watched
}

/// A spec that passed validation, in the parsed form the engine works with. Every value is
/// checked here once; the engine trusts the typed values and clamps nothing downstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidSpec {
    pub batch_size: NonZeroUsize,
    pub batch_timeout: SignedDuration,
    /// `spec.batchTimeout` as written, for messages.
    pub batch_timeout_text: String,
    pub suspend: bool,
    pub dry_run: bool,
    pub run_on_create: bool,
    pub failure_policy: FailurePolicy,
    pub selector: LabelFilter,
    /// Empty means every name matches.
    pub name_patterns: Vec<NamePattern>,
    pub exclude: BTreeSet<String>,
    /// The namespaces workloads are selected from (the resource's own by default).
    pub namespaces: BTreeSet<String>,
    /// The workload kinds selected (Deployment by default).
    pub kinds: BTreeSet<WorkloadKind>,
    /// `spec.waves`, in order.
    pub waves: Vec<LabelFilter>,
    pub config_maps: Vec<WatchedObject>,
    pub secrets: Vec<WatchedObject>,
    /// How long trigger ConfigMaps and Secrets must stay unchanged before their change starts a run.
    pub trigger_settle: SignedDuration,
    /// How many trigger-started runs an hour may bring before the resource stalls.
    pub max_runs_per_hour: u32,
    /// The maintenance windows, when the spec has any.
    pub schedule: Option<WindowSchedule>,
    /// `spec.healthGate`, when set.
    pub health_gate: Option<ValidHealthGate>,
    /// `spec.pacing.capacityAware` (default true).
    pub capacity_aware: bool,
    /// `spec.pacing.respectDisruptionBudgets` (default true).
    pub respect_disruption_budgets: bool,
    /// `spec.pacing.canary`, when set.
    pub canary: Option<ValidCanary>,
    /// `spec.pacing.slowStart` (default false).
    pub slow_start: bool,
}

impl ValidSpec {
    /// Every watched trigger object: the ConfigMaps, then the Secrets.
    pub fn trigger_objects(&self) -> impl Iterator<Item = &WatchedObject> {
        self.config_maps.iter().chain(&self.secrets)
    }

    /// Whether a name passes `namePatterns` (when any) and is not excluded.
    pub fn name_in_scope(&self, name: &str) -> bool {
        let pattern_ok = self.name_patterns.is_empty()
            || self.name_patterns.iter().any(|pattern| pattern.matches(name));
        pattern_ok && !self.exclude.contains(name)
    }

    /// A digest of what selects the services (selector, name patterns, namespaces, kinds), recorded
    /// with a plan: a run tells a selection edited after planning from the one it planned.
    pub fn selection_digest(&self) -> String {
        let mut hasher = FnvHasher::default();
        let mut text = |text: &str| {
            hasher.write(&(text.len() as u64).to_le_bytes());
            hasher.write(text.as_bytes());
        };
        text(&self.selector.to_string());
        for pattern in &self.name_patterns {
            text(pattern.as_str());
        }
        text("|");
        for namespace in &self.namespaces {
            text(namespace);
        }
        for wave in &self.waves {
            text("wave");
            text(&wave.to_string());
        }
        if self.kinds.iter().any(|kind| !kind.is_deployment()) {
            // Only other kinds add to the digest, so a Deployment-only selection's stays.
            text("|");
            for kind in &self.kinds {
                text(kind.as_str());
            }
        }
        format!("fnv1a64-{:016x}", hasher.finish())
    }

    /// Whether a workload still belongs to the selection: in a target namespace, matched by
    /// the selector and a name pattern, and not excluded.
    pub fn selects(
        &self,
        namespace: &str,
        name: &str,
        labels: Option<&BTreeMap<String, String>>,
    ) -> bool {
        self.namespaces.contains(namespace)
            && labels.map_or_else(
                || self.selector.matches(&BTreeMap::new()),
                |labels| self.selector.matches(labels),
            )
            && self.name_in_scope(name)
    }

    /// The wave a workload with `labels` belongs to: the first whose selector matches it, or
    /// the last wave after all of them when none does. Without waves, 0.
    pub fn wave_of(&self, labels: Option<&BTreeMap<String, String>>) -> u32 {
        let empty = BTreeMap::new();
        let labels = labels.unwrap_or(&empty);
        let index = self.waves.iter().position(|wave| wave.matches(labels));
        u32::try_from(index.unwrap_or(self.waves.len())).unwrap_or(u32::MAX)
    }

    /// The selection in words, for a person wondering why it matched nothing.
    pub fn describe_selection(&self) -> String {
        let namespaces = self.namespaces.iter().cloned().collect::<Vec<_>>().join(", ");
        let mut text = format!("selector {} in namespace(s) {namespaces}", self.selector);
        if self.kinds.iter().any(|kind| !kind.is_deployment()) {
            let kinds: Vec<&str> = self.kinds.iter().map(|kind| kind.as_str()).collect();
            text.push_str(&format!(", kinds {}", kinds.join(", ")));
        }
        if !self.name_patterns.is_empty() {
            let patterns: Vec<&str> = self.name_patterns.iter().map(NamePattern::as_str).collect();
            text.push_str(&format!(", name patterns {}", patterns.join(", ")));
        }
        if !self.exclude.is_empty() {
            let excluded: Vec<&str> = self.exclude.iter().map(String::as_str).collect();
            text.push_str(&format!(", excluding {}", excluded.join(", ")));
        }
        text
    }
}

/// Checks everything about a spec the schema cannot, and parses it.
pub fn validate(
    spec: &ServiceRefreshSpec,
    own_namespace: &str,
    scope: &OperatorScope,
) -> Result<ValidSpec, SpecError> {
    let batch_size = usize::try_from(spec.batch_size)
        .ok()
        .filter(|size| *size <= MAX_BATCH_SIZE as usize)
        .and_then(NonZeroUsize::new)
        .ok_or_else(|| {
            SpecError::field(
                "spec.batchSize",
                format!("{} is outside the range 1 to {MAX_BATCH_SIZE}", spec.batch_size),
            )
        })?;
    let batch_timeout = parse_batch_timeout(&spec.batch_timeout)?;
    let selector = LabelFilter::compile(&spec.selector)?;

    let mut name_patterns = Vec::with_capacity(spec.name_patterns.len());
    for (index, pattern) in spec.name_patterns.iter().enumerate() {
        name_patterns.push(
            NamePattern::compile(pattern).map_err(|problem| {
                SpecError::field(format!("spec.namePatterns[{index}]"), problem)
            })?,
        );
    }

    for (index, name) in spec.exclude.iter().enumerate() {
        check_dns_subdomain(name).map_err(|problem| {
            SpecError::field(format!("spec.exclude[{index}]"), format!("{name:?} {problem}"))
        })?;
    }

    for (index, namespace) in spec.namespaces.iter().enumerate() {
        let field = format!("spec.namespaces[{index}]");
        check_dns_label(namespace)
            .map_err(|problem| SpecError::field(&field, format!("{namespace:?} {problem}")))?;
        check_reach(&field, namespace, own_namespace, scope)?;
    }

    check_triggers(TriggerSource::ConfigMap, &spec.config_map_triggers, own_namespace, scope)?;
    if !spec.secret_triggers.is_empty() && !scope.secret_triggers {
        return Err(SpecError::SecretsNotWatched);
    }
    check_triggers(TriggerSource::Secret, &spec.secret_triggers, own_namespace, scope)?;

    let trigger_settle = parse_trigger_settle(&spec.trigger_settle)?;
    if !(1..=MAX_RUNS_PER_HOUR_LIMIT).contains(&spec.max_runs_per_hour) {
        return Err(SpecError::field(
            "spec.maxRunsPerHour",
            format!(
                "{} is outside the range 1 to {MAX_RUNS_PER_HOUR_LIMIT}",
                spec.max_runs_per_hour
            ),
        ));
    }
    let schedule = spec
        .schedule
        .as_ref()
        .map(WindowSchedule::parse)
        .transpose()
        .map_err(|problem| SpecError::field(problem.field, problem.problem))?;
    for (index, kind) in spec.kinds.iter().enumerate() {
        if !scope.watches(*kind) {
            return Err(SpecError::KindNotWatched {
                field: format!("spec.kinds[{index}]"),
                kind: *kind,
            });
        }
    }
    let mut waves = Vec::with_capacity(spec.waves.len());
    for (index, wave) in spec.waves.iter().enumerate() {
        waves.push(LabelFilter::compile(&wave.selector).map_err(|error| {
            SpecError::field(format!("spec.waves[{index}].selector"), error.to_string())
        })?);
    }
    let kinds: BTreeSet<WorkloadKind> = if spec.kinds.is_empty() {
        BTreeSet::from([WorkloadKind::Deployment])
    } else {
        spec.kinds.iter().copied().collect()
    };

    let namespaces = if spec.namespaces.is_empty() {
        BTreeSet::from([own_namespace.to_owned()])
    } else {
        spec.namespaces.iter().cloned().collect()
    };
    if let Some(notify) = &spec.notify {
        notify::validate_notify(notify)?;
    }
    Ok(ValidSpec {
        batch_size,
        batch_timeout,
        batch_timeout_text: spec.batch_timeout.clone(),
        suspend: spec.suspend,
        dry_run: spec.dry_run,
        run_on_create: spec.run_on_create,
        failure_policy: spec.failure_policy,
        selector,
        name_patterns,
        exclude: spec.exclude.iter().cloned().collect(),
        namespaces,
        kinds,
        waves,
        config_maps: watched_config_maps(spec, own_namespace),
        secrets: watched_secrets(spec, own_namespace),
        trigger_settle,
        max_runs_per_hour: spec.max_runs_per_hour,
        schedule,
        health_gate: spec.health_gate.as_ref().map(gate::validate_gate).transpose()?,
        capacity_aware: spec.pacing.as_ref().is_none_or(|pacing| pacing.capacity_aware()),
        respect_disruption_budgets: spec
            .pacing
            .as_ref()
            .and_then(|pacing| pacing.respect_disruption_budgets)
            .unwrap_or(true),
        canary: canary::validate_canary(spec.pacing.as_ref(), batch_size)?,
        slow_start: spec.pacing.as_ref().and_then(|pacing| pacing.slow_start).unwrap_or(false),
    })
}

/// Checks the names, namespaces and keys of one kind of trigger.
fn check_triggers(
    source: TriggerSource,
    triggers: &[ObjectTrigger],
    own_namespace: &str,
    scope: &OperatorScope,
) -> Result<(), SpecError> {
    let list = source.field();
    for (index, trigger) in triggers.iter().enumerate() {
        check_dns_subdomain(&trigger.name).map_err(|problem| {
            SpecError::field(
                format!("{list}[{index}].name"),
                format!("{:?} {problem}", trigger.name),
            )
        })?;
        if let Some(namespace) = &trigger.namespace {
            let field = format!("{list}[{index}].namespace");
            check_dns_label(namespace)
                .map_err(|problem| SpecError::field(&field, format!("{namespace:?} {problem}")))?;
            check_reach(&field, namespace, own_namespace, scope)?;
        }
        for (key_index, key) in trigger.keys.iter().enumerate() {
            check_config_map_key(key).map_err(|problem| {
                SpecError::field(
                    format!("{list}[{index}].keys[{key_index}]"),
                    format!("{key:?} {problem}"),
                )
            })?;
        }
    }
    Ok(())
}

/// Whether the operator lets this resource reach `namespace`.
fn check_reach(
    field: &str,
    namespace: &str,
    own_namespace: &str,
    scope: &OperatorScope,
) -> Result<(), SpecError> {
    if let Some(watched) = &scope.watch_namespace
        && namespace != watched
    {
        return Err(SpecError::NotWatched {
            field: field.to_owned(),
            namespace: namespace.to_owned(),
            watched: watched.clone(),
        });
    }
    if namespace != own_namespace && !scope.allow_cross_namespace {
        return Err(SpecError::CrossNamespace {
            field: field.to_owned(),
            namespace: namespace.to_owned(),
            own: own_namespace.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
