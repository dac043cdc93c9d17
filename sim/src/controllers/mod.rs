//! The background controllers of the simulated cluster: tasks that watch
//! the store and write through the write pipeline, as the real
//! kube-controller-manager does through the API. Today the Deployment
//! controller (`deployment`, its rollout model in `rollout`) and the
//! ServiceAccount controller (`service_accounts`); garbage
//! collection and ReplicaSet/Pod controllers belong beside it.

mod deployment;
mod rollout;
mod service_accounts;

use std::sync::Arc;

use crate::state::SimState;

pub use deployment::{FAIL_ANNOTATION, rolled_out_status};
pub use service_accounts::default_service_account;

/// Runs every controller until shutdown.
pub async fn run(sim: Arc<SimState>) {
    tokio::join!(deployment::run(sim.clone()), service_accounts::run(sim));
}
