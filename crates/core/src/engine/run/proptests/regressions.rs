//! Histories that once broke a promise, kept as they were generated (one JSON object per line
//! in `recorded_histories.jsonl`): proptest's seeds only reproduce a case for the strategies
//! that made it, and the strategies keep growing. Add a history here when a seed found a bug.

use serde::Deserialize;

use super::model::{Model, Op, Setup};

#[derive(Deserialize)]
struct Recorded {
    /// The proptest seed (its first 16 hex digits) that first produced the history.
    seed: String,
    setup: Setup,
    ops: Vec<Op>,
}

#[test]
fn recorded_histories_keep_their_promises() {
    let lines = include_str!("recorded_histories.jsonl").lines().filter(|line| !line.is_empty());
    for (number, line) in lines.enumerate() {
        let recorded: Recorded = serde_json::from_str(line).unwrap_or_else(|error| {
            panic!("recorded_histories.jsonl line {}: {error}", number + 1)
        });
        let mut model = Model::new(&recorded.setup);
        let result = recorded
            .ops
            .iter()
            .try_for_each(|op| model.apply(op))
            .and_then(|()| model.drain())
            .and_then(|()| model.check_settled());
        if let Err(failure) = result {
            panic!("recorded history {}: {failure}", recorded.seed);
        }
    }
}
