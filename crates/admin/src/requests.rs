//! Submitting and cancelling jobs: each a merge patch of the target's annotations, like
//! `kubectl annotate`, conditional on the resourceVersion the decision was made from, so two
//! clients (or two replicas) never both think they created the pending job, and a cancel
//! never reaches a run that started after the decision. On a conflict the decision is made
//! again from the newer cached object. These writes are user requests, not operator
//! actions, so any replica may send them, leader or not.
//!
//! Cancelling a SUBMITTED job withdraws its request: the run-requested annotation is
//! removed (the operator treats a removed request as no request) and the ledger records the
//! withdrawal, so the job reads CANCELLED and no run serves it. A run that other triggers
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
use super::ledger::{LEDGER_ANNOTATION, Ledger};
use servicerefresh_core::crd::{
    CANCEL_REQUESTED_AT_ANNOTATION, RUN_REQUESTED_AT_ANNOTATION, ServiceRefresh,
};
use servicerefresh_core::engine::Plan;

/// Field manager of the API's writes.
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
    /// A job is pending already: answer with it and write nothing.
    Pending(String),
    /// Write this patch, which makes `id` the pending job.
    Write { id: String, patch: Value },
}

/// Decides a submission: the pending job if there is one, else a patch setting `new_id`.
pub fn plan_submit(
    refresh: &ServiceRefresh,
    caller: &Caller,
    new_id: &str,
    now: Timestamp,
) -> SubmitPlan {
    if let Some(pending) = jobs::pending_request(refresh) {
        return SubmitPlan::Pending(pending.to_owned());
    }
    let ledger = Ledger::of(refresh).with_submitted(new_id, &caller.username, now.as_millisecond());
    SubmitPlan::Write {
        id: new_id.to_owned(),
        patch: annotations_patch(
            refresh,
            json!({ RUN_REQUESTED_AT_ANNOTATION: new_id, LEDGER_ANNOTATION: ledger.to_annotation() }),
        ),
    }
}

/// The write a cancellation needs.
#[derive(Clone, Debug, PartialEq)]
pub enum CancelPlan {
    /// Nothing to write: the job is cancelling or cancelled already.
    Unchanged(Box<Job>),
    /// Write this patch.
    Write(Value),
}

