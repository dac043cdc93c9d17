//! The HTTP surface below the context root, ArcGIS Enterprise's admin job API:
//!
//! | Method | Path | Right | Answer |
//! | --- | --- | --- | --- |
//! | GET | `/` | get | the API's resources |
//! | GET | `/services/refreshAllServices` | get | the operation page (f=html) |
//! | POST | `/services/refreshAllServices` | patch | `{"jobsUrl", "jobid", "status": "SUBMITTED"}` |
//! | GET, POST | `/jobs` | get | `{"jobs": [jobid, ...]}`, newest first |
//! | GET, POST | `/jobs/<jobid>` | get | the job |
//! | POST | `/jobs/<jobid>/cancel` | patch | the job after the cancel request |
//!
//! Every request is admitted ([`admission::Admitted`]: authenticated, authorized, and for a
//! write from no foreign origin) before anything is looked up, so a refused request never
//! tells whether a job exists. State is read from the operator's cache. Absolute URLs are
//! built from `--admin-external-url` only, never from the request's Host header.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::get;
use serde_json::json;
use tracing::{info, warn};

pub mod admission;

use super::auth::Authority;
use super::auth::limiter::FailureLimiter;
use super::cache::{CacheError, CachedTarget};
use super::config::ExternalUrl;
use super::jobs::{self, JobContext, JobStatus};
use super::pages::{self, ErrorPage, IndexPage, JobPage, JobsPage, OperationPage, PageInfo};
use super::params::Params;
use super::requests::{RequestError, Requests};
use super::respond::{ArcGisError, Format, html_response, json_response, see_other};
use admission::{Admitted, Read, Write};
use servicerefresh_operator::telemetry;

/// What the handlers share.
pub struct AdminApi {
    pub authority: Arc<dyn Authority>,
    /// Invalid tokens per client address.
    pub failures: FailureLimiter,
    pub cached: CachedTarget,
    pub requests: Requests,
    pub context: JobContext,
    /// Where clients reach the context root, for absolute URLs and the origin check.
    pub external_url: Option<ExternalUrl>,
    /// How long a form body may take to arrive.
    pub body_timeout: Duration,
}

/// The router: the API below `context.context_root`, a plain 404 elsewhere.
pub fn router(api: Arc<AdminApi>) -> Router {
    let root = api.context.context_root.clone();
    let routes = Router::new()
        .route("/", get(index).post(index))
        .route(jobs::OPERATION, get(operation_page).post(submit))
        .route("/jobs", get(list).post(list))
        .route("/jobs/{jobid}", get(job).post(job))
        .route("/jobs/{jobid}/cancel", get(cancel_with_get).post(cancel))
        .fallback(not_found);
    if root.is_empty() {
        routes.with_state(api)
    } else {
        // The root answers with its trailing slash too, as ArcGIS's does.
        Router::new()
            .nest(&root, routes)
            .route(&format!("{root}/"), get(index).post(index))
            .with_state(api)
    }
}

impl AdminApi {
    fn page(&self, title: &str, params: &Params) -> PageInfo {
        PageInfo::new(
            title,
            self.context.target.to_string(),
            &self.context.context_root,
            params.get("token"),
        )
    }

    /// An error in the requested format: JSON, or a page (asking for a token when needed).
    fn error(&self, format: Format, error: &ArcGisError, params: &Params) -> Response {
        match format {
            Format::Json | Format::Pjson => error.to_json_response(format == Format::Pjson),
            Format::Html => {
                let page = self.page("Error", params);
                let ask_token = matches!(error.code, 498 | 499);
                html_response(pages::render(&ErrorPage { page: &page, error, ask_token }))
            }
        }
    }

    /// `jobsUrl` of job `id`: below the external URL, else relative to the submitting
    /// request's path (`<root>/services/refreshAllServices`), which every client resolves
    /// to `<root>/jobs/<id>` whatever host or proxy path it used.
    fn jobs_url(&self, id: &str) -> String {
        match &self.external_url {
            Some(external) => format!("{}/jobs/{}", external.base(), pages::encode(id)),
            None => format!("../jobs/{}", pages::encode(id)),
        }
    }
}

