//! The operator under measurement, as its own process (`servicerefresh run`, exactly as a
//! pod runs it): started against the simulated cluster's kubeconfig, known ready from its
//! JSON log, and read from `/proc` for resident memory and CPU time.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;

/// The replica name the benchmark gives the operator; its requests carry it in their
/// User-Agent, which is how the request log tells them from the benchmark's own.
pub const IDENTITY: &str = "bench-operator";

/// Linux reports CPU times in /proc in USER_HZ ticks, which is 100 on every architecture
/// Linux supports (the kernel's own HZ may differ; USER_HZ is fixed for user space).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Error)]
pub enum OperatorError {
    #[error("cannot start the operator binary {binary}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the operator did not report synced caches within {0:?}; its last lines: {1}")]
    NotReady(Duration, String),
    #[error("cannot read /proc/{pid}/{file}")]
    Proc {
        pid: u32,
        file: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("/proc/{0}/{1} has no {2}")]
    ProcField(u32, &'static str, &'static str),
}

/// Resident memory of a process, in KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident size since the process started.
    pub peak_kib: u64,
    /// `RssAnon`: the resident part that is heap and stacks.
    pub anon_kib: u64,
    /// `RssFile`: the resident part mapped from files, mostly the binary's code.
    pub file_kib: u64,
}

/// How the operator is started.
#[derive(Clone, Debug)]
pub struct Launch {
    pub binary: PathBuf,
    /// Extra environment, such as `MALLOC_ARENA_MAX=2` for the allocator comparison.
    pub env: Vec<(String, String)>,
}

/// A running operator process; killed when dropped.
pub struct OperatorProcess {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl OperatorProcess {
    /// Starts `servicerefresh --log-format json run` against `kubeconfig` with leader
    /// election on (as the chart runs it), its Lease in `namespace`.
    pub fn spawn(
        launch: &Launch,
        kubeconfig: &Path,
        namespace: &str,
    ) -> Result<Self, OperatorError> {
        let mut command = Command::new(&launch.binary);
        command
            .args(["--log-format", "json", "run", "--kubeconfig"])
            .arg(kubeconfig)
            .args(["--metrics-listen", "127.0.0.1:0", "--lease-namespace", namespace])
            .env("POD_NAME", IDENTITY)
            .env_remove("POD_NAMESPACE")
            .env_remove("SERVICEREFRESH_KUBECONFIG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in &launch.env {
            command.env(key, value);
        }
        let mut child = command.spawn().map_err(|source| OperatorError::Spawn {
            binary: launch.binary.display().to_string(),
            source,
        })?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let sink = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    lock(&sink).push(line);
                }
            });
        }
        Ok(Self { child, lines })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the operator logs that its watch caches hold their first full lists.
    pub async fn wait_ready(&self, deadline: Duration) -> Result<(), OperatorError> {
        let started = Instant::now();
        while started.elapsed() < deadline {
            if self.logged("watch caches synced: ready") {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let lines = lock(&self.lines);
        let tail = lines.iter().rev().take(5).rev().cloned().collect::<Vec<_>>().join(" | ");
        Err(OperatorError::NotReady(deadline, tail))
    }

    fn logged(&self, message: &str) -> bool {
        lock(&self.lines).iter().any(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .is_ok_and(|line| line["message"] == message)
        })
    }

    /// Resident memory now and at its peak, and what the resident part is.
    pub fn memory(&self) -> Result<Memory, OperatorError> {
        let pid = self.pid();
        let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|source| OperatorError::Proc { pid, file: "status", source })?;
        let field = |name: &'static str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .ok_or(OperatorError::ProcField(pid, "status", name))
        };
        Ok(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
            anon_kib: field("RssAnon:")?,
            file_kib: field("RssFile:")?,
        })
    }

    /// CPU time used so far, user and system, in seconds.
    pub fn cpu_seconds(&self) -> Result<f64, OperatorError> {
        let pid = self.pid();
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|source| OperatorError::Proc { pid, file: "stat", source })?;
        // The command name (field 2) is in parentheses and may hold spaces: count fields
        // from the last ')'. utime and stime are fields 14 and 15, so 12th and 13th after it.
        let after_name = text.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |index: usize| fields.get(index).and_then(|field| field.parse::<u64>().ok());
        match (ticks(11), ticks(12)) {
            (Some(user), Some(system)) => Ok((user + system) as f64 / TICKS_PER_SECOND),
            _ => Err(OperatorError::ProcField(pid, "stat", "utime and stime")),
        }
    }

    /// Stops it with SIGTERM as a pod would be, and SIGKILL if it has not ended in a few
    /// seconds.
    pub async fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Lines are pushed whole; a panicking reader thread cannot leave the list torn.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
