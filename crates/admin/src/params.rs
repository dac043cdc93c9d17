//! ArcGIS request parameters (`f`, `token`): taken from the query string and, for a POST
//! with a form body (`application/x-www-form-urlencoded`, what ArcGIS clients and HTML forms
//! send), from the body as well; a value in the body wins over the same name in the query.

use axum::extract::{FromRequest, Request};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};

use super::respond::ArcGisError;

/// Largest form body read.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The parameters of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    /// Body pairs first, then query pairs.
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parameters from a query string and a form body.
    pub fn parse(query: Option<&str>, form: Option<&[u8]>) -> Self {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(form) = form {
            pairs.extend(form_urlencoded::parse(form).into_owned());
        }
        if let Some(query) = query {
            pairs.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
        }
        Self { pairs }
    }

    /// The first non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, value)| key == name && !value.trim().is_empty())
            .map(|(_, value)| value.as_str())
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let query = request.uri().query().map(str::to_owned);
        let is_form = request.method() == Method::POST
            && request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| {
                    value.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded")
                });
        if !is_form {
            return Ok(Self::parse(query.as_deref(), None));
        }
        let _ = state;
        let bytes =
            axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES).await.map_err(|_| {
                ArcGisError::bad_request(format!(
                    "The form body is unreadable or larger than {MAX_FORM_BYTES} bytes."
                ))
                .to_json_response(false)
                .into_response()
            })?;
        Ok(Self::parse(query.as_deref(), Some(&bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_wins_over_query_and_empty_values_are_absent() {
        let params = Params::parse(Some("f=json&token=from-query"), Some(b"token=from%20body&f="));
        assert_eq!(params.get("token"), Some("from body"));
        assert_eq!(params.get("f"), Some("json"));
        assert_eq!(params.get("missing"), None);
        assert_eq!(Params::parse(Some("f="), None).get("f"), None);
    }
}
