//! What the job API remembers beyond the operator's run status: the jobs submitted through
//! it, in the target's `status.jobs` (who submitted each, when, and whether it was withdrawn
//! before a run started). The status subresource is written only by the operator's identity
//! (the chart grants `servicerefreshes/status` to it alone), so someone who may merely patch
//! the ServiceRefresh (annotate it) cannot forge a job or its submitter. The API writes the
//! field with server-side apply under its own field manager, conditional on the version it
//! decided from; the operator's status applies leave the field out, so neither undoes the
//! other. The list keeps only the newest [`MAX_ENTRIES`] jobs, so it stays small however
//! many jobs are submitted.
//!
//! A job id is `j` and the 32 hex digits of a UUIDv7 ([`new_job_id`]): ArcGIS's shape, the
//! first 12 digits the submission time in epoch milliseconds. Only ids of that shape are
//! jobs ([`is_job_id`]); the ad-hoc trigger `gisops.io/run-requested-at`, which anyone who
//! may annotate can set to any value, starts runs but never makes a job.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use serde_json::{Value, json};

use servicerefresh_core::crd::{AdminJob, ServiceRefresh};

/// Jobs kept: the operator's run history holds ten runs, plus pending and withdrawn jobs.
pub const MAX_ENTRIES: usize = 20;

/// A new job id for a job submitted at `now`: `j` and a UUIDv7 in lower-case hex.
pub fn new_job_id(now: Timestamp) -> String {
    let seconds = u64::try_from(now.as_second()).unwrap_or(0);
    let nanos = u32::try_from(now.subsec_nanosecond()).unwrap_or(0);
    let stamp = uuid::Timestamp::from_unix(uuid::NoContext, seconds, nanos);
    format!("j{}", uuid::Uuid::new_v7(stamp).simple())
}

/// Whether `id` has the shape of a job id this API makes.
pub fn is_job_id(id: &str) -> bool {
    id.strip_prefix('j').is_some_and(|hex| {
        hex.len() == 32
            && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && uuid::Uuid::parse_str(hex).is_ok_and(|uuid| uuid.get_version_num() == 7)
    })
}

/// When a job was submitted, in epoch milliseconds, read from its id.
pub fn submitted_at(id: &str) -> Option<i64> {
    is_job_id(id).then(|| i64::from_str_radix(&id[1..13], 16).ok()).flatten()
}

/// The jobs submitted through the API, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger(Vec<AdminJob>);

impl Ledger {
    /// The ledger of `refresh`: its `status.jobs` whose ids are job ids.
    pub fn of(refresh: &ServiceRefresh) -> Self {
        let jobs = refresh.status.as_ref().map(|status| status.jobs.as_slice()).unwrap_or_default();
        Self(jobs.iter().filter(|job| is_job_id(&job.id)).cloned().collect())
    }

