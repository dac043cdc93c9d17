//! What the spec decides: admission, invalid specs, tenancy, suspend, dry run, the
//! selection, exclusions, failure policies and edits during a run.

use serde_json::json;

use super::super::test_support::{ModelCluster, NS, at};
use super::super::*;
use super::{condition, events, reasons, results};
use crate::crd::{BatchPhase, Phase, ServiceResult, Totals};
use crate::engine::conditions::{READY, RECONCILING};
use crate::engine::transitions::{EventSeverity, Transition};

#[test]
fn without_a_run_slot_the_run_waits_queued_and_names_the_holders() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "trigger": "t"}));
    cluster.add_many(1);
    cluster.deny_run_slot(vec![crate::engine::SlotHolder {
        key: ObjectKey::new("gis", "other"),
        suspended: true,
    }]);
    let queued = cluster.pass();
    assert!(queued.wants_run_slot);
    assert!(queued.restarts.is_empty() && queued.transitions.is_empty());
    assert_eq!(queued.wake_at, Some(at(0) + crate::engine::QUEUED_RECHECK));
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Pending));
    assert!(status.run.is_none());
    assert_eq!(
        status.triggers.token_digest, None,
        "triggers are recorded only when the run starts"
    );
    assert_eq!(
        condition(status, RECONCILING),
        (
            "True",
            "Queued",
            "a run (Created) is waiting for a free run slot; runs are serialized cluster-wide; \
             slots held by gis/other (suspended)"
        )
    );
    assert_eq!(cluster.pass().status, queued.status);

    cluster.run_slot = RunSlot::Granted;
    let started = cluster.pass();
    assert!(!started.wants_run_slot);
    assert_eq!(cluster.status().phase, Some(Phase::Running));
    assert_eq!(
        cluster.status().triggers.token_digest,
        Some(crate::engine::plan::trigger_digest("t"))
    );
}

#[test]
fn suspend_holds_the_next_batch_but_lets_the_current_one_finish() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 1}));
    let keys = cluster.add_many(2);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.refresh.spec.suspend = true;
    assert_eq!(cluster.pass().status.phase, Some(Phase::Running), "the batch in progress goes on");
    cluster.roll_out(&keys[0]);
    let held = cluster.pass();
    assert_eq!(reasons(&held), ["BatchCompleted", "Suspended"]);
    assert_eq!(held.status.phase, Some(Phase::Suspended));
    assert_eq!(held.status.batches.len(), 1, "batch 2 is not cut while suspended");
    assert!(held.restarts.is_empty() && held.wake_at.is_none());
    assert_eq!(
        condition(&held.status, RECONCILING),
        ("True", "Suspended", "suspended by spec.suspend before batch 2 of 2")
    );
    assert_eq!(cluster.pass().status, held.status);

    cluster.refresh.spec.suspend = false;
    let resumed = cluster.pass();
    assert_eq!(reasons(&resumed), ["BatchStarted"]);
    assert_eq!(resumed.restarts.len(), 1);
    assert_eq!(resumed.status.phase, Some(Phase::Running));
    cluster.apply(&resumed);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Succeeded));
}

#[test]
fn dry_run_restarts_nothing_and_succeeds_at_once() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 2, "dryRun": true}));
    cluster.add_many(3);
    let decision = cluster.pass();
    assert!(decision.restarts.is_empty());
    assert_eq!(reasons(&decision), ["RunStarted", "RunSucceeded"]);
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert!(status.run.as_ref().is_some_and(|run| run.dry_run && run.end_time.is_some()));
    assert!(status.batches.iter().all(|batch| batch.phase == BatchPhase::Completed));
    assert!(
        results(&cluster)
            .iter()
            .all(|(_, result, message)| *result == Some(ServiceResult::Skipped)
                && message.as_deref() == Some(MESSAGE_DRY_RUN))
    );
    assert_eq!(status.totals.skipped, 3);
    assert_eq!(condition(status, READY).0, "True");
    let finished = decision
        .transitions
        .iter()
        .filter(|transition| matches!(transition, Transition::ServiceFinished { .. }))
        .count();
    assert_eq!(finished, 3, "every planned service reports its result once");
}

