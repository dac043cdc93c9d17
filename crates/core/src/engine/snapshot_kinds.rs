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
