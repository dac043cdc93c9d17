//! The generated cluster: namespaces (`default`, `kube-system`, the fleet
//! namespace) and a deterministic fleet of ArcGIS-like service Deployments
//! (names, labels, realistic pod templates, replica counts, failure knobs),
//! created through the normal create path and marked fully rolled out.

use serde_json::{Value, json};

use crate::SimConfig;
use crate::api::{WriteOpts, persist_create};
use crate::controller::FAIL_ANNOTATION;
use crate::error::SimError;
use crate::rollout;
use crate::server::Sim;
use crate::store::EventType;
use crate::util::{Rng, now_ms};

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

fn ns_object(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// One generated Deployment (deterministic from `rng`).
pub fn deployment(rng: &mut Rng, namespace: &str, index: usize, progress_deadline: i32) -> Value {
    let (ty, ty_label, image) = TYPES[rng.below(TYPES.len() as u64) as usize];
    let id = format!("{:08x}", rng.next_u64() as u32);
    let suffix = rng.string(b"abcdefghijklmnopqrstuvwxyz0123456789", 5);
    let name = format!("arcgis-{id}-{ty}-{suffix}");
    let folder = FOLDERS[rng.below(FOLDERS.len() as u64) as usize];
    let word = WORDS[rng.below(WORDS.len() as u64) as usize];
    let service_name = format!("{folder}/{word}{index}");
    let replicas = 1 + rng.below(3);
    let version = ["11.3.0.5814", "11.4.0.6402", "11.5.0.7121"][rng.below(3) as usize];
    let (cpu, mem) = match ty {
        "imageserver" | "gpserver" => ("1", "2Gi"),
        "mapserver" | "featureserver" => ("500m", "1Gi"),
        _ => ("250m", "512Mi"),
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
                "arcgis/service-type": ty_label,
                "arcgis/service-name": service_name.replace('/', "."),
                "arcgis/service-id": id,
            },
            "annotations": {
                "arcgis.com/service-path": format!("{service_name}.{ty_label}"),
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
                        "arcgis/service-type": ty_label,
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
                            {"name": "SERVICE_TYPE", "value": ty_label},
                            {"name": "SERVICE_ID", "value": id},
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "JAVA_OPTS", "value": "-Xmx768m"},
                        ],
                        "resources": {
                            "requests": {"cpu": cpu, "memory": mem},
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

/// Creates namespaces and the fleet in the store.
pub fn seed(sim: &Sim, config: &SimConfig) -> Result<(), SimError> {
    let mut st = sim.store.lock();
    let reg = &st.registry;
    let (Some(ns_def), Some(dep_def)) =
        (reg.get("", "v1", "namespaces"), reg.get("apps", "v1", "deployments"))
    else {
        return Ok(());
    };
    let opts = WriteOpts {
        manager: "kube-apiserver".into(),
        sub: None,
        dry_run: false,
        track: true,
        strict: false,
    };
    let mut names = vec!["default".to_string(), "kube-system".to_string()];
    if !names.contains(&config.namespace) {
        names.push(config.namespace.clone());
    }
    for n in &names {
        persist_create(sim, &mut st, &ns_def, None, ns_object(n), &opts)?;
    }
    let mut rng = Rng::new(config.seed);
    let mut failing = vec![false; config.deployments];
    let mut chosen = 0;
    while chosen < config.fail.min(config.deployments) {
        let i = rng.below(config.deployments as u64) as usize;
        if !failing[i] {
            failing[i] = true;
            chosen += 1;
        }
    }
    let dep_opts = WriteOpts { manager: "arcgis-deployer".into(), ..opts };
    let now = now_ms();
    for (i, fail) in failing.iter().enumerate() {
        let mut d = deployment(&mut rng, &config.namespace, i, config.progress_deadline_seconds);
        if *fail
            && let Some(a) = d.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut)
        {
            a.insert(FAIL_ANNOTATION.into(), json!("true"));
        }
        let created =
            persist_create(sim, &mut st, &dep_def, Some(&config.namespace), d, &dep_opts)?;
        // Fully rolled out: the first rollout finished a while ago.
        let plan = rollout::begin(&created, None, now.saturating_sub(60_000), 0, false);
        let status = rollout::status_at(&created, &plan, now);
        let mut done = created;
        if let Some(m) = done.as_object_mut() {
            m.insert("status".into(), status);
        }
        st.commit(&dep_def.gr(), done, EventType::Modified);
    }
    Ok(())
}
