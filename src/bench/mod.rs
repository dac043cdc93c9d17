//! `servicerefresh bench`: the performance figures of issue 11, each beside its target. It
//! runs the scenarios against simulated clusters in this process with the operator binary
//! as a separate process (so its memory and CPU are its own), the kubectl loop beside it
//! as the baseline, and the status size through the engine; it prints a table and can write
//! every figure as JSON. Timings are figures here, never assertions.

mod cluster;
mod figures;
mod kubectl_loop;
mod operator;
mod scenarios;
mod status_size;
mod timeline;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use serde_json::json;

pub use figures::{Figure, Report, Target};
use operator::Launch;
use scenarios::{BATCH_SIZE, FootprintFigures, RunFigures};

const MIB: f64 = 1024.0;

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
    match measure(&args).await {
        Ok(report) => {
            print!("{}", report.table());
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
    let checked = Checked { quick: args.quick };

    if wanted(Scenario::Runs) {
        let mut handoffs = Vec::new();
        for &deployments in &sizes.runs {
            progress(&format!("whole run: {deployments} Deployments x {} ms", sizes.rollout_ms));
            let run = scenarios::whole_run(&launch, deployments, sizes.rollout_ms).await?;
            handoffs.extend(run.handoffs_ms.iter().copied());
            report_run(&mut report, checked, &run);
        }
        report_handoffs(&mut report, checked, &handoffs);
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
            let ideal = (names.len().div_ceil(BATCH_SIZE as usize) as u64 * sizes.rollout_ms) as f64;
            let n = names.len();
            report.note(&format!("baseline{n}.seconds"), &format!("kubectl loop, {n} Deployments: run time"), elapsed / 1000.0, "s");
            report.note(&format!("baseline{n}.ratio"), &format!("kubectl loop, {n} Deployments: run time / ideal"), elapsed / ideal, "");
        } else {
            progress("kubectl not found: no baseline");
        }
    }
    if wanted(Scenario::Footprint) {
        for &(fleet, picked, whole) in &sizes.footprints {
            progress(&format!("footprint: {fleet} Deployments in the cluster, a run of {picked}"));
            let figures = scenarios::footprint(&launch, fleet, picked, sizes.rollout_ms, whole).await?;
            report_footprint(&mut report, checked, &figures);
        }
    }
    if wanted(Scenario::Status) {
        let services = sizes.status_services;
        progress(&format!("status size: {services} services"));
        let sizes = tokio::task::spawn_blocking(move || status_size::measure(services, BATCH_SIZE)).await??;
        checked.check(&mut report, &format!("status{services}.largestKiB"), &format!("status size, {services} services (largest during the run)"), sizes.largest as f64 / 1024.0, "KiB", Target::AtMost(512.0));
        report.note(&format!("status{services}.finalKiB"), &format!("status size, {services} services (at the end)"), sizes.last as f64 / 1024.0, "KiB");
    }
    Ok(report)
}

fn progress(text: &str) {
    eprintln!("bench: {text}");
}

/// Targets apply at the full sizes only; quick figures are shown without them.
#[derive(Clone, Copy)]
struct Checked {
    quick: bool,
}

impl Checked {
    fn check(self, report: &mut Report, id: &str, label: &str, value: f64, unit: &'static str, target: Target) {
        if self.quick {
            report.note(id, label, value, unit);
        } else {
            report.check(id, label, value, unit, target);
        }
    }
}

