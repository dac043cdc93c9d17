//! The development subcommands, present with the `sim` feature: `sim` serves the simulated
//! cluster for kubectl and a separately started operator, and `demo` runs the whole product
//! in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use servicerefresh::demo::{self, DemoOptions};
use servicerefresh_sim::{FaultConfig, SimConfig};

#[derive(clap::Args)]
pub struct SimArgs {
    /// Address to listen on; port 0 picks a free port. The address is printed.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to write the kubeconfig for the simulated cluster.
    #[arg(long, default_value = "sim.kubeconfig")]
    kubeconfig: PathBuf,
    /// Namespace the generated Deployments live in.
    #[arg(long, default_value = "arcgis")]
    namespace: String,
    /// Number of GIS-like Deployments to generate.
    #[arg(long, default_value_t = 40)]
    deployments: usize,
    /// Mean simulated rollout time of a Deployment, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    rollout_ms: u64,
    /// Rollouts take --rollout-ms ± this many milliseconds, uniformly; 0 makes every rollout
    /// take exactly --rollout-ms.
    #[arg(long, default_value_t = 500)]
    rollout_jitter_ms: u64,
    /// Number of generated Deployments whose new pods never become available.
    #[arg(long, default_value_t = 0)]
    fail: usize,
    /// progressDeadlineSeconds of the generated Deployments.
    #[arg(long, default_value_t = 600)]
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
    let options =
        DemoOptions { deployments: args.deployments, fail: args.fail, batch_size: args.batch_size };
    demo::run(options, &mut std::io::stdout()).await
}

pub async fn run_sim(args: SimArgs) -> ExitCode {
    if let Some(code) = too_many_failing(args.fail, args.deployments) {
        return code;
    }
    let config = SimConfig {
        listen: args.listen,
        namespace: args.namespace.clone(),
        deployments: args.deployments,
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
        nodes: args.nodes.map(usize::from),
        spare_cpu_millis: args.spare_cpu,
        ..SimConfig::default()
    };
    let sim = match servicerefresh_sim::start(config).await {
        Ok(sim) => sim,
        Err(error) => {
            eprintln!("error: cannot start the simulated cluster: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = sim.write_kubeconfig(&args.kubeconfig) {
        eprintln!("error: cannot write {}: {error}", args.kubeconfig.display());
        return ExitCode::FAILURE;
    }
    println!("simulated cluster listening on {}", sim.base_url());
    println!("kubeconfig written to {}", args.kubeconfig.display());
    println!(
        "try: KUBECONFIG={} kubectl get deployments -n {}",
        args.kubeconfig.display(),
        args.namespace
    );
    crate::shutdown_signal().await;
    sim.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
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
