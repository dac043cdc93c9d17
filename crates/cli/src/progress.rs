//! Live progress of a followed run on standard error. On a terminal it animates `indicatif`
//! bars: a spinner line saying what happens, an overall bar (services with a result out of all
//! planned) and one line per service of the batch in flight with its result or what it waits
//! for. Without a terminal it prints plain lines, one per batch event, so logs and CI output
//! stay readable. Both modes print the same batch event lines, in plan order, even when a watch
//! event skips over a batch's start.

use std::io::Write;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::Timestamp;

use super::render;
use super::view::{PlanView, RunView, ServiceView};
use servicerefresh_core::crd::Phase;

/// Service lines shown for the batch in flight; larger batches show a count for the rest.
const MAX_SERVICE_LINES: usize = 12;

/// The live display, chosen once by whether standard error is a terminal.
pub enum Progress {
    Bars(Box<Bars>),
    Lines(Lines),
}

impl Progress {
    /// Animated bars when `terminal`, plain lines otherwise.
    pub fn new(terminal: bool) -> Self {
        if terminal { Self::Bars(Box::new(Bars::new())) } else { Self::Lines(Lines::default()) }
    }

    /// A line that stays: printed above the bars, or as is.
    pub fn note(&mut self, line: &str) {
        match self {
            Self::Bars(bars) => bars.println(line),
            Self::Lines(_) => eprintln_flushed(line),
        }
    }

    /// What the request waits for before its run starts.
    pub fn waiting(&mut self, what: &str) {
        match self {
            Self::Bars(bars) => bars.header.set_message(format!("waiting: {what}")),
            Self::Lines(lines) => {
                if lines.last_waiting.as_deref() != Some(what) {
                    eprintln_flushed(&format!("waiting: {what}"));
                    lines.last_waiting = Some(what.to_owned());
                }
            }
        }
    }

    /// Our run's progress.
    pub fn update(&mut self, run: &RunView, plan: &PlanView, now: Timestamp) {
        match self {
            Self::Bars(bars) => bars.update(run, plan, now),
            Self::Lines(lines) => {
                for line in lines.events.new_lines(run, plan, now) {
                    eprintln_flushed(&line);
                }
            }
        }
    }

    /// Clears the bars; what was printed with [`Self::note`] stays.
    pub fn finish(&mut self) {
        if let Self::Bars(bars) = self {
            bars.finish();
        }
    }
}

fn eprintln_flushed(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}

/// The lines announcing the run and its batch events, each once, in plan order.
#[derive(Default)]
struct BatchEvents {
    run_announced: bool,
    /// The number of the last batch announced as started, and as completed.
    started: u32,
    completed: u32,
    suspended: bool,
    cancel_announced: bool,
}

impl BatchEvents {
    fn new_lines(&mut self, run: &RunView, plan: &PlanView, now: Timestamp) -> Vec<String> {
        let mut lines = Vec::new();
        let batches = plan.total_batches();
        if !self.run_announced {
            self.run_announced = true;
            lines.push(format!(
                "{} started: {} Deployments in {batches} batches",
                render::run_label(run),
                plan.counts().total(),
            ));
        }
        for batch in plan.listed_batches() {
            let completed = batch.phase == servicerefresh_core::crd::BatchPhase::Completed;
            if batch.index > self.started && (batch.started() || completed) {
                if batch.folded <= 1 {
                    lines.push(render::batch_started(batch, batches));
                }
                self.started = batch.index;
            }
            if batch.index > self.completed && batch.index <= self.started && completed {
                // A batch that restarted nothing was announced as skipped; that says it all.
                if batch.folded > 1 || !render::all_skipped(batch) {
                    lines.push(render::batch_completed(batch, batches, now));
                }
                self.completed = batch.index;
            }
        }
        let suspended = run.active() && run.phase == Phase::Suspended;
        if suspended != self.suspended {
            self.suspended = suspended;
            lines.push(if suspended {
                format!(
                    "run {} suspended by spec.suspend before batch {}/{batches}",
                    run.number,
                    plan.batch_position()
                )
            } else {
                format!("run {} resumed", run.number)
            });
        }
        if run.cancel_requested && run.active() && !self.cancel_announced {
            self.cancel_announced = true;
            lines.push(format!(
                "run {}: cancel requested; the batch in flight finishes, the rest is skipped",
                run.number
            ));
        }
        lines
    }
}

