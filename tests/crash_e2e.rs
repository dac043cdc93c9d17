//! Crashes at the worst moment of every batch, made deterministic by the simulated cluster's
//! fault rules: the status write that follows a batch's restart patches is lost (500), times
//! out without being carried out or after it was (504), or the operator process is killed
//! with SIGKILL while that write is in flight. Whatever the crash, the next pass must adopt
//! the restarts already sent instead of sending new ones: every Deployment's pod template
//! changes exactly once and the run succeeds, judged from the sim's own counters and request
//! log, and every batch of the run met the crash, every time, not by luck.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::process::{Kubeconfig, OperatorProcess};
use common::{NAMESPACE, Operator, SimCluster, wait_for};
use serde_json::json;
use servicerefresh_core::crd::{Phase, ServiceRefreshStatus};
use servicerefresh_sim::{FaultRule, RequestRecord, RuleError, SimConfig};

const DEADLINE: Duration = Duration::from_secs(120);
const NAME: &str = "crash";
/// 24 Deployments in batches of 6: four batches, four crashes.
const DEPLOYMENTS: usize = 24;
const BATCH_SIZE: usize = 6;

/// The shared generated fleet (`common::fleet`), none failing, with the sim's default progress
/// deadline: a Deployment fails here only through the faults a test injects.
fn fleet() -> SimConfig {
    let progress_deadline_seconds = SimConfig::default().progress_deadline_seconds;
    SimConfig { progress_deadline_seconds, ..common::fleet(DEPLOYMENTS, 0, 13) }
}

/// Fails the status write that follows a batch's restart patches, `times` times.
fn after_the_patches(error: RuleError, times: Option<u64>) -> FaultRule {
    FaultRule {
        fail: "patch servicerefreshes/status".into(),
        after: "patch deployments".into(),
        times,
        error,
        ..FaultRule::default()
    }
}

/// What every test asserts once the run ended: it succeeded, each Deployment's pod template
/// changed exactly once, and each batch's patches were followed by a status write that was
/// lost (`lost` says which answers count as lost).
async fn assert_once_each_despite_a_crash_per_batch(
    cluster: &SimCluster,
    status: &ServiceRefreshStatus,
    lost: impl Fn(Option<u16>) -> bool,
) {
    assert_eq!(status.phase, Some(Phase::Succeeded), "{:?}", status.run);
    assert_eq!(status.totals.ready as usize, DEPLOYMENTS);
    let view = cluster.run_view(NAME).await;
    assert_eq!(view.batches.len(), DEPLOYMENTS.div_ceil(BATCH_SIZE));
    let stats = cluster.sim.stats();
    assert_eq!(stats.template_changes.len(), DEPLOYMENTS, "{:?}", stats.template_changes);
    for (deployment, changes) in &stats.template_changes {
        assert_eq!(*changes, 1, "{deployment}: its pod template changed {changes} times");
    }

    // From the request log: the last restart patch the API server applied for each batch,
    // and the first status write after it, which the crash must have hit.
    let requests = cluster.sim.requests();
    let applied_patches: BTreeMap<String, usize> = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| r.verb == "patch" && r.code == Some(200))
        .filter_map(|(index, r)| {
            let name = r
                .path
                .strip_prefix(&format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/"))?;
            Some((name.to_owned(), index))
        })
        .collect();
    let status_path =
        format!("/apis/gisops.io/v1alpha1/namespaces/{NAMESPACE}/servicerefreshes/{NAME}/status");
    for batch in &view.batches {
        let last_patch = batch
            .services
            .iter()
            .map(|service| {
                *applied_patches.get(&service.key.name).unwrap_or_else(|| {
                    panic!("batch {}: no applied restart patch of {}", batch.index, service.key)
                })
            })
            .max()
            .expect("a batch has services");
        let next_write: Option<&RequestRecord> =
            requests[last_patch..].iter().find(|r| r.verb == "patch" && r.path == status_path);
        let code = next_write.map(|r| r.code);
        assert!(
            code.is_some_and(&lost),
            "batch {}: the status write after its patches was answered {code:?}",
            batch.index
        );
    }
}

/// Fails the test at once if any Deployment was restarted a second time: a run that restarts
/// again after each crash may never end, and the test should not wait out its deadline.
fn assert_no_second_restart(cluster: &SimCluster) {
    let stats = cluster.sim.stats();
    let twice: Vec<_> = stats.template_changes.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "restarted more than once: {twice:?}");
}

