//! The Alertmanager check: the active alerts (`/api/v2/alerts`, neither silenced nor
//! inhibited) matching every matcher, which Alertmanager filters itself. It passes when
//! there is none; the matching alerts, by name and labels, are the check's detail.

use std::collections::BTreeMap;

use serde::Deserialize;
use servicerefresh_core::crd::AlertmanagerCheck;
use servicerefresh_core::engine::health_gate::{CheckResult, GateCheck};

use super::{Endpoint, error_chain, excerpt, failed, label_set};

/// Alerts a message lists; the rest are counted.
const LISTED_ALERTS: usize = 3;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: Option<String>,
}

pub(super) async fn check(endpoint: &Endpoint, check: &AlertmanagerCheck) -> CheckResult {
    let mut query = vec![("active", "true"), ("silenced", "false"), ("inhibited", "false")];
    query.extend(check.matchers.iter().map(|matcher| ("filter", matcher.as_str())));
    let base = &endpoint.base;
    let response = match endpoint.get("/api/v2/alerts").query(&query).send().await {
        Ok(response) => response,
        Err(error) => {
            return failed(
                GateCheck::Alertmanager,
                format!("Alertmanager at {base} is unreachable: {}", error_chain(&error)),
            );
        }
    };
    let code = response.status();
    let body = match response.text().await {
        Ok(body) => body,
        Err(error) => {
            return failed(
                GateCheck::Alertmanager,
                format!("Alertmanager at {base} broke off its answer: {}", error_chain(&error)),
            );
        }
    };
    match serde_json::from_str::<Vec<Alert>>(&body) {
        Ok(alerts) if code.is_success() => judge(&check.matchers, &alerts),
        _ => failed(
            GateCheck::Alertmanager,
            format!("Alertmanager at {base} answered HTTP {code}: {}", excerpt(&body)),
        ),
    }
}

fn judge(matchers: &[String], alerts: &[Alert]) -> CheckResult {
    let matching = if matchers.is_empty() {
        "active alerts".to_owned()
    } else {
        format!("active alerts matching {}", matchers.join(", "))
    };
    if alerts.is_empty() {
        return CheckResult {
            check: GateCheck::Alertmanager,
            passed: true,
            detail: format!("no {matching}"),
        };
    }
    let mut listed: Vec<String> = alerts
        .iter()
        .take(LISTED_ALERTS)
        .map(|alert| {
            let mut labels = alert.labels.clone();
            let name = labels.remove("alertname").unwrap_or_default();
            let since =
                alert.starts_at.as_deref().map(|at| format!(" since {at}")).unwrap_or_default();
            format!("{name}{}{since}", label_set(&labels))
        })
        .collect();
    if alerts.len() > LISTED_ALERTS {
        listed.push(format!("and {} more", alerts.len() - LISTED_ALERTS));
    }
    failed(GateCheck::Alertmanager, format!("{} {matching}: {}", alerts.len(), listed.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_alert_passes_and_matching_alerts_are_named() {
        let matchers = vec!["severity=\"critical\"".to_owned()];
        assert_eq!(judge(&matchers, &[]).detail, "no active alerts matching severity=\"critical\"");
        let alerts: Vec<Alert> = serde_json::from_str(
            r#"[{"labels":{"alertname":"SimHighErrorRate","deployment":"svc-0","severity":"critical"},
                 "startsAt":"2026-12-07T08:00:00Z","status":{"state":"active"}}]"#,
        )
        .expect("alerts");
        let result = judge(&matchers, &alerts);
        assert!(!result.passed);
        assert_eq!(
            result.detail,
            "1 active alerts matching severity=\"critical\": \
             SimHighErrorRate{deployment=\"svc-0\", severity=\"critical\"} since 2026-12-07T08:00:00Z"
        );
    }
}
