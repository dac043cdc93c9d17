//! `sim --detach`: the simulated cluster as a background process, for scripts and copy-paste
//! recipes. The parent starts the same command line without `--detach`, sends its output to a
//! log file, and returns once the child says it is ready (its kubeconfigs are written), so the
//! next command of a script can use them at once.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The line the simulated cluster prints once everything is written and it serves requests.
pub const READY_LINE_PREFIX: &str = "try: ";

/// Starting takes well under a second; a minute covers a machine under heavy load.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const POLL_EVERY: Duration = Duration::from_millis(50);

pub fn start_in_background(kubeconfig: &Path, pid_file: Option<&Path>) -> ExitCode {
    let log_path = log_path(kubeconfig);
    match spawn_and_wait(&log_path) {
        Ok((pid, output)) => {
            print!("{output}");
            let stop = match pid_file {
                Some(file) => format!("kill \"$(cat {})\"", file.display()),
                None => format!("kill {pid}"),
            };
            println!(
                "running in the background as process {pid}, output in {}; stop it with: {stop}",
                log_path.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn log_path(kubeconfig: &Path) -> PathBuf {
    let mut name = kubeconfig.as_os_str().to_owned();
    name.push(".log");
    PathBuf::from(name)
}

fn spawn_and_wait(log_path: &Path) -> Result<(u32, String), String> {
    let exe = std::env::current_exe()
        .map_err(|error| format!("cannot find this program's path: {error}"))?;
    let args: Vec<OsString> = std::env::args_os().skip(1).filter(|arg| arg != "--detach").collect();
    let log = File::create(log_path)
        .map_err(|error| format!("cannot write {}: {error}", log_path.display()))?;
    let log_err =
        log.try_clone().map_err(|error| format!("cannot write {}: {error}", log_path.display()))?;
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|error| format!("cannot start the simulated cluster: {error}"))?;
    let started = Instant::now();
    loop {
        let output = read_log(log_path)?;
        if output.lines().any(|line| line.starts_with(READY_LINE_PREFIX)) {
            return Ok((child.id(), output));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the simulated cluster exited ({status}) before it was ready:\n{output}"
            ));
        }
        if started.elapsed() > READY_TIMEOUT {
            let _ = child.kill();
            return Err(format!(
                "the simulated cluster was not ready after {}s:\n{output}",
                READY_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(POLL_EVERY);
    }
}

fn read_log(path: &Path) -> Result<String, String> {
    let mut text = String::new();
    File::open(path)
        .and_then(|mut file| file.read_to_string(&mut text))
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    Ok(text)
}
