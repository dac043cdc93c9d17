//! The background controllers of the simulated cluster: tasks that watch
//! the store and write through the write pipeline, as the real
//! kube-controller-manager does through the API. Today the Deployment
//! controller (`deployment`, its rollout model in `rollout`); garbage
//! collection and ReplicaSet/Pod controllers belong beside it.

mod deployment;
mod rollout;

use std::sync::Arc;

use crate::state::SimState;

pub use deployment::{FAIL_ANNOTATION, rolled_out_status};

/// Runs every controller until shutdown.
pub async fn run(sim: Arc<SimState>) {
    deployment::run(sim).await;
}
