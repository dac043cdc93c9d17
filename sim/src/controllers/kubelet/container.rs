//! One container of a pod the kubelet runs: it resolves the environment and
//! the command line, starts the process through the runtime, runs the
//! startup, readiness and liveness probes, and on exit restarts it as the
//! pod's `restartPolicy` says, after the kubelet's crash-loop back-off
//! (the first restart at once, then the initial back-off doubling up to 30
//! times it, forgotten after 60 times it without a crash; real: 10 s, 5 min
//! and 10 min; the sim's initial back-off is `KubeletConfig::
//! crash_loop_backoff_ms`). A stop request (the pod is deleted) sends
//! SIGTERM, waits the grace period, then SIGKILL. It reports every change
//! of its state to the pod.
//!
//! A container whose image the kubelet does not run (a sidecar of a pod
//! that runs another image for real) is reported running and ready, with
//! no process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustix::process::Signal;
use serde_json::Value;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::argv;
use super::env::{PodContext, container_env};
use super::probes::{ProbeKind, Target, Timing, Verdict, probe_once};
use super::status::{ContainerReport, State, Terminated};
use crate::pod_logs::ContainerLog;
use crate::runtime::{ContainerProcess, Exit, Launch, ProcessLabels, StartError};
use crate::state::SimState;
use crate::util::metadata_str;

/// The `PATH` of processes (standing in for the image's `ENV PATH`).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything one container's task needs.
pub struct ContainerSetup {
    pub sim: Arc<SimState>,
    pub pod: Arc<Value>,
    pub container: Value,
    /// The local executable standing in for the image; `None`: no process.
    pub binary: Option<PathBuf>,
    pub pod_ip: String,
    pub host_ip: String,
    pub rootfs: PathBuf,
    /// The pod's kubeconfig, when the token is mounted.
    pub kubeconfig: Option<PathBuf>,
    pub report: watch::Sender<ContainerReport>,
    pub changed: Arc<Notify>,
    /// Becomes `Some(grace)` when the pod is deleted.
    pub stop: watch::Receiver<Option<Duration>>,
}

/// A Go duration as `time.Duration.String()` prints it (`10s`, `1m20s`, `1.6s`, `500ms`).
pub fn go_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".into();
    }
    if duration < Duration::from_secs(1) {
        return format!("{}ms", duration.as_secs_f64() * 1000.0);
    }
    let total = duration.as_secs();
    let (hours, minutes) = (total / 3600, (total % 3600) / 60);
    let seconds = (total % 60) as f64 + f64::from(duration.subsec_nanos()) / 1e9;
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

/// The kubelet's crash-loop back-off of one container.
#[derive(Debug)]
struct Backoff {
    initial: Duration,
    current: Option<Duration>,
    last_update: Instant,
}

impl Backoff {
    fn new(initial: Duration) -> Self {
        Backoff { initial, current: None, last_update: Instant::now() }
    }

    fn max(&self) -> Duration {
        self.initial * 30
    }

    /// A back-off not renewed for twice its maximum is forgotten.
    fn expired(&self, finished: Instant) -> bool {
        finished.saturating_duration_since(self.last_update) > self.max() * 2
    }

    /// How much longer (at `now`) a container that ended at `finished` must wait.
    fn remaining(&self, finished: Instant, now: Instant) -> Option<Duration> {
        let current = self.current?;
        if self.expired(finished) {
            return None;
        }
        current.checked_sub(now.saturating_duration_since(finished)).filter(|left| !left.is_zero())
    }

    /// Renews the back-off at `now` for a container that ended at `finished`.
    fn next(&mut self, finished: Instant, now: Instant) {
        self.current = match self.current {
            Some(current) if !self.expired(finished) => Some((current * 2).min(self.max())),
            _ => Some(self.initial),
        };
        self.last_update = now;
    }
}

/// How one instance of the container ended.
enum Ended {
    /// It exited (or a failing probe killed it): restart as the policy says.
    Exited(Terminated),
    /// The pod is going away.
    Stopped(Option<Terminated>),
}

