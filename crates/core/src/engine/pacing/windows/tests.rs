use jiff::Timestamp;
use jiff::tz::TimeZoneDatabase;

use super::*;
use crate::crd::MaintenanceWindow;

fn schedule(zone: &str, windows: &[(&[Weekday], &str, &str)]) -> WindowSchedule {
    let schedule = Schedule {
        time_zone: zone.to_owned(),
        windows: windows
            .iter()
            .map(|(days, start, end)| MaintenanceWindow {
                days: days.to_vec(),
                start: (*start).to_owned(),
                end: (*end).to_owned(),
            })
            .collect(),
    };
    WindowSchedule::parse(&schedule).expect("schedule is valid")
}

fn utc(text: &str) -> Timestamp {
    text.parse().expect("a timestamp")
}

fn open(closes: &str) -> WindowState {
    WindowState::Open { closes: utc(closes) }
}

fn closed(opens: &str) -> WindowState {
    WindowState::Closed { opens: utc(opens) }
}

// 2026-11-30 is a Monday.

#[test]
fn a_window_crossing_midnight_stays_open_into_the_next_day() {
    let nightly = schedule("UTC", &[(&[Weekday::Mon], "22:00", "04:00")]);
    assert_eq!(nightly.state_at(utc("2026-11-30T21:59:59Z")), closed("2026-11-30T22:00:00Z"));
    assert_eq!(nightly.state_at(utc("2026-11-30T22:00:00Z")), open("2026-12-01T04:00:00Z"));
    assert_eq!(nightly.state_at(utc("2026-12-01T03:00:00Z")), open("2026-12-01T04:00:00Z"));
    // Tuesday is not a day of the window: the next opens a week after Monday's.
    assert_eq!(nightly.state_at(utc("2026-12-01T04:00:00Z")), closed("2026-12-07T22:00:00Z"));
}

#[test]
fn days_default_to_every_day_and_windows_are_in_the_zone() {
    let daily = schedule("Europe/Berlin", &[(&[], "22:00", "23:00")]);
    // 22:00 in Berlin in winter is 21:00 UTC.
    assert_eq!(daily.state_at(utc("2026-12-01T12:00:00Z")), closed("2026-12-01T21:00:00Z"));
    assert_eq!(daily.state_at(utc("2026-12-01T21:30:00Z")), open("2026-12-01T22:00:00Z"));
    assert_eq!(daily.zone_name(), "Europe/Berlin", "messages name the zone as it was given");
}

#[test]
fn a_window_starting_as_another_ends_continues_it() {
    let chained = schedule(
        "UTC",
        &[(&[], "22:00", "00:00"), (&[], "00:00", "02:00"), (&[], "01:00", "03:00")],
    );
    assert_eq!(chained.state_at(utc("2026-11-30T23:00:00Z")), open("2026-12-01T03:00:00Z"));
}

#[test]
fn spring_forward_shortens_a_window_and_moves_a_skipped_start() {
    // Europe/Berlin skips 02:00-03:00 on 2026-03-29: 01:00 CET is 00:00Z, 04:00 CEST is 02:00Z.
    let night = schedule("Europe/Berlin", &[(&[Weekday::Sun], "01:00", "04:00")]);
    assert_eq!(night.state_at(utc("2026-03-29T00:30:00Z")), open("2026-03-29T02:00:00Z"));
    // A start at the skipped 02:30 opens at 03:30 CEST, 01:30Z.
    let skipped = schedule("Europe/Berlin", &[(&[Weekday::Sun], "02:30", "05:00")]);
    assert_eq!(skipped.state_at(utc("2026-03-28T12:00:00Z")), closed("2026-03-29T01:30:00Z"));
}

#[test]
fn fall_back_lengthens_a_window_and_takes_a_repeated_start_once() {
    // Europe/Berlin repeats 02:00-03:00 on 2026-10-25: 01:00 CEST is 23:00Z the day before,
    // 04:00 CET is 03:00Z, four hours later.
    let night = schedule("Europe/Berlin", &[(&[Weekday::Sun], "01:00", "04:00")]);
    assert_eq!(night.state_at(utc("2026-10-24T23:00:00Z")), open("2026-10-25T03:00:00Z"));
    assert_eq!(night.state_at(utc("2026-10-25T02:30:00Z")), open("2026-10-25T03:00:00Z"));
    // A start at the repeated 02:30 opens at its first occurrence, 02:30 CEST = 00:30Z.
    let repeated = schedule("Europe/Berlin", &[(&[Weekday::Sun], "02:30", "05:00")]);
    assert_eq!(repeated.state_at(utc("2026-10-24T12:00:00Z")), closed("2026-10-25T00:30:00Z"));
}

#[test]
fn seconds_are_allowed_for_short_windows() {
    let short = schedule("UTC", &[(&[], "10:00:30", "10:01:00")]);
    assert_eq!(short.state_at(utc("2026-11-30T10:00:00Z")), closed("2026-11-30T10:00:30Z"));
    assert_eq!(short.state_at(utc("2026-11-30T10:00:45Z")), open("2026-11-30T10:01:00Z"));
}

#[test]
fn unusable_schedules_name_the_field() {
    let bad_zone = Schedule {
        time_zone: "Mars/Olympus".into(),
        windows: vec![MaintenanceWindow {
            days: vec![],
            start: "22:00".into(),
            end: "04:00".into(),
        }],
    };
    let problem = WindowSchedule::parse(&bad_zone).expect_err("unknown zone");
    assert_eq!(problem.field, "spec.schedule.timeZone");
    for (start, end, field) in [
        ("24:00", "04:00", "spec.schedule.windows[0].start"),
        ("22:00", "4:00", "spec.schedule.windows[0].end"),
        ("22:00", "04:00:60", "spec.schedule.windows[0].end"),
        ("22:00", "04:00:5", "spec.schedule.windows[0].end"),
        ("22:00", "04:00:+5", "spec.schedule.windows[0].end"),
    ] {
        let bad = Schedule {
            time_zone: "UTC".into(),
            windows: vec![MaintenanceWindow { days: vec![], start: start.into(), end: end.into() }],
        };
        assert_eq!(WindowSchedule::parse(&bad).expect_err(field).field, field);
    }
    let none = Schedule { time_zone: "UTC".into(), windows: vec![] };
    assert_eq!(WindowSchedule::parse(&none).expect_err("empty").field, "spec.schedule.windows");
}

#[test]
fn the_bundled_database_knows_the_zones_without_the_host() {
    // Hosts without /usr/share/zoneinfo (distroless images) fall back to this copy.
    let bundled = TimeZoneDatabase::bundled();
    for zone in ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"] {
        assert!(bundled.get(zone).is_ok(), "{zone}");
    }
}
