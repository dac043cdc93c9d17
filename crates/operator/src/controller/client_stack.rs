//! The tower layers in the operator's Kubernetes clients: counting every request by verb and
//! status code, refusing writes this replica may not send (the leadership fence, checked as
//! the last step before a request leaves the process), and reading the leader Lease's
//! answers to keep the fence up to date.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use k8s_openapi::api::coordination::v1::Lease;
use kube::client::Body;
use thiserror::Error;
use tower::{BoxError, Layer, Service};

use crate::telemetry::Telemetry;
use servicerefresh_core::policy::leadership::{Leadership, LeaseReading, Refused};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Counts requests in `servicerefresh_api_requests_total{verb, code}`.
#[derive(Clone)]
pub struct ApiMetricsLayer {
    pub telemetry: Arc<Telemetry>,
}

impl<S> Layer<S> for ApiMetricsLayer {
    type Service = ApiMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ApiMetrics { inner, telemetry: self.telemetry.clone() }
    }
}

#[derive(Clone)]
pub struct ApiMetrics<S> {
    inner: S,
    telemetry: Arc<Telemetry>,
}

impl<S, B> Service<Request<Body>> for ApiMetrics<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<B>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let verb = kube_request_info::verb(
            request.method().as_str(),
            request.uri().path(),
            request.uri().query(),
        );
        let telemetry = self.telemetry.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            telemetry.api_request(verb, response.as_ref().ok().map(|r| r.status().as_u16()));
            response
        })
    }
}

/// A write refused by the leadership fence before it was sent.
#[derive(Debug, Error)]
#[error("{method} {path} not sent")]
pub struct FenceRefusal {
    method: Method,
    path: String,
    #[source]
    refused: Refused,
}

/// Refuses every write while this replica may not write: the last check before the request
/// leaves for the API server.
#[derive(Clone)]
pub struct WriteFenceLayer {
    pub leadership: Arc<Leadership>,
}

impl<S> Layer<S> for WriteFenceLayer {
    type Service = WriteFence<S>;
    fn layer(&self, inner: S) -> Self::Service {
        WriteFence { inner, leadership: self.leadership.clone() }
    }
}

#[derive(Clone)]
pub struct WriteFence<S> {
    inner: S,
    leadership: Arc<Leadership>,
}

impl<S> Service<Request<Body>> for WriteFence<S>
where
    S: Service<Request<Body>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if is_write(request.method())
            && let Err(refused) = self.leadership.permit(Instant::now())
        {
            let refusal = FenceRefusal {
                method: request.method().clone(),
                path: request.uri().path().to_owned(),
                refused,
            };
            return Box::pin(async move { Err(BoxError::from(refusal)) });
        }
        let response = self.inner.call(request);
        Box::pin(async move { response.await.map_err(Into::into) })
    }
}

/// Reads the leader Lease's answers into the fence: a renewal this replica sent and the
/// server confirmed opens or extends it; any answer naming another holder closes it.
#[derive(Clone)]
pub struct LeaseObserverLayer {
    pub leadership: Arc<Leadership>,
    /// `/namespaces/<ns>/leases/<name>`: the end of the Lease's path.
    pub lease_path: String,
    pub identity: String,
}

impl<S> Layer<S> for LeaseObserverLayer {
    type Service = LeaseObserver<S>;
    fn layer(&self, inner: S) -> Self::Service {
        LeaseObserver { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct LeaseObserver<S> {
    inner: S,
    layer: LeaseObserverLayer,
}

impl<S, B> Service<Request<Body>> for LeaseObserver<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Response<Full<Bytes>>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // Taken before the request leaves: a renewal never counts from later than it was sent.
        let sent_at = Instant::now();
        let method = request.method().clone();
        let about_the_lease = request.uri().path().ends_with(&self.layer.lease_path);
        let layer = self.layer.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let (parts, body) = response.await.map_err(Into::into)?.into_parts();
            let bytes = body.collect().await.map_err(Into::into)?.to_bytes();
            if about_the_lease && parts.status.is_success() {
                let lease: Option<Lease> = serde_json::from_slice(&bytes).ok();
                if let Some(reading) = lease.and_then(|lease| {
                    reading(
                        &lease,
                        &layer.identity,
                        &method,
                        sent_at,
                        Instant::now(),
                        SystemTime::now(),
                    )
                }) {
                    layer.leadership.observe(reading, Instant::now());
                }
            }
            Ok(Response::from_parts(parts, Full::new(bytes)))
        })
    }
}

