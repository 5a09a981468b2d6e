//! Single sign-on: relying-party conformance against a fake provider we control (one test per
//! row of security checklist §2, each refused case ending with no session cookie), the
//! extension rules (unknown, disabled, not allowed, console without admin role), open
//! redirects, and the sessions a sign-in starts.

use pbx365_domain::settings::SsoMode;
use pbx365_testkit::db::FreshDb;
use pbx365_testkit::oidc::{claims, Signer, CLIENT_ID, OTHER_TENANT, TENANT};
use pbx365_testkit::on_both;
use pbx365_testkit::web::sso::{
    location, sets_session, start, start_with_certified_op, start_with_sim, text, SimSsoApp,
    SsoApp, SsoBrowser, Started, ADMIN_EXT, ADMIN_OID, DISABLED_OID, SIM_ADMIN, SIM_GROUP_SALES,
    SIM_GROUP_STAFF, SIM_USER, UNKNOWN_OID, USER_EXT, USER_OID,
};
use serde_json::Value;

/// Presses "Set a new SIP secret" on the web client with the form token `csrf`.
async fn press_new_sip_secret(app: &SsoApp, b: &SsoBrowser, csrf: &str) -> reqwest::Response {
    b.http
        .post(format!("{}/me/sip-secret", app.base))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap()
}

/// Starts a web client sign-in, queues the token `make` builds from the sent nonce, answers;
/// returns the browser and the answer's response.
async fn sign_in_with(
    app: &SsoApp,
    surface: &str,
    make: impl FnOnce(&SsoApp, &str) -> String,
) -> (SsoBrowser, reqwest::Response) {
    let b = SsoBrowser::new(app);
    let started = b.start(surface, "/").await;
    app.op.queue(make(app, started.nonce()));
    let res = b.answer(started.state()).await;
    (b, res)
}

/// A sign-in on `surface` with a valid token for `oid`.
async fn sign_in_as(app: &SsoApp, surface: &str, oid: &str) -> (SsoBrowser, reqwest::Response) {
    sign_in_with(app, surface, |app, n| {
        app.signer.rs256(&valid(app, oid, n), true)
    })
    .await
}

fn valid(app: &SsoApp, oid: &str, nonce: &str) -> Value {
    claims(&app.op.base, TENANT, oid, nonce)
}

/// Asserts a refusal: its status, a sentence containing `expect`, no session cookie, and `/`
/// still signed out.
async fn assert_refused(b: &SsoBrowser, res: reqwest::Response, expect: &str) {
    let status = res.status().as_u16();
    assert!(status == 400 || status == 403, "refused, got {status}");
    assert!(!sets_session(&res), "no session cookie on refusal");
    let page = text(&res.text().await.unwrap());
    assert!(page.contains(expect), "{expect:?} in {page}");
    assert!(!b.signed_in_to_webclient().await, "still signed out");
}

async fn refused_case(db: FreshDb, expect: &str, make: impl FnOnce(&SsoApp, &str) -> String) {
    let app = start(db).await;
    let (b, res) = sign_in_with(&app, "webclient", make).await;
    assert_refused(&b, res, expect).await;
}

/// A correctly signed token lacking `claim` is refused with a sentence containing `expect`.
async fn refused_without(db: FreshDb, claim: &str, expect: &str) {
    refused_case(db, expect, |app, n| {
        let mut c = valid(app, USER_OID, n);
        c.as_object_mut().unwrap().remove(claim);
        app.signer.rs256(&c, true)
    })
    .await
}

// --- accepted rows -----------------------------------------------------------------------

async fn valid_rs256_token_signs_in_to_the_webclient(db: FreshDb) {
    let app = start(db).await;
    let (b, res) = sign_in_as(&app, "webclient", USER_OID).await;
    assert_eq!(res.status().as_u16(), 303, "signed in");
    assert!(sets_session(&res), "a session cookie");
    assert_eq!(location(&res), "/");
    let page = text(&b.get("/").await.text().await.unwrap());
    assert!(page.contains(USER_EXT), "{page}");
    assert!(page.contains("Anna Berg 201"), "{page}");
    // The code was redeemed with PKCE and the certificate assertion, at our redirect URI.
    let form = &app.op.token_forms()[0];
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["redirect_uri"], format!("{}/oauth2office2", app.base));
    assert!(form["code_verifier"].len() >= 43);
    assert!(form.contains_key("client_assertion"));
    assert_eq!(form["client_id"], CLIENT_ID);
    // A web client session never opens the console.
    let res = b.get("/console/extensions").await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(location(&res).starts_with("/console/login"));
    let res = b.get("/api/v1/extensions").await;
    assert_eq!(res.status().as_u16(), 401);
}

