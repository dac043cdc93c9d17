//! Statuses written by operator versions that kept the whole plan in the status: every batch
//! listed up front, completed ones with their Ready services by name. The first pass of this
//! version moves such a plan out into plan objects and rewrites the batches in today's form,
//! so a run in flight during an upgrade goes on where it was, restarting nothing twice.

use std::borrow::Cow;

use super::Pass;
use crate::crd::{
    BatchCounts, BatchPhase, BatchStatus, ServiceRefreshStatus, ServiceResult, ServiceStatus,
};
use crate::engine::ObjectKey;
use crate::engine::plan::{self, Plan, PlanEntry};
use crate::engine::positions::PositionSet;
use crate::engine::results::{self, Outcome};

/// Moves a plan kept in the status out into plan objects, when the status has one.
pub(super) fn move_plan_out(pass: &mut Pass, status: &mut ServiceRefreshStatus) {
    let Some(run) = status.run.as_ref() else {
        return;
    };
    if run.plan.is_some() {
        return;
    }
    let own_namespace = pass.own_namespace;
    let legacy = std::mem::take(&mut status.batches);
    let mut entries = Vec::new();
    let mut batches: Vec<(BatchStatus, Vec<(u32, ServiceStatus)>)> = Vec::new();
    for mut batch in legacy {
        let mut members: Vec<ServiceStatus> = std::mem::take(&mut batch.services);
        members.extend(batch.ready.drain(..).map(|entry| ready_row(&entry)));
        members.sort_by_key(|row| plan::service_key(row, own_namespace));
        let mut numbered = Vec::with_capacity(members.len());
        for row in members {
            let position = u32::try_from(entries.len()).unwrap_or(u32::MAX);
            entries.push(PlanEntry { key: plan::service_key(&row, own_namespace), wave: 0 });
            numbered.push((position, ServiceStatus { position: Some(position), ..row }));
        }
        batches.push((batch, numbered));
    }
    let plan = Plan::new(run.id.clone(), entries);
    let number = run.number;
    let refresh = pass.observation.refresh;
    let mut cursor = plan.end();
    for (mut batch, rows) in batches {
        let positions: PositionSet = rows.iter().map(|(position, _)| *position).collect();
        if batch.phase == BatchPhase::Pending {
            cursor = cursor.min(positions.first().unwrap_or(cursor));
            for (position, row) in &rows {
                record(status, own_namespace, *position, row);
            }
            continue;
        }
        batch.positions = Some(positions.to_string());
        if batch.phase == BatchPhase::Completed {
            let mut counts = BatchCounts::default();
            let mut kept = Vec::new();
            for (position, row) in rows {
                match row.result {
                    Some(ServiceResult::Ready) => counts.ready += 1,
                    Some(ServiceResult::Skipped) => counts.skipped += 1,
                    Some(_) => counts.failed += 1,
                    None => {}
                }
                if row.generation.is_some() || row.result == Some(ServiceResult::Ready) {
                    counts.restarted += 1;
                }
                record(status, own_namespace, position, &row);
                if row.result == Some(ServiceResult::TimedOut)
                    && (row.generation.is_some() || row.uid.is_some())
                {
                    kept.push(row);
                }
            }
            batch.services = kept;
            batch.counts = Some(counts);
        } else {
            batch.services = rows.into_iter().map(|(_, row)| row).collect();
        }
        status.batches.push(batch);
    }
    if let Some(run) = status.run.as_mut() {
        run.plan = Some(plan.reference(refresh, number));
        run.next_position = cursor;
    }
    pass.out.plan_objects = plan.objects(refresh, number);
    pass.plan = Some(Cow::Owned(plan));
}

/// A service a legacy status listed as Ready by name (`namespace/name` outside the
/// resource's own namespace).
fn ready_row(entry: &str) -> ServiceStatus {
    let (namespace, name) = match entry.split_once('/') {
        Some((namespace, name)) => (Some(namespace.to_owned()), name.to_owned()),
        None => (None, entry.to_owned()),
    };
    ServiceStatus {
        name,
        position: None,
        namespace,
        kind: None,
        generation: None,
        uid: None,
        result: Some(ServiceResult::Ready),
        reason: None,
        message: None,
    }
}

fn record(
    status: &mut ServiceRefreshStatus,
    own_namespace: &str,
    position: u32,
    row: &ServiceStatus,
) {
    let Some(result) = row.result.filter(|result| *result != ServiceResult::Ready) else {
        return;
    };
    let key: ObjectKey = plan::service_key(row, own_namespace);
    let reason = format!("{result:?}");
    let message = row.message.clone().unwrap_or_default();
    let outcome = Outcome { position, key: &key, result, reason: &reason, message: &message };
    results::record(&mut status.results, own_namespace, &outcome);
}
