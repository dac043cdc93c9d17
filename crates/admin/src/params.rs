//! ArcGIS request parameters (`f`, `token`): taken from the query string and, for a POST
//! with a form body (`application/x-www-form-urlencoded`, what ArcGIS clients and HTML forms
//! send), from the body as well; a value in the body wins over the same name in the query.
//! The body is read with a size limit and a deadline, so a client trickling it cannot hold a
//! connection and a buffer.

use std::time::Duration;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{Method, header};

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

impl Params {
    /// The parameters of a request: its query, and its form body read within `deadline`.
    pub async fn read(parts: &Parts, body: Body, deadline: Duration) -> Result<Self, ArcGisError> {
        let query = parts.uri.query();
        let is_form = parts.method == Method::POST
            && parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| {
                    value.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded")
                });
        if !is_form {
            return Ok(Self::parse(query, None));
        }
        let unreadable = || {
            ArcGisError::bad_request(format!(
                "The form body is unreadable, larger than {MAX_FORM_BYTES} bytes, or took longer \
                 than {deadline:?} to arrive."
            ))
        };
        let bytes = tokio::time::timeout(deadline, axum::body::to_bytes(body, MAX_FORM_BYTES))
            .await
            .map_err(|_| unreadable())?
            .map_err(|_| unreadable())?;
        Ok(Self::parse(query, Some(&bytes)))
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
