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
//! Every request is authenticated and authorized before anything is looked up, so a refused
//! request never tells whether a job exists. State is read from the operator's cache.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;
use tracing::{info, warn};

use super::auth::{self, Access, Authority, Caller, Denial};
use super::cache::{CacheError, CachedTarget};
use super::jobs::{self, JobContext, JobStatus};
use super::pages::{self, ErrorPage, IndexPage, JobPage, JobsPage, OperationPage, PageInfo};
use super::params::Params;
use super::requests::{RequestError, Requests};
use super::respond::{ArcGisError, Format, html_response, json_response, see_other};
use servicerefresh_operator::telemetry;

/// What the handlers share.
pub struct AdminApi {
    pub authority: Arc<dyn Authority>,
    pub cached: CachedTarget,
    pub requests: Requests,
    pub context: JobContext,
    /// `https`, or `http` with `--admin-plain-http`.
    pub scheme: &'static str,
    /// `host:port` for absolute URLs when a request has no usable Host header.
    pub fallback_host: String,
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

/// The format, and the format errors are answered in when `f` itself is wrong.
fn format_of(params: &Params) -> Result<Format, ArcGisError> {
    Format::parse(params.get("f"))
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

    /// Authenticates and authorizes the request, or says why not in ArcGIS's terms.
    async fn caller(
        &self,
        headers: &HeaderMap,
        params: &Params,
        access: Access,
    ) -> Result<Caller, ArcGisError> {
        let token = auth::token_from(params.get("token"), headers);
        match auth::check(self.authority.as_ref(), token, access, &self.context.target).await {
            Ok(caller) => Ok(caller),
            Err(Denial::TokenRequired) => Err(ArcGisError::token_required()),
            Err(Denial::InvalidToken) => Err(ArcGisError::invalid_token()),
            Err(Denial::Forbidden { username, verb, target }) => {
                info!(%username, verb, %target, "admin API: request refused by SubjectAccessReview");
                Err(ArcGisError::forbidden())
            }
            Err(Denial::Unavailable(error)) => {
                warn!(error = %error, cause = %telemetry::error_causes(&error), "admin API: cannot check a token");
                Err(ArcGisError::unavailable("The token could not be checked.".to_owned()))
            }
        }
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

    /// `scheme://host` for absolute URLs, from the Host header the client used.
    fn origin(&self, headers: &HeaderMap) -> String {
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .filter(|host| {
                !host.is_empty()
                    && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
            })
            .unwrap_or(&self.fallback_host);
        format!("{}://{host}", self.scheme)
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
        RequestError::Cache(CacheError::TargetMissing { .. }) | RequestError::Patch { .. } => {
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

/// Runs the common prologue: the format, then the caller's right. Errors are answers.
async fn prologue(
    api: &AdminApi,
    headers: &HeaderMap,
    params: &Params,
    access: Access,
) -> Result<Format, Response> {
    authorized(api, headers, params, access).await.map(|(format, _)| format)
}

/// The prologue of a write, which also needs to know who asked.
async fn authorized(
    api: &AdminApi,
    headers: &HeaderMap,
    params: &Params,
    access: Access,
) -> Result<(Format, Caller), Response> {
    let format = format_of(params).map_err(|error| error.to_json_response(false))?;
    let caller = api
        .caller(headers, params, access)
        .await
        .map_err(|error| api.error(format, &error, params))?;
    Ok((format, caller))
}

async fn index(State(api): State<Arc<AdminApi>>, headers: HeaderMap, params: Params) -> Response {
    let format = match prologue(&api, &headers, &params, Access::Read).await {
        Ok(format) => format,
        Err(response) => return response,
    };
    match format {
        Format::Html => {
            let page = api.page("ServiceRefresh job API", &params);
            html_response(pages::render(&IndexPage { page: &page }))
        }
        json_format => json_response(
            &json!({"resources": ["jobs"], "operations": ["services/refreshAllServices"]}),
            json_format == Format::Pjson,
        ),
    }
}

async fn operation_page(
    State(api): State<Arc<AdminApi>>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let format = match prologue(&api, &headers, &params, Access::Read).await {
        Ok(format) => format,
        Err(response) => return response,
    };
    match format {
        Format::Html => {
            let page = api.page("Refresh All Services", &params);
            let action = page.action(jobs::OPERATION);
            html_response(pages::render(&OperationPage { page: &page, action }))
        }
        _ => api.error(format, &ArcGisError::post_only("refreshAllServices"), &params),
    }
}

async fn submit(State(api): State<Arc<AdminApi>>, headers: HeaderMap, params: Params) -> Response {
    let (format, caller) = match authorized(&api, &headers, &params, Access::Write).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
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
        json_format => {
            let jobs_url = format!(
                "{}{}/jobs/{}",
                api.origin(&headers),
                api.context.context_root,
                pages::encode(id)
            );
            json_response(
                &json!({"jobsUrl": jobs_url, "jobid": id, "status": JobStatus::Submitted}),
                json_format == Format::Pjson,
            )
        }
    }
}

async fn list(State(api): State<Arc<AdminApi>>, headers: HeaderMap, params: Params) -> Response {
    let format = match prologue(&api, &headers, &params, Access::Read).await {
        Ok(format) => format,
        Err(response) => return response,
    };
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
    headers: HeaderMap,
    params: Params,
) -> Response {
    let format = match prologue(&api, &headers, &params, Access::Read).await {
        Ok(format) => format,
        Err(response) => return response,
    };
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
    headers: HeaderMap,
    params: Params,
) -> Response {
    let (format, caller) = match authorized(&api, &headers, &params, Access::Write).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
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

async fn cancel_with_get(
    State(api): State<Arc<AdminApi>>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let format = match prologue(&api, &headers, &params, Access::Read).await {
        Ok(format) => format,
        Err(response) => return response,
    };
    api.error(format, &ArcGisError::post_only("cancel"), &params)
}

async fn not_found(
    State(api): State<Arc<AdminApi>>,
    uri: Uri,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let format = match prologue(&api, &headers, &params, Access::Read).await {
        Ok(format) => format,
        Err(response) => return response,
    };
    let path = uri.path().strip_prefix(api.context.context_root.as_str()).unwrap_or(uri.path());
    api.error(format, &ArcGisError::not_found(path.trim_start_matches('/')), &params)
}

#[cfg(test)]
mod tests;
