//! Identity platform: token endpoint, authorize/sign-in, admin consent, discovery, JWKS.

use m365_sim::identity::apps::NewApp;
use serde_json::Value;

use crate::*;

fn app_with_cert(cert: &TestCert, consented: bool) -> NewApp {
    NewApp {
        display_name: "pbx365".into(),
        certificate_pem: Some(cert.cert_pem.clone()),
        permissions: vec!["User.Read.All".into(), "Contacts.Read".into()],
        consented,
        ..Default::default()
    }
}

fn assert_aad_error(status: u16, body: &Value, want_status: u16, error: &str, code: u64) {
    assert_eq!(status, want_status, "body: {body}");
    assert_eq!(body["error"], error, "body: {body}");
    assert_eq!(body["error_codes"][0], code, "body: {body}");
    let desc = body["error_description"].as_str().unwrap();
    assert!(desc.starts_with(&format!("AADSTS{code}: ")), "{desc}");
    assert!(desc.contains("\r\nTrace ID: "), "{desc}");
    assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());
    assert_eq!(
        body["error_uri"],
        format!("https://login.microsoftonline.com/error?code={code}")
    );
}

#[tokio::test]
async fn ps256_certificate_assertion_gets_an_app_token_with_consented_roles() {
    let sim = start_sim().await;
    let cert = TestCert::valid();
    let client_id = register_app(&sim, app_with_cert(&cert, true)).await;
    let assertion = cert.assertion(&client_id, &token_url(&sim), true);
    let (status, body) = token_with_assertion(&sim, &client_id, &assertion).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert!(body["ext_expires_in"].is_number());
    assert!(body.get("refresh_token").is_none());
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "https://graph.microsoft.com");
    assert_eq!(
        claims["iss"],
        format!("https://sts.windows.net/{}/", sim.tenant_id)
    );
    assert_eq!(claims["tid"], sim.tenant_id);
    assert_eq!(claims["appid"], client_id);
    assert_eq!(claims["appidacr"], "2");
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(
        claims["roles"],
        serde_json::json!(["User.Read.All", "Contacts.Read"])
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn rs256_assertion_with_sha1_thumbprint_is_accepted_at_the_domain_audience() {
    let sim = start_sim().await;
    let cert = TestCert::valid();
    let client_id = register_app(&sim, app_with_cert(&cert, true)).await;
    // The audience may name the tenant by domain as well as by GUID.
    let aud = format!("{}/{}/oauth2/v2.0/token", sim.base_url, sim.domain);
    let assertion = cert.assertion(&client_id, &aud, false);
    let (status, body) = token_with_assertion(&sim, &client_id, &assertion).await;
    assert_eq!(status, 200, "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn assertion_signed_with_the_wrong_key_is_invalid_client_700027() {
    let sim = start_sim().await;
    let registered = TestCert::valid();
    let client_id = register_app(&sim, app_with_cert(&registered, true)).await;
    // A key that is not registered at all: "key not found".
    let other = TestCert::valid();
    let (status, body) = cert_token(&sim, &client_id, &other, true).await;
    assert_aad_error(status, &body, 401, "invalid_client", 700027);
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("The key was not found"));
    // The registered thumbprint in the header, but signed by another key: bad signature.
    let forged = TestCert {
        cert_pem: registered.cert_pem.clone(),
        key_pem: other.key_pem.clone(),
        der: registered.der.clone(),
    };
    let (status, body) = cert_token(&sim, &client_id, &forged, true).await;
    assert_aad_error(status, &body, 401, "invalid_client", 700027);
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("invalid signature"));
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_app_is_unauthorized_client_700016() {
    let sim = start_sim().await;
    let cert = TestCert::valid();
    let client_id = uuid::Uuid::new_v4().to_string();
    let (status, body) = cert_token(&sim, &client_id, &cert, true).await;
    assert_aad_error(status, &body, 400, "unauthorized_client", 700016);
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_certificate_is_refused_because_the_key_used_is_expired() {
    let sim = start_sim().await;
    let cert = TestCert::expired();
    let client_id = register_app(&sim, app_with_cert(&cert, true)).await;
    let (status, body) = cert_token(&sim, &client_id, &cert, true).await;
    assert_aad_error(status, &body, 401, "invalid_client", 700027);
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("[Reason - The key used is expired."));
    sim.shutdown().await;
}

#[tokio::test]
async fn certificate_uploaded_later_is_accepted() {
    let sim = start_sim().await;
    let client_id = register_app(
        &sim,
        NewApp {
            display_name: "later".into(),
            ..Default::default()
        },
    )
    .await;
    let cert = TestCert::valid();
    sim.control()
        .add_certificate(&client_id, &cert.cert_pem)
        .await
        .unwrap();
    let (status, body) = cert_token(&sim, &client_id, &cert, false).await;
    assert_eq!(status, 200, "{body}");
    sim.shutdown().await;
}

#[tokio::test]
async fn assertion_claims_are_checked_audience_issuer_and_lifetime() {
    let sim = start_sim().await;
    let cert = TestCert::valid();
    let client_id = register_app(&sim, app_with_cert(&cert, true)).await;
    let now = chrono::Utc::now().timestamp();
    let claims = |aud: &str, iss: &str, nbf: i64, exp: i64| {
        serde_json::json!({"aud": aud, "iss": iss, "sub": iss, "jti": uuid::Uuid::new_v4().to_string(),
                           "nbf": nbf, "iat": nbf, "exp": exp})
    };
    let url = token_url(&sim);
    let wrong_aud = cert.assertion_with(
        true,
        claims(
            "https://login.microsoftonline.com/x/oauth2/v2.0/token",
            &client_id,
            now,
            now + 600,
        ),
    );
    let (s, b) = token_with_assertion(&sim, &client_id, &wrong_aud).await;
    assert_aad_error(s, &b, 401, "invalid_client", 700023);
    let other_id = uuid::Uuid::new_v4().to_string();
    let wrong_iss = cert.assertion_with(true, claims(&url, &other_id, now, now + 600));
    let (s, b) = token_with_assertion(&sim, &client_id, &wrong_iss).await;
    assert_aad_error(s, &b, 401, "invalid_client", 700021);
    let expired = cert.assertion_with(true, claims(&url, &client_id, now - 7200, now - 3600));
    let (s, b) = token_with_assertion(&sim, &client_id, &expired).await;
    assert_aad_error(s, &b, 401, "invalid_client", 700024);
    sim.shutdown().await;
}

#[tokio::test]
async fn replayed_assertion_jti_is_refused() {
    let sim = start_sim().await;
    let cert = TestCert::valid();
    let client_id = register_app(&sim, app_with_cert(&cert, true)).await;
    let assertion = cert.assertion(&client_id, &token_url(&sim), true);
    let (first, _) = token_with_assertion(&sim, &client_id, &assertion).await;
    assert_eq!(first, 200);
    let (status, body) = token_with_assertion(&sim, &client_id, &assertion).await;
    assert_aad_error(status, &body, 401, "invalid_client", 700027);
    assert!(body["error_description"].as_str().unwrap().contains("jti"));
    sim.shutdown().await;
}

#[tokio::test]
async fn client_secret_works_in_the_form_and_with_http_basic() {
    let sim = start_sim().await;
    let client_id = register_app(
        &sim,
        NewApp {
            display_name: "secret app".into(),
            client_secret: Some("s3cr3t~value".into()),
            permissions: vec!["User.Read.All".into()],
            consented: true,
            ..Default::default()
        },
    )
    .await;
    let form = [
        ("client_id", client_id.as_str()),
        ("client_secret", "s3cr3t~value"),
        ("scope", "https://graph.microsoft.com/.default"),
        ("grant_type", "client_credentials"),
    ];
    let (status, body) = post_token(&sim, &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        jwt_claims(body["access_token"].as_str().unwrap())["appidacr"],
        "1"
    );

    let resp = sim
        .http_client()
        .post(token_url(&sim))
        .basic_auth(&client_id, Some("s3cr3t~value"))
        .form(&[
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let (status, body) = post_token(
        &sim,
        &[
            ("client_id", client_id.as_str()),
            ("client_secret", "wrong"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_aad_error(status, &body, 401, "invalid_client", 7000215);
    assert!(
        !body.to_string().contains("s3cr3t"),
        "the secret is never echoed"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_scope_and_common_tenant_are_refused() {
    let sim = start_sim().await;
    let client_id = register_app(
        &sim,
        NewApp {
            client_secret: Some("pw".into()),
            ..Default::default()
        },
    )
    .await;
    let (status, body) = post_token(
        &sim,
        &[
            ("client_id", client_id.as_str()),
            ("client_secret", "pw"),
            ("scope", "User.Read.All"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_aad_error(status, &body, 400, "invalid_scope", 70011);

    let resp = sim
        .http_client()
        .post(format!("{}/common/oauth2/v2.0/token", sim.base_url))
        .form(&[
            ("client_id", client_id.as_str()),
            ("client_secret", "pw"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    assert_aad_error(status, &body, 400, "invalid_request", 50059);
    sim.shutdown().await;
}

#[tokio::test]
async fn app_without_consent_gets_a_token_without_roles_and_graph_denies_it() {
    let sim = start_sim().await;
    let cert = TestCert::valid();
    let client_id = register_app(&sim, app_with_cert(&cert, false)).await;
    let (status, body) = cert_token(&sim, &client_id, &cert, true).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    assert!(jwt_claims(&token).get("roles").is_none());

    let resp = sim
        .http_client()
        .get(format!("{}/v1.0/users", sim.graph_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().contains_key("request-id"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AccessDenied");
    assert_eq!(
        body["error"]["message"],
        "Either scp or roles claim need to be present in the token."
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn graph_refuses_missing_forged_and_expired_tokens_with_401() {
    let sim = start_sim_with(m365_sim::SimConfig {
        seed: Some(test_seed()),
        token_lifetime_secs: 1,
        ..Default::default()
    })
    .await;
    let http = sim.http_client();
    let users = format!("{}/v1.0/users", sim.graph_url());
    let resp = http.get(&users).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(body["error"]["innerError"]["request-id"].is_string());

    // Signed by a key the sim never published.
    let forged = TestCert::valid().assertion_with(
        false,
        serde_json::json!({"aud": "https://graph.microsoft.com", "iss": "x", "exp": 9999999999i64}),
    );
    let resp = http.get(&users).bearer_auth(forged).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    let token = crate::graph::graph_token(&sim, &["User.Read.All"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let resp = http.get(&users).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Access token has expired or is not yet valid."
    );
    sim.shutdown().await;
}

/// Registers a web app with a secret and the redirect URI used by the sign-in tests.
async fn web_app(sim: &m365_sim::SimHandle) -> String {
    register_app(
        sim,
        NewApp {
            display_name: "pbx365 console".into(),
            redirect_uris: vec!["https://pbx.example/auth/callback".into()],
            client_secret: Some("web-secret".into()),
            ..Default::default()
        },
    )
    .await
}

fn no_redirect_client(sim: &m365_sim::SimHandle) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(
            reqwest::Certificate::from_pem(sim.ca_pem.as_ref().unwrap().as_bytes()).unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn pkce() -> (String, String) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use sha2::Digest;
    let verifier = format!(
        "v{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_url(sim: &m365_sim::SimHandle, client_id: &str, challenge: &str) -> String {
    authorize_url_for(sim, client_id, challenge, "openid profile email")
}

fn authorize_url_for(
    sim: &m365_sim::SimHandle,
    client_id: &str,
    challenge: &str,
    scope: &str,
) -> String {
    let q = serde_urlencoded::to_string([
        ("client_id", client_id),
        ("response_type", "code"),
        ("redirect_uri", "https://pbx.example/auth/callback"),
        ("scope", scope),
        ("response_mode", "query"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    format!(
        "{}/{}/oauth2/v2.0/authorize?{q}",
        sim.authority_url(),
        sim.tenant_id
    )
}

fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

async fn redeem(
    sim: &m365_sim::SimHandle,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> (u16, Value) {
    post_token(
        sim,
        &[
            ("client_id", client_id),
            ("client_secret", "web-secret"),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "https://pbx.example/auth/callback"),
            ("code_verifier", verifier),
            ("scope", "openid profile email"),
        ],
    )
    .await
}

#[tokio::test]
async fn sim_signin_completes_authorize_and_the_id_token_verifies_against_the_jwks() {
    let sim = start_sim().await;
    let client_id = web_app(&sim).await;
    sim.control().signin("ann@contoso.example").await.unwrap();
    let (verifier, challenge) = pkce();
    let http = no_redirect_client(&sim);
    let resp = http
        .get(authorize_url(&sim, &client_id, &challenge))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302, "authorize redirects back to the app");
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("https://pbx.example/auth/callback?"));
    let q = query_of(&location);
    assert_eq!(q["state"], "st-123");
    let (status, body) = redeem(&sim, &client_id, &q["code"], &verifier).await;
    assert_eq!(status, 200, "{body}");
    let id_token = body["id_token"].as_str().unwrap();

    // Verify like a relying party: discovery -> jwks_uri -> key by kid.
    let config: Value = http
        .get(format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            sim.authority_url(),
            sim.tenant_id
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issuer = format!("{}/{}/v2.0", sim.base_url, sim.tenant_id);
    assert_eq!(config["issuer"], issuer);
    let jwks: Value = http
        .get(config["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jwks["keys"].as_array().unwrap().len() >= 2,
        "more than one key published"
    );
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let kid = header.kid.unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("signing key is published");
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().unwrap(),
        jwk["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[&client_id]);
    validation.set_issuer(&[&issuer]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .expect("ID token verifies")
        .claims;
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["tid"], sim.tenant_id);
    assert_eq!(claims["oid"], "11111111-1111-1111-1111-111111111111");
    assert_eq!(claims["preferred_username"], "ann@contoso.example");
    assert_eq!(claims["email"], "ann@contoso.example");
    assert_eq!(claims["name"], "Ann Archer");
    assert_eq!(claims["ver"], "2.0");
    for c in ["iat", "nbf", "exp", "sub"] {
        assert!(!claims[c].is_null(), "{c} present");
    }
    assert_ne!(claims["sub"], claims["oid"], "sub is pairwise");

    // Codes are single use.
    let (status, body) = redeem(&sim, &client_id, &q["code"], &verifier).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    sim.shutdown().await;
}

#[tokio::test]
async fn sign_in_page_accepts_the_users_password_and_refuses_a_wrong_one() {
    let sim = start_sim().await;
    let client_id = web_app(&sim).await;
    let (verifier, challenge) = pkce();
    let http = no_redirect_client(&sim);
    let url = authorize_url(&sim, &client_id, &challenge);
    let page = http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"login\"") && html.contains("name=\"passwd\""));

    // The form posts back every authorize parameter plus the credentials.
    let mut form: Vec<(String, String)> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    form.push(("login".into(), "ann@contoso.example".into()));
    form.push(("passwd".into(), "nope".into()));
    let post_url = format!(
        "{}/{}/oauth2/v2.0/authorize",
        sim.authority_url(),
        sim.tenant_id
    );
    let resp = http.post(&post_url).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("Your account or password is incorrect"));

    form.pop();
    form.push(("passwd".into(), PASSWORD.into()));
    let resp = http.post(&post_url).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert!(resp.headers().contains_key("set-cookie"));
    let q = query_of(resp.headers()["location"].to_str().unwrap());
    // A wrong PKCE verifier is refused, the right one accepted.
    let (status, body) = redeem(
        &sim,
        &client_id,
        &q["code"],
        "wrong-verifier-wrong-verifier-wrong-verifier",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let _ = verifier;

    // A disabled account cannot sign in.
    let mut form2: Vec<(String, String)> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    form2.push(("login".into(), "bob@contoso.example".into()));
    form2.push(("passwd".into(), PASSWORD.into()));
    let resp = http.post(&post_url).form(&form2).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn unregistered_redirect_uri_is_shown_as_an_error_not_redirected() {
    let sim = start_sim().await;
    let client_id = web_app(&sim).await;
    let http = no_redirect_client(&sim);
    let url = format!(
        "{}/{}/oauth2/v2.0/authorize?client_id={client_id}&response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&scope=openid",
        sim.authority_url(),
        sim.tenant_id
    );
    let resp = http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("AADSTS50011"));
    sim.shutdown().await;
}

#[tokio::test]
async fn key_rotation_signs_with_a_new_key_and_keeps_the_old_one_published() {
    let sim = start_sim().await;
    let http = sim.http_client();
    let jwks_url = format!(
        "{}/{}/discovery/v2.0/keys",
        sim.authority_url(),
        sim.tenant_id
    );
    let kids = |v: Value| -> Vec<String> {
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    };
    let before = kids(
        http.get(&jwks_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(before.len(), 2);

    let control = sim.control();
    let app = control
        .app_token(&sim.tenant_id, &["User.Read.All"])
        .await
        .unwrap();
    let old_token = app.access_token.clone();

    let new_kid = sim.control().rotate_keys().await.unwrap();
    let after = kids(
        http.get(&jwks_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    assert!(after.contains(&new_kid));
    for k in &before {
        assert!(after.contains(k), "old key {k} still published");
    }
    let new = control
        .client_credentials_token(&sim.tenant_id, &app.client_id, &app.client_secret)
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(&new).unwrap();
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    // Tokens signed before the roll keep working during the grace period.
    let resp = http
        .get(format!("{}/v1.0/users", sim.graph_url()))
        .bearer_auth(&old_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn admin_consent_page_grants_the_permissions_and_redirects_with_admin_consent_true() {
    let sim = start_sim().await;
    let client_id = register_app(
        &sim,
        NewApp {
            display_name: "pbx365".into(),
            redirect_uris: vec!["https://pbx.example/admin/consent".into()],
            client_secret: Some("pw".into()),
            permissions: vec!["User.Read.All".into(), "Calendars.Read".into()],
            consented: false,
            ..Default::default()
        },
    )
    .await;
    let http = no_redirect_client(&sim);
    let url = format!(
        "{}/{}/adminconsent?client_id={client_id}&redirect_uri=https%3A%2F%2Fpbx.example%2Fadmin%2Fconsent&state=abc",
        sim.authority_url(),
        sim.domain
    );
    sim.control().signin("ann@contoso.example").await.unwrap();
    let page = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("User.Read.All") && page.contains("Calendars.Read"));
    assert!(page.contains("id=\"accept\"") && page.contains("id=\"cancel\""));

    let mut form: Vec<(String, String)> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    form.push(("action".into(), "accept".into()));
    let post_url = url.split('?').next().unwrap().to_string();
    let resp = http.post(&post_url).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let q = query_of(resp.headers()["location"].to_str().unwrap());
    assert_eq!(q["admin_consent"], "True");
    assert_eq!(q["tenant"], sim.tenant_id);
    assert_eq!(q["state"], "abc");

    let token = sim
        .control()
        .client_credentials_token(&sim.tenant_id, &client_id, "pw")
        .await
        .unwrap();
    let claims = jwt_claims(&token);
    assert_eq!(
        claims["roles"],
        serde_json::json!(["User.Read.All", "Calendars.Read"])
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn cancelled_v2_admin_consent_redirects_with_consent_required() {
    let sim = start_sim().await;
    let client_id = register_app(
        &sim,
        NewApp {
            redirect_uris: vec!["https://pbx.example/admin/consent".into()],
            permissions: vec!["User.Read.All".into()],
            ..Default::default()
        },
    )
    .await;
    let http = no_redirect_client(&sim);
    let post_url = format!(
        "{}/{}/v2.0/adminconsent",
        sim.authority_url(),
        sim.tenant_id
    );
    let resp = http
        .post(&post_url)
        .form(&[
            ("client_id", client_id.as_str()),
            ("redirect_uri", "https://pbx.example/admin/consent"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("state", "xyz"),
            ("action", "cancel"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let q = query_of(resp.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "consent_required");
    assert!(q["error_description"].starts_with("AADSTS65004"));
    assert_eq!(q["state"], "xyz");
    let consented = sim.state.apps.lock().unwrap()[&client_id].consented;
    assert!(!consented, "cancel grants nothing");
    sim.shutdown().await;
}

/// https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow ("Request an
/// access token with a client_secret" with `offline_access`, then "Refresh the access token"),
/// and https://learn.microsoft.com/graph/api/user-get ("Get the signed-in user").
#[tokio::test]
async fn delegated_tokens_reach_me_and_refresh_tokens_renew_them() {
    let sim = start_sim().await;
    let client_id = web_app(&sim).await;
    sim.control().signin("ann@contoso.example").await.unwrap();
    let (verifier, challenge) = pkce();
    let http = no_redirect_client(&sim);
    let scope = "openid profile offline_access https://graph.microsoft.com/User.Read";
    let resp = http
        .get(authorize_url_for(&sim, &client_id, &challenge, scope))
        .send()
        .await
        .unwrap();
    let q = query_of(resp.headers()["location"].to_str().unwrap());
    let (status, body) = redeem(&sim, &client_id, &q["code"], &verifier).await;
    assert_eq!(status, 200, "{body}");
    let refresh = body["refresh_token"]
        .as_str()
        .expect("offline_access gives a refresh token");
    let me = |token: String| {
        let http = sim.http_client();
        let url = format!("{}/v1.0/me", sim.graph_url());
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };
    let resp = me(body["access_token"].as_str().unwrap().to_string()).await;
    assert_eq!(resp.status(), 200);
    let user: Value = resp.json().await.unwrap();
    assert_eq!(user["id"], "11111111-1111-1111-1111-111111111111");
    assert_eq!(user["userPrincipalName"], "ann@contoso.example");
    assert!(user["@odata.context"]
        .as_str()
        .unwrap()
        .ends_with("$metadata#users/$entity"));

    let (status, renewed) = post_token(
        &sim,
        &[
            ("client_id", client_id.as_str()),
            ("client_secret", "web-secret"),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            (
                "scope",
                "https://graph.microsoft.com/User.Read offline_access",
            ),
        ],
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["token_type"], "Bearer");
    assert!(renewed["refresh_token"].is_string());
    let claims = jwt_claims(renewed["access_token"].as_str().unwrap());
    assert_eq!(claims["oid"], "11111111-1111-1111-1111-111111111111");
    assert!(claims["scp"].as_str().unwrap().contains("User.Read"));
    let resp = me(renewed["access_token"].as_str().unwrap().to_string()).await;
    assert_eq!(resp.status(), 200);

    // A refresh token belongs to the client it was issued to; garbage is invalid_grant.
    let other = crate::graph::graph_token(&sim, &["User.Read.All"]).await;
    let (status, body) = post_token(
        &sim,
        &[
            ("client_id", client_id.as_str()),
            ("client_secret", "web-secret"),
            ("grant_type", "refresh_token"),
            ("refresh_token", "not-a-refresh-token"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    // App-only tokens have no /me.
    let resp = me(other).await;
    assert_eq!(resp.status(), 400);
    sim.shutdown().await;
}
