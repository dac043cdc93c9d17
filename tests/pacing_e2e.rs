//! Pacing on the simulated cluster: a ConfigMap storm settles into one run
//! (`spec.triggerSettle`), a ConfigMap flapping for a minute stalls as a restart storm after
//! `spec.maxRunsPerHour` runs with no Deployment restarted twice within
//! `--min-restart-interval` unless forced, and a run keeps to its maintenance windows across
//! an operator SIGKILL. Each test prints its figures for the record.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::process::{Kubeconfig, OperatorProcess};
use common::{NAMESPACE, Operator, SimCluster, assert_template_changes, fleet, wait_for};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use servicerefresh_core::crd::{Phase, ServiceRefreshStatus};
use servicerefresh_operator::controller::OperatorConfig;
use servicerefresh_sim::SimConfig;

const DEADLINE: Duration = Duration::from_secs(120);
const CONFIG_MAP: &str = "proxy";

async fn create_config_map(cluster: &SimCluster) -> Api<ConfigMap> {
    let config_maps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let config_map: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": NAMESPACE},
        "data": {"proxy": "http://proxy:3128"},
    }))
    .expect("ConfigMap");
    config_maps.create(&PostParams::default(), &config_map).await.expect("create the ConfigMap");
    config_maps
}

async fn change(config_maps: &Api<ConfigMap>, value: usize) {
    let patch = Patch::Merge(json!({"data": {"proxy": format!("http://proxy-{value}:3128")}}));
    config_maps.patch(CONFIG_MAP, &PatchParams::default(), &patch).await.expect("change");
}

/// Waits until the resource has recorded its trigger baselines (`runOnCreate: false`).
async fn wait_for_baseline(cluster: &SimCluster, name: &str) {
    wait_for(DEADLINE, "the trigger baseline", || async {
        cluster.status(name).await.filter(|s| s.triggers.recorded_at.is_some())
    })
    .await;
}

fn condition<'a>(status: &'a ServiceRefreshStatus, kind: &str) -> Option<(&'a str, &'a str)> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| (c.reason.as_str(), c.message.as_str()))
}

fn runs(status: &ServiceRefreshStatus) -> u64 {
    status.run.as_ref().map_or(0, |run| run.number)
}

