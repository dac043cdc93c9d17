//! Property tests of pacing: random histories of trigger changes, run requests with and
//! without force, rollouts and passing time, against random maintenance windows and minimum
//! restart intervals. The promises: no Deployment's pod template changes outside a window,
//! and none changes twice within the interval unless the run that changes it was forced.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::json;

use crate::crd::{FORCE_ANNOTATION, RUN_REQUESTED_AT_ANNOTATION, Schedule};
use crate::engine::ObjectKey;
use crate::engine::pacing::windows::{WindowSchedule, WindowState};
use crate::engine::run::test_support::{ModelCluster, NS};

#[derive(Clone, Debug)]
struct PacingSetup {
    deployments: usize,
    batch_size: u32,
    interval_seconds: i64,
    /// A daily window in UTC: start minute of the day and length in minutes.
    window: Option<(u32, u32)>,
}

#[derive(Clone, Debug)]
enum PacingOp {
    Pass,
    RollOut,
    Advance(i64),
    NewTrigger,
    RunRequested { force: bool },
    ConfigMapChange,
}

fn setup() -> impl Strategy<Value = PacingSetup> {
    (
        1..4usize,
        1..3u32,
        prop_oneof![Just(0i64), Just(60), Just(300)],
        // The model's clock starts at 18:26:29 UTC: windows around it open soon or later.
        proptest::option::of((18 * 60 + 20..18 * 60 + 50u32, 1..15u32)),
    )
        .prop_map(|(deployments, batch_size, interval_seconds, window)| PacingSetup {
            deployments,
            batch_size,
            interval_seconds,
            window,
        })
}

fn op() -> impl Strategy<Value = PacingOp> {
    prop_oneof![
        6 => Just(PacingOp::Pass),
        3 => Just(PacingOp::RollOut),
        3 => (1..240i64).prop_map(PacingOp::Advance),
        1 => Just(PacingOp::NewTrigger),
        1 => any::<bool>().prop_map(|force| PacingOp::RunRequested { force }),
        1 => Just(PacingOp::ConfigMapChange),
    ]
}

fn clock(minute: u32) -> String {
    format!("{:02}:{:02}", (minute / 60) % 24, minute % 60)
}

fn model(setup: &PacingSetup) -> (ModelCluster, Option<WindowSchedule>) {
    let mut spec = json!({
        "selector": {}, "batchSize": setup.batch_size, "trigger": "0", "maxRunsPerHour": 10,
        "configMapTriggers": [{"name": "proxy"}],
    });
    let mut schedule = None;
    if let Some((start, length)) = setup.window {
        let window = json!({"timeZone": "UTC", "windows": [
            {"start": clock(start), "end": clock(start + length)},
        ]});
        let parsed: Schedule = serde_json::from_value(window.clone()).expect("schedule");
        schedule = Some(WindowSchedule::parse(&parsed).expect("a valid schedule"));
        spec["schedule"] = window;
    }
    let mut cluster = ModelCluster::new(spec);
    cluster.min_restart_interval = SignedDuration::from_secs(setup.interval_seconds);
    cluster.set_config_map(NS, "proxy", &[("proxy", "0")]);
    cluster.add_many(setup.deployments);
    (cluster, schedule)
}

