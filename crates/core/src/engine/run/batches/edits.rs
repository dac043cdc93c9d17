//! Spec edits during a run reach only the services not in a batch yet: those newly excluded
//! by `spec.exclude`, and (when the selection itself was edited after planning) those the
//! selector, name patterns or namespaces no longer select, are skipped. A new `batchSize`
//! applies by itself, since each batch is cut when it starts.

use super::RunContext;
use super::budget::marked_by;
use crate::crd::{ServiceRefreshStatus, ServiceResult};
use crate::engine::results::{self, reason};
use crate::engine::run::{MESSAGE_DESELECTED, MESSAGE_EXCLUDED, Pass};
use crate::engine::spec::ValidSpec;

pub(super) fn apply_spec_edits(
    pass: &mut Pass,
    status: &mut ServiceRefreshStatus,
    spec: &ValidSpec,
    run: &RunContext,
) {
    let Some(run_status) = status.run.as_ref() else {
        return;
    };
    let selection_edited =
        run_status.selection.as_ref().is_some_and(|planned| *planned != spec.selection_digest());
    if spec.exclude.is_empty() && !selection_edited {
        return;
    }
    let cursor = run_status.next_position;
    let Some(plan) = pass.plan_of(status) else {
        return;
    };
    let resulted = results::resulted_positions(&status.results);
    let cluster = pass.observation.cluster;
    let mut skipped = Vec::new();
    for position in cursor..plan.end() {
        let Some(entry) = plan.get(position) else {
            break;
        };
        if resulted.contains(position) {
            continue;
        }
        let excluded = spec.exclude.contains(&entry.key.name);
        if !excluded && !selection_edited {
            continue;
        }
        let deployment = cluster.deployment(&entry.key);
        // A crash can lose the record of a batch whose restarts went out: a Deployment
        // carrying this run was restarted, so skipping it now would hide a rollout in flight.
        if deployment
            .as_ref()
            .is_some_and(|deployment| marked_by(deployment, &run.id, &run.record_annotation))
        {
            continue;
        }
        let deselected = || {
            deployment.as_ref().is_some_and(|deployment| {
                !spec.selects(&entry.key.namespace, &entry.key.name, Some(&deployment.labels()))
            })
        };
        let why = if excluded {
            Some((reason::EXCLUDED, MESSAGE_EXCLUDED))
        } else if deselected() {
            Some((reason::DESELECTED, MESSAGE_DESELECTED))
        } else {
            None
        };
        if let Some(why) = why {
            skipped.push((position, entry.key.clone(), why));
        }
    }
    for (position, key, (why, message)) in skipped {
        pass.record_unbatched(status, position, &key, (ServiceResult::Skipped, why, message));
    }
}
