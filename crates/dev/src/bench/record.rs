//! Scenario results turned into the report's figures: each with its label, unit and, at the
//! full sizes, its target from issue 11.

use serde_json::json;
use servicerefresh_operator::controller::LIST_PAGE_SIZE;

use super::figures::{Report, Target};
use super::scenarios::{FootprintFigures, RunFigures};
use super::status_size::StatusSizes;
use super::{progress, timeline};

const MIB: f64 = 1024.0;

/// Targets apply at the full sizes only; quick figures are shown without them.
#[derive(Clone, Copy)]
pub struct Checked {
    pub quick: bool,
}

impl Checked {
    pub fn check(
        self,
        report: &mut Report,
        id: &str,
        label: &str,
        value: f64,
        unit: &'static str,
        target: Target,
    ) {
        if self.quick {
            report.note(id, label, value, unit);
        } else {
            report.check(id, label, value, unit, target);
        }
    }
}

pub fn run(report: &mut Report, checked: Checked, run: &RunFigures) {
    let n = run.deployments;
    let id = |name: &str| format!("run{n}.{name}");
    let label = |what: &str| format!("run of {n}: {what}");
    report.note(&id("seconds"), &label("run time"), run.elapsed_ms / 1000.0, "s");
    checked.check(
        report,
        &id("ratio"),
        &label("run time / ideal"),
        run.elapsed_ms / run.ideal_ms,
        "",
        Target::AtMost(1.02),
    );
    report.note(
        &id("applyToFirstPatchMs"),
        &label("apply -> first restart patch"),
        run.apply_to_first_patch_ms,
        "ms",
    );
    let restarted = f64::from(run.restarted.max(1));
    checked.check(
        report,
        &id("patchesPerRestart"),
        &label("Deployment writes per restarted Deployment"),
        run.count("patch deployments") as f64 / restarted,
        "",
        Target::AtMost(1.05),
    );
    checked.check(
        report,
        &id("statusWritesPerBatch"),
        &label("status writes per batch"),
        run.count("patch servicerefreshes/status") as f64 / run.batches as f64,
        "",
        Target::AtMost(1.1),
    );
    checked.check(
        report,
        &id("bytesPerRestart"),
        &label("bytes written per restarted Deployment (every write body)"),
        run.bytes_written as f64 / restarted,
        "B",
        Target::AtMost(8192.0),
    );
    report.note(
        &id("statusBytesPerRestart"),
        &label("of which status writes"),
        run.status_bytes_written as f64 / restarted,
        "B",
    );
    let gets: u64 = run
        .requests
        .iter()
        .filter(|(key, _)| key.starts_with("get ") && key.as_str() != "get leases")
        .map(|(_, count)| count)
        .sum();
    checked.check(
        report,
        &id("gets"),
        &label("GETs (besides the leader Lease)"),
        gets as f64,
        "",
        Target::Exactly(0.0),
    );
    let probes: u64 = run
        .requests
        .iter()
        .filter(|(key, _)| key.starts_with("startup-check "))
        .map(|(_, count)| count)
        .sum();
    report.note(
        &id("startupCheck"),
        &label("start-up check requests (GET /version, LIST limit=1)"),
        probes as f64,
        "",
    );
    for kind in ["deployments", "configmaps", "servicerefreshes", "pods"] {
        checked.check(
            report,
            &id(&format!("lists.{kind}")),
            &label(&format!("LISTs of {kind} (pages apart)")),
            run.count(&format!("list {kind}")) as f64,
            "",
            Target::Exactly(1.0),
        );
    }
    report.note(
        &id("listPages"),
        &label(&format!("further pages of those LISTs ({LIST_PAGE_SIZE} per page)")),
        run.requests
            .iter()
            .filter(|(key, _)| key.starts_with("list-page "))
            .map(|(_, n)| n)
            .sum::<u64>() as f64,
        "",
    );
    let spreads: Vec<f64> = run.batch_times.iter().map(|batch| batch.spread).collect();
    let rollouts: Vec<f64> = run.batch_times.iter().map(|batch| batch.rollout).collect();
    report.note(
        &id("patchSpreadMs"),
        &label("first to last restart patch of a batch, median"),
        timeline::quantile(&spreads, 0.5),
        "ms",
    );
    report.note(
        &id("rolloutObservedMs"),
        &label(&format!("last patch to batch ready, median (rollout {} ms)", run.rollout_ms)),
        timeline::quantile(&rollouts, 0.5),
        "ms",
    );
    report.note(
        &id("cpuPer1000Restarts"),
        &label("operator CPU per 1,000 restarts"),
        run.cpu_seconds / restarted * 1000.0,
        "s",
    );
    report.note(
        &id("peakRssMiB"),
        &label("operator peak RSS"),
        run.memory.peak_kib as f64 / MIB,
        "MiB",
    );
    report.requests.insert(format!("run{n}"), json!(run.requests));
    if run.phase != Some(servicerefresh_core::crd::Phase::Succeeded) {
        progress(&format!("warning: the run of {n} ended {:?}", run.phase));
    }
}

