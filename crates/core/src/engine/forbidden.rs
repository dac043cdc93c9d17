//! A write the API server forbids (403): the operator lacks an RBAC grant. Every restart
//! after the first would be refused the same way, so the run stalls once with reason
//! `Forbidden`, naming the refused permission, holds its batch (no service fails for it and
//! its clock stops) and sends one probe write each time the shell's back-off runs out. The
//! shell records the refusal and its back-off; it enters the engine through the observation.

use jiff::Timestamp;

/// Reason of the Stalled condition while the API server forbids the run's writes.
pub const FORBIDDEN: &str = "Forbidden";

/// The permission the API server refused, as the shell asked for it, and when it asks again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forbidden {
    /// The verb of the refused request (`patch`).
    pub verb: String,
    /// The resource, plural (`deployments`).
    pub resource: String,
    /// Its API group (`apps`); empty for the core group.
    pub group: String,
    /// The namespace of the refused request.
    pub namespace: String,
    /// When the shell's back-off lets the refused write be tried again.
    pub retry_at: Timestamp,
}

impl Forbidden {
    /// Whether the back-off ran out: one probe write may be sent in this pass.
    pub fn retry_due(&self, now: Timestamp) -> bool {
        now >= self.retry_at
    }

    /// The refused permission as RBAC names it: `patch deployments.apps`.
    pub fn permission(&self) -> String {
        if self.group.is_empty() {
            format!("{} {}", self.verb, self.resource)
        } else {
            format!("{} {}.{}", self.verb, self.resource, self.group)
        }
    }

    /// The Stalled condition's message: what is refused, where, and what happens meanwhile.
    /// It does not change from one retry to the next, so the stall is announced once.
    pub fn stall_message(&self) -> String {
        let group = if self.group.is_empty() { "core" } else { self.group.as_str() };
        format!(
            "the API server forbids the operator to {} {} (API group \"{group}\") in namespace \
             \"{}\": grant the verb {:?} on {:?} to the operator's ServiceAccount; nothing is \
             restarted and no Deployment fails meanwhile, and the run resumes by itself once \
             the permission is granted",
            self.verb, self.resource, self.namespace, self.verb, self.resource
        )
    }

    /// What a held service says while the refusal lasts.
    pub fn hold_message(&self) -> String {
        format!(
            "held: the API server forbids {} in namespace {}; retried until it is granted",
            self.permission(),
            self.namespace
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(group: &str) -> Forbidden {
        Forbidden {
            verb: "patch".into(),
            resource: "deployments".into(),
            group: group.into(),
            namespace: "arcgis".into(),
            retry_at: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_message_names_the_verb_resource_group_and_namespace() {
        let message = refused("apps").stall_message();
        for part in ["patch deployments", "API group \"apps\"", "namespace \"arcgis\""] {
            assert!(message.contains(part), "{part} in {message}");
        }
        assert_eq!(refused("apps").permission(), "patch deployments.apps");
        assert_eq!(refused("").permission(), "patch deployments");
        assert!(refused("").stall_message().contains("API group \"core\""));
    }

    #[test]
    fn a_retry_is_due_once_the_back_off_ran_out() {
        let forbidden = refused("apps");
        assert!(forbidden.retry_due(Timestamp::UNIX_EPOCH));
        let earlier = Timestamp::from_second(-1).expect("in range");
        assert!(!forbidden.retry_due(earlier));
    }
}