async fn kid_absent_with_one_key_is_accepted(db: FreshDb) {
    let app = start(db).await;
    let (b, res) = sign_in_with(&app, "webclient", |app, n| {
        app.signer.rs256(&valid(app, USER_OID, n), false)
    })
    .await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(b.signed_in_to_webclient().await);
}

async fn kid_absent_with_several_keys_tries_each(db: FreshDb) {
    let app = start(db).await;
    let other = Signer::new();
    app.op.publish(vec![other.jwk(), app.signer.jwk()]);
    let (b, res) = sign_in_with(&app, "webclient", |app, n| {
        app.signer.rs256(&valid(app, USER_OID, n), false)
    })
    .await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(b.signed_in_to_webclient().await);
}

async fn key_rotation_to_a_new_kid_refetches_the_jwks_once(db: FreshDb) {
    let app = start(db).await;
    let (_, res) = sign_in_as(&app, "webclient", USER_OID).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(app.op.jwks_fetches(), 1);
    // The provider rolls to a new key.
    let rolled = Signer::new();
    app.op.publish(vec![rolled.jwk(), app.signer.jwk()]);
    let (b, res) = sign_in_with(&app, "webclient", |app, n| {
        rolled.rs256(&valid(app, USER_OID, n), true)
    })
    .await;
    assert_eq!(
        res.status().as_u16(),
        303,
        "the new kid is fetched and accepted"
    );
    assert!(b.signed_in_to_webclient().await);
    assert_eq!(app.op.jwks_fetches(), 2);
    // A kid nobody publishes: refused, and the re-fetch is rate-limited (no third fetch).
    let stranger = Signer::new();
    let (b, res) = sign_in_with(&app, "webclient", |app, n| {
        stranger.rs256(&valid(app, USER_OID, n), true)
    })
    .await;
    assert_refused(&b, res, "key the identity provider does not publish").await;
    assert_eq!(app.op.jwks_fetches(), 2);
}

// --- refused rows --------------------------------------------------------------------------

async fn wrong_iss(db: FreshDb) {
    refused_case(db, "issuer", |app, n| {
        let mut c = valid(app, USER_OID, n);
        c["iss"] = Value::from("https://evil.example/v2.0");
        app.signer.rs256(&c, true)
    })
    .await
}

async fn missing_sub(db: FreshDb) {
    refused_without(db, "sub", "no sub claim").await
}

async fn wrong_aud(db: FreshDb) {
    refused_case(db, "not addressed to this application", |app, n| {
        let mut c = valid(app, USER_OID, n);
        c["aud"] = Value::from("00000000-0000-4000-8000-000000000000");
        app.signer.rs256(&c, true)
    })
    .await
}

/// OIDC core 3.1.3.7: with several audiences the token must name us as its authorized party.
async fn several_audiences_need_azp_to_be_us(db: FreshDb) {
    let app = start(db).await;
    let other = "00000000-0000-4000-8000-000000000000";
    for (azp, expect) in [
        (None, "no authorized party (azp)"),
        (Some(other), "issued to another application"),
    ] {
        let (b, res) = sign_in_with(&app, "webclient", |app, n| {
            let mut c = valid(app, USER_OID, n);
            c["aud"] = serde_json::json!([CLIENT_ID, other]);
            if let Some(a) = azp {
                c["azp"] = Value::from(a);
            }
            app.signer.rs256(&c, true)
        })
        .await;
        assert_refused(&b, res, expect).await;
    }
    // A single audience with a foreign azp is refused too; with ours it is accepted.
    let (b, res) = sign_in_with(&app, "webclient", |app, n| {
        let mut c = valid(app, USER_OID, n);
        c["azp"] = Value::from(other);
        app.signer.rs256(&c, true)
    })
    .await;
    assert_refused(&b, res, "issued to another application").await;
    let (b, res) = sign_in_with(&app, "webclient", |app, n| {
        let mut c = valid(app, USER_OID, n);
        c["aud"] = serde_json::json!([CLIENT_ID, other]);
        c["azp"] = Value::from(CLIENT_ID);
        app.signer.rs256(&c, true)
    })
    .await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(b.signed_in_to_webclient().await);
}