/// A failed request in ArcGIS's terms; server-side failures are logged with their causes.
fn request_error(error: &RequestError) -> ArcGisError {
    match error {
        RequestError::JobNotFound { id } => ArcGisError::job_not_found(id),
        RequestError::NotCancellable { .. } => {
            ArcGisError::bad_request(format!("{}.", capitalized(&error.to_string())))
        }
        RequestError::Cache(CacheError::NotReady(_)) | RequestError::Contended { .. } => {
            warn!(error = %error, "admin API: request not carried out");
            ArcGisError::unavailable(format!("{}.", capitalized(&error.to_string())))
        }
        RequestError::Cache(CacheError::TargetMissing { .. })
        | RequestError::Patch { .. }
        | RequestError::Ledger { .. } => {
            warn!(error = %error, cause = %telemetry::error_causes(error), "admin API: request failed");
            ArcGisError::internal(format!("{}.", capitalized(&error.to_string())))
        }
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn cache_error(error: CacheError) -> ArcGisError {
    request_error(&RequestError::Cache(error))
}

async fn index(State(api): State<Arc<AdminApi>>, admitted: Admitted<Read>) -> Response {
    match admitted.format {
        Format::Html => {
            let page = api.page("ServiceRefresh job API", &admitted.params);
            html_response(pages::render(&IndexPage { page: &page }))
        }
        json_format => json_response(
            &json!({"resources": ["jobs"], "operations": ["services/refreshAllServices"]}),
            json_format == Format::Pjson,
        ),
    }
}

async fn operation_page(State(api): State<Arc<AdminApi>>, admitted: Admitted<Read>) -> Response {
    let Admitted { format, params, .. } = admitted;
    match format {
        Format::Html => {
            let page = api.page("Refresh All Services", &params);
            let action = page.action(jobs::OPERATION);
            html_response(pages::render(&OperationPage { page: &page, action }))
        }
        _ => api.error(format, &ArcGisError::post_only("refreshAllServices"), &params),
    }
}

async fn submit(State(api): State<Arc<AdminApi>>, admitted: Admitted<Write>) -> Response {
    let Admitted { format, caller, params, .. } = admitted;
    let submission = match api.requests.submit(&caller).await {
        Ok(submission) => submission,
        Err(error) => return api.error(format, &request_error(&error), &params),
    };
    let id = &submission.job.jobid;
    info!(
        job = %id, username = %caller.username, target = %api.context.target, created = submission.created,
        "admin API: refreshAllServices"
    );
    match format {
        Format::Html => see_other(&api.page("", &params).job_url(id)),
        json_format => json_response(
            &json!({"jobsUrl": api.jobs_url(id), "jobid": id, "status": JobStatus::Submitted}),
            json_format == Format::Pjson,
        ),
    }
}

async fn list(State(api): State<Arc<AdminApi>>, admitted: Admitted<Read>) -> Response {
    let Admitted { format, params, .. } = admitted;
    let refresh = match api.cached.current().await {
        Ok(refresh) => refresh,
        Err(error) => return api.error(format, &cache_error(error), &params),
    };
    let all = jobs::list(&refresh, &api.context);
    match format {
        Format::Html => {
            let page = api.page("Jobs", &params);
            html_response(pages::render(&JobsPage::new(&page, &all)))
        }
        json_format => {
            let ids: Vec<&str> = all.iter().map(|job| job.jobid.as_str()).collect();
            json_response(&json!({ "jobs": ids }), json_format == Format::Pjson)
        }
    }
}

async fn job(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<String>,
    admitted: Admitted<Read>,
) -> Response {
    let Admitted { format, params, .. } = admitted;
    let refresh = match api.cached.current().await {
        Ok(refresh) => refresh,
        Err(error) => return api.error(format, &cache_error(error), &params),
    };
    let plan = api.requests.plan_of(&refresh).await;
    let Some(job) = jobs::find(&refresh, plan.as_ref(), &id, &api.context) else {
        return api.error(format, &ArcGisError::job_not_found(&id), &params);
    };
    match format {
        Format::Html => {
            let page = api.page(&format!("Job {id}"), &params);
            html_response(pages::render(&JobPage::new(&page, &job)))
        }
        json_format => json_response(&job, json_format == Format::Pjson),
    }
}

async fn cancel(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<String>,
    admitted: Admitted<Write>,
) -> Response {
    let Admitted { format, caller, params, .. } = admitted;
    let job = match api.requests.cancel(&id).await {
        Ok(job) => job,
        Err(error) => return api.error(format, &request_error(&error), &params),
    };
    info!(job = %id, username = %caller.username, status = job.status.as_str(), "admin API: cancel");
    match format {
        Format::Html => see_other(&api.page("", &params).job_url(&id)),
        json_format => json_response(&job, json_format == Format::Pjson),
    }
}

async fn cancel_with_get(State(api): State<Arc<AdminApi>>, admitted: Admitted<Read>) -> Response {
    api.error(admitted.format, &ArcGisError::post_only("cancel"), &admitted.params)
}

async fn not_found(
    State(api): State<Arc<AdminApi>>,
    uri: Uri,
    admitted: Admitted<Read>,
) -> Response {
    let path = uri.path().strip_prefix(api.context.context_root.as_str()).unwrap_or(uri.path());
    api.error(
        admitted.format,
        &ArcGisError::not_found(path.trim_start_matches('/')),
        &admitted.params,
    )
}

#[cfg(test)]
mod tests;
