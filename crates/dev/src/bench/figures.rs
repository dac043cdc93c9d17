//! The benchmark's results: each figure with its unit, its target when it has one, and
//! whether it met it; printed as a table beside the targets and written as JSON.

use std::fmt::Write as _;

use serde::Serialize;

/// A bound a figure must stay within.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "value")]
pub enum Target {
    /// At most this value.
    AtMost(f64),
    /// Exactly this value (counters such as GETs).
    Exactly(f64),
}

impl Target {
    fn met_by(self, value: f64) -> bool {
        match self {
            // A small tolerance keeps 1.0200000001 from missing 1.02.
            Target::AtMost(bound) => value <= bound + bound.abs() * 1e-9,
            Target::Exactly(expected) => (value - expected).abs() < 1e-9,
        }
    }

    fn describe(self, unit: &str) -> String {
        match self {
            Target::AtMost(bound) => format!("<= {}{}", number(bound), unit_suffix(unit)),
            Target::Exactly(expected) => format!("= {}{}", number(expected), unit_suffix(unit)),
        }
    }
}

/// One measured figure.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figure {
    /// Short stable identifier, for tools reading the JSON.
    pub id: String,
    /// What was measured, for people.
    pub label: String,
    pub value: f64,
    pub unit: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Whether the target was met; `None` for figures without a target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
    /// Every repetition's value when the scenario ran more than once; `value` is their median.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<f64>,
}

impl Figure {
    /// The largest minus the smallest repetition (0 for one).
    pub fn spread(&self) -> f64 {
        let max = self.samples.iter().copied().fold(f64::NAN, f64::max);
        let min = self.samples.iter().copied().fold(f64::NAN, f64::min);
        if self.samples.len() > 1 { max - min } else { 0.0 }
    }
}

/// Every figure of one benchmark invocation, in the order they were measured.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// How the benchmark was run (sizes, machine), for reading the figures later.
    pub setup: serde_json::Map<String, serde_json::Value>,
    pub figures: Vec<Figure>,
    /// Request counts of the operator over whole runs, by scenario then `verb resource`.
    pub requests: serde_json::Map<String, serde_json::Value>,
}

impl Report {
    /// Records a figure with a target.
    pub fn check(&mut self, id: &str, label: &str, value: f64, unit: &'static str, target: Target) {
        self.figures.push(Figure {
            id: id.to_owned(),
            label: label.to_owned(),
            value,
            unit,
            target: Some(target),
            met: Some(target.met_by(value)),
            samples: Vec::new(),
        });
    }

    /// Records a figure shown for information.
    pub fn note(&mut self, id: &str, label: &str, value: f64, unit: &'static str) {
        self.figures.push(Figure {
            id: id.to_owned(),
            label: label.to_owned(),
            value,
            unit,
            target: None,
            met: None,
            samples: Vec::new(),
        });
    }

    /// One report from repetitions of the same scenarios: each figure's value is the median of
    /// its repetitions (checked against its target again), with every sample kept, so that a
    /// reader tells noise (a wide spread) from a regression (a shifted median).
    pub fn combine(mut repetitions: Vec<Report>) -> Report {
        if repetitions.len() < 2 {
            return repetitions.pop().unwrap_or_default();
        }
        let mut combined = repetitions.remove(0);
        for figure in &mut combined.figures {
            let mut samples = vec![figure.value];
            samples.extend(repetitions.iter().filter_map(|report| {
                report.figures.iter().find(|other| other.id == figure.id).map(|other| other.value)
            }));
            figure.value = median(&samples);
            figure.met = figure.target.map(|target| target.met_by(figure.value));
            figure.samples = samples;
        }
        combined
    }

    /// The figures that missed their target.
    pub fn misses(&self) -> Vec<&Figure> {
        self.figures.iter().filter(|figure| figure.met == Some(false)).collect()
    }

    /// The table: figure, measured, target, met.
    pub fn table(&self) -> String {
        let width = self.figures.iter().map(|figure| figure.label.len()).max().unwrap_or(10);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:>14}  {:>10}  {:>14}  result",
            "figure", "median", "spread", "target"
        );
        for figure in &self.figures {
            let measured = format!("{}{}", number(figure.value), unit_suffix(figure.unit));
            let spread =
                if figure.samples.len() > 1 { number(figure.spread()) } else { String::new() };
            let (target, result) = match (figure.target, figure.met) {
                (Some(target), Some(true)) => (target.describe(figure.unit), "met"),
                (Some(target), _) => (target.describe(figure.unit), "MISSED"),
                (None, _) => (String::new(), ""),
            };
            let _ = writeln!(
                out,
                "{:<width$}  {measured:>14}  {spread:>10}  {target:>14}  {result}",
                figure.label
            );
        }
        out
    }
}

/// The middle value (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn unit_suffix(unit: &str) -> String {
    if unit.is_empty() { String::new() } else { format!(" {unit}") }
}

/// A number with as many decimals as its size needs.
fn number(value: f64) -> String {
    let magnitude = value.abs();
    if (value.fract() == 0.0 && magnitude < 1e15) || magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_checked_against_their_targets() {
        let mut report = Report::default();
        report.check("ratio", "run time / ideal", 1.019, "", Target::AtMost(1.02));
        report.check("gets", "GETs", 1.0, "", Target::Exactly(0.0));
        report.note("cpu", "CPU", 2.5, "s");
        let missed: Vec<&str> = report.misses().iter().map(|figure| figure.id.as_str()).collect();
        assert_eq!(missed, ["gets"]);
        let table = report.table();
        assert!(table.contains("1.019"), "{table}");
        assert!(table.contains("MISSED"), "{table}");
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(
            json["figures"][0]["target"],
            serde_json::json!({"kind": "atMost", "value": 1.02})
        );
        assert_eq!(json["figures"][2].get("met"), None);
    }

    #[test]
    fn repetitions_combine_into_their_median_with_every_sample() {
        let repetition = |ratio: f64| {
            let mut report = Report::default();
            report.check("ratio", "run time / ideal", ratio, "", Target::AtMost(1.02));
            report
        };
        let combined = Report::combine(vec![repetition(1.05), repetition(1.01), repetition(1.0)]);
        let figure = &combined.figures[0];
        assert_eq!(figure.value, 1.01);
        assert_eq!(figure.met, Some(true), "the median meets the target though one sample missed");
        assert_eq!(figure.samples, [1.05, 1.01, 1.0]);
        assert!((figure.spread() - 0.05).abs() < 1e-9);
        assert!(combined.table().contains("spread"));
        let single = Report::combine(vec![repetition(1.05)]);
        assert!(single.figures[0].samples.is_empty());
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
