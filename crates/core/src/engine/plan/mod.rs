//! Selection and planning: which Deployments a run covers and in which order (the plan,
//! kept in plan objects by [`parts`]), plus the content digest that detects changes to
//! trigger ConfigMaps. The plan is a snapshot taken once at run start; later changes to the
//! fleet do not alter it.

mod parts;

pub use parts::{PLAN_OWNER_LABEL, Plan, PlanEntry, PlanError, part_name};

use std::collections::BTreeSet;
use std::hash::Hasher;

use fnv::FnvHasher;

use super::ObjectKey;
use super::observed::{ClusterView, ConfigMapSnapshot};
use super::spec::ValidSpec;
use crate::crd::{ServiceRefresh, ServiceStatus};

/// The namespace a ServiceRefresh lives in; every relative reference resolves against it.
/// A namespaced object always has one once stored, so the fallback only covers hand-built
/// objects in tests and tools.
pub fn own_namespace(refresh: &ServiceRefresh) -> &str {
    refresh.metadata.namespace.as_deref().unwrap_or("default")
}

/// What a plan covers, and the excluded names that matched nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Sorted by namespace, kind, then name.
    pub deployments: Vec<ObjectKey>,
    /// Names in `spec.exclude` that are no workload of a listed kind in the target
    /// namespaces: likely typos.
    pub unmatched_excludes: Vec<String>,
}

/// The workloads in scope: of a listed kind, in a target namespace, matched by the selector
/// and at least one name pattern (when any), and not excluded. Deployments already being deleted are left out
/// because restarting them is pointless.
pub fn select(spec: &ValidSpec, cluster: &dyn ClusterView) -> Selection {
    let mut selected = BTreeSet::new();
    let mut existing_names = BTreeSet::new();
    for deployment in cluster.deployments() {
        let (Some(namespace), Some(name)) =
            (deployment.metadata.namespace.as_deref(), deployment.metadata.name.as_deref())
        else {
            continue;
        };
        if !spec.namespaces.contains(namespace) || !spec.kinds.contains(&deployment.kind) {
            continue;
        }
        existing_names.insert(name.to_owned());
        let in_scope = deployment.metadata.deletion_timestamp.is_none()
            && spec.selects(namespace, name, Some(&deployment.labels()));
        if in_scope {
            selected.insert(deployment.key());
        }
    }
    Selection {
        deployments: selected.into_iter().collect(),
        unmatched_excludes: spec.exclude.difference(&existing_names).cloned().collect(),
    }
}

/// The row of a plan entry in a started batch. The namespace is left out when it is the
/// resource's own, to keep the status small.
pub fn service_row(entry: &PlanEntry, position: u32, own_namespace: &str) -> ServiceStatus {
    ServiceStatus {
        name: entry.key.name.clone(),
        position: Some(position),
        namespace: (entry.key.namespace != own_namespace).then(|| entry.key.namespace.clone()),
        kind: (!entry.key.kind.is_deployment()).then_some(entry.key.kind),
        generation: None,
        uid: None,
        result: None,
        reason: None,
        message: None,
    }
}

/// The workload a plan entry stands for.
pub fn service_key(service: &ServiceStatus, own_namespace: &str) -> ObjectKey {
    ObjectKey::workload(
        service.kind.unwrap_or_default(),
        service.namespace.as_deref().unwrap_or(own_namespace),
        service.name.as_str(),
    )
}

/// Prefix of the current ConfigMap digest format. Digests written by earlier versions have
/// none; they are replaced by a fresh baseline instead of counting as a change.
const DIGEST_PREFIX: &str = "v2-";

/// A stable digest of a ConfigMap's content, restricted to `keys` when that is non-empty. It
/// combines the per-entry digests the cache keeps, in key order; a watched key that is absent
/// digests differently from one that is present but empty.
pub fn config_map_digest(config_map: &ConfigMapSnapshot, keys: &[String]) -> String {
    let mut hasher = FnvHasher::default();
    let mut entry = |key: &str, digest: Option<u64>| {
        hasher.write(&(key.len() as u64).to_le_bytes());
        hasher.write(key.as_bytes());
        match digest {
            Some(digest) => {
                hasher.write(&[1]);
                hasher.write(&digest.to_le_bytes());
            }
            None => hasher.write(&[0]),
        }
    };
    if keys.is_empty() {
        for (key, digest) in &config_map.entries {
            entry(key, Some(*digest));
        }
    } else {
        let wanted: BTreeSet<&String> = keys.iter().collect();
        for key in wanted {
            entry(key, config_map.entries.get(key).copied());
        }
    }
    format!("{DIGEST_PREFIX}{:016x}", hasher.finish())
}

