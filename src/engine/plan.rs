//! Selection and planning: which Deployments a run covers, in which order and in which
//! batches, plus the content hash that detects changes to trigger ConfigMaps. The plan is a
//! snapshot taken once at run start; later changes to the fleet do not alter it.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;

use super::ObjectKey;
use super::spec::ValidSpec;
use crate::crd::{BatchPhase, BatchStatus, ServiceRefresh, ServiceRefreshSpec, ServiceStatus};

/// The namespace a ServiceRefresh lives in; every relative reference resolves against it.
/// A namespaced object always has one once stored, so the fallback only covers hand-built
/// objects in tests and tools.
pub fn own_namespace(refresh: &ServiceRefresh) -> &str {
    refresh.metadata.namespace.as_deref().unwrap_or("default")
}

/// The Deployments in scope, sorted by namespace then name: in a target namespace, matched
/// by the selector and at least one name pattern (when any), and not excluded. Deployments
/// already being deleted are left out because restarting them is pointless.
pub fn select(
    spec: &ValidSpec,
    own_namespace: &str,
    deployments: &[Arc<Deployment>],
) -> Vec<ObjectKey> {
    let namespaces = spec.target_namespaces(own_namespace);
    let selected: BTreeSet<ObjectKey> = deployments
        .iter()
        .filter(|deployment| deployment.metadata.deletion_timestamp.is_none())
        .filter_map(|deployment| {
            let namespace = deployment.metadata.namespace.as_deref()?;
            let name = deployment.metadata.name.as_deref()?;
            let labels = deployment.metadata.labels.clone().unwrap_or_default();
            let in_scope = namespaces.contains(namespace)
                && spec.selector.matches(&labels)
                && spec.name_in_scope(name);
            in_scope.then(|| ObjectKey::new(namespace, name))
        })
        .collect();
    selected.into_iter().collect()
}

/// Cuts sorted services into Pending batches of at most `batch_size`, numbering them from
/// `first_index`. The namespace is left out when it is the resource's own, to keep the
/// status small for large fleets.
pub fn cut_batches(
    services: &[ServiceStatus],
    batch_size: usize,
    first_index: u32,
) -> Vec<BatchStatus> {
    services
        .chunks(batch_size.max(1))
        .zip(first_index..)
        .map(|(chunk, index)| BatchStatus {
            index,
            phase: BatchPhase::Pending,
            start_time: None,
            end_time: None,
            services: chunk.to_vec(),
        })
        .collect()
}

/// The plan entry of one Deployment, not yet restarted.
pub fn planned_service(key: &ObjectKey, own_namespace: &str) -> ServiceStatus {
    ServiceStatus {
        name: key.name.clone(),
        namespace: (key.namespace != own_namespace).then(|| key.namespace.clone()),
        generation: None,
        result: None,
        message: None,
    }
}

/// The Deployment a plan entry stands for.
pub fn service_key(service: &ServiceStatus, own_namespace: &str) -> ObjectKey {
    ObjectKey::new(service.namespace.as_deref().unwrap_or(own_namespace), service.name.as_str())
}

/// The ConfigMaps `spec.configMapTriggers` watches, resolved against the resource's own
/// namespace, each with the keys to hash (empty: all). The controller hashes each with
/// [`config_map_hash`] and passes the results in `Observation::config_map_hashes`.
pub fn watched_config_maps<'a>(
    spec: &'a ServiceRefreshSpec,
    own_namespace: &str,
) -> Vec<(ObjectKey, &'a [String])> {
    spec.config_map_triggers
        .iter()
        .map(|trigger| {
            let namespace = trigger.namespace.as_deref().unwrap_or(own_namespace);
            (ObjectKey::new(namespace, trigger.name.as_str()), trigger.keys.as_slice())
        })
        .collect()
}