struct Container {
    setup: ContainerSetup,
    name: String,
    current: ContainerReport,
    backoff: Backoff,
}

/// Runs the container until the pod stops it.
pub async fn run(setup: ContainerSetup) {
    let name = setup.container["name"].as_str().unwrap_or("").to_string();
    let initial = Duration::from_millis(setup.sim.config.kubelet.crash_loop_backoff_ms.max(1));
    let mut container = Container {
        setup,
        name,
        current: ContainerReport::default(),
        backoff: Backoff::new(initial),
    };
    container.run().await;
}

fn new_container_id(sim: &SimState) -> String {
    let words: Vec<u64> = sim.rng.with(|rng| (0..4).map(|_| rng.next_u64()).collect());
    let hex: String = words.iter().map(|word| format!("{word:016x}")).collect();
    format!("containerd://{hex}")
}

fn image_id(image: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, image.as_bytes());
    let hex: String = digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}@sha256:{hex}", crate::images::repository(image))
}

impl Container {
    fn publish(&mut self, change: impl FnOnce(&mut ContainerReport)) {
        change(&mut self.current);
        self.setup.report.send_replace(self.current.clone());
        self.setup.changed.notify_one();
    }

    fn stopping(&self) -> Option<Duration> {
        *self.setup.stop.borrow()
    }

