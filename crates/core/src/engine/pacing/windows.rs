//! Maintenance windows (`spec.schedule`): weekly wall-clock windows in one IANA time zone,
//! resolved with jiff and its bundled time zone database, so the answer does not depend on
//! the host's `/usr/share/zoneinfo`. A window whose end is at or before its start crosses
//! midnight into the next day. Wall-clock times that daylight saving time skips or repeats
//! resolve as `kubectl`-era cron and RFC 5545 do: a skipped time moves forward by the gap, a
//! repeated one takes its first occurrence.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::crd::{Schedule, Weekday};

/// Days searched for the next opening: a week plus the day a window may have started on.
const SEARCH_DAYS: i64 = 8;

/// A parsed `spec.schedule`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowSchedule {
    zone: TimeZone,
    zone_name: String,
    windows: Vec<Window>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Window {
    /// Indexed by days from Monday.
    days: [bool; 7],
    start: Time,
    end: Time,
}

/// Whether runs may restart now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowState {
    /// Inside a window, which closes at `closes` (later windows that continue it included).
    Open { closes: Timestamp },
    /// Outside every window; the next opens at `opens`.
    Closed { opens: Timestamp },
}

/// A `spec.schedule` the operator cannot use: the field and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleProblem {
    pub field: String,
    pub problem: String,
}

impl WindowSchedule {
    /// Parses and checks a schedule.
    pub fn parse(schedule: &Schedule) -> Result<Self, ScheduleProblem> {
        let zone = TimeZone::get(&schedule.time_zone).map_err(|error| ScheduleProblem {
            field: "spec.schedule.timeZone".to_owned(),
            problem: format!("{:?} is not an IANA time zone: {error}", schedule.time_zone),
        })?;
        if schedule.windows.is_empty() {
            return Err(ScheduleProblem {
                field: "spec.schedule.windows".to_owned(),
                problem: "at least one window is required".to_owned(),
            });
        }
        let mut windows = Vec::with_capacity(schedule.windows.len());
        for (index, window) in schedule.windows.iter().enumerate() {
            let time = |name: &str, text: &str| {
                parse_time(text).ok_or_else(|| ScheduleProblem {
                    field: format!("spec.schedule.windows[{index}].{name}"),
                    problem: format!("{text:?} is not a time such as 22:00 or 22:00:30"),
                })
            };
            let (start, end) = (time("start", &window.start)?, time("end", &window.end)?);
            let mut days = [window.days.is_empty(); 7];
            for day in &window.days {
                days[day_index(*day)] = true;
            }
            windows.push(Window { days, start, end });
        }
        Ok(Self { zone, zone_name: schedule.time_zone.clone(), windows })
    }

    /// The time zone the windows are in.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The time zone's name, for messages.
    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    /// Whether `now` is inside a window, and when that changes.
    pub fn state_at(&self, now: Timestamp) -> WindowState {
        let intervals = self.intervals_around(now);
        let open = intervals.iter().filter(|(start, end)| *start <= now && now < *end);
        match open.map(|(_, end)| *end).max() {
            Some(mut closes) => {
                // Windows that begin exactly as another ends (or overlap it) continue it.
                while let Some(later) = intervals
                    .iter()
                    .filter(|(start, end)| *start <= closes && closes < *end)
                    .map(|(_, end)| *end)
                    .max()
                {
                    closes = later;
                }
                WindowState::Open { closes }
            }
            None => {
                let opens = intervals
                    .iter()
                    .map(|(start, _)| *start)
                    .filter(|start| *start > now)
                    .min()
                    // Every schedule has a window on some weekday, so the search finds one;
                    // the fallback only keeps this total.
                    .unwrap_or(Timestamp::MAX);
                WindowState::Closed { opens }
            }
        }
    }

    /// Every window occurrence from the day before `now` to a week after it, as instants.
    fn intervals_around(&self, now: Timestamp) -> Vec<(Timestamp, Timestamp)> {
        let today = now.to_zoned(self.zone.clone()).date();
        let mut intervals = Vec::new();
        for offset in -1..=SEARCH_DAYS {
            let Ok(date) = today.checked_add(offset.days()) else {
                continue;
            };
            let weekday = usize::try_from(date.weekday().to_monday_zero_offset()).unwrap_or(0);
            for window in self.windows.iter().filter(|window| window.days[weekday]) {
                let end_date =
                    if window.end <= window.start { date.tomorrow().ok() } else { Some(date) };
                let start = self.instant(date, window.start);
                let end = end_date.and_then(|end_date| self.instant(end_date, window.end));
                if let (Some(start), Some(end)) = (start, end)
                    && start < end
                {
                    intervals.push((start, end));
                }
            }
        }
        intervals
    }

    /// The instant of a wall-clock time on a date in the schedule's zone.
    fn instant(&self, date: Date, time: Time) -> Option<Timestamp> {
        self.zone.to_ambiguous_timestamp(date.to_datetime(time)).compatible().ok()
    }
}

fn day_index(day: Weekday) -> usize {
    match day {
        Weekday::Mon => 0,
        Weekday::Tue => 1,
        Weekday::Wed => 2,
        Weekday::Thu => 3,
        Weekday::Fri => 4,
        Weekday::Sat => 5,
        Weekday::Sun => 6,
    }
}

/// `HH:MM` or `HH:MM:SS`, the shapes the schema admits.
fn parse_time(text: &str) -> Option<Time> {
    let mut parts = text.split(':');
    let mut field = |max: i8| -> Option<i8> {
        let part = parts.next()?;
        if part.len() != 2 || !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        part.parse().ok().filter(|value| *value <= max)
    };
    let (hour, minute) = (field(23)?, field(59)?);
    let second = match parts.next() {
        None => 0,
        Some(part) if part.len() == 2 && part.bytes().all(|byte| byte.is_ascii_digit()) => {
            part.parse().ok().filter(|value: &i8| *value <= 59)?
        }
        Some(_) => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    Time::new(hour, minute, second, 0).ok()
}

#[cfg(test)]
mod tests;
