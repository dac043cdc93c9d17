//! The development subcommands, present with the `sim` feature: `sim` serves the simulated
//! cluster for kubectl and a separately started operator, and `demo` runs the whole product
//! in one process.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

mod detach;

use crate::demo::{self, DemoOptions};
use servicerefresh_sim::{FaultConfig, SimConfig, SimHandle};

#[derive(clap::Args)]
pub struct SimArgs {
    /// Address to listen on; port 0 picks a free port. The address is printed.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to write the kubeconfig for the simulated cluster (plain HTTP: kubectl acts as an
    /// unauthenticated admin, the operator sends the admin token).
    #[arg(long, default_value = "sim.kubeconfig")]
    kubeconfig: PathBuf,
    /// Where to write a kubeconfig that talks HTTPS with the cluster CA embedded and the admin
    /// token (`kubectl auth whoami`: kubernetes-admin). Default: sim-https.kubeconfig beside
    /// --kubeconfig.
    #[arg(long)]
    https_kubeconfig: Option<PathBuf>,
    /// Where to write the cluster CA's certificate (PEM), which signs the HTTPS port's
    /// certificate and those of --issue-certificate. Default: sim-ca.crt beside --kubeconfig.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Write an HTTPS kubeconfig with a token of a ServiceAccount, created (with its namespace)
    /// when missing: NAMESPACE/SERVICEACCOUNT=PATH. The token is valid for a day. Repeatable.
    #[arg(long, value_name = "NAMESPACE/SERVICEACCOUNT=PATH", value_parser = parse_kubeconfig_for)]
    kubeconfig_for: Vec<AccountKubeconfig>,
    /// Write a serving certificate signed by the cluster CA (tls.crt with the chain, tls.key,
    /// and ca.crt) into this directory, for localhost, 127.0.0.1, ::1 and every
    /// --certificate-dns-name: for the operator's --admin-tls-cert/--admin-tls-key.
    #[arg(long, value_name = "DIR")]
    issue_certificate: Option<PathBuf>,
    /// A further DNS name of the --issue-certificate certificate (e.g. a Service's
    /// NAME.NAMESPACE.svc). Repeatable.
    #[arg(long, value_name = "NAME", requires = "issue_certificate")]
    certificate_dns_name: Vec<String>,
    /// Run pods of an image for real: REPOSITORY=PATH maps the image repository (any tag or
    /// digest) to a local executable, the image's entrypoint. The sim's kubelet then starts
    /// such pods' containers as processes, with their environment, a ServiceAccount token and
    /// a loopback IP of their own. Repeatable.
    #[arg(long, value_name = "REPOSITORY=PATH", value_parser = parse_run_image)]
    run_image: Vec<(String, PathBuf)>,
    /// Namespace the generated Deployments live in.
    #[arg(long, default_value = "arcgis")]
    namespace: String,
    /// Number of GIS-like Deployments to generate.
    #[arg(long, default_value_t = 40)]
    deployments: usize,
    /// Number of GIS-like data-store StatefulSets to generate.
    #[arg(long, default_value_t = 0)]
    statefulsets: usize,
    /// Number of GIS-like node-agent DaemonSets to generate.
    #[arg(long, default_value_t = 0)]
    daemonsets: usize,
    /// Mean simulated rollout time of a Deployment, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    rollout_ms: u64,
    /// Rollouts take --rollout-ms ± this many milliseconds, uniformly; 0 makes every rollout
    /// take exactly --rollout-ms.
    #[arg(long, default_value_t = 500)]
    rollout_jitter_ms: u64,
    /// Number of generated workloads whose new pods never become available, drawn among the
    /// Deployments, StatefulSets and DaemonSets.
    #[arg(long, default_value_t = 0)]
    fail: usize,
    /// progressDeadlineSeconds of the generated Deployments: how long a failing one takes to
    /// report ProgressDeadlineExceeded. Short, so that a try-out with --fail ends in seconds;
    /// Deployments you create get the API default, 600.
    #[arg(long, default_value_t = 10)]
    progress_deadline_seconds: i32,
    /// Fraction (0 to 1) of write requests answered with an error.
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    write_error_rate: f64,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Close every open watch after this many milliseconds.
    #[arg(long)]
    watch_drop_every_ms: Option<u64>,
    /// Seed for the generated fleet and the fault injection.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Give the cluster this many identical nodes with CPU and memory capacity: pods are
    /// scheduled by their requests, those that fit nowhere stay Pending (Unschedulable) and
    /// rollouts wait for room. Without it, capacity is unlimited.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    nodes: Option<u16>,
    /// CPU left over on the nodes once the generated Deployments' pods run, in total, as a
    /// Kubernetes quantity (1500m, 2); the nodes are sized for it. Default: 2 per node.
    #[arg(long, requires = "nodes", value_parser = parse_cpu)]
    spare_cpu: Option<u64>,
    /// How long a deleted pod takes to stop (30s, 1500ms): it shows Terminating and keeps its
    /// node's room meanwhile, never longer than its grace period (terminationGracePeriodSeconds,
    /// 30 s by default). 0s: deleted pods go at once. `kubectl delete pod --grace-period=0
    /// --force` is always immediate.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pod_stop_time: Duration,
    /// Start the simulated cluster in the background and return once its kubeconfigs are
    /// written, printing where everything is; its output goes to the kubeconfig's path with
    /// `.log` appended. For scripts and copy-paste recipes.
    #[arg(long)]
    detach: bool,
    /// Write the process id of the simulated cluster into this file (with --detach: the
    /// background process's), so that `kill "$(cat FILE)"` stops it.
    #[arg(long, value_name = "FILE")]
    pid_file: Option<PathBuf>,
}

