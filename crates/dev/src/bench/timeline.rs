//! What happened during a run, reconstructed afterwards: the sim's request log (every
//! request with its arrival time, attributed to the operator by its User-Agent) and a watch
//! the benchmark keeps on the Deployments, which notes when each one was first delivered as
//! rolled out. From them: the run's span, each batch's handoff (last service delivered ready
//! to the next batch's first restart patch at the sim) and the operator's request counts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher;
use servicerefresh_sim::{RequestRecord, SimHandle};

use super::cluster::NAMESPACE;
use super::operator::IDENTITY;
use servicerefresh_core::crd::{ServiceRefreshStatus, WorkloadKind};
use servicerefresh_core::engine::DeploymentSnapshot;
use servicerefresh_core::engine::Plan;
use servicerefresh_core::engine::readiness::{Verdict, verdict};
use servicerefresh_core::engine::view::batch_members;

/// The sim's request-log clock (milliseconds since the sim started, truncated) read from
/// this process's monotonic clock, to a fraction of a millisecond.
#[derive(Clone, Copy, Debug)]
pub struct SimClock {
    /// The latest instant that is certainly not before the sim's zero.
    zero: Instant,
}

impl SimClock {
    /// Samples the sim's clock for a few milliseconds: each sample bounds its zero from
    /// above by less than a millisecond, and the tightest bound is kept.
    pub fn calibrate(sim: &SimHandle) -> Self {
        let started = Instant::now();
        let mut zero = started;
        while started.elapsed() < Duration::from_millis(3) {
            let now = Instant::now();
            let candidate = now - Duration::from_millis(sim.now_ms());
            zero = zero.min(candidate);
        }
        Self { zero }
    }

    /// `at` in sim milliseconds.
    pub fn ms(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.zero).as_secs_f64() * 1000.0
    }
}

/// The middle of the millisecond a request arrived in (the log truncates to whole ms).
pub fn arrival(record: &RequestRecord) -> f64 {
    record.at_ms as f64 + 0.5
}

/// When the benchmark's own Deployment watch first delivered each Deployment rolled out
/// after a restart (its pod template names a run, and `kubectl rollout status` would say
/// done). The watch ends when this is dropped, before its cluster goes away.
pub struct ReadyTimes {
    first_ready: Arc<Mutex<HashMap<String, Instant>>>,
    task: tokio::task::AbortHandle,
}

impl ReadyTimes {
    /// Starts the watch and returns once it has listed the Deployments.
    pub async fn watch(client: kube::Client) -> Self {
        let first_ready = Arc::new(Mutex::new(HashMap::new()));
        let api: Api<DeploymentSnapshot> =
            Api::namespaced_with(client, NAMESPACE, &WorkloadKind::Deployment);
        let (listed, listed_rx) = tokio::sync::oneshot::channel::<()>();
        let sink = first_ready.clone();
        let task = tokio::spawn(async move {
            let mut listed = Some(listed);
            let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                let at = Instant::now();
                match event {
                    Ok(watcher::Event::Apply(deployment))
                        if deployment.restarted_by.is_some()
                            && verdict(&deployment, deployment.generation()) == Verdict::Ready =>
                    {
                        lock(&sink).entry(deployment.name().to_owned()).or_insert(at);
                    }
                    Ok(watcher::Event::InitDone) => {
                        if let Some(listed) = listed.take() {
                            let _ = listed.send(());
                        }
                    }
                    _ => {}
                }
            }
        });
        let _ = listed_rx.await;
        Self { first_ready, task: task.abort_handle() }
    }

    pub fn get(&self, name: &str) -> Option<Instant> {
        lock(&self.first_ready).get(name).copied()
    }
}

