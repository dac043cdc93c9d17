//! The admin pages in a real browser: headless Chromium, driven through chromedriver
//! (WebDriver, with fantoccini), submits the refreshAllServices form over HTTPS and reads the
//! job page the API redirects to, which reloads itself until the job ends: its status, its
//! progress and the batch table with the failed service's message. The job page and the job
//! list are then laid out at 1200x900 and at a phone's 390x844: no horizontal scrolling, no
//! service name broken mid-word on the wide screen. With `ADMIN_SCREENSHOTS=DIR` the test
//! writes the screenshots there (`ADMIN_SCREENSHOTS=docs/screenshots` refreshes the committed
//! ones). Needs `chromium` and `chromium-driver` (`.ci/install-tools` installs them).

mod admin_support;
mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use admin_support::{ADMIN_TOKEN, AdminHarness, TARGET, fake_authority};
use common::wait_for;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use servicerefresh_sim::SimConfig;

const DEADLINE: Duration = Duration::from_secs(90);

/// chromedriver on a free loopback port, stopped (by its own handle) when dropped.
struct ChromeDriver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl ChromeDriver {
    async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (install it with .ci/install-tools: Debian package chromium-driver)");
        let profile = tempfile::Builder::new()
            .prefix("servicerefresh-chromium-")
            .tempdir()
            .expect("a profile directory");
        wait_for(Duration::from_secs(30), "chromedriver to listen", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
        })
        .await;
        Self { child, port, profile }
    }

    async fn browser(&self) -> Client {
        let capabilities = json!({
            "browserName": "chrome",
            // The API's certificate is made for this test; nothing else is visited.
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1600",
                    format!("--user-data-dir={}", self.profile.path().display()),
                ],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The profile directory goes after this, once chromium has stopped writing to it.
    }
}

/// The text of the first element matching `css`, if the page currently has one.
async fn text(browser: &Client, css: &str) -> Option<String> {
    browser.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// Takes a screenshot, saved as `name` in `$ADMIN_SCREENSHOTS` when that is set.
async fn save_screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    if let Ok(dir) = std::env::var("ADMIN_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        std::fs::write(std::path::Path::new(&dir).join(name), png).expect("write the screenshot");
    }
}

