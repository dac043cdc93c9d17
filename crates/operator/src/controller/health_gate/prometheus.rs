//! The Prometheus check: one instant query through `/api/v1/query`. It passes when the
//! result is empty or every sample is below the threshold; without a threshold any sample
//! fails it. The failing samples, labels and values, are the check's detail.

use std::collections::BTreeMap;

use serde::Deserialize;
use servicerefresh_core::crd::PrometheusCheck;
use servicerefresh_core::engine::health_gate::{CheckResult, GateCheck};

use super::{Endpoint, error_chain, excerpt, failed, label_set};

/// Samples a message lists by name; the rest are counted.
const LISTED_SAMPLES: usize = 5;

/// The API's envelope: `{"status": "success", "data": …}` or `{"status": "error", …}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<QueryData>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "camelCase")]
enum QueryData {
    Vector(Vec<VectorSample>),
    Scalar((f64, String)),
    Matrix(serde_json::Value),
    String(serde_json::Value),
}

#[derive(Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

pub(super) async fn check(endpoint: &Endpoint, check: &PrometheusCheck) -> CheckResult {
    let request = endpoint.get("/api/v1/query").query(&[("query", check.query.as_str())]);
    let base = &endpoint.base;
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            return failed(
                GateCheck::Prometheus,
                format!("Prometheus at {base} is unreachable: {}", error_chain(&error)),
            );
        }
    };
    let code = response.status();
    let body = match response.text().await {
        Ok(body) => body,
        Err(error) => {
            return failed(
                GateCheck::Prometheus,
                format!("Prometheus at {base} broke off its answer: {}", error_chain(&error)),
            );
        }
    };
    let Ok(envelope) = serde_json::from_str::<Envelope>(&body) else {
        return failed(
            GateCheck::Prometheus,
            format!("Prometheus at {base} answered HTTP {code}: {}", excerpt(&body)),
        );
    };
    judge(&check.query, check.threshold, envelope)
}

fn judge(query: &str, threshold: Option<f64>, envelope: Envelope) -> CheckResult {
    let fail = |detail: String| failed(GateCheck::Prometheus, detail);
    if envelope.status != "success" {
        return fail(format!(
            "query `{query}` failed: {}: {}",
            envelope.error_type.unwrap_or_default(),
            envelope.error.unwrap_or_default()
        ));
    }
    let samples: Vec<(String, f64)> = match envelope.data {
        Some(QueryData::Vector(samples)) => samples
            .into_iter()
            .map(|sample| (label_set(&sample.metric), parse_value(&sample.value.1)))
            .collect(),
        Some(QueryData::Scalar((_, value))) => vec![("scalar".to_owned(), parse_value(&value))],
        Some(QueryData::Matrix(series)) => {
            let count = series.as_array().map_or(0, Vec::len);
            return fail(format!(
                "query `{query}` returns a range vector ({count} series); write an instant \
                 vector or a scalar"
            ));
        }
        Some(QueryData::String(value)) => {
            return fail(format!("query `{query}` returns a string, not a number: {value}"));
        }
        None => return fail(format!("query `{query}` returned no data")),
    };
    // NaN is never below a threshold: a sample Prometheus cannot compute is no all-clear.
    let failing: Vec<&(String, f64)> = samples
        .iter()
        .filter(|(_, value)| {
            threshold.is_none_or(|threshold| value.is_nan() || *value >= threshold)
        })
        .collect();
    if failing.is_empty() {
        let detail = match (samples.len(), threshold) {
            (0, _) => format!("query `{query}` returned no sample"),
            (count, Some(threshold)) => {
                format!("query `{query}` returned {count} samples, all below {threshold}")
            }
            (count, None) => format!("query `{query}` returned {count} samples"),
        };
        return CheckResult { check: GateCheck::Prometheus, passed: true, detail };
    }
    let mut listed: Vec<String> = failing
        .iter()
        .take(LISTED_SAMPLES)
        .map(|(labels, value)| format!("{labels} {value}"))
        .collect();
    if failing.len() > LISTED_SAMPLES {
        listed.push(format!("and {} more", failing.len() - LISTED_SAMPLES));
    }
    let count = failing.len();
    let noun = if count == 1 { "sample" } else { "samples" };
    let bound = threshold.map(|threshold| format!(" at or above {threshold}")).unwrap_or_default();
    fail(format!("query `{query}` returned {count} {noun}{bound}: {}", listed.join(", ")))
}

/// A sample value as the API writes it: a decimal, `NaN`, `+Inf` or `-Inf`.
fn parse_value(text: &str) -> f64 {
    match text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => text.parse().unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(json: &str) -> Envelope {
        serde_json::from_str(json).expect("an API answer")
    }

    #[test]
    fn an_empty_result_passes_and_samples_fail_without_a_threshold() {
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(judge("q", None, envelope(empty)).passed);
        let one = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"deployment":"svc-0","namespace":"arcgis"},"value":[1.5,"2.5"]}]}}"#;
        let result = judge("q", None, envelope(one));
        assert!(!result.passed);
        assert_eq!(
            result.detail,
            r#"query `q` returned 1 sample: {deployment="svc-0", namespace="arcgis"} 2.5"#
        );
    }

    #[test]
    fn a_threshold_fails_only_the_samples_at_or_above_it() {
        let two = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"errors","deployment":"a"},"value":[1,"0.5"]},
            {"metric":{"deployment":"b"},"value":[1,"0.01"]}]}}"#;
        let result = judge("q", Some(0.5), envelope(two));
        assert_eq!(
            result.detail,
            r#"query `q` returned 1 sample at or above 0.5: errors{deployment="a"} 0.5"#
        );
        let below = judge("q", Some(1.0), envelope(two));
        assert!(below.passed);
        assert_eq!(below.detail, "query `q` returned 2 samples, all below 1");
    }

    #[test]
    fn scalars_nan_and_errors_are_judged_too() {
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#;
        assert!(!judge("q", Some(1.0), envelope(scalar)).passed, "NaN is no all-clear");
        let error = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(
            judge("q(", None, envelope(error)).detail,
            "query `q(` failed: bad_data: parse error"
        );
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(judge("q[1m]", None, envelope(matrix)).detail.contains("range vector"));
    }
}