async fn wait_for_the_run_end(cluster: &SimCluster) -> ServiceRefreshStatus {
    wait_for(DEADLINE, "the run to end", || async {
        assert_no_second_restart(cluster);
        cluster.status(NAME).await.filter(|status| {
            matches!(status.phase, Some(Phase::Succeeded | Phase::Failed | Phase::Cancelled))
        })
    })
    .await
}

/// Runs a ServiceRefresh over the fleet with `rule` in place and the operator in-process.
async fn run_with(rule: FaultRule) -> (SimCluster, ServiceRefreshStatus, u64) {
    let cluster = SimCluster::start(fleet()).await;
    let index = cluster.sim.add_fault_rule(rule);
    let operator = Operator::start(&cluster.client);
    cluster.create_refresh(NAME, json!({"selector": {}, "batchSize": BATCH_SIZE})).await;
    let status = wait_for_the_run_end(&cluster).await;
    operator.stop().await;
    let fired = cluster.sim.fault_mix().rules[index].fired;
    (cluster, status, fired)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_write_lost_after_every_batch_restarts_nothing_twice() {
    let (cluster, status, fired) =
        run_with(after_the_patches(RuleError::InternalError, None)).await;
    assert!(fired >= status.batches.len() as u64, "the rule fired {fired} times");
    assert_once_each_despite_a_crash_per_batch(&cluster, &status, |code| code == Some(500)).await;
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_write_timing_out_after_every_batch_restarts_nothing_twice() {
    let (cluster, status, _) = run_with(after_the_patches(RuleError::Timeout, None)).await;
    assert_once_each_despite_a_crash_per_batch(&cluster, &status, |code| code == Some(504)).await;
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_write_answered_504_but_committed_restarts_nothing_twice() {
    let rule = FaultRule { commits: true, ..after_the_patches(RuleError::Timeout, None) };
    let (cluster, status, _) = run_with(rule).await;
    assert_once_each_despite_a_crash_per_batch(&cluster, &status, |code| code == Some(504)).await;
    cluster.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_killed_after_every_batch_of_patches_restarts_nothing_twice() {
    let cluster = SimCluster::start(fleet()).await;
    let kubeconfig = Kubeconfig::for_sim(&cluster.sim);
    // One replica without a Lease: its successor starts at once.
    let flags = ["--leader-election=false"];
    // The status write after the next batch's patches hangs, and the process dies while it
    // is in flight: the patches are applied, the write never is. A fresh rule is in place
    // before each process starts, so no batch's patches can slip past it.
    let hang = || FaultRule { hang_ms: 600_000, ..after_the_patches(RuleError::Timeout, Some(1)) };
    let mut rule = cluster.sim.add_fault_rule(hang());
    let mut operator = OperatorProcess::spawn(&kubeconfig.path, "op-1", &flags);
    cluster.create_refresh(NAME, json!({"selector": {}, "batchSize": BATCH_SIZE})).await;
    let batches = DEPLOYMENTS.div_ceil(BATCH_SIZE);
    let mut kills = 0;
    loop {
        let hit = wait_for(DEADLINE, "the next batch's status write, or the run's end", || async {
            assert_no_second_restart(&cluster);
            if cluster.sim.fault_mix().rules[rule].fired == 1 {
                return Some(true);
            }
            let ended = cluster.status(NAME).await.and_then(|s| s.run).and_then(|r| r.end_time);
            ended.map(|_| false)
        })
        .await;
        if !hit {
            break;
        }
        // More hits than batches: a successor restarted a batch again instead of adopting it.
        assert!(
            kills < batches,
            "a status write after restart patches for the {}th time",
            kills + 1
        );
        operator.kill9();
        kills += 1;
        rule = cluster.sim.add_fault_rule(hang());
        operator = OperatorProcess::spawn(&kubeconfig.path, &format!("op-{}", kills + 1), &flags);
    }
    let status = wait_for_the_run_end(&cluster).await;
    operator.signal("TERM");
    assert!(operator.wait_exit(Duration::from_secs(30)).await.success(), "a clean exit");
    assert_eq!(kills, batches, "one kill per batch");
    // The write in flight at each kill was never answered.
    assert_once_each_despite_a_crash_per_batch(&cluster, &status, |code| code.is_none()).await;
    cluster.sim.shutdown().await;
}
