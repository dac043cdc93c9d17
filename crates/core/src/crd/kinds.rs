//! The workload kinds a ServiceRefresh restarts (`spec.kinds`): Deployments by default,
//! StatefulSets and DaemonSets when listed. All three roll out on a pod-template change, so
//! one restart patch serves them all; they differ in the API path and in how
//! `kubectl rollout status` judges them.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A kind of workload the operator can restart.
#[derive(
    Deserialize,
    Serialize,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    JsonSchema,
)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment.
    #[default]
    Deployment,
    /// `apps/v1` StatefulSet. One whose `updateStrategy` is `OnDelete` is never restarted: a
    /// template change replaces none of its pods, and the operator deletes no pods.
    StatefulSet,
    /// `apps/v1` DaemonSet. One whose `updateStrategy` is `OnDelete` is never restarted.
    DaemonSet,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 3] =
        [WorkloadKind::Deployment, WorkloadKind::StatefulSet, WorkloadKind::DaemonSet];

    /// The kind's name, as in `kind:`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
        }
    }

    /// The resource's plural name in the `apps` API group.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Deployment => "deployments",
            Self::StatefulSet => "statefulsets",
            Self::DaemonSet => "daemonsets",
        }
    }

    /// The default of `spec.kinds`.
    pub fn default_kinds() -> Vec<WorkloadKind> {
        vec![Self::Deployment]
    }

    /// Whether this is the default kind, which the status leaves unnamed.
    pub fn is_deployment(&self) -> bool {
        *self == Self::Deployment
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for WorkloadKind {
    type Err = String;

    /// The kind's name, case-insensitively, or its plural (as kubectl accepts them).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| {
                text.eq_ignore_ascii_case(kind.as_str()) || text.eq_ignore_ascii_case(kind.plural())
            })
            .ok_or_else(|| {
                format!("{text:?} is not a workload kind (Deployment, StatefulSet, DaemonSet)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_by_name_or_plural() {
        assert_eq!("statefulsets".parse(), Ok(WorkloadKind::StatefulSet));
        assert_eq!("DaemonSet".parse(), Ok(WorkloadKind::DaemonSet));
        assert!("ReplicaSet".parse::<WorkloadKind>().is_err());
        assert_eq!(WorkloadKind::default_kinds(), [WorkloadKind::Deployment]);
    }
}
