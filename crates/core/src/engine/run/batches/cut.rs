//! Cutting the next batch from the plan: from the run's cursor, the next services that have
//! no result yet (an exclusion is a result), at most `batchSize` of them, and never across a
//! wave, so a wave starts only once every service of the one before has a result.

use crate::crd::ServiceRefreshStatus;
use crate::engine::plan::Plan;
use crate::engine::results;

/// The plan positions of the next batch of at most `size` services, or `None` when every
/// service of the plan is in a batch or has a result.
pub(super) fn next_batch(
    plan: &Plan,
    status: &ServiceRefreshStatus,
    size: usize,
) -> Option<Vec<u32>> {
    let cursor = status.run.as_ref().map_or(0, |run| run.next_position);
    let resulted = results::resulted_positions(&status.results);
    let mut positions = Vec::new();
    let mut wave = None;
    for position in cursor..plan.end() {
        if resulted.contains(position) {
            continue;
        }
        let Some(entry) = plan.get(position) else {
            break;
        };
        if *wave.get_or_insert(entry.wave) != entry.wave {
            break;
        }
        positions.push(position);
        if positions.len() >= size {
            break;
        }
    }
    (!positions.is_empty()).then_some(positions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ResultGroup, RunStatus, ServiceResult};
    use crate::engine::ObjectKey;
    use crate::engine::plan::PlanEntry;
    use crate::engine::run::test_support::valid_spec;

    fn plan(waves: &[u32]) -> Plan {
        let entries = waves
            .iter()
            .enumerate()
            .map(|(i, wave)| PlanEntry {
                key: ObjectKey::new("arcgis", format!("s{i}")),
                wave: *wave,
            })
            .collect();
        Plan::new("run", entries)
    }

    fn status(cursor: u32, skipped: &str) -> ServiceRefreshStatus {
        let mut status = ServiceRefreshStatus {
            run: Some(RunStatus {
                id: "run".into(),
                number: 1,
                reason: "Created".into(),
                message: None,
                request: None,
                cancel_request: None,
                dry_run: false,
                force: false,
                plan: None,
                next_position: cursor,
                batch_size: None,
                canary_size: None,
                slow_start: false,
                pacing: None,
                selection: None,
                start_time: None,
                end_time: None,
            }),
            ..ServiceRefreshStatus::default()
        };
        if !skipped.is_empty() {
            status.results.push(ResultGroup {
                result: ServiceResult::Skipped,
                reason: "Excluded".into(),
                message: "excluded".into(),
                count: 1,
                positions: skipped.into(),
                examples: Vec::new(),
            });
        }
        status
    }

    #[test]
    fn a_batch_takes_the_next_services_without_a_result_up_to_batch_size() {
        let plan = plan(&[0; 10]);
        let spec = valid_spec(serde_json::json!({"selector": {}, "batchSize": 3})).batch_size.get();
        assert_eq!(next_batch(&plan, &status(0, ""), spec), Some(vec![0, 1, 2]));
        assert_eq!(next_batch(&plan, &status(3, "4"), spec), Some(vec![3, 5, 6]));
        assert_eq!(next_batch(&plan, &status(8, "9"), spec), Some(vec![8]));
        assert_eq!(next_batch(&plan, &status(9, "9"), spec), None);
        assert_eq!(next_batch(&plan, &status(10, ""), spec), None);
    }

    #[test]
    fn a_batch_never_crosses_a_wave() {
        let plan = plan(&[0, 0, 1, 1, 1, 2]);
        let spec =
            valid_spec(serde_json::json!({"selector": {}, "batchSize": 10})).batch_size.get();
        assert_eq!(next_batch(&plan, &status(0, ""), spec), Some(vec![0, 1]));
        assert_eq!(next_batch(&plan, &status(2, ""), spec), Some(vec![2, 3, 4]));
        // A wave whose services all have results is passed over.
        assert_eq!(next_batch(&plan, &status(2, "2-4"), spec), Some(vec![5]));
    }
}
