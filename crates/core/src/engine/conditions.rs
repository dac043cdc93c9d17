//! The kstatus conditions `Ready`, `Reconciling` and `Stalled`, derived from what the run is
//! doing. Flux, Argo CD and `kubectl wait` read these, so their reasons are stable words and
//! their messages change only at real transitions; `lastTransitionTime` moves only when a
//! condition's status flips, as the Kubernetes API conventions require.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::ObjectKey;
use super::spec::TriggerSource;

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// Condition type naming trigger ConfigMap keys that do not exist; present only for resources
/// whose `configMapTriggers` list keys.
pub const TRIGGER_KEYS_MISSING: &str = "TriggerKeysMissing";

/// Condition type warning that `spec.batchTimeout` is shorter than the rollouts: present
/// while the current (or last) run has rollouts that were still progressing at the timeout.
pub const BATCH_TIMEOUT_SHORT: &str = "BatchTimeoutShort";

/// Reason of the Stalled condition while a restart storm stops trigger-started runs.
pub const RESTART_STORM: &str = "RestartStorm";

/// A resource holding a cluster-wide run slot, named in a queued resource's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotHolder {
    pub key: ObjectKey,
    pub suspended: bool,
}

/// What the resource is doing, as far as the conditions are concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Situation {
    /// A run is due but waits for a cluster-wide run slot; `trigger` is why it is due and
    /// `holders` are the resources whose runs hold the slots.
    Queued { trigger: String, holders: Vec<SlotHolder> },
    /// A batch is being restarted or the next one is about to start. `follow_up` names the
    /// trigger that arrived during the run and will start the next one after it.
    Running { batch: usize, batches: usize, follow_up: Option<String>, cancelling: bool },
    /// Something other than the run's own rollouts holds it back (`status.waiting`):
    /// `reason` is a [`crate::engine::WaitReason`] word.
    Waiting { reason: String, message: String },
    /// `spec.suspend` holds the run before batch `batch`.
    Suspended { batch: usize, batches: usize },
    /// The last run ended with no failures; `message` is its summary.
    Succeeded { message: String },
    /// The last run ended with failures; `message` lists them.
    RunFailed { message: String },
    /// The last run failed because a canary failed or turned unready during its soak.
    CanaryFailed { message: String },
    /// The last run planned nothing: the selection matched no Deployment.
    NothingSelected { message: String },
    /// The last run was cancelled.
    Cancelled { message: String },
    /// The spec cannot be acted on: unusable (`InvalidSpec`), or reaching a namespace the
    /// operator refuses (`CrossNamespaceRefused`) or cannot see (`NamespaceNotWatched`).
    UnusableSpec { reason: &'static str, message: String },
    /// A trigger ConfigMap is missing, so its changes cannot be tracked.
    ConfigMapNotFound { config_map: ObjectKey },
    /// A trigger Secret is missing (or not readable), so its changes cannot be tracked.
    SecretNotFound { secret: ObjectKey },
    /// No run yet, by `runOnCreate: false`: the first trigger change starts one.
    AwaitingTrigger,
    /// Trigger changes started more runs within an hour than `spec.maxRunsPerHour` allows;
    /// trigger-started runs stop until a person requests a run.
    RestartStorm { message: String },
    /// The API server forbids a write the run needs (403): a missing RBAC grant, named in
    /// `message`. The run holds and resumes once a retry goes through.
    Forbidden { message: String },
}

struct Wanted {
    reason: &'static str,
    message: String,
    ready: bool,
    reconciling: bool,
    stalled: bool,
}

