//! Text for people: the `status` plan table, the per-batch event lines printed while a run is
//! followed without a terminal, the service lines of the live display, and the summary at the
//! end of a run. Everything here is a pure function of a [`PlanView`] or its parts, so the
//! wording is tested without a cluster.

use jiff::{SignedDuration, Timestamp};

use super::view::{BatchView, Counts, PlanView, RunView, ServiceView};
use servicerefresh_core::crd::{BatchPhase, ServiceResult};

/// Columns are separated by this many spaces, as `kubectl get` does.
const COLUMN_GAP: usize = 3;

/// Lays out rows in columns padded to the widest cell, like `kubectl get`; trailing blanks
/// are trimmed.
pub fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths[c] - cell.chars().count() + COLUMN_GAP;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A duration the way people read it: `850ms`, `3.2s`, `1m7s`, `2h3m`.
pub fn duration(d: SignedDuration) -> String {
    let d = d.abs();
    let millis = d.as_millis();
    if millis < 1000 {
        format!("{millis}ms")
    } else if d.as_secs() < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if d.as_secs() < 3600 {
        format!("{}m{}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{}h{}m", d.as_secs() / 3600, (d.as_secs() % 3600) / 60)
    }
}

/// A run's duration: its start and end are stored to the second, so a run shorter than a
/// second reads `under 1s`, never a made-up `0ms`.
pub fn run_duration(d: SignedDuration) -> String {
    if d.abs() < SignedDuration::from_secs(1) { "under 1s".to_owned() } else { duration(d) }
}

/// A point in time to the second, in UTC.
pub fn time(t: Timestamp) -> String {
    format!("{:.0}", t.round(jiff::Unit::Second).unwrap_or(t))
}

/// `run 2 (RunRequested)`.
pub fn run_label(run: &RunView) -> String {
    let dry = if run.dry_run { ", dry run" } else { "" };
    format!("run {} ({}{dry})", run.number, run.reason)
}

fn counts_text(counts: &Counts) -> String {
    format!("{} ready, {} failed, {} skipped", counts.ready, counts.failed, counts.skipped)
}

/// `batch 2/14 started: 10 Deployments`; a batch whose every service was skipped (a dry
/// run, paused or excluded Deployments) restarted nothing: `batch 3/4 skipped: 10
/// Deployments (dry run: not restarted)`.
pub fn batch_started(batch: &BatchView, batches: usize) -> String {
    let n = batch.services.len();
    let noun = if n == 1 { "Deployment" } else { "Deployments" };
    if !all_skipped(batch) {
        return format!("batch {}/{batches} started: {n} {noun}", batch.index);
    }
    let first = batch.services.first().and_then(|service| service.message.as_deref());
    let why = match first {
        Some(message) if batch.services.iter().all(|s| s.message.as_deref() == Some(message)) => {
            format!(" ({message})")
        }
        _ => String::new(),
    };
    format!("batch {}/{batches} skipped: {n} {noun}{why}", batch.index)
}

/// Whether the batch ended with every service Skipped: nothing in it was restarted.
pub fn all_skipped(batch: &BatchView) -> bool {
    batch.phase == BatchPhase::Completed
        && !batch.services.is_empty()
        && batch.services.iter().all(|service| service.result == Some(ServiceResult::Skipped))
}

/// `batch 2/14 completed in 3.2s: 9 ready, 1 failed, 0 skipped`.
pub fn batch_completed(batch: &BatchView, batches: usize, now: Timestamp) -> String {
    let took = batch.elapsed(now).map(|d| format!(" in {}", duration(d))).unwrap_or_default();
    let what = if batch.folded > 1 { "batches" } else { "batch" };
    format!(
        "{what} {} completed{took}: {}",
        batch_label(batch, batches),
        counts_text(&batch.counts())
    )
}

/// The result column of a service: its result, or what it is doing without one.
pub fn result_text(service: &ServiceView, batch_phase: BatchPhase) -> String {
    match (service.result, batch_phase) {
        (Some(result), _) => format!("{result:?}"),
        (None, BatchPhase::Pending) => "Pending".into(),
        (None, _) => "Waiting".into(),
    }
}

