//! The engine's verdict against `kubectl rollout status` on the crafted Deployment,
//! StatefulSet and DaemonSet states of `kubectl_verdicts.yaml`, whose kubectl verdicts were recorded with the real kubectl (and
//! are re-derived with it by `tests/readiness_kubectl.rs`). Each state goes through the same
//! parsing as the operator's cache, so the first-`Progressing`-condition rule and an absent
//! `spec.replicas` are judged from the JSON exactly as served.
//!
//! The one deliberate difference, tested on every row: the engine also waits until the status
//! has observed the generation of its own restart, so a cached object from before the restart
//! patch, fully rolled out at its old generation, never reads as Ready.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Verdict, ready_message, verdict};
use crate::crd::WorkloadKind;
use crate::engine::observed::DeploymentSnapshot;

/// The table, as kubectl's verdicts were recorded.
const TABLE: &str = include_str!("kubectl_verdicts.yaml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    name: String,
    #[serde(default)]
    kind: WorkloadKind,
    what: String,
    generation: i64,
    spec: Value,
    #[serde(default)]
    status: Option<Value>,
    kubectl: Recorded,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Recorded {
    result: String,
    message: String,
}

fn rows() -> Vec<Row> {
    serde_saphyr::from_str(TABLE).expect("kubectl_verdicts.yaml parses")
}

/// The workload of a row, parsed as the operator's cache parses what the API server sends.
fn snapshot(row: &Row) -> DeploymentSnapshot {
    let mut object = json!({
        "apiVersion": "apps/v1",
        "kind": row.kind.as_str(),
        "metadata": {"name": row.name, "namespace": "arcgis", "generation": row.generation},
        "spec": row.spec,
    });
    if let Some(status) = &row.status {
        object["status"] = status.clone();
    }
    let snapshot: DeploymentSnapshot = serde_json::from_value(object).expect("a snapshot");
    DeploymentSnapshot { kind: row.kind, ..snapshot }
}

/// The engine's verdict in the words kubectl prints.
fn as_kubectl(workload: &DeploymentSnapshot, verdict: Verdict) -> Recorded {
    let (result, message) = match verdict {
        Verdict::Ready => ("success", ready_message(workload)),
        Verdict::Waiting(message) => ("waiting", message),
        Verdict::Failed(message) => ("failure", message),
    };
    Recorded { result: result.to_owned(), message }
}

#[test]
fn the_table_holds_distinct_states_of_every_kind_in_every_outcome() {
    let rows = rows();
    let count = |kind| rows.iter().filter(|row| row.kind == kind).count();
    assert_eq!(
        [WorkloadKind::Deployment, WorkloadKind::StatefulSet, WorkloadKind::DaemonSet].map(count),
        [42, 14, 8]
    );
    let mut names: Vec<&str> = rows.iter().map(|row| row.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), rows.len(), "row names are unique");
    for kind in WorkloadKind::ALL {
        for result in ["success", "waiting", "failure"] {
            assert!(
                rows.iter().any(|row| row.kind == kind && row.kubectl.result == result),
                "no {kind} {result} row"
            );
        }
    }
    assert!(rows.iter().any(|row| row.spec.get("replicas").is_none()), "no absent spec.replicas");
}

#[test]
fn the_engine_agrees_with_kubectl_on_every_state() {
    let mut disagreements = Vec::new();
    for row in rows() {
        let deployment = snapshot(&row);
        // Judged at the Deployment's own generation: kubectl's rule exactly. So is a restart
        // of an earlier generation, the workload's spec edited again since: the workload's
        // own generation must then be observed, as kubectl requires.
        for restart in [row.generation, 1].into_iter().filter(|restart| *restart <= row.generation)
        {
            let engine = as_kubectl(&deployment, verdict(&deployment, restart));
            if engine != row.kubectl {
                disagreements.push(format!(
                    "{} ({}), our restart at generation {restart}: kubectl {:?}, engine {:?}",
                    row.name, row.what, row.kubectl, engine
                ));
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn the_one_deliberate_difference_is_waiting_for_our_own_restart() {
    for row in
        rows().into_iter().filter(|row| row.kubectl.result != "failure" || row.kind.is_deployment())
    {
        let observe = match row.kind {
            WorkloadKind::Deployment => "Waiting for deployment spec update to be observed...",
            WorkloadKind::StatefulSet => "Waiting for statefulset spec update to be observed...",
            WorkloadKind::DaemonSet => "Waiting for daemon set spec update to be observed...",
        };
        let deployment = snapshot(&row);
        let observed = deployment.rollout.as_ref().and_then(|r| r.observed_generation);
        // Our restart produced a generation the cached object has not reached: kubectl
        // judges the cached object (it knows of no restart); the engine waits.
        let restart = row.generation.max(observed.unwrap_or(0)) + 1;
        assert_eq!(
            verdict(&deployment, restart),
            Verdict::Waiting(observe.to_owned()),
            "{} ({}), where kubectl says {:?}",
            row.name,
            row.what,
            row.kubectl
        );
    }
}
