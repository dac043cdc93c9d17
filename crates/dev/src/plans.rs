//! Reading a run's plan over the API, for the tools that show or measure runs: the
//! ServiceRefreshPlan objects labelled with the ServiceRefresh's uid, joined into the plan its
//! status refers to.

use kube::Client;
use kube::api::{Api, ListParams};
use servicerefresh_core::crd::{ServiceRefresh, ServiceRefreshPlan};
use servicerefresh_core::engine::Plan;
use servicerefresh_core::engine::plan::PLAN_OWNER_LABEL;

/// The plan of `refresh`'s current run, when its objects can be listed and add up.
pub async fn plan_of(client: &Client, refresh: &ServiceRefresh) -> Option<Plan> {
    let reference = refresh.status.as_ref()?.run.as_ref()?.plan.clone()?;
    let uid = refresh.metadata.uid.as_deref()?;
    let namespace = refresh.metadata.namespace.as_deref()?;
    let plans: Api<ServiceRefreshPlan> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&format!("{PLAN_OWNER_LABEL}={uid}"));
    let list = plans.list(&params).await.ok()?;
    Plan::from_objects(&reference, &list.items).ok()
}
