//! The `f=html` pages, rendered with askama from `src/admin/templates/` (every value
//! HTML-escaped by the template engine): the API's home, the refreshAllServices operation
//! page with its Submit form, a job's page (status, progress bar, messages, the batch table
//! with each failed service's message; it reloads itself while the job runs, and offers a
//! Cancel button while it may be cancelled), the job list, and error pages (which ask for a
//! token when there is none or it is not valid).
//!
//! A token that came as the `token` parameter is carried in the pages' links and forms, as
//! ArcGIS's own admin pages do; a token from a header is not written into pages.

use askama::Template;
use jiff::Timestamp;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::jobs::Job;
use super::respond::ArcGisError;

/// Characters left as they are in a query value or a path segment.
const URL_SAFE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Seconds between reloads of a running job's page.
pub const RELOAD_SECONDS: u32 = 2;

/// Percent-encodes a path segment or a query value.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, URL_SAFE).to_string()
}

/// Links every page needs, with the token carried along when it came as a parameter.
#[derive(Clone, Debug)]
pub struct PageInfo {
    pub title: String,
    pub target: String,
    pub home_url: String,
    pub operation_url: String,
    pub jobs_url: String,
    pub token: Option<String>,
    root: String,
}

impl PageInfo {
    pub fn new(title: impl Into<String>, target: String, root: &str, token: Option<&str>) -> Self {
        let mut page = Self {
            title: title.into(),
            target,
            home_url: String::new(),
            operation_url: String::new(),
            jobs_url: String::new(),
            token: token.map(str::to_owned),
            root: root.to_owned(),
        };
        page.home_url = page.url("");
        page.operation_url = page.url("/services/refreshAllServices");
        page.jobs_url = page.url("/jobs");
        page
    }

    /// The page at `path` below the context root, as HTML, with the token.
    pub fn url(&self, path: &str) -> String {
        let token = self
            .token
            .as_deref()
            .map(|token| format!("&token={}", encode(token)))
            .unwrap_or_default();
        format!("{}{path}?f=html{token}", self.root)
    }

    /// The job page of `id`.
    pub fn job_url(&self, id: &str) -> String {
        self.url(&format!("/jobs/{}", encode(id)))
    }

    /// Where a form posts: the path alone, the token travels in the form body.
    pub fn action(&self, path: &str) -> String {
        format!("{}{path}", self.root)
    }
}

/// Epoch milliseconds as a readable UTC time; empty for 0 (not yet).
pub fn show_time(millis: i64) -> String {
    if millis <= 0 {
        return String::new();
    }
    Timestamp::from_millisecond(millis)
        .map(|time| time.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "index.html")]
pub struct IndexPage<'a> {
    pub page: &'a PageInfo,
}

#[derive(Template)]
#[template(path = "operation.html")]
pub struct OperationPage<'a> {
    pub page: &'a PageInfo,
    pub action: String,
}

/// One part of the progress bar: services with one kind of result.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// `ready`, `failed` or `skipped`: the CSS class and the legend.
    pub kind: &'static str,
    pub count: u32,
    /// Its share of the plan, in percent with one decimal, for the `width` style.
    pub width: String,
}

/// The progress bar of a job: a segment per kind of result, the rest still to do.
fn segments(job: &Job) -> Vec<Segment> {
    let Some(result) = &job.result else {
        return Vec::new();
    };
    let total = result.progress.total;
    let totals = &result.totals;
    [("ready", totals.ready), ("failed", totals.failed), ("skipped", totals.skipped)]
        .into_iter()
        .filter(|(_, count)| *count > 0 && total > 0)
        .map(|(kind, count)| Segment {
            kind,
            count,
            width: format!("{:.1}", f64::from(count.min(total)) * 100.0 / f64::from(total)),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "job.html")]
pub struct JobPage<'a> {
    pub page: &'a PageInfo,
    pub job: &'a Job,
    pub username: String,
    pub starttime: String,
    pub endtime: String,
    pub updatedtime: String,
    pub refresh_seconds: Option<u32>,
    pub cancel_action: Option<String>,
    pub segments: Vec<Segment>,
}

impl<'a> JobPage<'a> {
    pub fn new(page: &'a PageInfo, job: &'a Job) -> Self {
        let cancellable = matches!(job.status.as_str(), "SUBMITTED" | "EXECUTING");
        Self {
            page,
            job,
            username: job.username.clone().unwrap_or_default(),
            starttime: show_time(job.starttime),
            endtime: show_time(job.endtime),
            updatedtime: show_time(job.updatedtime),
            refresh_seconds: (!job.status.is_final()).then_some(RELOAD_SECONDS),
            cancel_action: cancellable
                .then(|| page.action(&format!("/jobs/{}/cancel", encode(&job.jobid)))),
            segments: segments(job),
        }
    }
}

/// One row of the job list.
#[derive(Clone, Debug)]
pub struct JobRow {
    pub jobid: String,
    pub url: String,
    pub status: &'static str,
    pub username: String,
    pub starttime: String,
    pub endtime: String,
}