/// The times (ms since the sim started) of the restart patches the sim applied, by Deployment.
fn restart_patches(cluster: &SimCluster) -> BTreeMap<String, Vec<u64>> {
    let prefix = format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/");
    let mut patches: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for request in cluster.sim.requests() {
        if request.verb == "patch"
            && request.code == Some(200)
            && let Some(name) = request.path.strip_prefix(&prefix)
        {
            patches.entry(name.to_owned()).or_default().push(request.at_ms);
        }
    }
    patches
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_map_changed_100_times_in_10_seconds_settles_into_exactly_one_run() {
    let cluster = SimCluster::start(fleet(6, 0, 21)).await;
    let names = cluster.all_deployment_names().await;
    let config_maps = create_config_map(&cluster).await;
    let operator = Operator::start(&cluster.client);
    cluster
        .create_refresh(
            "settle",
            json!({"selector": {}, "runOnCreate": false, "triggerSettle": "2s",
                   "configMapTriggers": [{"name": CONFIG_MAP}]}),
        )
        .await;
    wait_for_baseline(&cluster, "settle").await;

    // The storm: 100 changes in 10 s. The pacing is the storm's, not a wait.
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    for value in 1..=100 {
        ticks.tick().await;
        change(&config_maps, value).await;
    }
    let storm = started.elapsed();
    let ended = cluster.wait_for_run_end("settle", DEADLINE).await;
    assert_eq!(ended.phase, Some(Phase::Succeeded));
    // A witness that the operator decided after the storm and the run: nothing more is due.
    let after = cluster.reconciled_after_edit("settle", json!({"batchSize": 5})).await;
    operator.stop().await;
    assert_eq!(runs(&after), 1, "exactly one run: {:?}", after.history);
    assert_eq!(after.run.as_ref().map(|run| run.reason.as_str()), Some("ConfigMapChanged"));
    assert_eq!(after.triggers.settling, None, "the run took the last content along");
    assert_template_changes(&cluster.sim, &names, 1);
    println!(
        "figure: ConfigMap storm of 100 changes in {:.1} s with triggerSettle 2s: {} run(s), \
         each of {} Deployments restarted once",
        storm.as_secs_f64(),
        runs(&after),
        names.len()
    );
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_map_flapping_every_2_seconds_for_a_minute_stalls_as_a_restart_storm() {
    const INTERVAL_SECONDS: u64 = 15;
    const MAX_RUNS: u64 = 3;
    let cluster = SimCluster::start(fleet(4, 0, 22)).await;
    let names = cluster.all_deployment_names().await;
    let config_maps = create_config_map(&cluster).await;
    let operator = Operator::start_with(
        &cluster.client,
        OperatorConfig {
            retry_delay: Duration::from_millis(200),
            min_restart_interval: SignedDuration::from_secs(INTERVAL_SECONDS as i64),
            ..Default::default()
        },
    );
    cluster
        .create_refresh(
            "flapping",
            json!({"selector": {}, "runOnCreate": false, "triggerSettle": "1s",
                   "maxRunsPerHour": MAX_RUNS, "configMapTriggers": [{"name": CONFIG_MAP}]}),
        )
        .await;
    wait_for_baseline(&cluster, "flapping").await;

    let mut ticks = tokio::time::interval(Duration::from_secs(2));
    let mut waits_seen = 0;
    for value in 1..=30 {
        ticks.tick().await;
        change(&config_maps, value).await;
        let status = cluster.status("flapping").await.unwrap_or_default();
        if status.waiting.as_ref().is_some_and(|w| w.reason == "RestartInterval") {
            waits_seen += 1;
        }
    }
    let stalled = wait_for(DEADLINE, "the RestartStorm stall", || async {
        cluster
            .status("flapping")
            .await
            .filter(|s| condition(s, "Stalled").is_some_and(|(reason, _)| reason == "RestartStorm"))
    })
    .await;
    let (_, message) = condition(&stalled, "Stalled").expect("Stalled");
    assert!(message.contains("ConfigMap arcgis/proxy changed"), "{message}");
    assert_eq!(runs(&stalled), MAX_RUNS, "{:?}", stalled.history);
    assert!(waits_seen > 0, "runs waited out the interval (RestartInterval)");
    assert_template_changes(&cluster.sim, &names, MAX_RUNS);
    let gaps = |patches: &BTreeMap<String, Vec<u64>>| -> Vec<u64> {
        patches.values().flat_map(|times| times.windows(2).map(|pair| pair[1] - pair[0])).collect()
    };
    let unforced = gaps(&restart_patches(&cluster));
    let shortest = unforced.iter().copied().min().expect("restarted more than once");
    assert!(
        shortest >= INTERVAL_SECONDS * 1000,
        "a Deployment restarted twice within {INTERVAL_SECONDS} s: {unforced:?} ms"
    );
    println!(
        "figure: ConfigMap changed every 2 s for 60 s (30 changes), triggerSettle 1s, \
         maxRunsPerHour {MAX_RUNS}, --min-restart-interval {INTERVAL_SECONDS}s: {} runs, then \
         Stalled/RestartStorm; shortest gap between two restarts of a Deployment {:.1} s",
        runs(&stalled),
        shortest as f64 / 1000.0
    );

    // A person acts: a run request (forced here, as `servicerefresh start --force` sends it)
    // starts a run at once and clears the storm.
    let forced_at = Instant::now();
    let request = Patch::Merge(json!({"metadata": {"annotations": {
        "gisops.io/run-requested-at": "after-the-storm", "gisops.io/force": "true"}}}));
    cluster.refreshes().patch("flapping", &PatchParams::default(), &request).await.expect("ask");
    let cleared = wait_for(DEADLINE, "the forced run to end", || async {
        cluster.status("flapping").await.filter(|s| {
            runs(s) == MAX_RUNS + 1 && s.run.as_ref().is_some_and(|run| run.end_time.is_some())
        })
    })
    .await;
    operator.stop().await;
    assert_eq!(cleared.phase, Some(Phase::Succeeded));
    assert!(cleared.run.as_ref().is_some_and(|run| run.force && run.reason == "RunRequested"));
    assert_eq!(condition(&cleared, "Stalled").map(|(reason, _)| reason), Some("Succeeded"));
    assert_eq!(cleared.triggers.storm, None);
    assert_template_changes(&cluster.sim, &names, MAX_RUNS + 1);
    println!(
        "figure: the forced run after the storm restarted the fleet {:.1} s after the request",
        forced_at.elapsed().as_secs_f64()
    );
    cluster.sim.shutdown().await;
}

/// `HH:MM:SS` of `at` in UTC.
fn clock(at: Timestamp) -> String {
    at.to_zoned(jiff::tz::TimeZone::UTC).strftime("%H:%M:%S").to_string()
}

fn inside(at: Timestamp, windows: &[(Timestamp, Timestamp)]) -> bool {
    windows.iter().any(|(start, end)| *start <= at && at < *end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_keeps_to_its_windows_across_an_operator_sigkill() {
    const DEPLOYMENTS: usize = 8;
    let cluster = SimCluster::start(SimConfig {
        deployments: DEPLOYMENTS,
        rollout_ms: 2000,
        rollout_jitter_ms: 0,
        progress_deadline_seconds: 60,
        seed: 23,
        ..SimConfig::default()
    })
    .await;
    let names = cluster.all_deployment_names().await;
    let kubeconfig = Kubeconfig::for_sim(&cluster.sim);
    let flags = ["--leader-election=false", "--min-restart-interval=0s"];
    let mut operator = OperatorProcess::spawn(&kubeconfig.path, "op-1", &flags);

    // Two windows a few seconds from now: the first too short for the whole run.
    let now = Timestamp::now().round(jiff::Unit::Second).expect("rounds");
    let first = (now + SignedDuration::from_secs(10), now + SignedDuration::from_secs(15));
    let second = (now + SignedDuration::from_secs(30), now + SignedDuration::from_secs(90));
    let windows = [first, second];
    cluster
        .create_refresh(
            "windows",
            json!({"selector": {}, "batchSize": 2, "schedule": {"timeZone": "UTC", "windows": [
                {"start": clock(first.0), "end": clock(first.1)},
                {"start": clock(second.0), "end": clock(second.1)},
            ]}}),
        )
        .await;

    // Created outside the windows: the run waits for the first one.
    let waiting = wait_for(DEADLINE, "the wait for the first window", || async {
        cluster.status("windows").await.filter(|s| s.waiting.is_some())
    })
    .await;
    let wait = waiting.waiting.as_ref().expect("waiting");
    assert_eq!(wait.reason, "OutsideWindow");
    assert_eq!(wait.until.as_ref().map(|t| t.0), Some(first.0));
    assert_eq!((waiting.phase, waiting.run.as_ref()), (Some(Phase::Pending), None));
    let kubectl = common::kubectl::Kubectl::for_sim(&cluster.sim);
    let table = kubectl.ok(&["get", "servicerefresh", "windows"]).await;
    assert!(table.contains("REASON") && table.contains("OutsideWindow"), "{table}");

    // SIGKILL during the wait; the successor holds the same wait from the status.
    operator.kill9();
    operator = OperatorProcess::spawn(&kubeconfig.path, "op-2", &flags);
    let paused = wait_for(DEADLINE, "the pause after the first window", || async {
        cluster.status("windows").await.filter(|s| {
            s.run.is_some()
                && s.waiting.as_ref().is_some_and(|w| {
                    w.reason == "OutsideWindow" && w.until.as_ref().is_some_and(|t| t.0 == second.0)
                })
        })
    })
    .await;
    let started = paused.run.as_ref().and_then(|run| run.start_time.as_ref()).map(|t| t.0);
    assert!(started.is_some_and(|at| inside(at, &windows)), "the run started at {started:?}");
    let restarted_in_first = paused.totals.restarted as usize;
    assert!(
        (1..DEPLOYMENTS).contains(&restarted_in_first),
        "the first window restarted part of the fleet: {:?}",
        paused.totals
    );
    assert_eq!(paused.phase, Some(Phase::Running));

    // SIGKILL during the pause: the next window resumes the run where it stopped.
    operator.kill9();
    operator = OperatorProcess::spawn(&kubeconfig.path, "op-3", &flags);
    let ended = cluster.wait_for_run_end("windows", DEADLINE).await;
    operator.signal("TERM");
    assert!(operator.wait_exit(Duration::from_secs(30)).await.success(), "a clean exit");
    assert_eq!(ended.phase, Some(Phase::Succeeded), "{:?}", ended.run);
    assert_eq!(runs(&ended), 1);
    assert_template_changes(&cluster.sim, &names, 1);
    for batch in &ended.batches {
        let start = batch.start_time.as_ref().map(|t| t.0).expect("a started batch");
        assert!(inside(start, &windows), "batch {} started at {start}, outside", batch.index);
    }
    println!(
        "figure: {DEPLOYMENTS} Deployments in batches of 2 with 2 s rollouts: {restarted_in_first} \
         restarted in the 5 s window, the rest in the next; {} batches, each started inside a window",
        ended.batches.len()
    );
    cluster.sim.shutdown().await;
}
