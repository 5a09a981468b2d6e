//! The console in real headless Chromium (driven through chromedriver by fantoccini): an admin
//! signs in, sees the extension list with profiles, signs out, and the back button does not
//! bring the console back.

use fantoccini::Locator;
use pbx365_testkit::browser::{browser, browser_available, start_chromedriver};
use pbx365_testkit::db::FreshDb;
use pbx365_testkit::on_both;
use pbx365_testkit::web::console::{start_on, ADMIN, PASSWORD};
use std::time::Duration;

async fn path_of(c: &fantoccini::Client) -> String {
    c.current_url().await.unwrap().path().to_string()
}

async fn script(c: &fantoccini::Client, js: &str) -> serde_json::Value {
    c.execute(js, vec![]).await.unwrap()
}

on_both!(admin_signs_in_sees_extensions_with_profiles_adds_one_and_sign_out_locks_the_console => sign_in_and_out_in_the_browser);
async fn sign_in_and_out_in_the_browser(db: FreshDb) {
    if !browser_available() {
        return;
    }
    let app = start_on(db, None).await;
    let driver = start_chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path(), &[]).await;

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
