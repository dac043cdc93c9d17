//! A run as a person reads it: every service of the plan with its batch and result, joined
//! from the status (batches, rows, result groups) and the plan objects (the names). This is
//! the one place that reads the compact status back into services, for the CLI, the job API
//! and tests; without the plan it shows what the status alone holds.

use jiff::Timestamp;

use crate::crd::{BatchCounts, BatchPhase, ResultGroup, ServiceRefreshStatus, ServiceResult};
use crate::engine::plan::{self, Plan};
use crate::engine::positions::PositionSet;
use crate::engine::{ObjectKey, results};

/// Reasons a service gets without ever being in a batch.
const UNBATCHED_REASONS: [&str; 6] = [
    results::reason::EXCLUDED,
    results::reason::DESELECTED,
    results::reason::DRY_RUN,
    results::reason::ABORTED,
    results::reason::PLAN_LOST,
    results::reason::CANCELLED,
];

/// One service of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceView {
    /// Its position in the plan, when known.
    pub position: Option<u32>,
    pub key: ObjectKey,
    /// `None` while it waits or rolls out (or has not started).
    pub result: Option<ServiceResult>,
    pub reason: Option<String>,
    /// What it waits for, or why it is not Ready.
    pub message: Option<String>,
}

/// One started batch of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchView {
    pub index: u32,
    pub phase: BatchPhase,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    pub counts: BatchCounts,
    /// Its services in plan order; without the plan, only the rows the status lists.
    pub services: Vec<ServiceView>,
}

/// A run's services, batch by batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunView {
    /// The batches listed in the status, oldest first.
    pub batches: Vec<BatchView>,
    /// Batches summed up in the status: how many, and their services (with the plan).
    pub earlier_batches: u32,
    pub earlier_services: Vec<ServiceView>,
    /// Services that got a result without a batch (skipped: excluded, cancelled, dry run).
    pub unbatched: Vec<ServiceView>,
    /// Services not in a batch yet and without a result (with the plan).
    pub not_started: Vec<ServiceView>,
}

impl RunView {
    /// The view of `status`'s run, with names from `plan` when it is the run's plan.
    pub fn new(status: &ServiceRefreshStatus, plan: Option<&Plan>, own_namespace: &str) -> Self {
        let plan = plan.filter(|plan| {
            let reference = status.run.as_ref().and_then(|run| run.plan.as_ref());
            reference.is_some_and(|reference| reference.digest == plan.digest())
        });
        let groups = &status.results;
        let cursor = status.run.as_ref().map_or(0, |run| run.next_position);
        let mut in_batches = PositionSet::default();
        let mut view = RunView {
            earlier_batches: status.earlier_batches.as_ref().map_or(0, |earlier| earlier.batches),
            ..RunView::default()
        };
        for batch in &status.batches {
            let positions = batch.positions.as_deref().map(PositionSet::parse);
            let positions = positions.and_then(Result::ok).unwrap_or_default();
            in_batches.extend(&positions);
            let rows: Vec<ServiceView> = batch
                .services
                .iter()
                .map(|row| ServiceView {
                    position: row.position,
                    key: plan::service_key(row, own_namespace),
                    result: row.result,
                    reason: row.reason.clone(),
                    message: row.message.clone(),
                })
                .collect();
            let services = match (plan, batch.phase) {
                (Some(plan), BatchPhase::Completed) => positions
                    .iter()
                    .filter_map(|position| completed_service(plan, groups, position))
                    .collect(),
                _ => rows,
            };
            view.batches.push(BatchView {
                index: batch.index,
                phase: batch.phase,
                start_time: batch.start_time.as_ref().map(|time| time.0),
                end_time: batch.end_time.as_ref().map(|time| time.0),
                counts: batch.counts.clone().unwrap_or_else(|| counts_of(&services)),
                services,
            });
        }
        let Some(plan) = plan else {
            return view;
        };
        for position in 0..plan.end() {
            if in_batches.contains(position) {
                continue;
            }
            let group = results::group_of(groups, position);
            let Some(entry) = plan.get(position) else {
                break;
            };
            let service = ServiceView {
                position: Some(position),
                key: entry.key.clone(),
                result: group.map(|group| group.result),
                reason: group.map(|group| group.reason.clone()),
                message: group.map(|group| results::message_of(group, &entry.key.name)),
            };
            let unbatched = group.is_some_and(|group| {
                position >= cursor || UNBATCHED_REASONS.contains(&group.reason.as_str())
            });
            if unbatched {
                view.unbatched.push(service);
            } else if position < cursor {
                let result = service.result.or(Some(ServiceResult::Ready));
                view.earlier_services.push(ServiceView { result, ..service });
            } else {
                view.not_started.push(service);
            }
        }
        view
    }

    /// Every service of the run, in batch order, then the rest.
    pub fn services(&self) -> impl Iterator<Item = &ServiceView> {
        self.earlier_services
            .iter()
            .chain(self.batches.iter().flat_map(|batch| batch.services.iter()))
            .chain(self.unbatched.iter())
            .chain(self.not_started.iter())
    }

    /// Every service that failed, timed out or is gone, in plan order.
    pub fn failures(&self) -> Vec<&ServiceView> {
        let mut failures: Vec<&ServiceView> = self
            .services()
            .filter(|service| service.result.is_some_and(ServiceResult::is_failure))
            .collect();
        failures.sort_by_key(|service| service.position);
        failures
    }

    /// The service with this key, if the view knows it.
    pub fn service(&self, key: &ObjectKey) -> Option<&ServiceView> {
        self.services().find(|service| service.key == *key)
    }
}

fn completed_service(plan: &Plan, groups: &[ResultGroup], position: u32) -> Option<ServiceView> {
    let entry = plan.get(position)?;
    let group = results::group_of(groups, position);
    Some(ServiceView {
        position: Some(position),
        key: entry.key.clone(),
        result: Some(group.map_or(ServiceResult::Ready, |group| group.result)),
        reason: group.map(|group| group.reason.clone()),
        message: group.map(|group| results::message_of(group, &entry.key.name)),
    })
}

fn counts_of(services: &[ServiceView]) -> BatchCounts {
    let mut counts = BatchCounts::default();
    for service in services {
        match service.result {
            Some(ServiceResult::Ready) => counts.ready += 1,
            Some(ServiceResult::Skipped) => counts.skipped += 1,
            Some(_) => counts.failed += 1,
            None => {}
        }
    }
    counts
}

/// The services of `batch`, named through `plan`: its positions' entries.
pub fn batch_members(batch: &crate::crd::BatchStatus, plan: &Plan) -> Vec<ObjectKey> {
    let positions = batch.positions.as_deref().map(PositionSet::parse);
    positions
        .and_then(Result::ok)
        .unwrap_or_default()
        .iter()
        .filter_map(|position| plan.get(position).map(|entry| entry.key.clone()))
        .collect()
}