/// Lays the current page out at a desktop's and a phone's size: the page never scrolls
/// sideways, and on the desktop no service name or job id breaks across lines. Saves each
/// screenshot as `admin-<page>-<width>.png` in `$ADMIN_SCREENSHOTS`, when set.
async fn check_layout(browser: &Client, page: &str) {
    for (width, height) in [(1200, 900), (390, 844)] {
        browser.set_window_size(width, height).await.expect("resize");
        let inner = browser.execute("return window.innerWidth", vec![]).await.expect("script");
        let inner = inner.as_u64().expect("a width");
        assert!(inner <= u64::from(width) && inner >= u64::from(width) - 20, "viewport {inner}");
        let scroll = browser
            .execute("return document.documentElement.scrollWidth", vec![])
            .await
            .expect("script")
            .as_u64()
            .expect("a width");
        assert!(scroll <= inner, "{page} at {width}px scrolls sideways: {scroll} > {inner}");
        if width == 1200 {
            let broken = browser
                .execute(
                    "return [...document.querySelectorAll('td .mono')]\
                     .filter(e => e.getClientRects().length > 1).map(e => e.textContent)",
                    vec![],
                )
                .await
                .expect("script");
            assert_eq!(broken, json!([]), "{page}: names broken across lines at {width}px");
        }
        save_screenshot(browser, &format!("admin-{page}-{width}.png")).await;
        // The batch table, below the job's facts.
        let scrolled = browser
            .execute(
                "const t = document.getElementById('batches'); \
                 if (t) { t.scrollIntoView(); } return t !== null",
                vec![],
            )
            .await
            .expect("script");
        if scrolled == json!(true) {
            save_screenshot(browser, &format!("admin-{page}-batches-{width}.png")).await;
            browser.execute("window.scrollTo(0, 0)", vec![]).await.expect("script");
        }
    }
    browser.set_window_size(1280, 1600).await.expect("resize back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operation_form_submits_a_job_and_its_page_shows_the_batches() {
    let sim = SimConfig {
        deployments: 7,
        fail: 1,
        rollout_ms: 200,
        rollout_jitter_ms: 100,
        progress_deadline_seconds: 1,
        seed: 5,
        ..SimConfig::default()
    };
    let harness = AdminHarness::start(sim, fake_authority()).await;
    let failing = harness.cluster.failing_deployments().await;
    harness
        .cluster
        .create_refresh(
            TARGET,
            json!({"selector": {}, "batchSize": 3, "batchTimeout": "1m", "runOnCreate": false}),
        )
        .await;
    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;

    // Without a token the page asks for one; with it, the operation page has the form.
    browser
        .goto(&format!("{}/services/refreshAllServices", harness.base))
        .await
        .expect("open the operation");
    assert_eq!(text(&browser, "#error-message").await.as_deref(), Some("Token Required"));
    browser
        .find(Locator::Css("#token"))
        .await
        .expect("token field")
        .send_keys(ADMIN_TOKEN)
        .await
        .expect("type");
    browser
        .find(Locator::Css("#token-form button"))
        .await
        .expect("continue")
        .click()
        .await
        .expect("click");
    let submit = wait_for(DEADLINE, "the operation page", || async {
        browser.find(Locator::Css("#refresh-form #submit")).await.ok()
    })
    .await;
    submit.click().await.expect("submit the form");

    // The answer is the job's page, which reloads itself until the job has ended.
    let url = wait_for(DEADLINE, "the job page", || async {
        let url = browser.current_url().await.ok()?;
        url.path().contains("/arcgis/admin/jobs/j").then_some(url)
    })
    .await;
    let id = url.path().rsplit('/').next().expect("job id").to_owned();
    assert_eq!(text(&browser, "#jobid").await.as_deref(), Some(id.as_str()));
    let status = wait_for(DEADLINE, "the page to show the job ended", || async {
        text(&browser, "#status").await.filter(|status| status == "FAILED" || status == "COMPLETED")
    })
    .await;
    assert_eq!(status, "FAILED");
    assert_eq!(text(&browser, "#username").await.as_deref(), Some("alice"));
    let progress = text(&browser, "#progress-text").await.expect("progress text");
    assert!(progress.starts_with("7 of 7 services done: 6 ready, 1 failed"), "{progress}");
    // The bar shows the shares of ready and failed services, not one solid 100%.
    for (segment, width) in [("ready", "85.7%"), ("failed", "14.3%")] {
        let style = browser
            .find(Locator::Css(&format!("#progress .seg.{segment}")))
            .await
            .expect("segment")
            .attr("style")
            .await
            .expect("style");
        assert_eq!(style, Some(format!("width: {width}")), "{segment}");
    }

    // The batch table: every service, the failed one marked with its message.
    let rows = browser.find_all(Locator::Css("table#batches tbody tr")).await.expect("rows");
    assert_eq!(rows.len(), 7);
    let failed =
        browser.find_all(Locator::Css("table#batches tr.failed")).await.expect("failed rows");
    assert_eq!(failed.len(), 1);
    let row = &failed[0];
    assert_eq!(row.attr("data-service").await.expect("attr").as_deref(), Some(failing[0].as_str()));
    assert_eq!(
        row.find(Locator::Css("td.result")).await.expect("cell").text().await.expect("text"),
        "Failed"
    );
    let message =
        row.find(Locator::Css("td.message")).await.expect("cell").text().await.expect("text");
    assert!(message.contains("exceeded its progress deadline"), "{message}");
    let batch = row.find(Locator::Css(".batch-status")).await.expect("cell").text().await;
    assert_eq!(batch.expect("text"), "COMPLETED WITH FAILURES");
    assert!(browser.find(Locator::Css("#cancel")).await.is_err(), "an ended job offers no cancel");
    check_layout(&browser, "job").await;

    // The job list links to it.
    browser.find(Locator::LinkText("Jobs")).await.expect("nav").click().await.expect("click");
    let link = wait_for(DEADLINE, "the job list", || async {
        browser.find(Locator::LinkText(&id)).await.ok()
    })
    .await;
    assert!(link.attr("href").await.expect("href").is_some_and(|href| href.contains(&id)));
    check_layout(&browser, "jobs").await;

    browser.close().await.expect("close the browser");
    drop(driver);
    harness.stop().await;
}
