//! The generated cluster: namespaces (`default`, `kube-system`, the fleet
//! namespace), the default RBAC policy and ServiceAccounts, the nodes when
//! `SimConfig::nodes` asks for them (`nodes`, sized to every generated
//! pod), and a deterministic fleet of ArcGIS-like service Deployments
//! (names, labels, realistic pod templates with CPU and memory requests,
//! replica counts, failure knobs), data-store StatefulSets and node-agent
//! DaemonSets (`workloads`), created through the write pipeline and marked
//! fully rolled out.

mod nodes;
mod workloads;

use nodes::DEFAULT_SPARE_CPU_PER_NODE_MILLIS;

use serde_json::{Value, json};

use crate::SimConfig;
use crate::auth;
use crate::controllers::{
    self, FAIL_ANNOTATION, REVISION_ANNOTATION, materialize_settled, rolled_out_status,
    settle_workload,
};
use crate::error::SimError;
use crate::state::SimState;
use crate::store::{EventType, StoreInner};
use crate::util::{Rng, metadata_str, now_ms};
use crate::write::{self, WriteOptions};

/// ArcGIS service types: URL segment, type label and image name.
const TYPES: &[(&str, &str, &str)] = &[
    ("mapserver", "MapServer", "arcgis-mapserver"),
    ("featureserver", "FeatureServer", "arcgis-featureserver"),
    ("gpserver", "GPServer", "arcgis-gpserver"),
    ("imageserver", "ImageServer", "arcgis-imageserver"),
    ("geocodeserver", "GeocodeServer", "arcgis-geocodeserver"),
    ("sceneserver", "SceneServer", "arcgis-sceneserver"),
    ("vectortileserver", "VectorTileServer", "arcgis-vectortileserver"),
    ("geometryserver", "GeometryServer", "arcgis-geometryserver"),
];

const FOLDERS: &[&str] =
    &["Hosted", "Utilities", "Basemaps", "Planning", "Transport", "Water", "Parcels", "Imagery"];
const WORDS: &[&str] = &[
    "Roads",
    "Parcels",
    "Hydrants",
    "Zoning",
    "Elevation",
    "Landuse",
    "Buildings",
    "Census",
    "Rivers",
    "Geocoder",
    "Printing",
    "Routing",
    "Trails",
    "Sewer",
    "Stormwater",
    "Addresses",
    "Orthophoto",
    "Contours",
    "Boundaries",
    "Schools",
];

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// One generated Deployment (deterministic from `rng`).
pub fn deployment(rng: &mut Rng, namespace: &str, index: usize, progress_deadline: i32) -> Value {
    let (service_type, type_label, image) = TYPES[rng.below(TYPES.len() as u64) as usize];
    let id_number = rng.next_u64() as u32;
    let id = format!("{id_number:08x}");
    let suffix = rng.string(b"abcdefghijklmnopqrstuvwxyz0123456789", 5);
    let name = format!("arcgis-{id}-{service_type}-{suffix}");
    let folder = FOLDERS[rng.below(FOLDERS.len() as u64) as usize];
    let word = WORDS[rng.below(WORDS.len() as u64) as usize];
    let service_name = format!("{folder}/{word}{index}");
    let replicas = 1 + rng.below(3);
    let version = ["11.3.0.5814", "11.4.0.6402", "11.5.0.7121"][rng.below(3) as usize];
    // 100m to 500m in steps of 50m, from the id (no further draws, so a
    // seed keeps naming the same fleet).
    let cpu = format!("{}m", 100 + 50 * (id_number % 9));
    let memory = match service_type {
        "imageserver" | "gpserver" => "2Gi",
        "mapserver" | "featureserver" => "1Gi",
        _ => "512Mi",
    };
    let match_labels = json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": id,
    });
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "arcgis",
                "app.kubernetes.io/part-of": "arcgis-enterprise",
                "app.kubernetes.io/name": name,
                "app.kubernetes.io/instance": id,
                "arcgis/service-type": type_label,
                "arcgis/service-name": service_name.replace('/', "."),
                "arcgis/service-id": id,
            },
            "annotations": {
                "arcgis.com/service-path": format!("{service_name}.{type_label}"),
            },
        },
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": progress_deadline,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": match_labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {
                    "labels": {
                        "app.kubernetes.io/name": name,
                        "app.kubernetes.io/instance": id,
                        "app.kubernetes.io/managed-by": "arcgis",
                        "arcgis/service-type": type_label,
                    },
                },
                "spec": {
                    "serviceAccountName": "arcgis-service",
                    "containers": [{
                        "name": "main-container",
                        "image": format!("docker.io/esridocker/{image}:{version}"),
                        "ports": [{"name": "https", "containerPort": 11443, "protocol": "TCP"}],
                        "env": [
                            {"name": "SERVICE_NAME", "value": service_name},
                            {"name": "SERVICE_TYPE", "value": type_label},
                            {"name": "SERVICE_ID", "value": id},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "JAVA_OPTS", "value": "-Xmx768m"},
                        ],
                        "resources": {
                            "requests": {"cpu": cpu, "memory": memory},
                            "limits": {"cpu": "2", "memory": "4Gi"},
                        },
                        "readinessProbe": {
                            "httpGet": {"path": "/arcgis/rest/info/healthcheck", "port": 11443, "scheme": "HTTPS"},
                            "initialDelaySeconds": 20,
                            "periodSeconds": 10,
                        },
                        "livenessProbe": {
                            "tcpSocket": {"port": 11443},
                            "initialDelaySeconds": 60,
                            "periodSeconds": 30,
                        },
                        "volumeMounts": [
                            {"name": "config", "mountPath": "/arcgis/config", "readOnly": true},
                            {"name": "tmp", "mountPath": "/tmp"},
                        ],
                    }],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "arcgis-service-config"}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    })
}

