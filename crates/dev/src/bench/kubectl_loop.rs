//! The baseline the operator is measured against: the shell loop people write without it,
//! batch by batch `kubectl rollout restart deployment/NAME` for each of ten Deployments, then
//! `kubectl rollout status deployment/NAME` for each, with the real kubectl against the same
//! simulated cluster.

use std::path::Path;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::process::Command;

use super::cluster::NAMESPACE;

#[derive(Debug, Error)]
pub enum KubectlError {
    #[error("cannot run kubectl")]
    Spawn(#[source] std::io::Error),
    #[error("`kubectl {0}` failed: {1}")]
    Failed(String, String),
}

/// Whether `kubectl` can be run.
pub fn available() -> bool {
    std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Restarts `names` in batches of `batch_size` the kubectl way; returns the wall time.
/// `cache` holds kubectl's discovery cache, as `~/.kube/cache` would.
pub async fn run(
    kubeconfig: &Path,
    cache: &Path,
    names: &[String],
    batch_size: usize,
) -> Result<Duration, KubectlError> {
    let started = Instant::now();
    for batch in names.chunks(batch_size.max(1)) {
        for name in batch {
            kubectl(kubeconfig, cache, &["rollout", "restart", &format!("deployment/{name}")])
                .await?;
        }
        for name in batch {
            kubectl(
                kubeconfig,
                cache,
                &["rollout", "status", &format!("deployment/{name}"), "--timeout", "5m"],
            )
            .await?;
        }
    }
    Ok(started.elapsed())
}

async fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str]) -> Result<(), KubectlError> {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--namespace", NAMESPACE])
        .args(args)
        .env("KUBECACHEDIR", cache)
        .output()
        .await
        .map_err(KubectlError::Spawn)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(KubectlError::Failed(
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ))
    }
}
