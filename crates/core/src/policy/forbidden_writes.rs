//! Writes the API server forbids (403), per ServiceRefresh: the permission it refused and
//! when to try again. A missing RBAC grant is fixed by a person, and a Role change causes no
//! watch event on the resource, so the shell retries on its own, each refusal in a row
//! doubling the wait up to a minute; a write of the resource that goes through forgets it.
//! The engine reads the refusal from its observation and stalls the run.

use std::collections::HashMap;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

use super::lock;
use crate::engine::{Forbidden, ObjectKey};

/// The wait after the first refusal.
pub const FIRST_RETRY: SignedDuration = SignedDuration::from_secs(2);
/// The longest wait between two tries: a person who granted the permission should not wait
/// long for the run to resume.
pub const LONGEST_RETRY: SignedDuration = SignedDuration::from_secs(60);

/// The request the API server refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedRequest {
    pub verb: String,
    pub resource: String,
    pub group: String,
    pub namespace: String,
}

/// The refused write and the refusals in a row, per ServiceRefresh.
#[derive(Default)]
pub struct ForbiddenWrites {
    refused: Mutex<HashMap<ObjectKey, (Forbidden, u32)>>,
}

impl ForbiddenWrites {
    /// Notes a refusal at `now`; returns when to try again.
    pub fn refused(&self, key: &ObjectKey, request: RefusedRequest, now: Timestamp) -> Timestamp {
        let mut refused = lock(&self.refused);
        let in_a_row = refused.get(key).map_or(0, |(_, count)| *count);
        let factor = 2i32.saturating_pow(in_a_row.min(16));
        let wait = FIRST_RETRY.saturating_mul(factor).min(LONGEST_RETRY);
        let retry_at = now.checked_add(wait).unwrap_or(Timestamp::MAX);
        let RefusedRequest { verb, resource, group, namespace } = request;
        let forbidden = Forbidden { verb, resource, group, namespace, retry_at };
        refused.insert(key.clone(), (forbidden, in_a_row.saturating_add(1)));
        retry_at
    }

    /// A write of the resource's run went through: its refusal, if any, is over.
    pub fn allowed(&self, key: &ObjectKey) {
        lock(&self.refused).remove(key);
    }

    /// The refusal the resource's next pass must observe.
    pub fn current(&self, key: &ObjectKey) -> Option<Forbidden> {
        lock(&self.refused).get(key).map(|(forbidden, _)| forbidden.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch_deployments() -> RefusedRequest {
        RefusedRequest {
            verb: "patch".into(),
            resource: "deployments".into(),
            group: "apps".into(),
            namespace: "arcgis".into(),
        }
    }

    #[test]
    fn each_refusal_doubles_the_wait_up_to_a_minute_and_a_write_forgets_it() {
        let writes = ForbiddenWrites::default();
        let key = ObjectKey::new("arcgis", "refresh");
        let now = Timestamp::UNIX_EPOCH;
        let waits: Vec<i64> =
            (0..7).map(|_| writes.refused(&key, patch_deployments(), now).as_second()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60]);
        let current = writes.current(&key).expect("recorded");
        assert_eq!((current.verb.as_str(), current.resource.as_str()), ("patch", "deployments"));
        assert_eq!(writes.current(&ObjectKey::new("arcgis", "other")), None, "per resource");
        writes.allowed(&key);
        assert_eq!(writes.current(&key), None);
        assert_eq!(writes.refused(&key, patch_deployments(), now).as_second(), 2, "starts over");
    }
}
