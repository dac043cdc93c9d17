//! `--initial-list`: each way of filling the caches fills them, and asks the API server for
//! what it says: paged consistent lists (the default), one list from the watch cache, or
//! watches that stream what exists.

mod common;

use std::time::Duration;

use common::{Operator, SimCluster, fleet};
use serde_json::json;
use servicerefresh_core::crd::Phase;
use servicerefresh_operator::controller::{InitialList, OperatorConfig};
use servicerefresh_sim::RequestRecord;

const DEPLOYMENTS: usize = 250;

/// Runs one refresh of the whole fleet with the operator listing as `initial_list` says, and
/// returns the requests it made for Deployments (lists and watches).
async fn run_listing(initial_list: InitialList) -> Vec<RequestRecord> {
    let cluster = SimCluster::start(fleet(DEPLOYMENTS, 0, 41)).await;
    let config = OperatorConfig {
        initial_list,
        retry_delay: Duration::from_millis(200),
        ..Default::default()
    };
    let operator = Operator::start_with(&cluster.client, config);
    cluster.create_refresh("all", json!({"selector": {}, "batchSize": 100})).await;
    let status = cluster.wait_for_run_end("all", Duration::from_secs(60)).await;
    assert_eq!(status.phase, Some(Phase::Succeeded), "{initial_list:?}: {status:?}");
    assert_eq!(status.totals.services, DEPLOYMENTS as u32, "{initial_list:?}: the cache is full");
    assert_eq!(status.totals.ready, DEPLOYMENTS as u32);
    operator.stop().await;
    let requests = cluster
        .sim
        .requests()
        .into_iter()
        .filter(|request| request.path.ends_with("/deployments"))
        .filter(|request| matches!(request.verb.as_str(), "list" | "watch"))
        .collect();
    cluster.sim.shutdown().await;
    requests
}

fn query(request: &RequestRecord) -> &str {
    request.query.as_deref().unwrap_or("")
}

fn lists(requests: &[RequestRecord]) -> Vec<&RequestRecord> {
    requests.iter().filter(|request| request.verb == "list").collect()
}

#[tokio::test]
async fn paged_lists_read_a_hundred_at_a_time_without_the_watch_cache() {
    let requests = run_listing(InitialList::Paged).await;
    let lists = lists(&requests);
    assert_eq!(lists.len(), 3, "250 Deployments in pages of 100: {lists:#?}");
    for list in &lists {
        assert!(query(list).contains("limit=100"), "{list:?}");
        assert!(!query(list).contains("resourceVersion=0"), "a consistent read: {list:?}");
    }
    assert!(query(lists[1]).contains("continue="), "later pages continue the first");
    assert!(requests.iter().any(|request| request.verb == "watch"));
}

#[tokio::test]
async fn cached_lists_take_the_whole_collection_from_the_watch_cache() {
    let requests = run_listing(InitialList::Cached).await;
    let lists = lists(&requests);
    assert_eq!(lists.len(), 1, "one answer: {lists:#?}");
    assert!(query(lists[0]).contains("resourceVersion=0"), "{:?}", lists[0]);
    assert!(!query(lists[0]).contains("limit="), "kube leaves out resourceVersion=0 with a limit");
}

#[tokio::test]
async fn streaming_lists_fill_the_caches_with_watches_alone() {
    let requests = run_listing(InitialList::Streaming).await;
    assert!(
        requests.iter().all(|request| request.verb == "watch"),
        "no list at all: {requests:#?}"
    );
    assert!(
        requests.iter().any(|request| query(request).contains("sendInitialEvents=true")),
        "{requests:#?}"
    );
}