/// Runs one history and checks every template change as it happens.
fn check_history(setup: &PacingSetup, ops: &[PacingOp]) -> Result<(), TestCaseError> {
    let (mut cluster, schedule) = model(setup);
    let interval = SignedDuration::from_secs(setup.interval_seconds);
    let mut last_change: BTreeMap<ObjectKey, Timestamp> = BTreeMap::new();
    let mut counter = 0;
    for op in ops {
        counter += 1;
        match op {
            PacingOp::Pass => {
                let before = cluster.template_changes.clone();
                let decision = cluster.pass();
                cluster.apply(&decision);
                let forced = cluster.status().run.as_ref().is_some_and(|run| run.force);
                for ((run, key), count) in &cluster.template_changes {
                    let known = before.get(&(run.clone(), key.clone())).copied().unwrap_or(0);
                    if *count == known {
                        continue;
                    }
                    let now = cluster.now;
                    if let Some(schedule) = &schedule {
                        prop_assert!(
                            matches!(schedule.state_at(now), WindowState::Open { .. }),
                            "{key} restarted by {run} at {now}, outside the window"
                        );
                    }
                    if let Some(last) = last_change.get(key)
                        && !forced
                    {
                        prop_assert!(
                            now.duration_since(*last) >= interval,
                            "{key} restarted by {run} at {now}, {} after its last restart",
                            now.duration_since(*last)
                        );
                    }
                    last_change.insert(key.clone(), now);
                }
            }
            PacingOp::RollOut => cluster.roll_out_all(),
            PacingOp::Advance(seconds) => cluster.now += SignedDuration::from_secs(*seconds),
            PacingOp::NewTrigger => cluster.refresh.spec.trigger = Some(counter.to_string()),
            PacingOp::RunRequested { force } => {
                if *force {
                    cluster.annotate(FORCE_ANNOTATION, "true");
                } else if let Some(annotations) = cluster.refresh.metadata.annotations.as_mut() {
                    annotations.remove(FORCE_ANNOTATION);
                }
                cluster.annotate(RUN_REQUESTED_AT_ANNOTATION, &counter.to_string());
            }
            PacingOp::ConfigMapChange => {
                cluster.set_config_map(NS, "proxy", &[("proxy", &counter.to_string())]);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_restart_outside_a_window_nor_twice_within_the_interval_unless_forced(
        setup in setup(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        check_history(&setup, &ops)?;
    }
}

/// The property is not vacuous: a history that should restart inside a window and wait out
/// the interval does both.
#[test]
fn a_plain_history_restarts_inside_the_window_and_waits_out_the_interval() {
    let setup = PacingSetup {
        deployments: 2,
        batch_size: 1,
        interval_seconds: 300,
        window: Some((18 * 60 + 30, 60)),
    };
    let mut ops = vec![PacingOp::Pass, PacingOp::Advance(240)];
    for _ in 0..3 {
        ops.extend([PacingOp::Pass, PacingOp::RollOut, PacingOp::Pass, PacingOp::RollOut]);
    }
    ops.push(PacingOp::RunRequested { force: false });
    for _ in 0..6 {
        ops.extend([PacingOp::Pass, PacingOp::RollOut, PacingOp::Advance(60)]);
    }
    check_history(&setup, &ops).expect("the promises hold");
    let (mut cluster, _) = model(&setup);
    cluster.now += SignedDuration::from_secs(240);
    cluster.run_to_end();
    assert_eq!(cluster.template_changes.len(), 2, "the first run restarted both");
}

/// A run started inside the window whose one Deployment was still rolling out for the run
/// before it: the rollout ends exactly as the window closes, and the held restart waits for
/// the next window instead of going out then (a case the property found).
#[test]
fn a_restart_held_past_the_windows_end_waits_for_the_next_window() {
    use PacingOp::{Advance, NewTrigger, Pass, RollOut};
    let ops = [
        Advance(151),
        Pass,
        Pass,
        NewTrigger,
        Advance(618),
        Pass,
        Pass,
        Advance(222),
        RollOut,
        Pass,
    ];
    for batch_size in 1..3 {
        for interval_seconds in [0, 60, 300] {
            let setup = PacingSetup {
                deployments: 1,
                batch_size,
                interval_seconds,
                window: Some((1109, 14)),
            };
            check_history(&setup, &ops).expect("no restart outside the window");
        }
    }
    let setup = PacingSetup {
        deployments: 1,
        batch_size: 1,
        interval_seconds: 0,
        window: Some((1109, 14)),
    };
    let (mut cluster, _) = model(&setup);
    for op in &ops {
        match op {
            Advance(seconds) => cluster.now += SignedDuration::from_secs(*seconds),
            Pass => {
                let decision = cluster.pass();
                cluster.apply(&decision);
            }
            RollOut => cluster.roll_out_all(),
            NewTrigger => cluster.refresh.spec.trigger = Some("changed".into()),
            _ => unreachable!("not in this history"),
        }
    }
    assert_eq!(cluster.template_changes.len(), 1, "only the first run restarted so far");
    let waiting = cluster.status().waiting.clone().expect("the run says why it waits");
    assert_eq!(waiting.reason, "OutsideWindow");
    cluster.now += SignedDuration::from_hours(24) - SignedDuration::from_mins(14);
    let decision = cluster.pass();
    cluster.apply(&decision);
    assert_eq!(cluster.template_changes.len(), 2, "the second run restarts in the next window");
}
