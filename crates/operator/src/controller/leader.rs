//! Leader election through a `coordination.k8s.io/v1` Lease, with kube-lease-manager doing
//! the acquiring, renewing and releasing. This module runs it, feeds what it learns into the
//! fence ([`servicerefresh_core::policy::leadership`]; the Lease's answers reach the fence through the
//! lease client's observer layer), reports leadership changes, and, on a standby, notices a
//! released Lease at once instead of after the lease duration.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::Api;
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseManagerBuilder, LeaseParams};
use thiserror::Error;
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::answers::failure_text;
use servicerefresh_core::policy::leadership::{Change, Leadership};

/// Where the leader Lease is.
#[derive(Clone, Debug)]
pub struct LeaseLocation {
    pub namespace: String,
    pub name: String,
}

/// The settings of leader election (`--lease-*`).
#[derive(Clone, Debug)]
pub struct LeaderElectionConfig {
    pub lease: LeaseLocation,
    /// How long a Lease not renewed stays valid for the other replicas.
    pub lease_duration: Duration,
    /// How long after its last renewal the leader still writes; the rest of the lease
    /// duration is the safety margin.
    pub renew_deadline: Duration,
}

#[derive(Debug, Error)]
pub enum LeaderElectionError {
    #[error(
        "--lease-duration must be whole seconds, at least 3s (the Lease counts seconds), not {0:?}"
    )]
    LeaseDuration(Duration),
    #[error(
        "--lease-renew-deadline must be at least 2s and shorter than --lease-duration \
         ({duration:?}), not {deadline:?}"
    )]
    RenewDeadline { deadline: Duration, duration: Duration },
    #[error(
        "leader election needs a client for the Lease (build the clients with Clients::from_config and a Lease location)"
    )]
    NoLeaseClient,
}

/// The derived timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// leaseDurationSeconds.
    pub duration_secs: u64,
    /// kube-lease-manager renews this long before the lease would expire: every
    /// `duration_secs - grace_secs` seconds.
    pub grace_secs: u64,
    /// How long the fence stays open after a renewal.
    pub validity: Duration,
    /// How often a standby looks for a released Lease, and the delay after a failed request.
    pub retry: Duration,
}

impl LeaderElectionConfig {
    /// The timing, or why these settings cannot work: renewals come every third of the
    /// renew deadline (whole seconds, at least 1 s), so a leader gets about three tries
    /// before its fence closes.
    pub fn timing(&self) -> Result<Timing, LeaderElectionError> {
        let duration = self.lease_duration;
        if duration.subsec_nanos() != 0 || duration < Duration::from_secs(3) {
            return Err(LeaderElectionError::LeaseDuration(duration));
        }
        let deadline = self.renew_deadline;
        if deadline < Duration::from_secs(2) || deadline >= duration {
            return Err(LeaderElectionError::RenewDeadline { deadline, duration });
        }
        let duration_secs = duration.as_secs();
        let renew_every = (deadline.as_secs() / 3).max(1);
        Ok(Timing {
            duration_secs,
            grace_secs: duration_secs - renew_every,
            validity: deadline,
            retry: (deadline / 4).clamp(Duration::from_millis(200), Duration::from_secs(2)),
        })
    }
}

/// What ended one lease manager's run.
enum Outcome {
    Stop,
    /// The Lease was released: a fresh manager (whose state is not a cached view of the
    /// previous holder) acquires it at once.
    Rebuild,
}

/// Runs leader election until `stop` fires, then steps down and releases the Lease if held.
/// `on_change` hears every change of leadership, in order.
pub async fn run(
    client: Client,
    config: LeaderElectionConfig,
    identity: String,
    leadership: Arc<Leadership>,
    on_change: impl Fn(Change) + Send + Sync,
    mut stop: oneshot::Receiver<()>,
) {
    let Ok(timing) = config.timing() else {
        // Validated before the operator started; nothing to run with.
        return;
    };
    // LeaseParams::new panics unless 0 < grace < duration; `timing` guarantees it (duration
    // >= 3, and grace = duration - renew interval with 1 <= interval < duration).
    let params = LeaseParams::new(identity.clone(), timing.duration_secs, timing.grace_secs);
    let lease_api: Api<Lease> = Api::namespaced(client.clone(), &config.lease.namespace);
    let report = |leadership: &Leadership| {
        for change in leadership.poll(Instant::now()) {
            on_change(change);
        }
    };
    loop {
        let built = tokio::select! {
            biased;
            _ = &mut stop => break,
            built = LeaseManagerBuilder::new(client.clone(), &config.lease.name)
                .with_namespace(&config.lease.namespace)
                .with_parameters(params.clone())
                .with_create_mode(LeaseCreateMode::AutoCreate)
                .build() => built,
        };
        let manager = match built {
            Ok(manager) => manager,
            Err(error) => {
                warn!(error = %failure_text(&error), lease = %lease_name(&config), "leader election: cannot read or create the Lease; retrying");
                tokio::select! {
                    biased;
                    _ = &mut stop => break,
                    () = tokio::time::sleep(timing.retry) => continue,
                }
            }
        };
        let outcome =
            follow(&manager, &lease_api, &config, &leadership, timing, &report, &mut stop).await;
        if let Outcome::Stop = outcome {
            leadership.step_down();
            report(&leadership);
            // Let the standby take over now rather than after the lease duration.
            match tokio::time::timeout(config.lease_duration, manager.release()).await {
                Ok(Ok(())) => {
                    info!(lease = %lease_name(&config), identity, "leader Lease released")
                }
                Ok(Err(error)) => {
                    warn!(error = %failure_text(&error), lease = %lease_name(&config), "could not release the leader Lease; it expires by itself")
                }
                Err(_) => {
                    warn!(lease = %lease_name(&config), "releasing the leader Lease timed out; it expires by itself")
                }
            }
            return;
        }
    }
    leadership.step_down();
    report(&leadership);
}

