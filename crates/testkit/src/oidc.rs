//! A fake OpenID provider we control (security checklist R2.1): it publishes discovery and a
//! JWKS in the Microsoft layout (`{base}/{tenant}/v2.0/...`) and its token endpoint answers with
//! whatever ID token the test queued, so every relying-party conformance case can hand pbx365
//! a forged token. [`Signer`] makes the tokens: valid RS256, unsigned, HS256 with the public
//! key as secret, broken signatures, other keys.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use m365_sim::identity::keys::SigningKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The tenant the fake provider serves and pbx365 is connected to.
pub const TENANT: &str = "7a0c1b2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
/// Another tenant, for "token from another tenant".
pub const OTHER_TENANT: &str = "11111111-2222-4333-8444-555555555555";
/// The application (client) id pbx365 uses.
pub const CLIENT_ID: &str = "0d9c8b7a-6f5e-4d3c-9b2a-1f0e9d8c7b6a";

#[derive(Default)]
struct OpState {
    keys: Vec<serde_json::Value>,
    next_token: Option<String>,
    token_forms: Vec<HashMap<String, String>>,
    jwks_fetches: u64,
}

/// A running fake provider.
pub struct FakeOp {
    /// `http://127.0.0.1:PORT` (pbx365's `m365.authority_url`).
    pub base: String,
    state: Arc<Mutex<OpState>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Makes ID tokens with one RSA key (and, on demand, others).
pub struct Signer {
    /// The key.
    pub key: SigningKey,
}

impl Default for Signer {
    fn default() -> Self {
        Signer::new()
    }
}

impl Signer {
    /// A fresh RSA-2048 key.
    pub fn new() -> Signer {
        Signer {
            key: SigningKey::generate().expect("test key"),
        }
    }

    /// The JWKS entry of the key (with its `kid`).
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({"kty": "RSA", "use": "sig", "kid": self.key.kid, "n": self.key.n, "e": self.key.e})
    }

    /// RS256 with the key; `kid` in the header when `with_kid`.
    pub fn rs256(&self, claims: &serde_json::Value, with_kid: bool) -> String {
        let mut h = Header::new(Algorithm::RS256);
        if with_kid {
            h.kid = Some(self.key.kid.clone());
        }
        jsonwebtoken::encode(&h, claims, &self.key.encoding).expect("sign")
    }

    /// An unsigned token (`alg: none`).
    pub fn unsigned(&self, claims: &serde_json::Value) -> String {
        let h = serde_json::json!({"alg": "none", "typ": "JWT", "kid": self.key.kid});
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(h.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    /// HS256 with the public key's JWK text as the shared secret (algorithm confusion).
    pub fn hs256_with_public_key(&self, claims: &serde_json::Value) -> String {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(self.key.kid.clone());
        let secret = self.jwk().to_string();
        jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(secret.as_bytes()))
            .expect("sign")
    }

    /// A valid RS256 token whose signature was then altered.
    pub fn bad_signature(&self, claims: &serde_json::Value) -> String {
        let t = self.rs256(claims, true);
        let (head, sig) = t.rsplit_once('.').unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
        raw[10] ^= 0x55;
        format!("{head}.{}", URL_SAFE_NO_PAD.encode(raw))
    }
}

/// Claims of a valid ID token of `tenant` for `oid`, addressed to [`CLIENT_ID`].
pub fn claims(base: &str, tenant: &str, oid: &str, nonce: &str) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    serde_json::json!({
        "aud": CLIENT_ID,
        "iss": format!("{base}/{tenant}/v2.0"),
        "iat": now, "nbf": now, "exp": now + 3600,
        "tid": tenant, "oid": oid, "sub": format!("pairwise-{oid}"),
        "name": "Test User", "nonce": nonce, "ver": "2.0",
    })
}

async fn discovery(
    State((base, _)): State<(String, Arc<Mutex<OpState>>)>,
    Path(tenant): Path<String>,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "issuer": format!("{base}/{tenant}/v2.0"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
        "response_types_supported": ["code"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn jwks(State((_, st)): State<(String, Arc<Mutex<OpState>>)>) -> Json<serde_json::Value> {
    let mut s = st.lock().unwrap();
    s.jwks_fetches += 1;
    Json(serde_json::json!({"keys": s.keys}))
}

async fn token(
    State((_, st)): State<(String, Arc<Mutex<OpState>>)>,
    Form(form): Form<HashMap<String, String>>,
) -> (axum::http::StatusCode, Json<serde_json::Value>) {
    let mut s = st.lock().unwrap();
    s.token_forms.push(form);
    match s.next_token.take() {
        Some(t) => (
            axum::http::StatusCode::OK,
            Json(
                serde_json::json!({"token_type": "Bearer", "access_token": "opaque", "expires_in": 3600, "id_token": t}),
            ),
        ),
        None => (
            axum::http::StatusCode::BAD_REQUEST,
            Json(
                serde_json::json!({"error": "invalid_grant", "error_description": "no token queued"}),
            ),
        ),
    }
}

impl FakeOp {
    /// Starts the provider on `127.0.0.1:0` publishing `keys`.
    pub async fn start(keys: Vec<serde_json::Value>) -> FakeOp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(OpState {
            keys,
            ..OpState::default()
        }));
        let app = Router::new()
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(discovery),
            )
            .route("/{tenant}/discovery/v2.0/keys", get(jwks))
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .with_state((base.clone(), state.clone()));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeOp {
            base,
            state,
            server,
        }
    }

    /// The next code redemption answers with `id_token`.
    pub fn queue(&self, id_token: String) {
        self.state.lock().unwrap().next_token = Some(id_token);
    }

    /// Publishes `keys` from now on.
    pub fn publish(&self, keys: Vec<serde_json::Value>) {
        self.state.lock().unwrap().keys = keys;
    }

    /// How often the JWKS was read.
    pub fn jwks_fetches(&self) -> u64 {
        self.state.lock().unwrap().jwks_fetches
    }

    /// The forms posted to the token endpoint.
    pub fn token_forms(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().unwrap().token_forms.clone()
    }
}

