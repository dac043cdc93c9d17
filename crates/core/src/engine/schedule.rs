//! The sizes of a run's batches still to come, as the run will cut them if nothing blocks
//! it: each batch takes the smaller of its scheduled size (the canary batch first, then 1,
//! 2, 4, … under slow start, else `batchSize`) and the capacity-aware effective size, which
//! grows by one after each batch, up to `batchSize`. "Batch N of M" counts M from it, and
//! the CLI and the job API show the batches to come cut by it.

use std::num::NonZeroUsize;

use super::canary::scheduled_size;
use super::capacity::grown;
use crate::crd::RunStatus;

/// What decides the sizes of a run's next batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// `batchSize`: no batch is larger.
    pub limit: usize,
    /// The canary batch's size, when the run starts with canaries.
    pub canary: Option<NonZeroUsize>,
    /// `slowStart`: batch sizes double from 1.
    pub slow_start: bool,
    /// The capacity-aware effective size now (`limit` when capacity never held the run).
    pub effective: usize,
}

impl Schedule {
    /// The schedule a run's record holds: its `batchSize`, canary size and slow start as of
    /// its latest batch, and its effective size.
    pub fn of_run(run: &RunStatus) -> Self {
        let limit = run.batch_size.unwrap_or(1).max(1) as usize;
        Schedule {
            limit,
            canary: run.canary_size.and_then(|size| NonZeroUsize::new(size as usize)),
            slow_start: run.slow_start,
            effective: run
                .pacing
                .as_ref()
                .map_or(limit, |pacing| pacing.effective_batch_size as usize),
        }
    }

    /// The sizes of the batches from index `next` (1 for the run's first) on.
    pub fn sizes_from(self, next: u32) -> impl Iterator<Item = usize> {
        let limit = self.limit.max(1);
        let mut effective = self.effective.clamp(1, limit);
        (next.max(1)..).map(move |index| {
            let size = scheduled_size(index, limit, self.canary, self.slow_start).min(effective);
            effective = grown(effective, limit);
            size.max(1)
        })
    }

    /// `services` not in a batch yet, cut into the batches to come from index `next` on:
    /// each batch's index and its services.
    pub fn cut<T>(self, services: &[T], next: u32) -> Vec<(u32, &[T])> {
        let mut batches = Vec::new();
        let mut rest = services;
        for (index, size) in (next.max(1)..).zip(self.sizes_from(next)) {
            if rest.is_empty() {
                break;
            }
            let (batch, after) = rest.split_at(size.min(rest.len()));
            batches.push((index, batch));
            rest = after;
        }
        batches
    }

    /// How many batches `remaining` services take from batch `next` on.
    pub fn batches_for(self, remaining: usize, next: u32) -> usize {
        let mut left = remaining;
        let mut batches = 0;
        for (index, size) in (next.max(1)..).zip(self.sizes_from(next)) {
            if left == 0 {
                break;
            }
            // Past the canary and slow start, at full size: the rest is plain division.
            let settled = size == self.limit.max(1)
                && scheduled_size(index, self.limit.max(1), self.canary, self.slow_start) == size;
            if settled {
                return batches + left.div_ceil(size);
            }
            left = left.saturating_sub(size);
            batches += 1;
        }
        batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(limit: usize, canary: usize, slow_start: bool, effective: usize) -> Schedule {
        Schedule { limit, canary: NonZeroUsize::new(canary), slow_start, effective }
    }

    fn sizes(schedule: Schedule, next: u32, count: usize) -> Vec<usize> {
        schedule.sizes_from(next).take(count).collect()
    }

    #[test]
    fn without_canary_slow_start_or_a_block_every_batch_takes_batch_size() {
        let plain = schedule(10, 0, false, 10);
        assert_eq!(sizes(plain, 1, 3), [10, 10, 10]);
        assert_eq!(plain.batches_for(60, 1), 6);
        assert_eq!(plain.batches_for(61, 1), 7);
        assert_eq!(plain.batches_for(0, 4), 0);
    }

    #[test]
    fn the_canary_batch_comes_first_then_slow_start_doubles() {
        let canary = schedule(10, 3, false, 10);
        assert_eq!(sizes(canary, 1, 3), [3, 10, 10]);
        // 3 canaries, then 57 in batches of 10: 1 + 6 batches, where batchSize alone says 6.
        assert_eq!(canary.batches_for(60, 1), 7);
        assert_eq!(canary.batches_for(57, 2), 6, "after the canary batch");

        let slow = schedule(10, 0, true, 10);
        assert_eq!(sizes(slow, 1, 6), [1, 2, 4, 8, 10, 10]);
        // 1 + 2 + 4 + 8 = 15, then 45 in 5 batches of 10.
        assert_eq!(slow.batches_for(60, 1), 9);
        assert_eq!(slow.batches_for(5, 1), 3, "1 + 2 + 2");

        let both = schedule(10, 2, true, 10);
        assert_eq!(sizes(both, 1, 5), [2, 1, 2, 4, 8]);
        assert_eq!(both.batches_for(60, 1), 10, "2 + 1 + 2 + 4 + 8 = 17, then 43 in 5");
    }

    #[test]
    fn a_shrunk_effective_size_grows_back_by_one_per_batch() {
        let shrunk = schedule(10, 0, false, 5);
        assert_eq!(sizes(shrunk, 3, 7), [5, 6, 7, 8, 9, 10, 10]);
        // 5 + 6 + 7 + 8 + 9 = 35, then 25 in 3 batches of 10.
        assert_eq!(shrunk.batches_for(60, 3), 8);
        let with_slow_start = schedule(10, 0, true, 2);
        assert_eq!(sizes(with_slow_start, 1, 6), [1, 2, 4, 5, 6, 7], "the smaller of the two");
    }

    #[test]
    fn services_not_started_are_cut_as_the_schedule_cuts_them() {
        let services: Vec<u32> = (0..12).collect();
        let cut = schedule(10, 2, true, 10).cut(&services, 1);
        let sizes: Vec<(u32, usize)> =
            cut.iter().map(|(index, batch)| (*index, batch.len())).collect();
        assert_eq!(sizes, [(1, 2), (2, 1), (3, 2), (4, 4), (5, 3)]);
        assert_eq!(cut[1].1, [2], "in plan order");
        assert_eq!(
            sizes.len(),
            schedule(10, 2, true, 10).batches_for(services.len(), 1),
            "as many batches as counted"
        );
        assert!(schedule(10, 0, false, 10).cut::<u32>(&[], 4).is_empty());
    }

    #[test]
    fn every_batch_takes_at_least_one_service_and_late_batches_do_not_overflow() {
        assert_eq!(schedule(1, 0, true, 1).batches_for(4, 1), 4);
        assert_eq!(schedule(0, 0, false, 0).batches_for(3, 1), 3, "a zero size counts as 1");
        assert_eq!(schedule(10, 0, true, 10).batches_for(25, u32::MAX - 1), 3);
    }
}
