//! The chart's Grafana dashboard (charts/servicerefresh/dashboards/servicerefresh.json) queries
//! only what the operator exports: every metric name in every panel's PromQL is a sample name
//! of a family in the operator's registry (a counter's `_total`, a histogram's `_bucket`,
//! `_sum` and `_count`, a gauge's own name), and every family a user would chart has a panel.

use std::collections::BTreeSet;

use servicerefresh_operator::telemetry::Telemetry;

/// The sample names the operator's `/metrics` can carry.
fn exported_samples() -> BTreeSet<String> {
    let text = Telemetry::new().encode();
    let mut samples = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let mut words = rest.split_whitespace();
        let (Some(family), Some(kind)) = (words.next(), words.next()) else { continue };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        samples.extend(suffixes.iter().map(|suffix| format!("{family}{suffix}")));
    }
    samples
}

fn dashboard() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/charts/servicerefresh/dashboards/servicerefresh.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("the dashboard")).expect("JSON")
}

/// The metric names a PromQL expression reads: identifiers of ours (`servicerefresh_`,
/// `process_`), as PromQL's functions and label names never start that way.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with("servicerefresh_") || word.starts_with("process_"))
        .map(str::to_owned)
        .collect()
}

fn queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().unwrap_or_default().to_owned();
        for target in panel["targets"].as_array().expect("targets") {
            found.push((title.clone(), target["expr"].as_str().expect("an expr").to_owned()));
        }
    }
    found
}

#[test]
fn every_query_names_an_exported_metric() {
    let exported = exported_samples();
    assert!(exported.contains("servicerefresh_runs_started_total"), "{exported:?}");
    let queries = queries(&dashboard());
    assert!(queries.len() >= 10, "{queries:?}");
    for (title, expr) in &queries {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{title}: {expr} reads no metric of ours");
        for name in names {
            assert!(exported.contains(&name), "{title}: {name} is not exported ({exported:?})");
        }
    }
}

#[test]
fn every_operator_family_has_a_panel() {
    let read: BTreeSet<String> =
        queries(&dashboard()).iter().flat_map(|(_, expr)| metric_names(expr)).collect();
    let family = |sample: &str| {
        ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| sample.strip_suffix(suffix))
            .unwrap_or(sample)
            .to_owned()
    };
    let charted: BTreeSet<String> = read.iter().map(|sample| family(sample)).collect();
    for sample in exported_samples().iter().filter(|name| name.starts_with("servicerefresh_")) {
        assert!(charted.contains(&family(sample)), "no panel shows {sample}");
    }
}

#[test]
fn the_data_source_is_a_variable() {
    let dashboard = dashboard();
    for panel in dashboard["panels"].as_array().expect("panels") {
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{}", panel["title"]);
    }
}
