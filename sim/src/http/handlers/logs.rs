//! `GET pods/<name>/log`: the API server's `LogREST` (the options' validation,
//! the pod, which container) and the kubelet's container logs behind it
//! (which instance: the running one, the last terminated one with
//! `previous`; `tailLines`, `sinceSeconds`/`sinceTime`, `timestamps`,
//! `limitBytes`, and `follow`, streamed until the instance ends). Errors read
//! as the real ones: 422 for invalid options, 404 for an unknown pod, 400
//! for an unknown container or one that has nothing to show yet. A pod
//! whose status is simulated has running containers that wrote nothing.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::stored_object;
use crate::error::{ApiError, Cause};
use crate::http::request::{Query, ResourceRequest, is_true};
use crate::pod_logs::{ContainerLog, LogLine};
use crate::state::SimState;

/// `PodLogOptions`, parsed from the query.
#[derive(Debug, Default)]
struct LogOptions {
    container: Option<String>,
    follow: bool,
    previous: bool,
    timestamps: bool,
    since_seconds: Option<i64>,
    since_time: Option<jiff::Timestamp>,
    tail_lines: Option<i64>,
    limit_bytes: Option<i64>,
}

fn integer(query: &Query, key: &str) -> Result<Option<i64>, ApiError> {
    query
        .get(key)
        .map(|text| {
            text.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("strconv.ParseInt: parsing {text:?}: invalid syntax"))
            })
        })
        .transpose()
}

impl LogOptions {
    /// The options, checked as `ValidatePodLogOptions` checks them.
    fn parse(query: &Query, pod: &str) -> Result<LogOptions, ApiError> {
        let since_time = query
            .get("sinceTime")
            .map(|text| {
                text.parse::<jiff::Timestamp>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "parsing time {text:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {text:?} as \"2006\""
                    ))
                })
            })
            .transpose()?;
        let options = LogOptions {
            container: query.get("container").filter(|name| !name.is_empty()).cloned(),
            follow: is_true(query, "follow"),
            previous: is_true(query, "previous"),
            timestamps: is_true(query, "timestamps"),
            since_seconds: integer(query, "sinceSeconds")?,
            since_time,
            tail_lines: integer(query, "tailLines")?,
            limit_bytes: integer(query, "limitBytes")?,
        };
        let mut causes = Vec::new();
        if let Some(tail) = options.tail_lines.filter(|tail| *tail < 0) {
            causes.push(Cause::invalid(
                "tailLines",
                &json!(tail),
                "must be greater than or equal to 0",
            ));
        }
        if let Some(limit) = options.limit_bytes.filter(|limit| *limit < 1) {
            causes.push(Cause::invalid("limitBytes", &json!(limit), "must be greater than 0"));
        }
        match (options.since_seconds, options.since_time) {
            (Some(_), Some(_)) => causes.push(Cause::new(
                "FieldValueForbidden",
                "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
                "",
            )),
            (Some(seconds), None) if seconds < 1 => {
                causes.push(Cause::invalid(
                    "sinceSeconds",
                    &json!(seconds),
                    "must be greater than 0",
                ));
            }
            _ => {}
        }
        if causes.is_empty() {
            Ok(options)
        } else {
            Err(ApiError::invalid("PodLogOptions", "", pod, &causes))
        }
    }

    /// The oldest time a line may have.
    fn since(&self) -> Option<jiff::Timestamp> {
        self.since_time.or_else(|| {
            let seconds = self.since_seconds?;
            jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_secs(seconds)).ok()
        })
    }
}

fn names(containers: Option<&Value>) -> Vec<String> {
    containers
        .and_then(Value::as_array)
        .map(|containers| {
            containers.iter().filter_map(|c| c["name"].as_str()).map(String::from).collect()
        })
        .unwrap_or_default()
}

/// The container a request is for (`validateContainer`).
fn container_of(pod: &Value, requested: Option<&str>) -> Result<String, ApiError> {
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let containers = names(pod.pointer("/spec/containers"));
    let mut all = names(pod.pointer("/spec/initContainers"));
    all.extend(containers.iter().cloned());
    all.extend(names(pod.pointer("/spec/ephemeralContainers")));
    match requested {
        Some(container) if all.iter().any(|known| known == container) => Ok(container.to_string()),
        Some(container) => {
            Err(ApiError::bad_request(format!("container {container} is not valid for pod {name}")))
        }
        None => match containers.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                all.join(" ")
            ))),
        },
    }
}

/// The container instance whose log is read (the kubelet's
/// `validateContainerLogStatus`).
fn instance_of(pod: &Value, container: &str, previous: bool) -> Result<String, ApiError> {
    let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let statuses = ["containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"];
    let status = statuses
        .iter()
        .filter_map(|key| pod.pointer(&format!("/status/{key}")).and_then(Value::as_array))
        .flatten()
        .find(|status| status["name"] == container)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "container {container:?} in pod {name:?} is not available"
            ))
        })?;
    let id = |pointer: &str| status.pointer(pointer).and_then(Value::as_str).map(String::from);
    let last = id("/lastState/terminated/containerID");
    if previous {
        return last.ok_or_else(|| {
            ApiError::bad_request(format!(
                "previous terminated container {container:?} in pod {name:?} not found"
            ))
        });
    }
    let state = &status["state"];
    if state.get("running").is_some() {
        return Ok(id("/containerID").unwrap_or_default());
    }
    if state.get("terminated").is_some() {
        return Ok(id("/state/terminated/containerID").or(last).unwrap_or_default());
    }
    if let Some(last) = last {
        return Ok(last);
    }
    let reason = status.pointer("/state/waiting/reason").and_then(Value::as_str).unwrap_or("");
    let why = match reason {
        "ErrImagePull" => "image can't be pulled".to_string(),
        "ImagePullBackOff" => "trying and failing to pull image".to_string(),
        other => other.to_string(),
    };
    Err(ApiError::bad_request(format!(
        "container {container:?} in pod {name:?} is waiting to start: {why}"
    )))
}

