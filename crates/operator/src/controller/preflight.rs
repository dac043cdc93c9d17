//! The checks that tell apart "cannot reach the server", "this is not a Kubernetes API
//! server", "the credentials are refused" and "the CRD is not installed" before the operator
//! starts watching, retried with backoff for the whole start-up timeout because in a pod the
//! API server is sometimes briefly unreachable at start; one log line per failed attempt.

use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use kube::api::{Api, ListParams};
use tracing::warn;

use super::answers::status_text;
use super::startup::{Clients, StartupError, Unanswered};
use servicerefresh_core::crd::ServiceRefresh;

/// The first retry of start-up comes this long after the first failure; each next one twice
/// as long after the one before, up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// The last attempt, made when the time is up, still gets this long for an answer.
const LAST_ATTEMPT: Duration = Duration::from_secs(1);

/// Checks that the server is a Kubernetes API server with the CRD installed, listing
/// ServiceRefreshes in `namespace` (or all namespaces), which is also the permission the
/// operator needs most. Unreachable servers and 5xx answers are retried with backoff until
/// `give_up_after` has passed, the last retry when it has (each attempt bounded by the time
/// left, or [`LAST_ATTEMPT`] for the last); answers that will not change are reported at once.
pub async fn preflight(
    clients: &Clients,
    namespace: Option<&str>,
    give_up_after: Duration,
) -> Result<(), StartupError> {
    let started = Instant::now();
    let deadline = started + give_up_after;
    let attempt = || async move {
        let left = deadline.saturating_duration_since(Instant::now()).max(LAST_ATTEMPT);
        match tokio::time::timeout(left, check_once(clients, namespace)).await {
            Ok(checked) => checked,
            Err(_) => Err(Check::Retry(Unanswered::NoAnswer(left))),
        }
    };
    let backoff = ExponentialBuilder::new()
        .with_min_delay(FIRST_RETRY_DELAY)
        .with_max_delay(MAX_RETRY_DELAY)
        .with_factor(2.0)
        .without_max_times();
    attempt
        .retry(backoff)
        .when(|check| matches!(check, Check::Retry(_)))
        // The last retry waits only until the time is up, and none comes after it.
        .adjust(|_, delay| {
            let left = deadline.saturating_duration_since(Instant::now());
            delay.filter(|_| !left.is_zero()).map(|delay| delay.min(left))
        })
        .notify(|check, delay| {
            if let Check::Retry(unanswered) = check {
                log_retry(&clients.server, unanswered, delay, deadline);
            }
        })
        .await
        .map_err(|check| match check {
            Check::Final(error) => error,
            Check::Retry(source) => StartupError::Unreachable {
                server: clients.server.clone(),
                waited: started.elapsed(),
                source,
            },
        })
}

/// One line per failed attempt, saying what failed and what comes next.
fn log_retry(server: &str, unanswered: &Unanswered, delay: Duration, deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
    if delay < left {
        warn!(
            server,
            cause = %unanswered,
            "API server {server} not reachable yet ({unanswered}); retrying in {}, giving up in {}",
            rounded(delay),
            rounded(left),
        );
    } else {
        warn!(
            server,
            cause = %unanswered,
            "API server {server} not reachable yet ({unanswered}); last try in {}",
            rounded(delay),
        );
    }
}

/// A delay for a person to read: tenths of a second (`200ms`, `1.6s`, `5s`).
fn rounded(delay: Duration) -> String {
    let tenths = (delay.as_millis() + 50) / 100;
    if tenths < 10 {
        format!("{}ms", tenths * 100)
    } else if tenths.is_multiple_of(10) {
        format!("{}s", tenths / 10)
    } else {
        format!("{}.{}s", tenths / 10, tenths % 10)
    }
}

enum Check {
    Final(StartupError),
    Retry(Unanswered),
}

fn retry_worthy(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        _ => true,
    }
}

async fn check_once(clients: &Clients, namespace: Option<&str>) -> Result<(), Check> {
    check_version(clients).await?;
    check_list(clients, namespace).await
}

/// GET /version: whether a Kubernetes API server answers, and accepts the credentials.
async fn check_version(clients: &Clients) -> Result<(), Check> {
    let server = clients.server.clone();
    let final_error = match clients.requests.apiserver_version().await {
        Ok(_) => return Ok(()),
        Err(kube::Error::Api(status)) if status.code == 401 => {
            StartupError::Unauthorized { server, answer: status_text(&status) }
        }
        Err(kube::Error::Api(status)) if status.code == 403 => {
            StartupError::VersionRefused { server, answer: status_text(&status) }
        }
        Err(kube::Error::Api(status))
            if (400..500).contains(&status.code) && status.code != 429 =>
        {
            StartupError::NotKubernetes { server, answer: status.code.to_string() }
        }
        Err(kube::Error::SerdeError(_)) => StartupError::NotKubernetes {
            server,
            answer: "with something other than a Kubernetes version".to_owned(),
        },
        Err(error) if retry_worthy(&error) => return Err(Check::Retry(error.into())),
        Err(error) => StartupError::Client { server, source: error },
    };
    Err(Check::Final(final_error))
}

/// Lists one ServiceRefresh: whether the CRD is installed and the operator may list them.
async fn check_list(clients: &Clients, namespace: Option<&str>) -> Result<(), Check> {
    let server = clients.server.clone();
    let api: Api<ServiceRefresh> = match namespace {
        Some(namespace) => Api::namespaced(clients.requests.clone(), namespace),
        None => Api::all(clients.requests.clone()),
    };
    let final_error = match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => return Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => StartupError::CrdMissing { server },
        Err(kube::Error::Api(status)) if status.code == 401 => {
            StartupError::Unauthorized { server, answer: status_text(&status) }
        }
        Err(error) if retry_worthy(&error) => return Err(Check::Retry(error.into())),
        Err(kube::Error::Api(status)) => StartupError::Refused {
            server,
            scope: namespace.map(|ns| format!(" in namespace {ns}")).unwrap_or_default(),
            message: status.message.clone(),
        },
        Err(error) => StartupError::Client { server, source: error },
    };
    Err(Check::Final(final_error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_read_in_tenths_of_a_second() {
        let cases = [
            (200, "200ms"),
            (1_000, "1s"),
            (1_600, "1.6s"),
            (4_960, "5s"),
            (5_049, "5s"),
            (30, "0ms"),
            (60_000, "60s"),
        ];
        for (millis, text) in cases {
            assert_eq!(rounded(Duration::from_millis(millis)), text, "{millis} ms");
        }
    }

    #[test]
    fn a_connection_failure_names_its_cause_and_keeps_the_clients_error() {
        let error = kube::Error::Service(Box::new(std::io::Error::other(
            "Connection refused (os error 111)",
        )));
        let unanswered = Unanswered::from(error);
        assert_eq!(unanswered.to_string(), "connection refused");
        assert!(std::error::Error::source(&unanswered).is_some());
        let status = kube::core::Status::failure("etcd is down", "ServiceUnavailable")
            .with_code(503)
            .boxed();
        let unanswered = Unanswered::from(kube::Error::Api(status));
        assert_eq!(unanswered.to_string(), "503 Service Unavailable: etcd is down");
    }
}
