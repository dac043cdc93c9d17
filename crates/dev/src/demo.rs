//! `servicerefresh demo`: a simulated cluster, the operator and one ServiceRefresh in a
//! single process. It shows the batches progressing live and ends with a per-batch summary,
//! so a new user sees the whole product in under thirty seconds without a cluster. On a
//! terminal the progress is an animated bar, as `servicerefresh start --wait` shows it, with
//! each completed batch printed above it; otherwise one plain line per change.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use servicerefresh_sim::{FaultConfig, SimConfig, SimHandle};
use thiserror::Error;

use servicerefresh_core::crd::{
    BatchPhase, BatchStatus, Phase, ServiceRefresh, ServiceRefreshStatus,
};
use servicerefresh_core::engine::Plan;
use servicerefresh_core::engine::view::RunView;
use servicerefresh_operator::controller::{self, Clients, OperatorConfig};

/// Namespace the demo fleet lives in.
const NAMESPACE: &str = "arcgis";
/// A run that has not ended by then is reported as stuck.
const DEADLINE: Duration = Duration::from_secs(90);

/// Shape of the demo cluster and run.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub deployments: usize,
    pub fail: usize,
    pub batch_size: u32,
    /// Standard output is a terminal: animate the progress instead of printing lines.
    pub terminal: bool,
}

/// What can stop the demo before the run ends.
#[derive(Debug, Error)]
pub enum DemoError {
    #[error("cannot start the simulated cluster")]
    Sim(#[source] servicerefresh_sim::SimError),
    #[error("cannot configure a client for the simulated cluster")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    #[error("the Kubernetes API refused a request: {}", api_message(.0))]
    Api(#[from] kube::Error),
    #[error("the demo's ServiceRefresh manifest does not parse")]
    Manifest(#[source] serde_json::Error),
    #[error("the run did not end within {0:?}")]
    Timeout(Duration),
    #[error("the operator stopped")]
    Operator(#[source] controller::StartupError),
    #[error("the watch on the ServiceRefresh ended before the run did")]
    WatchEnded,
}

fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// Runs the demo, writing progress to `out`. The exit code reflects the run's outcome.
pub async fn run(options: DemoOptions, out: &mut impl Write) -> ExitCode {
    match run_demo(&options, out).await {
        Ok(Phase::Succeeded) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(err) => {
            let _ = writeln!(out, "error: {err}");
            ExitCode::from(2)
        }
    }
}

/// A kube client for the demo's simulated cluster.
async fn sim_client(sim: &SimHandle) -> Result<Client, DemoError> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml(NAMESPACE))
        .map_err(DemoError::Kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(DemoError::Kubeconfig)?;
    Ok(Client::try_from(config)?)
}

/// Installs the CRDs (ServiceRefresh and ServiceRefreshPlan), as `kubectl apply -f crds/`
/// would (the end-to-end tests install them the same way).
pub async fn install_crd(client: &Client) -> Result<(), kube::Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(controller::FIELD_MANAGER).force();
    for crd in servicerefresh_core::crd::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(&name, &params, &Patch::Apply(crd)).await?;
    }
    Ok(())
}

async fn run_demo(options: &DemoOptions, out: &mut impl Write) -> Result<Phase, DemoError> {
    let started = Instant::now();
    let sim = servicerefresh_sim::start(SimConfig {
        namespace: NAMESPACE.into(),
        deployments: options.deployments,
        rollout_ms: 1200,
        rollout_jitter_ms: 800,
        fail: options.fail,
        progress_deadline_seconds: 4,
        faults: FaultConfig::default(),
        ..SimConfig::default()
    })
    .await
    .map_err(DemoError::Sim)?;
    let client = sim_client(&sim).await?;
    let _ = writeln!(
        out,
        "simulated cluster at {} with {} Deployments in namespace {NAMESPACE} ({} built to fail)",
        sim.base_url(),
        options.deployments,
        options.fail
    );
    slow_down_a_few(&client).await?;
    install_crd(&client).await?;

    let (stop_operator, operator_stopped) = tokio::sync::oneshot::channel::<()>();
    let clients = Clients::single(client.clone(), sim.base_url());
    let operator = tokio::spawn(controller::run(clients, OperatorConfig::default(), async move {
        let _ = operator_stopped.await;
    }));

    let refreshes: Api<ServiceRefresh> = Api::namespaced(client.clone(), NAMESPACE);
    let manifest: ServiceRefresh = serde_json::from_value(json!({
        "apiVersion": "gisops.io/v1alpha1",
        "kind": "ServiceRefresh",
        "metadata": {"name": "refresh-all-services", "namespace": NAMESPACE},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/managed-by": "arcgis"}},
            "batchSize": options.batch_size,
            "batchTimeout": "30s",
            "trigger": "proxy-settings-v2"
        }
    }))
    .map_err(DemoError::Manifest)?;
    refreshes.create(&PostParams::default(), &manifest).await?;
    let _ = writeln!(
        out,
        "applied ServiceRefresh {NAMESPACE}/refresh-all-services (batchSize {})\n",
        options.batch_size
    );

