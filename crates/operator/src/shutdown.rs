//! The process signals that end the operator: SIGINT and SIGTERM (what `kubectl delete pod`
//! sends), so it can drain its reconciles before it exits.

/// Resolves on SIGINT or SIGTERM, so the operator drains its reconciles on `kubectl delete pod`.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