/// A duration such as `12s`, `1500ms` or `1m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration: jiff::SignedDuration = text
        .parse()
        .map_err(|error| format!("{text:?} is not a duration such as 12s or 1500ms: {error}"))?;
    Duration::try_from(duration).map_err(|_| format!("{text:?} must not be negative"))
}

/// A CPU quantity (`1500m`, `1.5`, `2`) in millicores.
fn parse_cpu(value: &str) -> Result<u64, String> {
    servicerefresh_sim::cpu_millis(value).map_err(|error| format!("{value:?}: {error}"))
}

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Number of simulated Deployments.
    #[arg(long, default_value_t = 40)]
    deployments: usize,
    /// Number of Deployments built to fail (ProgressDeadlineExceeded).
    #[arg(long, default_value_t = 2)]
    fail: usize,
    /// Deployments restarted per batch (1 to 100).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    batch_size: u32,
}

fn parse_fraction(value: &str) -> Result<f64, String> {
    let fraction: f64 = value.parse().map_err(|_| format!("{value:?} is not a number"))?;
    if (0.0..=1.0).contains(&fraction) {
        Ok(fraction)
    } else {
        Err(format!("{value} is not between 0 and 1"))
    }
}

/// A `--kubeconfig-for` request.
#[derive(Clone, Debug)]
pub struct AccountKubeconfig {
    namespace: String,
    account: String,
    path: PathBuf,
}

fn parse_kubeconfig_for(value: &str) -> Result<AccountKubeconfig, String> {
    let (account, path) = value.split_once('=').ok_or("expected NAMESPACE/SERVICEACCOUNT=PATH")?;
    let (namespace, account) =
        account.split_once('/').ok_or("expected NAMESPACE/SERVICEACCOUNT before the =")?;
    if namespace.is_empty() || account.is_empty() || path.is_empty() {
        return Err("expected NAMESPACE/SERVICEACCOUNT=PATH, none of them empty".into());
    }
    Ok(AccountKubeconfig {
        namespace: namespace.into(),
        account: account.into(),
        path: PathBuf::from(path),
    })
}

fn parse_run_image(value: &str) -> Result<(String, PathBuf), String> {
    let (repository, path) = value.split_once('=').ok_or("expected REPOSITORY=PATH")?;
    if repository.is_empty() || repository.contains('@') {
        return Err(format!("{repository:?} is not an image repository (no tag or digest)"));
    }
    let path = std::fs::canonicalize(path).map_err(|error| format!("{path}: {error}"))?;
    if !path.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    Ok((repository.to_string(), path))
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_bytes()))
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

