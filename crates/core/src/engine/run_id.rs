//! The identity of one run: the resource that owns it, its run number, and the start of the
//! resource's uid. It is written to every restarted Deployment's pod template as
//! `gisops.io/restarted-by`, which is what makes a restart idempotent across operator crashes
//! and what routes a Deployment's changes back to the run waiting on it.

use std::fmt;
use std::str::FromStr;

use super::ObjectKey;
use crate::crd::{RUN_RECORD_ANNOTATION_PREFIX, ServiceRefresh};

/// `<namespace>/<name>/<number>-<uid prefix>`, e.g. `arcgis/refresh/3-9f3c2a71`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId {
    pub owner: ObjectKey,
    pub number: u64,
    /// The first eight characters of the owner's uid: a resource deleted and created again
    /// under the same name gets runs that do not collide with the old ones.
    pub uid: String,
}

/// Characters of the uid kept in a run id.
const UID_PREFIX: usize = 8;

impl RunId {
    /// Run `number` of `refresh`.
    pub fn new(refresh: &ServiceRefresh, number: u64) -> Self {
        let uid: String =
            refresh.metadata.uid.as_deref().unwrap_or_default().chars().take(UID_PREFIX).collect();
        Self {
            owner: ObjectKey::new(
                refresh.metadata.namespace.as_deref().unwrap_or("default"),
                refresh.metadata.name.as_deref().unwrap_or_default(),
            ),
            number,
            uid: if uid.is_empty() { "nouid".to_owned() } else { uid },
        }
    }
}

impl RunId {
    /// The Deployment metadata annotation recording this resource's latest run on it.
    pub fn record_annotation(&self) -> String {
        format!("{RUN_RECORD_ANNOTATION_PREFIX}{}", self.uid)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}-{}", self.owner, self.number, self.uid)
    }
}

/// A `gisops.io/restarted-by` value that is not a run id (written by hand or by a tool).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a run id of the form <namespace>/<name>/<number>-<uid>")]
pub struct NotARunId(String);

impl FromStr for RunId {
    type Err = NotARunId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || NotARunId(text.to_owned());
        let mut parts = text.splitn(3, '/');
        let (Some(namespace), Some(name), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let (number, uid) = rest.split_once('-').ok_or_else(invalid)?;
        // Digits only: `parse` alone would take "+1"; it refuses an empty number itself.
        let number_ok = number.bytes().all(|byte| byte.is_ascii_digit());
        if namespace.is_empty() || name.is_empty() || uid.is_empty() || !number_ok {
            return Err(invalid());
        }
        Ok(Self {
            owner: ObjectKey::new(namespace, name),
            number: number.parse().map_err(|_| invalid())?,
            uid: uid.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_round_trip_and_refuse_other_values() {
        let id: RunId = "arcgis/refresh/12-0123abcd".parse().expect("run id");
        assert_eq!(id.owner, ObjectKey::new("arcgis", "refresh"));
        assert_eq!((id.number, id.uid.as_str()), (12, "0123abcd"));
        assert_eq!(id.to_string(), "arcgis/refresh/12-0123abcd");
        for bad in [
            "",
            "arcgis",
            "arcgis/refresh",
            "arcgis/refresh/x-0123",
            "arcgis/refresh/12",
            "/refresh/1-a",
            "arcgis//1-a",
            "arcgis/refresh/-a",
            "arcgis/refresh/+1-a",
            "arcgis/refresh/1-",
            "arcgis/refresh/99999999999999999999999-a",
        ] {
            assert!(bad.parse::<RunId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_run_id_carries_the_uid_prefix() {
        let mut refresh = ServiceRefresh::new(
            "refresh",
            serde_json::from_value(serde_json::json!({"selector": {}})).expect("spec"),
        );
        refresh.metadata.namespace = Some("arcgis".to_owned());
        assert_eq!(RunId::new(&refresh, 1).to_string(), "arcgis/refresh/1-nouid");
        refresh.metadata.uid = Some("0123456789abcdef".to_owned());
        assert_eq!(RunId::new(&refresh, 2).to_string(), "arcgis/refresh/2-01234567");
    }
}
