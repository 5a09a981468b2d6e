//! Console sign-in, sessions and pages over real HTTP (no browser): cookie attributes, session
//! fixation, server-side logout, timeouts, CSRF, open redirects, sign-in required everywhere.

use chrono::Duration;
use pbx365_testkit::web::console::{start, ConsoleApp, ADMIN, PASSWORD};
use pbx365_testkit::web::{hidden, location};
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};

fn client() -> Client {
    pbx365_testkit::web::http_client()
}

fn set_cookies(res: &Response) -> Vec<String> {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The value a `Set-Cookie` gives cookie `name`, if any.
fn cookie_set(res: &Response, name: &str) -> Option<String> {
    set_cookies(res).iter().find_map(|c| {
        let (pair, _) = c.split_once(';').unwrap_or((c, ""));
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

async fn get(app: &ConsoleApp, path: &str, cookie: Option<&str>) -> Response {
    let mut req = client().get(format!("{}{path}", app.base));
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    req.send().await.unwrap()
}

/// Posts a console form with the session cookie.
async fn post_form(
    app: &ConsoleApp,
    cookie: &str,
    path: &str,
    form: Vec<(&'static str, String)>,
) -> Response {
    client()
        .post(format!("{}{path}", app.base))
        .header(COOKIE, cookie)
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Fetches the sign-in form and posts it; returns the response of the POST.
async fn sign_in(
    app: &ConsoleApp,
    user: &str,
    password: &str,
    return_to: &str,
    extra_cookie: Option<&str>,
) -> Response {
    let page = get(app, "/console/login", None).await;
    let login_cookie_name = app.policy().login_cookie_name();
    let token = cookie_set(&page, login_cookie_name).expect("login page sets its CSRF cookie");
    let html = page.text().await.unwrap();
    let login_csrf = hidden(&html, "login_csrf");
    let mut cookie = format!("{login_cookie_name}={token}");
    if let Some(extra) = extra_cookie {
        cookie.push_str("; ");
        cookie.push_str(extra);
    }
    client()
        .post(format!("{}/console/login", app.base))
        .header(COOKIE, cookie)
        .form(&[
            ("username", user),
            ("password", password),
            ("return_to", return_to),
            ("login_csrf", &login_csrf),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs in as the admin and returns the `Cookie` header value of the new session.
async fn session(app: &ConsoleApp) -> String {
    let res = sign_in(app, ADMIN, PASSWORD, "", None).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let name = app.policy().cookie_name();
    format!("{name}={}", cookie_set(&res, name).expect("session cookie"))
}

async fn csrf_of(app: &ConsoleApp, cookie: &str) -> String {
    let page = get(app, "/console/extensions", Some(cookie)).await;
    assert_eq!(page.status(), StatusCode::OK);
    hidden(&page.text().await.unwrap(), "csrf")
}

async fn is_signed_in(app: &ConsoleApp, cookie: &str) -> bool {
    let res = get(app, "/console/extensions", Some(cookie)).await;
    match res.status() {
        StatusCode::OK => true,
        StatusCode::SEE_OTHER => {
            assert!(
                location(&res).starts_with("/console/login"),
                "{}",
                location(&res)
            );
            false
        }
        s => panic!("unexpected status {s}"),
    }
}

#[tokio::test]
async fn session_cookie_is_httponly_samesite_lax_path_root_over_plain_http() {
    let app = start(None).await;
    let res = sign_in(&app, ADMIN, PASSWORD, "", None).await;
    let cookie = set_cookies(&res)
        .into_iter()
        .find(|c| c.starts_with("pbx365_session="))
        .expect("session cookie");
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attrs.contains(&"HttpOnly"), "{cookie}");
    assert!(attrs.contains(&"SameSite=Lax"), "{cookie}");
    assert!(attrs.contains(&"Path=/"), "{cookie}");
    assert!(
        !attrs.contains(&"Secure"),
        "plain http cannot carry a Secure cookie: {cookie}"
    );
    assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
    // 256 random bits, base64url.
    assert_eq!(attrs[0].len() - "pbx365_session=".len(), 43);
}

#[tokio::test]
async fn https_public_url_gives_a_secure_host_prefixed_cookie() {
    let app = start(Some("https://pbx.contoso.com")).await;
    let res = sign_in(&app, ADMIN, PASSWORD, "", None).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookies(&res)
        .into_iter()
        .find(|c| c.starts_with("__Host-pbx365_session="))
        .expect("__Host- cookie");
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for a in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attrs.contains(&a), "{a} missing: {cookie}");
    }
    assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
}

#[tokio::test]
async fn sign_in_issues_a_new_session_id_and_a_planted_one_stays_worthless() {
    let app = start(None).await;
    let planted = "pbx365_session=attacker-chose-this-id-before-the-victim-signed-in";
    let res = sign_in(&app, ADMIN, PASSWORD, "", Some(planted)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let fresh = format!(
        "pbx365_session={}",
        cookie_set(&res, "pbx365_session").unwrap()
    );
    assert_ne!(fresh, planted);
    assert!(
        !is_signed_in(&app, planted).await,
        "the planted id must not be signed in"
    );
    assert!(is_signed_in(&app, &fresh).await);

    // Signing in again with a live session replaces it: the pre-login cookie is dead afterwards.
    let res = sign_in(&app, ADMIN, PASSWORD, "", Some(&fresh)).await;
    let second = format!(
        "pbx365_session={}",
        cookie_set(&res, "pbx365_session").unwrap()
    );
    assert_ne!(second, fresh);
    assert!(
        !is_signed_in(&app, &fresh).await,
        "the cookie from before the second sign-in must be dead"
    );
    assert!(is_signed_in(&app, &second).await);
}

#[tokio::test]
async fn sign_out_ends_the_session_on_the_server_so_a_replayed_cookie_is_refused() {
    let app = start(None).await;
    let cookie = session(&app).await;
    let csrf = csrf_of(&app, &cookie).await;
    let res = client()
        .post(format!("{}/console/logout", app.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/console/login?logged_out=1");
    let cleared = set_cookies(&res)
        .into_iter()
        .find(|c| c.starts_with("pbx365_session="))
        .unwrap();
    assert!(
        cleared.starts_with("pbx365_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );

    // The browser would drop the cookie; an attacker who copied it replays it.
    assert!(!is_signed_in(&app, &cookie).await);
    let api = client()
        .get(format!("{}/api/v1/extensions", app.base))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn session_ends_after_30_minutes_idle() {
    let app = start(None).await;
    let cookie = session(&app).await;
    app.clock.advance(Duration::minutes(29));
    assert!(
        is_signed_in(&app, &cookie).await,
        "29 minutes idle is still fine"
    );
    // That request reset the idle timer.
    app.clock.advance(Duration::minutes(29));
    assert!(is_signed_in(&app, &cookie).await);
    app.clock.advance(Duration::minutes(30));
    let res = get(&app, "/console/sync", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&res),
        "/console/login?return_to=%2Fconsole%2Fsync&expired=1"
    );
    let page = get(&app, "/console/login?expired=1", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Your session has expired. Please sign in again."));
    // Expired means gone, even if the clock could be turned back.
    assert!(!is_signed_in(&app, &cookie).await);
}

#[tokio::test]
async fn an_active_session_still_ends_12_hours_after_sign_in() {
    let app = start(None).await;
    let cookie = session(&app).await;
    for _ in 0..(12 * 3 - 1) {
        app.clock.advance(Duration::minutes(20));
        assert!(is_signed_in(&app, &cookie).await);
    }
    app.clock.advance(Duration::minutes(20));
    assert!(
        !is_signed_in(&app, &cookie).await,
        "12 h after sign-in the session must be over"
    );
}

#[tokio::test]
async fn console_forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let app = start(None).await;
    let cookie = session(&app).await;
    for csrf in [None, Some("forged-token")] {
        let mut form = vec![
            ("number", "555"),
            ("first_name", "Eve"),
            ("last_name", "Mallory"),
        ];
        if let Some(c) = csrf {
            form.push(("csrf", c));
        }
        let res = client()
            .post(format!("{}/console/extensions", app.base))
            .header(COOKIE, &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.text().await.unwrap().contains("nothing was changed"));
    }
    assert!(app
        .state
        .store
        .get_extension("555")
        .await
        .unwrap()
        .is_none());

    // Deleting and signing out are protected the same way.
    let res = client()
        .post(format!("{}/console/extensions/100/delete", app.base))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(app
        .state
        .store
        .get_extension("100")
        .await
        .unwrap()
        .is_some());
    let res = client()
        .post(format!("{}/console/logout", app.base))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        is_signed_in(&app, &cookie).await,
        "a forged sign-out must not end the session"
    );
}

#[tokio::test]
async fn open_redirect_attempts_after_sign_in_land_on_the_console() {
    let app = start(None).await;
    for evil in [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "%2F%2Fevil.example",
        "/console/..//evil",
    ] {
        let res = sign_in(&app, ADMIN, PASSWORD, evil, None).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{evil}");
        assert_eq!(location(&res), "/console", "{evil}");
    }
    let res = sign_in(&app, ADMIN, PASSWORD, "/console/sync", None).await;
    assert_eq!(location(&res), "/console/sync");
}

#[tokio::test]
async fn every_console_page_requires_sign_in() {
    let app = start(None).await;
    for path in [
        "/console",
        "/console/extensions",
        "/console/extensions/new",
        "/console/extensions/100/edit",
        "/console/extensions/101/photo",
        "/console/phonebook",
        "/console/sync",
        "/console/settings",
        "/console/settings/integrations/microsoft365",
    ] {
        let res = get(&app, path, None).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(
            location(&res).starts_with("/console/login"),
            "{path} -> {}",
            location(&res)
        );
    }
    let res = client()
        .post(format!("{}/console/extensions", app.base))
        .form(&[("number", "556"), ("first_name", "X")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(app
        .state
        .store
        .get_extension("556")
        .await
        .unwrap()
        .is_none());
    // The web client page and the sign-in page are public.
    assert_eq!(get(&app, "/", None).await.status(), StatusCode::OK);
    assert_eq!(
        get(&app, "/console/login", None).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_message_and_no_session() {
    let app = start(None).await;
    for (user, pw) in [("nobody", PASSWORD), (ADMIN, "wrong password")] {
        let res = sign_in(&app, user, pw, "", None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(cookie_set(&res, "pbx365_session").is_none());
        let html = res.text().await.unwrap();
        assert!(
            html.contains("The user name or password is not correct."),
            "{user}"
        );
        assert!(!html.contains(pw), "the password must not be echoed");
    }
}

#[tokio::test]
async fn repeated_failed_sign_ins_for_a_name_back_off() {
    let app = start(None).await;
    for _ in 0..5 {
        let res = sign_in(&app, ADMIN, "guess", "", None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Even the right password waits now.
    let res = sign_in(&app, ADMIN, PASSWORD, "", None).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Too many failed sign-ins for this user name. Try again in"));
    app.clock.advance(Duration::seconds(2));
    let res = sign_in(&app, ADMIN, PASSWORD, "", None).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_in_without_the_login_form_token_is_refused() {
    let app = start(None).await;
    let res = client()
        .post(format!("{}/console/login", app.base))
        .form(&[("username", ADMIN), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(cookie_set(&res, "pbx365_session").is_none());
}

#[tokio::test]
async fn pages_carry_security_headers_and_are_not_cached() {
    let app = start(None).await;
    let cookie = session(&app).await;
    for (path, cookie) in [
        ("/console/login", None),
        ("/", None),
        ("/console/extensions", Some(cookie.as_str())),
    ] {
        let res = get(&app, path, cookie).await;
        let h = res.headers();
        let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer");
        assert_eq!(h.get("cache-control").unwrap(), "no-store", "{path}");
    }
    let css = get(&app, "/static/console.css", None).await;
    assert_eq!(css.status(), StatusCode::OK);
    assert!(css
        .headers()
        .get(CONTENT_TYPE)
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/css"));
}

#[tokio::test]
async fn extension_list_shows_source_state_profile_and_photo() {
    let app = start(None).await;
    let cookie = session(&app).await;
    let html = get(&app, "/console/extensions", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    let row = |n: &str| {
        let start = html
            .find(&format!("data-number=\"{n}\""))
            .unwrap_or_else(|| panic!("row {n}"));
        html[start..html[start..].find("</tr>").unwrap() + start].to_string()
    };
    let anna = row("100");
    assert!(
        anna.contains("Anna Berg") && anna.contains("anna@contoso.com") && anna.contains("Sales")
    );
    assert!(anna.contains(">Local<") && anna.contains(">Enabled<") && anna.contains(">Available<"));
    let ben = row("101");
    assert!(
        ben.contains(">Microsoft 365<") && ben.contains(">Do Not Disturb<"),
        "{ben}"
    );
    assert!(
        ben.contains("src=\"/console/extensions/101/photo\""),
        "{ben}"
    );
    assert!(row("102").contains(">Disabled<"));

    let photo = get(&app, "/console/extensions/101/photo", Some(&cookie)).await;
    assert_eq!(photo.headers().get(CONTENT_TYPE).unwrap(), "image/png");
    assert_eq!(
        &photo.bytes().await.unwrap()[..],
        pbx365_testkit::data::PNG_1X1
    );
}

#[tokio::test]
async fn adding_an_extension_with_a_bad_number_explains_why_and_keeps_the_input() {
    let app = start(None).await;
    let cookie = session(&app).await;
    let csrf = csrf_of(&app, &cookie).await;
    let post = |form| post_form(&app, &cookie, "/console/extensions", form);
    let res = post(vec![
        ("csrf", csrf.clone()),
        ("number", "12a".into()),
        ("first_name", "Dora".into()),
        ("department", "Legal".into()),
    ])
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    let text = html.replace("&#39;", "'").replace("&#x27;", "'");
    assert!(
        text.contains("Extension number '12a' is not valid: use 2 to 8 digits (0-9) only."),
        "{html}"
    );
    assert!(html.contains("value=\"Legal\""), "typed input is kept");

    let res = post(vec![
        ("csrf", csrf.clone()),
        ("number", "100".into()),
        ("first_name", "Dora".into()),
    ])
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Extension 100 already exists"));

    let res = post(vec![
        ("csrf", csrf.clone()),
        ("number", "120".into()),
        ("first_name", "Dora".into()),
        ("last_name", "Eck".into()),
    ])
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let created = app
        .state
        .store
        .get_extension("120")
        .await
        .unwrap()
        .expect("created");
    assert_eq!(created.display_name, "Dora Eck");
    let list = get(&app, &location(&res), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("Extension 120 was added."));
}

#[tokio::test]
async fn microsoft_365_page_shows_the_redirect_uri_to_register() {
    let app = start(Some("https://pbx.contoso.com/")).await;
    let res = sign_in(&app, ADMIN, PASSWORD, "", None).await;
    let cookie = format!(
        "__Host-pbx365_session={}",
        cookie_set(&res, "__Host-pbx365_session").unwrap()
    );
    // reqwest sends the cookie over http here; the server does not know how it got there.
    let html = get(
        &app,
        "/console/settings/integrations/microsoft365",
        Some(&cookie),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(
        html.contains("value=\"https://pbx.contoso.com/oauth2office2\""),
        "{html}"
    );
    assert!(html.contains("Not connected"));
}

#[tokio::test]
async fn a_local_extension_can_be_edited_and_deleted_but_a_synced_one_cannot() {
    let app = start(None).await;
    let cookie = session(&app).await;
    let csrf = csrf_of(&app, &cookie).await;
    let post = |path: &str, form: Vec<(&'static str, &str)>| {
        let req = client()
            .post(format!("{}{path}", app.base))
            .header(COOKIE, cookie.clone())
            .form(&form);
        async move { req.send().await.unwrap() }
    };

    // A bad email is explained and nothing is saved.
    let res = post(
        "/console/extensions/100",
        vec![
            ("csrf", &csrf),
            ("first_name", "Anna"),
            ("last_name", "Berg"),
            ("email", "anna-at-contoso"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap().replace("&#39;", "'");
    assert!(
        html.contains("'anna-at-contoso' is not a valid email address"),
        "{html}"
    );
    let anna = app.state.store.get_extension("100").await.unwrap().unwrap();
    assert_eq!(anna.email.as_deref(), Some("anna@contoso.com"));

    let res = post(
        "/console/extensions/100",
        vec![
            ("csrf", &csrf),
            ("first_name", "Anna"),
            ("last_name", "Lind"),
            ("department", "Marketing"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let anna = app.state.store.get_extension("100").await.unwrap().unwrap();
    assert_eq!(
        (anna.display_name.as_str(), anna.department.as_deref()),
        ("Anna Lind", Some("Marketing"))
    );

    // Synced extensions are shown read-only and refuse changes and deletion.
    let view = get(&app, "/console/extensions/101/edit", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(view.contains("comes from Microsoft 365"));
    assert!(!view.contains("id=\"delete\""));
    let res = post(
        "/console/extensions/101",
        vec![("csrf", &csrf), ("first_name", "Mallory")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let res = post("/console/extensions/101/delete", vec![("csrf", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let ben = app.state.store.get_extension("101").await.unwrap().unwrap();
    assert_eq!(ben.first_name, "Ben");

    let res = post("/console/extensions/100/delete", vec![("csrf", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(app
        .state
        .store
        .get_extension("100")
        .await
        .unwrap()
        .is_none());
    let list = get(&app, &location(&res), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("Extension 100 was deleted."));
}

#[tokio::test]
async fn sync_history_and_phonebook_pages_list_what_the_store_holds() {
    use pbx365_domain::{
        PhoneKind, PhoneNumber, PhonebookEntry, PhonebookOwner, ReportItem, SyncKind, SyncReport,
        SyncStatus,
    };
    let app = start(None).await;
    let cookie = session(&app).await;

    let empty = get(&app, "/console/sync", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(empty.contains("No sync has run yet."));
    let run = app
        .state
        .store
        .start_sync_run(SyncKind::Users)
        .await
        .unwrap();
    let report = SyncReport {
        created: vec![ReportItem {
            extension: Some("103".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    app.state
        .store
        .finish_sync_run(&run.id, SyncStatus::Completed, &report)
        .await
        .unwrap();
    let html = get(&app, "/console/sync", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("id=\"sync-runs\"") && html.contains("Users") && html.contains("Completed"),
        "{html}"
    );

    app.state
        .store
        .create_phonebook_entry(&PhonebookEntry {
            id: String::new(),
            owner: PhonebookOwner::Company,
            m365_id: None,
            job_title: None,
            mailbox: None,
            no_number: false,
            display_name: "Fabrikam Reception".into(),
            first_name: String::new(),
            last_name: String::new(),
            company: Some("Fabrikam".into()),
            emails: vec!["hello@fabrikam.com".into()],
            numbers: vec![PhoneNumber::new(
                PhoneKind::Business,
                "+49 30 1234567",
                "DE",
            )],
        })
        .await
        .unwrap();
    let html = get(&app, "/console/phonebook", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Fabrikam Reception")
            && html.contains("+49 30 1234567")
            && html.contains("hello@fabrikam.com")
    );
}

/// Collects every event and span field on this thread as text (a stand-in for the log file).
struct CaptureLogs {
    out: std::sync::Arc<std::sync::Mutex<String>>,
    next_id: std::sync::atomic::AtomicU64,
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl tracing::Subscriber for CaptureLogs {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        span.record(&mut Fields(&mut self.out.lock().unwrap()));
        tracing::span::Id::from_u64(
            self.next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        )
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&mut self.out.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut out = self.out.lock().unwrap();
        out.push_str(event.metadata().target());
        out.push(' ');
        event.record(&mut Fields(&mut out));
        out.push('\n');
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn passwords_session_ids_and_csrf_tokens_never_reach_the_log() {
    let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    // The test runtime is single-threaded, so the server's tasks log through this subscriber.
    let _guard = tracing::subscriber::set_default(CaptureLogs {
        out: out.clone(),
        next_id: std::sync::atomic::AtomicU64::new(1),
    });
    let app = start(None).await;
    let wrong = "wrong-password-canary-7f3a";
    sign_in(&app, ADMIN, wrong, "", None).await;
    let cookie = session(&app).await;
    let csrf = csrf_of(&app, &cookie).await;
    let res = client()
        .post(format!("{}/console/logout", app.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(!is_signed_in(&app, &cookie).await);

    let logs = out.lock().unwrap().clone();
    assert!(
        logs.contains("console sign-in refused") && logs.contains("console sign-in"),
        "{logs}"
    );
    let session_id = cookie.split_once('=').unwrap().1;
    for (what, secret) in [
        ("password", PASSWORD),
        ("wrong password", wrong),
        ("session id", session_id),
        ("CSRF token", &csrf),
    ] {
        assert!(!logs.contains(secret), "the {what} is in the log:\n{logs}");
    }
}

#[tokio::test]
async fn an_admin_sets_the_profile_of_a_synced_extension_by_hand() {
    let app = start(None).await;
    let cookie = session(&app).await;
    let csrf = csrf_of(&app, &cookie).await;
    let page = get(&app, "/console/extensions/101/edit", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<option value=\"dnd\" selected>Do Not Disturb</option>"),
        "{page}"
    );

    let res = client()
        .post(format!("{}/console/extensions/101/profile", app.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str()), ("profile", "lunch")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let ben = app.state.store.get_extension("101").await.unwrap().unwrap();
    assert_eq!(ben.profile.profile, pbx365_domain::Profile::Lunch);
    let list = get(&app, &location(&res), Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("The profile of extension 101 was set.") && list.contains(">Lunch<"));

    let res = client()
        .post(format!("{}/console/extensions/101/profile", app.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str()), ("profile", "busy")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap().replace("&#39;", "'");
    assert!(
        html.contains("'busy' is not a profile: use available, away, dnd, lunch or business_trip."),
        "{html}"
    );
    let ben = app.state.store.get_extension("101").await.unwrap().unwrap();
    assert_eq!(
        ben.profile.profile,
        pbx365_domain::Profile::Lunch,
        "nothing changed"
    );
}

async fn a_held_runs_page_lists_what_its_stored_plan_would_disable_and_delete(
    db: pbx365_testkit::db::FreshDb,
) {
    use pbx365_domain::{ReportItem, SyncKind, SyncReport, SyncStatus};
    use pbx365_store::{PlanPage, RoundCommit};
    let app = pbx365_testkit::web::console::start_on(db, None).await;
    let cookie = session(&app).await;
    let store = &app.state.store;
    let line = |n: &str, name: &str| ReportItem {
        extension: Some(n.into()),
        name: Some(name.into()),
        ..Default::default()
    };
    let run = store.start_sync_run(SyncKind::Users).await.unwrap();
    let plan = store
        .create_sync_plan("users", &run.id, "full", None, "fp")
        .await
        .unwrap();
    let page = PlanPage {
        ops: "[]".into(),
        report: SyncReport {
            disabled: vec![line("4711", "Dora Held"), line("4712", "Emil Held")],
            deleted: vec![line("4713", "Fritz Gone")],
            ..Default::default()
        },
        wanted: Vec::new(),
    };
    store
        .put_sync_plan_page(&plan, 0, &page, None)
        .await
        .unwrap();
    store
        .hold_sync_plan(&plan, "delta-link", &RoundCommit::default())
        .await
        .unwrap();
    // The run's own report names one line; the page lists the whole stored plan.
    let report = SyncReport {
        disabled: vec![line("4711", "Dora Held")],
        ..Default::default()
    };
    store
        .finish_sync_run(&run.id, SyncStatus::Held, &report)
        .await
        .unwrap();
    let path = format!("/console/sync/runs/{}", run.id);
    let html = get(&app, &path, Some(&cookie)).await.text().await.unwrap();
    assert!(html.contains("id=\"held-plan\""), "{html}");
    for l in [
        "disable: 4711 Dora Held",
        "disable: 4712 Emil Held",
        "delete: 4713 Fritz Gone",
    ] {
        assert!(html.contains(l), "the page lists {l}: {html}");
    }

    // Once a later run completed, the old run waits for nothing and shows no plan.
    let later = store.start_sync_run(SyncKind::Users).await.unwrap();
    store
        .finish_sync_run(&later.id, SyncStatus::Completed, &SyncReport::default())
        .await
        .unwrap();
    let html = get(&app, &path, Some(&cookie)).await.text().await.unwrap();
    assert!(!html.contains("id=\"held-plan\""), "{html}");
}

pbx365_testkit::on_both!(a_held_runs_page_lists_what_its_stored_plan_would_disable_and_delete);

#[tokio::test]
async fn settings_phonebook_shows_a_new_export_token_once_and_keeps_only_hashes() {
    let app = start(None).await;
    let cookie = session(&app).await;
    let page = get(&app, "/console/settings/phonebook", Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"token-unset\""), "{html}");
    assert!(html.contains("id=\"nav-phonebook-settings\""));
    let csrf = hidden(&html, "csrf");
    let post = |path, form| post_form(&app, &cookie, path, form);

    // Without the CSRF token nothing changes.
    let res = post("/console/settings/phonebook/token", vec![]).await;
    assert_ne!(res.status(), StatusCode::OK);
    assert!(app.state.app.settings().phonebook.export_token.is_none());

    let res = post(
        "/console/settings/phonebook/token",
        vec![("csrf", csrf.clone())],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = pbx365_testkit::web::text(&res.text().await.unwrap());
    let url = html
        .split("<code class=\"export-url\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("the export URL is shown")
        .to_string();
    assert!(
        url.starts_with(&format!("{}/phonebook/yealink.xml?token=", app.base)),
        "{url}"
    );
    let token = url.rsplit("token=").next().unwrap().to_string();
    assert!(app.state.app.export_token_matches(&token).await);
    let stored = app
        .state
        .app
        .settings()
        .phonebook
        .export_token
        .clone()
        .unwrap();
    assert!(!stored.contains(&token));
    let feed = client().get(&url).send().await.unwrap();
    assert_eq!(feed.status(), StatusCode::OK);

    // Shown once: the page no longer has it.
    let html = get(&app, "/console/settings/phonebook", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains(&token) && html.contains("id=\"token-set\""));

    let res = post(
        "/console/settings/phonebook/ldap",
        vec![
            ("csrf", csrf.clone()),
            ("enabled", "on".into()),
            ("listen", "127.0.0.1:3389".into()),
            ("bind_dn", "cn=phones,dc=pbx365".into()),
            ("password", "phones secret".into()),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let p = app.state.app.settings().phonebook.clone();
    assert_eq!(p.ldap_listen.as_deref(), Some("127.0.0.1:3389"));
    assert!(p
        .ldap_bind_password
        .as_deref()
        .unwrap()
        .starts_with("$argon2"));
    assert!(app
        .state
        .app
        .ldap_bind_matches("cn=phones,dc=pbx365", "phones secret"));
    // A blank password keeps the stored one; a bad address is refused with a sentence.
    post(
        "/console/settings/phonebook/ldap",
        vec![
            ("csrf", csrf.clone()),
            ("enabled", "on".into()),
            ("listen", "nowhere".into()),
            ("bind_dn", "cn=phones,dc=pbx365".into()),
        ],
    )
    .await;
    let html = pbx365_testkit::web::text(
        &get(&app, "/console/settings/phonebook", Some(&cookie))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(html.contains("phonebook.ldap_listen"), "{html}");
    assert!(app
        .state
        .app
        .ldap_bind_matches("cn=phones,dc=pbx365", "phones secret"));

    let res = post(
        "/console/settings/phonebook/token/remove",
        vec![("csrf", csrf)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        client().get(&url).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn settings_calendar_saves_the_map_and_extensions_and_refuses_bad_input() {
    const CALENDAR: &str = "/console/settings/integrations/microsoft365/calendar";
    let app = start(None).await;
    let cookie = session(&app).await;
    let html = get(&app, CALENDAR, Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"calendar-settings\""), "{html}");
    assert!(html.contains("id=\"nav-calendar\""), "{html}");
    let csrf = hidden(&html, "csrf");
    let form = |extra: Vec<(&'static str, &str)>| {
        let mut f = vec![
            ("csrf", csrf.clone()),
            ("enabled", "on".to_string()),
            ("map_busy", "away".to_string()),
            ("map_oof", "dnd".to_string()),
            ("scope", "selected".to_string()),
            ("numbers", "100, 101".to_string()),
            ("look_ahead_hours", "12".to_string()),
        ];
        for (k, v) in extra {
            f.retain(|(key, _)| *key != k);
            f.push((k, v.to_string()));
        }
        f
    };

    // Without the CSRF token nothing changes.
    let mut forged = form(vec![]);
    forged[0].1 = "forged".into();
    let res = post_form(&app, &cookie, CALENDAR, forged).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(!app.state.app.settings().calendar.enabled);

    // Bad input is refused with a sentence and saves nothing.
    let res = post_form(
        &app,
        &cookie,
        CALENDAR,
        form(vec![("look_ahead_hours", "soon")]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = pbx365_testkit::web::text(&res.text().await.unwrap());
    assert!(
        text.contains("The look-ahead is a number of hours"),
        "{text}"
    );
    let res = post_form(&app, &cookie, CALENDAR, form(vec![("numbers", "ann")])).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!app.state.app.settings().calendar.enabled);

    let res = post_form(&app, &cookie, CALENDAR, form(vec![])).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let saved = app.state.app.settings().calendar.clone();
    assert!(saved.enabled);
    assert_eq!(saved.extensions, ["100", "101"]);
    assert!(saved.covers("101") && !saved.covers("102"));
    assert_eq!(saved.look_ahead_hours, 12);
    assert_eq!(saved.map.get("busy").map(String::as_str), Some("away"));
    let html = get(&app, CALENDAR, Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        pbx365_testkit::web::text(&html).contains("The calendar settings were saved."),
        "{html}"
    );

    // The standard edition explains and offers no form.
    let mut standard = (*app.state.app.settings()).clone();
    standard.edition = pbx365_domain::settings::Edition::Standard;
    standard.calendar.enabled = false;
    app.state.app.replace_settings(standard);
    let html = get(&app, CALENDAR, Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"calendar-standard\""), "{html}");
    assert!(!html.contains("id=\"calendar-settings\""), "{html}");
}

/// The `href` of the navigation link marked as the current page, if any.
fn current_nav_href(html: &str) -> Option<String> {
    let mark = html.find("aria-current=\"page\"")?;
    let link = &html[html[..mark].rfind("<a ")?..mark];
    let href = &link[link.find("href=\"")? + 6..];
    Some(href[..href.find('"')?].to_string())
}

#[tokio::test]
async fn each_settings_page_marks_its_own_navigation_link_as_current() {
    let app = start(None).await;
    let cookie = session(&app).await;
    for path in [
        "/console/extensions",
        "/console/phonebook",
        "/console/sync",
        "/console/settings/integrations/microsoft365",
        "/console/settings/integrations/microsoft365/contacts",
        "/console/settings/integrations/microsoft365/calendar",
        "/console/settings/mail",
        "/console/settings/phonebook",
        "/console/settings/phones",
        "/console/settings/tokens",
        "/console/settings/password",
        "/console/settings/sessions",
    ] {
        let res = get(&app, path, Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let html = res.text().await.unwrap();
        assert_eq!(
            current_nav_href(&html).as_deref(),
            Some(path),
            "the navigation should mark {path} as the current page"
        );
    }
}
