//! Cost of a generated fleet: wall time of `start`, the resident memory
//! afterwards and the objects stored, for fleet sizes given on the command
//! line (default 1,000 and 10,000), with ReplicaSets and Pods made at
//! start-up ("eager"), on each Deployment's first rollout ("lazy"), or not
//! at all ("off"), without nodes or on three nodes sized to the fleet
//! ("+nodes": a scheduler places every new pod); then the sim's CPU time per
//! rollout when (up to 1,000 of) its Deployments are restarted, 100 at a
//! time. With `--stateful`, the sizes are numbers of StatefulSets and of
//! DaemonSets (as many of each, no Deployments), all made at start-up,
//! without nodes or on three nodes ("stateful+nodes"), and (up to 1,000 of)
//! the StatefulSets are restarted. Each case runs in a fresh child process
//! so that memory figures do not accumulate. Run with `cargo run --release
//! -p servicerefresh-sim --example startup_cost [-- [--stateful] 1000 10000]`.

use std::time::Instant;

use servicerefresh_sim::SimConfig;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn count(base: &str, path: &str) -> usize {
    let body: serde_json::Value =
        reqwest::get(format!("{base}{path}")).await.expect("list").json().await.expect("json");
    body["items"].as_array().map_or(0, Vec::len)
}

/// The process's CPU time (user and system), in ms.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime, in clock ticks of 10 ms.
    (ticks(11) + ticks(12)) * 10.0
}

/// Restarts `count` workloads of `plural` (`deployments`, `statefulsets`),
/// 100 at a time, each batch waited for; returns the process's CPU time
/// per rollout in ms.
async fn restart(base: &str, plural: &str, count: usize) -> f64 {
    let http = reqwest::Client::new();
    let path = format!("{base}/apis/apps/v1/namespaces/arcgis/{plural}");
    let list: serde_json::Value =
        http.get(&path).send().await.expect("list").json().await.expect("json");
    let names: Vec<String> = list["items"]
        .as_array()
        .map(|items| {
            items.iter().filter_map(|d| d["metadata"]["name"].as_str().map(String::from)).collect()
        })
        .unwrap_or_default();
    let started = cpu_ms();
    for batch in names.iter().take(count).collect::<Vec<_>>().chunks(100) {
        for name in batch {
            let patch =
                r#"{"spec":{"template":{"metadata":{"annotations":{"restartedAt":"now"}}}}}"#;
            http.patch(format!("{path}/{name}"))
                .header("content-type", "application/strategic-merge-patch+json")
                .body(patch)
                .send()
                .await
                .expect("patch");
        }
        loop {
            let list: serde_json::Value =
                http.get(&path).send().await.expect("list").json().await.expect("json");
            let done = list["items"].as_array().is_some_and(|items| {
                items
                    .iter()
                    .filter(|d| batch.iter().any(|name| d["metadata"]["name"] == name.as_str()))
                    .all(|d| {
                        let want = d["spec"]["replicas"].as_u64().unwrap_or(1);
                        d["status"]["observedGeneration"] == d["metadata"]["generation"]
                            && d["status"]["updatedReplicas"].as_u64() == Some(want)
                            && d["status"]["availableReplicas"].as_u64() == Some(want)
                            && d["status"]["replicas"].as_u64() == Some(want)
                            && d["status"]["currentRevision"] == d["status"]["updateRevision"]
                    })
            });
            if done {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    (cpu_ms() - started) / count.max(1) as f64
}

fn child(deployments: usize, mode: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (objects, nodes) = match mode.split_once('+') {
            Some((objects, _)) => (objects, Some(3)),
            None => (mode, None),
        };
        let config = match objects {
            "eager" => SimConfig {
                deployments,
                fleet_objects_limit: usize::MAX,
                rollout_ms: 200,
                nodes,
                ..Default::default()
            },
            "lazy" => SimConfig {
                deployments,
                fleet_objects_limit: 0,
                rollout_ms: 200,
                nodes,
                ..Default::default()
            },
            _ => SimConfig { deployments, workload_objects: false, rollout_ms: 200, ..Default::default() },
        };
        let before = rss_mib();
        let started = Instant::now();
        let sim = servicerefresh_sim::start(config).await.expect("sim starts");
        let elapsed = started.elapsed();
        let rss = rss_mib();
        let base = sim.base_url();
        let replica_sets = count(&base, "/apis/apps/v1/replicasets").await;
        let pods = count(&base, "/api/v1/pods").await;
        let restarted = restart(&base, "deployments", deployments.min(1000)).await;
        println!(
            "{deployments:>7} Deployments, objects {mode:<11}: start-up {:>8.2?}, resident {:>7.1} MiB (+{:>6.1} MiB), {replica_sets} ReplicaSets, {pods} Pods; CPU per rollout {restarted:.2} ms",
            elapsed,
            rss,
            rss - before,
        );
        sim.shutdown().await;
    });
}

/// A fleet of `size` StatefulSets and `size` DaemonSets, on `nodes`.
fn stateful_child(size: usize, nodes: Option<usize>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let config = SimConfig {
            stateful_sets: size,
            daemon_sets: size,
            rollout_ms: 200,
            nodes,
            ..Default::default()
        };
        let before = rss_mib();
        let started = Instant::now();
        let sim = servicerefresh_sim::start(config).await.expect("sim starts");
        let elapsed = started.elapsed();
        let rss = rss_mib();
        let base = sim.base_url();
        let revisions = count(&base, "/apis/apps/v1/controllerrevisions").await;
        let pods = count(&base, "/api/v1/pods").await;
        let restarted = restart(&base, "statefulsets", size.min(1000)).await;
        println!(
            "{size:>7} StatefulSets and DaemonSets{}: start-up {:>8.2?}, resident {:>7.1} MiB (+{:>6.1} MiB), {revisions} ControllerRevisions, {pods} Pods; CPU per StatefulSet rollout {restarted:.2} ms",
            if nodes.is_some() { " on 3 nodes" } else { "" },
            elapsed,
            rss,
            rss - before,
        );
        sim.shutdown().await;
    });
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(case) = args.first().and_then(|arg| arg.strip_prefix("--child=")) {
        let (size, mode) = case.split_once(':').expect("size:mode");
        let size = size.parse().expect("a fleet size");
        if let Some(nodes) = mode.strip_prefix("stateful") {
            stateful_child(size, (!nodes.is_empty()).then_some(3));
        } else {
            child(size, mode);
        }
        return;
    }
    let stateful = args.first().is_some_and(|arg| arg == "--stateful");
    if stateful {
        args.remove(0);
    }
    let sizes = if args.is_empty() { vec!["1000".to_string(), "10000".to_string()] } else { args };
    let modes: &[&str] = if stateful {
        &["stateful", "stateful+nodes"]
    } else {
        &["off", "lazy", "eager", "lazy+nodes", "eager+nodes"]
    };
    let exe = std::env::current_exe().expect("own path");
    for size in sizes {
        for mode in modes {
            let status = std::process::Command::new(&exe)
                .arg(format!("--child={size}:{mode}"))
                .status()
                .expect("child runs");
            assert!(status.success());
        }
    }
}
