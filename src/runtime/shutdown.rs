//! How `servicerefresh run` ends on a signal: the first SIGTERM or SIGINT starts a graceful
//! stop, with `--shutdown-timeout` as its deadline (exit 1 when it passes); a second signal
//! exits at once (exit 130).

use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use servicerefresh_operator::shutdown::shutdown_signal;

/// Resolves when the operator and the admin API are to stop: at the first signal.
pub type Stopped = Shared<BoxFuture<'static, ()>>;

/// Watches for signals from now on; the returned future resolves at the first.
pub fn on_signal(deadline: Duration) -> Stopped {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!(deadline = ?deadline, "shutting down: finishing reconciles in progress");
        let _ = stop.send(());
        exit_at_deadline_or_second_signal(deadline).await;
    });
    stopped.map(|_| ()).boxed().shared()
}

async fn exit_at_deadline_or_second_signal(deadline: Duration) {
    tokio::select! {
        _ = shutdown_signal() => {
            tracing::warn!("second signal: exiting at once");
            std::process::exit(130);
        }
        _ = tokio::time::sleep(deadline) => {
            tracing::warn!(deadline = ?deadline, "shutdown deadline passed: exiting with reconciles unfinished");
            std::process::exit(1);
        }
    }
}