async fn missing_aud(db: FreshDb) {
    refused_without(db, "aud", "not addressed to this application").await
}

async fn missing_iat(db: FreshDb) {
    refused_without(db, "iat", "no iat claim").await
}

async fn alg_none(db: FreshDb) {
    refused_case(db, "instead of RS256", |app, n| {
        app.signer.unsigned(&valid(app, USER_OID, n))
    })
    .await
}

async fn bad_rs256_signature(db: FreshDb) {
    refused_case(db, "signature does not verify", |app, n| {
        app.signer.bad_signature(&valid(app, USER_OID, n))
    })
    .await
}

async fn hs256_with_the_public_key_as_secret(db: FreshDb) {
    refused_case(db, "instead of RS256", |app, n| {
        app.signer.hs256_with_public_key(&valid(app, USER_OID, n))
    })
    .await
}

async fn wrong_nonce(db: FreshDb) {
    refused_case(db, "nonce does not match", |app, _| {
        app.signer
            .rs256(&valid(app, USER_OID, "another-nonce"), true)
    })
    .await
}

async fn expired_token(db: FreshDb) {
    refused_case(db, "expired", |app, n| {
        let mut c = valid(app, USER_OID, n);
        let past = chrono::Utc::now().timestamp() - 7200;
        c["iat"] = past.into();
        c["nbf"] = past.into();
        c["exp"] = (past + 600).into();
        app.signer.rs256(&c, true)
    })
    .await
}

async fn token_from_another_tenant(db: FreshDb) {
    refused_case(db, "another organisation", |app, n| {
        app.signer
            .rs256(&claims(&app.op.base, OTHER_TENANT, USER_OID, n), true)
    })
    .await
}

async fn replayed_state(db: FreshDb) {
    let app = start(db).await;
    let b = SsoBrowser::new(&app);
    let started = b.start("webclient", "/").await;
    app.op.queue(
        app.signer
            .rs256(&valid(&app, USER_OID, started.nonce()), true),
    );
    assert_eq!(b.answer(started.state()).await.status().as_u16(), 303);
    // The same answer again, even with a fresh valid token queued, is refused.
    let other = SsoBrowser::new(&app);
    app.op.queue(
        app.signer
            .rs256(&valid(&app, USER_OID, started.nonce()), true),
    );
    let res = other.answer(started.state()).await;
    assert_refused(
        &other,
        res,
        "does not belong to a sign-in started from this browser",
    )
    .await;
}

async fn missing_state_cookie(db: FreshDb) {
    let app = start(db).await;
    let starter = SsoBrowser::new(&app);
    let started = starter.start("webclient", "/").await;
    app.op.queue(
        app.signer
            .rs256(&valid(&app, USER_OID, started.nonce()), true),
    );
    // Another browser (an attacker's link) brings the answer without the binding cookie.
    let victim = SsoBrowser::new(&app);
    let res = victim.answer(started.state()).await;
    assert_refused(
        &victim,
        res,
        "does not belong to a sign-in started from this browser",
    )
    .await;
    assert!(
        app.op.token_forms().is_empty(),
        "the code was never redeemed"
    );
}

// --- extension rules ----------------------------------------------------------------------

async fn unknown_user(db: FreshDb) {
    refused_case(db, "not linked to an extension", |app, n| {
        app.signer.rs256(&valid(app, UNKNOWN_OID, n), true)
    })
    .await
}

async fn disabled_extension(db: FreshDb) {
    refused_case(db, "is disabled", |app, n| {
        app.signer.rs256(&valid(app, DISABLED_OID, n), true)
    })
    .await
}

async fn user_outside_the_selected_set(db: FreshDb) {
    let app = start(db).await;
    app.state
        .app
        .store_settings(&[
            ("sso.webclient".into(), serde_json::json!("selected")),
            (
                "sso.selected_extensions".into(),
                serde_json::json!([ADMIN_EXT]),
            ),
        ])
        .await
        .unwrap();
    let (b, res) = sign_in_as(&app, "webclient", USER_OID).await;
    assert_refused(&b, res, "not enabled for extension 201").await;
    // The selected one gets in.
    let (b, res) = sign_in_as(&app, "webclient", ADMIN_OID).await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(b.signed_in_to_webclient().await);
}

