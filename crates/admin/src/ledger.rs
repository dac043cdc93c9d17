//! What the job API remembers beyond the operator's status, in one annotation on the target
//! ServiceRefresh (`gisops.io/admin-jobs`, a small JSON object): who submitted each job (from
//! the TokenReview), and which jobs were withdrawn before they started. It is written in the
//! same conditional patch as the request it describes, so it never disagrees with it, and it
//! keeps only the most recent entries, so it stays small however many jobs are submitted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use servicerefresh_core::crd::ServiceRefresh;

/// The annotation holding the ledger.
pub const LEDGER_ANNOTATION: &str = "gisops.io/admin-jobs";
/// Entries kept: the operator's run history holds ten runs, plus pending and withdrawn jobs.
pub const MAX_ENTRIES: usize = 20;

/// One job submitted through the API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The submitter, as TokenReview named them.
    pub username: String,
    /// When it was submitted, in epoch milliseconds.
    pub submitted: i64,
    /// When it was withdrawn before it started, in epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<i64>,
}

/// The jobs submitted through the API, by job id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ledger(BTreeMap<String, Entry>);

impl Ledger {
    /// The ledger of `refresh`; an absent or unreadable annotation reads as empty (someone
    /// may have edited it by hand, and it only adds detail to jobs).
    pub fn of(refresh: &ServiceRefresh) -> Self {
        refresh
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(LEDGER_ANNOTATION))
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default()
    }

    /// The job ids it knows.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.0.get(id)
    }

    /// The ledger with `id` submitted by `username` at `at`, keeping the newest entries.
    pub fn with_submitted(&self, id: &str, username: &str, at: i64) -> Self {
        let mut next = self.clone();
        next.0.insert(
            id.to_owned(),
            Entry { username: username.to_owned(), submitted: at, withdrawn: None },
        );
        next.prune();
        next
    }

    /// The ledger with `id` withdrawn at `at` (an entry is made for a job submitted elsewhere).
    pub fn with_withdrawn(&self, id: &str, at: i64) -> Self {
        let mut next = self.clone();
        let entry = next
            .0
            .entry(id.to_owned())
            .or_insert_with(|| Entry { submitted: at, ..Entry::default() });
        entry.withdrawn = Some(at);
        next.prune();
        next
    }

    fn prune(&mut self) {
        while self.0.len() > MAX_ENTRIES {
            let oldest = self.0.iter().min_by_key(|(id, entry)| (entry.submitted, (*id).clone()));
            let Some(oldest) = oldest.map(|(id, _)| id.clone()) else {
                return;
            };
            self.0.remove(&oldest);
        }
    }

    /// The annotation value.
    pub fn to_annotation(&self) -> String {
        // A map of strings and integers always serializes.
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotated(value: &str) -> ServiceRefresh {
        ServiceRefresh::fixture("x").annotation(LEDGER_ANNOTATION, value).build()
    }

    #[test]
    fn round_trips_and_tolerates_garbage() {
        let ledger =
            Ledger::default().with_submitted("j1", "alice", 1000).with_withdrawn("j1", 2000);
        let text = ledger.to_annotation();
        assert_eq!(text, r#"{"j1":{"username":"alice","submitted":1000,"withdrawn":2000}}"#);
        assert_eq!(Ledger::of(&annotated(&text)), ledger);
        assert_eq!(Ledger::of(&annotated("not json")), Ledger::default());
    }

    #[test]
    fn keeps_the_newest_entries() {
        let mut ledger = Ledger::default();
        for n in 0..(MAX_ENTRIES as i64 + 5) {
            ledger = ledger.with_submitted(&format!("j{n:03}"), "u", n);
        }
        assert_eq!(ledger.0.len(), MAX_ENTRIES);
        assert!(ledger.get("j004").is_none() && ledger.get("j005").is_some());
    }
}
