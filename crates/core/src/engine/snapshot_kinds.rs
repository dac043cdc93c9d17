//! The lean snapshots as Kubernetes resources: which API serves them, so that kube's
//! watchers and reflectors can list and watch straight into them.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::core::DynamicResourceScope;

use super::observed::{ConfigMapSnapshot, DeploymentSnapshot, SecretSnapshot};
use super::pods::PodSnapshot;
use crate::crd::WorkloadKind;

/// One snapshot type serves the three workload kinds; which one an API handle lists, watches
/// or patches is its dynamic type.
impl Resource for DeploymentSnapshot {
    type DynamicType = WorkloadKind;
    // kube's dynamic-type API handles take their scope at run time; all three are namespaced.
    type Scope = DynamicResourceScope;

    fn kind(kind: &WorkloadKind) -> Cow<'_, str> {
        kind.as_str().into()
    }
    fn group(_: &WorkloadKind) -> Cow<'_, str> {
        "apps".into()
    }
    fn version(_: &WorkloadKind) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(kind: &WorkloadKind) -> Cow<'_, str> {
        kind.plural().into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl Resource for ConfigMapSnapshot {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ConfigMap".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "configmaps".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl Resource for PodSnapshot {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Pod".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "pods".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Watched one by one, each with a `metadata.name` field selector: never listed as a kind.
impl Resource for SecretSnapshot {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Secret".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "secrets".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.0.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.0.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
    use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};

    /// The snapshot's API, as kube builds request paths from it, is the full type's.
    fn same_api<Snapshot, Full>(dynamic: &Snapshot::DynamicType)
    where
        Snapshot: Resource,
        Full: Resource<DynamicType = ()>,
    {
        let names = |kind: Cow<'_, str>, group: Cow<'_, str>, version: Cow<'_, str>| {
            (kind.into_owned(), group.into_owned(), version.into_owned())
        };
        assert_eq!(
            names(Snapshot::kind(dynamic), Snapshot::group(dynamic), Snapshot::version(dynamic)),
            names(Full::kind(&()), Full::group(&()), Full::version(&())),
        );
        assert_eq!(Snapshot::api_version(dynamic), Full::api_version(&()));
        assert_eq!(Snapshot::plural(dynamic), Full::plural(&()));
        assert_eq!(
            Snapshot::url_path(dynamic, Some("arcgis")),
            Full::url_path(&(), Some("arcgis"))
        );
    }

    #[test]
    fn each_snapshot_lists_and_watches_the_api_of_its_kind() {
        same_api::<DeploymentSnapshot, Deployment>(&WorkloadKind::Deployment);
        same_api::<DeploymentSnapshot, StatefulSet>(&WorkloadKind::StatefulSet);
        same_api::<DeploymentSnapshot, DaemonSet>(&WorkloadKind::DaemonSet);
        same_api::<ConfigMapSnapshot, ConfigMap>(&());
        same_api::<PodSnapshot, Pod>(&());
        same_api::<SecretSnapshot, Secret>(&());
    }

    /// What kube's reflector writes through `meta_mut` is what it reads back through `meta`.
    fn metadata_round_trips<K: Resource + Default>() {
        let mut snapshot = K::default();
        snapshot.meta_mut().name = Some("portal".into());
        snapshot.meta_mut().namespace = Some("arcgis".into());
        assert_eq!(snapshot.meta().name.as_deref(), Some("portal"));
        assert_eq!(snapshot.meta().namespace.as_deref(), Some("arcgis"));
    }

    #[test]
    fn each_snapshot_keeps_the_metadata_written_to_it() {
        metadata_round_trips::<DeploymentSnapshot>();
        metadata_round_trips::<ConfigMapSnapshot>();
        metadata_round_trips::<PodSnapshot>();
        metadata_round_trips::<SecretSnapshot>();
    }
}