fn too_many_failing(fail: usize, deployments: usize) -> Option<ExitCode> {
    (fail > deployments).then(|| {
        eprintln!(
            "error: --fail {fail} asks for more failing Deployments than --deployments {deployments}"
        );
        ExitCode::from(2)
    })
}

pub async fn run_demo(args: DemoArgs) -> ExitCode {
    if let Some(code) = too_many_failing(args.fail, args.deployments) {
        return code;
    }
    let options = DemoOptions {
        deployments: args.deployments,
        fail: args.fail,
        batch_size: args.batch_size,
        terminal: std::io::IsTerminal::is_terminal(&std::io::stdout()),
    };
    demo::run(options, &mut std::io::stdout()).await
}

pub async fn run_sim(args: SimArgs) -> ExitCode {
    if args.detach {
        return detach::start_in_background(&args.kubeconfig, args.pid_file.as_deref());
    }
    let workloads = args.deployments + args.statefulsets + args.daemonsets;
    if args.fail > workloads {
        eprintln!(
            "error: --fail {} asks for more failing workloads than the {workloads} generated",
            args.fail
        );
        return ExitCode::from(2);
    }
    let config = SimConfig {
        listen: args.listen,
        namespace: args.namespace.clone(),
        deployments: args.deployments,
        stateful_sets: args.statefulsets,
        daemon_sets: args.daemonsets,
        rollout_ms: args.rollout_ms,
        rollout_jitter_ms: args.rollout_jitter_ms,
        fail: args.fail,
        progress_deadline_seconds: args.progress_deadline_seconds,
        faults: FaultConfig {
            write_error_rate: args.write_error_rate,
            latency_ms: args.latency_ms,
            watch_drop_every_ms: args.watch_drop_every_ms,
        },
        seed: args.seed,
        run_images: args.run_image.iter().cloned().collect(),
        nodes: args.nodes.map(usize::from),
        spare_cpu_millis: args.spare_cpu,
        pod_stop_time_ms: u64::try_from(args.pod_stop_time.as_millis()).unwrap_or(u64::MAX),
        ..SimConfig::default()
    };
    let sim = match servicerefresh_sim::start(config).await {
        Ok(sim) => sim,
        Err(error) => {
            eprintln!("error: cannot start the simulated cluster: {error}");
            return ExitCode::FAILURE;
        }
    };
    let written = write_files(&sim, &args);
    match written {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            sim.shutdown().await;
            return ExitCode::FAILURE;
        }
    }
    if let Some(pid_file) = &args.pid_file
        && let Err(error) = std::fs::write(pid_file, format!("{}\n", std::process::id()))
    {
        eprintln!("error: cannot write {}: {error}", pid_file.display());
        sim.shutdown().await;
        return ExitCode::FAILURE;
    }
    println!("{}{}", detach::READY_LINE_PREFIX, try_line(&args));
    servicerefresh_operator::shutdown::shutdown_signal().await;
    sim.shutdown().await;
    ExitCode::SUCCESS
}

fn try_line(args: &SimArgs) -> String {
    format!(
        "KUBECONFIG={} kubectl get deployments -n {}",
        args.kubeconfig.display(),
        args.namespace
    )
}