/// The default RBAC policy, and the `default` ServiceAccount of each
/// namespace (which the ServiceAccount controller creates for later ones).
fn seed_access_control(
    store: &mut StoreInner,
    sim: &SimState,
    namespaces: &[String],
) -> Result<(), SimError> {
    let system = WriteOptions::internal("kube-apiserver");
    for object in auth::bootstrap_policy() {
        let plural =
            if object["kind"] == "ClusterRole" { "clusterroles" } else { "clusterrolebindings" };
        if let Some(def) = store.registry.get(auth::RBAC_GROUP, "v1", plural) {
            write::create(store, &sim.rng, &def, None, object, &system)?;
        }
    }
    let controller = WriteOptions::internal("kube-controller-manager");
    if let Some(def) = store.registry.get("", "v1", "serviceaccounts") {
        for namespace in namespaces {
            let account = controllers::default_service_account(namespace);
            write::create(store, &sim.rng, &def, Some(namespace), account, &controller)?;
        }
    }
    Ok(())
}

/// Annotates a generated workload [`FAIL_ANNOTATION`].
fn mark_failing(workload: &mut Value) {
    if let Some(annotations) =
        workload.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut)
    {
        annotations.insert(FAIL_ANNOTATION.into(), json!("true"));
    }
}

/// Sets what `config` fixes of a generated Deployment: its replicas
/// (`SimConfig::deployment_replicas`) and its container's CPU request
/// (`deployment_cpu_millis`), after the draws, so that a seed still names
/// the same fleet.
fn apply_fixed_shape(deployment: &mut Value, config: &SimConfig) {
    if let Some(replicas) = config.deployment_replicas
        && let Some(spec) = deployment.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.insert("replicas".into(), json!(replicas));
    }
    if let Some(millis) = config.deployment_cpu_millis
        && let Some(requests) = deployment
            .pointer_mut("/spec/template/spec/containers/0/resources/requests")
            .and_then(Value::as_object_mut)
    {
        requests.insert("cpu".into(), json!(format!("{millis}m")));
    }
}

