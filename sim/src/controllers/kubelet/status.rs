//! A pod's status as the kubelet writes it, from what its containers report:
//! each container's state (waiting with a reason, running, terminated with
//! exit code and reason), last termination, restart count, readiness and
//! `started`; the pod's phase (`getPhase`: Pending until every container has
//! started once, then Running, terminal only when nothing will restart),
//! its conditions with their transition times kept, and its IPs.

use serde_json::{Map, Value, json};

/// A time as `metav1.Time` (seconds).
pub fn time(at: jiff::Timestamp) -> String {
    jiff::Timestamp::from_second(at.as_second()).unwrap_or(at).to_string()
}

/// How a container instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    pub signal: Option<i32>,
    /// `Completed`, `Error`, `StartError`.
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<jiff::Timestamp>,
    pub finished_at: jiff::Timestamp,
    pub container_id: Option<String>,
}

impl Terminated {
    fn to_json(&self) -> Value {
        let mut state = json!({
            "exitCode": self.exit_code,
            "reason": self.reason,
            "finishedAt": time(self.finished_at),
        });
        if let Some(signal) = self.signal {
            state["signal"] = json!(signal);
        }
        if let Some(message) = &self.message {
            state["message"] = json!(message);
        }
        state["startedAt"] = self.started_at.map(time).map_or(Value::Null, Value::String);
        if let Some(id) = &self.container_id {
            state["containerID"] = json!(id);
        }
        state
    }
}

/// A container's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Waiting { reason: String, message: Option<String> },
    Running { started_at: jiff::Timestamp },
    Terminated(Terminated),
}

impl Default for State {
    fn default() -> Self {
        State::Waiting { reason: "ContainerCreating".into(), message: None }
    }
}

/// What one container reports to its pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerReport {
    pub state: State,
    pub last_terminated: Option<Terminated>,
    pub restart_count: u32,
    pub ready: bool,
    pub started: bool,
    /// The instance the state is about (running, or the one that ended).
    pub container_id: Option<String>,
    /// The image's id, once it "was pulled".
    pub image_id: Option<String>,
}

impl ContainerReport {
    fn to_json(&self, name: &str, image: &str) -> Value {
        let state = match &self.state {
            State::Waiting { reason, message } => {
                let mut waiting = json!({"reason": reason});
                if let Some(message) = message {
                    waiting["message"] = json!(message);
                }
                json!({"waiting": waiting})
            }
            State::Running { started_at } => json!({"running": {"startedAt": time(*started_at)}}),
            State::Terminated(terminated) => json!({"terminated": terminated.to_json()}),
        };
        let last = self
            .last_terminated
            .as_ref()
            .map_or_else(|| json!({}), |terminated| json!({"terminated": terminated.to_json()}));
        let mut status = json!({
            "name": name,
            "image": image,
            "imageID": self.image_id.clone().unwrap_or_default(),
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.started,
            "state": state,
            "lastState": last,
        });
        if let Some(id) = &self.container_id {
            status["containerID"] = json!(id);
        }
        status
    }

    /// Counted as `getPhase` counts: running, waiting for a first start, or stopped.
    fn phase_class(&self) -> PhaseClass {
        match &self.state {
            State::Running { .. } => PhaseClass::Running,
            State::Terminated(terminated) => PhaseClass::Stopped(terminated.exit_code == 0),
            State::Waiting { .. } => match &self.last_terminated {
                Some(last) => PhaseClass::Stopped(last.exit_code == 0),
                None => PhaseClass::Waiting,
            },
        }
    }
}

enum PhaseClass {
    Running,
    Waiting,
    /// Stopped; whether it succeeded.
    Stopped(bool),
}

/// The pod's phase from its containers (no init containers), as
/// `getPhase` decides it; `terminal`: the pod is being torn down, so
/// nothing restarts.
pub fn phase(reports: &[ContainerReport], restart_policy: &str, terminal: bool) -> &'static str {
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for report in reports {
        match report.phase_class() {
            PhaseClass::Running => running += 1,
            PhaseClass::Waiting => waiting += 1,
            PhaseClass::Stopped(ok) => {
                stopped += 1;
                if ok {
                    succeeded += 1;
                }
            }
        }
    }
    let all_succeeded = succeeded == reports.len();
    match () {
        _ if waiting > 0 && !terminal => "Pending",
        _ if running > 0 && !terminal => "Running",
        _ if stopped > 0 || terminal => {
            if terminal || restart_policy == "Never" {
                if all_succeeded { "Succeeded" } else { "Failed" }
            } else if restart_policy == "OnFailure" && all_succeeded {
                "Succeeded"
            } else {
                "Running"
            }
        }
        _ => "Pending",
    }
}

