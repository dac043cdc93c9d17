//! The prologue every handler shares, as one extractor: [`Admitted`] reads the parameters
//! (the form body with a deadline), the format, refuses a state-changing request from a
//! foreign browser origin, stops a client address that keeps presenting invalid tokens, and
//! authenticates and authorizes the caller for the right its type names ([`Read`] or
//! [`Write`]). A handler that takes it runs only for an admitted caller; every refusal is the
//! answer, in the format asked for, before anything is looked up.

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use tracing::{debug, info, warn};

use super::AdminApi;
use crate::auth::{self, Access, Caller, Denial};
use crate::config::ExternalUrl;
use crate::params::Params;
use crate::respond::{ArcGisError, Format};
use servicerefresh_operator::telemetry;

/// The right a handler needs, as a type.
pub trait Right: Send + Sync + 'static {
    const ACCESS: Access;
}

/// `get` on the target: reading jobs and pages.
pub struct Read;
/// `patch` on the target: submitting and cancelling jobs.
pub struct Write;

impl Right for Read {
    const ACCESS: Access = Access::Read;
}

impl Right for Write {
    const ACCESS: Access = Access::Write;
}

/// A request whose caller holds right `R`.
pub struct Admitted<R> {
    pub format: Format,
    pub caller: Caller,
    pub params: Params,
    right: PhantomData<R>,
}

impl<R: Right> FromRequest<Arc<AdminApi>> for Admitted<R> {
    type Rejection = Response;

    async fn from_request(request: Request, api: &Arc<AdminApi>) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let params = Params::read(&parts, body, api.body_timeout)
            .await
            .map_err(|error| error.to_json_response(false))?;
        let format =
            Format::parse(params.get("f")).map_err(|error| error.to_json_response(false))?;
        let refuse = |error: ArcGisError| api.error(format, &error, &params);
        if R::ACCESS == Access::Write
            && let Some(origin) = foreign_origin(&parts.headers, api.external_url.as_ref())
        {
            info!(%origin, "admin API: state-changing request from a foreign origin refused");
            return Err(refuse(ArcGisError::foreign_origin()));
        }
        let client = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        let caller = admit(api, &parts.headers, &params, R::ACCESS, client).await.map_err(
            |(error, retry_after)| {
                let mut response = refuse(error);
                if let Some(seconds) = retry_after {
                    response.headers_mut().insert(header::RETRY_AFTER, seconds);
                }
                response
            },
        )?;
        Ok(Self { format, caller, params, right: PhantomData })
    }
}

/// Authenticates and authorizes, or says why not in ArcGIS's terms (with the seconds to
/// wait when the client address is stopped).
async fn admit(
    api: &AdminApi,
    headers: &HeaderMap,
    params: &Params,
    access: Access,
    client: Option<IpAddr>,
) -> Result<Caller, (ArcGisError, Option<HeaderValue>)> {
    let token = auth::token_from(params.get("token"), headers);
    if let (Some(client), Some(token)) = (client, token)
        && let Some(wait) = api.failures.retry_after(client)
        && !api.authority.known(token).await
    {
        debug!(%client, "admin API: token not reviewed: too many invalid tokens from this address");
        let seconds = wait.as_secs().max(1);
        return Err((ArcGisError::too_many_failures(seconds), Some(HeaderValue::from(seconds))));
    }
    match auth::check(api.authority.as_ref(), token, access, &api.context.target).await {
        Ok(caller) => Ok(caller),
        Err(Denial::TokenRequired) => Err((ArcGisError::token_required(), None)),
        Err(Denial::InvalidToken) => {
            if let Some(client) = client {
                api.failures.failed(client);
            }
            Err((ArcGisError::invalid_token(), None))
        }
        Err(Denial::Forbidden { username, verb, target }) => {
            info!(%username, verb, %target, "admin API: request refused by SubjectAccessReview");
            Err((ArcGisError::forbidden(), None))
        }
        Err(Denial::Unavailable(error)) => {
            warn!(error = %error, cause = %telemetry::error_causes(&error), "admin API: cannot check a token");
            Err((ArcGisError::unavailable("The token could not be checked.".to_owned()), None))
        }
    }
}

