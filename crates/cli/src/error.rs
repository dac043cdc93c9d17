//! What can stop a CLI command before it has an answer, each as one readable line that names
//! the server or the object concerned. Every one of them exits with code 3 (usage or API
//! error), which keeps it apart from a run's own outcome (0, 1 and 2).

use std::path::PathBuf;

use thiserror::Error;

/// Exit code of a usage or API error.
pub const EXIT_ERROR: u8 = 3;

/// Why a CLI command could not do its job.
#[derive(Debug, Error)]
pub enum CliError {
    #[error("cannot load kubeconfig {}: {source}", path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: Box<kube::config::KubeconfigError>,
    },

    #[error("cannot use kubeconfig context {context:?}: {source}")]
    Context {
        context: String,
        #[source]
        source: Box<kube::config::KubeconfigError>,
    },

    #[error("no cluster configured: set KUBECONFIG, pass --kubeconfig, or run in a pod ({source})")]
    NoConfig {
        #[source]
        source: Box<kube::config::InferConfigError>,
    },

    #[error("cannot create a client for {server}: {source}")]
    Client {
        server: String,
        #[source]
        source: Box<kube::Error>,
    },

    #[error("cannot reach the Kubernetes API server at {server}: {cause}")]
    Unreachable {
        server: String,
        /// The innermost cause, such as "Connection refused (os error 111)".
        cause: String,
        #[source]
        source: Box<kube::Error>,
    },

    #[error(
        "the ServiceRefresh CRD (servicerefreshes.gisops.io) is not installed on {server}; install it with: servicerefresh crd | kubectl apply -f -"
    )]
    CrdMissing { server: String },

    #[error("ServiceRefresh {name:?} not found in namespace {namespace:?} on {server}")]
    NotFound { namespace: String, name: String, server: String },

    #[error("ServiceRefresh {namespace}/{name} was deleted while its run was being followed")]
    Deleted { namespace: String, name: String },

    #[error("cannot {action} ServiceRefresh {namespace}/{name} on {server}: {message}")]
    Api {
        action: &'static str,
        namespace: String,
        name: String,
        server: String,
        /// The API server's own message.
        message: String,
        #[source]
        source: Box<kube::Error>,
    },

    #[error("the watch on ServiceRefresh {namespace}/{name} at {server} failed: {source}")]
    Watch {
        namespace: String,
        name: String,
        server: String,
        #[source]
        source: Box<kube::runtime::watcher::Error>,
    },

    #[error(
        "ServiceRefresh {namespace}/{name} changed {attempts} times while being annotated; try again"
    )]
    Contended { namespace: String, name: String, attempts: usize },

    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        EXIT_ERROR
    }
}

/// The innermost error of a chain: for a connection failure, the OS error that explains it.
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}
