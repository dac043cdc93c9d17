//! Real Prometheus and Alertmanager for the health gate tests: Debian's `prometheus` and
//! `prometheus-alertmanager` binaries, started on loopback ports with their data in a
//! temporary directory. Prometheus scrapes the simulated fleet's application metrics
//! (`/sim/v1/metrics`) every second and evaluates one alerting rule, `SimHighErrorRate`,
//! whose alerts go to the Alertmanager. Both are killed when the handle is dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::wait_for;

/// The query the tests gate on: Deployments whose pods served errors in the last seconds.
pub const ERROR_QUERY: &str =
    "sum by (namespace, deployment) (rate(sim_http_errors_total[5s])) > 0";

pub struct Monitoring {
    pub prometheus_url: String,
    pub alertmanager_url: String,
    _prometheus: Child,
    _alertmanager: Child,
    dir: tempfile::TempDir,
}

/// The first of `names` on the PATH.
fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

fn spawn(program: &Path, args: &[String], log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("a log file");
    let err = out.try_clone().expect("a log file handle");
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("{} starts: {error}", program.display()))
}

async fn wait_ready(url: &str, log: &Path) {
    let client = reqwest::Client::new();
    let ready = format!("{url}/-/ready");
    let what = format!("{ready} to answer 200 (log: {})", log.display());
    wait_for(Duration::from_secs(60), &what, || async {
        let response = client.get(&ready).send().await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
}

impl Monitoring {
    /// Starts both, scraping the sim at `sim_url` (`http://host:port`). `None`, after
    /// printing "skipping", when the binaries are not installed (`.ci/install-tools`
    /// installs them).
    pub async fn start(sim_url: &str) -> Option<Self> {
        let (Some(prometheus), Some(alertmanager)) = (
            find_binary(&["prometheus"]),
            find_binary(&["prometheus-alertmanager", "alertmanager"]),
        ) else {
            println!("skipping: prometheus or prometheus-alertmanager is not installed");
            return None;
        };
        let dir = tempfile::tempdir().expect("a scratch directory");
        let path = |name: &str| dir.path().join(name);
        let (prometheus_port, alertmanager_port) = (free_port(), free_port());
        let sim_target = sim_url.trim_start_matches("http://").trim_end_matches('/');

        std::fs::write(
            path("alertmanager.yml"),
            "route: {receiver: none, group_wait: 1s, group_interval: 1s}\n\
             receivers: [{name: none}]\n",
        )
        .expect("alertmanager.yml");
        std::fs::write(
            path("rules.yml"),
            format!(
                "groups:\n\
                 - name: sim\n  \
                   rules:\n  \
                   - alert: SimHighErrorRate\n    \
                     expr: '{ERROR_QUERY}'\n    \
                     labels: {{severity: critical}}\n"
            ),
        )
        .expect("rules.yml");
        std::fs::write(
            path("prometheus.yml"),
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 rule_files: [{rules}]\n\
                 alerting:\n  alertmanagers:\n  - static_configs: [{{targets: ['127.0.0.1:{alertmanager_port}']}}]\n\
                 scrape_configs:\n\
                 - job_name: sim\n  \
                   metrics_path: /sim/v1/metrics\n  \
                   static_configs: [{{targets: ['{sim_target}']}}]\n",
                rules = path("rules.yml").display(),
            ),
        )
        .expect("prometheus.yml");

        let alertmanager_log = path("alertmanager.log");
        let alertmanager = spawn(
            &alertmanager,
            &[
                format!("--config.file={}", path("alertmanager.yml").display()),
                format!("--storage.path={}", path("alertmanager-data").display()),
                format!("--web.listen-address=127.0.0.1:{alertmanager_port}"),
                "--cluster.listen-address=".to_owned(),
            ],
            &alertmanager_log,
        );
        let prometheus_log = path("prometheus.log");
        let prometheus = spawn(
            &prometheus,
            &[
                format!("--config.file={}", path("prometheus.yml").display()),
                format!("--storage.tsdb.path={}", path("prometheus-data").display()),
                format!("--web.listen-address=127.0.0.1:{prometheus_port}"),
            ],
            &prometheus_log,
        );
        let monitoring = Self {
            prometheus_url: format!("http://127.0.0.1:{prometheus_port}"),
            alertmanager_url: format!("http://127.0.0.1:{alertmanager_port}"),
            _prometheus: prometheus,
            _alertmanager: alertmanager,
            dir,
        };
        wait_ready(&monitoring.alertmanager_url, &alertmanager_log).await;
        wait_ready(&monitoring.prometheus_url, &prometheus_log).await;
        monitoring.wait_for_scrape().await;
        Some(monitoring)
    }

    /// Waits until Prometheus has scraped the sim successfully.
    async fn wait_for_scrape(&self) {
        let client = reqwest::Client::new();
        let url = format!("{}/api/v1/query", self.prometheus_url);
        wait_for(Duration::from_secs(60), "Prometheus to scrape the sim", || async {
            let body: serde_json::Value = client
                .get(&url)
                .query(&[("query", "up{job=\"sim\"} == 1")])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let samples = body.pointer("/data/result")?.as_array()?.len();
            (samples > 0).then_some(())
        })
        .await;
    }

    /// Where the two wrote their logs, for a failing test's message.
    pub fn logs(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}
