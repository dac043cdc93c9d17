//! The component schemas of a document: a kind as published (its schema with
//! `apiVersion`, `kind` and `metadata` added), its List, ObjectMeta and
//! ListMeta, and small described schemas of the built-in kinds (enough for
//! `kubectl explain` of their main fields).

use serde_json::{Map, Value, json};

use super::{
    API_VERSION_DESC, KIND_DESC, LIST_META, LIST_METADATA_DESC, METADATA_DESC, OBJECT_META,
    definition_name, gvk, ref_property, reference,
};

/// The schema of a kind as published: the given schema with `apiVersion`,
/// `kind` and `metadata` (a reference to ObjectMeta) added at the root, and
/// the GVK extension.
pub fn kind_schema(group: &str, version: &str, kind: &str, schema: &Value) -> Value {
    let mut root = match schema {
        Value::Object(fields) => fields.clone(),
        _ => Map::new(),
    };
    if !root.contains_key("type") {
        root.insert("type".into(), json!("object"));
    }
    let mut props = root
        .remove("properties")
        .and_then(|properties| match properties {
            Value::Object(properties) => Some(properties),
            _ => None,
        })
        .unwrap_or_default();
    props.insert("apiVersion".into(), json!({"description": API_VERSION_DESC, "type": "string"}));
    props.insert("kind".into(), json!({"description": KIND_DESC, "type": "string"}));
    props.insert("metadata".into(), ref_property(OBJECT_META, METADATA_DESC));
    root.insert("properties".into(), Value::Object(props));
    root.insert("x-kubernetes-group-version-kind".into(), json!([gvk(group, version, kind)]));
    Value::Object(root)
}

/// The schema of a kind's List.
pub fn list_schema(group: &str, version: &str, kind: &str) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind}"),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DESC, "type": "string"},
            "items": {
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", kind.to_lowercase()),
                "type": "array",
                "items": reference(&definition_name(group, version, kind)),
            },
            "kind": {"description": KIND_DESC, "type": "string"},
            "metadata": ref_property(LIST_META, LIST_METADATA_DESC),
        },
        "x-kubernetes-group-version-kind": [gvk(group, version, &format!("{kind}List"))],
    })
}

/// Property schemas with a description.
fn string(description: &str) -> Value {
    json!({"description": description, "type": "string"})
}

fn int(description: &str) -> Value {
    json!({"description": description, "type": "integer", "format": "int32"})
}

fn time(description: &str) -> Value {
    json!({"description": description, "type": "string", "format": "date-time"})
}

fn string_map(description: &str) -> Value {
    json!({"description": description, "type": "object", "additionalProperties": {"type": "string", "default": ""}})
}

fn string_list(description: &str) -> Value {
    json!({"description": description, "type": "array", "items": {"type": "string", "default": ""}})
}