#[test]
fn a_selection_that_matches_nothing_fails_and_says_what_it_was() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {"matchLabels": {"app": "none"}},
        "namePatterns": ["arcgis-*"],
    }));
    cluster.add_many(2);
    let decision = cluster.pass();
    assert_eq!(reasons(&decision), ["RunStarted", "RunFailed"]);
    assert_eq!(decision.status.phase, Some(Phase::Failed));
    assert_eq!(
        (decision.status.progress.as_deref(), decision.status.batch.as_deref()),
        (Some("0/0"), Some("0/0"))
    );
    let message = "Run 1 failed: nothing selected: no Deployment matched the selector app=none \
                   in namespace(s) arcgis, name patterns arcgis-*";
    assert_eq!(condition(&decision.status, STALLED), ("True", "NothingSelected", message));
    assert_eq!(condition(&decision.status, READY).0, "False");
    assert_eq!(decision.status.history[0].phase, Phase::Failed);
    assert_eq!(cluster.pass().status, decision.status, "settled");
}

#[test]
fn excluded_names_that_match_nothing_are_reported() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "exclude": ["svc-01", "svc-typo"]}));
    cluster.add_many(2);
    let decision = cluster.pass();
    let warnings: Vec<_> = events(&decision)
        .into_iter()
        .filter(|event| event.severity == EventSeverity::Warning)
        .collect();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].reason.as_str(), "ExcludeUnmatched");
    assert_eq!(
        warnings[0].message,
        "spec.exclude names no Deployment in namespace(s) arcgis: svc-typo"
    );
    let message = decision.status.run.as_ref().and_then(|run| run.message.clone());
    assert_eq!(
        message.as_deref(),
        Some("ServiceRefresh created; spec.exclude names no existing Deployment: svc-typo")
    );
    assert_eq!(decision.status.totals.services, 1);
}

#[test]
fn abort_skips_every_batch_not_started() {
    let mut cluster =
        ModelCluster::new(json!({"selector": {}, "batchSize": 2, "failurePolicy": "Abort"}));
    let keys = cluster.add_many(5);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.fail_rollout(&keys[0]);
    cluster.roll_out(&keys[1]);
    let aborted = cluster.pass();
    assert!(aborted.restarts.is_empty());
    assert_eq!(reasons(&aborted), ["BatchCompleted", "RunFailed"]);
    assert_eq!(events(&aborted)[0].severity, EventSeverity::Warning);
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Failed));
    let skipped = "not started: run aborted after failures in batch 1".to_owned();
    assert_eq!(
        results(&cluster),
        vec![
            (
                "svc-00".to_owned(),
                Some(ServiceResult::Failed),
                Some("deployment \"svc-00\" exceeded its progress deadline".to_owned())
            ),
            ("svc-01".to_owned(), Some(ServiceResult::Ready), None),
            ("svc-02".to_owned(), Some(ServiceResult::Skipped), Some(skipped.clone())),
            ("svc-03".to_owned(), Some(ServiceResult::Skipped), Some(skipped.clone())),
            ("svc-04".to_owned(), Some(ServiceResult::Skipped), Some(skipped)),
        ]
    );
    assert!(status.batches.iter().skip(1).all(|batch| batch.start_time.is_none()));
    assert_eq!(
        status.totals,
        Totals { services: 5, restarted: 2, ready: 1, failed: 1, skipped: 3 }
    );
    assert_eq!(condition(status, STALLED).1, "RunFailed");
    // kubectl's BATCH column reads where the run stopped, out of the batches it was heading for.
    assert_eq!((status.batch.as_deref(), status.progress.as_deref()), (Some("1/3"), Some("1/5")));
}

#[test]
fn continue_goes_on_after_a_failure() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 1}));
    let keys = cluster.add_many(2);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.fail_rollout(&keys[0]);
    let next = cluster.pass();
    assert_eq!(reasons(&next), ["BatchCompleted", "BatchStarted"]);
    cluster.apply(&next);
    cluster.run_to_end();
    assert_eq!(cluster.status().phase, Some(Phase::Failed));
    assert_eq!(cluster.status().totals.ready, 1);
}