/// A stable content hash of a ConfigMap's `data` and `binaryData`, restricted to `keys` when
/// that is non-empty. It is 64-bit FNV-1a over a length-prefixed encoding of the sorted
/// entries, written here so the value never changes between Rust releases (std's hashers
/// make no such promise) and a restart of the operator never fakes a change. A watched key
/// that is absent hashes differently from one that is present but empty.
pub fn config_map_hash(config_map: &ConfigMap, keys: &[String]) -> String {
    let mut hasher = Fnv1a64::new();
    let data = config_map.data.as_ref();
    let binary_data = config_map.binary_data.as_ref();
    if keys.is_empty() {
        for (key, value) in data.into_iter().flatten() {
            hasher.entry(b'd', key, value.as_bytes());
        }
        for (key, value) in binary_data.into_iter().flatten() {
            hasher.entry(b'b', key, &value.0);
        }
    } else {
        let wanted: BTreeSet<&String> = keys.iter().collect();
        for key in wanted {
            if let Some(value) = data.and_then(|data| data.get(key)) {
                hasher.entry(b'd', key, value.as_bytes());
            } else if let Some(value) = binary_data.and_then(|binary| binary.get(key)) {
                hasher.entry(b'b', key, &value.0);
            } else {
                hasher.entry(b'a', key, &[]);
            }
        }
    }
    format!("{:016x}", hasher.finish())
}

struct Fnv1a64(u64);

