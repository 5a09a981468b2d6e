//! m365-sim integration tests: one binary, real HTTPS over loopback.
//!
//! Shared helpers live here; identity/control tests in `identity.rs`/`control.rs`, Graph tests
//! in `graph*.rs`.

mod control;
mod graph;
mod graph_conformance;
mod graph_notify;
mod identity;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use m365_sim::identity::apps::NewApp;
use m365_sim::{SimConfig, SimHandle};
use serde_json::{json, Value};
use sha1::Digest as _;

/// Password of the seeded test users.
pub const PASSWORD: &str = "Passw0rd!";

/// A small seeded tenant: Ann (member) and Bob (member, disabled).
pub fn test_seed() -> Value {
    json!({
        "tenant": {"id": "8f3c9a1e-2b7d-4e6f-9a0b-1c2d3e4f5a6b", "domain": "contoso.example"},
        "users": [
            {"id": "11111111-1111-1111-1111-111111111111", "userPrincipalName": "ann@contoso.example",
             "displayName": "Ann Archer", "mail": "ann@contoso.example", "password": PASSWORD},
            {"id": "22222222-2222-2222-2222-222222222222", "userPrincipalName": "bob@contoso.example",
             "displayName": "Bob Baker", "mail": "bob@contoso.example", "password": PASSWORD,
             "accountEnabled": false}
        ]
    })
}

/// Starts a sim over HTTPS on a free loopback port with [`test_seed`].
pub async fn start_sim() -> SimHandle {
    start_sim_with(SimConfig {
        seed: Some(test_seed()),
        ..Default::default()
    })
    .await
}

/// Starts a sim with a custom configuration.
pub async fn start_sim_with(config: SimConfig) -> SimHandle {
    m365_sim::start(config).await.expect("m365-sim starts")
}

/// A client certificate and its private key, as an app owner would create in the portal.
pub struct TestCert {
    /// Certificate PEM (uploaded to the app).
    pub cert_pem: String,
    /// Private key PEM (signs assertions).
    pub key_pem: String,
    /// Certificate DER.
    pub der: Vec<u8>,
}

impl TestCert {
    /// A fresh RSA certificate valid now (2020–2040).
    pub fn valid() -> TestCert {
        Self::with_validity((2020, 1, 1), (2040, 1, 1))
    }

    /// An RSA certificate that expired in 2021.
    pub fn expired() -> TestCert {
        Self::with_validity((2020, 1, 1), (2021, 1, 1))
    }

    /// An RSA certificate valid between two dates (year, month, day).
    pub fn with_validity(from: (i32, u8, u8), to: (i32, u8, u8)) -> TestCert {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pbx365 test app");
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        let cert = params.self_signed(&kp).unwrap();
        TestCert {
            cert_pem: cert.pem(),
            key_pem: kp.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// base64url SHA-1 thumbprint (`x5t`).
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&self.der))
    }

    /// base64url SHA-256 thumbprint (`x5t#S256`).
    pub fn x5t_s256(&self) -> String {
        use sha2::Digest;
        URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&self.der))
    }

    /// A client assertion: PS256 + `x5t#S256` (`pss = true`) or RS256 + `x5t`.
    pub fn assertion(&self, client_id: &str, aud: &str, pss: bool) -> String {
        let now = chrono::Utc::now().timestamp();
        self.assertion_with(
            pss,
            json!({"aud": aud, "iss": client_id, "sub": client_id,
                   "jti": uuid::Uuid::new_v4().to_string(), "nbf": now, "iat": now, "exp": now + 600}),
        )
    }

    /// A client assertion with explicit claims.
    pub fn assertion_with(&self, pss: bool, claims: Value) -> String {
        use jsonwebtoken::{Algorithm, EncodingKey, Header};
        let mut header = Header::new(if pss {
            Algorithm::PS256
        } else {
            Algorithm::RS256
        });
        header.typ = Some("JWT".into());
        if pss {
            header.x5t_s256 = Some(self.x5t_s256());
        } else {
            header.x5t = Some(self.x5t());
        }
        let key = EncodingKey::from_rsa_pem(self.key_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }
}

/// Registers an app over `/_sim/apps`.
pub async fn register_app(sim: &SimHandle, app: NewApp) -> String {
    sim.control()
        .create_app(&app)
        .await
        .expect("app registered")
}

/// The token endpoint of the sim's tenant.
pub fn token_url(sim: &SimHandle) -> String {
    format!(
        "{}/{}/oauth2/v2.0/token",
        sim.authority_url(),
        sim.tenant_id
    )
}

/// POSTs a form to the token endpoint; returns status and JSON body.
pub async fn post_token(sim: &SimHandle, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = sim
        .http_client()
        .post(token_url(sim))
        .form(form)
        .send()
        .await
        .expect("token request sent");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("token response is JSON"))
}

/// Client-credentials form with a certificate assertion.
pub async fn token_with_assertion(
    sim: &SimHandle,
    client_id: &str,
    assertion: &str,
) -> (u16, Value) {
    post_token(
        sim,
        &[
            ("client_id", client_id),
            ("scope", "https://graph.microsoft.com/.default"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
            ("grant_type", "client_credentials"),
        ],
    )
    .await
}

/// Client-credentials form with a fresh assertion signed by `cert` (PS256 when `pss`, else RS256).
pub async fn cert_token(
    sim: &SimHandle,
    client_id: &str,
    cert: &TestCert,
    pss: bool,
) -> (u16, Value) {
    let assertion = cert.assertion(client_id, &token_url(sim), pss);
    token_with_assertion(sim, client_id, &assertion).await
}

/// Decodes a JWT's payload without verifying it.
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