/// What a successful answer about the Lease says for the fence. Only a write this replica
/// sent can renew: a read of a Lease naming it proves no renewal of its own in the present.
pub fn reading(
    lease: &Lease,
    identity: &str,
    method: &Method,
    sent_at: Instant,
    now: Instant,
    wall_now: SystemTime,
) -> Option<LeaseReading> {
    let spec = lease.spec.as_ref();
    let holder = spec.and_then(|spec| spec.holder_identity.as_deref()).filter(|h| !h.is_empty());
    if holder != Some(identity) {
        return Some(LeaseReading::HeldByOther);
    }
    if !is_write(method) {
        return None;
    }
    // The renewTime the request wrote, moved onto the monotonic clock; the earlier of it and
    // the send time is when the renewal counts from.
    let renewed_at = spec
        .and_then(|spec| spec.renew_time.as_ref())
        .and_then(|renew| {
            let renewed: SystemTime = renew.0.into();
            let age = wall_now.duration_since(renewed).unwrap_or(Duration::ZERO);
            now.checked_sub(age)
        })
        .map_or(sent_at, |renewed| renewed.min(sent_at));
    Some(LeaseReading::Renewed { renewed_at })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    use super::*;

    fn lease(holder: Option<&str>, renewed: Option<SystemTime>) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                renew_time: renewed.map(|time| MicroTime(time.try_into().expect("in range"))),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn only_a_confirmed_renewal_of_our_own_extends_the_fence() {
        let wall = SystemTime::now();
        let now = Instant::now();
        let sent = now - Duration::from_millis(30);
        let ours = lease(Some("me"), Some(wall - Duration::from_millis(40)));
        match reading(&ours, "me", &Method::PATCH, sent, now, wall) {
            Some(LeaseReading::Renewed { renewed_at }) => {
                // The renewTime is older than the send time: it counts from the renewTime.
                let expected = now - Duration::from_millis(40);
                let off = renewed_at.max(expected) - renewed_at.min(expected);
                assert!(off < Duration::from_millis(5), "{off:?}");
            }
            other => panic!("expected a renewal, got {other:?}"),
        }
        assert_eq!(
            reading(&ours, "me", &Method::GET, sent, now, wall),
            None,
            "a read renews nothing"
        );
        let future = lease(Some("me"), Some(wall + Duration::from_secs(60)));
        assert_eq!(
            reading(&future, "me", &Method::PATCH, sent, now, wall),
            Some(LeaseReading::Renewed { renewed_at: sent }),
            "never later than the send time"
        );
        for other in [lease(Some("them"), Some(wall)), lease(None, None), lease(Some(""), None)] {
            assert_eq!(
                reading(&other, "me", &Method::GET, sent, now, wall),
                Some(LeaseReading::HeldByOther)
            );
            assert_eq!(
                reading(&other, "me", &Method::PATCH, sent, now, wall),
                Some(LeaseReading::HeldByOther)
            );
        }
    }

    #[tokio::test]
    async fn the_fence_layer_refuses_writes_but_not_reads_when_not_leading() {
        use tower::ServiceExt as _;
        let leadership = Arc::new(Leadership::elected(Duration::from_secs(10)));
        let inner = tower::service_fn(|_request: Request<Body>| async {
            Ok::<_, BoxError>(Response::new(Body::empty()))
        });
        let service = WriteFenceLayer { leadership: leadership.clone() }.layer(inner);
        let read =
            Request::get("/api/v1/namespaces/a/configmaps").body(Body::empty()).expect("request");
        assert!(service.clone().oneshot(read).await.is_ok());
        let write = Request::patch("/apis/apps/v1/namespaces/a/deployments/d")
            .body(Body::empty())
            .expect("request");
        let refused = service.clone().oneshot(write).await.expect_err("refused");
        assert!(
            refused.to_string().contains("PATCH /apis/apps/v1/namespaces/a/deployments/d not sent"),
            "{refused}"
        );

        leadership.observe(LeaseReading::Renewed { renewed_at: Instant::now() }, Instant::now());
        let write = Request::patch("/apis/apps/v1/namespaces/a/deployments/d")
            .body(Body::empty())
            .expect("request");
        assert!(service.oneshot(write).await.is_ok(), "sent while leading");
    }
}
