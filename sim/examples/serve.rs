//! Runs a simulated cluster on a fixed port for manual testing:
//! `cargo run -p servicerefresh-sim --example serve -- 127.0.0.1:18080 20 /tmp/sim.kubeconfig`.

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args.next().unwrap_or_else(|| "127.0.0.1:18080".into()).parse()?;
    let deployments: usize = args.next().unwrap_or_else(|| "20".into()).parse()?;
    let kubeconfig = args.next().unwrap_or_else(|| "/tmp/sim.kubeconfig".into());
    let sim = servicerefresh_sim::start(servicerefresh_sim::SimConfig {
        listen,
        deployments,
        fail: 1,
        rollout_ms: 3000,
        ..Default::default()
    })
    .await?;
    sim.write_kubeconfig(std::path::Path::new(&kubeconfig))?;
    println!("sim listening on {} (kubeconfig {kubeconfig})", sim.base_url());
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