    /// Waits until `deadline`, or until a stop request; the grace if stopped.
    async fn wait_until(&mut self, deadline: Instant) -> Option<Duration> {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => None,
            grace = wait_for_stop(&mut self.setup.stop) => Some(grace),
        }
    }

    async fn run(&mut self) {
        let image = self.setup.container["image"].as_str().unwrap_or("").to_string();
        self.publish(|report| report.image_id = Some(image_id(&image)));
        let Some(binary) = self.setup.binary.clone() else {
            self.run_without_process().await;
            return;
        };
        let restart_policy = self
            .setup
            .pod
            .pointer("/spec/restartPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Always")
            .to_string();
        loop {
            if self.stopping().is_some() {
                return;
            }
            let ended = match self.start_once(&binary).await {
                Ok(ended) => ended,
                Err(message) => {
                    // CreateContainerConfigError: retried after the back-off.
                    self.publish(|report| {
                        report.state = State::Waiting {
                            reason: "CreateContainerConfigError".into(),
                            message: Some(message),
                        };
                    });
                    let retry = Instant::now() + self.backoff.initial;
                    if self.wait_until(retry).await.is_some() {
                        return;
                    }
                    continue;
                }
            };
            let terminated = match ended {
                Ended::Stopped(terminated) => {
                    if let Some(terminated) = terminated {
                        self.publish(|report| {
                            report.state = State::Terminated(terminated);
                            report.ready = false;
                            report.started = false;
                        });
                    }
                    return;
                }
                Ended::Exited(terminated) => terminated,
            };
            let finished = Instant::now();
            let restart = match restart_policy.as_str() {
                "Never" => false,
                "OnFailure" => terminated.exit_code != 0,
                _ => true,
            };
            self.publish(|report| {
                report.state = State::Terminated(terminated.clone());
                report.ready = false;
                report.started = false;
            });
            if !restart {
                wait_for_stop(&mut self.setup.stop).await;
                return;
            }
            if let Some(left) = self.backoff.remaining(finished, Instant::now()) {
                let message = format!(
                    "back-off {} restarting failed container={} pod={}_{}({})",
                    go_duration(self.backoff.current.unwrap_or(left)),
                    self.name,
                    metadata_str(&self.setup.pod, "name").unwrap_or(""),
                    metadata_str(&self.setup.pod, "namespace").unwrap_or(""),
                    metadata_str(&self.setup.pod, "uid").unwrap_or(""),
                );
                self.publish(|report| {
                    report.state = State::Waiting {
                        reason: "CrashLoopBackOff".into(),
                        message: Some(message),
                    };
                    report.last_terminated = Some(terminated.clone());
                });
                if self.wait_until(Instant::now() + left).await.is_some() {
                    return;
                }
            }
            self.backoff.next(finished, Instant::now());
            // The instance before the last one is forgotten, its log with it.
            if let Some(older) =
                self.current.last_terminated.as_ref().and_then(|t| t.container_id.clone())
                && Some(&older) != terminated.container_id.as_ref()
            {
                self.setup.sim.logs.remove(&older);
            }
            self.publish(|report| {
                report.last_terminated = Some(terminated);
                report.restart_count += 1;
            });
        }
    }

    async fn run_without_process(&mut self) {
        let started_at = jiff::Timestamp::now();
        let id = new_container_id(&self.setup.sim);
        self.setup.sim.logs.open(&id);
        self.publish(|report| {
            report.state = State::Running { started_at };
            report.ready = true;
            report.started = true;
            report.container_id = Some(id.clone());
        });
        wait_for_stop(&mut self.setup.stop).await;
        self.publish(|report| {
            report.state = State::Terminated(Terminated {
                exit_code: 0,
                signal: None,
                reason: "Completed".into(),
                message: None,
                started_at: Some(started_at),
                finished_at: jiff::Timestamp::now(),
                container_id: Some(id),
            });
            report.ready = false;
        });
    }

    /// The container's environment: the image's stand-ins (`PATH`, `HOME`),
    /// `HOSTNAME`, the pod's kubeconfig, then the kubelet's variables.
    fn environment(&self) -> Result<Vec<(String, String)>, String> {
        let setup = &self.setup;
        let mut env = vec![
            ("PATH".to_string(), std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into())),
            ("HOSTNAME".to_string(), metadata_str(&setup.pod, "name").unwrap_or("").to_string()),
            ("HOME".to_string(), setup.rootfs.display().to_string()),
        ];
        if let Some(kubeconfig) = &setup.kubeconfig {
            env.push(("KUBECONFIG".into(), kubeconfig.display().to_string()));
        }
        let context = PodContext {
            pod: &setup.pod,
            pod_ip: &setup.pod_ip,
            host_ip: &setup.host_ip,
            api_server: setup.sim.addr,
        };
        let store = setup.sim.store.lock();
        env.extend(container_env(&context, &setup.container, &store)?);
        Ok(env)
    }

    fn labels(&self, container: &str) -> ProcessLabels {
        ProcessLabels {
            namespace: metadata_str(&self.setup.pod, "namespace").unwrap_or("").to_string(),
            pod: metadata_str(&self.setup.pod, "name").unwrap_or("").to_string(),
            container: container.to_string(),
        }
    }

    /// Starts one instance and runs it until it ends; `Err` for a
    /// configuration error before anything started.
    async fn start_once(&mut self, binary: &std::path::Path) -> Result<Ended, String> {
        let env = self.environment()?;
        let vars: HashMap<String, String> = env.iter().cloned().collect();
        let argv = argv::resolve(&self.setup.container, binary, &vars);
        let cwd = match self.setup.container.get("workingDir").and_then(Value::as_str) {
            Some(dir) if !dir.is_empty() => self.setup.rootfs.join(dir.trim_start_matches('/')),
            _ => self.setup.rootfs.clone(),
        };
        let _ = std::fs::create_dir_all(&cwd);
        let id = new_container_id(&self.setup.sim);
        let log = self.setup.sim.logs.open(&id);
        let launch = Launch {
            program: argv.program,
            args: argv.args,
            env: env.clone(),
            cwd: cwd.clone(),
            labels: self.labels(&self.name),
            log,
        };
        let started_at = jiff::Timestamp::now();
        let process = match self.setup.sim.runtime.start(launch).await {
            Ok(process) => process,
            Err(StartError::ShutDown) => return Ok(Ended::Stopped(None)),
            Err(error) => {
                if let Some(log) = self.setup.sim.logs.get(&id) {
                    log.close();
                }
                return Ok(Ended::Exited(Terminated {
                    exit_code: 128,
                    signal: None,
                    reason: "StartError".into(),
                    message: Some(error.to_string()),
                    started_at: None,
                    finished_at: jiff::Timestamp::now(),
                    container_id: Some(id),
                }));
            }
        };
        let has = |kind: ProbeKind| self.setup.container.get(kind.field()).is_some();
        let (ready, started) = (!has(ProbeKind::Readiness), !has(ProbeKind::Startup));
        self.publish(|report| {
            report.state = State::Running { started_at };
            report.container_id = Some(id.clone());
            report.ready = ready && started;
            report.started = started;
        });
        let exec = ExecContext {
            sim: self.setup.sim.clone(),
            env,
            cwd,
            labels: self.labels(&format!("{}-probe", self.name)),
        };
        Ok(self.supervise(process, started_at, id, exec).await)
    }

    /// Runs the probes of a running instance until it ends.
    async fn supervise(
        &mut self,
        mut process: ContainerProcess,
        started_at: jiff::Timestamp,
        id: String,
        exec: ExecContext,
    ) -> Ended {
        let spec = self.setup.container.clone();
        let target = Target { pod_ip: self.setup.pod_ip.clone(), container: spec.clone() };
        let (verdicts, mut results) = mpsc::unbounded_channel::<(ProbeKind, bool)>();
        let mut probers = Vec::new();
        let spawn_prober = |kind: ProbeKind, probers: &mut Vec<tokio::task::JoinHandle<()>>| {
            if let Some(probe) = spec.get(kind.field()).cloned() {
                probers.push(tokio::spawn(prober(
                    kind,
                    probe,
                    target.clone(),
                    exec.clone(),
                    verdicts.clone(),
                )));
            }
        };
        if spec.get(ProbeKind::Startup.field()).is_some() {
            spawn_prober(ProbeKind::Startup, &mut probers);
        } else {
            spawn_prober(ProbeKind::Readiness, &mut probers);
            spawn_prober(ProbeKind::Liveness, &mut probers);
        }
        let ended = loop {
            tokio::select! {
                exit = process.wait() => break Ended::Exited(terminated(exit, started_at, &id, None)),
                grace = wait_for_stop(&mut self.setup.stop) => {
                    let exit = terminate(&mut process, grace).await;
                    break Ended::Stopped(Some(terminated(exit, started_at, &id, None)));
                }
                Some((kind, passing)) = results.recv() => match (kind, passing) {
                    (ProbeKind::Readiness, ready) => {
                        let started = self.current.started;
                        self.publish(|report| report.ready = ready && started);
                    }
                    (ProbeKind::Startup, true) => {
                        self.publish(|report| report.started = true);
                        if spec.get(ProbeKind::Readiness.field()).is_none() {
                            self.publish(|report| report.ready = true);
                        }
                        spawn_prober(ProbeKind::Readiness, &mut probers);
                        spawn_prober(ProbeKind::Liveness, &mut probers);
                    }
                    (ProbeKind::Liveness | ProbeKind::Startup, false) => {
                        let grace = self.probe_grace(kind);
                        let exit = terminate(&mut process, grace).await;
                        let message = format!("Container {} failed {} probe, will be restarted", self.name, match kind {
                            ProbeKind::Startup => "startup",
                            _ => "liveness",
                        });
                        break Ended::Exited(terminated(exit, started_at, &id, Some(message)));
                    }
                    (ProbeKind::Liveness, true) => {}
                },
            }
        };
        for handle in probers {
            handle.abort();
        }
        ended
    }

    /// The grace period of a kill after a failed probe: the probe's own, else the pod's.
    fn probe_grace(&self, kind: ProbeKind) -> Duration {
        let seconds = self
            .setup
            .container
            .pointer(&format!("/{}/terminationGracePeriodSeconds", kind.field()))
            .or_else(|| self.setup.pod.pointer("/spec/terminationGracePeriodSeconds"))
            .and_then(Value::as_u64)
            .unwrap_or(30);
        Duration::from_secs(seconds)
    }
}