    let mut progress = if options.terminal { Progress::bar() } else { Progress::Lines(out) };
    let outcome = tokio::time::timeout(DEADLINE, follow(&refreshes, &mut progress, started)).await;
    progress.finish();
    let _ = stop_operator.send(());
    let operator_result = operator.await;
    let refresh = match outcome {
        Ok(refresh) => refresh,
        Err(_) => Err(DemoError::Timeout(DEADLINE)),
    };
    let plan = match &refresh {
        Ok(refresh) => crate::plans::plan_of(&client, refresh).await,
        Err(_) => None,
    };
    sim.shutdown().await;
    let refresh = refresh?;
    let status = refresh.status.unwrap_or_default();
    if let Ok(Err(error)) = operator_result {
        return Err(DemoError::Operator(error));
    }
    print_summary(&status, plan.as_ref(), out);
    let phase = status.phase.unwrap_or(Phase::Failed);
    let _ = writeln!(out, "\nrun {phase:?} in {:.1}s", started.elapsed().as_secs_f64());
    Ok(phase)
}

/// A few Deployments roll out slowly, as big map services do.
async fn slow_down_a_few(client: &Client) -> Result<(), DemoError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let list = deployments.list(&ListParams::default()).await?;
    for deployment in list.items.iter().rev().step_by(9).take(3) {
        let name = deployment.metadata.name.clone().unwrap_or_default();
        let patch = json!({"metadata": {"annotations": {"sim.gisops.io/rollout-ms": "3500"}}});
        deployments.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    }
    Ok(())
}

/// Where the run's progress goes: plain lines, or an animated bar on a terminal.
enum Progress<'a, W: Write> {
    Lines(&'a mut W),
    Bar(ProgressBar),
}

