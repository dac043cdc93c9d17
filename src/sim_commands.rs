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
