//! Credentials (issue 9 item 5) over real HTTP on both databases: a storm of wrong sign-ins
//! with random names, per-address throttling, API tokens that expire, record their use and are
//! revoked in the console, and an admin changing the password.

use chrono::{Duration, Utc};
use pbx365_app::credentials;
use pbx365_testkit::db::FreshDb;
use pbx365_testkit::on_both;
use pbx365_testkit::web::console::{start_on, ConsoleApp, ADMIN, PASSWORD};
use pbx365_testkit::web::{hidden, location, text};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};
use std::net::{IpAddr, Ipv4Addr};

/// A client whose connections come from `127.0.0.{last}` (loopback answers all of 127/8).
fn client_from(last: u8) -> Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .build()
        .unwrap()
}

fn cookie_set(res: &Response, name: &str) -> Option<String> {
    res.headers().get_all(SET_COOKIE).iter().find_map(|v| {
        let c = v.to_str().ok()?;
        let (pair, _) = c.split_once(';').unwrap_or((c, ""));
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// Fetches the sign-in form and posts it from `client`.
async fn sign_in(app: &ConsoleApp, client: &Client, user: &str, password: &str) -> Response {
    let page = client
        .get(format!("{}/console/login", app.base))
        .send()
        .await
        .unwrap();
    let name = app.policy().login_cookie_name();
    let token = cookie_set(&page, name).expect("login cookie");
    let login_csrf = hidden(&page.text().await.unwrap(), "login_csrf");
    client
        .post(format!("{}/console/login", app.base))
        .header(COOKIE, format!("{name}={token}"))
        .form(&[
            ("username", user),
            ("password", password),
            ("return_to", ""),
            ("login_csrf", &login_csrf),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs in as the admin from `client` and returns the session's `Cookie` value.
async fn session(app: &ConsoleApp, client: &Client, password: &str) -> String {
    let res = sign_in(app, client, ADMIN, password).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "sign-in refused");
    let name = app.policy().cookie_name();
    format!("{name}={}", cookie_set(&res, name).expect("session cookie"))
}

async fn page(app: &ConsoleApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let res = client_from(1)
        .get(format!("{}{path}", app.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

async fn post(app: &ConsoleApp, cookie: &str, path: &str, form: &[(&str, &str)]) -> Response {
    client_from(1)
        .post(format!("{}{path}", app.base))
        .header(COOKIE, cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

on_both!(a_storm_of_wrong_sign_ins_with_random_names_stays_bounded => storm_body);
async fn storm_body(db: FreshDb) {
    let app = start_on(db, None).await;
    let sessions = app.state.sessions.clone();
    sessions.limit_tracked(32);
    let clients: Vec<Client> = (1..=100).map(client_from).collect();
    let attempts = (0..200).map(|i| {
        let client = clients[i % clients.len()].clone();
        let app = &app;
        async move {
            let name = format!("nobody-{}", uuid::Uuid::new_v4().simple());
            sign_in(app, &client, &name, "wrong password")
                .await
                .status()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    for s in &statuses {
        assert!(
            *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS,
            "a wrong sign-in got {s}"
        );
    }
    let (names, addresses) = sessions.tracked_failures();
    assert!(names <= 32, "{names} names remembered");
    assert!(addresses <= 32, "{addresses} addresses remembered");

    // The right password still gets in after the storm.
    session(&app, &client_from(201), PASSWORD).await;
}

on_both!(an_address_with_many_failures_is_throttled_but_not_others => address_body);
async fn address_body(db: FreshDb) {
    let app = start_on(db, None).await;
    let noisy = client_from(250);
    for i in 0..20 {
        let res = sign_in(&app, &noisy, &format!("guess{i}"), "wrong password").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Even the right password waits now, from that address only.
    let res = sign_in(&app, &noisy, ADMIN, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    assert!(text(&res.text().await.unwrap())
        .contains("Too many failed sign-ins from your address. Try again in"));
    session(&app, &client_from(251), PASSWORD).await;
    app.clock.advance(Duration::seconds(2));
    session(&app, &noisy, PASSWORD).await;
}

on_both!(api_tokens_expire_record_their_use_and_are_revoked_in_the_console => tokens_body);
async fn tokens_body(db: FreshDb) {
    let app = start_on(db, None).await;
    let store = &app.state.store;
    let now = Utc::now();
    let ci = credentials::create_api_token(store, "ci", Some(30), now)
        .await
        .unwrap();
    let stale = pbx365_web::auth::new_token();
    store
        .create_api_token_expiring(
            "stale",
            &pbx365_web::auth::hash_token(&stale),
            Some(now - Duration::hours(1)),
        )
        .await
        .unwrap();
    let api = |token: String| {
        let base = app.base.clone();
        async move {
            let res = client_from(1)
                .get(format!("{base}/api/v1/extensions"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = res.status();
            (status, res.json::<serde_json::Value>().await.unwrap())
        }
    };
    assert_eq!(api(ci.clone()).await.0, StatusCode::OK);
    let (status, body) = api(stale.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("this API token expired at "), "{msg}");

    let cookie = session(&app, &client_from(1), PASSWORD).await;
    let (status, html) = page(&app, &cookie, "/console/settings/tokens").await;
    assert_eq!(status, StatusCode::OK);
    let html = text(&html);
    // Used once: its row no longer says "never" for last use; the unused one does.
    let cells = |name: &str| -> Vec<String> {
        let row = html.split(&format!("<td>{name}</td>")).nth(1).unwrap();
        let row = row.split("</tr>").next().unwrap();
        row.split("<td>")
            .skip(1)
            .map(|c| c.split("</td>").next().unwrap().trim().to_string())
            .collect()
    };
    let (ci_cells, stale_cells) = (cells("ci"), cells("stale"));
    let today = now.format("%Y-%m-%d").to_string();
    assert!(ci_cells[1].starts_with(&today), "last used: {ci_cells:?}");
    assert!(!ci_cells[2].contains("expired"), "{ci_cells:?}");
    assert_eq!(stale_cells[1], "never", "{stale_cells:?}");
    assert!(stale_cells[2].contains("expired"), "{stale_cells:?}");
    for secret in [&ci, &stale] {
        assert!(!html.contains(secret.as_str()), "a token is on the page");
        assert!(
            !html.contains(&pbx365_web::auth::hash_token(secret)),
            "a token hash is on the page"
        );
    }

    // Without the CSRF token nothing is revoked.
    let res = post(
        &app,
        &cookie,
        "/console/settings/tokens/revoke",
        &[("name", "ci")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(api(ci.clone()).await.0, StatusCode::OK);

    let csrf = hidden(&html, "csrf");
    let res = post(
        &app,
        &cookie,
        "/console/settings/tokens/revoke",
        &[("csrf", &csrf), ("name", "ci")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/console/settings/tokens");
    let (status, body) = api(ci.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("revoked or never issued"), "{msg}");
    let (_, html) = page(&app, &cookie, "/console/settings/tokens").await;
    let html = text(&html);
    assert!(html.contains("The API token “ci” was revoked"), "{html}");
    assert!(!html.contains("<td>ci</td>"), "{html}");
}

on_both!(an_admin_changes_the_password_and_other_sessions_end => password_body);
async fn password_body(db: FreshDb) {
    let app = start_on(db, None).await;
    let here = session(&app, &client_from(1), PASSWORD).await;
    let elsewhere = session(&app, &client_from(2), PASSWORD).await;
    let (status, html) = page(&app, &here, "/console/settings/password").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = hidden(&html, "csrf");
    let new = "a much longer new password";
    let path = "/console/settings/password";

    let refused = [
        (
            vec![
                ("csrf", csrf.as_str()),
                ("current", "wrong"),
                ("new", new),
                ("repeat", new),
            ],
            "The current password is not correct.",
        ),
        (
            vec![
                ("csrf", csrf.as_str()),
                ("current", PASSWORD),
                ("new", "short one"),
                ("repeat", "short one"),
            ],
            "The password must be 12 to 1024 characters long.",
        ),
        (
            vec![
                ("csrf", csrf.as_str()),
                ("current", PASSWORD),
                ("new", new),
                ("repeat", "something else entirely"),
            ],
            "The two new passwords differ; nothing was changed.",
        ),
    ];
    for (form, sentence) in refused {
        let res = post(&app, &here, path, &form).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{sentence}");
        assert!(
            text(&res.text().await.unwrap()).contains(sentence),
            "{sentence}"
        );
    }
    let res = post(
        &app,
        &here,
        path,
        &[("current", PASSWORD), ("new", new), ("repeat", new)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "no CSRF token");

    let res = post(
        &app,
        &here,
        path,
        &[
            ("csrf", &csrf),
            ("current", PASSWORD),
            ("new", new),
            ("repeat", new),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, html) = page(&app, &here, path).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the changing session stays signed in"
    );
    assert!(text(&html).contains("Your password was changed; 1 other session(s) were signed out."));
    let (status, _) = page(&app, &elsewhere, "/console/extensions").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the other session ended");

    let res = sign_in(&app, &client_from(3), ADMIN, PASSWORD).await;
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the old password still works"
    );
    session(&app, &client_from(3), new).await;
}
