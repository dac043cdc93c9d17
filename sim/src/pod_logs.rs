//! What containers wrote, as the container runtime's log files keep it for
//! the kubelet: one log per container instance (by container id), each line
//! with the time it was read, capped at the kubelet's default
//! `containerLogMaxSize` (10 MiB, oldest lines dropped first). `pods/log`
//! reads them; a follower waits on a log's change signal until the
//! instance ends.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

/// The kubelet's default `containerLogMaxSize`.
const MAX_LOG_BYTES: usize = 10 * 1024 * 1024;

/// One line a container wrote (with its newline, unless it was the last,
/// unterminated output of the instance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When the runtime read it.
    pub time: jiff::Timestamp,
    pub text: String,
}

#[derive(Debug, Default)]
struct LogState {
    lines: VecDeque<LogLine>,
    /// Index of `lines[0]` among every line ever written.
    first: u64,
    bytes: usize,
    closed: bool,
}

/// The log of one container instance.
#[derive(Debug)]
pub struct ContainerLog {
    state: Mutex<LogState>,
    /// Bumped on every change, for followers.
    changed: watch::Sender<u64>,
}

/// Lines read from a log, and where to continue.
#[derive(Debug, Default)]
pub struct LogRead {
    pub lines: Vec<LogLine>,
    /// The index after the last line returned.
    pub next: u64,
    /// The instance ended: no line will follow.
    pub closed: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain data, each change a single push or flag: a panic cannot tear it.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ContainerLog {
    fn new() -> Self {
        ContainerLog { state: Mutex::new(LogState::default()), changed: watch::channel(0).0 }
    }

    /// Appends one line read now.
    pub fn append(&self, text: String) {
        let mut state = lock(&self.state);
        state.bytes += text.len();
        state.lines.push_back(LogLine { time: jiff::Timestamp::now(), text });
        while state.bytes > MAX_LOG_BYTES
            && let Some(dropped) = state.lines.pop_front()
        {
            state.bytes -= dropped.text.len();
            state.first += 1;
        }
        drop(state);
        self.changed.send_modify(|version| *version += 1);
    }

    /// The instance ended: followers finish after the last line.
    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.changed.send_modify(|version| *version += 1);
    }

    /// The lines from index `from` on (the oldest kept, if `from` was dropped).
    pub fn read_from(&self, from: u64) -> LogRead {
        let state = lock(&self.state);
        let skip = usize::try_from(from.saturating_sub(state.first)).unwrap_or(usize::MAX);
        let lines: Vec<LogLine> = state.lines.iter().skip(skip).cloned().collect();
        let next = state.first + state.lines.len() as u64;
        LogRead { lines, next: next.max(from), closed: state.closed }
    }

    /// A log no pod reads (an exec probe's output).
    pub fn detached() -> Arc<ContainerLog> {
        Arc::new(ContainerLog::new())
    }

    /// A receiver that sees every later change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// Every container instance's log, by container id.
#[derive(Debug, Default)]
pub struct PodLogs {
    logs: Mutex<HashMap<String, Arc<ContainerLog>>>,
}

impl PodLogs {
    /// A new, empty log for a container instance starting now.
    pub fn open(&self, container_id: &str) -> Arc<ContainerLog> {
        let log = Arc::new(ContainerLog::new());
        lock(&self.logs).insert(container_id.to_string(), log.clone());
        log
    }

    /// The log of a container instance, if the runtime has one.
    pub fn get(&self, container_id: &str) -> Option<Arc<ContainerLog>> {
        lock(&self.logs).get(container_id).cloned()
    }

    /// Drops the log of a container instance the kubelet removed.
    pub fn remove(&self, container_id: &str) {
        if let Some(log) = lock(&self.logs).remove(container_id) {
            log.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_continues_where_it_stopped_and_sees_the_end() {
        let logs = PodLogs::default();
        let log = logs.open("containerd://1");
        log.append("one\n".into());
        log.append("two\n".into());
        let first = log.read_from(0);
        assert_eq!(
            first.lines.iter().map(|line| line.text.as_str()).collect::<Vec<_>>(),
            ["one\n", "two\n"]
        );
        assert!(!first.closed);
        log.append("three".into());
        log.close();
        let rest = log.read_from(first.next);
        assert_eq!(rest.lines.len(), 1);
        assert_eq!(rest.lines[0].text, "three");
        assert!(rest.closed);
        logs.remove("containerd://1");
        assert!(logs.get("containerd://1").is_none());
    }

    #[test]
    fn the_oldest_lines_go_beyond_the_size_limit() {
        let log = ContainerLog::new();
        let line = "x".repeat(1024 * 1024 - 1) + "\n";
        for _ in 0..12 {
            log.append(line.clone());
        }
        let read = log.read_from(0);
        assert_eq!(read.lines.len(), 10);
        assert_eq!(read.next, 12);
    }
}