/// Writes the kubeconfigs, the CA and the certificate the flags ask for; the lines that
/// say where everything is.
fn write_files(sim: &SimHandle, args: &SimArgs) -> Result<Vec<String>, String> {
    let write = |path: &Path, contents: &str| {
        std::fs::write(path, contents)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))
    };
    let mut lines = vec![
        format!("simulated cluster listening on {}", sim.base_url()),
        format!("HTTPS (authenticated, as a real API server): {}", sim.secure_url()),
    ];
    sim.write_kubeconfig(&args.kubeconfig)
        .map_err(|error| format!("cannot write {}: {error}", args.kubeconfig.display()))?;
    lines.push(format!("kubeconfig written to {}", args.kubeconfig.display()));
    let beside = |name: &str| args.kubeconfig.with_file_name(name);
    let ca_file = args.ca_file.clone().unwrap_or_else(|| beside("sim-ca.crt"));
    write(&ca_file, sim.ca_certificate_pem())?;
    lines.push(format!("cluster CA certificate: {}", ca_file.display()));
    let https_kubeconfig =
        args.https_kubeconfig.clone().unwrap_or_else(|| beside("sim-https.kubeconfig"));
    write(&https_kubeconfig, &sim.secure_admin_kubeconfig_yaml(&args.namespace))?;
    lines.push(format!("HTTPS kubeconfig (kubernetes-admin): {}", https_kubeconfig.display()));
    for request in &args.kubeconfig_for {
        let (namespace, account) = (&request.namespace, &request.account);
        sim.create_namespace(namespace)
            .and_then(|()| sim.create_service_account(namespace, account))
            .and_then(|()| sim.write_service_account_kubeconfig(namespace, account, &request.path))
            .map_err(|error| format!("kubeconfig for {namespace}/{account}: {error}"))?;
        lines.push(format!(
            "HTTPS kubeconfig (system:serviceaccount:{namespace}:{account}): {}",
            request.path.display()
        ));
    }
    if let Some(dir) = &args.issue_certificate {
        let mut names = vec!["localhost".to_string()];
        names.extend(args.certificate_dns_name.iter().cloned());
        let ips = [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
        let issued =
            sim.issue_serving_certificate(&names, &ips).map_err(|error| error.to_string())?;
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        write(&dir.join("tls.crt"), &issued.chain_pem)?;
        write_private(&dir.join("tls.key"), &issued.key_pem)?;
        write(&dir.join("ca.crt"), sim.ca_certificate_pem())?;
        lines.push(format!(
            "serving certificate for {}, 127.0.0.1, ::1: {} and {} (CA: {})",
            names.join(", "),
            dir.join("tls.crt").display(),
            dir.join("tls.key").display(),
            dir.join("ca.crt").display()
        ));
    }
    for (repository, path) in &args.run_image {
        lines.push(format!("pods of {repository} run {}", path.display()));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::SimArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    fn parse(args: &[&str]) -> Result<SimArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("sim").chain(args.iter().copied())).map(|cli| cli.sim)
    }

    #[test]
    fn nodes_and_spare_cpu_take_a_count_and_a_kubernetes_quantity() {
        let args = parse(&["--nodes", "3", "--spare-cpu", "1500m"]).expect("valid flags");
        assert_eq!((args.nodes, args.spare_cpu), (Some(3), Some(1500)));
        let args = parse(&["--nodes", "2", "--spare-cpu", "1.5"]).expect("valid flags");
        assert_eq!(args.spare_cpu, Some(1500));
        assert_eq!(parse(&[]).expect("no flags").nodes, None);
    }

    #[test]
    fn pod_stop_time_takes_a_duration_and_defaults_to_at_once() {
        assert_eq!(parse(&[]).expect("no flags").pod_stop_time, Duration::ZERO);
        let args = parse(&["--pod-stop-time", "12s"]).expect("valid flags");
        assert_eq!(args.pod_stop_time, Duration::from_secs(12));
        let args = parse(&["--pod-stop-time", "1500ms"]).expect("valid flags");
        assert_eq!(args.pod_stop_time, Duration::from_millis(1500));
        let error = parse(&["--pod-stop-time", "12"]).err().expect("refused");
        assert!(error.to_string().contains("is not a duration"), "{error}");
        let error = parse(&["--pod-stop-time=-1s"]).err().expect("refused");
        assert!(error.to_string().contains("must not be negative"), "{error}");
    }

    #[test]
    fn bad_node_counts_and_quantities_are_refused() {
        assert!(parse(&["--nodes", "0"]).is_err());
        assert!(parse(&["--spare-cpu", "1500m"]).is_err(), "--spare-cpu needs --nodes");
        let error = parse(&["--nodes", "3", "--spare-cpu", "1.5 cores"]).err().expect("refused");
        assert!(
            error.to_string().contains("quantities must match the regular expression"),
            "{error}"
        );
        let error = parse(&["--nodes", "3", "--spare-cpu=-1"]).err().expect("refused");
        assert!(error.to_string().contains("must not be negative"), "{error}");
    }
}