/// The origin of a browser request that is not ours, if it is one: `Origin`, else the origin
/// of `Referer`; a request with neither (a script) has none. Ours is the external URL's
/// origin when one is configured, else the host (and port, when the Host header names one)
/// the request was sent to. An opaque origin (`null`) is foreign.
pub fn foreign_origin(headers: &HeaderMap, external: Option<&ExternalUrl>) -> Option<String> {
    let text = |name| headers.get(name).map(|value| value.to_str().unwrap_or("null").trim());
    let claimed = match text(header::ORIGIN) {
        Some(origin) => origin.to_owned(),
        None => {
            let referer = text(header::REFERER)?;
            origin_of(referer).unwrap_or_else(|| "null".to_owned())
        }
    };
    let ours = match external {
        Some(external) => same_origin(&claimed, external.origin()),
        None => text(header::HOST).is_some_and(|host| same_host(&claimed, host)),
    };
    (!ours).then_some(claimed)
}

/// `scheme://authority` of an absolute URL, lower-case.
fn origin_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?.as_str()).to_ascii_lowercase())
}

/// Scheme, host and port of an origin, the port defaulted from the scheme.
fn parts_of(origin: &str) -> Option<(String, String, u16)> {
    let uri: http::Uri = origin.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    if authority.as_str().contains('@') || uri.path_and_query().is_some_and(|p| p != "/") {
        return None;
    }
    let port = authority.port_u16().or(match scheme.as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    })?;
    Some((scheme, authority.host().to_ascii_lowercase(), port))
}

fn same_origin(claimed: &str, ours: &str) -> bool {
    parts_of(claimed).is_some_and(|claimed| parts_of(ours) == Some(claimed))
}

/// Whether `claimed` names the host of the Host header (and its port, if the header has one).
fn same_host(claimed: &str, host: &str) -> bool {
    let Some((_, claimed_host, claimed_port)) = parts_of(claimed) else {
        return false;
    };
    let Ok(authority) = host.parse::<http::uri::Authority>() else {
        return false;
    };
    authority.host().eq_ignore_ascii_case(&claimed_host)
        && authority.port_u16().is_none_or(|port| port == claimed_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn origins_are_compared_with_the_external_url_or_the_host() {
        let host = ("host", "gis.example.com:8443");
        let ours = |pairs: &[(&'static str, &'static str)]| foreign_origin(&headers(pairs), None);
        assert_eq!(ours(&[host]), None, "a script sends neither Origin nor Referer");
        assert_eq!(ours(&[host, ("origin", "https://GIS.example.com:8443")]), None);
        assert_eq!(ours(&[host, ("referer", "https://gis.example.com:8443/arcgis/admin/x")]), None);
        assert_eq!(
            ours(&[host, ("origin", "https://evil.example")]).as_deref(),
            Some("https://evil.example")
        );
        assert!(ours(&[host, ("origin", "https://gis.example.com")]).is_some(), "other port");
        assert!(ours(&[host, ("origin", "null")]).is_some(), "an opaque origin");
        assert!(ours(&[host, ("referer", "https://evil.example/page")]).is_some());
        assert!(ours(&[("origin", "https://gis.example.com")]).is_some(), "no Host: not ours");
        // Without a port in Host, the host name decides (a proxy may have dropped the port).
        assert_eq!(
            ours(&[("host", "gis.example.com"), ("origin", "https://gis.example.com")]),
            None
        );

        let external = ExternalUrl::parse("https://gis.example.com/arcgis/admin").unwrap();
        let with = |pairs: &[(&'static str, &'static str)]| {
            foreign_origin(&headers(pairs), Some(&external))
        };
        assert_eq!(
            with(&[("host", "internal:8443"), ("origin", "https://gis.example.com:443")]),
            None
        );
        assert!(with(&[("host", "evil.example"), ("origin", "https://evil.example")]).is_some());
        assert!(with(&[("origin", "http://gis.example.com")]).is_some(), "another scheme");
    }
}
