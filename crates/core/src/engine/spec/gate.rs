//! `spec.healthGate`: its timeout (the same duration grammar and range as `batchTimeout`),
//! at least one check, URLs the operator can ask, matchers present and thresholds that are
//! numbers. Whether an endpoint answers is the check's business, not the spec's.

use jiff::SignedDuration;

use super::{SpecError, duration::parse_batch_timeout};
use crate::crd::HealthGate;

/// A health gate that passed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidHealthGate {
    pub timeout: SignedDuration,
    /// `spec.healthGate.timeout` as written, for messages.
    pub timeout_text: String,
}

pub(super) fn validate_gate(gate: &HealthGate) -> Result<ValidHealthGate, SpecError> {
    let field = |name: &str| format!("spec.healthGate.{name}");
    let timeout = parse_batch_timeout(&gate.timeout).map_err(|error| {
        let problem = match error {
            SpecError::DurationTooShort(_) => "is too short; the minimum is 5s",
            SpecError::DurationTooLong(_) => "is too long; the maximum is 168h (one week)",
            _ => "is not a duration such as 90s, 10m or 1h30m",
        };
        SpecError::field(field("timeout"), format!("{:?} {problem}", gate.timeout))
    })?;
    if gate.prometheus.is_none() && gate.alertmanager.is_none() {
        return Err(SpecError::field(
            "spec.healthGate",
            "names no check; set prometheus, alertmanager or both",
        ));
    }
    if let Some(prometheus) = &gate.prometheus {
        check_url(&field("prometheus.url"), prometheus.url.as_deref())?;
        if prometheus.query.trim().is_empty() {
            return Err(SpecError::field(field("prometheus.query"), "must not be empty"));
        }
        if prometheus.threshold.is_some_and(|threshold| !threshold.is_finite()) {
            return Err(SpecError::field(field("prometheus.threshold"), "must be a finite number"));
        }
    }
    if let Some(alertmanager) = &gate.alertmanager {
        check_url(&field("alertmanager.url"), alertmanager.url.as_deref())?;
        for (index, matcher) in alertmanager.matchers.iter().enumerate() {
            if matcher.trim().is_empty() {
                return Err(SpecError::field(
                    field(&format!("alertmanager.matchers[{index}]")),
                    "must not be empty; write a matcher such as severity=\"critical\"",
                ));
            }
        }
    }
    Ok(ValidHealthGate { timeout, timeout_text: gate.timeout.clone() })
}

pub(super) fn check_url(field: &str, url: Option<&str>) -> Result<(), SpecError> {
    match url {
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
            Err(SpecError::field(field, format!("{url:?} is not an http:// or https:// URL")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(json: serde_json::Value) -> HealthGate {
        serde_json::from_value(json).expect("a gate")
    }

    fn problem(json: serde_json::Value) -> String {
        validate_gate(&gate(json)).expect_err("refused").to_string()
    }

    #[test]
    fn a_gate_with_a_check_and_a_timeout_is_valid() {
        let valid = validate_gate(&gate(serde_json::json!({
            "timeout": "5m",
            "prometheus": {"url": "http://prometheus:9090", "query": "up == 0"},
            "alertmanager": {"matchers": ["severity=\"critical\""]},
        })))
        .expect("valid");
        assert_eq!(valid.timeout, SignedDuration::from_mins(5));
        let default_timeout =
            validate_gate(&gate(serde_json::json!({"alertmanager": {}}))).expect("valid");
        assert_eq!(default_timeout.timeout_text, "10m");
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(
            problem(serde_json::json!({"timeout": "5 minutes", "alertmanager": {}})),
            "spec.healthGate.timeout: \"5 minutes\" is not a duration such as 90s, 10m or 1h30m"
        );
        assert_eq!(
            problem(serde_json::json!({"timeout": "1s", "alertmanager": {}})),
            "spec.healthGate.timeout: \"1s\" is too short; the minimum is 5s"
        );
        assert_eq!(
            problem(serde_json::json!({"timeout": "5m"})),
            "spec.healthGate: names no check; set prometheus, alertmanager or both"
        );
        assert_eq!(
            problem(serde_json::json!({"prometheus": {"url": "prometheus:9090", "query": "up"}})),
            "spec.healthGate.prometheus.url: \"prometheus:9090\" is not an http:// or https:// URL"
        );
        assert_eq!(
            problem(serde_json::json!({"prometheus": {"query": "  "}})),
            "spec.healthGate.prometheus.query: must not be empty"
        );
        assert!(
            problem(serde_json::json!({"alertmanager": {"matchers": ["a=\"b\"", ""]}}))
                .starts_with("spec.healthGate.alertmanager.matchers[1]: must not be empty")
        );
    }
}
