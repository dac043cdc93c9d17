//! The non-Ready results of a run, grouped by cause, which is what keeps the status bounded
//! whatever fails: services that ended the same way for the same reason, with messages that
//! differ only by the service's own name or by numbers, share one entry with a count and
//! their plan positions. Messages are shortened, the number of groups is capped, and a
//! group's positions cost at most a few bytes per service. Also the reasons a service can
//! end with, and the totals of a run.

use crate::crd::{ResultGroup, ServiceRefreshStatus, ServiceResult, Totals};
use crate::engine::ObjectKey;
use crate::engine::positions::PositionSet;

/// Why a service ended as it did: the `reason` of its result.
pub mod reason {
    /// The rollout crossed its progress deadline (`ProgressDeadlineExceeded`).
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    /// The API server refused the restart patch for good.
    pub const RESTART_REJECTED: &str = "RestartRejected";
    /// Restarted, but not ready when the batch timed out.
    pub const ROLLOUT_TIMED_OUT: &str = "RolloutTimedOut";
    /// Not restarted when the batch timed out (held, or the patch kept failing).
    pub const RESTART_TIMED_OUT: &str = "RestartTimedOut";
    /// Deleted during the run.
    pub const DELETED: &str = "Deleted";
    /// Deleted and created again during the run.
    pub const REPLACED: &str = "Replaced";
    /// Paused: a restart would not roll out.
    pub const PAUSED: &str = "Paused";
    /// A StatefulSet or DaemonSet with `updateStrategy: OnDelete`: a restart would replace
    /// no pod, and the operator deletes none.
    pub const ON_DELETE: &str = "OnDeleteStrategy";
    /// A StatefulSet or DaemonSet switched to another update strategy than `RollingUpdate`
    /// while it rolled out: `kubectl rollout status` cannot judge it any more.
    pub const NOT_ROLLING_UPDATE: &str = "NotRollingUpdate";
    /// A dry run restarts nothing.
    pub const DRY_RUN: &str = "DryRun";
    /// Excluded by `spec.exclude` after planning.
    pub const EXCLUDED: &str = "Excluded";
    /// No longer selected by the spec after planning.
    pub const DESELECTED: &str = "Deselected";
    /// The run was cancelled before the service's batch.
    pub const CANCELLED: &str = "Cancelled";
    /// `failurePolicy: Abort` ended the run before the service's batch.
    pub const ABORTED: &str = "Aborted";
    /// The run's plan objects were deleted before the service's batch.
    pub const PLAN_LOST: &str = "PlanLost";
    /// The health gate still failed when its timeout passed, and `failurePolicy: Abort` ended
    /// the run before the service's batch.
    pub const HEALTH_GATE_TIMED_OUT: &str = "HealthGateTimedOut";
    /// Not restarted: its PodDisruptionBudget allowed no disruption (or another service
    /// under it stayed in flight) until `batchTimeout` passed.
    pub const DISRUPTION_BUDGET: &str = "DisruptionBudget";
    /// Not restarted: a canary failed or turned unready during its soak, which ends the run.
    pub const CANARY_FAILED: &str = "CanaryFailed";
}

/// Most result groups a status keeps; further causes join a group of the same result and
/// reason.
pub const MAX_RESULT_GROUPS: usize = 32;
/// Longest message a group keeps, in characters; longer ones are cut with an ellipsis.
pub const MAX_MESSAGE_CHARS: usize = 512;
/// Services a group names by example.
const MAX_EXAMPLES: usize = 3;

/// One service's result, to be added to a status's groups.
pub struct Outcome<'a> {
    pub position: u32,
    pub key: &'a ObjectKey,
    pub result: ServiceResult,
    pub reason: &'a str,
    pub message: &'a str,
}

