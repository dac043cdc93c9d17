//! Reading a run's plan back from its ServiceRefreshPlan objects: one LIST of the objects
//! labelled with the ServiceRefresh's uid, joined into the plan its status refers to. The
//! operator needs it only when its memo does not hold the plan (a new leader, a restarted
//! process), and the job API when it names a run's services; a watch of every plan would
//! keep them all in memory for those rare reads.

use kube::Client;
use kube::api::{Api, ListParams};
use servicerefresh_core::crd::{ServiceRefresh, ServiceRefreshPlan};
use servicerefresh_core::engine::Plan;
use servicerefresh_core::engine::plan::PLAN_OWNER_LABEL;

/// The plan of `refresh`'s current run. `Ok(None)` when it has no run, or its plan objects do
/// not add up (yet).
pub async fn read_plan(
    client: &Client,
    refresh: &ServiceRefresh,
) -> Result<Option<Plan>, kube::Error> {
    let Some(reference) = refresh.status.as_ref().and_then(|s| s.run.as_ref()?.plan.clone()) else {
        return Ok(None);
    };
    let (Some(uid), Some(namespace)) =
        (refresh.metadata.uid.as_deref(), refresh.metadata.namespace.as_deref())
    else {
        return Ok(None);
    };
    let plans: Api<ServiceRefreshPlan> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&format!("{PLAN_OWNER_LABEL}={uid}"));
    let list = plans.list(&params).await?;
    Ok(Plan::from_objects(&reference, &list.items).ok())
}