async fn console_needs_the_admin_role(db: FreshDb) {
    let app = start(db).await;
    let (b, res) = sign_in_as(&app, "console", USER_OID).await;
    assert_eq!(res.status().as_u16(), 403);
    assert!(!sets_session(&res));
    assert!(text(&res.text().await.unwrap()).contains("no administrator role"));
    assert_eq!(b.get("/console/extensions").await.status().as_u16(), 303);

    let b = SsoBrowser::new(&app);
    let started = b.start("console", "/console/sync").await;
    app.op.queue(
        app.signer
            .rs256(&valid(&app, ADMIN_OID, started.nonce()), true),
    );
    let res = b.answer(started.state()).await;
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(location(&res), "/console/sync");
    assert_eq!(b.get("/console/extensions").await.status().as_u16(), 200);
    // Losing the admin role ends the console session at the next request.
    app.store
        .set_extension_admin(ADMIN_EXT, false)
        .await
        .unwrap();
    assert_eq!(b.get("/console/extensions").await.status().as_u16(), 303);
}

async fn sso_off_offers_no_microsoft_sign_in(db: FreshDb) {
    let app = start(db).await;
    let b = SsoBrowser::new(&app);
    let landing = b.get("/").await.text().await.unwrap();
    assert!(landing.contains("Sign in with Microsoft"));
    let login = b.get("/console/login").await.text().await.unwrap();
    assert!(login.contains("Sign in with Microsoft"));
    let mut s = (*app.state.settings()).clone();
    s.sso.webclient = SsoMode::Off;
    s.sso.console = SsoMode::Off;
    app.state.replace_settings(s);
    let landing = b.get("/").await.text().await.unwrap();
    assert!(!landing.contains("Sign in with Microsoft"));
    let login = b.get("/console/login").await.text().await.unwrap();
    assert!(!login.contains("Sign in with Microsoft"));
    assert!(
        login.contains("id=\"password\""),
        "the password login stays"
    );
    for surface in ["webclient", "console"] {
        let res = b.get(&format!("/auth/microsoft?surface={surface}")).await;
        assert_eq!(res.status().as_u16(), 403);
        assert!(text(&res.text().await.unwrap()).contains("not enabled"));
    }
}

async fn open_redirects_land_on_the_home_page(db: FreshDb) {
    let app = start(db).await;
    for evil in [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "%2F%2Fevil.example",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "\\\\evil.example",
    ] {
        let b = SsoBrowser::new(&app);
        let started = b.start("webclient", evil).await;
        app.op.queue(
            app.signer
                .rs256(&valid(&app, USER_OID, started.nonce()), true),
        );
        let res = b.answer(started.state()).await;
        assert_eq!(res.status().as_u16(), 303, "{evil}");
        assert_eq!(location(&res), "/", "{evil}");
    }
}

