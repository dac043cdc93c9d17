//! Real kubectl binaries for tests: the installed `kubectl` and the
//! versioned ones the Cloud SDK ships (`/usr/lib/google-cloud-sdk/bin/
//! kubectl.1.27` ... `kubectl.1.33`), as a matrix a test runs the same
//! commands through. Each binary keeps its discovery and HTTP caches in a
//! directory of its own, so versions never read each other's caches.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use tempfile::TempDir;

/// Where the Cloud SDK keeps the versioned kubectls.
const SDK_BIN: &str = "/usr/lib/google-cloud-sdk/bin";
/// The versioned kubectls looked for, oldest first.
pub const MATRIX_VERSIONS: [&str; 7] = ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33"];

/// One kubectl binary.
#[derive(Debug, Clone)]
pub struct KubectlBin {
    /// The binary.
    pub path: PathBuf,
    /// `1.27` ... `1.33`, or `installed` for the one on the PATH.
    pub version: String,
    /// Home and cache directory of this binary's runs, removed with the last clone.
    home: Arc<TempDir>,
}

/// What one run printed and how it ended.
#[derive(Debug, Clone)]
pub struct Ran {
    /// Exit code (`None` when killed by a signal or not started).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Exit code 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for Ran {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}\nstdout: {}\nstderr: {}", self.code, self.stdout, self.stderr)
    }
}

fn runs(path: &Path) -> bool {
    std::process::Command::new(path)
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

impl KubectlBin {
    fn new(path: PathBuf, version: &str, tag: &str) -> Self {
        let home = tempfile::Builder::new()
            .prefix(&format!("sim-kubectl-{tag}-{version}-"))
            .tempdir()
            .expect("a home directory for kubectl");
        KubectlBin { path, version: version.to_string(), home: Arc::new(home) }
    }

    /// Runs `kubectl --kubeconfig <kubeconfig> <args>`.
    pub async fn run(&self, kubeconfig: &Path, args: &[&str]) -> Ran {
        let out = tokio::process::Command::new(&self.path)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .env("HOME", self.home.path())
            .env("KUBECACHEDIR", self.home.path().join("cache"))
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .output()
            .await;
        match out {
            Ok(out) => Ran {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            Err(error) => Ran { code: None, stdout: String::new(), stderr: error.to_string() },
        }
    }

    /// [`Self::run`] that must succeed; its stdout.
    pub async fn ok(&self, kubeconfig: &Path, args: &[&str]) -> String {
        let ran = self.run(kubeconfig, args).await;
        assert!(ran.ok(), "kubectl {} {args:?} failed:\n{ran}", self.version);
        ran.stdout
    }
}

/// The installed kubectl (`kubectl` on the PATH), if it runs. `tag` names
/// the test, to keep caches apart.
pub fn installed(tag: &str) -> Option<KubectlBin> {
    runs(Path::new("kubectl")).then(|| KubectlBin::new(PathBuf::from("kubectl"), "installed", tag))
}

/// The installed kubectl and every versioned one that runs, installed
/// first. Empty when none is there (the test then has nothing to check).
pub fn matrix(tag: &str) -> Vec<KubectlBin> {
    let mut bins: Vec<KubectlBin> = installed(tag).into_iter().collect();
    for version in MATRIX_VERSIONS {
        let path = Path::new(SDK_BIN).join(format!("kubectl.{version}"));
        if runs(&path) {
            bins.push(KubectlBin::new(path, version, tag));
        }
    }
    bins
}

/// The minor version of a matrix entry (`installed` counts as the newest).
pub fn minor(bin: &KubectlBin) -> u32 {
    bin.version.strip_prefix("1.").and_then(|minor| minor.parse().ok()).unwrap_or(u32::MAX)
}
