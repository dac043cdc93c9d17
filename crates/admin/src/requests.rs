//! Submitting and cancelling jobs. A submission sets `gisops.io/run-requested-at` to a new job
//! id with a merge patch, like `kubectl annotate`, then records the job and its submitter in
//! `status.jobs` ([`Ledger`]) with a server-side apply. Each write is conditional on the
//! resourceVersion its decision was made from, so two clients (or two replicas) never both
//! think they created the pending job, and a cancel never reaches a run that started after
//! the decision. On a conflict the decision is made again from a newer object. These writes
//! are user requests, not operator actions, so any replica may send them, leader or not.
//!
//! Cancelling a SUBMITTED job withdraws its request: the ledger records the withdrawal, then
//! the run-requested annotation is removed (the operator treats a removed request as no
//! request), so the job reads CANCELLED and no run serves it. A run that other triggers
//! start anyway is not this job's. Cancelling an EXECUTING job sets
//! `gisops.io/cancel-requested-at`: the batch in flight finishes and the rest is skipped.

use std::sync::Arc;

use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use thiserror::Error;

use super::auth::Caller;
use super::cache::{CacheError, CachedTarget};
use super::jobs::{self, Job, JobContext, JobStatus};
use super::ledger::{self, Ledger};
use servicerefresh_core::crd::{
    CANCEL_REQUESTED_AT_ANNOTATION, RUN_REQUESTED_AT_ANNOTATION, ServiceRefresh,
};
use servicerefresh_core::engine::Plan;

/// Field manager of the API's writes: the annotations it sets and `status.jobs`.
pub const FIELD_MANAGER: &str = "servicerefresh-admin";
/// Conditional writes tried this many times while others keep changing the object.
const MAX_ATTEMPTS: usize = 5;

/// Why a request could not be carried out.
#[derive(Debug, Error)]
pub enum RequestError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("the API server refused to annotate ServiceRefresh {target}")]
    Patch {
        target: String,
        #[source]
        source: kube::Error,
    },
    #[error("the API server refused to record the job in the status of ServiceRefresh {target}")]
    Ledger {
        target: String,
        #[source]
        source: kube::Error,
    },
    #[error("ServiceRefresh {target} kept changing; gave up after {attempts} attempts")]
    Contended { target: String, attempts: usize },
    #[error("job {id} is {} and can no longer be cancelled", status.as_str())]
    NotCancellable { id: String, status: JobStatus },
    #[error("job {id} does not exist")]
    JobNotFound { id: String },
}

/// What a submission did.
#[derive(Clone, Debug, PartialEq)]
pub struct Submission {
    /// The job: the new one, or the one already pending.
    pub job: Job,
    /// Whether this request created it.
    pub created: bool,
}

/// The write a submission needs, decided from one version of the object.
#[derive(Clone, Debug, PartialEq)]
pub enum SubmitPlan {
    /// A job of this API is pending already: answer with it and write nothing.
    Pending(String),
    /// Write this patch, which makes `id` the pending request; then record the job.
    Write { id: String, patch: Value },
}

/// Decides a submission: the pending job if there is one, else a patch requesting `new_id`.
/// A pending request that is no job of this API (the CLI's) is replaced: one run serves
/// both, as when two clients annotate one after the other.
pub fn plan_submit(refresh: &ServiceRefresh, new_id: &str) -> SubmitPlan {
    if let Some(pending) = jobs::pending_request(refresh)
        && Ledger::of(refresh).get(pending).is_some()
    {
        return SubmitPlan::Pending(pending.to_owned());
    }
    SubmitPlan::Write {
        id: new_id.to_owned(),
        patch: annotations_patch(refresh, json!({ RUN_REQUESTED_AT_ANNOTATION: new_id })),
    }
}

/// The next step of a cancellation.
#[derive(Clone, Debug, PartialEq)]
pub enum CancelPlan {
    /// Nothing to write: the job is cancelling or cancelled already.
    Unchanged(Box<Job>),
    /// Record the withdrawal of the submitted job: write this ledger.
    Record(Ledger),
    /// Write this patch.
    Write(Value),
}

