//! Single sign-on in real headless Chromium against m365-sim's sign-in page: a user signs in to
//! the web client, an admin to the console, and each is refused when SSO is off for that
//! surface or user; an admin picks a Microsoft 365 group whose member then signs in.

use pbx365_testkit::browser::{
    browser, browser_available, click, fill, phone_browser, start_chromedriver, wait_text, Driver,
    PHONE_WIDTH,
};
use pbx365_testkit::data::{put_extensions, synced_person};
use pbx365_testkit::db::{self, FreshDb};
use pbx365_testkit::on_both;
use pbx365_testkit::web::sso::{
    start_with_sim, SIM_ADMIN, SIM_GROUP_SALES, SIM_PASSWORD, SIM_USER,
};
use std::time::Duration;

/// A fresh browser (its profile in `profile`) with the admin (202) signed in to the console
/// through the sim's sign-in page, once the console's header names them.
async fn console_admin(
    driver: &Driver,
    base: &str,
    profile: &std::path::Path,
) -> fantoccini::Client {
    let c = browser(driver, profile, &["--ignore-certificate-errors"]).await;
    c.goto(&format!("{base}/console/login")).await.unwrap();
    click(&c, "sso-sign-in").await;
    at_sim(&c, SIM_ADMIN).await;
    wait_text(&c, "signed-in-as", "(202)").await;
    c
}

/// Opens the console's SSO page and chooses "Selected users and groups" for the web client.
async fn open_sso_page_for_selected_users(c: &fantoccini::Client, base: &str) {
    c.goto(&format!(
        "{base}/console/settings/integrations/microsoft365/sso"
    ))
    .await
    .unwrap();
    c.wait()
        .for_element(fantoccini::Locator::Id("sso-webclient"))
        .await
        .unwrap()
        .select_by_value("selected")
        .await
        .unwrap();
}

