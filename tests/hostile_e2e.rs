//! Heavy and hostile conditions against the simulated cluster: a status the API server
//! refuses to store (as etcd refuses an object over its size limit) stalls the resource with
//! the reason, restarts nothing more, and is retried with back-off rather than in a loop.

mod common;

use std::time::Duration;

use common::{NAMESPACE, Operator, SimCluster, applied_deployment_patches, fleet, wait_for};
use futures::StreamExt;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use servicerefresh_core::crd::Phase;
use servicerefresh_operator::controller::OperatorConfig;
use servicerefresh_sim::{FaultRule, RuleError, SimConfig};

const DEADLINE: Duration = Duration::from_secs(90);

fn operator(cluster: &SimCluster) -> Operator {
    // A short retry delay: without the back-off, refused writes would be retried this often.
    let config = OperatorConfig { retry_delay: Duration::from_millis(200), ..Default::default() };
    Operator::start_with(&cluster.client, config)
}

/// Status writes refused as etcd refuses an object over its size limit.
fn refused_status_writes(times: Option<u64>) -> FaultRule {
    FaultRule {
        fail: "patch servicerefreshes/status".into(),
        times,
        error: RuleError::RequestTooLarge,
        ..FaultRule::default()
    }
}

async fn warnings(cluster: &SimCluster, name: &str, reason: &str) -> usize {
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let all = events.list(&ListParams::default()).await.expect("list events");
    all.items
        .iter()
        .filter(|event| event.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|event| event.reason.as_deref() == Some(reason))
        .count()
}

/// When each status write since request `since` arrived, in ms on the sim's clock.
fn status_write_times(cluster: &SimCluster, since: usize) -> Vec<u64> {
    cluster.sim.requests()[since..]
        .iter()
        .filter(|r| r.verb == "patch" && r.path.ends_with("/status"))
        .filter(|r| r.path.contains("/servicerefreshes/"))
        .map(|r| r.at_ms)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_status_stalls_the_resource_with_the_reason_and_the_run_then_goes_on() {
    let cluster = SimCluster::start(SimConfig { rollout_ms: 400, ..fleet(12, 0, 7) }).await;
    let names = cluster.all_deployment_names().await;
    let operator = operator(&cluster);
    cluster.create_refresh("refused", json!({"selector": {}, "batchSize": 4})).await;
    wait_for(DEADLINE, "batch 1 to run", || async {
        let status = cluster.status("refused").await?;
        common::batch(&status, 1).map(|_| ())
    })
    .await;
    // Every version of the resource from now on, so the short-lived stall is seen too.
    let config = watcher::Config::default().fields("metadata.name=refused");
    let mut versions = watcher::watcher(cluster.refreshes(), config).applied_objects().boxed();
    // The next status write is refused; the marker after it goes through.
    cluster.sim.add_fault_rule(refused_status_writes(Some(1)));
    let stalled = tokio::time::timeout(DEADLINE, async {
        while let Some(Ok(refresh)) = versions.next().await {
            let stalled = refresh.status.iter().flat_map(|s| &s.conditions).find(|c| {
                c.type_ == "Stalled" && c.status == "True" && c.reason == "StatusWriteRefused"
            });
            if let Some(stalled) = stalled {
                return stalled.message.clone();
            }
        }
        panic!("the watch ended")
    })
    .await
    .expect("a version of the resource Stalled for the refused write");
    assert!(stalled.contains("etcdserver: request is too large"), "{stalled}");
    assert!(stalled.contains("nothing more is restarted"), "{stalled}");
    wait_for(DEADLINE, "the refusal's Warning Event", || async {
        (warnings(&cluster, "refused", "StatusWriteRefused").await > 0).then_some(())
    })
    .await;

    // Once a status can be written again, the run goes on and every Deployment is restarted
    // exactly once.
    let status = cluster.wait_for_run_end("refused", DEADLINE).await;
    operator.stop().await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{:?}", status.run);
    common::assert_template_changes(&cluster.sim, &names, 1);
    assert_eq!(warnings(&cluster, "refused", "StatusWriteRefused").await, 1, "said once");
    let stalled = status.conditions.iter().find(|c| c.type_ == "Stalled").expect("Stalled");
    assert_eq!(stalled.status, "False", "an accepted write clears the stall");
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_writes_refused_for_good_back_off_and_restart_nothing() {
    let cluster = SimCluster::start(fleet(6, 0, 7)).await;
    cluster.sim.add_fault_rule(refused_status_writes(None));
    let operator = operator(&cluster);
    let since = cluster.sim.requests().len();
    cluster.create_refresh("refused", json!({"selector": {}, "batchSize": 2})).await;
    // Each try writes the decided status, then the Stalled marker: both refused. Four tries.
    let attempts = wait_for(DEADLINE, "four tries of the refused status", || async {
        let at = status_write_times(&cluster, since);
        (at.len() >= 8).then_some(at)
    })
    .await;
    let restarts = applied_deployment_patches(&cluster.sim.requests()[since..]);
    operator.stop().await;
    let tries: Vec<u64> = attempts.iter().step_by(2).copied().collect();
    let gaps: Vec<u64> = tries.windows(2).map(|pair| pair[1] - pair[0]).collect();
    eprintln!("gaps between tries of a refused status (ms, sim clock): {gaps:?}");
    // Without the back-off the tries would follow the 200 ms retry delay. The waits double
    // from 2 s; load can only lengthen them.
    for (gap, least) in gaps.iter().zip([1_900, 3_900, 7_900]) {
        assert!(*gap >= least, "tries {gaps:?} ms apart: no back-off");
    }
    assert_eq!(restarts, 0, "nothing restarted while no status could be stored");
    assert_eq!(warnings(&cluster, "refused", "StatusWriteRefused").await, 1, "said once");
    let status = cluster.status("refused").await.unwrap_or_default();
    assert!(status.run.is_none(), "no status was ever stored: {status:?}");
    cluster.sim.shutdown().await;
}
