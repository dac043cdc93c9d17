//! Completing a batch: its rows become counts and result groups, keeping only the rows whose
//! rollout may still hold a place in the in-flight budget; rows that stopped holding one are
//! dropped; and the oldest completed batches are summed up once more than
//! [`MAX_LISTED_BATCHES`] are listed. This is what keeps the status small and bounded
//! however long the run and whatever fails.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

use super::RunContext;
use super::budget;
use crate::crd::{
    BatchCounts, BatchPhase, EarlierBatches, ServiceRefreshStatus, ServiceResult, ServiceStatus,
};
use crate::engine::plan;
use crate::engine::results::{self, Outcome, reason};
use crate::engine::run::{Pass, summary};
use crate::engine::schedule::Schedule;
use crate::engine::spec::ValidSpec;
use crate::engine::transitions::Transition;

/// Completed batches listed one by one; earlier ones are summed up.
pub const MAX_LISTED_BATCHES: usize = 100;

/// Completes the batch at `position`, whose services all have a result.
pub(super) fn complete_batch(
    pass: &mut Pass,
    status: &mut ServiceRefreshStatus,
    position: usize,
    spec: &ValidSpec,
    run: &RunContext,
) {
    let schedule = summary::schedule_of(status.run.as_ref(), spec);
    close_batch(pass, status, position, Some(schedule));
    drop_released_rows(pass, status, run);
    fold_earlier_batches(status);
}

/// Turns the batch at `position` into counts and result groups.
pub(super) fn close_batch(
    pass: &mut Pass,
    status: &mut ServiceRefreshStatus,
    position: usize,
    schedule: Option<Schedule>,
) {
    let batch = &mut status.batches[position];
    batch.phase = BatchPhase::Completed;
    batch.end_time = Some(MicroTime(pass.now));
    let rows = std::mem::take(&mut batch.services);
    let seconds = batch
        .start_time
        .as_ref()
        .map_or(0.0, |start| pass.now.duration_since(start.0).as_secs_f64());
    let index = batch.index;
    let mut counts = BatchCounts::default();
    let mut kept = Vec::new();
    for row in rows {
        count(&mut counts, &row);
        if let (Some(result), Some(position)) = (row.result, row.position)
            && result != ServiceResult::Ready
        {
            let key = plan::service_key(&row, pass.own_namespace);
            let why = row.reason.clone().unwrap_or_else(|| default_reason(result).to_owned());
            let message = row.message.clone().unwrap_or_default();
            let outcome = Outcome { position, key: &key, result, reason: &why, message: &message };
            results::record(&mut status.results, pass.own_namespace, &outcome);
        }
        if may_hold_place(&row) {
            kept.push(row);
        }
    }
    let batch = &mut status.batches[position];
    batch.services = kept;
    batch.counts = Some(counts.clone());
    let run = status.run.as_ref().map(|run| run.id.clone()).unwrap_or_default();
    let (_, batches) = summary::batch_numbers_with(status, schedule);
    if counts.ready == 0 && counts.failed == 0 && counts.skipped > 0 {
        // Every service was skipped as the batch began (paused, excluded): it restarted
        // nothing, so it is not announced as started; its completion says it was skipped.
        pass.out.transitions.retain(|transition| {
            !matches!(transition, Transition::BatchStarted { batch, .. } if *batch == index)
        });
    }
    pass.out.transitions.push(Transition::BatchCompleted {
        run,
        batch: index,
        batches,
        ready: counts.ready as usize,
        failed: counts.failed as usize,
        skipped: counts.skipped as usize,
        seconds,
    });
}

fn count(counts: &mut BatchCounts, row: &ServiceStatus) {
    if row.generation.is_some() || row.result == Some(ServiceResult::Ready) {
        counts.restarted += 1;
    }
    // Exhaustive, so a new result must be placed in the counts to compile.
    match row.result {
        Some(ServiceResult::Ready) => counts.ready += 1,
        Some(ServiceResult::Skipped) => counts.skipped += 1,
        Some(ServiceResult::Failed | ServiceResult::TimedOut | ServiceResult::Gone) => {
            counts.failed += 1
        }
        None => {}
    }
}

/// The reason of a result recorded without one (by an operator version before reasons).
fn default_reason(result: ServiceResult) -> &'static str {
    match result {
        ServiceResult::Ready => "",
        ServiceResult::Failed => "Failed",
        ServiceResult::TimedOut => "TimedOut",
        ServiceResult::Gone => reason::DELETED,
        ServiceResult::Skipped => "Skipped",
    }
}

/// Whether a completed row may still hold a place in the budget: a timed-out rollout, or a
/// timed-out restart that was sent but never confirmed.
fn may_hold_place(row: &ServiceStatus) -> bool {
    row.result == Some(ServiceResult::TimedOut) && (row.generation.is_some() || row.uid.is_some())
}

/// Drops the rows of completed batches that no longer hold a place.
fn drop_released_rows(pass: &Pass, status: &mut ServiceRefreshStatus, run: &RunContext) {
    let mut released = Vec::new();
    for (index, batch) in status.batches.iter().enumerate() {
        if batch.phase != BatchPhase::Completed {
            continue;
        }
        for (row_index, row) in batch.services.iter().enumerate() {
            if !budget::holds_place(pass, row, batch.end_time.as_ref(), run).0 {
                released.push((index, row_index));
            }
        }
    }
    for (index, row_index) in released.into_iter().rev() {
        status.batches[index].services.remove(row_index);
    }
}

/// Sums up the oldest completed batches while more than [`MAX_LISTED_BATCHES`] are listed.
/// A batch with a row still holding a place stays listed until the row is released.
pub(super) fn fold_earlier_batches(status: &mut ServiceRefreshStatus) {
    while status.batches.len() > MAX_LISTED_BATCHES {
        let oldest = &status.batches[0];
        if oldest.phase != BatchPhase::Completed || !oldest.services.is_empty() {
            return;
        }
        let oldest = status.batches.remove(0);
        let earlier = status.earlier_batches.get_or_insert_with(|| EarlierBatches {
            start_time: oldest.start_time.clone(),
            ..EarlierBatches::default()
        });
        earlier.batches = oldest.index;
        earlier.end_time = oldest.end_time.clone();
        if let Some(counts) = &oldest.counts {
            earlier.counts.add(counts);
        }
    }
}