impl Situation {
    fn wanted(&self) -> Wanted {
        let (reason, message, ready, reconciling, stalled) = match self {
            Self::Queued { trigger, holders } => {
                let held_by: Vec<String> = holders
                    .iter()
                    .map(|holder| {
                        let suspended = if holder.suspended { " (suspended)" } else { "" };
                        format!("{}{suspended}", holder.key)
                    })
                    .collect();
                let mut message = format!(
                    "a run ({trigger}) is waiting for a free run slot; runs are serialized cluster-wide"
                );
                if !held_by.is_empty() {
                    message.push_str(&format!("; slots held by {}", held_by.join(", ")));
                }
                ("Queued", message, false, true, false)
            }
            Self::Running { batch, batches, follow_up, cancelling } => {
                let mut message = format!("batch {batch} of {batches}");
                if *cancelling {
                    message.push_str(
                        "; cancel requested: the batch in flight finishes, then the run ends",
                    );
                }
                if let Some(trigger) = follow_up {
                    message.push_str(&format!(
                        "; a follow-up run ({trigger}) starts when this run ends"
                    ));
                }
                ("Running", message, false, true, false)
            }
            Self::Waiting { reason, message } => {
                let reason = crate::engine::WaitReason::parse(reason)
                    .map_or("Waiting", crate::engine::WaitReason::as_str);
                (reason, message.clone(), false, true, false)
            }
            Self::Suspended { batch, batches } => (
                "Suspended",
                format!("suspended by spec.suspend before batch {batch} of {batches}"),
                false,
                true,
                false,
            ),
            Self::Succeeded { message } => ("Succeeded", message.clone(), true, false, false),
            Self::RunFailed { message } => ("RunFailed", message.clone(), false, false, true),
            Self::CanaryFailed { message } => ("CanaryFailed", message.clone(), false, false, true),
            Self::NothingSelected { message } => {
                ("NothingSelected", message.clone(), false, false, true)
            }
            Self::Cancelled { message } => ("RunCancelled", message.clone(), false, false, true),
            Self::UnusableSpec { reason, message } => {
                (*reason, message.clone(), false, false, true)
            }
            Self::ConfigMapNotFound { config_map } => (
                "ConfigMapNotFound",
                format!(
                    "ConfigMap {config_map} does not exist; create it or remove it from spec.configMapTriggers"
                ),
                false,
                false,
                true,
            ),
            Self::SecretNotFound { secret } => (
                "SecretNotFound",
                format!(
                    "Secret {secret} does not exist; create it or remove it from spec.secretTriggers"
                ),
                false,
                false,
                true,
            ),
            Self::RestartStorm { message } => (RESTART_STORM, message.clone(), false, false, true),
            Self::Forbidden { message } => {
                (super::forbidden::FORBIDDEN, message.clone(), false, false, true)
            }
            Self::AwaitingTrigger => (
                "AwaitingTrigger",
                "runOnCreate is false: no run yet; a change to a trigger starts the first one"
                    .to_owned(),
                true,
                false,
                false,
            ),
        };
        Wanted { reason, message, ready, reconciling, stalled }
    }
}

/// Sets `Ready`, `Reconciling` and `Stalled` for `situation`, keeping any other condition
/// types untouched and in place. Each condition keeps its `lastTransitionTime` unless its
/// status flips.
pub fn apply(
    conditions: &mut Vec<Condition>,
    situation: &Situation,
    generation: i64,
    now: Timestamp,
) {
    let wanted = situation.wanted();
    for (type_, value) in
        [(READY, wanted.ready), (RECONCILING, wanted.reconciling), (STALLED, wanted.stalled)]
    {
        set(conditions, type_, value, wanted.reason, &wanted.message, generation, now);
    }
}

fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    value: bool,
    reason: &str,
    message: &str,
    generation: i64,
    now: Timestamp,
) {
    let status = if value { "True" } else { "False" };
    set_status(conditions, type_, status, reason, message, generation, now);
}

fn set_status(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: i64,
    now: Timestamp,
) {
    let existing = conditions.iter_mut().find(|condition| condition.type_ == type_);
    let last_transition_time = match &existing {
        Some(condition) if condition.status == status => condition.last_transition_time.clone(),
        _ => Time(now),
    };
    let condition = Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: Some(generation),
        last_transition_time,
    };
    match existing {
        Some(slot) => *slot = condition,
        None => conditions.push(condition),
    }
}

/// Sets or clears the `TriggerKeysMissing` condition: `missing` lists `Kind namespace/name[key]`
/// entries; `None` removes the condition (no trigger lists keys).
pub fn apply_missing_keys(
    conditions: &mut Vec<Condition>,
    missing: Option<&[String]>,
    generation: i64,
    now: Timestamp,
) {
    let Some(missing) = missing else {
        conditions.retain(|condition| condition.type_ != TRIGGER_KEYS_MISSING);
        return;
    };
    let (value, reason, message) = if missing.is_empty() {
        (false, "KeysFound", "every key the triggers list exists".to_owned())
    } else {
        (
            true,
            "KeysMissing",
            format!(
                "the triggers list keys that do not exist: {}; a key added later counts as a change",
                missing.join(", ")
            ),
        )
    };
    set(conditions, TRIGGER_KEYS_MISSING, value, reason, &message, generation, now);
}

/// Sets `TriggerKeysMissing` to Unknown while a ConfigMap or Secret whose keys it checks does
/// not exist: its keys can be neither found nor missing, and saying either would contradict
/// the `ConfigMapNotFound` or `SecretNotFound` stall.
pub fn apply_keys_unknown(
    conditions: &mut Vec<Condition>,
    source: TriggerSource,
    object: &str,
    generation: i64,
    now: Timestamp,
) {
    let kind = source.kind();
    let message = format!("cannot check the listed keys: {kind} {object} does not exist");
    let reason = match source {
        TriggerSource::ConfigMap => "ConfigMapNotFound",
        TriggerSource::Secret => "SecretNotFound",
    };
    set_status(conditions, TRIGGER_KEYS_MISSING, "Unknown", reason, &message, generation, now);
}