impl<W: Write> Progress<'_, W> {
    /// A spinner, the share of services with a result, and what the run is doing.
    fn bar() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} services  {msg}",
        )
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(120));
        Self::Bar(bar)
    }

    /// A line that stays: a completed batch.
    fn line(&mut self, line: &str) {
        match self {
            Self::Lines(out) => {
                let _ = writeln!(out, "{line}");
            }
            Self::Bar(bar) => bar.println(line),
        }
    }

    /// The run's state now; plain lines print it only when it changed.
    fn state(&mut self, status: &ServiceRefreshStatus, line: String, last_line: &mut String) {
        match self {
            Self::Lines(out) => {
                if line[9..] != last_line.get(9..).unwrap_or_default()[..] {
                    let _ = writeln!(out, "{line}");
                    *last_line = line;
                }
            }
            Self::Bar(bar) => {
                let totals = &status.totals;
                bar.set_length(u64::from(totals.services));
                bar.set_position(u64::from(totals.ready + totals.failed + totals.skipped));
                bar.set_message(format!(
                    "{} batch {}  ready {}  failed {}",
                    status.phase.map(|p| format!("{p:?}")).unwrap_or_default(),
                    status.batch.clone().unwrap_or_default(),
                    totals.ready,
                    totals.failed,
                ));
            }
        }
    }

    fn finish(&mut self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// Reports the run's progress whenever it changes, until the run ends.
async fn follow<W: Write>(
    refreshes: &Api<ServiceRefresh>,
    out: &mut Progress<'_, W>,
    started: Instant,
) -> Result<Box<ServiceRefresh>, DemoError> {
    let config = watcher::Config::default().fields("metadata.name=refresh-all-services");
    let mut events = watcher::watcher(refreshes.clone(), config).boxed();
    let mut last_line = String::new();
    let mut announced_batches = 0usize;
    while let Some(event) = events.next().await {
        let Ok(watcher::Event::Apply(refresh) | watcher::Event::InitApply(refresh)) = event else {
            continue;
        };
        let Some(status) = refresh.status.clone() else { continue };
        for batch in &status.batches {
            if batch.index as usize > announced_batches && batch.phase == BatchPhase::Completed {
                out.line(&format!("  {}", batch_line(&status, batch)));
                announced_batches = batch.index as usize;
            }
        }
        let line = format!(
            "[{:>5.1}s] {:<9} batch {:<6} ready {:<8} failed {}",
            started.elapsed().as_secs_f64(),
            status.phase.map(|p| format!("{p:?}")).unwrap_or_default(),
            status.batch.clone().unwrap_or_default(),
            status.progress.clone().unwrap_or_default(),
            status.totals.failed,
        );
        out.state(&status, line, &mut last_line);
        if matches!(status.phase, Some(Phase::Succeeded | Phase::Failed | Phase::Cancelled)) {
            return Ok(Box::new(refresh));
        }
    }
    Err(DemoError::WatchEnded)
}

fn batch_line(status: &ServiceRefreshStatus, batch: &BatchStatus) -> String {
    let counts = batch.counts.clone().unwrap_or_default();
    let seconds = match (&batch.start_time, &batch.end_time) {
        (Some(start), Some(end)) => end.0.duration_since(start.0).as_secs_f64(),
        _ => 0.0,
    };
    let total = status
        .batch
        .as_deref()
        .and_then(|batch| batch.split_once('/'))
        .map_or("?", |(_, total)| total);
    format!(
        "batch {:>2}/{total} done in {}: {} ready, {} failed, {} skipped",
        batch.index,
        took(seconds),
        counts.ready,
        counts.failed,
        counts.skipped,
    )
}

/// A batch's duration in five columns: batch times are stored to the microsecond, so a batch
/// shorter than a second reads in milliseconds (`  9ms`) rather than `0.0s`.
fn took(seconds: f64) -> String {
    if seconds < 1.0 { format!("{:>3.0}ms", seconds * 1000.0) } else { format!("{seconds:>4.1}s") }
}

fn print_summary(status: &ServiceRefreshStatus, plan: Option<&Plan>, out: &mut impl Write) {
    let _ = writeln!(out, "\nsummary:");
    let view = RunView::new(status, plan, NAMESPACE);
    for batch in &status.batches {
        let _ = writeln!(out, "  {}", batch_line(status, batch));
        let Some(listed) = view.batches.iter().find(|listed| listed.index == batch.index) else {
            continue;
        };
        for service in &listed.services {
            if let (Some(result), Some(message)) = (service.result, service.message.as_ref())
                && result != servicerefresh_core::crd::ServiceResult::Ready
            {
                let _ = writeln!(out, "      {} {:?}: {message}", service.key.name, result);
            }
        }
    }
    let totals = &status.totals;
    let _ = writeln!(
        out,
        "totals: {} services, {} restarted, {} ready, {} failed, {} skipped",
        totals.services, totals.restarted, totals.ready, totals.failed, totals.skipped
    );
}

#[cfg(test)]
mod tests {
    use super::took;

    #[test]
    fn short_batches_read_in_milliseconds() {
        assert_eq!(took(0.009), "  9ms");
        assert_eq!(took(0.0114), " 11ms");
        assert_eq!(took(1.63), " 1.6s");
    }
}
