//! The console in real headless Chromium (driven through chromedriver by fantoccini): an admin
//! signs in, sees the extension list with profiles, signs out, and the back button does not
//! bring the console back.

use crate::console_support::{start_on, ADMIN, PASSWORD};
use fantoccini::{ClientBuilder, Locator};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    url: String,
    _child: tokio::process::Child,
}

async fn start_chromedriver() -> Driver {
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
    let http = crate::console_support::http_client();
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
fn browser_available() -> bool {
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

async fn browser(driver: &Driver, profile_dir: &Path) -> fantoccini::Client {
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile_dir.display()),
            ]
        }
    });
    let caps = caps.as_object().unwrap().clone();
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver")
}

async fn path_of(c: &fantoccini::Client) -> String {
    c.current_url().await.unwrap().path().to_string()
}

async fn script(c: &fantoccini::Client, js: &str) -> serde_json::Value {
    c.execute(js, vec![]).await.unwrap()
}

crate::on_both_databases!(
    admin_signs_in_sees_extensions_with_profiles_adds_one_and_sign_out_locks_the_console,
    sign_in_and_out_in_the_browser
);
async fn sign_in_and_out_in_the_browser(db: crate::db::TestDb) {
    if !browser_available() {
        return;
    }
    let app = start_on(db, None).await;
    let driver = start_chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;

    let run = async {
        // The console sends a stranger to the sign-in page.
        c.goto(&format!("{}/console/extensions", app.base))
            .await
            .unwrap();
        c.wait()
            .for_element(Locator::Id("login-form"))
            .await
            .unwrap();
        assert_eq!(path_of(&c).await, "/console/login");

        // A wrong password shows the one sign-in error.
        c.find(Locator::Id("username"))
            .await
            .unwrap()
            .send_keys(ADMIN)
            .await
            .unwrap();
        c.find(Locator::Id("password"))
            .await
            .unwrap()
            .send_keys("not the password")
            .await
            .unwrap();
        c.find(Locator::Id("sign-in"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let err = c
            .wait()
            .for_element(Locator::Id("login-error"))
            .await
            .unwrap();
        assert_eq!(
            err.text().await.unwrap(),
            "The user name or password is not correct."
        );

        // The right one leads to the page first asked for.
        c.find(Locator::Id("username"))
            .await
            .unwrap()
            .clear()
            .await
            .unwrap();
        c.find(Locator::Id("username"))
            .await
            .unwrap()
            .send_keys(ADMIN)
            .await
            .unwrap();
        c.find(Locator::Id("password"))
            .await
            .unwrap()
            .send_keys(PASSWORD)
            .await
            .unwrap();
        c.find(Locator::Id("sign-in"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait()
            .for_element(Locator::Css("table#extensions"))
            .await
            .unwrap();
        assert_eq!(path_of(&c).await, "/console/extensions");

        let ben = c
            .find(Locator::Css("tr[data-number='101']"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            ben.contains("Ben Cole")
                && ben.contains("Microsoft 365")
                && ben.contains("Do Not Disturb"),
            "{ben}"
        );
        let anna = c
            .find(Locator::Css("tr[data-number='100']"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            anna.contains("Anna Berg") && anna.contains("Local") && anna.contains("Available"),
            "{anna}"
        );
        let cleo = c
            .find(Locator::Css("tr[data-number='102']"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(cleo.contains("Disabled"), "{cleo}");

        // The embedded stylesheet and the photo load under the page's CSP.
        let layout = script(
            &c,
            "return getComputedStyle(document.querySelector('.topbar')).display",
        )
        .await;
        assert_eq!(layout, "flex", "console.css must apply");
        c.wait()
            .for_element(Locator::Css("tr[data-number='101'] img.avatar"))
            .await
            .unwrap();
        let width = script(
            &c,
            "const i = document.querySelector(\"tr[data-number='101'] img\"); \
             return i.complete ? i.naturalWidth : -1",
        )
        .await;
        assert_eq!(width, 1, "the 1x1 photo is shown");

        // Adding a local extension: a bad number is explained and the typed name kept.
        c.find(Locator::Id("add-extension"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait()
            .for_element(Locator::Id("extension-form"))
            .await
            .unwrap();
        c.find(Locator::Id("number"))
            .await
            .unwrap()
            .send_keys("12a")
            .await
            .unwrap();
        c.find(Locator::Id("first_name"))
            .await
            .unwrap()
            .send_keys("Dora")
            .await
            .unwrap();
        c.find(Locator::Id("last_name"))
            .await
            .unwrap()
            .send_keys("Eck")
            .await
            .unwrap();
        c.find(Locator::Id("save"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let err = c
            .wait()
            .for_element(Locator::Id("form-error"))
            .await
            .unwrap();
        assert_eq!(
            err.text().await.unwrap(),
            "Extension number '12a' is not valid: use 2 to 8 digits (0-9) only."
        );
        let kept = c
            .find(Locator::Id("first_name"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
        assert_eq!(kept.as_deref(), Some("Dora"));
        c.find(Locator::Id("number"))
            .await
            .unwrap()
            .clear()
            .await
            .unwrap();
        c.find(Locator::Id("number"))
            .await
            .unwrap()
            .send_keys("130")
            .await
            .unwrap();
        c.find(Locator::Id("save"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let dora = c
            .wait()
            .for_element(Locator::Css("tr[data-number='130']"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            dora.contains("Dora Eck") && dora.contains("Local"),
            "{dora}"
        );
        let notice = c
            .find(Locator::Css(".flash-ok"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(notice, "Extension 130 was added.");

        // Navigation reaches Settings > Integrations > Microsoft 365 with the Redirect URI.
        c.find(Locator::LinkText("Microsoft 365"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let uri = c
            .wait()
            .for_element(Locator::Id("redirect-uri"))
            .await
            .unwrap();
        assert_eq!(
            uri.prop("value").await.unwrap().unwrap(),
            format!("{}/oauth2office2", app.base)
        );

        c.find(Locator::LinkText("Extensions"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait()
            .for_element(Locator::Css("table#extensions"))
            .await
            .unwrap();

        // Sign out, then the back button and a typed URL both ask to sign in again.
        c.find(Locator::Id("logout"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait()
            .for_element(Locator::Id("login-form"))
            .await
            .unwrap();
        let body = c
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(body.contains("You have signed out."), "{body}");

        c.back().await.unwrap();
        c.wait()
            .for_element(Locator::Id("login-form"))
            .await
            .unwrap();
        assert_eq!(path_of(&c).await, "/console/login");
        assert!(c.find(Locator::Css("table#extensions")).await.is_err());

        c.goto(&format!("{}/console/extensions", app.base))
            .await
            .unwrap();
        c.wait()
            .for_element(Locator::Id("login-form"))
            .await
            .unwrap();
        assert_eq!(path_of(&c).await, "/console/login");
    };
    let outcome = tokio::time::timeout(Duration::from_secs(120), run).await;
    let _ = c.close().await;
    outcome.expect("the browser scenario finished within 120 s");
}
