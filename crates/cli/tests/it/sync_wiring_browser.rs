//! The Sync settings page in real headless Chromium against `pbx365 demo`: the users picker
//! (JavaScript searching Microsoft 365 through the console), Preview of unsaved values.

use crate::sync_wiring::start_demo;
use fantoccini::Locator;
use pbx365_testkit::browser::{browser_available, chromium, fill};
use pbx365_testkit::db;
use std::time::Duration;

async fn click(c: &fantoccini::Client, css: &str) {
    c.wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Waits until `probe` is true (the page changes asynchronously after a click or a fetch).
async fn until<F, Fut>(what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !probe().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_picks_users_from_microsoft_365_and_previews_the_sync_in_the_browser() {
    if !browser_available() {
        return;
    }
    let demo = start_demo(db::sqlite().await, 30).await;
    let base = demo.server.base.clone();
    let profile = tempfile::tempdir().unwrap();
    let (_driver, c) = chromium(profile.path()).await;
    let run = async {
        c.goto(&format!(
            "{base}/console/settings/integrations/microsoft365/sync"
        ))
        .await
        .unwrap();
        fill(&c, "username", "admin").await;
        fill(&c, "password", &demo.password).await;
        click(&c, "button[type=submit]").await;
        until("the Sync page after sign-in", || async {
            c.find(Locator::Id("sync-form")).await.is_ok()
        })
        .await;

        // Chosen users: search by name, add the first hit.
        c.find(Locator::Css("#scope option[value=users]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        fill(&c, "picker-q", "a").await;
        click(&c, "#picker-results li button").await;
        let ids = c.find(Locator::Id("scope_ids")).await.unwrap();
        until("an object id in the list", || async {
            ids.prop("value").await.unwrap().unwrap_or_default().len() >= 36
        })
        .await;

        // Preview: the dry-run report for one chosen user disables the others; nothing is saved.
        click(&c, "#preview").await;
        until("the preview report", || async {
            match c.find(Locator::Id("run-report")).await {
                Ok(e) => e.attr("data-status").await.ok().flatten().as_deref() == Some("dry_run"),
                Err(_) => false,
            }
        })
        .await;
        let summary = c
            .find(Locator::Id("run-summary"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(summary.contains(" disabled"), "{summary}");
        assert!(
            c.find(Locator::Id("report-disabled")).await.is_ok(),
            "the report lists what would be disabled"
        );
    };
    run.await;
    c.close().await.unwrap();
    demo.server.terminate().await;
}