async fn logout_ends_the_session_on_the_server(db: FreshDb) {
    let app = start(db).await;
    let (b, res) = sign_in_as(&app, "webclient", USER_OID).await;
    let cookie = res
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("pbx365_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = b.get("/").await.text().await.unwrap();
    let csrf = pbx365_testkit::web::hidden(&page, "csrf");
    // Profile change through the same use case as the API.
    let res = b
        .http
        .post(format!("{}/me/profile", app.base))
        .form(&[("csrf", csrf.as_str()), ("profile", "dnd")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let ext = app.store.get_extension(USER_EXT).await.unwrap().unwrap();
    assert_eq!(ext.profile.profile.as_str(), "dnd");
    let res = b
        .http
        .post(format!("{}/logout", app.base))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    assert!(!b.signed_in_to_webclient().await);
    // The old cookie replayed by hand is worthless.
    let replay = reqwest::Client::new()
        .get(format!("{}/", app.base))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!replay.contains("id=\"me-number\""));
}

on_both!(rp_accepts_a_valid_rs256_token => valid_rs256_token_signs_in_to_the_webclient);
on_both!(rp_kid_absent_single_jwks => kid_absent_with_one_key_is_accepted);
on_both!(rp_kid_absent_multiple_jwks => kid_absent_with_several_keys_tries_each);
on_both!(rp_signing_key_rotation => key_rotation_to_a_new_kid_refetches_the_jwks_once);
on_both!(rp_invalid_iss => wrong_iss);
on_both!(rp_missing_sub => missing_sub);
on_both!(rp_invalid_aud => wrong_aud);
on_both!(rp_missing_aud => missing_aud);
on_both!(rp_several_audiences_need_our_azp => several_audiences_need_azp_to_be_us);
on_both!(rp_missing_iat => missing_iat);
on_both!(rp_idtoken_sig_none => alg_none);
on_both!(rp_invalid_sig_rs256 => bad_rs256_signature);
on_both!(rp_invalid_sig_hs256 => hs256_with_the_public_key_as_secret);
on_both!(rp_nonce_invalid => wrong_nonce);
on_both!(rp_expired_token => expired_token);
on_both!(rp_token_from_another_tenant => token_from_another_tenant);
on_both!(rp_replayed_state => replayed_state);
on_both!(rp_missing_state_cookie => missing_state_cookie);
on_both!(sso_unknown_user_is_refused => unknown_user);
on_both!(sso_disabled_extension_is_refused => disabled_extension);
on_both!(sso_user_outside_the_selected_set_is_refused => user_outside_the_selected_set);
on_both!(sso_console_needs_the_admin_role => console_needs_the_admin_role);
on_both!(sso_off_offers_no_microsoft_sign_in => sso_off_offers_no_microsoft_sign_in);
on_both!(sso_open_redirects_land_home => open_redirects_land_on_the_home_page);
on_both!(sso_logout_ends_the_session_on_the_server => logout_ends_the_session_on_the_server);

// --- against m365-sim ---------------------------------------------------------------------

async fn signs_in_through_the_sim_and_survives_its_key_rotation(db: FreshDb) {
    let app = start_with_sim(db).await;
    let b = app.browser();
    let authorize = b.start_url("webclient", "/").await;
    assert!(
        authorize.starts_with(app.sim.authority_url()),
        "{authorize}"
    );
    for p in [
        "code_challenge_method=S256",
        "nonce=",
        "response_mode=query",
        "state=",
    ] {
        assert!(authorize.contains(p), "{p} in {authorize}");
    }
    let back = app.sign_in_at_sim(&authorize, SIM_USER).await;
    assert!(
        back.starts_with(&format!("{}/oauth2office2?", app.base)),
        "{back}"
    );
    let res = b.get_url(&back).await;
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap());
    assert!(b.signed_in_to_webclient().await);

    // The sim rolls its signing key: the next sign-in carries a new kid and is accepted.
    app.sim.control().rotate_keys().await.unwrap();
    let b = app.browser();
    let authorize = b.start_url("console", "/console").await;
    let back = app.sign_in_at_sim(&authorize, SIM_ADMIN).await;
    let res = b.get_url(&back).await;
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap());
    assert_eq!(location(&res), "/console");
    assert_eq!(b.get("/console/extensions").await.status().as_u16(), 200);
}

on_both!(sso_through_the_sim_with_key_rotation => signs_in_through_the_sim_and_survives_its_key_rotation);

/// Web client sign-in for members of `groups` (Microsoft 365 object ids) and `extensions` only.
async fn select(app: &SimSsoApp, groups: &[&str], extensions: &[&str]) {
    app.state
        .app
        .store_settings(&[
            ("sso.webclient".into(), serde_json::json!("selected")),
            ("sso.selected_groups".into(), serde_json::json!(groups)),
            (
                "sso.selected_extensions".into(),
                serde_json::json!(extensions),
            ),
        ])
        .await
        .unwrap();
}

