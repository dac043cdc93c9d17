//! A pod's sandbox on this host: its own loopback IP (as a pod network
//! would give it one), its directory, and the ServiceAccount credentials the
//! kubelet mounts.
//!
//! - IPs come from 127.0.0.0/8 (never 127.0.0.1), each held by a lock file
//!   in a directory shared by every sim on the machine, so that pods of two
//!   sims never share one; the lock goes with the sandbox (or the process).
//! - The directory `<root>/<namespace>_<pod>_<uid>/rootfs` stands for the
//!   container's root: the processes start there, with `HOME` there, and
//!   find `var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}`
//!   under it, laid out as the kubelet's projected volume.
//! - The token is a TokenRequest bound to the pod (its uid in the claims),
//!   for the API audience, refreshed at 80% of its life as the kubelet does.
//! - Since a process cannot see that layout at the absolute path client
//!   libraries read in a pod, a kubeconfig beside `rootfs` names the API
//!   server's TLS port, the CA file and the token file (`tokenFile`, which
//!   kube-rs and client-go reread as they reread the in-cluster token);
//!   processes get it as `KUBECONFIG`.

use std::fs::{File, TryLockError};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::auth::{BoundObject, TokenGrant, api_audiences};
use crate::error::GroupResource;
use crate::state::SimState;
use crate::util::metadata_str;

/// Where the kubelet mounts the ServiceAccount volume in a container.
pub const SERVICE_ACCOUNT_DIR: &str = "var/run/secrets/kubernetes.io/serviceaccount";
/// How many loopback addresses are tried before giving up.
const IP_ATTEMPTS: u64 = 4096;

/// A pod's IP, held while the lock file is open.
#[derive(Debug)]
pub struct PodIp {
    pub ip: Ipv4Addr,
    _lock: File,
}

/// Takes a free loopback IP (127.1.0.1 to 127.254.255.254), starting at a
/// random one.
pub fn allocate_ip(start: u64) -> io::Result<PodIp> {
    let dir = std::env::temp_dir().join("servicerefresh-sim-pod-ips");
    std::fs::create_dir_all(&dir)?;
    const SPACE: u64 = 254 * 256 * 254;
    for attempt in 0..IP_ATTEMPTS {
        let index = (start + attempt) % SPACE;
        let ip = Ipv4Addr::new(
            127,
            (1 + index / (256 * 254)) as u8,
            ((index / 254) % 256) as u8,
            (1 + index % 254) as u8,
        );
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(ip.to_string()))?;
        match file.try_lock() {
            Ok(()) => return Ok(PodIp { ip, _lock: file }),
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(error)) => return Err(error),
        }
    }
    Err(io::Error::other("no free loopback address for a pod"))
}

/// The files of a pod on this host (removed with it).
#[derive(Debug)]
pub struct PodDir {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
}

impl PodDir {
    /// Makes `<root>/<namespace>_<name>_<uid>/rootfs`.
    pub fn create(root: &Path, pod: &Value) -> io::Result<Self> {
        let field = |key: &str| metadata_str(pod, key).unwrap_or("");
        let dir = root.join(format!("{}_{}_{}", field("namespace"), field("name"), field("uid")));
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&rootfs)?;
        Ok(PodDir { dir, rootfs })
    }

    /// The kubeconfig the pod's processes get.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    fn service_account_dir(&self) -> PathBuf {
        self.rootfs.join(SERVICE_ACCOUNT_DIR)
    }
}

impl Drop for PodDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the kubelet mounts the ServiceAccount token: the pod's
/// `automountServiceAccountToken`, else its ServiceAccount's, else yes.
pub fn automounts(sim: &SimState, pod: &Value) -> bool {
    if let Some(choice) = pod.pointer("/spec/automountServiceAccountToken").and_then(Value::as_bool)
    {
        return choice;
    }
    let namespace = metadata_str(pod, "namespace").unwrap_or("");
    let account =
        pod.pointer("/spec/serviceAccountName").and_then(Value::as_str).unwrap_or("default");
    sim.store
        .lock()
        .get(&GroupResource::new("", "serviceaccounts"), namespace, account)
        .and_then(|account| account.get("automountServiceAccountToken").and_then(Value::as_bool))
        .unwrap_or(true)
}

