//! Sessions their owners see and end (ASVS 3.3.4), the password asked again before sensitive
//! console actions (ASVS 3.7.1), and how the console header names an admin.

use pbx365_testkit::db::FreshDb;
use pbx365_testkit::on_both;
use pbx365_testkit::web::sso::{
    location, start, text, SsoApp, SsoBrowser, ADMIN_EXT, ADMIN_OID, USER_OID,
};
use pbx365_testkit::web::{hidden, ADMIN, PASSWORD};

const CONFIGURE: &str = "/console/settings/integrations/microsoft365/configure";
const KEYGEN: &str = "/console/settings/integrations/microsoft365/keygen";

/// The session id a sign-in answer set.
fn session_id(res: &reqwest::Response) -> String {
    res.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("pbx365_session="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string()
}

/// A web client browser signed in as `oid` through the fake provider, as `user_agent`.
async fn webclient_user(app: &SsoApp, oid: &str, user_agent: &str) -> SsoBrowser {
    webclient_user_with_id(app, oid, user_agent).await.0
}

/// [`webclient_user`] and its session id.
async fn webclient_user_with_id(app: &SsoApp, oid: &str, user_agent: &str) -> (SsoBrowser, String) {
    let b = SsoBrowser::with_user_agent(app, user_agent);
    let started = b.start("webclient", "/").await;
    let res = app.answer_as(&b, &started, oid).await;
    assert_eq!(res.status().as_u16(), 303, "signed in");
    let id = session_id(&res);
    (b, id)
}

async fn post(b: &SsoBrowser, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    b.http
        .post(format!("{}{path}", b.base))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Posts the password page: `password` to go on to `return_to`.
async fn confirm_password(
    b: &SsoBrowser,
    csrf: &str,
    password: &str,
    return_to: &str,
) -> reqwest::Response {
    post(
        b,
        "/console/reauth",
        &[
            ("csrf", csrf),
            ("password", password),
            ("return_to", return_to),
        ],
    )
    .await
}

fn certificate(app: &SsoApp) -> Option<String> {
    pbx365_app::m365::certificate_for_upload(app.state.data_dir()).unwrap()
}

async fn password_admins_confirm_their_password_before_sensitive_actions(db: FreshDb) {
    let app = start(db).await;
    let b = SsoBrowser::password_admin(&app, "Firefox/120.0 (X11; Linux)").await;
    let csrf = hidden(&b.get(CONFIGURE).await.text().await.unwrap(), "csrf");
    // Right after signing in, nothing more is asked.
    let res = post(&b, KEYGEN, &[("csrf", &csrf)]).await;
    assert_eq!(location(&res), CONFIGURE);
    let first = certificate(&app);
    // Six minutes later key generation asks for the password first and changes nothing.
    app.clock.advance(chrono::Duration::minutes(6));
    let res = post(&b, KEYGEN, &[("csrf", &csrf)]).await;
    assert_eq!(res.status().as_u16(), 303);
    let reauth = location(&res);
    assert_eq!(
        reauth,
        "/console/reauth?return_to=%2Fconsole%2Fsettings%2Fintegrations%2Fmicrosoft365%2Fconfigure"
    );
    assert_eq!(certificate(&app), first, "no new key pair yet");
    // Admin consent and approving held deletions are guarded the same way.
    let res = post(
        &b,
        "/console/settings/integrations/microsoft365/signin",
        &[("csrf", &csrf)],
    )
    .await;
    assert!(location(&res).starts_with("/console/reauth?"));
    let page = b.get(&reauth).await.text().await.unwrap();
    assert!(text(&page).contains("Confirm your password"), "{page}");
    // A forged post (no CSRF token) is refused even with the right password.
    let res = post(
        &b,
        "/console/reauth",
        &[("password", PASSWORD), ("return_to", CONFIGURE)],
    )
    .await;
    assert_eq!(res.status().as_u16(), 403);
    // A wrong password is refused, and counted by the sign-in throttle: after five, even the
    // right one waits, here and on the sign-in page.
    for _ in 0..5 {
        let res = confirm_password(&b, &csrf, "wrong", CONFIGURE).await;
        assert_eq!(res.status().as_u16(), 401);
        assert!(text(&res.text().await.unwrap()).contains("not correct"));
    }
    let res = confirm_password(&b, &csrf, PASSWORD, CONFIGURE).await;
    assert_eq!(res.status().as_u16(), 429);
    let other = SsoBrowser::new(&app);
    let page = other.get("/console/login").await.text().await.unwrap();
    let res = post(
        &other,
        "/console/login",
        &[
            ("username", ADMIN),
            ("password", PASSWORD),
            ("login_csrf", &hidden(&page, "login_csrf")),
        ],
    )
    .await;
    assert_eq!(res.status().as_u16(), 429, "the same throttle");
    assert_eq!(certificate(&app), first);
    // Once the wait is over, the right password returns to the page and the action proceeds.
    app.clock.advance(chrono::Duration::minutes(16));
    let res = confirm_password(&b, &csrf, PASSWORD, CONFIGURE).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(location(&res), CONFIGURE);
    let res = post(&b, KEYGEN, &[("csrf", &csrf)]).await;
    assert_eq!(location(&res), CONFIGURE);
    assert_ne!(certificate(&app), first, "a new key pair");
    // An open redirect through the return path lands on the console.
    let res = confirm_password(&b, &csrf, PASSWORD, "//evil.example").await;
    assert_eq!(location(&res), "/console");
}

on_both!(console_password_reauthentication => password_admins_confirm_their_password_before_sensitive_actions);

/// Approving held deletions through the API with the console's session cookie needs the same
/// recent password as the console's button (an API token is a credential of its own).
async fn approving_through_the_api_with_a_stale_session_needs_the_password(db: FreshDb) {
    let app = start(db).await;
    let b = SsoBrowser::password_admin(&app, "Firefox/120.0 (X11; Linux)").await;
    let csrf = hidden(&b.get(CONFIGURE).await.text().await.unwrap(), "csrf");
    let approve = || async {
        b.http
            .post(format!("{}/api/v1/sync/runs/no-such-run/approve", b.base))
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap()
    };
    // Fresh: the request gets as far as the run (there is nothing to approve).
    assert_eq!(approve().await.status().as_u16(), 409);
    app.clock.advance(chrono::Duration::minutes(6));
    let res = approve().await;
    assert_eq!(res.status().as_u16(), 403);
    assert!(
        res.text().await.unwrap().contains("confirm your password"),
        "says what to do"
    );
    let res = confirm_password(&b, &csrf, PASSWORD, CONFIGURE).await;
    assert_eq!(location(&res), CONFIGURE);
    assert_eq!(approve().await.status().as_u16(), 409, "confirmed again");
}

on_both!(api_approval_needs_a_recent_password => approving_through_the_api_with_a_stale_session_needs_the_password);

async fn users_list_and_end_their_own_sessions(db: FreshDb) {
    let app = start(db).await;
    let (laptop, laptop_id) = webclient_user_with_id(
        &app,
        USER_OID,
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
    )
    .await;
    let phone = webclient_user(
        &app,
        USER_OID,
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Safari/604.1",
    )
    .await;
    let tablet = webclient_user(&app, USER_OID, "Mozilla/5.0 (Windows NT 10.0) Chrome/120.0").await;
    let someone_else =
        webclient_user(&app, ADMIN_OID, "Mozilla/5.0 (Windows NT 10.0) Edg/120.0").await;
    let raw = laptop.get("/").await.text().await.unwrap();
    let page = text(&raw);
    for shown in [
        "Firefox on Linux",
        "Safari on iOS",
        "Chrome on Windows",
        "this browser",
    ] {
        assert!(page.contains(shown), "{shown} in {page}");
    }
    assert!(
        !page.contains("Edge on Windows"),
        "only the user's own sessions"
    );
    // Neither the session id nor the key the store holds appears in the page.
    assert!(!raw.contains(&laptop_id));
    assert!(!raw.contains(&pbx365_app::secrets::hash_secret(&laptop_id)));
    let csrf = hidden(&raw, "csrf");
    // Revoke the phone's session from the laptop: the phone is signed out at once.
    let handles: Vec<String> = raw
        .match_indices("name=\"session\" value=\"")
        .map(|(i, m)| raw[i + m.len()..].split('"').next().unwrap().to_string())
        .collect();
    assert_eq!(handles.len(), 2, "a sign-out button for each other session");
    // Find the phone's handle: the row of "Safari on iOS" in the laptop's list.
    let row = raw
        .split("<tr")
        .find(|r| text(r).contains("Safari on iOS"))
        .unwrap();
    let handle = hidden(row, "session");
    let res = post(
        &laptop,
        "/me/sessions/revoke",
        &[("csrf", &csrf), ("session", &handle)],
    )
    .await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(
        !phone.signed_in_to_webclient().await,
        "the revoked session is gone"
    );
    assert!(laptop.signed_in_to_webclient().await);
    // A forged post (no CSRF token) ends nothing.
    let res = post(&laptop, "/me/sessions/others", &[]).await;
    assert_eq!(res.status().as_u16(), 403);
    assert!(tablet.signed_in_to_webclient().await);
    // "Sign out everywhere else" ends the tablet, keeps this one and the other user's.
    let res = post(&laptop, "/me/sessions/others", &[("csrf", &csrf)]).await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(!tablet.signed_in_to_webclient().await);
    assert!(laptop.signed_in_to_webclient().await);
    assert!(someone_else.signed_in_to_webclient().await);
    // Another user's handle does not end their session.
    let theirs = someone_else.get("/").await.text().await.unwrap();
    let row = theirs
        .split("<tr")
        .find(|r| text(r).contains("this browser"))
        .unwrap();
    assert!(
        !row.contains("name=\"session\""),
        "no sign-out button for the current one"
    );
    let res = post(
        &laptop,
        "/me/sessions/revoke",
        &[("csrf", &csrf), ("session", &handle)],
    )
    .await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(someone_else.signed_in_to_webclient().await);
}

on_both!(webclient_sessions_list_and_revoke => users_list_and_end_their_own_sessions);

async fn admins_list_and_end_their_console_sessions(db: FreshDb) {
    let app = start(db).await;
    let desk =
        SsoBrowser::password_admin(&app, "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0").await;
    let other =
        SsoBrowser::password_admin(&app, "Mozilla/5.0 (Macintosh; Mac OS X 14_0) Safari/605.1")
            .await;
    let raw = desk
        .get("/console/settings/sessions")
        .await
        .text()
        .await
        .unwrap();
    let page = text(&raw);
    assert!(
        page.contains("Firefox on Linux") && page.contains("Safari on macOS"),
        "{page}"
    );
    let csrf = hidden(&raw, "csrf");
    let res = post(
        &desk,
        "/console/settings/sessions/others",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status().as_u16(), 303);
    // The other browser's cookie now gets the sign-in page; the API answers 401.
    let res = other.get("/console/extensions").await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(location(&res).starts_with("/console/login"));
    assert_eq!(other.get("/api/v1/extensions").await.status().as_u16(), 401);
    assert_eq!(desk.get("/console/extensions").await.status().as_u16(), 200);
}

on_both!(console_sessions_list_and_revoke => admins_list_and_end_their_console_sessions);

async fn the_console_header_names_a_microsoft_admin_readably(db: FreshDb) {
    let app = start(db).await;
    let b = SsoBrowser::new(&app);
    let started = b.start("console", "/console").await;
    assert_eq!(
        app.answer_as(&b, &started, ADMIN_OID)
            .await
            .status()
            .as_u16(),
        303
    );
    let page = text(&b.get("/console/extensions").await.text().await.unwrap());
    let ext = app.store.get_extension(ADMIN_EXT).await.unwrap().unwrap();
    let shown = format!(
        "Signed in as <strong>{} ({ADMIN_EXT})</strong>",
        ext.display_name
    );
    assert!(page.contains(&shown), "{shown} in {page}");
    assert!(!page.contains("m365:"), "{page}");
}

on_both!(console_header_names_sso_admins => the_console_header_names_a_microsoft_admin_readably);

async fn after_the_password_the_held_runs_page_says_the_admin_can_go_on(db: FreshDb) {
    use pbx365_domain::{SyncKind, SyncReport, SyncStatus};
    let app = start(db).await;
    let store = &app.state.store;
    let run = store.start_sync_run(SyncKind::Users).await.unwrap();
    store
        .finish_sync_run(&run.id, SyncStatus::Held, &SyncReport::default())
        .await
        .unwrap();
    let page = format!("/console/sync/runs/{}", run.id);
    let b = SsoBrowser::password_admin(&app, "Firefox/120.0 (X11; Linux)").await;
    let csrf = hidden(&b.get(&page).await.text().await.unwrap(), "csrf");
    app.clock.advance(chrono::Duration::minutes(6));
    // Approving asks for the password first, then returns to the run's page…
    let res = post(&b, &format!("{page}/approve"), &[("csrf", &csrf)]).await;
    let reauth = location(&res);
    assert!(reauth.starts_with("/console/reauth?"), "{reauth}");
    let res = confirm_password(&b, &csrf, PASSWORD, &page).await;
    assert_eq!(location(&res), page);
    // …which says the password was taken, so the admin knows to press Approve again.
    let html = b.get(&page).await.text().await.unwrap();
    assert!(
        text(&html).contains("Password confirmed."),
        "the run page confirms the password: {html}"
    );
    // The message is shown once, not on a later page.
    let later = b.get("/console/extensions").await.text().await.unwrap();
    assert!(!text(&later).contains("Password confirmed."), "{later}");
}

on_both!(held_run_reauthentication_notice => after_the_password_the_held_runs_page_says_the_admin_can_go_on);

async fn a_web_client_form_refused_leads_back_to_the_web_client_not_the_console(db: FreshDb) {
    let app = start(db).await;
    let b = webclient_user(&app, USER_OID, "Firefox/120.0 (X11; Linux)").await;
    let other = webclient_user(&app, USER_OID, "Safari/17.0 (Macintosh)").await;
    let res = post(&b, "/me/sessions/others", &[("csrf", "forged")]).await;
    assert_eq!(res.status().as_u16(), 403);
    let html = res.text().await.unwrap();
    assert!(text(&html).contains("Back to the web client"), "{html}");
    assert!(html.contains("href=\"/\""), "{html}");
    assert!(!html.contains("href=\"/console\""), "{html}");
    // Nothing was signed out.
    let home = other.get("/").await.text().await.unwrap();
    assert!(home.contains("id=\"my-sessions\""), "{home}");
}

on_both!(webclient_refused_form_way_back => a_web_client_form_refused_leads_back_to_the_web_client_not_the_console);
