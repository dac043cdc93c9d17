//! The spec and status types that pace runs: how long trigger changes settle before they
//! start a run, how many trigger-started runs an hour may bring, and the maintenance windows
//! runs keep to; with the status records that carry their state across passes and restarts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Default `spec.triggerSettle`: long enough for a tool that rewrites a ConfigMap key by key
/// to finish, short enough that nobody waits for it.
pub const DEFAULT_TRIGGER_SETTLE: &str = "5s";
/// Default `spec.maxRunsPerHour`.
pub const DEFAULT_MAX_RUNS_PER_HOUR: u32 = 6;
/// Largest `spec.maxRunsPerHour`: the status's run history (ten runs) plus the current run
/// must hold one more run than the limit for the count to be exact.
pub const MAX_RUNS_PER_HOUR_LIMIT: u32 = 10;

pub(super) fn default_trigger_settle() -> String {
    DEFAULT_TRIGGER_SETTLE.to_owned()
}

pub(super) fn default_max_runs_per_hour() -> u32 {
    DEFAULT_MAX_RUNS_PER_HOUR
}

/// When runs may restart anything: maintenance windows in one time zone.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// The windows. A run triggered outside every window waits for the next one to open; a
    /// window closing mid-run lets the batch in flight finish, and the run resumes at the next
    /// window. At least one, at most 32.
    #[schemars(length(min = 1, max = 32))]
    pub windows: Vec<MaintenanceWindow>,
    /// IANA time zone the windows' days and times are in, such as `Europe/Berlin`. Default
    /// `UTC`. Daylight saving time is followed: a window's times are wall-clock times.
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: String,
}

fn default_time_zone() -> String {
    "UTC".to_owned()
}

/// One weekly maintenance window.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindow {
    /// Days the window opens on. Default: every day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 7))]
    pub days: Vec<Weekday>,
    /// Wall-clock time the window opens, `HH:MM` (or `HH:MM:SS`).
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"))]
    pub start: String,
    /// Wall-clock time the window closes, `HH:MM` (or `HH:MM:SS`). An end at or before the
    /// start closes the window on the next day: `22:00` to `04:00` crosses midnight.
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"))]
    pub end: String,
}

/// A day of the week.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// Trigger changes seen but not settled yet: the triggers as they are now, and since when
/// they have looked so. A run starts once they have stayed the same for `spec.triggerSettle`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerSettling {
    /// Digest of the watched ConfigMaps' content as last seen.
    pub digest: String,
    /// When that content was first seen.
    pub since: MicroTime,
}

/// A restart storm: more trigger-started runs within an hour than `spec.maxRunsPerHour`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestartStorm {
    /// The trigger that flapped, in words (`ConfigMap arcgis/proxy changed`).
    pub trigger: String,
    /// When the storm stopped trigger-started runs.
    pub since: Time,
}
