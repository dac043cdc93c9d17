//! `servicerefresh bench`: the performance figures of issue 11, each beside its target. It
//! runs the scenarios against simulated clusters in this process with the operator binary
//! as a separate process (so its memory and CPU are its own), the kubectl loop beside it
//! as the baseline, and the status size through the engine; it prints a table and can write
//! every figure as JSON. Timings are figures here, never assertions.

mod capacity;
mod cluster;
mod figures;
mod kubectl_loop;
mod operator;
mod record;
mod scenarios;
pub mod status_size;
mod timeline;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use serde_json::json;

pub use figures::{Figure, Report, Target};
use operator::Launch;
use scenarios::BATCH_SIZE;

/// Flags of `servicerefresh bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Small sizes for a smoke test (about a minute); the targets are for the full sizes,
    /// so quick figures are shown without them.
    #[arg(long)]
    quick: bool,
    /// Also write every figure as JSON to this file (`-`: standard output).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Which scenarios to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Scenario>,
    /// The operator binary to measure (default: this one).
    #[arg(long)]
    operator_binary: Option<PathBuf>,
    /// Environment for the operator process, as KEY=VALUE (e.g. MALLOC_ARENA_MAX=2).
    #[arg(long, value_parser = parse_env)]
    operator_env: Vec<(String, String)>,
    /// How many times every scenario runs; each figure is the median, shown with its spread.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    repeat: u32,
}

/// The benchmark's scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Whole runs of 200 and 1,000 Deployments: time against the ideal, handoffs, requests, CPU.
    Runs,
    /// The kubectl loop over 200 Deployments.
    Baseline,
    /// Resident memory and apply latency with 10,000 and 2,000 Deployments in the cluster.
    Footprint,
    /// The status size of a 10,000-service run.
    Status,
    /// Issue 18's capacity scenario: 60 Deployments on 3 nodes with 1500m spare, with and
    /// without capacity-aware pacing, beside the capacity-limited ideal.
    Capacity,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

/// The sizes of one invocation.
struct Sizes {
    rollout_ms: u64,
    runs: Vec<usize>,
    baseline: usize,
    /// (Deployments in the cluster, Deployments run, plan the whole fleet too).
    footprints: Vec<(usize, usize, bool)>,
    status_services: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                rollout_ms: 200,
                runs: vec![40],
                baseline: 20,
                footprints: vec![(1_000, 20, true)],
                status_services: 1_000,
            }
        } else {
            Sizes {
                rollout_ms: 500,
                runs: vec![200, 1_000],
                baseline: 200,
                footprints: vec![(10_000, 100, true), (2_000, 100, false)],
                status_services: 10_000,
            }
        }
    }
}

