//! Real headless Chromium for the browser tests: chromedriver on a free loopback port and a
//! fantoccini session with a fresh profile.

use fantoccini::{ClientBuilder, Locator};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free loopback port, killed when dropped.
pub struct Driver {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _child: tokio::process::Child,
}

/// Starts chromedriver and waits until it reports ready.
pub async fn start_chromedriver() -> Driver {
    // Ask the OS for a free port, then hand it to chromedriver.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let http = crate::web::http_client();
    // Wait until chromedriver answers /status with ready=true (bounded, never a blind sleep).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(res) = http.get(format!("{url}/status")).send().await {
            if let Ok(v) = res.json::<serde_json::Value>().await {
                if v["value"]["ready"] == serde_json::Value::Bool(true) {
                    break;
                }
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not become ready within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Driver { url, _child: child }
}

/// True when the browser is installed; in CI a missing browser fails the test instead.
pub fn browser_available() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser test: install chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
        );
        eprintln!("skipping browser test: {CHROMIUM} or {CHROMEDRIVER} missing (apt-get install -y chromium chromium-driver)");
    }
    present
}

/// A headless Chromium session with a fresh profile; `extra_args` are added to the defaults.
pub async fn browser(
    driver: &Driver,
    profile_dir: &Path,
    extra_args: &[&str],
) -> fantoccini::Client {
    session(driver, profile_dir, extra_args, None).await
}

/// Width in CSS pixels of the phone [`phone_browser`] lays pages out for.
pub const PHONE_WIDTH: u32 = 390;

/// Like [`browser`], but pages are laid out as on a phone [`PHONE_WIDTH`] pixels wide, through
/// Chromium's device emulation (a headless window cannot be made narrower than 500 pixels).
pub async fn phone_browser(
    driver: &Driver,
    profile_dir: &Path,
    extra_args: &[&str],
) -> fantoccini::Client {
    let metrics = serde_json::json!({
        "deviceMetrics": {"width": PHONE_WIDTH, "height": 844, "pixelRatio": 1}
    });
    session(driver, profile_dir, extra_args, Some(metrics)).await
}

async fn session(
    driver: &Driver,
    profile_dir: &Path,
    extra_args: &[&str],
    mobile_emulation: Option<serde_json::Value>,
) -> fantoccini::Client {
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .iter()
    .chain(extra_args)
    .map(|a| a.to_string())
    .collect();
    args.push(format!("--user-data-dir={}", profile_dir.display()));
    let mut caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": args
        }
    });
    if let Some(m) = mobile_emulation {
        caps["goog:chromeOptions"]["mobileEmulation"] = m;
    }
    let caps = caps.as_object().unwrap().clone();
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver")
}

/// chromedriver and a headless Chromium session on a fresh profile in `profile_dir` (keep the
/// driver alive as long as the session).
pub async fn chromium(profile_dir: &Path) -> (Driver, fantoccini::Client) {
    let driver = start_chromedriver().await;
    let client = browser(&driver, profile_dir, &[]).await;
    (driver, client)
}

/// Replaces the value of input `id` with `value`, as a person typing it.
pub async fn fill(c: &fantoccini::Client, id: &str, value: &str) {
    let field = c.wait().for_element(Locator::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// Clicks element `id` once it is there.
pub async fn click(c: &fantoccini::Client, id: &str) {
    c.wait()
        .for_element(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits until element `id` of the page shown after a click contains `needle` (the old page's
/// element goes stale while the browser navigates, so each try looks it up again).
pub async fn wait_text(c: &fantoccini::Client, id: &str, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    loop {
        if let Ok(e) = c.find(Locator::Id(id)).await {
            if let Ok(t) = e.text().await {
                if t.contains(needle) {
                    return t;
                }
                last = t;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "#{id} never said {needle:?}; last: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