/// Plain lines for pipes and logs.
#[derive(Default)]
pub struct Lines {
    events: BatchEvents,
    last_waiting: Option<String>,
}

/// The animated display.
pub struct Bars {
    multi: MultiProgress,
    header: ProgressBar,
    overall: Option<ProgressBar>,
    services: Vec<ProgressBar>,
    events: BatchEvents,
    /// Whether the header's clock runs from our run's start yet.
    clock_set: bool,
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants of this module, checked by the unit tests; a bad one would
    // only lose the styling.
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

const HEADER_TEMPLATE: &str = "{spinner:.cyan} {msg}  {elapsed}";
const OVERALL_TEMPLATE: &str = "  [{bar:30.green/white}] {pos}/{len} services  {msg}";
const SERVICE_TEMPLATE: &str = "    {prefix} {wide_msg}";

impl Bars {
    fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let header = multi.add(ProgressBar::new_spinner().with_style(style(HEADER_TEMPLATE)));
        header.enable_steady_tick(Duration::from_millis(100));
        Self {
            multi,
            header,
            overall: None,
            services: Vec::new(),
            events: BatchEvents::default(),
            clock_set: false,
        }
    }

    fn println(&self, line: &str) {
        let _ = self.multi.println(line);
    }

    fn update(&mut self, run: &RunView, plan: &PlanView, now: Timestamp) {
        for line in self.events.new_lines(run, plan, now) {
            self.println(&line);
        }
        let counts = plan.counts();
        let overall = self.overall.get_or_insert_with(|| {
            self.multi.add(ProgressBar::new(0).with_style(style(OVERALL_TEMPLATE)))
        });
        overall.set_length(counts.total() as u64);
        overall.set_position(counts.done() as u64);
        overall.set_message(format!(
            "{} ready, {} failed, {} skipped",
            counts.ready, counts.failed, counts.skipped
        ));
        if !self.clock_set
            && let Some(elapsed) =
                run.start.and_then(|start| Duration::try_from(now.duration_since(start)).ok())
            // `set_elapsed` panics for an age beyond this machine's monotonic clock's start.
            && std::time::Instant::now().checked_sub(elapsed).is_some()
        {
            // The header's clock shows the run's age and ticks between watch events.
            self.header.set_elapsed(elapsed);
            self.clock_set = true;
        }
        let mut header = format!(
            "{}  batch {}/{}",
            render::run_label(run),
            plan.batch_position(),
            plan.total_batches()
        );
        if run.active() && run.phase == Phase::Suspended {
            header.push_str("  (suspended by spec.suspend)");
        } else if run.cancel_requested && run.active() {
            header.push_str("  (cancel requested: the batch in flight finishes)");
        }
        self.header.set_message(header);

        let lines = plan.current_batch().map(|batch| service_lines(&batch.services));
        self.show_services(&lines.unwrap_or_default());
    }

