//! Start-up cost of a generated fleet: wall time of `start` and the resident
//! memory afterwards, for the fleet sizes given on the command line (default
//! 1000 and 10000). Each size runs in a fresh child process so that memory
//! figures do not accumulate. Run with
//! `cargo run --release -p servicerefresh-sim --example startup_cost [-- 1000 10000]`.

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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(size) = args.first().and_then(|arg| arg.strip_prefix("--child=")) {
        let deployments: usize = size.parse().expect("a fleet size");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let before = rss_mib();
            let started = Instant::now();
            let sim = servicerefresh_sim::start(SimConfig { deployments, ..Default::default() })
                .await
                .expect("sim starts");
            let elapsed = started.elapsed();
            println!(
                "{deployments:>7} Deployments: start-up {:>8.2?}, resident memory {:>7.1} MiB (+{:.1} MiB)",
                elapsed,
                rss_mib(),
                rss_mib() - before,
            );
            sim.shutdown().await;
        });
        return;
    }
    let sizes = if args.is_empty() { vec!["1000".to_string(), "10000".to_string()] } else { args };
    let exe = std::env::current_exe().expect("own path");
    for size in sizes {
        let status = std::process::Command::new(&exe)
            .arg(format!("--child={size}"))
            .status()
            .expect("child runs");
        assert!(status.success());
    }
}
