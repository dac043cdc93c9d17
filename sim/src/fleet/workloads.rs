//! The generated StatefulSets and DaemonSets of the fleet: ArcGIS-like data
//! stores (relational, object, spatiotemporal index, queue, in-memory and
//! graph stores, one StatefulSet each with a headless Service name and a
//! data volume claim) and node agents (log collector, metrics exporter,
//! image pre-puller, CSI node plugin, one DaemonSet each), with the labels
//! of the generated Deployments so that one selector covers the fleet.

use serde_json::{Value, json};

use crate::util::Rng;

/// Data stores: name segment, type label, image.
const STORES: &[(&str, &str, &str)] = &[
    ("relational-store", "RelationalStore", "arcgis-postgres"),
    ("object-store", "ObjectStore", "arcgis-minio"),
    ("spatiotemporal-index-store", "SpatiotemporalIndexStore", "arcgis-elasticsearch"),
    ("queue-store", "QueueStore", "arcgis-rabbitmq"),
    ("in-memory-store", "InMemoryStore", "arcgis-ignite"),
    ("graph-store", "GraphStore", "arcgis-graph-store"),
];

/// Node agents: name segment, type label, image.
const AGENTS: &[(&str, &str, &str)] = &[
    ("log-collector", "LogCollector", "arcgis-fluent-bit"),
    ("metrics-exporter", "MetricsExporter", "arcgis-node-exporter"),
    ("image-prepuller", "ImagePrepuller", "arcgis-prepuller"),
    ("csi-node", "CsiNode", "arcgis-csi-node"),
];

/// What the generated workloads of one kind share: name, id, type label,
/// the labels of the object and its pods, the image and its version.
struct Identity {
    name: String,
    id: String,
    type_label: &'static str,
    image: String,
    labels: Value,
    template_labels: Value,
    match_labels: Value,
}

impl Identity {
    /// The workload's metadata: name, namespace, labels, service path.
    fn metadata(&self, namespace: &str, index: usize) -> Value {
        let path = format!("System/{}{index}.{}", self.type_label, self.type_label);
        json!({
            "name": self.name,
            "namespace": namespace,
            "labels": self.labels,
            "annotations": {"arcgis.com/service-path": path},
        })
    }
}

fn identity(
    rng: &mut Rng,
    kinds: &[(&'static str, &'static str, &'static str)],
    index: usize,
) -> Identity {
    let (segment, type_label, image) = kinds[rng.below(kinds.len() as u64) as usize];
    let id = format!("{:08x}", rng.next_u64() as u32);
    let name = format!("arcgis-{segment}-{id}");
    let version = ["11.3.0.5814", "11.4.0.6402", "11.5.0.7121"][rng.below(3) as usize];
    let service_name = format!("System.{type_label}{index}");
    Identity {
        labels: json!({
            "app.kubernetes.io/managed-by": "arcgis",
            "app.kubernetes.io/part-of": "arcgis-enterprise",
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/instance": id,
            "arcgis/service-type": type_label,
            "arcgis/service-name": service_name,
            "arcgis/service-id": id,
        }),
        template_labels: json!({
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/instance": id,
            "app.kubernetes.io/managed-by": "arcgis",
            "arcgis/service-type": type_label,
        }),
        match_labels: json!({"app.kubernetes.io/name": name, "app.kubernetes.io/instance": id}),
        image: format!("docker.io/esridocker/{image}:{version}"),
        name,
        id,
        type_label,
    }
}

/// One generated data-store StatefulSet (deterministic from `rng`).
pub fn stateful_set(rng: &mut Rng, namespace: &str, index: usize) -> Value {
    let identity = identity(rng, STORES, index);
    let replicas = 1 + rng.below(3);
    json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": identity.metadata(namespace, index),
        "spec": {
            "replicas": replicas,
            "serviceName": format!("{}-headless", identity.name),
            "selector": {"matchLabels": identity.match_labels},
            "template": {
                "metadata": {"labels": identity.template_labels},
                "spec": {
                    "serviceAccountName": "arcgis-datastore",
                    "containers": [{
                        "name": "main-container",
                        "image": identity.image,
                        "ports": [{"name": "store", "containerPort": 9876, "protocol": "TCP"}],
                        "env": [
                            {"name": "STORE_ID", "value": identity.id},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        ],
                        "resources": {
                            "requests": {"cpu": "500m", "memory": "2Gi"},
                            "limits": {"cpu": "2", "memory": "4Gi"},
                        },
                        "readinessProbe": {
                            "tcpSocket": {"port": 9876},
                            "initialDelaySeconds": 30,
                            "periodSeconds": 10,
                        },
                        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/arcgis/data"}],
                    }],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "16Gi"}},
                },
            }],
        },
    })
}

/// One generated node-agent DaemonSet (deterministic from `rng`).
pub fn daemon_set(rng: &mut Rng, namespace: &str, index: usize) -> Value {
    let identity = identity(rng, AGENTS, index);
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": identity.metadata(namespace, index),
        "spec": {
            "selector": {"matchLabels": identity.match_labels},
            "template": {
                "metadata": {"labels": identity.template_labels},
                "spec": {
                    "serviceAccountName": "arcgis-node-agent",
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [{
                        "name": "agent",
                        "image": identity.image,
                        "env": [
                            {"name": "AGENT_ID", "value": identity.id},
                            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                        ],
                        "resources": {
                            "requests": {"cpu": "50m", "memory": "64Mi"},
                            "limits": {"cpu": "200m", "memory": "256Mi"},
                        },
                        "volumeMounts": [{"name": "host-logs", "mountPath": "/var/log", "readOnly": true}],
                    }],
                    "volumes": [{"name": "host-logs", "hostPath": {"path": "/var/log"}}],
                },
            },
        },
    })
}