/// Decides the next step of cancelling job `id`.
pub fn plan_cancel(
    refresh: &ServiceRefresh,
    id: &str,
    context: &JobContext,
    now: Timestamp,
) -> Result<CancelPlan, RequestError> {
    let job = jobs::find(refresh, None, id, context)
        .ok_or_else(|| RequestError::JobNotFound { id: id.to_owned() })?;
    match job.status {
        JobStatus::Cancelling | JobStatus::Cancelled => Ok(CancelPlan::Unchanged(Box::new(job))),
        JobStatus::Completed | JobStatus::Failed => {
            Err(RequestError::NotCancellable { id: id.to_owned(), status: job.status })
        }
        JobStatus::Submitted => {
            let ledger = Ledger::of(refresh);
            match ledger.get(id).and_then(|entry| entry.withdraw_time.as_ref()) {
                None => ledger
                    .with_withdrawn(id, now)
                    .map(CancelPlan::Record)
                    .ok_or_else(|| RequestError::JobNotFound { id: id.to_owned() }),
                Some(_) => Ok(CancelPlan::Write(annotations_patch(
                    refresh,
                    json!({ RUN_REQUESTED_AT_ANNOTATION: null }),
                ))),
            }
        }
        JobStatus::Executing => Ok(CancelPlan::Write(annotations_patch(
            refresh,
            json!({ CANCEL_REQUESTED_AT_ANNOTATION: fresh_value(now) }),
        ))),
    }
}

/// A merge patch of `annotations`, conditional on the object's resourceVersion.
fn annotations_patch(refresh: &ServiceRefresh, annotations: Value) -> Value {
    json!({
        "metadata": {
            "resourceVersion": refresh.metadata.resource_version,
            "annotations": annotations,
        }
    })
}

/// A unique value for a request annotation: the time to the nanosecond and a random suffix.
fn fresh_value(now: Timestamp) -> String {
    let id = ledger::new_job_id(now);
    format!("{now:.9}-{}", &id[id.len() - 6..])
}

/// Submits and cancels jobs of one target.
#[derive(Clone)]
pub struct Requests {
    cached: CachedTarget,
    api: Api<ServiceRefresh>,
    context: JobContext,
}

impl Requests {
    /// The plan of `refresh`'s current run, which names its services; `None` when it cannot
    /// be read (the job then shows what the status alone holds).
    pub async fn plan_of(&self, refresh: &ServiceRefresh) -> Option<Plan> {
        let client = self.api.clone().into_client();
        match servicerefresh_operator::controller::plans::read_plan(&client, refresh).await {
            Ok(plan) => plan,
            Err(error) => {
                tracing::warn!(%error, "admin API: cannot read the run's plan objects; the job shows the status alone");
                None
            }
        }
    }

    pub fn new(cached: CachedTarget, client: kube::Client, context: JobContext) -> Self {
        let target = cached.target();
        let api = Api::namespaced(client, &target.namespace);
        Self { cached, api, context }
    }

    fn target_name(&self) -> String {
        self.cached.target().to_string()
    }