/// Sets or clears the `BatchTimeoutShort` warning: `cut_short` rollouts of the run were still
/// progressing when `spec.batchTimeout` (`timeout`, as written) ran out, so the timeout is
/// below the slowest rollout seen and records rollouts that go well as TimedOut.
pub fn apply_batch_timeout_warning(
    conditions: &mut Vec<Condition>,
    cut_short: u32,
    timeout: &str,
    generation: i64,
    now: Timestamp,
) {
    if cut_short == 0 {
        conditions.retain(|condition| condition.type_ != BATCH_TIMEOUT_SHORT);
        return;
    }
    let rollouts = if cut_short == 1 { "rollout was" } else { "rollouts were" };
    let message = format!(
        "{cut_short} {rollouts} still progressing when spec.batchTimeout {timeout} ran out and \
         recorded TimedOut; the slowest rollout takes longer than that: raise spec.batchTimeout"
    );
    set(conditions, BATCH_TIMEOUT_SHORT, true, "RolloutsOutlastTimeout", &message, generation, now);
}

/// Reason of the Stalled condition when the API server refuses the status itself.
pub const STATUS_WRITE_REFUSED: &str = "StatusWriteRefused";

/// `status` marked Stalled because the API server refused to store the status the engine
/// decided (too large, or invalid): the one write that may still go through, since it adds
/// a condition to a status the server stored before. The next accepted write replaces it.
pub fn with_status_write_refused(
    status: Option<&crate::crd::ServiceRefreshStatus>,
    why: &str,
    generation: i64,
    now: Timestamp,
) -> crate::crd::ServiceRefreshStatus {
    let mut marked = status.cloned().unwrap_or_default();
    let message = format!(
        "the API server refused to store the status ({why}); nothing more is restarted until a \
         status can be written"
    );
    set(&mut marked.conditions, STALLED, true, STATUS_WRITE_REFUSED, &message, generation, now);
    set(&mut marked.conditions, READY, false, STATUS_WRITE_REFUSED, &message, generation, now);
    set(
        &mut marked.conditions,
        RECONCILING,
        false,
        STATUS_WRITE_REFUSED,
        &message,
        generation,
        now,
    );
    marked
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|condition| condition.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_status_keeps_everything_stored_and_says_why_it_stalled() {
        let stored = crate::crd::ServiceRefreshStatus {
            phase: Some(crate::crd::Phase::Running),
            ..Default::default()
        };
        let marked =
            with_status_write_refused(Some(&stored), "etcdserver: request is too large", 3, at(10));
        assert_eq!(marked.phase, stored.phase, "nothing stored is lost");
        let stalled = find(&marked.conditions, STALLED).expect("Stalled");
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", STATUS_WRITE_REFUSED)
        );
        assert!(stalled.message.contains("etcdserver: request is too large"));
        assert_eq!(find(&marked.conditions, READY).map(|c| c.status.as_str()), Some("False"));
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("in range")
    }

    fn summary(conditions: &[Condition]) -> Vec<(String, String, String)> {
        conditions.iter().map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone())).collect()
    }

    fn triple(
        ready: &str,
        reconciling: &str,
        stalled: &str,
        reason: &str,
    ) -> Vec<(String, String, String)> {
        [(READY, ready), (RECONCILING, reconciling), (STALLED, stalled)]
            .iter()
            .map(|(t, s)| ((*t).to_owned(), (*s).to_owned(), reason.to_owned()))
            .collect()
    }

    #[test]
    fn each_situation_maps_to_kstatus() {
        let cases = [
            (
                Situation::Queued { trigger: "Created".into(), holders: vec![] },
                triple("False", "True", "False", "Queued"),
            ),
            (
                Situation::Running { batch: 3, batches: 14, follow_up: None, cancelling: false },
                triple("False", "True", "False", "Running"),
            ),
            (
                Situation::Suspended { batch: 2, batches: 3 },
                triple("False", "True", "False", "Suspended"),
            ),
            (
                Situation::Succeeded { message: "done".into() },
                triple("True", "False", "False", "Succeeded"),
            ),
            (
                Situation::RunFailed { message: "x".into() },
                triple("False", "False", "True", "RunFailed"),
            ),
            (
                Situation::UnusableSpec { reason: "InvalidSpec", message: "bad".into() },
                triple("False", "False", "True", "InvalidSpec"),
            ),
            (
                Situation::NothingSelected { message: "none".into() },
                triple("False", "False", "True", "NothingSelected"),
            ),
            (
                Situation::Cancelled { message: "stop".into() },
                triple("False", "False", "True", "RunCancelled"),
            ),
            (Situation::AwaitingTrigger, triple("True", "False", "False", "AwaitingTrigger")),
            (
                Situation::ConfigMapNotFound { config_map: ObjectKey::new("arcgis", "proxy") },
                triple("False", "False", "True", "ConfigMapNotFound"),
            ),
        ];
        for (situation, expected) in cases {
            let mut conditions = Vec::new();
            apply(&mut conditions, &situation, 4, at(100));
            assert_eq!(summary(&conditions), expected, "{situation:?}");
            assert!(conditions.iter().all(|c| c.observed_generation == Some(4)));
        }
    }

    #[test]
    fn a_queued_message_names_the_slot_holders() {
        let mut conditions = Vec::new();
        let holders = vec![
            SlotHolder { key: ObjectKey::new("arcgis", "a"), suspended: true },
            SlotHolder { key: ObjectKey::new("gis", "b"), suspended: false },
        ];
        apply(&mut conditions, &Situation::Queued { trigger: "Created".into(), holders }, 1, at(0));
        assert_eq!(
            find(&conditions, RECONCILING).map(|c| c.message.as_str()),
            Some(
                "a run (Created) is waiting for a free run slot; runs are serialized cluster-wide; \
                 slots held by arcgis/a (suspended), gis/b"
            )
        );
    }

    #[test]
    fn missing_trigger_keys_are_a_condition_of_their_own() {
        let mut conditions = Vec::new();
        apply(&mut conditions, &Situation::Succeeded { message: "ok".into() }, 1, at(0));
        apply_missing_keys(&mut conditions, Some(&["arcgis/proxy[noProxy]".to_owned()]), 1, at(0));
        let missing = find(&conditions, TRIGGER_KEYS_MISSING).expect("condition");
        assert_eq!((missing.status.as_str(), missing.reason.as_str()), ("True", "KeysMissing"));
        assert!(missing.message.contains("arcgis/proxy[noProxy]"));
        apply_missing_keys(&mut conditions, Some(&[]), 1, at(1));
        assert_eq!(
            find(&conditions, TRIGGER_KEYS_MISSING).map(|c| c.status.as_str()),
            Some("False")
        );
        apply_missing_keys(&mut conditions, None, 1, at(2));
        assert!(find(&conditions, TRIGGER_KEYS_MISSING).is_none());
        assert_eq!(conditions.len(), 3);
    }

    #[test]
    fn messages_are_the_documented_ones() {
        let mut conditions = Vec::new();
        apply(
            &mut conditions,
            &Situation::Running { batch: 3, batches: 14, follow_up: None, cancelling: false },
            1,
            at(0),
        );
        assert_eq!(
            find(&conditions, RECONCILING).map(|c| c.message.as_str()),
            Some("batch 3 of 14")
        );
        apply(
            &mut conditions,
            &Situation::ConfigMapNotFound { config_map: ObjectKey::new("arcgis", "proxy") },
            1,
            at(0),
        );
        assert_eq!(
            find(&conditions, STALLED).map(|c| c.message.as_str()),
            Some(
                "ConfigMap arcgis/proxy does not exist; create it or remove it from spec.configMapTriggers"
            )
        );
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let mut conditions = Vec::new();
        apply(
            &mut conditions,
            &Situation::Running { batch: 1, batches: 3, follow_up: None, cancelling: false },
            1,
            at(10),
        );
        apply(
            &mut conditions,
            &Situation::Running { batch: 2, batches: 3, follow_up: None, cancelling: false },
            1,
            at(20),
        );
        assert!(conditions.iter().all(|c| c.last_transition_time == Time(at(10))));
        assert_eq!(
            find(&conditions, RECONCILING).map(|c| c.message.as_str()),
            Some("batch 2 of 3")
        );

        apply(&mut conditions, &Situation::Succeeded { message: "ok".into() }, 1, at(30));
        let time = |type_| find(&conditions, type_).map(|c| c.last_transition_time.0);
        assert_eq!(time(READY), Some(at(30)));
        assert_eq!(time(RECONCILING), Some(at(30)));
        assert_eq!(time(STALLED), Some(at(10)));
    }

    #[test]
    fn other_condition_types_are_kept() {
        let foreign = Condition {
            type_: "Custom".into(),
            status: "True".into(),
            reason: "Mine".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(at(1)),
        };
        let mut conditions = vec![foreign.clone()];
        apply(&mut conditions, &Situation::Succeeded { message: "ok".into() }, 1, at(5));
        assert_eq!(conditions[0], foreign);
        assert_eq!(conditions.len(), 4);
    }
}