/// Gives the selector an operator Kubernetes does not know, so the spec no longer validates.
fn make_selector_invalid(cluster: &mut ModelCluster) {
    cluster.refresh.spec.selector.match_expressions =
        Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
            key: "app".to_owned(),
            operator: "Foo".to_owned(),
            values: None,
        }]);
}

#[test]
fn an_invalid_spec_stalls_and_holds_the_active_run() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchTimeout": "10x"}));
    cluster.add_many(2);
    let stalled = cluster.pass();
    assert!(stalled.restarts.is_empty());
    assert_eq!(reasons(&stalled), ["InvalidSpec"]);
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Failed));
    assert!(status.run.is_none());
    assert_eq!(
        condition(status, STALLED),
        (
            "True",
            "InvalidSpec",
            r#"spec.batchTimeout "10x" is not a duration such as 90s, 10m or 1h30m"#
        )
    );
    assert_eq!(condition(status, READY).0, "False");
    assert_eq!(condition(status, RECONCILING).0, "False");
    let again = cluster.pass();
    assert!(again.transitions.is_empty(), "the stall is announced once");
    assert_eq!(again.status, stalled.status);
    // The same reason with a new problem is news: the user must hear what is wrong now.
    cluster.refresh.spec.batch_timeout = "20y".to_owned();
    let other_problem = cluster.pass();
    assert_eq!(reasons(&other_problem), ["InvalidSpec"]);
    assert!(events(&other_problem)[0].message.contains("\"20y\""));

    cluster.refresh.spec.batch_timeout = "10m".to_owned();
    cluster.pass();
    assert_eq!(cluster.status().phase, Some(Phase::Running));

    make_selector_invalid(&mut cluster);
    let held = cluster.pass();
    assert!(held.restarts.is_empty());
    assert_eq!(held.status.phase, Some(Phase::Running), "the active run holds where it is");
    assert_eq!(held.status.batches, cluster.status().batches);
    assert_eq!(
        condition(&held.status, STALLED).2,
        r#"spec.selector.matchExpressions[0].operator: "Foo" is not one of In, NotIn, Exists, DoesNotExist"#
    );
    cluster.refresh.spec.selector.match_expressions = None;
    assert_eq!(cluster.pass().restarts.len(), 2, "resumes once fixed");
}

#[test]
fn other_namespaces_are_refused_unless_the_operator_allows_them() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "namespaces": ["kube-system"]}));
    cluster.add("kube-system", "coredns", 2);
    let refused = cluster.pass();
    assert!(refused.restarts.is_empty() && refused.status.run.is_none());
    assert_eq!(reasons(&refused), ["CrossNamespaceRefused"]);
    assert_eq!(condition(&refused.status, STALLED).1, "CrossNamespaceRefused");
    assert!(condition(&refused.status, STALLED).2.contains("--allow-cross-namespace"));
    assert_eq!(refused.status.phase, Some(Phase::Failed));

    cluster.allow_cross_namespace();
    cluster.pass();
    let restarting = cluster.pass();
    assert_eq!(restarting.restarts[0].deployment, ObjectKey::new("kube-system", "coredns"));
}

#[test]
fn a_namespace_the_operator_does_not_watch_is_reported_not_found_empty() {
    let mut cluster = ModelCluster::new(json!({
        "selector": {},
        "namespaces": ["other"],
        "configMapTriggers": [{"name": "proxy", "namespace": "other"}],
    }));
    cluster.scope = crate::engine::OperatorScope {
        watch_namespace: Some(NS.to_owned()),
        allow_cross_namespace: true,
        ..Default::default()
    };
    let refused = cluster.pass();
    assert_eq!(condition(&refused.status, STALLED).1, "NamespaceNotWatched");
    assert_eq!(
        condition(&refused.status, STALLED).2,
        "spec.namespaces[0]: the operator watches only namespace \"arcgis\" (--watch-namespace), \
         so it cannot see anything in namespace \"other\""
    );
    assert_ne!(refused.status.phase, Some(Phase::Succeeded));
}

