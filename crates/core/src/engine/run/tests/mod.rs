//! Unit tests of the run state machine, one rule at a time, by theme; the helpers here
//! read a status or a decision the way the assertions want it.

mod canary;
mod capacity;
mod crashes;
mod disruption_budgets;
mod forbidden;
mod health_gate;
mod legacy;
mod lifecycle;
mod pacing;
mod secret_triggers;
mod spec;
mod triggers;
mod view;
mod waves;

use super::test_support::ModelCluster;
use super::*;
use crate::crd::ServiceResult;
use crate::engine::transitions::Transition;

pub(super) fn condition<'a>(
    status: &'a ServiceRefreshStatus,
    type_: &str,
) -> (&'a str, &'a str, &'a str) {
    let condition = conditions::find(&status.conditions, type_).expect("condition present");
    (condition.status.as_str(), condition.reason.as_str(), condition.message.as_str())
}

pub(super) fn reasons(decision: &Decision) -> Vec<&'static str> {
    decision
        .transitions
        .iter()
        .filter_map(Transition::event)
        .map(|event| event.reason.as_str())
        .collect()
}

pub(super) fn events(decision: &Decision) -> Vec<crate::engine::EventNote> {
    decision.transitions.iter().filter_map(Transition::event).collect()
}

/// Every service of the model's current run in plan order, with its result and message.
pub(super) fn results(
    cluster: &ModelCluster,
) -> Vec<(String, Option<ServiceResult>, Option<String>)> {
    let view = cluster.run_view();
    let mut services: Vec<_> = view.services().cloned().collect();
    services.sort_by_key(|service| service.position);
    services
        .into_iter()
        .map(|service| (service.key.name, service.result, service.message))
        .collect()
}

/// The services of batch `index` (from 1) as a person reads them: name, result and message.
pub(super) fn batch_results(
    cluster: &ModelCluster,
    index: u32,
) -> Vec<(String, Option<ServiceResult>, Option<String>)> {
    let view = cluster.run_view();
    let batch = view.batches.iter().find(|batch| batch.index == index).expect("batch listed");
    batch
        .services
        .iter()
        .map(|service| (service.key.name.clone(), service.result, service.message.clone()))
        .collect()
}