/// Waits for the stop request; its grace period.
async fn wait_for_stop(stop: &mut watch::Receiver<Option<Duration>>) -> Duration {
    match stop.wait_for(Option::is_some).await {
        Ok(grace) => grace.unwrap_or_default(),
        // The pod worker is gone: stop at once.
        Err(_) => Duration::ZERO,
    }
}

/// SIGTERM, the grace period, then SIGKILL.
async fn terminate(process: &mut ContainerProcess, grace: Duration) -> Exit {
    process.signal(Signal::TERM);
    match tokio::time::timeout(grace, process.wait()).await {
        Ok(exit) => exit,
        Err(_) => {
            process.signal(Signal::KILL);
            process.wait().await
        }
    }
}

fn terminated(
    exit: Exit,
    started_at: jiff::Timestamp,
    id: &str,
    message: Option<String>,
) -> Terminated {
    Terminated {
        exit_code: exit.code,
        signal: None,
        reason: if exit.code == 0 { "Completed".into() } else { "Error".into() },
        message,
        started_at: Some(started_at),
        finished_at: jiff::Timestamp::now(),
        container_id: Some(id.to_string()),
    }
}

/// How an exec probe runs a command "in the container".
#[derive(Clone)]
struct ExecContext {
    sim: Arc<SimState>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    labels: ProcessLabels,
}