    /// Sends `patch`; `Ok(None)` on a conflict (the object changed since the decision).
    async fn patch(&self, patch: &Value) -> Result<Option<ServiceRefresh>, RequestError> {
        let params =
            PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
        let target = self.cached.target();
        match self.api.patch(&target.name, &params, &Patch::Merge(patch)).await {
            Ok(written) => Ok(Some(written)),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                Err(CacheError::TargetMissing { target: target.clone() }.into())
            }
            Err(source) => Err(RequestError::Patch { target: self.target_name(), source }),
        }
    }

    /// Writes the ledger `change` makes of `refresh`'s, conditional on `refresh`'s version;
    /// on a conflict, makes the change again on the newer object from the cache: one that
    /// `shows` what must be in it (the caller's own write just before) and is not the version
    /// that conflicted. (The operator may not `get` ServiceRefreshes: its cache is how it
    /// reads them.) Returns the object as written, or as it was when `change` has nothing to
    /// write.
    async fn record(
        &self,
        mut refresh: Arc<ServiceRefresh>,
        change: impl Fn(&Ledger) -> Option<Ledger>,
        shows: impl Fn(&ServiceRefresh) -> bool,
    ) -> Result<Arc<ServiceRefresh>, RequestError> {
        let target = self.cached.target();
        // The status belongs to the API and the operator: force takes the field over from
        // anyone else who wrote it (a person editing the status by hand).
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for _ in 0..MAX_ATTEMPTS {
            let Some(ledger) = change(&Ledger::of(&refresh)) else {
                return Ok(refresh);
            };
            let body = ledger.apply_body(&refresh);
            match self.api.patch_status(&target.name, &params, &Patch::Apply(&body)).await {
                Ok(written) => return Ok(Arc::new(written)),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    let tried = refresh.metadata.resource_version.clone();
                    refresh = self
                        .cached
                        .wait_until(|cached| {
                            cached.metadata.resource_version != tried && shows(cached)
                        })
                        .await?;
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    return Err(CacheError::TargetMissing { target: target.clone() }.into());
                }
                Err(source) => {
                    return Err(RequestError::Ledger { target: target.to_string(), source });
                }
            }
        }
        Err(RequestError::Contended { target: self.target_name(), attempts: MAX_ATTEMPTS })
    }

    /// Requests a run, or answers with the job already pending.
    pub async fn submit(&self, caller: &Caller) -> Result<Submission, RequestError> {
        let mut refresh = self.cached.current().await?;
        for _ in 0..MAX_ATTEMPTS {
            let now = Timestamp::now();
            match plan_submit(&refresh, &ledger::new_job_id(now)) {
                SubmitPlan::Pending(pending) => {
                    return Ok(Submission {
                        job: self.job_or_submitted(&refresh, &pending),
                        created: false,
                    });
                }
                SubmitPlan::Write { id, patch } => {
                    let seen = refresh.metadata.resource_version.clone();
                    let Some(written) = self.patch(&patch).await? else {
                        refresh = self.cached.wait_past(seen.as_deref()).await?;
                        continue;
                    };
                    let requested = |refresh: &ServiceRefresh| {
                        jobs::pending_request(refresh).is_some_and(|pending| pending == id)
                            || refresh.status.as_ref().is_some_and(|status| {
                                status.triggers.run_requested_at.as_deref() == Some(id.as_str())
                            })
                    };
                    let recorded = self
                        .record(
                            Arc::new(written),
                            |ledger| Some(ledger.with_submitted(&id, &caller.username, now)),
                            requested,
                        )
                        .await?;
                    // Read-your-writes: the caller may ask for the job right away.
                    let newest = self.cached_with(&id, recorded).await?;
                    return Ok(Submission {
                        job: self.job_or_submitted(&newest, &id),
                        created: true,
                    });
                }
            }
        }
        Err(RequestError::Contended { target: self.target_name(), attempts: MAX_ATTEMPTS })
    }

    /// Requests cancellation of job `id`, and returns the job as it then reads.
    pub async fn cancel(&self, id: &str) -> Result<Job, RequestError> {
        let mut refresh = self.cached.current().await?;
        for _ in 0..MAX_ATTEMPTS {
            let now = Timestamp::now();
            match plan_cancel(&refresh, id, &self.context, now)? {
                CancelPlan::Unchanged(job) => return Ok(*job),
                CancelPlan::Record(_) => {
                    refresh = self
                        .record(refresh, |ledger| ledger.with_withdrawn(id, now), |_| true)
                        .await?;
                }
                CancelPlan::Write(patch) => {
                    let seen = refresh.metadata.resource_version.clone();
                    let written = self.patch(&patch).await?;
                    refresh = self.cached.wait_past(seen.as_deref()).await?;
                    if let Some(written) = written {
                        let newest = if refresh.metadata.resource_version == seen {
                            Arc::new(written)
                        } else {
                            refresh
                        };
                        return jobs::find(&newest, None, id, &self.context)
                            .ok_or_else(|| RequestError::JobNotFound { id: id.to_owned() });
                    }
                }
            }
        }
        Err(RequestError::Contended { target: self.target_name(), attempts: MAX_ATTEMPTS })
    }

    /// The cached object once it shows job `id`, or `written` if the cache is slow to.
    async fn cached_with(
        &self,
        id: &str,
        written: Arc<ServiceRefresh>,
    ) -> Result<Arc<ServiceRefresh>, RequestError> {
        let cached = self
            .cached
            .wait_until(|refresh| jobs::find(refresh, None, id, &self.context).is_some())
            .await?;
        Ok(if jobs::find(&cached, None, id, &self.context).is_some() { cached } else { written })
    }

    fn job_or_submitted(&self, refresh: &ServiceRefresh, id: &str) -> Job {
        jobs::find(refresh, None, id, &self.context).unwrap_or_else(|| Job {
            jobid: id.to_owned(),
            status: JobStatus::Submitted,
            starttime: ledger::submitted_at(id).unwrap_or(0),
            endtime: 0,
            updatedtime: ledger::submitted_at(id).unwrap_or(0),
            operation_uri: self.context.operation_uri(),
            username: None,
            result: None,
            messages: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TargetRef;

    /// A job id as the API makes them, submitted at `now()`.
    const JOB: &str = "j018bcfe568007abc8bccddeeff001122";

    fn context() -> JobContext {
        JobContext {
            target: TargetRef { namespace: "arcgis".into(), name: "all".into() },
            context_root: String::new(),
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_millisecond(1_700_000_000_000).expect("time")
    }

    fn object(
        annotations: &[(&str, &str)],
        status: Option<serde_json::Value>,
        ledger: &Ledger,
    ) -> ServiceRefresh {
        let mut fixture = ServiceRefresh::fixture("all");
        for (key, value) in annotations {
            fixture = fixture.annotation(key, value);
        }
        let mut status = status.unwrap_or_else(|| json!({}));
        status["jobs"] =
            ledger.apply_body(&ServiceRefresh::fixture("all").build())["status"]["jobs"].clone();
        let mut refresh = fixture.status(serde_json::from_value(status).expect("status")).build();
        refresh.metadata.resource_version = Some("42".into());
        refresh
    }

    fn submitted() -> Ledger {
        Ledger::default().with_submitted(JOB, "alice", now())
    }

    #[test]
    fn a_submission_writes_a_new_request_unless_a_job_is_pending() {
        let idle = object(
            &[(RUN_REQUESTED_AT_ANNOTATION, "old")],
            Some(json!({"triggers": {"runRequestedAt": "old"}})),
            &Ledger::default(),
        );
        let SubmitPlan::Write { id, patch } = plan_submit(&idle, JOB) else {
            panic!("a write");
        };
        assert_eq!(id, JOB);
        assert_eq!(
            patch,
            json!({"metadata": {"resourceVersion": "42", "annotations": {RUN_REQUESTED_AT_ANNOTATION: JOB}}}),
            "only the request: who submitted it goes to the status"
        );
        let pending_job = object(
            &[(RUN_REQUESTED_AT_ANNOTATION, JOB)],
            Some(json!({"triggers": {"runRequestedAt": "old"}})),
            &submitted(),
        );
        assert_eq!(plan_submit(&pending_job, "jother"), SubmitPlan::Pending(JOB.into()));
        // A pending request that is no job of ours (the CLI's) is replaced: one run serves both.
        let pending_other = object(
            &[(RUN_REQUESTED_AT_ANNOTATION, "2023-11-14T22:13:20Z-3f9a1c")],
            Some(json!({"triggers": {"runRequestedAt": "old"}})),
            &Ledger::default(),
        );
        assert!(matches!(plan_submit(&pending_other, JOB), SubmitPlan::Write { .. }));
    }

    #[test]
    fn cancelling_withdraws_a_submitted_job_and_cancels_an_executing_one() {
        // A submitted job: first the ledger records the withdrawal, then the request goes.
        let pending = object(&[(RUN_REQUESTED_AT_ANNOTATION, JOB)], None, &submitted());
        let CancelPlan::Record(ledger) =
            plan_cancel(&pending, JOB, &context(), now()).expect("plan")
        else {
            panic!("a ledger write");
        };
        assert!(ledger.get(JOB).is_some_and(|job| job.withdraw_time.is_some()));
        let recorded = object(&[(RUN_REQUESTED_AT_ANNOTATION, JOB)], None, &ledger);
        let CancelPlan::Write(patch) =
            plan_cancel(&recorded, JOB, &context(), now()).expect("plan")
        else {
            panic!("a write");
        };
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        assert_eq!(
            patch["metadata"]["annotations"][RUN_REQUESTED_AT_ANNOTATION],
            Value::Null,
            "removed"
        );
        let withdrawn = object(&[], None, &ledger);
        assert!(matches!(
            plan_cancel(&withdrawn, JOB, &context(), now()),
            Ok(CancelPlan::Unchanged(job)) if job.status == JobStatus::Cancelled
        ));

        let running = json!({
            "phase": "Running", "triggers": {"runRequestedAt": JOB},
            "run": {"id": "r", "number": 1, "reason": "RunRequested", "request": JOB, "startTime": "2023-11-14T22:13:20Z"},
        });
        let executing =
            object(&[(RUN_REQUESTED_AT_ANNOTATION, JOB)], Some(running.clone()), &submitted());
        let CancelPlan::Write(patch) =
            plan_cancel(&executing, JOB, &context(), now()).expect("plan")
        else {
            panic!("a write");
        };
        let value = patch["metadata"]["annotations"][CANCEL_REQUESTED_AT_ANNOTATION]
            .as_str()
            .expect("value");
        assert!(value.starts_with("2023-11-14T22:13:20.000000000Z-"), "{value}");
        assert!(patch["metadata"]["annotations"].get(RUN_REQUESTED_AT_ANNOTATION).is_none());

        // Asking again changes nothing; a finished or unknown job is refused.
        let cancelling = object(
            &[(RUN_REQUESTED_AT_ANNOTATION, JOB), (CANCEL_REQUESTED_AT_ANNOTATION, value)],
            Some(running),
            &submitted(),
        );
        assert!(matches!(
            plan_cancel(&cancelling, JOB, &context(), now()),
            Ok(CancelPlan::Unchanged(_))
        ));
        let done = object(
            &[(RUN_REQUESTED_AT_ANNOTATION, JOB)],
            Some(json!({"phase": "Succeeded", "triggers": {"runRequestedAt": JOB}, "history": [
                {"id": "r", "number": 1, "reason": "RunRequested", "request": JOB, "phase": "Succeeded", "totals": {}}]})),
            &submitted(),
        );
        assert!(matches!(
            plan_cancel(&done, JOB, &context(), now()),
            Err(RequestError::NotCancellable { status: JobStatus::Completed, .. })
        ));
        assert!(matches!(
            plan_cancel(&done, "jnope", &context(), now()),
            Err(RequestError::JobNotFound { .. })
        ));
    }
}