/// Adds a non-Ready result to `groups`. Ready results are not grouped: a completed batch's
/// counts carry them.
pub fn record(groups: &mut Vec<ResultGroup>, own_namespace: &str, outcome: &Outcome) {
    if outcome.result == ServiceResult::Ready {
        return;
    }
    let cause = cause_of(&shorten(outcome.message), &outcome.key.name);
    let same_cause = groups.iter().position(|group| {
        group.result == outcome.result
            && group.reason == outcome.reason
            && cause_of(&group.message, first_example_name(group)) == cause
    });
    let index = same_cause.or_else(|| {
        (groups.len() >= MAX_RESULT_GROUPS).then(|| {
            groups
                .iter()
                .position(|group| group.result == outcome.result && group.reason == outcome.reason)
        })?
    });
    let example = display_name(outcome.key, own_namespace);
    match index {
        Some(index) => {
            let group = &mut groups[index];
            let mut positions = PositionSet::parse(&group.positions).unwrap_or_default();
            if positions.contains(outcome.position) {
                return;
            }
            positions.insert(outcome.position);
            group.positions = positions.to_string();
            group.count += 1;
            if group.examples.len() < MAX_EXAMPLES {
                group.examples.push(example);
            }
        }
        None => groups.push(ResultGroup {
            result: outcome.result,
            reason: outcome.reason.to_owned(),
            message: shorten(outcome.message),
            count: 1,
            positions: outcome.position.to_string(),
            examples: vec![example],
        }),
    }
}

/// The positions of every grouped result.
pub fn resulted_positions(groups: &[ResultGroup]) -> PositionSet {
    let mut all = PositionSet::default();
    for group in groups {
        all.extend(&PositionSet::parse(&group.positions).unwrap_or_default());
    }
    all
}

/// The group holding the result of `position`, if it has a grouped result.
pub fn group_of(groups: &[ResultGroup], position: u32) -> Option<&ResultGroup> {
    groups
        .iter()
        .find(|group| PositionSet::parse(&group.positions).is_ok_and(|set| set.contains(position)))
}

/// A message cut to [`MAX_MESSAGE_CHARS`].
pub fn shorten(message: &str) -> String {
    if message.chars().count() <= MAX_MESSAGE_CHARS {
        return message.to_owned();
    }
    let mut short: String = message.chars().take(MAX_MESSAGE_CHARS - 1).collect();
    short.push('…');
    short
}

/// How a service is named in examples and listings: `namespace/name` outside the
/// ServiceRefresh's own namespace, the bare name inside it.
pub fn display_name(key: &ObjectKey, own_namespace: &str) -> String {
    if !key.kind.is_deployment() {
        // Other kinds always say what they are and where: `StatefulSet arcgis/relational-store`.
        key.describe()
    } else if key.namespace == own_namespace {
        key.name.clone()
    } else {
        key.to_string()
    }
}

fn first_example_name(group: &ResultGroup) -> &str {
    let example = group.examples.first().map(String::as_str).unwrap_or_default();
    example.rsplit_once('/').map_or(example, |(_, name)| name)
}

/// What distinguishes one cause from another in a message: the text without the service's
/// own name, so "deployment "a" exceeded its progress deadline" and the same words about
/// "b" are one cause, and each service's message can be told again exactly
/// ([`message_of`]). Messages that differ otherwise are other causes, until the groups are
/// capped.
fn cause_of(message: &str, name: &str) -> String {
    if name.is_empty() { message.to_owned() } else { message.replace(name, "\u{0}") }
}

/// The message of the service named `name` in `group`: the group's message, about the
/// first service it names, told about this one.
pub fn message_of(group: &ResultGroup, name: &str) -> String {
    let first = first_example_name(group);
    if first.is_empty() || first == name {
        return group.message.clone();
    }
    group.message.replace(first, name)
}