impl ExecContext {
    async fn run(&self, command: Vec<String>, timeout: Duration) -> Result<i32, String> {
        let mut words = command.into_iter();
        let program = words.next().ok_or("exec probe without a command")?;
        let launch = Launch {
            program,
            args: words.collect(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            labels: self.labels.clone(),
            log: ContainerLog::detached(),
        };
        let mut process =
            self.sim.runtime.start(launch).await.map_err(|error| error.to_string())?;
        match tokio::time::timeout(timeout, process.wait()).await {
            Ok(exit) => Ok(exit.code),
            Err(_) => Err(format!("command timed out after {}", go_duration(timeout))),
        }
    }
}

/// Runs one probe on its period and sends each change of its verdict (and
/// the first verdict of a startup or readiness probe).
async fn prober(
    kind: ProbeKind,
    probe: Value,
    target: Target,
    exec: ExecContext,
    verdicts: mpsc::UnboundedSender<(ProbeKind, bool)>,
) {
    let timing = Timing::of(&probe);
    let mut verdict = Verdict::new(kind);
    tokio::time::sleep(timing.initial_delay).await;
    let mut next = Instant::now();
    loop {
        let result = probe_once(&probe, &target, timing.timeout, async |command, timeout| {
            exec.run(command, timeout).await
        })
        .await;
        if let Err(message) = &result {
            tracing::debug!(?kind, %message, "probe failed");
        }
        if verdict.record(result.is_ok(), &timing)
            && verdicts.send((kind, verdict.passing)).is_err()
        {
            return;
        }
        next += timing.period;
        tokio::time::sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_go_prints_them() {
        let cases = [
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(80), "1m20s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_millis(1600), "1.6s"),
            (Duration::from_millis(200), "200ms"),
            (Duration::from_secs(3_700), "1h1m40s"),
        ];
        for (duration, printed) in cases {
            assert_eq!(go_duration(duration), printed);
        }
    }

    #[test]
    fn the_back_off_doubles_to_its_cap_and_is_forgotten_after_twice_that() {
        let second = Duration::from_secs(1);
        let mut backoff = Backoff::new(10 * second);
        let mut now = Instant::now();
        assert_eq!(backoff.remaining(now, now), None, "the first restart is immediate");
        backoff.next(now, now);
        let mut waits = Vec::new();
        for _ in 0..7 {
            waits.push(backoff.remaining(now, now).map(|left| left.as_secs()));
            backoff.next(now, now);
        }
        assert_eq!(
            waits,
            [Some(10), Some(20), Some(40), Some(80), Some(160), Some(300), Some(300)]
        );
        assert_eq!(
            backoff.remaining(now, now + 120 * second).map(|left| left.as_secs()),
            Some(180)
        );
        now += 601 * second;
        assert_eq!(backoff.remaining(now, now), None);
        backoff.next(now, now);
        assert_eq!(backoff.current, Some(10 * second));
    }
}
