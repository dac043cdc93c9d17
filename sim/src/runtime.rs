//! The container runtime under the sim's kubelet: it starts a container as
//! a local process in a process group of its own, captures its standard
//! output and error into the container's log, signals the group, and keeps
//! a table of every group it started so that nothing outlives the sim.
//!
//! Three things see to that: each process handle kills its group when
//! dropped; [`ProcessTable::kill_all`] kills every group (the sim's shutdown,
//! and the handle's drop); and where `setpriv` (util-linux) exists, each
//! process is started through `setpriv --pdeathsig KILL`, from a thread that
//! lives exactly as long as the runtime, so the kernel kills the process
//! when that thread ends, even when the sim's own process is killed. The
//! parent-death signal reaches the container's main process only; its
//! children die with the group in the first two cases.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::pod_logs::ContainerLog;

/// Where util-linux puts `setpriv`.
const SETPRIV: &str = "/usr/bin/setpriv";
/// How long the output of an exited container may still be read before its
/// log is closed (a process that left the group may hold the pipes open).
const OUTPUT_DRAIN: Duration = Duration::from_secs(1);

/// Which container a process group runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessLabels {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// A running process group, as [`ProcessTable::list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessEntry {
    /// The main process (also the group id).
    pub pid: u32,
    pub labels: ProcessLabels,
}

/// Every process group the runtime started and that still runs.
#[derive(Debug, Default)]
pub struct ProcessTable {
    groups: Mutex<BTreeMap<u32, ProcessLabels>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A map of plain entries, each change one insert or remove.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends `signal` to the process group `pid` leads; a group already gone is
/// not an error.
fn signal_group(pid: u32, signal: Signal) {
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    if let Err(error) = kill_process_group(pid, signal)
        && error != rustix::io::Errno::SRCH
    {
        tracing::debug!(%error, ?pid, "signalling a container's process group");
    }
}

impl ProcessTable {
    /// The groups running now, by pid.
    pub fn list(&self) -> Vec<ProcessEntry> {
        lock(&self.groups)
            .iter()
            .map(|(pid, labels)| ProcessEntry { pid: *pid, labels: labels.clone() })
            .collect()
    }

    /// Kills every group (SIGKILL).
    pub fn kill_all(&self) {
        let pids: Vec<u32> = lock(&self.groups).keys().copied().collect();
        for pid in pids {
            signal_group(pid, Signal::KILL);
        }
    }

    fn insert(&self, pid: u32, labels: ProcessLabels) {
        lock(&self.groups).insert(pid, labels);
    }

    fn remove(&self, pid: u32) {
        lock(&self.groups).remove(&pid);
    }
}

/// Why a container process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The program is not an executable file (on the PATH, for a bare name),
    /// worded as runc words it.
    #[error(
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: {program:?}: {why}: unknown"
    )]
    NotFound { program: String, why: &'static str },
    /// The runtime has shut down.
    #[error("the container runtime has shut down")]
    ShutDown,
    /// Spawning failed.
    #[error("failed to start the container process: {0}")]
    Spawn(#[source] io::Error),
}

/// What to start.
#[derive(Debug)]
pub struct Launch {
    /// The program: a path, or a name looked up on the `PATH` of `env`.
    pub program: String,
    pub args: Vec<String>,
    /// The whole environment (nothing is inherited).
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub labels: ProcessLabels,
    /// Where its output goes.
    pub log: Arc<ContainerLog>,
}

struct SpawnRequest {
    command: tokio::process::Command,
    reply: oneshot::Sender<io::Result<tokio::process::Child>>,
}

/// The container runtime of one sim.
#[derive(Debug)]
pub struct ContainerRuntime {
    spawner: Mutex<Option<mpsc::Sender<SpawnRequest>>>,
    processes: Arc<ProcessTable>,
    setpriv: Option<PathBuf>,
}

impl std::fmt::Debug for SpawnRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnRequest").finish_non_exhaustive()
    }
}

impl ContainerRuntime {
    /// A runtime whose spawning thread runs on the current tokio runtime's
    /// handle (so the processes' exits are reaped there).
    pub fn new() -> io::Result<Self> {
        let handle = tokio::runtime::Handle::current();
        let (sender, requests) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new().name("sim-container-runtime".into()).spawn(move || {
            let _runtime = handle.enter();
            // Ends when the runtime shuts down (its sender dropped): with it
            // ends the parent thread of every process, which the parent-death
            // signal then kills.
            while let Ok(request) = requests.recv() {
                let SpawnRequest { mut command, reply } = request;
                let _ = reply.send(command.spawn());
            }
        })?;
        let setpriv = Some(PathBuf::from(SETPRIV)).filter(|path| is_executable(path));
        Ok(ContainerRuntime {
            spawner: Mutex::new(Some(sender)),
            processes: Arc::new(ProcessTable::default()),
            setpriv,
        })
    }