/// The counts of a run: Ready and restarted from the completed batches and the running
/// batch's rows, failures and skips from the groups and the running batch's rows.
pub fn totals(status: &ServiceRefreshStatus) -> Totals {
    let services =
        status.run.as_ref().and_then(|run| run.plan.as_ref()).map_or(0, |plan| plan.services);
    let mut totals = Totals { services, ..Totals::default() };
    if let Some(earlier) = &status.earlier_batches {
        totals.ready += earlier.counts.ready;
        totals.restarted += earlier.counts.restarted;
    }
    for batch in &status.batches {
        match &batch.counts {
            Some(counts) => {
                totals.ready += counts.ready;
                totals.restarted += counts.restarted;
            }
            None => {
                for service in &batch.services {
                    if service.generation.is_some() || service.result == Some(ServiceResult::Ready)
                    {
                        totals.restarted += 1;
                    }
                    // Exhaustive, so a new result must be placed in the totals to compile.
                    match service.result {
                        Some(ServiceResult::Ready) => totals.ready += 1,
                        Some(ServiceResult::Skipped) => totals.skipped += 1,
                        Some(
                            ServiceResult::Failed | ServiceResult::TimedOut | ServiceResult::Gone,
                        ) => totals.failed += 1,
                        None => {}
                    }
                }
            }
        }
    }
    for group in &status.results {
        if group.result == ServiceResult::Skipped {
            totals.skipped += group.count;
        } else if group.result.is_failure() {
            totals.failed += group.count;
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(groups: &mut Vec<ResultGroup>, position: u32, name: &str, reason: &str, message: &str) {
        let key = ObjectKey::new("arcgis", name);
        let result = ServiceResult::TimedOut;
        record(groups, "arcgis", &Outcome { position, key: &key, result, reason, message });
    }

    #[test]
    fn failures_with_the_same_cause_share_one_group() {
        let mut groups = Vec::new();
        let message = |name: &str| {
            format!(
                "not ready after spec.batchTimeout 1s: Waiting for deployment \"{name}\" rollout \
                 to finish: 0 of 3 updated replicas are available..."
            )
        };
        for position in 0..100 {
            let name = format!("svc-{position}");
            add(&mut groups, position, &name, reason::ROLLOUT_TIMED_OUT, &message(&name));
        }
        add(&mut groups, 100, "svc-100", reason::RESTART_TIMED_OUT, "not restarted: held");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].count, 100);
        assert_eq!(groups[0].positions, "0-99");
        assert_eq!(groups[0].examples, ["svc-0", "svc-1", "svc-2"]);
        assert!(groups[0].message.contains("\"svc-0\""));
        assert_eq!(message_of(&groups[0], "svc-42"), message("svc-42"), "told again exactly");
        // The same service twice counts once.
        add(&mut groups, 5, "svc-5", reason::ROLLOUT_TIMED_OUT, "other words");
        assert_eq!(groups[0].count, 100);
    }

    #[test]
    fn groups_and_messages_are_capped() {
        let mut groups = Vec::new();
        for position in 0..1_000u32 {
            let message = format!(
                "cause {}: {}",
                char::from(b'a' + (position % 26) as u8),
                "x".repeat(5_000)
            );
            let words: String =
                (0..position).map(|i| char::from(b'a' + (i % 26) as u8)).take(8).collect();
            add(
                &mut groups,
                position,
                &format!("s{position}"),
                reason::ROLLOUT_TIMED_OUT,
                &format!("{words} {message}"),
            );
        }
        assert!(groups.len() <= MAX_RESULT_GROUPS, "{}", groups.len());
        assert_eq!(groups.iter().map(|group| group.count).sum::<u32>(), 1_000);
        assert!(groups.iter().all(|group| group.message.chars().count() <= MAX_MESSAGE_CHARS));
        assert_eq!(resulted_positions(&groups).len(), 1_000);
        assert!(group_of(&groups, 999).is_some() && group_of(&groups, 1_000).is_none());
    }

    #[test]
    fn failures_for_different_causes_keep_their_own_groups() {
        let mut groups = Vec::new();
        add(&mut groups, 0, "map-1", reason::ROLLOUT_TIMED_OUT, "\"map-1\": ImagePullBackOff");
        add(&mut groups, 1, "map-2", reason::ROLLOUT_TIMED_OUT, "\"map-2\": exceeded quota");
        add(&mut groups, 2, "map-3", reason::ROLLOUT_TIMED_OUT, "\"map-3\": ImagePullBackOff");
        let summary: Vec<(&str, &str)> =
            groups.iter().map(|group| (group.positions.as_str(), group.message.as_str())).collect();
        assert_eq!(
            summary,
            [("0,2", "\"map-1\": ImagePullBackOff"), ("1", "\"map-2\": exceeded quota")]
        );
    }

    #[test]
    fn the_same_words_for_another_reason_are_another_group_even_past_the_cap() {
        let mut groups = Vec::new();
        add(&mut groups, 0, "map-1", reason::ROLLOUT_TIMED_OUT, "held");
        add(&mut groups, 1, "map-2", reason::RESTART_TIMED_OUT, "held");
        assert_eq!(groups.len(), 2, "a reason is never told under another");
        for position in 2..2 + MAX_RESULT_GROUPS as u32 {
            let message = format!("cause {position}");
            add(
                &mut groups,
                position,
                &format!("map-{position}"),
                reason::ROLLOUT_TIMED_OUT,
                &message,
            );
        }
        assert_eq!(groups.len(), MAX_RESULT_GROUPS, "past the cap, causes share a group");
        add(&mut groups, 99, "map-99", reason::RESTART_TIMED_OUT, "other words");
        let restart_timeouts: Vec<&str> = groups
            .iter()
            .filter(|group| group.reason == reason::RESTART_TIMED_OUT)
            .map(|group| group.positions.as_str())
            .collect();
        assert_eq!(restart_timeouts, ["1,99"], "joined to the group of its own reason");
        add(&mut groups, 100, "map-100", reason::PAUSED, "other words");
        assert_eq!(groups.len(), MAX_RESULT_GROUPS + 1, "a new reason has a group of its own");
    }

    #[test]
    fn a_group_that_names_no_example_tells_its_message_as_it_is() {
        // Groups read from a status an older operator or a person wrote may name no one.
        let group = ResultGroup {
            result: ServiceResult::Failed,
            reason: reason::ROLLOUT_TIMED_OUT.to_owned(),
            message: "quota exceeded".to_owned(),
            count: 1,
            positions: "0".to_owned(),
            examples: Vec::new(),
        };
        assert_eq!(message_of(&group, "web"), "quota exceeded");
    }

    #[test]
    fn totals_add_the_summed_up_batches_to_the_listed_ones_and_the_groups() {
        let status: ServiceRefreshStatus = serde_json::from_value(serde_json::json!({
            "earlierBatches": {"batches": 2, "counts": {"ready": 15, "restarted": 18}},
            "batches": [
                {"index": 3, "phase": "Completed", "counts": {"ready": 8, "restarted": 9}},
                {"index": 4, "phase": "Running", "services": [
                    {"name": "a", "generation": 4},
                    {"name": "b", "result": "Ready"},
                    {"name": "c", "result": "Skipped"},
                    {"name": "d", "result": "Failed"}
                ]}
            ],
            "results": [
                {"result": "TimedOut", "reason": "RolloutTimedOut", "message": "m", "count": 4,
                 "positions": "1-4", "examples": ["x"]},
                {"result": "Skipped", "reason": "Paused", "message": "m", "count": 2,
                 "positions": "5-6", "examples": ["y"]}
            ]
        }))
        .expect("a status");
        let totals = totals(&status);
        assert_eq!(
            (totals.ready, totals.restarted, totals.failed, totals.skipped),
            (15 + 8 + 1, 18 + 9 + 2, 1 + 4, 1 + 2)
        );
    }

    #[test]
    fn names_outside_the_own_namespace_are_qualified() {
        assert_eq!(display_name(&ObjectKey::new("arcgis", "a"), "arcgis"), "a");
        assert_eq!(display_name(&ObjectKey::new("gis", "a"), "arcgis"), "gis/a");
    }
}
