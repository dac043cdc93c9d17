//! [`ResourceDef`]: one served resource at one version, with the facts the
//! request handlers, the write pipeline and the validators branch on (scope,
//! subresources, which fields select, what bumps `metadata.generation`).

use serde_json::Value;

use crate::error::GroupResource;

/// A create-only subresource and the kind it takes and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateSubresource {
    /// The subresource, e.g. `token`.
    pub name: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
}

/// Everything the server knows about one served resource at one version.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    /// API group, empty for core.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Plural name (the URL segment).
    pub plural: String,
    /// Singular name (discovery's `singularName`).
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`deploy`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Has a `/status` subresource.
    pub status_subresource: bool,
    /// Has a `/scale` subresource (autoscaling/v1 Scale).
    pub scale_subresource: bool,
    /// Defined by a CRD (its name), `None` for built-ins.
    pub crd: Option<String>,
    /// The version's `openAPIV3Schema`, for custom resources.
    pub schema: Option<Value>,
    /// Whether PUT without `metadata.resourceVersion` is allowed.
    pub unconditional_update: bool,
    /// Whether DELETE answers the deleted object (else a `Status`).
    pub return_deleted_object: bool,
    /// Whether the object carries `metadata.generation`.
    pub has_generation: bool,
}

impl ResourceDef {
    /// `group/version` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The group-resource pair used in messages.
    pub fn gr(&self) -> GroupResource {
        GroupResource::new(&self.group, &self.plural)
    }

    /// Whether this is a custom resource.
    pub fn is_custom(&self) -> bool {
        self.crd.is_some()
    }

    /// Whether this is the given resource (at any version).
    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.group == group && self.plural == plural
    }

    /// Whether this is `customresourcedefinitions`, whose writes change the
    /// registry itself.
    pub fn is_crd(&self) -> bool {
        self.is("apiextensions.k8s.io", "customresourcedefinitions")
    }

    /// Whether this is one of the create-only reviews of the
    /// authentication and authorization APIs (TokenReview,
    /// SubjectAccessReview, ...): answered in the response, never stored.
    pub fn is_review(&self) -> bool {
        !self.is_custom()
            && matches!(self.group.as_str(), "authentication.k8s.io" | "authorization.k8s.io")
            && self.kind.ends_with("Review")
    }

    /// A create-only subresource the real server registers for this
    /// resource (`serviceaccounts/token`, a TokenRequest).
    pub fn create_subresource(&self, subresource: &str) -> Option<CreateSubresource> {
        (self.is("", "serviceaccounts") && subresource == "token").then_some(CreateSubresource {
            name: "token",
            group: "authentication.k8s.io",
            version: "v1",
            kind: "TokenRequest",
        })
    }

    /// Whether this resource serves a read-only subresource `subresource`
    /// (`pods/log`, answered with the container's output).
    pub fn get_subresource(&self, subresource: &str) -> bool {
        self.is("", "pods") && subresource == "log"
    }

    /// Every create-only subresource of this resource.
    pub fn create_subresources(&self) -> Vec<CreateSubresource> {
        self.create_subresource("token").into_iter().collect()
    }

    /// The field paths `fieldSelector` accepts for this resource: the
    /// metadata pair every resource has, plus the ones the real server
    /// registers for events, namespaces and pods.
    pub fn selectable_fields(&self) -> Vec<&'static str> {
        let mut fields = vec!["metadata.name", "metadata.namespace"];
        if self.is("", "events") {
            fields.extend([
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ]);
        }
        if self.is("events.k8s.io", "events") {
            fields.extend([
                "regarding.kind",
                "regarding.namespace",
                "regarding.name",
                "regarding.uid",
                "reason",
                "reportingController",
                "type",
            ]);
        }
        if self.plural == "namespaces" {
            fields.push("status.phase");
        }
        if self.is("", "pods") {
            // `kubectl describe node` lists a node's pods by `spec.nodeName`
            // and `status.phase`.
            fields.extend([
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            ]);
        }
        fields
    }

    /// Whether the change from `old` to `new` bumps `metadata.generation`:
    /// for built-ins a change of `spec`; for custom resources a change of
    /// anything but metadata (and `status`, when it is a subresource).
    pub fn spec_changed(&self, old: &Value, new: &Value) -> bool {
        if self.is_custom() {
            let without_non_spec = |object: &Value| -> Value {
                let mut object = object.clone();
                if let Some(fields) = object.as_object_mut() {
                    fields.remove("metadata");
                    fields.remove("apiVersion");
                    fields.remove("kind");
                    if self.status_subresource {
                        fields.remove("status");
                    }
                }
                object
            };
            without_non_spec(old) != without_non_spec(new)
        } else {
            old.get("spec") != new.get("spec")
        }
    }
}