/// The certified `oidc-provider` (npm) as a child process: started on a free port with our
/// client registered, stopped with the value.
pub struct CertifiedOp {
    /// `http://127.0.0.1:PORT` (pbx365's `m365.authority_url`; the issuer is
    /// `{base}/{TENANT}/v2.0`).
    pub base: String,
    _child: tokio::process::Child,
}

/// Where `scripts/test` installed `oidc-provider` (with `op.mjs`), or `None` (test skipped;
/// CI must have it).
pub fn certified_op_dir() -> Option<std::path::PathBuf> {
    match std::env::var_os("OIDC_PROVIDER_DIR") {
        Some(d) if std::path::Path::new(&d).join("op.mjs").exists() => Some(d.into()),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the oidc-provider interoperability test: run scripts/test (it installs oidc-provider with npm)"
            );
            eprintln!(
                "skipping: OIDC_PROVIDER_DIR is not set (scripts/test installs oidc-provider)"
            );
            None
        }
    }
}

/// The public JWK (RSA n/e) of a PEM certificate (pbx365's `public_key.pem`).
pub fn certificate_jwk(cert_pem: &str) -> serde_json::Value {
    use base64::engine::general_purpose::STANDARD;
    let b64: String = cert_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = STANDARD.decode(b64).expect("certificate PEM");
    let (n, e) = m365_sim::identity::keys::rsa_components(&der).expect("an RSA certificate");
    serde_json::json!({"kty": "RSA", "use": "sig", "alg": "PS256", "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)})
}

impl CertifiedOp {
    /// Starts `op.mjs` from `dir` for [`TENANT`]: client [`CLIENT_ID`] with `client_jwk`,
    /// `redirect_uri`, one account whose `oid` is `oid`; waits for its READY line.
    pub async fn start(
        dir: &std::path::Path,
        redirect_uri: &str,
        client_jwk: &serde_json::Value,
        oid: &str,
    ) -> CertifiedOp {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join("op.mjs"))
            .current_dir(dir)
            .env("OP_TENANT", TENANT)
            .env("OP_CLIENT_ID", CLIENT_ID)
            .env("OP_REDIRECT_URI", redirect_uri)
            .env("OP_CLIENT_JWK", client_jwk.to_string())
            .env("OP_ACCOUNT_OID", oid)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs op.mjs");
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(port) = line.strip_prefix("READY ") {
                    return port.trim().to_string();
                }
            }
            panic!("oidc-provider exited before it was ready")
        })
        .await
        .expect("oidc-provider is ready in time");
        // Keep reading: a closed pipe would kill the provider at its next log line (EPIPE).
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        CertifiedOp {
            base: format!("http://127.0.0.1:{ready}"),
            _child: child,
        }
    }

    /// Plays the person at the provider's own pages from `authorize`: submits every form
    /// (login `login` with any password, then consent) until the provider sends the browser to
    /// `redirect_prefix`; returns that URL.
    pub async fn sign_in(&self, authorize: &str, login: &str, redirect_prefix: &str) -> String {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut res = http.get(authorize).send().await.unwrap();
        for _ in 0..12 {
            let url = res.url().clone();
            if res.status().is_redirection() {
                let to = url
                    .join(res.headers()["location"].to_str().unwrap())
                    .unwrap()
                    .to_string();
                if to.starts_with(redirect_prefix) {
                    return to;
                }
                res = http.get(&to).send().await.unwrap();
                continue;
            }
            let page = res.text().await.unwrap();
            assert!(
                page.contains("<form"),
                "a provider page without a form: {page}"
            );
            let action = attr(page.split("<form").nth(1).unwrap(), "action");
            let mut form: Vec<(String, String)> = page
                .split("<input")
                .skip(1)
                .filter(|i| i.contains("type=\"hidden\""))
                .map(|i| (attr(i, "name"), attr(i, "value")))
                .collect();
            if page.contains("name=\"login\"") {
                form.push(("login".into(), login.into()));
                form.push(("password".into(), "any".into()));
            }
            let target = url.join(&action).unwrap();
            res = http.post(target).form(&form).send().await.unwrap();
        }
        panic!("the provider never sent the browser back")
    }
}

/// The value of attribute `name` in an HTML tag's text.
fn attr(tag: &str, name: &str) -> String {
    let key = format!("{name}=\"");
    tag.split('>')
        .next()
        .and_then(|t| t.split(&key).nth(1))
        .and_then(|v| v.split('"').next())
        .unwrap_or_default()
        .replace("&amp;", "&")
}