    fn show_services(&mut self, lines: &[(String, String)]) {
        while self.services.len() > lines.len() {
            if let Some(bar) = self.services.pop() {
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
        while self.services.len() < lines.len() {
            let bar =
                self.multi.add(ProgressBar::new_spinner().with_style(style(SERVICE_TEMPLATE)));
            self.services.push(bar);
        }
        for (bar, (prefix, message)) in self.services.iter().zip(lines) {
            bar.set_prefix(prefix.clone());
            bar.set_message(message.clone());
        }
    }

    fn finish(&mut self) {
        for bar in self.services.drain(..) {
            bar.finish_and_clear();
        }
        if let Some(overall) = self.overall.take() {
            overall.finish_and_clear();
        }
        self.header.finish_and_clear();
        let _ = self.multi.clear();
    }
}

impl Drop for Bars {
    /// Leaves no half-drawn bars behind, whichever way the command ends.
    fn drop(&mut self) {
        self.finish();
    }
}

/// The lines of the batch in flight: the services still waiting first, then those with a
/// result, at most [`MAX_SERVICE_LINES`] with a count for the rest.
fn service_lines(services: &[ServiceView]) -> Vec<(String, String)> {
    let width = services.iter().map(|s| s.name.chars().count()).max().unwrap_or(0);
    let mut ordered: Vec<&ServiceView> = services.iter().filter(|s| s.result.is_none()).collect();
    ordered.extend(services.iter().filter(|s| s.result.is_some()));
    let shown =
        if ordered.len() > MAX_SERVICE_LINES { MAX_SERVICE_LINES - 1 } else { ordered.len() };
    let mut lines: Vec<(String, String)> = ordered[..shown]
        .iter()
        .map(|s| {
            let glyph = match s.result {
                None => "…",
                Some(servicerefresh_core::crd::ServiceResult::Ready) => "✓",
                Some(servicerefresh_core::crd::ServiceResult::Skipped) => "-",
                Some(_) => "✗",
            };
            (glyph.to_owned(), render::service_progress(s, width))
        })
        .collect();
    if shown < ordered.len() {
        let rest = &ordered[shown..];
        let waiting = rest.iter().filter(|s| s.result.is_none()).count();
        lines.push((
            " ".to_owned(),
            format!("and {} more ({waiting} waiting, {} done)", rest.len(), rest.len() - waiting),
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::BatchView;
    use servicerefresh_core::crd::{BatchPhase, ServiceResult};

    #[test]
    fn templates_parse() {
        for template in [HEADER_TEMPLATE, OVERALL_TEMPLATE, SERVICE_TEMPLATE] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }

    fn service(name: &str, result: Option<ServiceResult>) -> ServiceView {
        ServiceView { name: name.into(), result, message: None }
    }

    fn batch(index: u32, phase: BatchPhase, results: &[Option<ServiceResult>]) -> BatchView {
        BatchView {
            index,
            folded: 1,
            phase,
            start: None,
            end: None,
            services: results
                .iter()
                .enumerate()
                .map(|(i, r)| service(&format!("s{index}-{i}"), *r))
                .collect(),
        }
    }

    fn run() -> RunView {
        RunView { number: 2, id: "x".into(), ..RunView::fixture(2, None) }
    }

    #[test]
    fn batch_events_come_once_and_in_order_even_when_skipped_over() {
        let ready = Some(ServiceResult::Ready);
        let mut events = BatchEvents::default();
        let now = Timestamp::UNIX_EPOCH;
        let mut plan = PlanView {
            batches: vec![
                batch(1, BatchPhase::Running, &[None, ready]),
                batch(2, BatchPhase::Pending, &[None]),
            ],
            ..Default::default()
        };
        assert_eq!(
            events.new_lines(&run(), &plan, now),
            [
                "run 2 (RunRequested) started: 3 Deployments in 2 batches",
                "batch 1/2 started: 2 Deployments"
            ]
        );
        assert!(events.new_lines(&run(), &plan, now).is_empty());
        // The next event already shows both batches completed.
        plan.batches = vec![
            batch(1, BatchPhase::Completed, &[ready, ready]),
            batch(2, BatchPhase::Completed, &[Some(ServiceResult::Failed)]),
        ];
        assert_eq!(
            events.new_lines(&run(), &plan, now),
            [
                "batch 1/2 completed: 2 ready, 0 failed, 0 skipped",
                "batch 2/2 started: 1 Deployment",
                "batch 2/2 completed: 0 ready, 1 failed, 0 skipped"
            ]
        );
    }

    #[test]
    fn suspension_resumption_and_a_cancel_request_are_announced_once() {
        let mut events = BatchEvents::default();
        let now = Timestamp::UNIX_EPOCH;
        let plan = PlanView {
            batches: vec![batch(1, BatchPhase::Pending, &[None])],
            ..Default::default()
        };
        let mut held = run();
        held.phase = Phase::Suspended;
        let lines = events.new_lines(&held, &plan, now);
        assert_eq!(lines.last().unwrap(), "run 2 suspended by spec.suspend before batch 1/1");
        assert!(events.new_lines(&held, &plan, now).is_empty());
        let mut cancelled = run();
        cancelled.cancel_requested = true;
        assert_eq!(
            events.new_lines(&cancelled, &plan, now),
            [
                "run 2 resumed",
                "run 2: cancel requested; the batch in flight finishes, the rest is skipped"
            ]
        );
        assert!(events.new_lines(&cancelled, &plan, now).is_empty());
    }

    #[test]
    fn large_batches_show_waiting_services_first_and_count_the_rest() {
        let mut services: Vec<ServiceView> =
            (0..20).map(|i| service(&format!("done-{i:02}"), Some(ServiceResult::Ready))).collect();
        services.push(service("still-rolling", None));
        let lines = service_lines(&services);
        assert_eq!(lines.len(), MAX_SERVICE_LINES);
        assert_eq!(lines[0].0, "…");
        assert!(lines[0].1.starts_with("still-rolling"));
        assert_eq!(lines.last().unwrap().1, "and 10 more (0 waiting, 10 done)");
    }
}
