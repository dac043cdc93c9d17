//! Unit tests of the run state machine, one rule at a time, by theme; the helpers here
//! read a status or a decision the way the assertions want it.

mod crashes;
mod lifecycle;
mod spec;
mod triggers;

use super::test_support::NS;
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

pub(super) fn results(
    status: &ServiceRefreshStatus,
) -> Vec<(String, Option<ServiceResult>, Option<String>)> {
    status
        .batches
        .iter()
        .flat_map(|batch| batch.all_services(NS))
        .map(|service| (service.name.clone(), service.result, service.message.clone()))
        .collect()
}
