//! The two pod-template annotations a restart writes (`gisops.io/restarted-by` and
//! `kubectl.kubernetes.io/restartedAt`), read straight from a watched object's annotation
//! map without keeping the rest: shared by the workload and the pod snapshots.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::crd::{RESTARTED_AT_ANNOTATION, RESTARTED_BY_ANNOTATION};

/// The pod-template annotations, keeping only `gisops.io/restarted-by` and
/// `kubectl.kubernetes.io/restartedAt`.
#[derive(Default)]
pub(super) struct RestartAnnotationsOnly {
    pub(super) restarted_by: Option<String>,
    pub(super) restarted_at: Option<String>,
}

impl<'de> Deserialize<'de> for RestartAnnotationsOnly {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keep;
        impl<'de> Visitor<'de> for Keep {
            type Value = RestartAnnotationsOnly;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a map of annotations")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut kept = RestartAnnotationsOnly::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == RESTARTED_BY_ANNOTATION {
                        kept.restarted_by = Some(map.next_value::<String>()?);
                    } else if key == RESTARTED_AT_ANNOTATION {
                        kept.restarted_at = Some(map.next_value::<String>()?);
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
                Ok(kept)
            }
        }
        deserializer.deserialize_map(Keep)
    }
}