/// Creates the namespaces and the fleet in the store.
pub fn seed(sim: &SimState, config: &SimConfig) -> Result<(), SimError> {
    let mut store = sim.store.lock();
    let (Some(namespace_def), Some(deployment_def)) = (
        store.registry.get("", "v1", "namespaces"),
        store.registry.get("apps", "v1", "deployments"),
    ) else {
        return Ok(());
    };
    let system = WriteOptions::internal("kube-apiserver");
    let mut names = vec!["default".to_string(), "kube-system".to_string()];
    if config.nodes.is_some() {
        names.push(nodes::NODE_LEASE_NAMESPACE.to_string());
    }
    if !names.contains(&config.namespace) {
        names.push(config.namespace.clone());
    }
    for name in &names {
        write::create(&mut store, &sim.rng, &namespace_def, None, namespace(name), &system)?;
    }
    seed_access_control(&mut store, sim, &names)?;
    let mut rng = Rng::new(config.seed);
    // The failing workloads are drawn among all of them: Deployments first,
    // then StatefulSets, then DaemonSets.
    let total = config.deployments + config.stateful_sets + config.daemon_sets;
    let mut failing = vec![false; total];
    let mut chosen = 0;
    while chosen < config.fail.min(total) {
        let index = rng.below(total as u64) as usize;
        if !failing[index] {
            failing[index] = true;
            chosen += 1;
        }
    }
    let deployer = WriteOptions::internal("arcgis-deployer");
    let with_objects = config.workload_objects && config.deployments <= config.fleet_objects_limit;
    let now = now_ms();
    let mut fleet: Vec<Value> = (0..config.deployments)
        .map(|index| {
            let mut generated =
                deployment(&mut rng, &config.namespace, index, config.progress_deadline_seconds);
            apply_fixed_shape(&mut generated, config);
            generated
        })
        .collect();
    let mut stateful_sets: Vec<Value> = (0..config.stateful_sets)
        .map(|index| workloads::stateful_set(&mut rng, &config.namespace, index))
        .collect();
    let mut daemon_sets: Vec<Value> = (0..config.daemon_sets)
        .map(|index| workloads::daemon_set(&mut rng, &config.namespace, index))
        .collect();
    let generated = fleet.iter_mut().chain(&mut stateful_sets).chain(&mut daemon_sets);
    for (workload, fail) in generated.zip(&failing) {
        if *fail {
            mark_failing(workload);
        }
    }
    // Nodes sized for every generated pod: the Deployments' and the
    // StatefulSets' replicas, and each DaemonSet's pod on every node.
    let replicated: Vec<Value> = fleet.iter().chain(&stateful_sets).cloned().collect();
    let node_plan = config.nodes.map(|count| {
        let spare = config
            .spare_cpu_millis
            .unwrap_or(DEFAULT_SPARE_CPU_PER_NODE_MILLIS * count.max(1) as u64);
        nodes::plan(count, spare, &replicated, &daemon_sets)
    });
    if let Some(plan) = &node_plan {
        nodes::register(sim, &mut store, plan, config.seed)?;
    }
    for (index, generated) in fleet.into_iter().enumerate() {
        let mut created = write::create(
            &mut store,
            &sim.rng,
            &deployment_def,
            Some(&config.namespace),
            generated,
            &deployer,
        )?;
        let status = rolled_out_status(&created, now);
        if let Some(fields) = created.as_object_mut() {
            fields.insert("status".into(), status);
        }
        if with_objects
            && let Some(annotations) = created
                .pointer_mut("/metadata")
                .and_then(Value::as_object_mut)
                .map(|metadata| metadata.entry("annotations").or_insert_with(|| json!({})))
                .and_then(Value::as_object_mut)
        {
            annotations.insert(REVISION_ANNOTATION.into(), json!("1"));
        }
        // Committed directly: a status the controller would have written.
        let stored = store.commit(&deployment_def.gr(), created, EventType::Modified);
        let placed = node_plan.as_ref().map(|plan| plan.nodes_of(index));
        if with_objects {
            materialize_settled(sim, &mut store, &stored, placed.as_deref());
        } else if let (Some(plan), Some(nodes)) = (&node_plan, placed) {
            // Its pods are made on its first rollout; until then they hold
            // their share of the nodes.
            let key =
                (config.namespace.clone(), metadata_str(&stored, "name").unwrap_or("").to_string());
            let requests = plan.requests[index];
            sim.node_cache().reserve(key, nodes.into_iter().map(|node| (node, requests)).collect());
        }
    }
    let workload_defs = (
        store.registry.get("apps", "v1", "statefulsets"),
        store.registry.get("apps", "v1", "daemonsets"),
    );
    if let (Some(stateful_set_def), Some(daemon_set_def)) = workload_defs {
        let namespace = Some(config.namespace.as_str());
        // StatefulSets' pods run where the plan put them; DaemonSets' pods
        // go to every node (through the scheduler, with nodes), whose room
        // the plan left for them.
        for (index, generated) in stateful_sets.into_iter().enumerate() {
            let created = write::create(
                &mut store,
                &sim.rng,
                &stateful_set_def,
                namespace,
                generated,
                &deployer,
            )?;
            let placed = node_plan.as_ref().map(|plan| plan.nodes_of(config.deployments + index));
            settle_workload(sim, &mut store, &created, placed.as_deref());
        }
        for generated in daemon_sets {
            let created = write::create(
                &mut store,
                &sim.rng,
                &daemon_set_def,
                namespace,
                generated,
                &deployer,
            )?;
            settle_workload(sim, &mut store, &created, None);
        }
    }
    // The seeding's own events are history no client saw; a fresh server's
    // watch cache starts from its current state too.
    store.compact();
    Ok(())
}