async fn members_of_a_selected_microsoft_365_group_sign_in_also_through_nesting(db: FreshDb) {
    let app = start_with_sim(db).await;
    app.grant(&["Directory.Read.All"]).await;
    // Anna is in "Sales", which is a member of "All staff": nesting counts.
    select(&app, &[SIM_GROUP_STAFF], &[]).await;
    let (b, res) = app.sign_in("webclient", SIM_USER).await;
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap());
    assert!(b.signed_in_to_webclient().await);
    // Boris is only in "Admins": refused with its own page and no session.
    let (b, res) = app.sign_in("webclient", SIM_ADMIN).await;
    assert_eq!(res.status().as_u16(), 403);
    assert!(!sets_session(&res));
    let page = text(&res.text().await.unwrap());
    assert!(page.contains("not enabled for extension 202"), "{page}");
    assert!(!b.signed_in_to_webclient().await);
    // The check was Graph's checkMemberGroups for the signing-in user.
    let stats = app.sim.control().stats().await.unwrap();
    assert_eq!(
        stats.route("POST /v1.0/users/{id}/checkMemberGroups"),
        2,
        "{stats:?}"
    );
    // A selected extension still gets in without being in a group (either set suffices).
    select(&app, &[SIM_GROUP_STAFF], &[ADMIN_EXT]).await;
    let (b, res) = app.sign_in("webclient", SIM_ADMIN).await;
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap());
    assert!(b.signed_in_to_webclient().await);
}

on_both!(sso_microsoft_365_group_members_sign_in => members_of_a_selected_microsoft_365_group_sign_in_also_through_nesting);

async fn a_group_check_without_permission_refuses_the_sign_in(db: FreshDb) {
    let app = start_with_sim(db).await;
    select(&app, &[SIM_GROUP_SALES], &[ADMIN_EXT]).await;
    // The app has no permission to read groups (no consent): refused, no session.
    let (b, res) = app.sign_in("webclient", SIM_USER).await;
    assert_eq!(res.status().as_u16(), 503);
    assert!(!sets_session(&res));
    let page = text(&res.text().await.unwrap());
    assert!(
        page.contains("Group membership could not be checked"),
        "{page}"
    );
    assert!(
        page.contains("admin consent has not been granted"),
        "{page}"
    );
    assert!(page.contains("Nobody was signed in"), "{page}");
    assert!(!b.signed_in_to_webclient().await);
    // A selected extension does not depend on Graph.
    let (b, res) = app.sign_in("webclient", SIM_ADMIN).await;
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap());
    assert!(b.signed_in_to_webclient().await);
}

async fn a_group_check_that_fails_refuses_the_sign_in(db: FreshDb) {
    let app = start_with_sim(db).await;
    app.grant(&["Directory.Read.All"]).await;
    select(&app, &[SIM_GROUP_SALES], &[]).await;
    // Graph failing (503 on every try): refused with its own page, no session.
    app.fail_graph("checkMemberGroups", 503).await;
    let (b, res) = app.sign_in("webclient", SIM_USER).await;
    assert_eq!(res.status().as_u16(), 503);
    assert!(!sets_session(&res));
    let page = text(&res.text().await.unwrap());
    assert!(
        page.contains("Group membership could not be checked"),
        "{page}"
    );
    assert!(!b.signed_in_to_webclient().await);
    // Graph back: the member gets in.
    app.sim.control().clear_faults().await.unwrap();
    let (b, res) = app.sign_in("webclient", SIM_USER).await;
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap());
    assert!(b.signed_in_to_webclient().await);
}

on_both!(sso_group_check_without_permission_refuses => a_group_check_without_permission_refuses_the_sign_in);
on_both!(sso_group_check_failure_refuses => a_group_check_that_fails_refuses_the_sign_in);

// --- against a generic certified provider -------------------------------------------------

/// The same sign-in against `oidc-provider` (npm, OpenID Certified): discovery at the issuer,
/// its own endpoints and key, private_key_jwt with our certificate, PKCE enforced by the
/// provider — pbx365 follows OpenID Connect, not the simulator's habits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_signs_in_against_the_certified_oidc_provider() {
    let Some(app) = start_with_certified_op(pbx365_testkit::db::sqlite().await).await else {
        return;
    };
    let b = app.browser();
    let authorize = b.start_url("webclient", "/").await;
    assert!(authorize.starts_with(&app.op.base), "{authorize}");
    let back = app
        .op
        .sign_in(
            &authorize,
            "interop-user",
            &format!("{}/oauth2office2", app.base),
        )
        .await;
    let res = b.get_url(&back).await;
    let status = res.status().as_u16();
    assert_eq!(status, 303, "{}", res.text().await.unwrap());
    assert!(b.signed_in_to_webclient().await);
}

// --- the web client -------------------------------------------------------------------------

