//! How the API answers: the `f` parameter (`json` compact, `pjson` pretty, `html`; ArcGIS's
//! default is `html`), ArcGIS's error shape `{"error": {"code", "message", "details"}}`, and
//! the headers every answer carries (no caching, no sniffing, no referrer to other sites:
//! pages carry the token in their links, as ArcGIS pages do).
//!
//! ArcGIS answers errors with HTTP 200 and the real code in the body; its clients look for
//! `error` in the JSON, and some break on other statuses. Observed and documented in: the
//! ArcGIS REST error envelope observed on a live server ("HTTP 200 for essentially every
//! failure", `{"error":{"code":499,"message":"Token Required","details":[]}}`), Koop's
//! "wrap FeatureServer errors according to ArcGIS spec" (koopjs/koop#569: "gives them a 200
//! status ... that's what ArcGIS clients expect"), Esri/cedar#237 ("inspect all HTTP 200
//! responses ... to see if the JSON payload contains an error"), and CartoDB#6829 (`curl
//! <service>?f=json` answering the 499 body). The messages are ArcGIS's: "Token Required"
//! (499), "Invalid Token" (498, as the ArcGIS API for Python reports it), and for 403 the
//! portal's "You do not have permissions to access this resource or perform this operation."

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// HTTP status of every ArcGIS error answer (the code is in the body, as ArcGIS does).
pub const ERROR_HTTP_STATUS: StatusCode = StatusCode::OK;

/// Response format, the `f` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Compact JSON.
    Json,
    /// Pretty-printed JSON.
    Pjson,
    /// A page for people.
    Html,
}

impl Format {
    /// Parses `f`; absent or empty means `html`, ArcGIS's default.
    pub fn parse(value: Option<&str>) -> Result<Self, ArcGisError> {
        match value.map(str::trim).unwrap_or_default().to_ascii_lowercase().as_str() {
            "" | "html" => Ok(Self::Html),
            "json" => Ok(Self::Json),
            "pjson" => Ok(Self::Pjson),
            other => Err(ArcGisError::bad_request(format!(
                "Invalid value {other:?} for the parameter f: use html, json or pjson."
            ))),
        }
    }
}

/// An ArcGIS error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArcGisError {
    pub code: u16,
    pub message: String,
    pub details: Vec<String>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a ArcGisError,
}

impl ArcGisError {
    fn new(code: u16, message: &str, details: Vec<String>) -> Self {
        Self { code, message: message.to_owned(), details }
    }

    /// No token in the request.
    pub fn token_required() -> Self {
        Self::new(499, "Token Required", Vec::new())
    }

    /// A token that is not valid (TokenReview did not authenticate it).
    pub fn invalid_token() -> Self {
        Self::new(498, "Invalid Token", Vec::new())
    }

    /// A valid token without the right (SubjectAccessReview denied it).
    pub fn forbidden() -> Self {
        Self::new(
            403,
            "You do not have permissions to access this resource or perform this operation.",
            Vec::new(),
        )
    }

    /// A state-changing request a browser sent from another site's page.
    pub fn foreign_origin() -> Self {
        Self::new(
            403,
            "You do not have permissions to access this resource or perform this operation.",
            vec!["The request came from a page of another origin.".to_owned()],
        )
    }

    /// A client address that presented too many invalid tokens: its unknown tokens are not
    /// checked for `seconds`.
    pub fn too_many_failures(seconds: u64) -> Self {
        Self::new(
            429,
            "Too many invalid tokens. Try again later.",
            vec![format!(
                "Too many invalid tokens came from this address; try again in {seconds} s."
            )],
        )
    }

    /// A job id nothing knows (any more).
    pub fn job_not_found(id: &str) -> Self {
        Self::new(
            404,
            &format!("Job '{id}' does not exist."),
            vec![
                "Jobs are kept as long as the ServiceRefresh's run history holds their run (its last 10 runs)."
                    .to_owned(),
            ],
        )
    }

    /// A path under the context root that is no resource or operation.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            404,
            &format!("Could not find resource or operation '{path}' on the system."),
            Vec::new(),
        )
    }

    /// An operation asked for with GET.
    pub fn post_only(operation: &str) -> Self {
        Self::new(
            405,
            "Method not supported.",
            vec![format!("The {operation} operation is only supported with POST.")],
        )
    }

    /// Unusable input.
    pub fn bad_request(detail: String) -> Self {
        Self::new(400, "Unable to complete operation.", vec![detail])
    }

    /// The operator or the API server cannot answer right now.
    pub fn unavailable(detail: String) -> Self {
        Self::new(503, "The service is unavailable at this time. Try again later.", vec![detail])
    }

    /// Anything else that went wrong on our side; details are in the operator's log.
    pub fn internal(detail: String) -> Self {
        Self::new(500, "Unable to complete operation.", vec![detail])
    }

    /// The error as JSON in `format` (HTML callers get pages from the routes instead).
    pub fn to_json_response(&self, pretty: bool) -> Response {
        json_response(&ErrorBody { error: self }, pretty)
    }
}

/// Answers `value` as compact or pretty JSON, with HTTP 200.
pub fn json_response<T: Serialize>(value: &T, pretty: bool) -> Response {
    let body =
        if pretty { serde_json::to_string_pretty(value) } else { serde_json::to_string(value) };
    match body {
        Ok(body) => with_headers(
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body)
                .into_response(),
        ),
        Err(error) => with_headers(
            (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot serialize the answer: {error}"))
                .into_response(),
        ),
    }
}

/// Answers an HTML page with HTTP 200.
pub fn html_response(body: String) -> Response {
    with_headers(
        (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body)
            .into_response(),
    )
}

/// A 303 See Other to `location` (after a form POST, so reloading does not post again).
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            with_headers((StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response())
        }
        Err(_) => with_headers(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}

/// The headers of every answer.
pub fn with_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // same-origin, not no-referrer: with no-referrer, browsers send `Origin: null` on our own
    // form posts, which the origin check must refuse. Other sites still get no Referer.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn f_defaults_to_html_and_rejects_unknown_formats() {
        assert_eq!(Format::parse(None).unwrap(), Format::Html);
        assert_eq!(Format::parse(Some("")).unwrap(), Format::Html);
        assert_eq!(Format::parse(Some("JSON")).unwrap(), Format::Json);
        assert_eq!(Format::parse(Some("pjson")).unwrap(), Format::Pjson);
        let error = Format::parse(Some("kmz")).unwrap_err();
        assert_eq!(error.code, 400);
        assert!(error.details[0].contains("kmz"));
    }

    #[tokio::test]
    async fn errors_have_arcgis_shape_with_http_200() {
        let response = ArcGisError::token_required().to_json_response(false);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json; charset=utf-8");
        assert_eq!(
            body(response).await,
            r#"{"error":{"code":499,"message":"Token Required","details":[]}}"#
        );
        let pretty = body(ArcGisError::invalid_token().to_json_response(true)).await;
        assert_eq!(
            pretty,
            "{\n  \"error\": {\n    \"code\": 498,\n    \"message\": \"Invalid Token\",\n    \"details\": []\n  }\n}"
        );
        let forbidden: serde_json::Value =
            serde_json::from_str(&body(ArcGisError::forbidden().to_json_response(false)).await)
                .unwrap();
        assert_eq!(forbidden["error"]["code"], 403);
        assert_eq!(
            forbidden["error"]["message"],
            "You do not have permissions to access this resource or perform this operation."
        );
    }
}
