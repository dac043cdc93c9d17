//! What an operator process tells the outside about itself: its /metrics (parsed as
//! OpenMetrics, and matched against a run's status), and its probes.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::process::{Kubeconfig, OperatorProcess, SHORT_LEASE, http_get};
use common::{SimCluster, wait_for};
use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use serde_json::json;
use servicerefresh_core::crd::Phase;
use servicerefresh_sim::{FaultConfig, SimConfig};

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

async fn scrape(address: SocketAddr) -> Exposition {
    let (code, text) =
        http_get(&format!("http://{address}/metrics")).await.expect("/metrics answers");
    assert_eq!(code, 200, "{text}");
    openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|error| panic!("/metrics is not valid OpenMetrics ({error:?}):\n{text}"))
}

/// Every sample of a family: its labels and value.
fn samples(
    metrics: &Exposition,
    family: &str,
) -> Vec<(BTreeMap<String, String>, OpenMetricsValue)> {
    let Some(family) = metrics.families.get(family) else {
        return Vec::new();
    };
    family
        .iter_samples()
        .map(|sample| {
            let labels = sample
                .get_labelset()
                .map(|set| set.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            (labels, sample.value.clone())
        })
        .collect()
}

/// A counter's or gauge's values by the value of one label.
fn by_label(metrics: &Exposition, family: &str, label: &str) -> BTreeMap<String, f64> {
    let mut values = BTreeMap::new();
    for (labels, value) in samples(metrics, family) {
        let number = match value {
            OpenMetricsValue::Counter(counter) => counter.value.as_f64(),
            OpenMetricsValue::Gauge(gauge) => gauge.as_f64(),
            other => panic!("{family} is not a counter or gauge: {other:?}"),
        };
        *values.entry(labels.get(label).cloned().unwrap_or_default()).or_default() += number;
    }
    values
}

fn nonzero(values: BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    values.into_iter().filter(|(_, value)| *value != 0.0).collect()
}

fn single(metrics: &Exposition, family: &str) -> f64 {
    by_label(metrics, family, "").values().sum()
}

fn histogram_count(metrics: &Exposition, family: &str) -> u64 {
    samples(metrics, family)
        .into_iter()
        .map(|(_, value)| match value {
            OpenMetricsValue::Histogram(histogram) => histogram.count.unwrap_or_default(),
            other => panic!("{family} is not a histogram: {other:?}"),
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_count_what_the_run_did() {
    let cluster = SimCluster::start(SimConfig {
        deployments: 30,
        fail: 2,
        rollout_ms: 150,
        rollout_jitter_ms: 100,
        progress_deadline_seconds: 1,
        seed: 5,
        ..SimConfig::default()
    })
    .await;
    let kubeconfig = Kubeconfig::for_sim(&cluster.sim);
    let mut operator = OperatorProcess::spawn(&kubeconfig.path, "op-metrics", SHORT_LEASE);
    let address = operator.metrics_address().await;
    cluster
        .create_refresh("fleet", json!({"selector": {}, "batchSize": 7, "batchTimeout": "1m"}))
        .await;
    let status = cluster.wait_for_run_end("fleet", Duration::from_secs(120)).await;
    assert_eq!(status.phase, Some(Phase::Failed), "two Deployments are built to fail");

    // The counters follow the status write they belong to: wait for the run's end there.
    let metrics = wait_for(Duration::from_secs(30), "the run's end in /metrics", || async {
        let metrics = scrape(address).await;
        (single(&metrics, "servicerefresh_runs_finished") == 1.0).then_some(metrics)
    })
    .await;

    let started = nonzero(by_label(&metrics, "servicerefresh_runs_started", "reason"));
    assert_eq!(started, BTreeMap::from([("Created".to_owned(), 1.0)]));
    let finished = by_label(&metrics, "servicerefresh_runs_finished", "result");
    assert_eq!(finished.len(), 3, "every result has its series from the start: {finished:?}");
    assert_eq!(nonzero(finished), BTreeMap::from([("Failed".to_owned(), 1.0)]));

    let restarts = by_label(&metrics, "servicerefresh_restarts", "result");
    let count = |result: &str| restarts.get(result).copied().unwrap_or_default();
    assert_eq!(count("Ready"), f64::from(status.totals.ready), "{restarts:?}");
    assert_eq!(
        count("Failed") + count("TimedOut") + count("Gone"),
        f64::from(status.totals.failed),
        "{restarts:?}"
    );
    assert_eq!(count("Skipped"), f64::from(status.totals.skipped), "{restarts:?}");
    assert_eq!(restarts.values().sum::<f64>(), f64::from(status.totals.services));

    let batches = status.batches.len() as u64;
    assert_eq!(batches, 5);
    assert_eq!(histogram_count(&metrics, "servicerefresh_batch_duration_seconds"), batches);
    // Each later batch started in the pass that completed the one before it.
    assert_eq!(histogram_count(&metrics, "servicerefresh_batch_handoff_seconds"), batches - 1);
    assert!(histogram_count(&metrics, "servicerefresh_reconcile_duration_seconds") > 0);

    assert_eq!(single(&metrics, "servicerefresh_leader"), 1.0);
    assert_eq!(single(&metrics, "servicerefresh_runs_active"), 0.0);
    assert_eq!(single(&metrics, "servicerefresh_runs_queued"), 0.0);

    // Requests by verb and code: the 30 restart patches and the status writes among them.
    let patches: f64 = samples(&metrics, "servicerefresh_api_requests")
        .into_iter()
        .filter(|(labels, _)| labels.get("verb").map(String::as_str) == Some("patch"))
        .filter(|(labels, _)| labels.get("code").map(String::as_str) == Some("200"))
        .map(|(_, value)| match value {
            OpenMetricsValue::Counter(counter) => counter.value.as_f64(),
            other => panic!("not a counter: {other:?}"),
        })
        .sum();
    assert!(patches >= 30.0, "{patches} successful patches");
    assert!(by_label(&metrics, "servicerefresh_api_requests", "verb").contains_key("watch"));

    for family in [
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_threads",
        "process_start_time_seconds",
    ] {
        assert!(
            metrics.families.contains_key(family),
            "{family} missing: {:?}",
            metrics.families.keys()
        );
    }

    // One structured line per lifecycle step, its identifiers as JSON fields.
    let run_id = status.run.as_ref().map(|run| run.id.clone()).expect("a run");
    for (message, fields, count) in [
        ("leadership acquired", &["identity", "lease", "term"][..], 1),
        ("run started", &["servicerefresh", "run", "reason", "services", "batches"][..], 1),
        ("batch started", &["servicerefresh", "run", "batch", "services"][..], 5),
        (
            "batch finished",
            &["servicerefresh", "run", "batch", "ready", "failed", "seconds"][..],
            5,
        ),
        ("service failed", &["servicerefresh", "run", "batch", "deployment", "reason"][..], 2),
        ("run finished", &["servicerefresh", "run", "phase", "ready", "failed", "summary"][..], 1),
    ] {
        let lines = operator.logged(message);
        assert_eq!(lines.len(), count, "{message}: {lines:?}");
        for line in lines {
            for field in fields {
                assert!(!line[*field].is_null(), "{message} has no {field}: {line}");
            }
            if !line["run"].is_null() {
                assert_eq!(line["run"], run_id.as_str());
                assert_eq!(line["servicerefresh"], "arcgis/fleet");
            }
            // Span data once: the span list, without the current span repeated beside it.
            assert!(line.get("span").is_none(), "{message} repeats its span: {line}");
        }
    }
    let started = &operator.logged("run started")[0];
    let spans = started["spans"].as_array().expect("a reconcile's line lists its spans");
    assert_eq!(spans.len(), 1, "{started}");
    assert_eq!(spans[0]["name"], "reconciling object", "{started}");
    assert_eq!(spans[0]["object.ref"], "ServiceRefresh.v1alpha1.gisops.io/fleet.arcgis");

    operator.signal("TERM");
    assert!(operator.wait_exit(Duration::from_secs(30)).await.success());
    assert_eq!(operator.logged("leadership given up").len(), 1, "on SIGTERM");
    assert_eq!(operator.logged("leader Lease released").len(), 1, "on SIGTERM");
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_why_until_the_caches_have_synced_and_healthz_answers() {
    let cluster = SimCluster::start(SimConfig { deployments: 5, ..SimConfig::default() }).await;
    // Every LIST (and every other API request) is answered after 3 s.
    cluster.sim.set_faults(FaultConfig { latency_ms: 3_000, ..FaultConfig::default() });
    let kubeconfig = Kubeconfig::for_sim(&cluster.sim);
    let operator =
        OperatorProcess::spawn(&kubeconfig.path, "op-probes", &["--leader-election=false"]);
    let address = operator.metrics_address().await;
    let readyz = format!("http://{address}/readyz");

    let (code, reason) = http_get(&readyz).await.expect("answers");
    assert_eq!(code, 503);
    assert!(reason.starts_with("not ready: "), "{reason}");
    let (code, _) = http_get(&format!("http://{address}/healthz")).await.expect("answers");
    assert_eq!(code, 200, "the runtime answers while it starts");
    // Past the start-up checks, it is the caches it waits for, and it says which.
    let (code, reason) =
        wait_for(Duration::from_secs(60), "/readyz to name the caches", || async {
            http_get(&readyz).await.filter(|(_, reason)| reason.contains("watch caches"))
        })
        .await;
    assert_eq!(code, 503);
    assert!(reason.contains("Deployments"), "{reason}");
    let (code, _) = http_get(&format!("http://{address}/healthz")).await.expect("answers");
    assert_eq!(code, 200, "the runtime answers while the caches fill");

    // Past start-up, the caches are what it waits for.
    cluster.sim.set_faults(FaultConfig::default());
    let (_, body) = wait_for(Duration::from_secs(60), "/readyz to turn 200", || async {
        http_get(&readyz).await.filter(|(code, _)| *code == 200)
    })
    .await;
    assert_eq!(body, "ok\n");
    let (code, _) = http_get(&format!("http://{address}/healthz")).await.expect("answers");
    assert_eq!(code, 200);
    drop(operator);
    cluster.sim.shutdown().await;
}