fn report_run(report: &mut Report, checked: Checked, run: &RunFigures) {
    let n = run.deployments;
    let id = |name: &str| format!("run{n}.{name}");
    let label = |what: &str| format!("run of {n}: {what}");
    report.note(&id("seconds"), &label("run time"), run.elapsed_ms / 1000.0, "s");
    checked.check(report, &id("ratio"), &label("run time / ideal"), run.elapsed_ms / run.ideal_ms, "", Target::AtMost(1.02));
    report.note(&id("applyToFirstPatchMs"), &label("apply -> first restart patch"), run.apply_to_first_patch_ms, "ms");
    let restarted = f64::from(run.restarted.max(1));
    checked.check(report, &id("patchesPerRestart"), &label("Deployment writes per restarted Deployment"), run.count("patch deployments") as f64 / restarted, "", Target::AtMost(1.05));
    checked.check(report, &id("statusWritesPerBatch"), &label("status writes per batch"), run.count("patch servicerefreshes/status") as f64 / run.batches as f64, "", Target::AtMost(2.0));
    let gets: u64 = run.requests.iter().filter(|(key, _)| key.starts_with("get ") && key.as_str() != "get leases").map(|(_, count)| count).sum();
    checked.check(report, &id("gets"), &label("GETs (besides the leader Lease)"), gets as f64, "", Target::Exactly(0.0));
    for kind in ["deployments", "configmaps", "servicerefreshes"] {
        checked.check(report, &id(&format!("lists.{kind}")), &label(&format!("LISTs of {kind}")), run.count(&format!("list {kind}")) as f64, "", Target::Exactly(1.0));
    }
    report.note(&id("cpuPer1000Restarts"), &label("operator CPU per 1,000 restarts"), run.cpu_seconds / restarted * 1000.0, "s");
    report.note(&id("peakRssMiB"), &label("operator peak RSS"), run.memory.peak_kib as f64 / MIB, "MiB");
    report.requests.insert(format!("run{n}"), json!(run.requests));
    if run.phase != Some(crate::crd::Phase::Succeeded) {
        progress(&format!("warning: the run of {n} ended {:?}", run.phase));
    }
}

fn report_handoffs(report: &mut Report, checked: Checked, handoffs: &[f64]) {
    let median = timeline::quantile(handoffs, 0.5);
    let p99 = timeline::quantile(handoffs, 0.99);
    report.note("handoff.samples", "batch handoffs measured", handoffs.len() as f64, "");
    checked.check(report, "handoff.medianMs", "batch handoff, median", median, "ms", Target::AtMost(10.0));
    checked.check(report, "handoff.p99Ms", "batch handoff, p99", p99, "ms", Target::AtMost(25.0));
    report.note("handoff.maxMs", "batch handoff, max", handoffs.iter().copied().fold(f64::NAN, f64::max), "ms");
}

fn report_footprint(report: &mut Report, checked: Checked, figures: &FootprintFigures) {
    let (fleet, picked) = (figures.fleet, figures.picked);
    let id = |name: &str| format!("fleet{fleet}.{name}");
    let label = |what: &str| format!("{fleet} in cluster: {what}");
    let budget = if fleet >= 10_000 { 40.0 } else { 25.0 };
    checked.check(report, &id("peakRssMiB"), &label(&format!("operator peak RSS, run of {picked}")), figures.after_run.peak_kib as f64 / MIB, "MiB", Target::AtMost(budget));
    report.note(&id("rssAfterRunMiB"), &label("operator RSS after the run"), figures.after_run.rss_kib as f64 / MIB, "MiB");
    report.note(&id("rssSyncedMiB"), &label("operator RSS once synced"), figures.synced.rss_kib as f64 / MIB, "MiB");
    checked.check(report, &id("applyPickedMs"), &label(&format!("apply -> first patch, run of {picked}")), figures.apply_picked_ms, "ms", Target::AtMost(500.0));
    if let Some(ms) = figures.apply_whole_fleet_ms {
        checked.check(report, &id("applyWholeFleetMs"), &label(&format!("apply -> first patch, plan of {fleet}")), ms, "ms", Target::AtMost(500.0));
    }
    if let Some(memory) = figures.after_whole_fleet_plan {
        report.note(&id("peakRssWholePlanMiB"), &label(&format!("operator peak RSS after planning {fleet}")), memory.peak_kib as f64 / MIB, "MiB");
    }
    if figures.phase != Some(crate::crd::Phase::Succeeded) {
        progress(&format!("warning: the run of {picked} ended {:?}", figures.phase));
    }
}
