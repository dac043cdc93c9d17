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
use super::backoff::{Backoff, go_duration};
use super::env::{PodContext, container_env};
use super::probes::{ExecContext, ProbeKind, Target, prober};
use super::status::{ContainerReport, State, Terminated};
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
            // The instance before this one: forgotten (its log with it) once this one restarts.
            let older = self.current.last_terminated.as_ref().and_then(|t| t.container_id.clone());
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
            if let Some(older) =
                older.filter(|older| Some(older) != terminated.container_id.as_ref())
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
                            exit = process.wait() => break Ended::Exited(terminated(exit, started_at, &id)),
                            grace = wait_for_stop(&mut self.setup.stop) => {
                                let exit = terminate(&mut process, grace).await;
                                break Ended::Stopped(Some(terminated(exit, started_at, &id)));
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
                                    // The kubelet says so in a `Killing` event; the container's
                                    // state shows only how it ended.
                                    tracing::debug!(container = %self.name, ?kind, "failed its probe, will be restarted");
                                    let exit = terminate(&mut process, grace).await;
                                    break Ended::Exited(terminated(exit, started_at, &id));
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

fn terminated(exit: Exit, started_at: jiff::Timestamp, id: &str) -> Terminated {
    Terminated {
        exit_code: exit.code,
        signal: None,
        reason: if exit.code == 0 { "Completed".into() } else { "Error".into() },
        message: None,
        started_at: Some(started_at),
        finished_at: jiff::Timestamp::now(),
        container_id: Some(id.to_string()),
    }
}