/// `ObjectMeta`, described.
pub fn object_meta() -> Value {
    json!({
        "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
        "type": "object",
        "properties": {
            "annotations": string_map("Annotations is an unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata. They are not queryable and should be preserved when modifying objects. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/annotations"),
            "creationTimestamp": time("CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
            "deletionGracePeriodSeconds": json!({"description": "Number of seconds allowed for this object to gracefully terminate before it will be removed from the system. Only set when deletionTimestamp is also set. May only be shortened. Read-only.", "type": "integer", "format": "int64"}),
            "deletionTimestamp": time("DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted. This field is set by the server when a graceful deletion is requested by the user, and is not directly settable by a client. Populated by the system when a graceful deletion is requested. Read-only. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"),
            "finalizers": json!({"description": "Must be empty before the object is deleted from the registry. Each entry is an identifier for the responsible component that will remove the entry from the list. If the deletionTimestamp of the object is non-nil, entries in this list can only be removed.", "type": "array", "items": {"type": "string", "default": ""}, "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"}),
            "generateName": string("GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided. If this field is used, the name returned to the client will be different than the name passed. This value will also be combined with a unique suffix. The provided value has the same validation rules as the Name field, and may be truncated by the length of the suffix required to make the value unique on the server.\n\nApplied only if Name is not specified. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#idempotency"),
            "generation": json!({"description": "A sequence number representing a specific generation of the desired state. Populated by the system. Read-only.", "type": "integer", "format": "int64"}),
            "labels": string_map("Map of string keys and values that can be used to organize and categorize (scope and select) objects. May match selectors of replication controllers and services. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels"),
            "managedFields": json!({"description": "ManagedFields maps workflow-id and version to the set of fields that are managed by that workflow. This is mostly for internal housekeeping, and users typically shouldn't need to set or understand this field. A workflow can be the user's name, a controller's name, or the name of a specific apply path like \"ci-cd\". The set of fields is always in the version that the workflow used when modifying the object.", "type": "array", "items": {"description": "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource that the fieldset applies to.", "type": "object", "properties": {
                "apiVersion": string("APIVersion defines the version of this resource that this field set applies to. The format is \"group/version\" just like the top-level APIVersion field. It is necessary to track the version of a field set because it cannot be automatically converted."),
                "fieldsType": string("FieldsType is the discriminator for the different fields format and version. There is currently only one possible value: \"FieldsV1\""),
                "fieldsV1": json!({"description": "FieldsV1 holds the first JSON version format as described in the \"FieldsV1\" type.", "type": "object"}),
                "manager": string("Manager is an identifier of the workflow managing these fields."),
                "operation": string("Operation is the type of operation which lead to this ManagedFieldsEntry being created. The only valid values for this field are 'Apply' and 'Update'."),
                "subresource": string("Subresource is the name of the subresource used to update that object, or empty string if the object was updated through the main resource. The value of this field is used to distinguish between managers, even if they share the same name. For example, a status update will be distinct from a regular update using the same manager name. Note that the APIVersion field is not related to the Subresource field and it always corresponds to the version of the main resource."),
                "time": time("Time is the timestamp of when the ManagedFields entry was added. The timestamp will also be updated if a field is added, the manager changes any of the owned fields value or removes a field. The timestamp does not update when a field is removed from the entry because another manager took it over."),
            }}, "x-kubernetes-list-type": "atomic"}),
            "name": string("Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"),
            "namespace": string("Namespace defines the space within which each name must be unique. An empty namespace is equivalent to the \"default\" namespace, but \"default\" is the canonical representation. Not all objects are required to be scoped to a namespace - the value of this field for those objects will be empty.\n\nMust be a DNS_LABEL. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces"),
            "ownerReferences": json!({"description": "List of objects depended by this object. If ALL objects in the list have been deleted, this object will be garbage collected. If this object is managed by a controller, then an entry in this list will point to this controller, with the controller field set to true. There cannot be more than one managing controller.", "type": "array", "items": {"description": "OwnerReference contains enough information to let you identify an owning object. An owning object must be in the same namespace as the dependent, or be cluster-scoped, so there is no namespace field.", "type": "object", "required": ["apiVersion", "kind", "name", "uid"], "properties": {
                "apiVersion": string("API version of the referent."),
                "blockOwnerDeletion": json!({"description": "If true, AND if the owner has the \"foregroundDeletion\" finalizer, then the owner cannot be deleted from the key-value store until this reference is removed.", "type": "boolean"}),
                "controller": json!({"description": "If true, this reference points to the managing controller.", "type": "boolean"}),
                "kind": string("Kind of the referent. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"),
                "name": string("Name of the referent. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"),
                "uid": string("UID of the referent. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#uids"),
            }, "x-kubernetes-map-type": "atomic"}, "x-kubernetes-list-map-keys": ["uid"], "x-kubernetes-list-type": "map", "x-kubernetes-patch-merge-key": "uid", "x-kubernetes-patch-strategy": "merge"}),
            "resourceVersion": string("An opaque value that represents the internal version of this object that can be used by clients to determine when objects have changed. May be used for optimistic concurrency, change detection, and the watch operation on a resource or set of resources. Clients must treat these values as opaque and passed unmodified back to the server. They may only be valid for a particular resource or set of resources.\n\nPopulated by the system. Read-only. Value must be treated as opaque by clients and . More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency"),
            "selfLink": string("Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
            "uid": string("UID is the unique in time and space value for this object. It is typically generated by the server on successful creation of a resource and is not allowed to change on PUT operations.\n\nPopulated by the system. Read-only. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#uids"),
        },
    })
}

/// `ListMeta`, described.
pub fn list_meta() -> Value {
    json!({
        "description": "ListMeta describes metadata that synthetic resources must have, including lists and various status objects. A resource may have only one of {ObjectMeta, ListMeta}.",
        "type": "object",
        "properties": {
            "continue": string("continue may be set if the user set a limit on the number of items returned, and indicates that the server has more data available. The value is opaque and may be used to issue another request to the endpoint that served this list to retrieve the next set of available objects. Continuing a consistent list may not be possible if the server configuration has changed or more than a few minutes have passed. The resourceVersion field returned when using this continue value will be identical to the value in the first response, unless you have received this token from an error message."),
            "remainingItemCount": json!({"description": "remainingItemCount is the number of subsequent items in the list which are not included in this list response. If the list request contained label or field selectors, then the number of remaining items is unknown and the field will be left unset and omitted during serialization. If the list is complete (either because it is not chunking or because this is the last chunk), then there are no more remaining items and this field will be left unset and omitted during serialization.", "type": "integer", "format": "int64"}),
            "resourceVersion": string("String that identifies the server's internal version of this object that can be used by clients to determine when objects have changed. Value must be treated as opaque by clients and passed unmodified back to the server. Populated by the system. Read-only. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#concurrency-control-and-consistency"),
            "selfLink": string("Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."),
        },
    })
}

fn label_selector(description: &str) -> Value {
    json!({
        "description": description,
        "type": "object",
        "properties": {
            "matchExpressions": {
                "description": "matchExpressions is a list of label selector requirements. The requirements are ANDed.",
                "type": "array",
                "items": {
                    "description": "A label selector requirement is a selector that contains values, a key, and an operator that relates the key and values.",
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": string("key is the label key that the selector applies to."),
                        "operator": string("operator represents a key's relationship to a set of values. Valid operators are In, NotIn, Exists and DoesNotExist."),
                        "values": string_list("values is an array of string values. If the operator is In or NotIn, the values array must be non-empty. If the operator is Exists or DoesNotExist, the values array must be empty. This array is replaced during a strategic merge patch."),
                    },
                },
                "x-kubernetes-list-type": "atomic",
            },
            "matchLabels": string_map("matchLabels is a map of {key,value} pairs. A single {key,value} in the matchLabels map is equivalent to an element of matchExpressions, whose key field is \"key\", the operator is \"In\", and the values array contains only \"value\". The requirements are ANDed."),
        },
        "x-kubernetes-map-type": "atomic",
    })
}

fn pod_template(description: &str) -> Value {
    json!({
        "description": description,
        "type": "object",
        "properties": {
            "metadata": ref_property(OBJECT_META, METADATA_DESC),
            "spec": {
                "description": "Specification of the desired behavior of the pod. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status",
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "required": ["containers"],
                "properties": {
                    "containers": {
                        "description": "List of containers belonging to the pod. Containers cannot currently be added or removed. There must be at least one container in a Pod. Cannot be updated.",
                        "type": "array",
                        "items": {
                            "description": "A single application container that you want to run within a pod.",
                            "type": "object",
                            "required": ["name"],
                            "x-kubernetes-preserve-unknown-fields": true,
                            "properties": {
                                "name": string("Name of the container specified as a DNS_LABEL. Each container in a pod must have a unique name (DNS_LABEL). Cannot be updated."),
                                "image": string("Container image name. More info: https://kubernetes.io/docs/concepts/containers/images This field is optional to allow higher level config management to default or override container images in workload controllers like Deployments and StatefulSets."),
                            },
                        },
                        "x-kubernetes-list-map-keys": ["name"],
                        "x-kubernetes-list-type": "map",
                    },
                },
            },
        },
    })
}

fn condition_list(description: &str) -> Value {
    json!({
        "description": description,
        "type": "array",
        "items": {
            "type": "object",
            "required": ["type", "status"],
            "properties": {
                "lastTransitionTime": time("Last time the condition transitioned from one status to another."),
                "lastUpdateTime": time("The last time this condition was updated."),
                "message": string("A human readable message indicating details about the transition."),
                "reason": string("The reason for the condition's last transition."),
                "status": string("Status of the condition, one of True, False, Unknown."),
                "type": string("Type of deployment condition."),
            },
        },
        "x-kubernetes-list-map-keys": ["type"],
        "x-kubernetes-list-type": "map",
    })
}

/// Small described schemas of the built-in kinds the sim serves (enough for
/// `kubectl explain` of their main fields); unknown fields are preserved.
/// Other kinds get an open object.
pub fn builtin_schema(group: &str, version: &str, kind: &str) -> Value {
    match (group, version, kind) {
        ("apps", "v1", "Deployment") => json!({
            "description": "Deployment enables declarative updates for Pods and ReplicaSets.",
            "type": "object",
            "properties": {
                "spec": {
                    "description": "Specification of the desired behavior of the Deployment.",
                    "type": "object",
                    "required": ["selector", "template"],
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {
                        "minReadySeconds": int("Minimum number of seconds for which a newly created pod should be ready without any of its container crashing, for it to be considered available. Defaults to 0 (pod will be considered available as soon as it is ready)"),
                        "paused": {"description": "Indicates that the deployment is paused.", "type": "boolean"},
                        "progressDeadlineSeconds": int("The maximum time in seconds for a deployment to make progress before it is considered to be failed. The deployment controller will continue to process failed deployments and a condition with a ProgressDeadlineExceeded reason will be surfaced in the deployment status. Note that progress will not be estimated during the time a deployment is paused. Defaults to 600s."),
                        "replicas": int("Number of desired pods. This is a pointer to distinguish between explicit zero and not specified. Defaults to 1."),
                        "revisionHistoryLimit": int("The number of old ReplicaSets to retain to allow rollback. This is a pointer to distinguish between explicit zero and not specified. Defaults to 10."),
                        "selector": label_selector("Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels."),
                        "strategy": {
                            "description": "The deployment strategy to use to replace existing pods with new ones.",
                            "type": "object",
                            "properties": {
                                "rollingUpdate": {
                                    "description": "Rolling update config params. Present only if DeploymentStrategyType = RollingUpdate.",
                                    "type": "object",
                                    "properties": {
                                        "maxSurge": {"description": "The maximum number of pods that can be scheduled above the desired number of pods. Value can be an absolute number (ex: 5) or a percentage of desired pods (ex: 10%). Defaults to 25%.", "x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                        "maxUnavailable": {"description": "The maximum number of pods that can be unavailable during the update. Value can be an absolute number (ex: 5) or a percentage of desired pods (ex: 10%). Absolute number is calculated from percentage by rounding down. Defaults to 25%.", "x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                    },
                                },
                                "type": {"description": "Type of deployment. Can be \"Recreate\" or \"RollingUpdate\". Default is RollingUpdate.", "type": "string", "enum": ["Recreate", "RollingUpdate"]},
                            },
                        },
                        "template": pod_template("Template describes the pods that will be created. The only allowed template.spec.restartPolicy value is \"Always\"."),
                    },
                },
                "status": {
                    "description": "Most recently observed status of the Deployment.",
                    "type": "object",
                    "properties": {
                        "availableReplicas": int("Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
                        "collisionCount": int("Count of hash collisions for the Deployment. The Deployment controller uses this field as a collision avoidance mechanism when it needs to create the name for the newest ReplicaSet."),
                        "conditions": condition_list("Represents the latest available observations of a deployment's current state."),
                        "observedGeneration": {"description": "The generation observed by the deployment controller.", "type": "integer", "format": "int64"},
                        "readyReplicas": int("readyReplicas is the number of pods targeted by this Deployment with a Ready Condition."),
                        "replicas": int("Total number of non-terminated pods targeted by this deployment (their labels match the selector)."),
                        "unavailableReplicas": int("Total number of unavailable pods targeted by this deployment. This is the total number of pods that are still required for the deployment to have 100% available capacity. They may either be pods that are running but not yet available or pods that still have not been created."),
                        "updatedReplicas": int("Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
                    },
                },
            },
        }),
        ("", "v1", "ConfigMap") => json!({
            "description": "ConfigMap holds configuration data for pods to consume.",
            "type": "object",
            "properties": {
                "binaryData": {"description": "BinaryData contains the binary data. Each key must consist of alphanumeric characters, '-', '_' or '.'. BinaryData can contain byte sequences that are not in the UTF-8 range. The keys stored in BinaryData must not overlap with the ones in the Data field, this is enforced during validation process. Using this field will require 1.10+ apiserver and kubelet.", "type": "object", "additionalProperties": {"type": "string", "format": "byte"}},
                "data": string_map("Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process."),
                "immutable": {"description": "Immutable, if set to true, ensures that data stored in the ConfigMap cannot be updated (only object metadata can be modified). If not set to true, the field can be modified at any time. Defaulted to nil.", "type": "boolean"},
            },
        }),
        ("", "v1", "Namespace") => json!({
            "description": "Namespace provides a scope for Names. Use of multiple namespaces is optional.",
            "type": "object",
            "properties": {
                "spec": {"description": "Spec defines the behavior of the Namespace. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status", "type": "object", "properties": {
                    "finalizers": string_list("Finalizers is an opaque list of values that must be empty to permanently remove object from storage. More info: https://kubernetes.io/docs/tasks/administer-cluster/namespaces/"),
                }},
                "status": {"description": "Status describes the current status of a Namespace. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status", "type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {
                    "phase": {"description": "Phase is the current lifecycle phase of the namespace. More info: https://kubernetes.io/docs/tasks/administer-cluster/namespaces/", "type": "string", "enum": ["Active", "Terminating"]},
                }},
            },
        }),
        ("coordination.k8s.io", "v1", "Lease") => json!({
            "description": "Lease defines a lease concept.",
            "type": "object",
            "properties": {
                "spec": {"description": "spec contains the specification of the Lease. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and-status", "type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {
                    "acquireTime": json!({"description": "acquireTime is a time when the current lease was acquired.", "type": "string", "format": "date-time"}),
                    "holderIdentity": string("holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field."),
                    "leaseDurationSeconds": int("leaseDurationSeconds is a duration that candidates for a lease need to wait to force acquire it. This is measured against the time of last observed renewTime."),
                    "leaseTransitions": int("leaseTransitions is the number of transitions of a lease between holders."),
                    "renewTime": json!({"description": "renewTime is a time when the current holder of a lease has last updated the lease.", "type": "string", "format": "date-time"}),
                }},
            },
        }),
        ("", "v1", "Event") | ("events.k8s.io", "v1", "Event") => json!({
            "description": "Event is a report of an event somewhere in the cluster. Events have a limited retention time and triggers and messages may evolve with time. Event consumers should not rely on the timing of an event with a given Reason reflecting a consistent underlying trigger, or the continued existence of events with that Reason. Events should be treated as informative, best-effort, supplemental data.",
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {
                "message": string("A human-readable description of the status of this operation."),
                "reason": string("This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
                "type": string("Type of this event (Normal, Warning), new types could be added in the future"),
            },
        }),
        _ => json!({
            "description": format!("{kind} is a built-in kind served by the simulated API server."),
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        }),
    }
}