impl Fnv1a64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Self(Self::OFFSET_BASIS)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// Length prefixes keep ("ab", "c") and ("a", "bc") apart.
    fn entry(&mut self, tag: u8, key: &str, value: &[u8]) {
        self.bytes(&[tag]);
        self.bytes(&(key.len() as u64).to_le_bytes());
        self.bytes(key.as_bytes());
        self.bytes(&(value.len() as u64).to_le_bytes());
        self.bytes(value);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;
    use crate::engine::spec::validate;

    fn deployment(namespace: &str, name: &str, labels: &[(&str, &str)]) -> Arc<Deployment> {
        let mut deployment = Deployment::default();
        deployment.metadata.namespace = Some(namespace.to_owned());
        deployment.metadata.name = Some(name.to_owned());
        deployment.metadata.labels =
            Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        Arc::new(deployment)
    }

    fn spec(json: serde_json::Value) -> ValidSpec {
        let spec: ServiceRefreshSpec = serde_json::from_value(json).expect("spec parses");
        validate(&spec).expect("spec is valid")
    }

    #[test]
    fn scope_is_namespaces_selector_patterns_minus_exclude() {
        let fleet = vec![
            deployment("arcgis", "b-mapserver", &[("app", "gis")]),
            deployment("arcgis", "a-mapserver", &[("app", "gis")]),
            deployment("arcgis", "a-featureserver", &[("app", "gis")]),
            deployment("arcgis", "keep-mapserver", &[("app", "gis")]),
            deployment("arcgis", "c-mapserver", &[("app", "other")]),
            deployment("other", "a-mapserver", &[("app", "gis")]),
            deployment("zeta", "z-mapserver", &[("app", "gis")]),
        ];
        let valid = spec(serde_json::json!({
            "selector": {"matchLabels": {"app": "gis"}},
            "namePatterns": ["*-mapserver"],
            "exclude": ["keep-mapserver"],
            "namespaces": ["zeta", "arcgis"],
        }));
        assert_eq!(
            select(&valid, "own", &fleet),
            vec![
                ObjectKey::new("arcgis", "a-mapserver"),
                ObjectKey::new("arcgis", "b-mapserver"),
                ObjectKey::new("zeta", "z-mapserver"),
            ]
        );

        let own_only = spec(serde_json::json!({"selector": {}}));
        assert_eq!(
            select(&own_only, "other", &fleet),
            vec![ObjectKey::new("other", "a-mapserver")]
        );
    }

    #[test]
    fn deployments_being_deleted_are_not_planned() {
        let mut doomed = Deployment::default();
        doomed.metadata.namespace = Some("own".to_owned());
        doomed.metadata.name = Some("doomed".to_owned());
        doomed.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        let fleet = vec![Arc::new(doomed), deployment("own", "alive", &[])];
        let valid = spec(serde_json::json!({"selector": {}}));
        assert_eq!(select(&valid, "own", &fleet), vec![ObjectKey::new("own", "alive")]);
    }

    #[test]
    fn batches_are_cut_in_order_and_omit_own_namespace() {
        let keys: Vec<ObjectKey> = (0..7)
            .map(|i| ObjectKey::new(if i < 5 { "own" } else { "x" }, format!("d{i}")))
            .collect();
        let services: Vec<ServiceStatus> =
            keys.iter().map(|key| planned_service(key, "own")).collect();
        let batches = cut_batches(&services, 3, 1);
        assert_eq!(batches.iter().map(|b| b.index).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(batches.iter().map(|b| b.services.len()).collect::<Vec<_>>(), vec![3, 3, 1]);
        assert!(batches.iter().all(|b| b.phase == BatchPhase::Pending));
        assert_eq!(batches[0].services[0].namespace, None);
        assert_eq!(batches[2].services[0].namespace.as_deref(), Some("x"));
        let round_trip: Vec<ObjectKey> =
            batches.iter().flat_map(|b| b.services.iter()).map(|s| service_key(s, "own")).collect();
        assert_eq!(round_trip, keys);
    }

    fn config_map(data: &[(&str, &str)], binary: &[(&str, &[u8])]) -> ConfigMap {
        ConfigMap {
            data: Some(data.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
            binary_data: Some(
                binary
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), ByteString(v.to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn config_map_hash_is_stable_and_content_sensitive() {
        let base =
            config_map(&[("proxy", "http://p:3128"), ("noProxy", "svc")], &[("cert", b"\x00\x01")]);
        // Pinned: a different value after an upgrade would start a run on every resource.
        assert_eq!(config_map_hash(&base, &[]), config_map_hash(&base.clone(), &[]));
        assert_eq!(config_map_hash(&ConfigMap::default(), &[]), "cbf29ce484222325");
        assert_eq!(config_map_hash(&config_map(&[("a", "b")], &[]), &[]), "4cf309c7eb48439e");

        let changed =
            config_map(&[("proxy", "http://q:3128"), ("noProxy", "svc")], &[("cert", b"\x00\x01")]);
        assert_ne!(config_map_hash(&base, &[]), config_map_hash(&changed, &[]));

        let proxy_only = ["proxy".to_owned()];
        let other_changed = config_map(&[("proxy", "http://p:3128"), ("noProxy", "x")], &[]);
        assert_eq!(
            config_map_hash(&base, &proxy_only),
            config_map_hash(&other_changed, &proxy_only)
        );

        let binary_changed =
            config_map(&[("proxy", "http://p:3128"), ("noProxy", "svc")], &[("cert", b"\x00\x02")]);
        assert_ne!(config_map_hash(&base, &[]), config_map_hash(&binary_changed, &[]));

        let split_differently = config_map(&[("ab", "c")], &[]);
        assert_ne!(
            config_map_hash(&split_differently, &[]),
            config_map_hash(&config_map(&[("a", "bc")], &[]), &[])
        );

        let absent = ["missing".to_owned()];
        let empty_value = config_map(&[("missing", "")], &[]);
        assert_ne!(config_map_hash(&base, &absent), config_map_hash(&empty_value, &absent));
        assert_eq!(config_map_hash(&base, &[]).len(), 16);
    }

    #[test]
    fn watched_config_maps_resolve_namespaces() {
        let spec: ServiceRefreshSpec = serde_json::from_value(serde_json::json!({
            "selector": {},
            "configMapTriggers": [{"name": "proxy"}, {"name": "certs", "namespace": "tls", "keys": ["ca.crt"]}],
        }))
        .expect("spec parses");
        let watched = watched_config_maps(&spec, "arcgis");
        assert_eq!(watched[0], (ObjectKey::new("arcgis", "proxy"), &[][..]));
        assert_eq!(watched[1], (ObjectKey::new("tls", "certs"), &["ca.crt".to_owned()][..]));
    }
}