/// A mounted token: when it was issued and when it expires (seconds since
/// the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountedToken {
    pub issued_at: i64,
    pub expires_at: i64,
}

impl MountedToken {
    /// When the kubelet replaces it: at 80% of its life.
    pub fn refresh_at(&self) -> i64 {
        self.issued_at + (self.expires_at - self.issued_at) * 4 / 5
    }
}

/// Writes `contents` to `path` through a temporary file and a rename, so a
/// reader never sees half a file (the kubelet's atomic writer).
fn write_atomically(path: &Path, contents: &str) -> io::Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, contents)?;
    std::fs::rename(&temporary, path)
}

/// Requests a token bound to the pod and writes it, with the CA and the
/// namespace on first mount; the kubelet's `FailedMount` message otherwise.
pub fn mount_token(sim: &SimState, pod: &Value, dir: &PodDir) -> Result<MountedToken, String> {
    let namespace = metadata_str(pod, "namespace").unwrap_or("").to_string();
    let account =
        pod.pointer("/spec/serviceAccountName").and_then(Value::as_str).unwrap_or("default");
    let now = jiff::Timestamp::now().as_second();
    let grant = TokenGrant {
        namespace: namespace.clone(),
        name: account.to_string(),
        expiration_seconds: sim.config.kubelet.pod_token_expiration_seconds.max(1),
        audiences: api_audiences(),
        bound: Some(BoundObject {
            kind: "Pod".into(),
            name: metadata_str(pod, "name").unwrap_or("").to_string(),
            uid: metadata_str(pod, "uid").unwrap_or("").to_string(),
        }),
        now,
    };
    let issued = {
        let store = sim.store.lock();
        sim.tokens.issue(&store, &sim.rng, &grant)
    };
    let (token, expires_at) = issued.map_err(|error| {
        format!(
            "MountVolume.SetUp failed for volume \"kube-api-access\" : failed to fetch token: {}",
            error.message
        )
    })?;
    let target = dir.service_account_dir();
    let written = (|| -> io::Result<()> {
        std::fs::create_dir_all(&target)?;
        write_atomically(&target.join("ca.crt"), sim.pki.ca_pem())?;
        write_atomically(&target.join("namespace"), &namespace)?;
        write_atomically(&target.join("token"), &token)
    })();
    written.map_err(|error| {
        format!("MountVolume.SetUp failed for volume \"kube-api-access\" : {error}")
    })?;
    Ok(MountedToken { issued_at: now, expires_at })
}

/// Writes the pod's kubeconfig: the API server's TLS port, the mounted CA
/// and token files, the pod's namespace.
pub fn write_kubeconfig(dir: &PodDir, api_server: SocketAddr, pod: &Value) -> io::Result<()> {
    let namespace = metadata_str(pod, "namespace").unwrap_or("");
    let account =
        pod.pointer("/spec/serviceAccountName").and_then(Value::as_str).unwrap_or("default");
    let mounted = dir.service_account_dir();
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster:\n    server: https://{api_server}\n    certificate-authority: {ca}\nusers:\n- name: system:serviceaccount:{namespace}:{account}\n  user:\n    tokenFile: {token}\ncontexts:\n- name: in-cluster\n  context:\n    cluster: kubernetes\n    user: system:serviceaccount:{namespace}:{account}\n    namespace: {namespace}\ncurrent-context: in-cluster\n",
        ca = mounted.join("ca.crt").display(),
        token = mounted.join("token").display(),
    );
    write_atomically(&dir.kubeconfig(), &yaml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_pods_never_share_an_ip_and_a_released_one_is_reused() {
        let start = 97_531;
        let first = allocate_ip(start).unwrap();
        let second = allocate_ip(start).unwrap();
        assert_ne!(first.ip, second.ip);
        assert_eq!(first.ip.octets()[0], 127);
        assert_ne!(first.ip, Ipv4Addr::LOCALHOST);
        let released = first.ip;
        drop(first);
        assert_eq!(allocate_ip(start).unwrap().ip, released);
    }

    #[test]
    fn tokens_are_refreshed_at_four_fifths_of_their_life() {
        let token = MountedToken { issued_at: 1_000, expires_at: 4_607 };
        assert_eq!(token.refresh_at(), 1_000 + 2_885);
    }
}
