//! How the operator words what the API server answered, or why nothing came back, in its log
//! lines and errors: the code, its reason and the server's message on one line ("401
//! Unauthorized: ..."), or the cause of a failed connection in a few words ("connection
//! refused"), never the debug dump of a `Status` that kube's errors display; and which watch
//! errors are refusals worth a warning.

use std::error::Error;

use kube::core::Status;
use kube::runtime::watcher;

use super::listing::InitialList;
use tracing::{debug, warn};

/// `403 Forbidden: leases.coordination.k8s.io is forbidden: ...`: the code, its standard
/// reason phrase, and the server's message when it says more than the phrase.
pub fn status_text(status: &Status) -> String {
    let phrase = http::StatusCode::from_u16(status.code)
        .ok()
        .and_then(|code| code.canonical_reason())
        .unwrap_or(status.reason.as_str());
    let head = format!("{} {phrase}", status.code).trim_end().to_owned();
    let message = status.message.trim();
    let says_more = !message.is_empty()
        && !message.eq_ignore_ascii_case(phrase)
        && !message.eq_ignore_ascii_case(&status.reason);
    if says_more { format!("{head}: {message}") } else { head }
}

/// A failed request in one line: the server's answer when there was one (found anywhere in
/// the error's chain), else the innermost cause, such as `connection refused`.
pub fn failure_text(error: &(dyn Error + 'static)) -> String {
    let mut innermost: &(dyn Error + 'static) = error;
    let mut current = Some(error);
    while let Some(cause) = current {
        if let Some(kube::Error::Api(status)) = cause.downcast_ref::<kube::Error>() {
            return status_text(status);
        }
        innermost = cause;
        current = cause.source();
    }
    plain_cause(&innermost.to_string())
}

/// `Connection refused (os error 111)` as `connection refused`.
fn plain_cause(text: &str) -> String {
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        // Keep acronyms ("TLS ...") as written.
        Some(first) if chars.clone().next().is_some_and(char::is_lowercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text.to_owned(),
    }
}

/// Logs every watch or list the API server refuses (401, 403: a missing permission or a
/// revoked token; or a streaming list it does not serve), naming the watch and quoting the
/// server's message, which says which verb on which resource was refused. The watcher retries
/// with backoff, so a missing right shows up as one such line every few seconds, while the
/// cache it feeds stays stale or unsynced. Other watch errors (dropped connections, expired
/// versions) are routine and logged at debug.
pub fn log_watch_refusals<K>(
    watch: &'static str,
) -> impl Fn(&Result<watcher::Event<K>, watcher::Error>) + Send {
    move |event| {
        let Err(error) = event else {
            return;
        };
        match refusal(error) {
            Some(status) if refuses_streaming_lists(status) => warn!(
                watch,
                code = status.code,
                error = %status.message,
                "the API server does not serve streaming lists (its WatchList feature is off); \
                 restart the operator with --initial-list={}",
                InitialList::Paged.flag_value()
            ),
            Some(status) => warn!(
                watch,
                code = status.code,
                error = %status.message,
                "watch refused by the API server; retrying with backoff"
            ),
            None => debug!(watch, %error, "watch failed; retrying with backoff"),
        }
    }
}

/// The API server's answer when a watch error is an authentication or authorization refusal,
/// or a refused streaming list.
fn refusal(error: &watcher::Error) -> Option<&Status> {
    let status = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status))
        | watcher::Error::WatchError(status) => status.as_ref(),
        _ => return None,
    };
    (matches!(status.code, 401 | 403) || refuses_streaming_lists(status)).then_some(status)
}

/// A server without `WatchList` refuses `sendInitialEvents` as an invalid parameter (400 or
/// 422, "sendInitialEvents is forbidden for watch unless the WatchList feature gate is
/// enabled"): that never passes with a retry.
fn refuses_streaming_lists(status: &Status) -> bool {
    matches!(status.code, 400 | 422) && status.message.contains("sendInitialEvents")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reads_as_code_reason_and_message() {
        let unauthorized = Status::failure("Unauthorized", "Unauthorized").with_code(401);
        assert_eq!(status_text(&unauthorized), "401 Unauthorized");
        let forbidden = Status::failure(
            "leases.coordination.k8s.io \"x\" is forbidden: User \"u\" cannot get",
            "Forbidden",
        )
        .with_code(403);
        assert_eq!(
            status_text(&forbidden),
            "403 Forbidden: leases.coordination.k8s.io \"x\" is forbidden: User \"u\" cannot get"
        );
        let unavailable = Status::failure("etcd is down", "ServiceUnavailable").with_code(503);
        assert_eq!(status_text(&unavailable), "503 Service Unavailable: etcd is down");
    }

    #[test]
    fn a_failure_is_the_answer_in_its_chain_or_its_innermost_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("leader election failed")]
        struct Outer(#[source] kube::Error);

        let status = Status::failure("Unauthorized", "Unauthorized").with_code(401).boxed();
        let wrapped = Outer(kube::Error::Api(status));
        assert_eq!(failure_text(&wrapped), "401 Unauthorized");
        assert!(!failure_text(&wrapped).contains("Status {"));

        let refused = std::io::Error::other("Connection refused (os error 111)");
        assert_eq!(failure_text(&refused), "connection refused");
        let tls = std::io::Error::other("TLS handshake failed");
        assert_eq!(failure_text(&tls), "TLS handshake failed");
    }

    use kube::runtime::watcher::Error;

    fn status(code: u16) -> Box<Status> {
        Status::failure("deployments.apps is forbidden: User \"u\" cannot watch", "Forbidden")
            .with_code(code)
            .boxed()
    }

    #[test]
    fn refused_lists_and_watches_are_told_apart_from_routine_watch_errors() {
        let refused = [
            Error::InitialListFailed(kube::Error::Api(status(403))),
            Error::WatchStartFailed(kube::Error::Api(status(403))),
            Error::WatchFailed(kube::Error::Api(status(401))),
            Error::WatchError(status(403)),
        ];
        for error in &refused {
            let found = refusal(error).unwrap_or_else(|| panic!("{error} is a refusal"));
            assert!(found.message.starts_with("deployments.apps is forbidden"));
        }
        let routine = [
            Error::WatchError(status(410)),
            Error::InitialListFailed(kube::Error::Api(status(500))),
            Error::NoResourceVersion,
        ];
        for error in &routine {
            assert!(refusal(error).is_none(), "{error} is routine");
        }
    }

    #[test]
    fn a_refused_streaming_list_is_a_refusal_that_names_the_fix() {
        let gate_off = Status::failure(
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the \
             WatchList feature gate is enabled",
            "Invalid",
        )
        .with_code(422)
        .boxed();
        let error = Error::WatchStartFailed(kube::Error::Api(gate_off));
        let found = refusal(&error).expect("a refused streaming list is a refusal");
        assert!(refuses_streaming_lists(found));
        let other_invalid = Status::failure("fieldSelector: invalid", "BadRequest").with_code(400);
        assert!(!refuses_streaming_lists(&other_invalid));
        assert!(refusal(&Error::WatchError(other_invalid.boxed())).is_none());
        assert!(!refuses_streaming_lists(&status(403)));
    }
}