impl Drop for ReadyTimes {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Single inserts and reads: a panic cannot leave the map torn.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether the operator sent this request.
pub fn from_operator(record: &RequestRecord) -> bool {
    record.user_agent.as_deref().is_some_and(|agent| agent.contains(&format!("({IDENTITY})")))
}

/// `resource` or `resource/subresource` of an API path; `None` outside the resource API.
pub fn resource_of(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').filter(|segment| !segment.is_empty()).collect();
    let rest = match segments.as_slice() {
        ["api", _, rest @ ..] => rest,
        ["apis", _, _, rest @ ..] => rest,
        _ => return None,
    };
    let rest = match rest {
        ["namespaces", _, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    match rest {
        [resource] | [resource, _] => Some((*resource).to_owned()),
        [resource, _, subresource, ..] => Some(format!("{resource}/{subresource}")),
        [] => None,
    }
}

/// The name a request path addresses, if it addresses one object.
fn object_name(path: &str, resource: &str) -> Option<String> {
    let mut segments = path.split('/').skip_while(|segment| *segment != resource);
    segments.next()?;
    segments.next().map(str::to_owned)
}

/// The operator's requests by `verb resource`, among `records`. The start-up check (`GET
/// /version`, then a one-item LIST of ServiceRefreshes to see the CRD is installed, before
/// any watch starts) is counted apart, under `startup-check ...`, so the LIST counts are the
/// watch caches' own; so are the further pages of a paginated LIST (`continue=`), under
/// `list-page ...`, so one LIST counts once however many pages it took.
pub fn operator_counts(records: &[RequestRecord]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    let mut checking = false;
    for record in records.iter().filter(|record| from_operator(record)) {
        let resource = resource_of(&record.path).unwrap_or_else(|| record.path.clone());
        let probe = match (record.verb.as_str(), resource.as_str()) {
            ("get", "/version") => {
                checking = true;
                true
            }
            ("list", "servicerefreshes") if checking => {
                checking = false;
                true
            }
            _ => false,
        };
        let page = record.verb == "list"
            && record.query.as_deref().is_some_and(|query| {
                query.split('&').any(|pair| pair.starts_with("continue=") && pair.len() > 9)
            });
        let key = match (probe, page) {
            (true, _) => format!("startup-check {} {resource}", record.verb),
            (false, true) => format!("list-page {resource}"),
            (false, false) => format!("{} {resource}", record.verb),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// The requests of one whole run, as the sim saw them.
pub struct RunRequests<'a> {
    /// The benchmark's create of the ServiceRefresh.
    pub created: &'a RequestRecord,
    /// Every request from the create on.
    pub during: &'a [RequestRecord],
}

impl<'a> RunRequests<'a> {
    /// The requests from the first create of a ServiceRefresh at or after `since_ms`.
    pub fn since(records: &'a [RequestRecord], since_ms: u64) -> Option<Self> {
        let position = records.iter().position(|record| {
            record.at_ms >= since_ms
                && record.verb == "create"
                && resource_of(&record.path).as_deref() == Some("servicerefreshes")
        })?;
        Some(Self { created: &records[position], during: &records[position..] })
    }

    /// The operator's first restart patch of each Deployment, by name.
    pub fn first_patches(&self) -> HashMap<String, &'a RequestRecord> {
        let mut first = HashMap::new();
        for record in self.during.iter().filter(|record| {
            from_operator(record)
                && record.verb == "patch"
                && resource_of(&record.path).as_deref() == Some("deployments")
        }) {
            if let Some(name) = object_name(&record.path, "deployments") {
                first.entry(name).or_insert(record);
            }
        }
        first
    }

    /// Request-body bytes the operator wrote during the run: (every write, status writes).
    pub fn bytes_written(&self) -> (u64, u64) {
        let writes = self.during.iter().filter(|record| from_operator(record) && record.is_write());
        writes.fold((0, 0), |(all, status), record| {
            let is_status = resource_of(&record.path).as_deref() == Some("servicerefreshes/status");
            (all + record.body_bytes, status + if is_status { record.body_bytes } else { 0 })
        })
    }

    /// The first restart patch of the run.
    pub fn first_patch(&self) -> Option<&'a RequestRecord> {
        self.during.iter().find(|record| {
            from_operator(record)
                && record.verb == "patch"
                && resource_of(&record.path).as_deref() == Some("deployments")
        })
    }

    /// The operator's last status write.
    pub fn last_status_write(&self) -> Option<&'a RequestRecord> {
        self.during.iter().rev().find(|record| {
            from_operator(record)
                && record.verb == "patch"
                && resource_of(&record.path).as_deref() == Some("servicerefreshes/status")
        })
    }
}

/// Time between batches, in ms: for each batch after the first, from the moment the
/// benchmark's watch delivered the previous batch's last service ready to the arrival of
/// the batch's first restart patch. Batches whose times are incomplete are left out.
pub fn handoffs(
    status: &ServiceRefreshStatus,
    plan: Option<&Plan>,
    requests: &RunRequests,
    ready: &ReadyTimes,
    clock: &SimClock,
) -> Vec<f64> {
    boundaries(status, plan, requests, ready, clock)
        .into_iter()
        .map(|(last_ready, first_patch)| first_patch - last_ready)
        .collect()
}

/// For each batch after the first: when the previous batch's last service was delivered
/// ready and when the batch's first restart patch arrived, in ms of the sim's clock.
fn boundaries(
    status: &ServiceRefreshStatus,
    plan: Option<&Plan>,
    requests: &RunRequests,
    ready: &ReadyTimes,
    clock: &SimClock,
) -> Vec<(f64, f64)> {
    let patches = requests.first_patches();
    let Some(plan) = plan else {
        return Vec::new();
    };
    let batches: Vec<Vec<String>> = status
        .batches
        .iter()
        .map(|batch| batch_members(batch, plan).into_iter().map(|key| key.name).collect())
        .collect();
    batches
        .windows(2)
        .filter_map(|pair| {
            let last_ready = pair[0]
                .iter()
                .map(|name| ready.get(name).map(|at| clock.ms(at)))
                .collect::<Option<Vec<f64>>>()?
                .into_iter()
                .fold(f64::MIN, f64::max);
            let first_patch = pair[1]
                .iter()
                .map(|name| patches.get(name).map(|record| arrival(record)))
                .collect::<Option<Vec<f64>>>()?
                .into_iter()
                .fold(f64::MAX, f64::min);
            Some((last_ready, first_patch))
        })
        .collect()
}

/// Where each handoff's time went, in ms: from the last service delivered ready to the
/// arrival of the status write that starts the next batch (the operator's reaction: its
/// watch, the decision, serializing the status), and from that arrival to the first
/// restart patch's (the status write's round trip through the API server). Handoffs
/// without a status write between are left out.
pub fn handoff_parts(
    status: &ServiceRefreshStatus,
    plan: Option<&Plan>,
    requests: &RunRequests,
    ready: &ReadyTimes,
    clock: &SimClock,
) -> Vec<(f64, f64)> {
    let writes: Vec<f64> = requests
        .during
        .iter()
        .filter(|record| {
            from_operator(record)
                && record.verb == "patch"
                && resource_of(&record.path).as_deref() == Some("servicerefreshes/status")
        })
        .map(arrival)
        .collect();
    boundaries(status, plan, requests, ready, clock)
        .into_iter()
        .filter_map(|(last_ready, first_patch)| {
            let write = writes
                .iter()
                .copied()
                .filter(|at| *at <= first_patch && *at >= last_ready - 1.0)
                .fold(f64::NAN, f64::max);
            (!write.is_nan()).then(|| ((write - last_ready).max(0.0), first_patch - write))
        })
        .collect()
}

/// Where one batch's time went, in ms: from its first restart patch arriving to its last
/// (`spread`), and from that last patch to the benchmark's watch delivering the batch's last
/// service ready (`rollout`, the rollout time itself plus the sim's and the watch's delays).
#[derive(Clone, Copy, Debug)]
pub struct BatchTimes {
    pub spread: f64,
    pub rollout: f64,
}

/// [`BatchTimes`] of every batch whose times are complete.
pub fn batch_times(
    status: &ServiceRefreshStatus,
    plan: Option<&Plan>,
    requests: &RunRequests,
    ready: &ReadyTimes,
    clock: &SimClock,
) -> Vec<BatchTimes> {
    let patches = requests.first_patches();
    let Some(plan) = plan else {
        return Vec::new();
    };
    status
        .batches
        .iter()
        .filter_map(|batch| {
            let names: Vec<String> =
                batch_members(batch, plan).into_iter().map(|key| key.name).collect();
            let sent = names
                .iter()
                .map(|name| patches.get(name).map(|record| arrival(record)))
                .collect::<Option<Vec<f64>>>()?;
            let last_ready = names
                .iter()
                .map(|name| ready.get(name).map(|at| clock.ms(at)))
                .collect::<Option<Vec<f64>>>()?
                .into_iter()
                .fold(f64::MIN, f64::max);
            let first = sent.iter().copied().fold(f64::MAX, f64::min);
            let last = sent.iter().copied().fold(f64::MIN, f64::max);
            Some(BatchTimes { spread: last - first, rollout: last_ready - last })
        })
        .collect()
}

/// The `fraction` quantile (nearest rank) of `values`.
pub fn quantile(values: &[f64], fraction: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_resource() {
        let cases = [
            ("/apis/apps/v1/namespaces/arcgis/deployments", Some("deployments")),
            ("/apis/apps/v1/namespaces/arcgis/deployments/web", Some("deployments")),
            ("/apis/apps/v1/deployments", Some("deployments")),
            (
                "/apis/gisops.io/v1alpha1/namespaces/arcgis/servicerefreshes/r/status",
                Some("servicerefreshes/status"),
            ),
            ("/api/v1/namespaces/arcgis", Some("namespaces")),
            ("/api/v1/configmaps", Some("configmaps")),
            ("/version", None),
        ];
        for (path, resource) in cases {
            assert_eq!(resource_of(path).as_deref(), resource, "{path}");
        }
        assert_eq!(
            object_name("/apis/apps/v1/namespaces/arcgis/deployments/web", "deployments"),
            Some("web".to_owned())
        );
    }

    #[test]
    fn the_startup_check_is_counted_apart() {
        let record = |verb: &str, path: &str| RequestRecord {
            at_ms: 0,
            verb: verb.to_owned(),
            path: path.to_owned(),
            query: None,
            user_agent: Some(format!("servicerefresh ({IDENTITY})")),
            code: Some(200),
            body_bytes: 0,
        };
        let refreshes = "/apis/gisops.io/v1alpha1/namespaces/arcgis/servicerefreshes";
        let records = [
            record("get", "/version"),
            record("list", refreshes),
            record("list", "/apis/apps/v1/namespaces/arcgis/deployments"),
            record("list", refreshes),
            RequestRecord {
                query: Some("limit=500&continue=abc".to_owned()),
                ..record("list", "/apis/apps/v1/namespaces/arcgis/deployments")
            },
        ];
        let counts = operator_counts(&records);
        assert_eq!(counts.get("startup-check get /version"), Some(&1));
        assert_eq!(counts.get("startup-check list servicerefreshes"), Some(&1));
        assert_eq!(counts.get("list servicerefreshes"), Some(&1));
        assert_eq!(counts.get("list deployments"), Some(&1));
        assert_eq!(counts.get("list-page deployments"), Some(&1));
    }

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.5), 50.0);
        assert_eq!(quantile(&values, 0.99), 99.0);
        assert_eq!(quantile(&[3.0], 0.99), 3.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