#[derive(Template)]
#[template(path = "jobs.html")]
pub struct JobsPage<'a> {
    pub page: &'a PageInfo,
    pub rows: Vec<JobRow>,
}

impl<'a> JobsPage<'a> {
    pub fn new(page: &'a PageInfo, jobs: &[Job]) -> Self {
        let rows = jobs
            .iter()
            .map(|job| JobRow {
                jobid: job.jobid.clone(),
                url: page.job_url(&job.jobid),
                status: job.status.as_str(),
                username: job.username.clone().unwrap_or_default(),
                starttime: show_time(job.starttime),
                endtime: show_time(job.endtime),
            })
            .collect();
        Self { page, rows }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub page: &'a PageInfo,
    pub error: &'a ArcGisError,
    /// Offer a token form: the token is missing or not valid.
    pub ask_token: bool,
}

/// Renders a page; a template that fails to render gives a plain message instead.
pub fn render(template: &impl Template) -> String {
    template.render().unwrap_or_else(|error| {
        format!(
            "<!DOCTYPE html><title>Error</title><p>The page could not be rendered: {}</p>",
            escape(&error.to_string())
        )
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{JobMessage, JobStatus, MessageKind};

    fn job(status: JobStatus) -> Job {
        Job {
            jobid: "j<script>".into(),
            status,
            starttime: 1_700_000_000_000,
            endtime: 0,
            updatedtime: 1_700_000_000_500,
            operation_uri: "/arcgis/admin/services/refreshAllServices".into(),
            username: Some("alice & <bob>".into()),
            result: None,
            messages: vec![JobMessage {
                kind: MessageKind::Error,
                description: "<b>boom</b>".into(),
            }],
        }
    }

    #[test]
    fn pages_escape_every_value_and_carry_the_token() {
        let page = PageInfo::new("Job", "arcgis/x".into(), "/arcgis/admin", Some("t&k n"));
        let job = job(JobStatus::Executing);
        let html = render(&JobPage::new(&page, &job));
        assert!(html.contains("j&#60;script&#62;") || html.contains("j&lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>") && !html.contains("<b>boom</b>"));
        assert!(
            html.contains("alice &#38; &#60;bob&#62;") || html.contains("alice &amp; &lt;bob&gt;")
        );
        assert!(html.contains(r#"<meta http-equiv="refresh" content="2">"#));
        assert!(
            html.contains(r#"name="token" value="t&#38;k n""#)
                || html.contains(r#"name="token" value="t&amp;k n""#)
        );
        assert!(html.contains("/arcgis/admin/jobs/j%3Cscript%3E/cancel"));
        assert!(page.jobs_url.ends_with("/arcgis/admin/jobs?f=html&token=t%26k%20n"));
        let done = job_done();
        let html = render(&JobPage::new(&page, &done));
        assert!(!html.contains("http-equiv") && !html.contains("cancel-form"));
    }

    fn job_done() -> Job {
        Job {
            status: JobStatus::Completed,
            endtime: 1_700_000_001_000,
            ..job(JobStatus::Completed)
        }
    }

    #[test]
    fn a_failed_job_shows_its_ready_and_failed_shares_and_batches_with_failures_say_so() {
        use crate::jobs::{BatchResult, JobResult, Progress, RunInfo, ServiceView};
        use servicerefresh_core::crd::{ServiceResult, Totals};
        let service = |name: &str, result| ServiceView {
            kind: Default::default(),
            name: name.into(),
            namespace: "arcgis".into(),
            result: Some(result),
            message: None,
        };
        let failed = Job {
            result: Some(JobResult {
                service_refresh: "arcgis/x".into(),
                run: RunInfo {
                    id: "r".into(),
                    number: 1,
                    reason: "RunRequested".into(),
                    dry_run: false,
                },
                summary: None,
                totals: Totals { services: 7, restarted: 7, ready: 6, failed: 1, skipped: 0 },
                progress: Progress { done: 7, total: 7 },
                batches: vec![BatchResult {
                    index: 1,
                    status: "COMPLETED",
                    starttime: 0,
                    endtime: 0,
                    failed: 1,
                    services: vec![
                        service("a", ServiceResult::Ready),
                        service("b", ServiceResult::Failed),
                    ],
                }],
                failures: Vec::new(),
            }),
            ..job(JobStatus::Failed)
        };
        let segments = segments(&failed);
        let shares: Vec<(&str, &str)> =
            segments.iter().map(|s| (s.kind, s.width.as_str())).collect();
        assert_eq!(shares, vec![("ready", "85.7"), ("failed", "14.3")]);
        let page = PageInfo::new("Job", "arcgis/x".into(), "/arcgis/admin", None);
        let html = render(&JobPage::new(&page, &failed));
        assert!(
            html.contains(
                r#"class="seg failed" data-kind="failed" data-count="1" style="width: 14.3%""#
            ),
            "{html}"
        );
        assert!(html.contains("COMPLETED WITH FAILURES"), "{html}");
        assert!(!html.contains(">COMPLETED<"), "{html}");
    }

    #[test]
    fn times_read_as_utc() {
        assert_eq!(show_time(0), "");
        assert_eq!(show_time(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
    }
}