async fn webclient_shows_the_sip_account_and_a_new_secret_once(db: FreshDb) {
    let app = start(db).await;
    // SIP on: a pusher towards a Kamailio that is not there (pushes just fail in the background).
    app.state.app.set_sip_pusher(pbx365_sip::SipPusher::start(
        pbx365_sip::RpcClient::new("http://127.0.0.1:9/RPC"),
        "localhost",
    ));
    let (b, res) = sign_in_as(&app, "webclient", USER_OID).await;
    assert_eq!(res.status().as_u16(), 303);
    let page = b.get("/").await.text().await.unwrap();
    assert!(page.contains("id=\"sip-user\">201<"), "{page}");
    assert!(page.contains("id=\"sip-server\""), "{page}");
    assert!(!page.contains("id=\"sip-secret\""));
    let csrf = pbx365_testkit::web::hidden(&page, "csrf");
    // Without the form's token nothing happens.
    let res = press_new_sip_secret(&app, &b, "forged").await;
    assert_eq!(res.status().as_u16(), 403);
    // Just signed in, so no second sign-in is asked for: the secret is shown once.
    let res = press_new_sip_secret(&app, &b, &csrf).await;
    assert_eq!(res.status().as_u16(), 200);
    let shown = res.text().await.unwrap();
    assert!(shown.contains("id=\"sip-secret\""), "{shown}");
    let again = b.get("/").await.text().await.unwrap();
    assert!(!again.contains("id=\"sip-secret\""), "shown only once");
}

on_both!(webclient_sip_secret_shown_once => webclient_shows_the_sip_account_and_a_new_secret_once);

async fn sessions_time_out_and_a_new_secret_needs_a_recent_sign_in(db: FreshDb) {
    let app = start(db).await;
    app.state.app.set_sip_pusher(pbx365_sip::SipPusher::start(
        pbx365_sip::RpcClient::new("http://127.0.0.1:9/RPC"),
        "localhost",
    ));
    let (b, _) = sign_in_as(&app, "webclient", USER_OID).await;
    // Six minutes later the page still works, but a new SIP secret asks for a fresh sign-in.
    app.clock.advance(chrono::Duration::minutes(6));
    let page = b.get("/").await.text().await.unwrap();
    let csrf = pbx365_testkit::web::hidden(&page, "csrf");
    let res = press_new_sip_secret(&app, &b, &csrf).await;
    assert_eq!(res.status().as_u16(), 303);
    let fresh = location(&res);
    assert!(
        fresh.starts_with("/auth/microsoft?surface=webclient"),
        "{fresh}"
    );
    let res = b.get(&fresh).await;
    assert!(
        location(&res).contains("prompt=login"),
        "Microsoft asks for the password again"
    );
    // Back from Microsoft, the page says to press the button again, and then it goes ahead.
    let res = app
        .answer_as(&b, &Started::from_redirect(&res), USER_OID)
        .await;
    assert_eq!(location(&res), "/");
    let page = b.get("/").await.text().await.unwrap();
    assert!(page.contains("Signed in again with Microsoft"), "{page}");
    let csrf = pbx365_testkit::web::hidden(&page, "csrf");
    let res = press_new_sip_secret(&app, &b, &csrf).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.text().await.unwrap().contains("id=\"sip-secret\""));
    // 31 minutes idle: the session is gone.
    app.clock.advance(chrono::Duration::minutes(31));
    assert!(!b.signed_in_to_webclient().await);
}

on_both!(webclient_session_timeouts_and_reauthentication => sessions_time_out_and_a_new_secret_needs_a_recent_sign_in);

// --- the settings page -----------------------------------------------------------------------