/// Waits until the page body contains `needle`.
async fn wait_body(c: &fantoccini::Client, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let src = c.source().await.unwrap_or_default();
        if src.contains(needle) {
            return src;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page never said {needle:?}: {src}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs in on the sim's page.
async fn at_sim(c: &fantoccini::Client, login: &str) {
    fill(c, "login", login).await;
    fill(c, "passwd", SIM_PASSWORD).await;
    click(c, "idSIButton9").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signs_in_with_microsoft_to_the_webclient_and_the_console() {
    if !browser_available() {
        return;
    }
    let app = start_with_sim(db::sqlite().await).await;
    let driver = start_chromedriver().await;

    let run = async {
        // A user signs in to the web client.
        let profile = tempfile::tempdir().unwrap();
        let c = browser(&driver, profile.path(), &["--ignore-certificate-errors"]).await;
        c.goto(&format!("{}/", app.base)).await.unwrap();
        click(&c, "sso-sign-in").await;
        at_sim(&c, SIM_USER).await;
        wait_text(&c, "me-number", "201").await;
        // Not an admin: the console refuses (the sim signs the same user in silently).
        c.goto(&format!("{}/console/login", app.base))
            .await
            .unwrap();
        click(&c, "sso-sign-in").await;
        wait_body(&c, "no administrator role").await;
        // SSO turned off for the web client: no button, and a started sign-in is refused.
        app.state
            .app
            .store_setting("sso.webclient", serde_json::json!("off"))
            .await
            .unwrap();
        c.goto(&format!("{}/auth/microsoft?surface=webclient", app.base))
            .await
            .unwrap();
        wait_body(&c, "not enabled for the web client").await;
        c.goto(&format!("{}/", app.base)).await.unwrap();
        let landing = wait_body(&c, "web client").await;
        assert!(!landing.contains("sso-sign-in"), "no Microsoft button");
        c.close().await.unwrap();

        // An admin signs in to the console in a fresh browser.
        let profile = tempfile::tempdir().unwrap();
        let c = console_admin(&driver, &app.base, profile.path()).await;
        wait_body(&c, "Anna Berg 201").await;
        assert!(c
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/console"));
        // Only selected users may use the console now, and the admin is not among them.
        app.state
            .app
            .store_settings(&[
                ("sso.console".into(), serde_json::json!("selected")),
                ("sso.selected_extensions".into(), serde_json::json!(["201"])),
            ])
            .await
            .unwrap();
        c.goto(&format!("{}/console/extensions", app.base))
            .await
            .unwrap();
        wait_body(&c, "id=\"login-form\"").await;
        c.goto(&format!("{}/auth/microsoft?surface=console", app.base))
            .await
            .unwrap();
        wait_body(&c, "not enabled for extension 202").await;
        c.close().await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser flow finishes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_admin_picks_a_microsoft_365_group_whose_member_then_signs_in() {
    if !browser_available() {
        return;
    }
    let app = start_with_sim(db::sqlite().await).await;
    app.grant(&["Directory.Read.All"]).await;
    let driver = start_chromedriver().await;
    let run = async {
        // The admin signs in with Microsoft; the header names them readably.
        let profile = tempfile::tempdir().unwrap();
        let c = console_admin(&driver, &app.base, profile.path()).await;
        let who = wait_text(&c, "signed-in-as", "(202)").await;
        assert!(!who.contains("m365:"), "{who}");
        // Web client for selected users only: the group "Sales", found with the picker.
        open_sso_page_for_selected_users(&c, &app.base).await;
        fill(&c, "picker-q", "Sal").await;
        c.wait()
            .for_element(fantoccini::Locator::Css("#picker-results button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        click(&c, "sso-save").await;
        wait_body(&c, "were saved").await;
        let sso = app.state.settings().sso.clone();
        assert_eq!(sso.selected_groups, vec![SIM_GROUP_SALES]);
        assert_eq!(sso.selected_group_names[SIM_GROUP_SALES], "Sales");
        c.close().await.unwrap();

        // Anna is in "Sales": she signs in to the web client.
        let profile = tempfile::tempdir().unwrap();
        let c = browser(&driver, profile.path(), &["--ignore-certificate-errors"]).await;
        c.goto(&format!("{}/", app.base)).await.unwrap();
        click(&c, "sso-sign-in").await;
        at_sim(&c, SIM_USER).await;
        wait_text(&c, "me-number", "201").await;
        c.close().await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser flow finishes in time");
}

/// Clicks the first "Add" of the results list `results` (an element id) once one is there.
async fn add_first(c: &fantoccini::Client, results: &str) {
    c.wait()
        .for_element(fantoccini::Locator::Css(&format!("#{results} button")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn admin_finds_an_extension_and_a_group_on_the_sso_page(db: FreshDb) {
    if !browser_available() {
        return;
    }
    let app = start_with_sim(db).await;
    app.grant(&["Directory.Read.All"]).await;
    // 60 synced extensions besides Anna and Boris: the page lists only the chosen ones.
    let mut people: Vec<_> = (300..360)
        .map(|n| synced_person(&n.to_string(), "Person", &n.to_string()))
        .collect();
    people.push(synced_person("401", "Жанна", "Петрова"));
    put_extensions(&app.store, &people).await.unwrap();
    let driver = start_chromedriver().await;
    let run = async {
        let profile = tempfile::tempdir().unwrap();
        let c = console_admin(&driver, &app.base, profile.path()).await;
        open_sso_page_for_selected_users(&c, &app.base).await;
        wait_text(&c, "sso-no-extensions", "No extension chosen").await;
        // Part of a name finds Жанна; Add puts her in the list, checked.
        fill(&c, "extension-picker-q", "жан").await;
        wait_text(&c, "extension-picker-results", "401 Жанна Петрова").await;
        add_first(&c, "extension-picker-results").await;
        wait_text(&c, "sso-extensions", "401 Жанна Петрова").await;
        // The group picker on the same page still works.
        fill(&c, "picker-q", "Sal").await;
        add_first(&c, "picker-results").await;
        wait_text(&c, "sso-m365-groups", "Sales").await;
        click(&c, "sso-save").await;
        wait_body(&c, "were saved").await;
        let sso = app.state.settings().sso.clone();
        assert_eq!(sso.selected_extensions, vec!["401"]);
        assert_eq!(sso.selected_groups, vec![SIM_GROUP_SALES]);
        assert_eq!(sso.selected_group_names[SIM_GROUP_SALES], "Sales");
        // Shown again, checked; unchecking and saving removes her.
        let checkbox = c
            .wait()
            .for_element(fantoccini::Locator::Css(
                "#sso-extensions input[value='401']",
            ))
            .await
            .unwrap();
        assert_eq!(
            checkbox.prop("checked").await.unwrap().as_deref(),
            Some("true")
        );
        checkbox.click().await.unwrap();
        click(&c, "sso-save").await;
        wait_body(&c, "No extension chosen").await;
        assert!(app.state.settings().sso.selected_extensions.is_empty());
        c.close().await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser flow finishes in time");
}

on_both!(browser_sso_extension_picker => admin_finds_an_extension_and_a_group_on_the_sso_page);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_on_a_phone_the_session_list_fits_and_signs_out_the_other_browser() {
    if !browser_available() {
        return;
    }
    let app = start_with_sim(db::sqlite().await).await;
    let driver = start_chromedriver().await;
    let run = async {
        let sign_in = |c: fantoccini::Client| async {
            c.goto(&format!("{}/", app.base)).await.unwrap();
            click(&c, "sso-sign-in").await;
            at_sim(&c, SIM_USER).await;
            wait_text(&c, "me-number", "201").await;
            c
        };
        let desk_profile = tempfile::tempdir().unwrap();
        let desk = sign_in(
            browser(
                &driver,
                desk_profile.path(),
                &["--ignore-certificate-errors"],
            )
            .await,
        )
        .await;
        let phone_profile = tempfile::tempdir().unwrap();
        let phone = sign_in(
            phone_browser(
                &driver,
                phone_profile.path(),
                &["--ignore-certificate-errors"],
            )
            .await,
        )
        .await;

        // The page as wide as the phone, each time on one line, and the other browser's "Sign out" inside the card.
        let layout = phone
            .execute(
                "const card = document.getElementById('my-sessions').getBoundingClientRect();
                 const button = document.querySelector('#sessions button').getBoundingClientRect();
                 const lines = [...document.querySelectorAll('#sessions td:nth-child(2), #sessions td:nth-child(3)')].map(td => {
                   const r = document.createRange(); r.selectNodeContents(td);
                   return r.getClientRects().length; });
                 return {width: window.innerWidth, lines: lines,
                         inside: button.left >= card.left && button.right <= card.right};",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            layout["width"], PHONE_WIDTH,
            "the page is wider than the phone: {layout}"
        );
        assert_eq!(
            layout["inside"], true,
            "Sign out runs past the card: {layout}"
        );
        assert_eq!(
            layout["lines"],
            serde_json::json!([1, 1, 1, 1]),
            "a time wraps: {layout}"
        );

        // Signing out the desk browser from the phone ends its session.
        phone
            .find(fantoccini::Locator::Css("#sessions button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_text(&phone, "notice", "The session was signed out.").await;
        desk.goto(&format!("{}/", app.base)).await.unwrap();
        wait_body(&desk, "id=\"sso-sign-in\"").await;
        desk.close().await.unwrap();
        phone.close().await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser flow finishes in time");
}
