//! Whole-spec validation: each kind of bad field, and the namespaces a resource may reach.

use super::*;
use crate::crd::ConfigMapTrigger;

fn spec() -> ServiceRefreshSpec {
    serde_json::from_value(serde_json::json!({"selector": {}})).expect("minimal spec parses")
}

fn same_namespace_only() -> OperatorScope {
    OperatorScope::default()
}

fn error(spec: &ServiceRefreshSpec) -> String {
    validate(spec, "arcgis", &same_namespace_only()).unwrap_err().to_string()
}

#[test]
fn validate_reports_each_kind_of_bad_field() {
    let mut bad_pattern = spec();
    bad_pattern.name_patterns = vec!["ok-*".to_owned(), "Arc_*".to_owned()];
    assert!(error(&bad_pattern).starts_with("spec.namePatterns[1]: \"Arc_*\" contains 'A'"));

    let mut bad_namespace = spec();
    bad_namespace.namespaces = vec!["arcgis".to_owned(), "Arcgis".to_owned()];
    assert!(
        error(&bad_namespace).starts_with("spec.namespaces[1]: \"Arcgis\" is not a valid name")
    );

    let mut bad_exclude = spec();
    bad_exclude.exclude = vec!["".to_owned()];
    assert_eq!(error(&bad_exclude), "spec.exclude[0]: \"\" must be 1 to 253 characters long");

    let mut bad_trigger = spec();
    bad_trigger.config_map_triggers = vec![ConfigMapTrigger {
        name: "proxy".to_owned(),
        namespace: None,
        keys: vec!["a b".to_owned()],
    }];
    assert!(error(&bad_trigger).starts_with("spec.configMapTriggers[0].keys[0]:"));

    let mut bad_size = spec();
    bad_size.batch_size = 0;
    assert_eq!(error(&bad_size), "spec.batchSize: 0 is outside the range 1 to 100");

    let mut bad_timeout = spec();
    bad_timeout.batch_timeout = "10x".to_owned();
    assert_eq!(
        validate(&bad_timeout, "arcgis", &same_namespace_only()),
        Err(SpecError::MalformedDuration("10x".to_owned()))
    );
    assert_eq!(SpecError::MalformedDuration("10x".to_owned()).reason(), "InvalidSpec");
}

#[test]
fn valid_spec_resolves_scope() {
    let mut spec = spec();
    spec.name_patterns = vec!["arcgis-*".to_owned()];
    spec.exclude = vec!["arcgis-keep".to_owned()];
    let valid = validate(&spec, "own", &same_namespace_only()).expect("valid");
    assert_eq!(valid.batch_size.get(), 10);
    assert_eq!(valid.batch_timeout, SignedDuration::from_mins(10));
    assert_eq!(valid.namespaces, BTreeSet::from(["own".to_owned()]));
    assert!(valid.name_in_scope("arcgis-map"));
    assert!(!valid.name_in_scope("arcgis-keep"));
    assert!(!valid.name_in_scope("other"));
    assert_eq!(
        valid.describe_selection(),
        "selector {} (every Deployment) in namespace(s) own, name patterns arcgis-*, excluding arcgis-keep"
    );
}

#[test]
fn other_namespaces_need_the_operator_flag() {
    let mut cross = spec();
    cross.namespaces = vec!["kube-system".to_owned()];
    let refused = validate(&cross, "arcgis", &same_namespace_only()).unwrap_err();
    assert_eq!(refused.reason(), "CrossNamespaceRefused");
    assert_eq!(
        refused.to_string(),
        "spec.namespaces[0]: namespace \"kube-system\" is not this ServiceRefresh's namespace \
         \"arcgis\"; the operator refuses cross-namespace selection unless it runs with \
         --allow-cross-namespace"
    );
    let allowed =
        OperatorScope { watch_namespace: None, allow_cross_namespace: true, ..Default::default() };
    assert!(validate(&cross, "arcgis", &allowed).is_ok());

    // The own namespace, named explicitly, is always fine.
    let mut own = spec();
    own.namespaces = vec!["arcgis".to_owned()];
    assert!(validate(&own, "arcgis", &same_namespace_only()).is_ok());

    let mut trigger_elsewhere = spec();
    trigger_elsewhere.config_map_triggers = vec![ConfigMapTrigger {
        name: "proxy".to_owned(),
        namespace: Some("tls".to_owned()),
        keys: vec![],
    }];
    let refused = validate(&trigger_elsewhere, "arcgis", &same_namespace_only()).unwrap_err();
    assert_eq!(refused.reason(), "CrossNamespaceRefused");
    assert!(refused.to_string().starts_with("spec.configMapTriggers[0].namespace:"));
}