    /// The job ids it knows, newest first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|job| job.id.as_str())
    }

    pub fn get(&self, id: &str) -> Option<&AdminJob> {
        self.0.iter().find(|job| job.id == id)
    }

    /// The ledger with `id` submitted by `username` at `at`, keeping the newest entries.
    pub fn with_submitted(&self, id: &str, username: &str, at: Timestamp) -> Self {
        let mut jobs: Vec<AdminJob> = self.0.iter().filter(|job| job.id != id).cloned().collect();
        jobs.push(AdminJob {
            id: id.to_owned(),
            username: username.to_owned(),
            submit_time: MicroTime(at),
            withdraw_time: None,
        });
        jobs.sort_by(|a, b| (&b.submit_time.0, &b.id).cmp(&(&a.submit_time.0, &a.id)));
        jobs.truncate(MAX_ENTRIES);
        Self(jobs)
    }

    /// The ledger with job `id` withdrawn at `at`; `None` when it holds no such job.
    pub fn with_withdrawn(&self, id: &str, at: Timestamp) -> Option<Self> {
        let mut next = self.clone();
        let job = next.0.iter_mut().find(|job| job.id == id)?;
        job.withdraw_time = Some(MicroTime(at));
        Some(next)
    }

    /// The server-side apply body that sets `status.jobs` to this ledger, conditional on
    /// `refresh`'s resourceVersion.
    pub fn apply_body(&self, refresh: &ServiceRefresh) -> Value {
        json!({
            "apiVersion": "gisops.io/v1alpha1",
            "kind": "ServiceRefresh",
            "metadata": {
                "name": refresh.metadata.name,
                "namespace": refresh.metadata.namespace,
                "resourceVersion": refresh.metadata.resource_version,
            },
            "status": {"jobs": self.0},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_millisecond(millis).expect("time")
    }

    #[test]
    fn job_ids_are_uuid_v7_and_carry_their_submission_time() {
        let now: Timestamp = "2023-11-14T22:13:20.123Z".parse().expect("time");
        let (a, b) = (new_job_id(now), new_job_id(now));
        assert_ne!(a, b);
        assert!(a.starts_with("j018bcfe5") && a.len() == 33, "{a}");
        assert!(is_job_id(&a) && is_job_id(&b));
        assert_eq!(submitted_at(&a), Some(1_700_000_000_123));
        for forged in [
            "jFORGED",
            "j018BCFE56800AABBCCDDEEFF00112233",
            "j018bcfe56800aabbccddeeff00112233",
            "2023-11-14T22:13:20.5Z-3f9a1c",
            "",
            &format!("{a}0"),
        ] {
            assert!(!is_job_id(forged), "{forged}");
            assert_eq!(submitted_at(forged), None);
        }
    }

    #[test]
    fn keeps_the_newest_entries_and_records_withdrawals() {
        let mut ledger = Ledger::default();
        let ids: Vec<String> =
            (0..MAX_ENTRIES as i64 + 5).map(|n| new_job_id(at(1_700_000_000_000 + n))).collect();
        for (n, id) in ids.iter().enumerate() {
            ledger = ledger.with_submitted(id, "alice", at(1_700_000_000_000 + n as i64));
        }
        assert_eq!(ledger.ids().count(), MAX_ENTRIES);
        assert_eq!(ledger.ids().next(), ids.last().map(String::as_str), "newest first");
        assert!(ledger.get(&ids[4]).is_none() && ledger.get(&ids[5]).is_some());
        let withdrawn = ledger.with_withdrawn(&ids[5], at(1_800_000_000_000)).expect("known");
        assert_eq!(
            withdrawn.get(&ids[5]).and_then(|job| job.withdraw_time.as_ref()).map(|t| t.0),
            Some(at(1_800_000_000_000))
        );
        assert_eq!(ledger.with_withdrawn(&ids[0], at(0)), None, "forgotten: nothing to withdraw");
    }

    #[test]
    fn only_job_ids_of_the_status_are_read_and_the_apply_is_conditional() {
        let good = new_job_id(at(1_700_000_000_000));
        let status = serde_json::from_value(json!({"jobs": [
            {"id": good, "username": "alice", "submitTime": "2023-11-14T22:13:20.000000Z"},
            {"id": "jFORGED", "username": "system:admin", "submitTime": "2023-11-14T22:13:20.000000Z"},
        ]}))
        .expect("status");
        let mut refresh = ServiceRefresh::fixture("x").status(status).build();
        refresh.metadata.resource_version = Some("7".into());
        let ledger = Ledger::of(&refresh);
        assert_eq!(ledger.ids().collect::<Vec<_>>(), vec![good.as_str()]);
        let body = ledger.apply_body(&refresh);
        assert_eq!(body["metadata"]["resourceVersion"], "7");
        assert_eq!(body["status"]["jobs"][0]["username"], "alice");
        assert_eq!(body["status"].as_object().map(|status| status.len()), Some(1));
    }
}