#[test]
fn spec_edits_reach_only_batches_not_started() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 2}));
    let keys = cluster.add_many(7);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);

    cluster.refresh.spec.batch_size = 3;
    cluster.refresh.spec.exclude = vec!["svc-00".to_owned(), "svc-06".to_owned()];
    let edited = cluster.pass();
    let shape: Vec<(u32, BatchPhase, usize)> =
        edited.status.batches.iter().map(|b| (b.index, b.phase, b.services.len())).collect();
    assert_eq!(shape, vec![(1, BatchPhase::Running, 2)], "the batch in flight keeps its services");
    assert_eq!(edited.status.batches[0].services[0].result, None, "svc-00 was already restarted");
    let last = results(&cluster).pop().expect("svc-06 is planned");
    assert_eq!(
        last,
        ("svc-06".to_owned(), Some(ServiceResult::Skipped), Some(MESSAGE_EXCLUDED.to_owned()))
    );
    assert_eq!(cluster.pass().status, edited.status);

    cluster.run_to_end();
    let sizes: Vec<usize> =
        cluster.run_view().batches.iter().map(|batch| batch.services.len()).collect();
    assert_eq!(sizes, [2, 3, 1], "the new batchSize cuts the batches started after the edit");
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Succeeded));
    assert_eq!(
        status.totals,
        Totals { services: 7, restarted: 6, ready: 6, failed: 0, skipped: 1 }
    );
    assert!(
        !cluster
            .template_changes
            .contains_key(&("arcgis/refresh/1-01234567".to_owned(), keys[6].clone()))
    );
}

#[test]
fn services_outside_the_own_namespace_keep_theirs() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "namespaces": ["arcgis", "other"]}));
    cluster.allow_cross_namespace();
    cluster.add(NS, "a", 1);
    let other = cluster.add("other", "b", 2);
    cluster.pass();
    let restarting = cluster.pass();
    let services = &cluster.status().batches[0].services;
    assert_eq!(services[0].namespace, None);
    assert_eq!(services[1].namespace.as_deref(), Some("other"));
    assert_eq!(restarting.restarts[1].deployment, other);
    cluster.apply(&restarting);
    cluster.run_to_end();
    assert_eq!(cluster.status().totals.ready, 2);
}

#[test]
fn a_spec_fixed_mid_batch_keeps_the_batchs_clock() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchTimeout": "60s"}));
    let keys = cluster.add_many(1);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.start_rollout(&keys[0]);
    cluster.now = at(10);
    make_selector_invalid(&mut cluster);
    let held = cluster.pass();
    assert_eq!(condition(&held.status, STALLED).1, "InvalidSpec");
    cluster.refresh.spec.selector.match_expressions = None;
    cluster.now = at(20);
    cluster.pass();
    // The restart was sent before the stall: its rollout's time counts from the batch's start.
    // Only a refused write or a closed window, which held restarts back, starts it over.
    cluster.now = at(60);
    cluster.pass();
    assert_eq!(results(&cluster)[0].1, Some(ServiceResult::TimedOut));
}

#[test]
fn a_selection_edited_mid_run_skips_only_the_services_it_no_longer_selects() {
    let mut cluster = ModelCluster::new(json!({"selector": {}, "batchSize": 2}));
    cluster.add_many(5);
    cluster.pass();
    let restarting = cluster.pass();
    cluster.apply(&restarting);
    cluster.refresh.spec.name_patterns =
        ["svc-00", "svc-01", "svc-02", "svc-04"].map(str::to_owned).into();
    cluster.pass();
    let deselected = Some(MESSAGE_DESELECTED.to_owned());
    let outcomes: Vec<(String, Option<String>)> =
        results(&cluster).into_iter().map(|(name, _, message)| (name, message)).collect();
    assert_eq!(outcomes[3], ("svc-03".to_owned(), deselected.clone()));
    assert!(
        outcomes.iter().filter(|(_, message)| *message == deselected).count() == 1,
        "services still selected go on: {outcomes:?}"
    );
}