/// One service of the batch in flight, for the live display: `name  Ready`,
/// `name  Failed: message` or `name  <what it waits for>`.
pub fn service_progress(service: &ServiceView, name_width: usize) -> String {
    let message = service.message.as_deref().unwrap_or_default();
    let state = match service.result {
        Some(ServiceResult::Ready) => "Ready".to_owned(),
        Some(result) if message.is_empty() => format!("{result:?}"),
        Some(result) => format!("{result:?}: {message}"),
        None if message.is_empty() => "waiting for its rollout".to_owned(),
        // The engine's text already says what it waits for, in `kubectl rollout status` words.
        None => message.to_owned(),
    };
    format!("{:<name_width$}  {state}", service.name)
}

/// The end-of-run summary: the run's outcome, then each batch with its counts and each
/// failure with its message.
pub fn summary(run: &RunView, plan: Option<&PlanView>, now: Timestamp) -> String {
    let mut out = String::new();
    let took = match (run.start, run.end) {
        (Some(start), Some(end)) => {
            format!(" after {}", run_duration(end.duration_since(start)))
        }
        _ => String::new(),
    };
    let totals = &run.totals;
    out.push_str(&format!(
        "{} {:?}{took}: {} ready, {} failed, {} skipped of {} services\n",
        run_label(run),
        run.phase,
        totals.ready,
        totals.failed,
        totals.skipped,
        totals.services
    ));
    let Some(plan) = plan else {
        if let Some(message) = &run.message {
            out.push_str(&format!("  {message}\n"));
        }
        return out;
    };
    let batches = plan.total_batches();
    let failures = || plan.listed_batches().flat_map(BatchView::failures);
    let name_width = failures().map(|s| s.name.chars().count()).max().unwrap_or(0);
    let result_width = failures().map(|s| result_text(s, BatchPhase::Completed).len()).max();
    for batch in plan.listed_batches() {
        let took = batch.elapsed(now).map(|d| format!(" in {}", duration(d))).unwrap_or_default();
        let phase = match batch.phase {
            BatchPhase::Completed => "completed",
            BatchPhase::Running => "running",
            BatchPhase::Pending => "not started",
        };
        let what = if batch.folded > 1 { "batches" } else { "batch" };
        out.push_str(&format!(
            "  {what} {} {phase}{took}: {}\n",
            batch_label(batch, batches),
            counts_text(&batch.counts())
        ));
        for service in batch.failures() {
            let line = format!(
                "    {:<name_width$}   {:<result_width$}   {}",
                service.name,
                result_text(service, batch.phase),
                service.message.as_deref().unwrap_or_default(),
                result_width = result_width.unwrap_or(0),
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    if !plan.unbatched.is_empty() {
        let counts = Counts::of(&plan.unbatched);
        out.push_str(&format!("  not in a batch: {}\n", counts_text(&counts)));
    }
    out
}

/// A batch's number out of `total`; `1-N/total` for the batches the status sums up.
fn batch_label(batch: &BatchView, total: usize) -> String {
    if batch.folded > 1 {
        format!("1-{}/{total}", batch.index)
    } else {
        format!("{}/{total}", batch.index)
    }
}

/// The plan table of `servicerefresh status`: the run's identity and timing, the totals, the
/// conditions that say what happens next, then one row per service grouped by batch.
pub fn plan_table(namespace: &str, name: &str, plan: &PlanView, now: Timestamp) -> String {
    let mut head: Vec<Vec<String>> = vec![
        vec!["ServiceRefresh:".into(), format!("{namespace}/{name}")],
        vec!["Phase:".into(), plan.phase.map(|p| format!("{p:?}")).unwrap_or_else(|| "-".into())],
    ];
    match &plan.run {
        None => head.push(vec!["Run:".into(), "none yet".into()]),
        Some(run) => {
            let state = if run.active() { "active".to_owned() } else { format!("{:?}", run.phase) };
            head.push(vec!["Run:".into(), format!("{} ({state})", run.number)]);
            head.push(vec!["Run ID:".into(), run.id.clone()]);
            let dry = if run.dry_run { " (dry run)" } else { "" };
            head.push(vec!["Reason:".into(), format!("{}{dry}", run.reason)]);
            if let Some(request) = &run.request {
                head.push(vec!["Request:".into(), request.clone()]);
            }
            let start = run.start.map(time).unwrap_or_else(|| "-".into());
            head.push(vec!["Started:".into(), start]);
            let end = match (run.start, run.end) {
                (Some(start), Some(end)) => {
                    format!("{} (took {})", time(end), run_duration(end.duration_since(start)))
                }
                (Some(start), None) => {
                    format!("- (running for {})", duration(now.duration_since(start)))
                }
                (None, end) => end.map(time).unwrap_or_else(|| "-".into()),
            };
            head.push(vec!["Ended:".into(), end]);
            if run.cancel_requested && run.active() {
                head.push(vec!["Cancel:".into(), "requested; the batch in flight finishes".into()]);
            }
            if let Some(message) = &run.message {
                head.push(vec!["Message:".into(), message.clone()]);
            }
        }
    }
    let t = &plan.totals;
    head.push(vec![
        "Totals:".into(),
        format!(
            "{} services, {} restarted, {} ready, {} failed, {} skipped",
            t.services, t.restarted, t.ready, t.failed, t.skipped
        ),
    ]);
    if plan.total_batches() > 0 {
        head.push(vec![
            "Batch:".into(),
            format!("{}/{}", plan.batch_position(), plan.total_batches()),
        ]);
    }
    for condition in plan.conditions.iter().filter(|c| c.status) {
        head.push(vec![
            format!("{}:", condition.type_),
            format!("{}: {}", condition.reason, condition.message),
        ]);
    }
    let mut out = align(&head);
    if plan.total_batches() == 0 && plan.unbatched.is_empty() {
        return out;
    }
    out.push('\n');
    let batches = plan.total_batches();
    let mut rows = vec![
        ["BATCH", "PHASE", "STARTED", "DURATION", "SERVICE", "RESULT", "MESSAGE"]
            .map(String::from)
            .to_vec(),
    ];
    for batch in plan.listed_batches() {
        for (i, service) in batch.services.iter().enumerate() {
            let first = i == 0;
            let cell = |text: String| if first { text } else { String::new() };
            rows.push(vec![
                cell(batch_label(batch, batches)),
                cell(format!("{:?}", batch.phase)),
                cell(batch.start.map(time).unwrap_or_else(|| "-".into())),
                cell(batch.elapsed(now).map(duration).unwrap_or_else(|| "-".into())),
                service.name.clone(),
                result_text(service, batch.phase),
                service.message.clone().unwrap_or_default(),
            ]);
        }
    }
    for (i, service) in plan.unbatched.iter().enumerate() {
        let cell = |text: &str| if i == 0 { text.to_owned() } else { String::new() };
        rows.push(vec![
            cell("-"),
            cell("none"),
            cell("-"),
            cell("-"),
            service.name.clone(),
            result_text(service, BatchPhase::Completed),
            service.message.clone().unwrap_or_default(),
        ]);
    }
    out.push_str(&align(&rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use servicerefresh_core::crd::{Phase, Totals};

    fn ts(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn svc(name: &str, result: Option<ServiceResult>, message: Option<&str>) -> ServiceView {
        ServiceView { name: name.into(), result, message: message.map(String::from) }
    }

    fn plan() -> PlanView {
        PlanView {
            phase: Some(Phase::Running),
            run: Some(RunView {
                number: 2,
                id: "arcgis/x/2-abc".into(),
                reason: "RunRequested".into(),
                message: None,
                request: Some("r2".into()),
                phase: Phase::Running,
                start: Some(ts(1_000)),
                end: None,
                cancel_requested: false,
                dry_run: false,
                totals: Totals { services: 3, restarted: 3, ready: 1, failed: 1, skipped: 0 },
            }),
            batches: vec![
                BatchView {
                    index: 1,
                    folded: 1,
                    phase: BatchPhase::Completed,
                    start: Some(ts(1_001)),
                    end: Some(ts(1_004)),
                    services: vec![
                        svc("alpha", Some(ServiceResult::Ready), None),
                        svc("beta-long-name", Some(ServiceResult::Failed), Some("deadline")),
                    ],
                },
                BatchView {
                    index: 2,
                    folded: 1,
                    phase: BatchPhase::Running,
                    start: Some(ts(1_004)),
                    end: None,
                    services: vec![svc("gamma", None, Some("1 of 2 updated replicas"))],
                },
            ],
            totals: Totals { services: 3, restarted: 3, ready: 1, failed: 1, skipped: 0 },
            ..Default::default()
        }
    }

    #[test]
    fn align_pads_columns_like_kubectl() {
        let table = align(&[
            vec!["A".into(), "BB".into(), "C".into()],
            vec!["long".into(), "".into(), "x".into()],
        ]);
        assert_eq!(table, "A      BB   C\nlong        x\n");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(SignedDuration::from_millis(850)), "850ms");
        assert_eq!(duration(SignedDuration::from_millis(9)), "9ms", "batch times are precise");
        assert_eq!(run_duration(SignedDuration::ZERO), "under 1s", "run times are to the second");
        assert_eq!(run_duration(SignedDuration::from_secs(3)), "3.0s");
        assert_eq!(duration(SignedDuration::from_millis(3_240)), "3.2s");
        assert_eq!(duration(SignedDuration::from_secs(67)), "1m7s");
        assert_eq!(duration(SignedDuration::from_secs(7_380)), "2h3m");
    }

    #[test]
    fn a_batch_that_restarted_nothing_reads_skipped() {
        let skipped = |message: &str| svc("alpha", Some(ServiceResult::Skipped), Some(message));
        let mut batch = plan().batches[0].clone();
        batch.index = 3;
        batch.services = vec![skipped("dry run: not restarted"), skipped("dry run: not restarted")];
        assert_eq!(
            batch_started(&batch, 4),
            "batch 3/4 skipped: 2 Deployments (dry run: not restarted)"
        );
        batch.services[1] = skipped("paused");
        assert_eq!(batch_started(&batch, 4), "batch 3/4 skipped: 2 Deployments");
        batch.services[1] = svc("beta", Some(ServiceResult::Ready), None);
        assert_eq!(batch_started(&batch, 4), "batch 3/4 started: 2 Deployments");
    }

    #[test]
    fn batch_lines_name_the_counts() {
        let plan = plan();
        assert_eq!(batch_started(&plan.batches[0], 2), "batch 1/2 started: 2 Deployments");
        assert_eq!(
            batch_completed(&plan.batches[0], 2, ts(2_000)),
            "batch 1/2 completed in 3.0s: 1 ready, 1 failed, 0 skipped"
        );
    }

    #[test]
    fn plan_table_shows_run_batches_and_services() {
        let table = plan_table("arcgis", "x", &plan(), ts(1_010));
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines.contains(&"Run:              2 (active)"), "{table}");
        assert!(table.contains("Request:          r2"), "{table}");
        let header = lines.iter().find(|l| l.starts_with("BATCH")).unwrap();
        let service_col = header.find("SERVICE").unwrap();
        let result_col = header.find("RESULT").unwrap();
        let beta = lines.iter().find(|l| l.contains("beta-long-name")).unwrap();
        assert_eq!(beta.find("beta-long-name"), Some(service_col), "{table}");
        assert_eq!(beta.find("Failed"), Some(result_col), "{table}");
        assert!(beta.ends_with("deadline"));
        let gamma = lines.iter().find(|l| l.contains("gamma")).unwrap();
        assert!(gamma.starts_with("2/2     Running"), "{table}");
        assert!(gamma.contains("Waiting") && gamma.ends_with("1 of 2 updated replicas"));
    }

    #[test]
    fn summary_lists_each_failure_with_its_message() {
        let plan = plan();
        let mut run = plan.run.clone().unwrap();
        run.phase = Phase::Failed;
        run.end = Some(ts(1_012));
        let text = summary(&run, Some(&plan), ts(1_020));
        assert!(text.starts_with("run 2 (RunRequested) Failed after 12.0s: 1 ready, 1 failed"));
        assert!(text.contains("  batch 1/2 completed in 3.0s: 1 ready, 1 failed, 0 skipped\n"));
        assert!(text.contains("    beta-long-name   Failed   deadline\n"), "{text}");
    }
}
