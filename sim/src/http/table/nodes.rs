//! The Node printer (`printNode`): Name, Status (`Ready`, `NotReady` or
//! `Unknown`, plus `SchedulingDisabled` when cordoned), Roles (from
//! `node-role.kubernetes.io/<role>` and `kubernetes.io/role` labels, else
//! `<none>`), Age, Version; and with `-o wide` Internal-IP, External-IP,
//! OS-Image, Kernel-Version, Container-Runtime.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::column_def::{CellSource, ColumnDef, NodeCell, age_column, field_doc, name_column};

/// The columns of `kubectl get nodes`.
pub fn columns() -> Vec<ColumnDef> {
    let info = |field: &str| field_doc("io.k8s.api.core.v1.NodeSystemInfo", field);
    let addresses = field_doc("io.k8s.api.core.v1.NodeStatus", "addresses");
    let column = |name: &str, description: &str, cell: NodeCell| {
        ColumnDef::new(name, "string", description, CellSource::Node(cell))
    };
    vec![
        name_column(),
        column("Status", "The status of the node", NodeCell::Status),
        column("Roles", "The roles of the node", NodeCell::Roles),
        age_column(),
        column("Version", &info("kubeletVersion"), NodeCell::Version),
        column("Internal-IP", &addresses, NodeCell::InternalIp).wide(),
        column("External-IP", &addresses, NodeCell::ExternalIp).wide(),
        column("OS-Image", &info("osImage"), NodeCell::OsImage).wide(),
        column("Kernel-Version", &info("kernelVersion"), NodeCell::KernelVersion).wide(),
        column("Container-Runtime", &info("containerRuntimeVersion"), NodeCell::ContainerRuntime)
            .wide(),
    ]
}

fn address(node: &Value, kind: &str) -> String {
    node.pointer("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|addresses| {
            addresses.iter().find(|address| address["type"] == kind)?["address"].as_str()
        })
        .unwrap_or("<none>")
        .to_string()
}

fn info(node: &Value, field: &str) -> String {
    match node.pointer(&format!("/status/nodeInfo/{field}")).and_then(Value::as_str) {
        Some(text) if !text.is_empty() => text.to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// One Node cell.
pub fn cell(node: &Value, cell: NodeCell) -> Value {
    match cell {
        NodeCell::Status => {
            let ready = node.pointer("/status/conditions").and_then(Value::as_array).and_then(
                |conditions| conditions.iter().find(|condition| condition["type"] == "Ready"),
            );
            let mut status = vec![match ready {
                Some(condition) if condition["status"] == "True" => "Ready",
                Some(_) => "NotReady",
                None => "Unknown",
            }];
            if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                status.push("SchedulingDisabled");
            }
            json!(status.join(","))
        }
        NodeCell::Roles => {
            let mut roles = BTreeSet::new();
            if let Some(labels) = node.pointer("/metadata/labels").and_then(Value::as_object) {
                for (key, value) in labels {
                    if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
                        if !role.is_empty() {
                            roles.insert(role.to_string());
                        }
                    } else if key == "kubernetes.io/role"
                        && let Some(role) = value.as_str().filter(|role| !role.is_empty())
                    {
                        roles.insert(role.to_string());
                    }
                }
            }
            let roles: Vec<String> = roles.into_iter().collect();
            json!(if roles.is_empty() { "<none>".to_string() } else { roles.join(",") })
        }
        NodeCell::Version => json!(
            node.pointer("/status/nodeInfo/kubeletVersion").and_then(Value::as_str).unwrap_or("")
        ),
        NodeCell::InternalIp => json!(address(node, "InternalIP")),
        NodeCell::ExternalIp => json!(address(node, "ExternalIP")),
        NodeCell::OsImage => json!(info(node, "osImage")),
        NodeCell::KernelVersion => json!(info(node, "kernelVersion")),
        NodeCell::ContainerRuntime => json!(info(node, "containerRuntimeVersion")),
    }
}