/// Whether a recorded ConfigMap digest predates the current format.
pub fn is_legacy_digest(digest: &str) -> bool {
    !digest.starts_with(DIGEST_PREFIX)
}

/// The keys of `keys` that `config_map` lacks.
pub fn missing_keys<'a>(config_map: &ConfigMapSnapshot, keys: &'a [String]) -> Vec<&'a str> {
    keys.iter()
        .filter(|key| !config_map.entries.contains_key(key.as_str()))
        .map(String::as_str)
        .collect()
}

/// A fixed-size digest of `spec.trigger`, recorded instead of the token itself.
pub fn trigger_digest(token: &str) -> String {
    let mut hasher = FnvHasher::default();
    hasher.write(token.as_bytes());
    format!("fnv1a64-{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::crd::ServiceRefreshSpec;
    use crate::engine::observed::DeploymentSnapshot;
    use crate::engine::spec::{OperatorScope, validate};

    struct Fleet(Vec<Arc<DeploymentSnapshot>>);

    impl ClusterView for Fleet {
        fn deployment(&self, key: &ObjectKey) -> Option<Arc<DeploymentSnapshot>> {
            self.0.iter().find(|deployment| deployment.key() == *key).cloned()
        }
        fn deployments(&self) -> Vec<Arc<DeploymentSnapshot>> {
            self.0.clone()
        }
        fn config_map(&self, _: &ObjectKey) -> Option<Arc<ConfigMapSnapshot>> {
            None
        }
        fn secret(&self, _: &ObjectKey) -> Option<Arc<crate::engine::SecretSnapshot>> {
            None
        }
    }

    fn deployment(namespace: &str, name: &str, labels: &[(&str, &str)]) -> Arc<DeploymentSnapshot> {
        let mut deployment = DeploymentSnapshot::default();
        deployment.metadata.namespace = Some(namespace.to_owned());
        deployment.metadata.name = Some(name.to_owned());
        deployment
            .set_labels(&labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        Arc::new(deployment)
    }

    fn spec(json: serde_json::Value, own: &str) -> ValidSpec {
        let spec: ServiceRefreshSpec = serde_json::from_value(json).expect("spec parses");
        let scope = OperatorScope {
            watch_namespace: None,
            allow_cross_namespace: true,
            extra_kinds: crate::crd::WorkloadKind::ALL.into_iter().collect(),
            secret_triggers: true,
        };
        validate(&spec, own, &scope).expect("spec is valid")
    }

    #[test]
    fn scope_is_namespaces_selector_patterns_minus_exclude() {
        let fleet = Fleet(vec![
            deployment("arcgis", "b-mapserver", &[("app", "gis")]),
            deployment("arcgis", "a-mapserver", &[("app", "gis")]),
            deployment("arcgis", "a-featureserver", &[("app", "gis")]),
            deployment("arcgis", "keep-mapserver", &[("app", "gis")]),
            deployment("arcgis", "c-mapserver", &[("app", "other")]),
            deployment("other", "a-mapserver", &[("app", "gis")]),
            deployment("zeta", "z-mapserver", &[("app", "gis")]),
        ]);
        let valid = spec(
            serde_json::json!({
                "selector": {"matchLabels": {"app": "gis"}},
                "namePatterns": ["*-mapserver"],
                "exclude": ["keep-mapserver", "typo-mapserver"],
                "namespaces": ["zeta", "arcgis"],
            }),
            "own",
        );
        let selection = select(&valid, &fleet);
        assert_eq!(
            selection.deployments,
            vec![
                ObjectKey::new("arcgis", "a-mapserver"),
                ObjectKey::new("arcgis", "b-mapserver"),
                ObjectKey::new("zeta", "z-mapserver"),
            ]
        );
        assert_eq!(selection.unmatched_excludes, vec!["typo-mapserver".to_owned()]);

        let own_only = spec(serde_json::json!({"selector": {}}), "other");
        assert_eq!(
            select(&own_only, &fleet).deployments,
            vec![ObjectKey::new("other", "a-mapserver")]
        );
    }

    #[test]
    fn deployments_being_deleted_or_unlabelled_are_handled() {
        let mut doomed = DeploymentSnapshot::default();
        doomed.metadata.namespace = Some("own".to_owned());
        doomed.metadata.name = Some("doomed".to_owned());
        doomed.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        let mut bare = DeploymentSnapshot::default();
        bare.metadata.namespace = Some("own".to_owned());
        bare.metadata.name = Some("bare".to_owned());
        let fleet = Fleet(vec![Arc::new(doomed), Arc::new(bare), deployment("own", "alive", &[])]);
        let valid = spec(serde_json::json!({"selector": {}}), "own");
        assert_eq!(
            select(&valid, &fleet).deployments,
            vec![ObjectKey::new("own", "alive"), ObjectKey::new("own", "bare")]
        );
    }

    #[test]
    fn every_listed_kind_is_selected_and_no_other() {
        use crate::crd::WorkloadKind;
        let of_kind = |kind: WorkloadKind, name: &str| {
            let mut workload = DeploymentSnapshot { kind, ..DeploymentSnapshot::default() };
            workload.metadata.namespace = Some("arcgis".to_owned());
            workload.metadata.name = Some(name.to_owned());
            workload.set_labels(&BTreeMap::from([("app".into(), "gis".into())]));
            Arc::new(workload)
        };
        let fleet = Fleet(vec![
            of_kind(WorkloadKind::DaemonSet, "node-agent"),
            of_kind(WorkloadKind::StatefulSet, "relational-store"),
            of_kind(WorkloadKind::Deployment, "relational-store"),
            of_kind(WorkloadKind::Deployment, "web"),
        ]);
        let deployments =
            spec(serde_json::json!({"selector": {}, "exclude": ["node-agent"]}), "arcgis");
        assert_eq!(
            select(&deployments, &fleet).deployments,
            [ObjectKey::new("arcgis", "relational-store"), ObjectKey::new("arcgis", "web")]
        );
        // A DaemonSet is no Deployment: excluding it by name is a likely typo then.
        assert_eq!(select(&deployments, &fleet).unmatched_excludes, ["node-agent"]);
        let stateful = spec(
            serde_json::json!({"selector": {"matchLabels": {"app": "gis"}},
                               "kinds": ["StatefulSet", "Deployment"]}),
            "arcgis",
        );
        assert_eq!(
            select(&stateful, &fleet).deployments,
            [
                ObjectKey::new("arcgis", "relational-store"),
                ObjectKey::new("arcgis", "web"),
                ObjectKey::workload(WorkloadKind::StatefulSet, "arcgis", "relational-store"),
            ],
            "sorted by namespace, kind, then name; the same name in two kinds is two services"
        );
    }

    fn config_map(data: &[(&str, &str)]) -> ConfigMapSnapshot {
        ConfigMapSnapshot::from_data("arcgis", "proxy", data.iter().copied())
    }

    #[test]
    fn config_map_digest_is_stable_and_content_sensitive() {
        let base = config_map(&[("proxy", "http://p:3128"), ("noProxy", "svc")]);
        // Pinned: a different value after an upgrade would start a run on every resource.
        assert_eq!(config_map_digest(&ConfigMapSnapshot::default(), &[]), "v2-cbf29ce484222325");
        assert_eq!(config_map_digest(&base, &[]), config_map_digest(&base.clone(), &[]));

        let changed = config_map(&[("proxy", "http://q:3128"), ("noProxy", "svc")]);
        assert_ne!(config_map_digest(&base, &[]), config_map_digest(&changed, &[]));

        let proxy_only = ["proxy".to_owned()];
        let other_changed = config_map(&[("proxy", "http://p:3128"), ("noProxy", "x")]);
        assert_eq!(
            config_map_digest(&base, &proxy_only),
            config_map_digest(&other_changed, &proxy_only)
        );

        let absent = ["missing".to_owned()];
        let empty_value = config_map(&[("missing", "")]);
        assert_ne!(config_map_digest(&base, &absent), config_map_digest(&empty_value, &absent));
        assert_eq!(missing_keys(&base, &["proxy".to_owned(), "missing".to_owned()]), ["missing"]);

        let mut entries = BTreeMap::new();
        entries.insert("a".to_owned(), 1u64);
        let moved = ConfigMapSnapshot { entries, ..ConfigMapSnapshot::default() };
        let mut entries = BTreeMap::new();
        entries.insert("a".to_owned(), 2u64);
        let other = ConfigMapSnapshot { entries, ..ConfigMapSnapshot::default() };
        assert_ne!(config_map_digest(&moved, &[]), config_map_digest(&other, &[]));
        assert!(!is_legacy_digest(&config_map_digest(&base, &[])));
        assert!(is_legacy_digest("4cf309c7eb48439e"));
    }

    #[test]
    fn trigger_digests_are_fixed_size() {
        assert_eq!(
            trigger_digest("proxy-2026-11-26").len(),
            trigger_digest(&"x".repeat(1024)).len()
        );
        assert_ne!(trigger_digest("a"), trigger_digest("b"));
        assert_eq!(trigger_digest(""), "fnv1a64-cbf29ce484222325");
    }
}