fn lease_name(config: &LeaderElectionConfig) -> String {
    format!("{}/{}", config.lease.namespace, config.lease.name)
}

/// Drives one lease manager: keeps its `changed()` running (which acquires and renews),
/// reports leadership changes as renewals arrive and the fence's deadline passes, and on a
/// standby looks for a released Lease every `retry`.
async fn follow(
    manager: &LeaseManager,
    lease_api: &Api<Lease>,
    config: &LeaderElectionConfig,
    leadership: &Leadership,
    timing: Timing,
    report: &(impl Fn(&Leadership) + Sync),
    stop: &mut oneshot::Receiver<()>,
) -> Outcome {
    let mut holder = false;
    let mut changed = manager.changed().boxed();
    loop {
        let now = Instant::now();
        let wake = leadership
            .deadline()
            .filter(|deadline| *deadline > now)
            .map_or(now + timing.retry, |deadline| deadline.min(now + timing.retry));
        tokio::select! {
            biased;
            _ = &mut *stop => return Outcome::Stop,
            result = &mut changed => {
                match result {
                    Ok(is_holder) => {
                        holder = is_holder;
                        changed = manager.changed().boxed();
                    }
                    Err(error) => {
                        warn!(error = %failure_text(&error), lease = %lease_name(config), "leader election: a Lease request failed; retrying");
                        let retry = timing.retry;
                        changed = async move {
                            tokio::time::sleep(retry).await;
                            manager.changed().await
                        }
                        .boxed();
                    }
                }
                report(leadership);
            }
            () = tokio::time::sleep_until(wake.into()) => {
                report(leadership);
                if !holder
                    && let Ok(lease) = lease_api.get(&config.lease.name).await
                    && lease
                        .spec
                        .as_ref()
                        .and_then(|spec| spec.holder_identity.as_deref())
                        .is_none_or(str::is_empty)
                {
                    return Outcome::Rebuild;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(duration: u64, deadline_ms: u64) -> LeaderElectionConfig {
        LeaderElectionConfig {
            lease: LeaseLocation { namespace: "ns".into(), name: "servicerefresh".into() },
            lease_duration: Duration::from_secs(duration),
            renew_deadline: Duration::from_millis(deadline_ms),
        }
    }

    #[test]
    fn the_defaults_renew_every_three_seconds_and_fence_after_ten() {
        assert_eq!(
            config(15, 10_000).timing().expect("valid"),
            Timing {
                duration_secs: 15,
                grace_secs: 12,
                validity: Duration::from_secs(10),
                retry: Duration::from_secs(2)
            }
        );
    }

    #[test]
    fn a_short_lease_renews_every_second() {
        assert_eq!(
            config(3, 2_000).timing().expect("valid"),
            Timing {
                duration_secs: 3,
                grace_secs: 2,
                validity: Duration::from_secs(2),
                retry: Duration::from_millis(500)
            }
        );
    }

    #[test]
    fn every_accepted_timing_satisfies_the_lease_managers_rule() {
        for duration in 3..=120 {
            for deadline_ms in (0..=duration * 1_000).step_by(250) {
                if let Ok(timing) = config(duration, deadline_ms).timing() {
                    assert!(timing.grace_secs > 0 && timing.grace_secs < timing.duration_secs);
                    let renew_every = Duration::from_secs(duration - timing.grace_secs);
                    assert!(renew_every < timing.validity, "{duration}s/{deadline_ms}ms");
                }
            }
        }
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        assert!(matches!(config(2, 1_000).timing(), Err(LeaderElectionError::LeaseDuration(_))));
        let fractional = LeaderElectionConfig {
            lease_duration: Duration::from_millis(3_500),
            ..config(3, 2_000)
        };
        assert!(matches!(fractional.timing(), Err(LeaderElectionError::LeaseDuration(_))));
        assert!(matches!(
            config(15, 15_000).timing(),
            Err(LeaderElectionError::RenewDeadline { .. })
        ));
        assert!(matches!(
            config(15, 1_500).timing(),
            Err(LeaderElectionError::RenewDeadline { .. })
        ));
    }
}