/// What the pod status is made of besides the containers.
pub struct PodFacts<'a> {
    pub pod: &'a Value,
    pub host_ip: &'a str,
    /// `None` before the sandbox has its IP.
    pub pod_ip: Option<&'a str>,
    pub start_time: jiff::Timestamp,
    pub qos_class: &'a str,
    /// The pod is being torn down.
    pub terminal: bool,
}

/// The pod's whole status.
pub fn pod_status(facts: &PodFacts<'_>, reports: &[ContainerReport]) -> Value {
    let pod = facts.pod;
    let previous = pod.get("status");
    let now = time(jiff::Timestamp::now());
    let containers: Vec<Value> =
        pod.pointer("/spec/containers").and_then(Value::as_array).cloned().unwrap_or_default();
    let restart_policy =
        pod.pointer("/spec/restartPolicy").and_then(Value::as_str).unwrap_or("Always");
    let phase = phase(reports, restart_policy, facts.terminal);
    let unready: Vec<&str> = containers
        .iter()
        .zip(reports)
        .filter(|(_, report)| !report.ready)
        .filter_map(|(container, _)| container["name"].as_str())
        .collect();
    let ready = unready.is_empty() && !reports.is_empty();
    let condition = |kind: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        let mut condition = Map::new();
        condition.insert("type".into(), json!(kind));
        condition.insert("status".into(), json!(if ok { "True" } else { "False" }));
        condition.insert("lastProbeTime".into(), Value::Null);
        let kept = previous
            .and_then(|status| status.get("conditions"))
            .and_then(Value::as_array)
            .and_then(|conditions| conditions.iter().find(|old| old["type"] == kind))
            .filter(|old| old["status"] == condition["status"])
            .and_then(|old| old.get("lastTransitionTime").cloned());
        condition.insert("lastTransitionTime".into(), kept.unwrap_or_else(|| json!(now)));
        if let Some(reason) = reason {
            condition.insert("reason".into(), json!(reason));
        }
        if let Some(message) = message {
            condition.insert("message".into(), json!(message));
        }
        Value::Object(condition)
    };
    let (not_ready_reason, not_ready_message) = if matches!(phase, "Succeeded" | "Failed") {
        (Some("PodCompleted"), None)
    } else if ready {
        (None, None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!("containers with unready status: [{}]", unready.join(" "))),
        )
    };
    let sandbox_ready = facts.pod_ip.is_some() && !matches!(phase, "Succeeded" | "Failed");
    let conditions = json!([
        condition("PodReadyToStartContainers", sandbox_ready, None, None),
        condition("Initialized", true, None, None),
        condition(
            "Ready",
            ready && phase == "Running",
            not_ready_reason,
            not_ready_message.clone()
        ),
        condition(
            "ContainersReady",
            ready && phase == "Running",
            not_ready_reason,
            not_ready_message
        ),
        condition("PodScheduled", true, None, None),
    ]);
    let statuses: Vec<Value> = containers
        .iter()
        .zip(reports)
        .map(|(container, report)| {
            report.to_json(
                container["name"].as_str().unwrap_or(""),
                container["image"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": facts.host_ip,
        "hostIPs": [{"ip": facts.host_ip}],
        "startTime": time(facts.start_time),
        "containerStatuses": statuses,
        "qosClass": facts.qos_class,
    });
    if let Some(ip) = facts.pod_ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(state: State, last: Option<i32>) -> ContainerReport {
        let ended = |code| Terminated {
            exit_code: code,
            signal: None,
            reason: if code == 0 { "Completed".into() } else { "Error".into() },
            message: None,
            started_at: None,
            finished_at: jiff::Timestamp::UNIX_EPOCH,
            container_id: None,
        };
        ContainerReport { state, last_terminated: last.map(ended), ..ContainerReport::default() }
    }

    #[test]
    fn the_phase_follows_get_phase() {
        let running = State::Running { started_at: jiff::Timestamp::UNIX_EPOCH };
        let crash_loop = State::Waiting { reason: "CrashLoopBackOff".into(), message: None };
        assert_eq!(phase(&[report(State::default(), None)], "Always", false), "Pending");
        assert_eq!(phase(&[report(running.clone(), None)], "Always", false), "Running");
        assert_eq!(phase(&[report(crash_loop.clone(), Some(1))], "Always", false), "Running");
        assert_eq!(
            phase(
                &[report(running.clone(), None), report(State::default(), None)],
                "Always",
                false
            ),
            "Pending",
            "a container not started yet keeps the pod pending"
        );
        assert_eq!(phase(&[report(crash_loop, Some(0))], "OnFailure", false), "Succeeded");
        let ended = report(State::default(), Some(0)).last_terminated.map(State::Terminated);
        assert_eq!(phase(&[report(ended.clone().unwrap(), None)], "Never", false), "Succeeded");
        assert_eq!(phase(&[report(running, None)], "Always", true), "Failed");
        assert_eq!(phase(&[report(ended.unwrap(), None)], "Always", true), "Succeeded");
    }
}
