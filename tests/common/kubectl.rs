//! The real `kubectl` (from the PATH) as a client of the simulated cluster, with its own
//! kubeconfig and discovery cache in a temporary directory, as a user's shell would run it.

use std::process::{Command, Output};

use servicerefresh_sim::SimHandle;

use super::process::Kubeconfig;

/// kubectl pointed at one simulated cluster.
pub struct Kubectl {
    kubeconfig: Kubeconfig,
}

impl Kubectl {
    pub fn for_sim(sim: &SimHandle) -> Self {
        Self { kubeconfig: Kubeconfig::for_sim(sim) }
    }

    /// Runs `kubectl ARGS...` and returns its output, whatever its exit status.
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new("kubectl");
        command
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig.path)
            .env("KUBECACHEDIR", self.kubeconfig.dir().join("cache"))
            .env_remove("KUBERNETES_SERVICE_HOST");
        tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("kubectl's task was not cancelled")
            .expect("kubectl is installed (see README)")
    }

    /// Runs `kubectl ARGS...`, fails the test unless it succeeds, and returns its standard
    /// output.
    pub async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "kubectl {} failed: {}\nstdout: {stdout}\nstderr: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}