    /// The table of running process groups.
    pub fn processes(&self) -> &Arc<ProcessTable> {
        &self.processes
    }

    /// Kills every process and stops starting new ones.
    pub fn shut_down(&self) {
        lock(&self.spawner).take();
        self.processes.kill_all();
    }

    /// Starts a container process.
    pub async fn start(&self, launch: Launch) -> Result<ContainerProcess, StartError> {
        let path_env = launch.env.iter().find(|(name, _)| name == "PATH").map(|(_, v)| v.as_str());
        let program = resolve_program(&launch.program, path_env.unwrap_or(""))?;
        let mut command = match &self.setpriv {
            Some(setpriv) => {
                let mut command = tokio::process::Command::new(setpriv);
                command.args(["--pdeathsig", "KILL", "--"]).arg(&program);
                command
            }
            None => tokio::process::Command::new(&program),
        };
        command
            .args(&launch.args)
            .env_clear()
            .envs(launch.env.iter().map(|(name, value)| (name, value)))
            .current_dir(&launch.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let (reply, replied) = oneshot::channel();
        let sender = lock(&self.spawner).clone().ok_or(StartError::ShutDown)?;
        sender.send(SpawnRequest { command, reply }).map_err(|_| StartError::ShutDown)?;
        let mut child =
            replied.await.map_err(|_| StartError::ShutDown)?.map_err(StartError::Spawn)?;
        let Some(pid) = child.id() else {
            return Err(StartError::Spawn(io::Error::other(
                "the process exited before it started",
            )));
        };
        self.processes.insert(pid, launch.labels);
        let readers = [
            child.stdout.take().map(|out| tokio::spawn(capture(out, launch.log.clone()))),
            child.stderr.take().map(|err| tokio::spawn(capture(err, launch.log.clone()))),
        ];
        Ok(ContainerProcess {
            child,
            pid,
            processes: self.processes.clone(),
            readers: readers.into_iter().flatten().collect(),
            log: launch.log,
            exited: None,
        })
    }
}

impl Drop for ContainerRuntime {
    fn drop(&mut self) {
        self.processes.kill_all();
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The program's path: as given when it names a path, else the first
/// executable of that name on `path_env` (as runc looks it up).
pub fn resolve_program(program: &str, path_env: &str) -> Result<PathBuf, StartError> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(StartError::NotFound {
                program: program.to_string(),
                why: "stat: no such file or directory",
            })
        };
    }
    std::env::split_paths(path_env)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| StartError::NotFound {
            program: program.to_string(),
            why: "executable file not found in $PATH",
        })
}

/// Reads `output` line by line into `log`.
async fn capture(output: impl AsyncRead + Unpin, log: Arc<ContainerLog>) {
    let mut reader = BufReader::new(output);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => log.append(String::from_utf8_lossy(&line).into_owned()),
        }
    }
}

/// A running container process (its group killed when dropped).
#[derive(Debug)]
pub struct ContainerProcess {
    child: tokio::process::Child,
    pid: u32,
    processes: Arc<ProcessTable>,
    readers: Vec<JoinHandle<()>>,
    log: Arc<ContainerLog>,
    exited: Option<ExitStatus>,
}

/// How a container process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The exit code, 128 + the signal for a process a signal ended (as
    /// container runtimes report it).
    pub code: i32,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
}

impl ContainerProcess {
    /// Sends `signal` to the container's processes.
    pub fn signal(&self, signal: Signal) {
        if self.exited.is_none() {
            signal_group(self.pid, signal);
        }
    }

    /// Waits for the main process to end; then, as a runtime does when a
    /// container's first process ends, kills what is left of the group and
    /// closes the log once the output is read.
    pub async fn wait(&mut self) -> Exit {
        let status = match self.exited {
            Some(status) => status,
            None => {
                let status = match self.child.wait().await {
                    Ok(status) => status,
                    Err(error) => {
                        tracing::debug!(%error, pid = self.pid, "waiting for a container process");
                        std::os::unix::process::ExitStatusExt::from_raw(128 << 8)
                    }
                };
                signal_group(self.pid, Signal::KILL);
                self.processes.remove(self.pid);
                self.exited = Some(status);
                for reader in std::mem::take(&mut self.readers) {
                    let abort = reader.abort_handle();
                    if tokio::time::timeout(OUTPUT_DRAIN, reader).await.is_err() {
                        abort.abort();
                    }
                }
                self.log.close();
                status
            }
        };
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit { code, signal: None },
            (None, Some(signal)) => Exit { code: 128 + signal, signal: Some(signal) },
            (None, None) => Exit { code: 128, signal: None },
        }
    }
}

impl Drop for ContainerProcess {
    fn drop(&mut self) {
        if self.exited.is_none() {
            signal_group(self.pid, Signal::KILL);
            self.processes.remove(self.pid);
            self.log.close();
        }
        for reader in &self.readers {
            reader.abort();
        }
    }
}