#[test]
fn namespaces_outside_the_watched_one_are_reported_as_invisible() {
    let watching = OperatorScope {
        watch_namespace: Some("arcgis".to_owned()),
        allow_cross_namespace: true,
        ..Default::default()
    };
    let mut other = spec();
    other.namespaces = vec!["other".to_owned()];
    let refused = validate(&other, "arcgis", &watching).unwrap_err();
    assert_eq!(refused.reason(), "NamespaceNotWatched");
    assert_eq!(
        refused.to_string(),
        "spec.namespaces[0]: the operator watches only namespace \"arcgis\" (--watch-namespace), \
         so it cannot see anything in namespace \"other\""
    );
    let mut trigger = spec();
    trigger.config_map_triggers = vec![ConfigMapTrigger {
        name: "proxy".to_owned(),
        namespace: Some("other".to_owned()),
        keys: vec![],
    }];
    assert_eq!(
        validate(&trigger, "arcgis", &watching).unwrap_err().reason(),
        "NamespaceNotWatched"
    );
}

#[test]
fn watched_config_maps_resolve_namespaces_once_and_merge() {
    let spec: ServiceRefreshSpec = serde_json::from_value(serde_json::json!({
        "selector": {},
        "configMapTriggers": [
            {"name": "proxy", "keys": ["b"]},
            {"name": "certs", "namespace": "tls", "keys": ["ca.crt"]},
            {"name": "proxy", "keys": ["a", "b"]},
            {"name": "all", "keys": ["x"]},
            {"name": "all"},
        ],
    }))
    .expect("spec parses");
    let watched = watched_config_maps(&spec, "arcgis");
    let summary: Vec<(String, Vec<String>)> =
        watched.iter().map(|entry| (entry.key.to_string(), entry.keys.clone())).collect();
    assert_eq!(
        summary,
        vec![
            ("arcgis/all".to_owned(), vec![]),
            ("arcgis/proxy".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
            ("tls/certs".to_owned(), vec!["ca.crt".to_owned()]),
        ]
    );
}

#[test]
fn pacing_fields_are_checked_and_parsed() {
    let parsed = validate(&spec(), "arcgis", &same_namespace_only()).expect("defaults are valid");
    assert_eq!(parsed.trigger_settle, SignedDuration::from_secs(5));
    assert_eq!(parsed.max_runs_per_hour, 6);
    assert_eq!(parsed.schedule, None);

    let mut storm = spec();
    storm.max_runs_per_hour = 11;
    assert_eq!(error(&storm), "spec.maxRunsPerHour: 11 is outside the range 1 to 10");
    storm.max_runs_per_hour = 0;
    assert!(error(&storm).starts_with("spec.maxRunsPerHour: 0 is outside"));

    let mut settle = spec();
    settle.trigger_settle = "2h".to_owned();
    assert!(error(&settle).starts_with("spec.triggerSettle: \"2h\" is too long"));

    let windowed: ServiceRefreshSpec = serde_json::from_value(serde_json::json!({
        "selector": {},
        "schedule": {"timeZone": "Europe/Nowhere", "windows": [{"start": "22:00", "end": "04:00"}]},
    }))
    .expect("parses");
    assert!(error(&windowed).starts_with("spec.schedule.timeZone: \"Europe/Nowhere\""));
}

#[test]
fn kinds_default_to_deployments_and_need_the_operator_to_watch_them() {
    let valid = validate(&spec(), "arcgis", &same_namespace_only()).expect("valid");
    assert_eq!(valid.kinds, BTreeSet::from([WorkloadKind::Deployment]));

    let mut mixed = spec();
    mixed.kinds = vec![WorkloadKind::Deployment, WorkloadKind::StatefulSet];
    let refused = validate(&mixed, "arcgis", &same_namespace_only()).unwrap_err();
    assert_eq!(refused.reason(), "KindNotWatched");
    assert_eq!(
        refused.to_string(),
        "spec.kinds[1]: the operator does not watch StatefulSets; it must run with \
         --workload-kinds including StatefulSet (the chart's workloadKinds values), which also \
         grants it the right to restart them"
    );
    let watching = OperatorScope {
        extra_kinds: BTreeSet::from([WorkloadKind::StatefulSet, WorkloadKind::DaemonSet]),
        ..OperatorScope::default()
    };
    let valid = validate(&mixed, "arcgis", &watching).expect("valid");
    assert_eq!(valid.kinds, BTreeSet::from([WorkloadKind::Deployment, WorkloadKind::StatefulSet]));
    // Another kind is another selection; a Deployment-only selection digests as before.
    let deployments_only = validate(&spec(), "arcgis", &watching).expect("valid");
    assert_ne!(valid.selection_digest(), deployments_only.selection_digest());
    // Pinned: a changed digest would make every running run's selection look edited.
    assert_eq!(deployments_only.selection_digest(), "fnv1a64-8f65b2da64a4dbf3");
    assert!(valid.describe_selection().ends_with(", kinds Deployment, StatefulSet"));
}

#[test]
fn secret_triggers_need_the_operator_to_watch_secrets_and_are_checked_like_config_maps() {
    let mut with_secret = spec();
    with_secret.secret_triggers =
        serde_json::from_value(serde_json::json!([{"name": "tls", "keys": ["tls.crt"]}]))
            .expect("triggers parse");
    let refused = validate(&with_secret, "arcgis", &same_namespace_only()).unwrap_err();
    assert_eq!(refused.reason(), "SecretsNotWatched");
    assert!(refused.to_string().contains("--secret-triggers"), "{refused}");

    let watching = OperatorScope { secret_triggers: true, ..same_namespace_only() };
    let valid = validate(&with_secret, "arcgis", &watching).expect("valid");
    assert_eq!(valid.secrets.len(), 1);
    assert_eq!(valid.secrets[0].source, crate::engine::spec::TriggerSource::Secret);
    assert_eq!(valid.secrets[0].key.to_string(), "arcgis/tls");
    assert_eq!(valid.secrets[0].keys, ["tls.crt"]);
    assert!(valid.config_maps.is_empty());

    let mut bad_key = with_secret.clone();
    bad_key.secret_triggers[0].keys = vec!["not a key".to_owned()];
    let refused = validate(&bad_key, "arcgis", &watching).unwrap_err();
    assert!(refused.to_string().starts_with("spec.secretTriggers[0].keys[0]:"), "{refused}");

    let mut elsewhere = with_secret;
    elsewhere.secret_triggers[0].namespace = Some("tls".to_owned());
    let refused = validate(&elsewhere, "arcgis", &watching).unwrap_err();
    assert_eq!(refused.reason(), "CrossNamespaceRefused");
    let everywhere = OperatorScope { allow_cross_namespace: true, ..watching };
    let valid = validate(&elsewhere, "arcgis", &everywhere).expect("valid");
    assert_eq!(valid.secrets[0].key.to_string(), "tls/tls");
}

#[test]
fn a_health_gate_timeout_out_of_range_says_which_bound_it_crossed() {
    let gated = |timeout: &str| -> ServiceRefreshSpec {
        serde_json::from_value(serde_json::json!({
            "selector": {},
            "healthGate": {"timeout": timeout,
                "prometheus": {"url": "http://prometheus:9090", "query": "up"}}
        }))
        .expect("spec parses")
    };
    assert_eq!(
        error(&gated("200h")),
        "spec.healthGate.timeout: \"200h\" is too long; the maximum is 168h (one week)"
    );
    assert_eq!(
        error(&gated("1s")),
        "spec.healthGate.timeout: \"1s\" is too short; the minimum is 5s"
    );
    assert_eq!(
        error(&gated("soon")),
        "spec.healthGate.timeout: \"soon\" is not a duration such as 90s, 10m or 1h30m"
    );
}

#[test]
fn a_prometheus_threshold_must_be_a_finite_number() {
    let mut gated: ServiceRefreshSpec = serde_json::from_value(serde_json::json!({
        "selector": {},
        "healthGate": {"timeout": "5m",
            "prometheus": {"url": "http://prometheus:9090", "query": "errors", "threshold": 0.5}}
    }))
    .expect("spec parses");
    assert!(validate(&gated, "arcgis", &same_namespace_only()).is_ok());
    // JSON has no infinity; a client building the spec in code does.
    if let Some(prometheus) = gated.health_gate.as_mut().and_then(|gate| gate.prometheus.as_mut()) {
        prometheus.threshold = Some(f64::INFINITY);
    }
    assert_eq!(error(&gated), "spec.healthGate.prometheus.threshold: must be a finite number");
}