/// Decides a cancellation of job `id`.
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
            let ledger = Ledger::of(refresh).with_withdrawn(id, now.as_millisecond());
            Ok(CancelPlan::Write(annotations_patch(
                refresh,
                json!({ RUN_REQUESTED_AT_ANNOTATION: null, LEDGER_ANNOTATION: ledger.to_annotation() }),
            )))
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
    let id = jobs::new_job_id(now);
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
            Err(source) => Err(RequestError::Patch { target: target.to_string(), source }),
        }
    }

    /// Requests a run, or answers with the job already pending.
    pub async fn submit(&self, caller: &Caller) -> Result<Submission, RequestError> {
        let mut refresh = self.cached.current().await?;
        for _ in 0..MAX_ATTEMPTS {
            let now = Timestamp::now();
            let id = jobs::new_job_id(now);
            match plan_submit(&refresh, caller, &id, now) {
                SubmitPlan::Pending(pending) => {
                    return Ok(Submission {
                        job: self.job_or_submitted(&refresh, &pending),
                        created: false,
                    });
                }
                SubmitPlan::Write { id, patch } => {
                    let seen = refresh.metadata.resource_version.clone();
                    match self.patch(&patch).await? {
                        Some(written) => {
                            // Read-your-writes: the caller may ask for the job right away.
                            let cached = self.cached.wait_past(seen.as_deref()).await?;
                            let newest = if jobs::find(&cached, None, &id, &self.context).is_some()
                            {
                                cached
                            } else {
                                Arc::new(written)
                            };
                            return Ok(Submission {
                                job: self.job_or_submitted(&newest, &id),
                                created: true,
                            });
                        }
                        None => refresh = self.cached.wait_past(seen.as_deref()).await?,
                    }
                }
            }
        }
        Err(RequestError::Contended {
            target: self.cached.target().to_string(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Requests cancellation of job `id`, and returns the job as it then reads.
    pub async fn cancel(&self, id: &str) -> Result<Job, RequestError> {
        let mut refresh = self.cached.current().await?;
        for _ in 0..MAX_ATTEMPTS {
            match plan_cancel(&refresh, id, &self.context, Timestamp::now())? {
                CancelPlan::Unchanged(job) => return Ok(*job),
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
        Err(RequestError::Contended {
            target: self.cached.target().to_string(),
            attempts: MAX_ATTEMPTS,
        })
    }

    fn job_or_submitted(&self, refresh: &ServiceRefresh, id: &str) -> Job {
        jobs::find(refresh, None, id, &self.context).unwrap_or_else(|| Job {
            jobid: id.to_owned(),
            status: JobStatus::Submitted,
            starttime: jobs::submitted_at(id).unwrap_or(0),
            endtime: 0,
            updatedtime: jobs::submitted_at(id).unwrap_or(0),
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

    const JOB: &str = "j018bcfe56800aabbccddeeff00112233";

    fn context() -> JobContext {
        JobContext {
            target: TargetRef { namespace: "arcgis".into(), name: "all".into() },
            context_root: String::new(),
        }
    }

    fn object(annotations: &[(&str, &str)], status: Option<serde_json::Value>) -> ServiceRefresh {
        let mut fixture = ServiceRefresh::fixture("all");
        for (key, value) in annotations {
            fixture = fixture.annotation(key, value);
        }
        if let Some(status) = status {
            fixture = fixture.status(serde_json::from_value(status).expect("status"));
        }
        let mut refresh = fixture.build();
        refresh.metadata.resource_version = Some("42".into());
        refresh
    }

    fn alice() -> Caller {
        Caller { username: "alice".into(), ..Caller::default() }
    }

    fn now() -> Timestamp {
        Timestamp::from_millisecond(1_700_000_000_000).expect("time")
    }

    #[test]
    fn a_submission_writes_a_new_request_only_when_none_is_pending() {
        let idle = object(
            &[(RUN_REQUESTED_AT_ANNOTATION, "old")],
            Some(json!({"triggers": {"runRequestedAt": "old"}})),
        );
        let SubmitPlan::Write { id, patch } = plan_submit(&idle, &alice(), JOB, now()) else {
            panic!("a write");
        };
        assert_eq!(id, JOB);
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        assert_eq!(patch["metadata"]["annotations"][RUN_REQUESTED_AT_ANNOTATION], JOB);
        assert_eq!(
            patch["metadata"]["annotations"][LEDGER_ANNOTATION],
            format!(r#"{{"{JOB}":{{"username":"alice","submitted":1700000000000}}}}"#)
        );
        let pending = object(
            &[(RUN_REQUESTED_AT_ANNOTATION, "theirs")],
            Some(json!({"triggers": {"runRequestedAt": "old"}})),
        );
        assert_eq!(
            plan_submit(&pending, &alice(), JOB, now()),
            SubmitPlan::Pending("theirs".into())
        );
    }

    #[test]
    fn cancelling_withdraws_a_submitted_job_and_cancels_an_executing_one() {
        let pending = object(&[(RUN_REQUESTED_AT_ANNOTATION, JOB)], None);
        let CancelPlan::Write(patch) = plan_cancel(&pending, JOB, &context(), now()).expect("plan")
        else {
            panic!("a write");
        };
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        assert_eq!(
            patch["metadata"]["annotations"][RUN_REQUESTED_AT_ANNOTATION],
            Value::Null,
            "removed"
        );
        let ledger = patch["metadata"]["annotations"][LEDGER_ANNOTATION].as_str().expect("ledger");
        assert!(ledger.contains(r#""withdrawn":1700000000000"#), "{ledger}");

        let running = json!({
            "phase": "Running", "triggers": {"runRequestedAt": JOB},
            "run": {"id": "r", "number": 1, "reason": "RunRequested", "request": JOB, "startTime": "2023-11-14T22:13:20Z"},
        });
        let executing = object(&[(RUN_REQUESTED_AT_ANNOTATION, JOB)], Some(running.clone()));
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
        );
        assert!(matches!(
            plan_cancel(&cancelling, JOB, &context(), now()),
            Ok(CancelPlan::Unchanged(_))
        ));
        let done = object(
            &[(RUN_REQUESTED_AT_ANNOTATION, JOB)],
            Some(json!({"phase": "Succeeded", "triggers": {"runRequestedAt": JOB}, "history": [
                {"id": "r", "number": 1, "reason": "RunRequested", "request": JOB, "phase": "Succeeded", "totals": {}}]})),
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