pub fn handoffs(report: &mut Report, checked: Checked, handoffs: &[f64], parts: &[(f64, f64)]) {
    let median = timeline::quantile(handoffs, 0.5);
    let p99 = timeline::quantile(handoffs, 0.99);
    report.note("handoff.samples", "batch handoffs measured", handoffs.len() as f64, "");
    checked.check(
        report,
        "handoff.medianMs",
        "batch handoff, median",
        median,
        "ms",
        Target::AtMost(10.0),
    );
    checked.check(report, "handoff.p99Ms", "batch handoff, p99", p99, "ms", Target::AtMost(25.0));
    report.note(
        "handoff.maxMs",
        "batch handoff, max",
        handoffs.iter().copied().fold(f64::NAN, f64::max),
        "ms",
    );
    let (reactions, writes): (Vec<f64>, Vec<f64>) = parts.iter().copied().unzip();
    report.note(
        "handoff.reactionMs",
        "handoff part: last ready -> status write arrives, median",
        timeline::quantile(&reactions, 0.5),
        "ms",
    );
    report.note(
        "handoff.statusWriteMs",
        "handoff part: status write arrives -> first patch arrives, median",
        timeline::quantile(&writes, 0.5),
        "ms",
    );
}

pub fn footprint(report: &mut Report, checked: Checked, figures: &FootprintFigures) {
    let (fleet, picked) = (figures.fleet, figures.picked);
    let id = |name: &str| format!("fleet{fleet}.{name}");
    let label = |what: &str| format!("{fleet} in cluster: {what}");
    let budget = if fleet >= 10_000 { 40.0 } else { 25.0 };
    checked.check(
        report,
        &id("peakRssMiB"),
        &label(&format!("operator peak RSS, run of {picked}")),
        figures.after_run.peak_kib as f64 / MIB,
        "MiB",
        Target::AtMost(budget),
    );
    report.note(
        &id("rssAfterRunMiB"),
        &label("operator RSS after the run"),
        figures.after_run.rss_kib as f64 / MIB,
        "MiB",
    );
    report.note(
        &id("rssAnonAfterRunMiB"),
        &label("RSS after the run: heap and stacks (RssAnon)"),
        figures.after_run.anon_kib as f64 / MIB,
        "MiB",
    );
    report.note(
        &id("rssFileAfterRunMiB"),
        &label("RSS after the run: binary and other files (RssFile)"),
        figures.after_run.file_kib as f64 / MIB,
        "MiB",
    );
    report.note(
        &id("rssSyncedMiB"),
        &label("operator RSS once synced"),
        figures.synced.rss_kib as f64 / MIB,
        "MiB",
    );
    checked.check(
        report,
        &id("applyPickedMs"),
        &label(&format!("apply -> first patch, run of {picked}")),
        figures.apply_picked_ms,
        "ms",
        Target::AtMost(500.0),
    );
    if let Some(ms) = figures.apply_whole_fleet_ms {
        checked.check(
            report,
            &id("applyWholeFleetMs"),
            &label(&format!("apply -> first patch, plan of {fleet}")),
            ms,
            "ms",
            Target::AtMost(500.0),
        );
    }
    if let Some(memory) = figures.after_whole_fleet_plan {
        report.note(
            &id("peakRssWholePlanMiB"),
            &label(&format!("operator peak RSS after planning {fleet}")),
            memory.peak_kib as f64 / MIB,
            "MiB",
        );
    }
    if figures.phase != Some(servicerefresh_core::crd::Phase::Succeeded) {
        progress(&format!("warning: the run of {picked} ended {:?}", figures.phase));
    }
}

/// The kubectl loop's run time over `n` Deployments, and its ratio to the ideal.
pub fn baseline(report: &mut Report, n: usize, elapsed_ms: f64, ideal_ms: f64) {
    report.note(
        &format!("baseline{n}.seconds"),
        &format!("kubectl loop, {n} Deployments: run time"),
        elapsed_ms / 1000.0,
        "s",
    );
    report.note(
        &format!("baseline{n}.ratio"),
        &format!("kubectl loop, {n} Deployments: run time / ideal"),
        elapsed_ms / ideal_ms,
        "",
    );
}

/// The status sizes of a run of `services`.
pub fn status(report: &mut Report, checked: Checked, services: usize, sizes: &StatusSizes) {
    checked.check(
        report,
        &format!("status{services}.largestKiB"),
        &format!("status size, {services} services (largest during the run)"),
        sizes.largest as f64 / 1024.0,
        "KiB",
        Target::AtMost(512.0),
    );
    report.note(
        &format!("status{services}.finalKiB"),
        &format!("status size, {services} services (at the end)"),
        sizes.last as f64 / 1024.0,
        "KiB",
    );
    checked.check(
        report,
        &format!("status{services}.bytesPerRestart"),
        &format!("status and plan bytes written per restarted Deployment, {services} services"),
        sizes.written as f64 / sizes.restarted.max(1) as f64,
        "B",
        Target::AtMost(8192.0),
    );
}