async fn admin_sets_sso_for_selected_extensions_and_groups(db: FreshDb) {
    let app = start(db).await;
    let b = SsoBrowser::password_admin(&app, "").await;
    const SSO: &str = "/console/settings/integrations/microsoft365/sso";
    const GROUP: &str = "cccccccc-0000-4000-8000-000000000001";
    let page = b.get(SSO).await.text().await.unwrap();
    for pick in ["value=\"201\"", "value=\"202\"", "Anna Berg 201"] {
        assert!(page.contains(pick), "{pick} in the picker: {page}");
    }
    let csrf = pbx365_testkit::web::hidden(&page, "csrf");
    let res = b
        .http
        .post(format!("{}{SSO}", app.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("console", "off"),
            ("webclient", "selected"),
            ("extension", "201"),
            ("extension", "202"),
            ("m365_group", GROUP),
            (&format!("m365_group_name:{GROUP}"), "Phone users"),
            ("extension_group", "Sales"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let s = app.state.settings();
    assert_eq!(s.sso.console, SsoMode::Off);
    assert_eq!(s.sso.webclient, SsoMode::Selected);
    assert_eq!(s.sso.selected_extensions, vec!["201", "202"]);
    assert_eq!(s.sso.selected_groups, vec![GROUP]);
    assert_eq!(s.sso.selected_group_names[GROUP], "Phone users");
    assert_eq!(s.sso.selected_extension_groups, vec!["Sales"]);
    let raw = b.get(SSO).await.text().await.unwrap();
    let page = text(&raw);
    assert!(page.contains("were saved"), "{page}");
    // The chosen Microsoft 365 group is shown by name, checked, with the group picker.
    assert!(page.contains("Phone users"), "{page}");
    assert!(raw.contains(&format!("value=\"{GROUP}\" checked")), "{raw}");
    assert!(raw.contains("data-kind=\"groups\""), "{raw}");
    // Something that is not a group object id is refused with a sentence; nothing changes.
    let res = b
        .http
        .post(format!("{}{SSO}", app.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("console", "all"),
            ("webclient", "selected"),
            ("m365_group", "Sales"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 422);
    let page = text(&res.text().await.unwrap());
    assert!(
        page.contains("'Sales' is not a Microsoft 365 group object id"),
        "{page}"
    );
    assert_eq!(app.state.settings().sso.console, SsoMode::Off);
    // A forged form changes nothing.
    let res = b
        .http
        .post(format!("{}{SSO}", app.base))
        .form(&[("csrf", "forged"), ("console", "all")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(app.state.settings().sso.console, SsoMode::Off);
    // Console sign-in page: the password form only; the web client still offers Microsoft.
    let b2 = SsoBrowser::new(&app);
    let login = b2.get("/console/login").await.text().await.unwrap();
    assert!(!login.contains("Sign in with Microsoft"));
    assert!(b2
        .get("/")
        .await
        .text()
        .await
        .unwrap()
        .contains("Sign in with Microsoft"));
}

on_both!(sso_settings_page => admin_sets_sso_for_selected_extensions_and_groups);

async fn sensitive_console_actions_need_a_recent_microsoft_sign_in(db: FreshDb) {
    const CONFIGURE: &str = "/console/settings/integrations/microsoft365/configure";
    let app = start(db).await;
    let (b, res) = sign_in_as(&app, "console", ADMIN_OID).await;
    assert_eq!(res.status().as_u16(), 303);
    app.clock.advance(chrono::Duration::minutes(6));
    let page = b.get(CONFIGURE).await.text().await.unwrap();
    let csrf = pbx365_testkit::web::hidden(&page, "csrf");
    let before = pbx365_app::m365::certificate_for_upload(app.state.data_dir()).unwrap();
    let mut fresh = String::new();
    for action in ["keygen", "signin"] {
        let res = b
            .http
            .post(format!(
                "{}/console/settings/integrations/microsoft365/{action}",
                app.base
            ))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 303, "{action}");
        let to = location(&res);
        assert!(
            to.starts_with("/auth/microsoft?surface=console") && to.ends_with("&fresh=1"),
            "{action}: {to}"
        );
        fresh = to;
    }
    assert_eq!(
        pbx365_app::m365::certificate_for_upload(app.state.data_dir()).unwrap(),
        before,
        "no new key pair without the fresh sign-in"
    );
    // The fresh sign-in returns to the page with a notice to press the button again.
    let res = b.get(&fresh).await;
    let again = Started::from_redirect(&res);
    assert_eq!(again.params["prompt"], "login");
    let res = app.answer_as(&b, &again, ADMIN_OID).await;
    assert_eq!(location(&res), CONFIGURE);
    let page = b.get(CONFIGURE).await.text().await.unwrap();
    assert!(page.contains("Signed in again with Microsoft"), "{page}");
    // Said once.
    assert!(!b
        .get(CONFIGURE)
        .await
        .text()
        .await
        .unwrap()
        .contains("Signed in again"));
}

on_both!(sso_console_reauthentication => sensitive_console_actions_need_a_recent_microsoft_sign_in);