/// Serves a log request.
pub fn serve(sim: &Arc<SimState>, request: &ResourceRequest) -> Result<Response, ApiError> {
    let target = &request.target;
    let options = LogOptions::parse(&request.query, target.name_or_empty())?;
    let pod = stored_object(&sim.store.lock(), target)?;
    let container = container_of(&pod, options.container.as_deref())?;
    let bound =
        pod.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|node| !node.is_empty());
    if !bound {
        // No node, no kubelet: an empty log.
        return Ok(text(Body::empty()));
    }
    let instance = instance_of(&pod, &container, options.previous)?;
    let Some(log) = sim.logs.get(&instance) else {
        return Ok(text(Body::empty()));
    };
    let read = log.read_from(0);
    let since = options.since();
    let mut lines: Vec<LogLine> = read
        .lines
        .into_iter()
        .filter(|line| since.is_none_or(|since| line.time >= since))
        .collect();
    if let Some(tail) = options.tail_lines.and_then(|tail| usize::try_from(tail).ok()) {
        lines.drain(..lines.len().saturating_sub(tail));
    }
    let mut budget = options.limit_bytes.and_then(|limit| usize::try_from(limit).ok());
    let first = render(&lines, options.timestamps, &mut budget);
    if !options.follow || read.closed || budget == Some(0) {
        return Ok(text(Body::from(first)));
    }
    let follow = Follow {
        log,
        next: read.next,
        timestamps: options.timestamps,
        budget,
        changes: None,
        shutdown: sim.shutdown.clone(),
        first: Some(first),
    };
    Ok(text(Body::from_stream(futures::stream::unfold(follow, Follow::step))))
}

fn text(body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain"));
    response
}

/// Lines as the kubelet writes them, with their timestamps when asked,
/// within what is left of `limitBytes`.
fn render(lines: &[LogLine], timestamps: bool, budget: &mut Option<usize>) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        if timestamps {
            out.extend_from_slice(format!("{} ", line.time).as_bytes());
        }
        out.extend_from_slice(line.text.as_bytes());
    }
    if let Some(left) = budget {
        out.truncate(*left);
        *left -= out.len();
    }
    out
}

/// A followed log: what was there, then each new line, until the instance
/// ends, the byte limit is reached or the sim shuts down.
struct Follow {
    log: Arc<ContainerLog>,
    next: u64,
    timestamps: bool,
    budget: Option<usize>,
    changes: Option<tokio::sync::watch::Receiver<u64>>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    first: Option<Vec<u8>>,
}

impl Follow {
    async fn step(mut self) -> Option<(Result<Bytes, std::io::Error>, Follow)> {
        if let Some(first) = self.first.take()
            && !first.is_empty()
        {
            return Some((Ok(Bytes::from(first)), self));
        }
        let mut changes = self.changes.take().unwrap_or_else(|| self.log.subscribe());
        loop {
            if self.budget == Some(0) || *self.shutdown.borrow() {
                return None;
            }
            let read = self.log.read_from(self.next);
            if !read.lines.is_empty() {
                self.next = read.next;
                let chunk = render(&read.lines, self.timestamps, &mut self.budget);
                self.changes = Some(changes);
                return Some((Ok(Bytes::from(chunk)), self));
            }
            if read.closed {
                return None;
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = self.shutdown.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(statuses: Value) -> Value {
        json!({
            "metadata": {"name": "web-1"},
            "spec": {"nodeName": "n", "containers": [{"name": "app"}, {"name": "proxy"}]},
            "status": {"containerStatuses": statuses},
        })
    }

    #[test]
    fn the_container_is_named_or_the_only_one() {
        let two = pod(json!([]));
        assert_eq!(
            container_of(&two, None).unwrap_err().message,
            "a container name must be specified for pod web-1, choose one of: [app proxy]"
        );
        assert_eq!(
            container_of(&two, Some("db")).unwrap_err().message,
            "container db is not valid for pod web-1"
        );
        assert_eq!(container_of(&two, Some("proxy")).unwrap(), "proxy");
    }

    #[test]
    fn the_instance_follows_the_container_state() {
        let crash_looping = pod(json!([{"name": "app",
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "containerID": "containerd://old"}}}]));
        assert_eq!(instance_of(&crash_looping, "app", false).unwrap(), "containerd://old");
        assert_eq!(instance_of(&crash_looping, "app", true).unwrap(), "containerd://old");
        let creating = pod(
            json!([{"name": "app", "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}}]),
        );
        assert_eq!(
            instance_of(&creating, "app", false).unwrap_err().message,
            "container \"app\" in pod \"web-1\" is waiting to start: ContainerCreating"
        );
        assert_eq!(
            instance_of(&creating, "app", true).unwrap_err().message,
            "previous terminated container \"app\" in pod \"web-1\" not found"
        );
        assert_eq!(
            instance_of(&creating, "proxy", false).unwrap_err().message,
            "container \"proxy\" in pod \"web-1\" is not available"
        );
    }

    #[test]
    fn invalid_options_are_refused_as_the_api_server_does() {
        let query: Query = [("tailLines".to_string(), "-1".to_string())].into_iter().collect();
        let error = LogOptions::parse(&query, "web-1").unwrap_err();
        assert_eq!(error.code, 422);
        assert_eq!(
            error.message,
            "PodLogOptions \"web-1\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        );
    }
}