/// Runs the benchmark; the exit code says whether it could measure, not whether targets
/// were met (the table says that).
pub async fn run(args: BenchArgs) -> ExitCode {
    match measure_repeated(&args).await {
        Ok(report) => {
            print!("{}", report.table());
            if let Some(warning) = busy_warning(&report) {
                println!("{warning}");
            }
            let misses = report.misses().len();
            if misses > 0 {
                println!("{misses} figure(s) missed their target");
            }
            if let Some(path) = &args.json {
                let text = serde_json::to_string_pretty(&report).unwrap_or_default();
                if path.as_os_str() == "-" {
                    println!("{text}");
                } else if let Err(error) = std::fs::write(path, text) {
                    eprintln!("error: cannot write {}: {error}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = std::error::Error::source(&*error);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs every scenario `--repeat` times and combines the figures into medians; the load
/// average before and after each repetition goes into the setup.
async fn measure_repeated(args: &BenchArgs) -> Result<Report, Box<dyn std::error::Error>> {
    let mut repetitions = Vec::new();
    let mut load = Vec::new();
    for repetition in 1..=args.repeat {
        if args.repeat > 1 {
            progress(&format!("repetition {repetition} of {}", args.repeat));
        }
        let before = load_average();
        let report = measure(args).await?;
        load.push(json!({"before": before, "after": load_average()}));
        repetitions.push(report);
    }
    let mut report = Report::combine(repetitions);
    report.setup.insert("repeat".into(), json!(args.repeat));
    report.setup.insert("loadAverage".into(), json!(load));
    Ok(report)
}

/// The one-minute load average (`/proc/loadavg`), when the system tells it.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// A warning when another load shared the machine: a one-minute load average above half the
/// CPUs before or after any repetition (the benchmark itself adds up to about one).
fn busy_warning(report: &Report) -> Option<String> {
    let cpus = report.setup.get("cpus").and_then(serde_json::Value::as_f64).unwrap_or(1.0);
    let loads = report.setup.get("loadAverage")?.as_array()?;
    let highest = loads
        .iter()
        .flat_map(|load| [&load["before"], &load["after"]])
        .filter_map(serde_json::Value::as_f64)
        .fold(0.0, f64::max);
    (highest > cpus / 2.0 + 1.0).then(|| {
        format!(
            "warning: the machine was busy (load average up to {highest:.1} on {cpus} CPUs): \
             timings are slower and more spread than on a quiet machine"
        )
    })
}

async fn measure(args: &BenchArgs) -> Result<Report, Box<dyn std::error::Error>> {
    let binary = match &args.operator_binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe()?,
    };
    let launch = Launch { binary, env: args.operator_env.clone() };
    let sizes = Sizes::new(args.quick);
    let wanted = |scenario| args.only.is_empty() || args.only.contains(&scenario);
    let mut report = Report::default();
    report.setup.insert("quick".into(), json!(args.quick));
    report.setup.insert("rolloutMs".into(), json!(sizes.rollout_ms));
    report.setup.insert("batchSize".into(), json!(BATCH_SIZE));
    report.setup.insert(
        "cpus".into(),
        json!(std::thread::available_parallelism().map(usize::from).unwrap_or(1)),
    );
    report.setup.insert("operatorBinary".into(), json!(launch.binary.display().to_string()));
    report.setup.insert("operatorEnv".into(), json!(launch.env));
    let checked = record::Checked { quick: args.quick };
    // The operator always watches Pending pods (capacity-aware pacing): every figure,
    // the footprint's memory among them, is measured with that watch running.
    report.setup.insert("pendingPodsWatch".into(), json!(true));

    if wanted(Scenario::Runs) {
        let (mut handoffs, mut parts) = (Vec::new(), Vec::new());
        for &deployments in &sizes.runs {
            progress(&format!("whole run: {deployments} Deployments x {} ms", sizes.rollout_ms));
            let run = scenarios::whole_run(&launch, deployments, sizes.rollout_ms).await?;
            handoffs.extend(run.handoffs_ms.iter().copied());
            parts.extend(run.handoff_parts_ms.iter().copied());
            record::run(&mut report, checked, &run);
        }
        record::handoffs(&mut report, checked, &handoffs, &parts);
    }
    if wanted(Scenario::Baseline) {
        if kubectl_loop::available() {
            progress(&format!("kubectl loop: {} Deployments", sizes.baseline));
            let cluster = cluster::BenchCluster::start(sizes.baseline, sizes.rollout_ms).await?;
            let names = cluster.deployment_names().await?;
            let elapsed = kubectl_loop::run(
                &cluster.kubeconfig(),
                &cluster.scratch().join("kube-cache"),
                &names,
                BATCH_SIZE as usize,
            )
            .await;
            cluster.shutdown().await;
            let elapsed = elapsed?.as_secs_f64() * 1000.0;
            let ideal =
                (names.len().div_ceil(BATCH_SIZE as usize) as u64 * sizes.rollout_ms) as f64;
            record::baseline(&mut report, names.len(), elapsed, ideal);
        } else {
            progress("kubectl not found: no baseline");
        }
    }
    if wanted(Scenario::Footprint) {
        for &(fleet, picked, whole) in &sizes.footprints {
            progress(&format!("footprint: {fleet} Deployments in the cluster, a run of {picked}"));
            let figures =
                scenarios::footprint(&launch, fleet, picked, sizes.rollout_ms, whole).await?;
            record::footprint(&mut report, checked, &figures);
        }
    }
    if wanted(Scenario::Capacity) {
        progress("capacity: 60 Deployments on 3 nodes, 1500m spare, with and without pacing");
        let runs = capacity::side_by_side(&launch, args.quick).await?;
        capacity::record(&mut report, checked, &runs);
    }
    if wanted(Scenario::Status) {
        let services = sizes.status_services;
        progress(&format!("status size: {services} services"));
        let sizes = tokio::task::spawn_blocking(move || status_size::measure(services, BATCH_SIZE))
            .await??;
        record::status(&mut report, checked, services, &sizes);
    }
    Ok(report)
}

pub(super) fn progress(text: &str) {
    eprintln!("bench: {text}");
}
