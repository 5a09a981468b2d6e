//! A pbx365 web app connected to the fake OpenID provider ([`crate::oidc`]) with SSO on for both
//! surfaces, three synced extensions (a user, an admin, a disabled one), and a browser with a
//! cookie jar that starts sign-ins and brings back the provider's answer.

use crate::data::{put_extensions, synced_extension};
use crate::oidc::{FakeOp, Signer, CLIENT_ID, TENANT};
use pbx365_domain::settings::{Settings, SsoMode};
use pbx365_store::Store;
use pbx365_web::{password, AppState};
use reqwest::{Client, Response};

pub use super::{location, text, ADMIN, PASSWORD};

/// Object id of the plain user (extension [`USER_EXT`]).
pub const USER_OID: &str = "aaaaaaaa-0000-4000-8000-000000000201";
/// Object id of the admin (extension [`ADMIN_EXT`]).
pub const ADMIN_OID: &str = "aaaaaaaa-0000-4000-8000-000000000202";
/// Object id of the disabled user (extension [`DISABLED_EXT`]).
pub const DISABLED_OID: &str = "aaaaaaaa-0000-4000-8000-000000000203";
/// Object id nobody has an extension for.
pub const UNKNOWN_OID: &str = "aaaaaaaa-0000-4000-8000-000000000999";
/// The user's extension.
pub const USER_EXT: &str = "201";
/// The admin's extension.
pub const ADMIN_EXT: &str = "202";
/// The disabled extension.
pub const DISABLED_EXT: &str = "203";

/// A running app + fake provider.
pub struct SsoApp {
    /// `http://127.0.0.1:PORT` (also the public URL).
    pub base: String,
    /// The server's state.
    pub state: AppState,
    /// The store.
    pub store: Store,
    /// The provider.
    pub op: FakeOp,
    /// The provider's published key.
    pub signer: Signer,
    /// The clock sessions run on (tests move it).
    pub clock: std::sync::Arc<pbx365_app::clock::ManualClock>,
    server: tokio::task::JoinHandle<()>,
    _db: crate::db::FreshDb,
}

impl Drop for SsoApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The store of `db` with the console admin and the synced extensions `exts` (the one numbered
/// [`ADMIN_EXT`] gets the administrator role).
async fn open_store(db: &crate::db::FreshDb, exts: &[pbx365_domain::Extension]) -> Store {
    let store = Store::connect(&db.url).await.expect("open store");
    store
        .create_admin(ADMIN, &password::hash_password(PASSWORD).unwrap())
        .await
        .unwrap();
    put_extensions(&store, exts).await.unwrap();
    store.set_extension_admin(ADMIN_EXT, true).await.unwrap();
    store
}

/// Settings for an app at `base` with its data dir in `db`, a key pair, the tenant and client,
/// SSO on for both surfaces.
fn sso_settings(
    db: &crate::db::FreshDb,
    base: &str,
    authority: &str,
    tenant: &str,
    client: &str,
) -> Settings {
    let mut settings = Settings {
        data_dir: db.dir.path().join("data"),
        public_url: Some(base.to_string()),
        ..Settings::default()
    };
    std::fs::create_dir_all(&settings.data_dir).unwrap();
    if !pbx365_app::m365::KeyStore::new(&settings.data_dir).exists(pbx365_app::m365::Slot::Active) {
        pbx365_app::m365::generate_key_pair(&settings.data_dir, base).expect("key pair");
    }
    settings.m365.authority_url = authority.to_string();
    settings.m365.tenant_id = Some(tenant.to_string());
    settings.m365.client_id = Some(client.to_string());
    settings.sso.console = SsoMode::All;
    settings.sso.webclient = SsoMode::All;
    settings
}

/// Serves the app with `settings` on `listener`.
fn serve(
    store: &Store,
    settings: Settings,
    listener: tokio::net::TcpListener,
) -> (AppState, tokio::task::JoinHandle<()>) {
    let state = AppState::new(store.clone(), settings);
    let app = pbx365_web::router(state.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (state, server)
}

/// Starts the provider and the app on `db`.
pub async fn start(db: crate::db::FreshDb) -> SsoApp {
    pbx365_web::server::install_crypto_provider();
    let signer = Signer::new();
    let op = FakeOp::start(vec![signer.jwk()]).await;
    let mut disabled = synced_extension(DISABLED_EXT, DISABLED_OID);
    disabled.enabled = false;
    let store = open_store(
        &db,
        &[
            synced_extension(USER_EXT, USER_OID),
            synced_extension(ADMIN_EXT, ADMIN_OID),
            disabled,
        ],
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let settings = sso_settings(&db, &base, &op.base, TENANT, CLIENT_ID);
    let clock = std::sync::Arc::new(pbx365_app::clock::ManualClock::new(chrono::Utc::now()));
    let state = AppState::new(store.clone(), settings).with_clock(clock.clone());
    let router = pbx365_web::router(state.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    SsoApp {
        base,
        state,
        store,
        op,
        signer,
        clock,
        server,
        _db: db,
    }
}

impl SsoApp {
    /// The provider's answer to `started`: a valid RS256 ID token for `oid` of the tenant.
    pub async fn answer_as(&self, b: &SsoBrowser, started: &Started, oid: &str) -> Response {
        let c = crate::oidc::claims(&self.op.base, TENANT, oid, started.nonce());
        self.op.queue(self.signer.rs256(&c, true));
        b.answer(started.state()).await
    }
}

/// A browser: a cookie jar, redirects followed by hand.
pub struct SsoBrowser {
    /// The HTTP client with the jar.
    pub http: Client,
    /// App base URL.
    pub base: String,
}

/// A started sign-in as the provider sees it.
pub struct Started {
    /// The authorize URL's parameters.
    pub params: std::collections::HashMap<String, String>,
}

impl Started {
    /// The sign-in a redirect to the provider (`res`) carries.
    pub fn from_redirect(res: &Response) -> Started {
        let to = url::Url::parse(&location(res)).unwrap();
        Started {
            params: to.query_pairs().into_owned().collect(),
        }
    }
    /// The `state` sent.
    pub fn state(&self) -> &str {
        &self.params["state"]
    }
    /// The `nonce` sent.
    pub fn nonce(&self) -> &str {
        &self.params["nonce"]
    }
}

impl SsoBrowser {
    /// A browser without cookies on the app at `base`.
    pub fn at(base: &str) -> SsoBrowser {
        SsoBrowser {
            http: Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_string(),
        }
    }

    /// A browser without cookies.
    pub fn new(app: &SsoApp) -> SsoBrowser {
        SsoBrowser::at(&app.base)
    }

    /// A browser without cookies that sends `user_agent` (session lists name the browser).
    pub fn with_user_agent(app: &SsoApp, user_agent: &str) -> SsoBrowser {
        SsoBrowser {
            http: Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(user_agent)
                .build()
                .unwrap(),
            base: app.base.clone(),
        }
    }

    /// A browser sending `user_agent`, signed in to the console with the admin password.
    pub async fn password_admin(app: &SsoApp, user_agent: &str) -> SsoBrowser {
        let b = SsoBrowser::with_user_agent(app, user_agent);
        let page = b.get("/console/login").await.text().await.unwrap();
        let res = b
            .http
            .post(format!("{}/console/login", app.base))
            .form(&[
                ("username", ADMIN),
                ("password", PASSWORD),
                ("login_csrf", &super::hidden(&page, "login_csrf")),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 303, "password sign-in");
        b
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// Starts a sign-in on `surface` returning to `back`; asserts it leads to the provider.
    pub async fn start(&self, surface: &str, back: &str) -> Started {
        let back: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
        let res = self
            .get(&format!("/auth/microsoft?surface={surface}&return={back}"))
            .await;
        assert_eq!(res.status().as_u16(), 303, "the sign-in starts");
        Started::from_redirect(&res)
    }

    /// The provider's answer arriving at the redirect URI.
    pub async fn answer(&self, state: &str) -> Response {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", "the-code")
            .append_pair("state", state)
            .finish();
        self.get(&format!("/oauth2office2?{q}")).await
    }

    /// True when `/` shows a signed-in user.
    pub async fn signed_in_to_webclient(&self) -> bool {
        let page = self.get("/").await.text().await.unwrap();
        page.contains("id=\"me-number\"")
    }
}

/// True when `res` sets a (non-empty) session cookie.
pub fn sets_session(res: &Response) -> bool {
    res.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| {
            c.split(';')
                .next()
                .and_then(|kv| kv.split_once('='))
                .is_some_and(|(k, v)| k.ends_with("pbx365_session") && !v.is_empty())
        })
}

/// A user of the sim's tenant who signs in through its sign-in page (extension [`USER_EXT`]).
pub const SIM_USER: &str = "anna@contoso.example";
/// The sim admin user (extension [`ADMIN_EXT`], administrator role in pbx365).
pub const SIM_ADMIN: &str = "boris@contoso.example";
/// Both sim users' password.
pub const SIM_PASSWORD: &str = "sim-user-password";
/// A Microsoft 365 group of the sim holding only the group [`SIM_GROUP_SALES`] (so its
/// members are [`SIM_USER`]'s through nesting).
pub const SIM_GROUP_STAFF: &str = "bbbbbbbb-0000-4000-8000-000000000001";
/// A Microsoft 365 group of the sim with [`SIM_USER`] as its one member.
pub const SIM_GROUP_SALES: &str = "bbbbbbbb-0000-4000-8000-000000000002";
/// A Microsoft 365 group of the sim with [`SIM_ADMIN`] as its one member.
pub const SIM_GROUP_ADMINS: &str = "bbbbbbbb-0000-4000-8000-000000000003";

/// A running app connected to m365-sim over HTTPS (its CA through `m365.ca_file`), its app
/// registration holding pbx365's certificate, SSO on for both surfaces, and two synced
/// extensions for the sim's users.
pub struct SimSsoApp {
    /// `http://127.0.0.1:PORT` (also the public URL).
    pub base: String,
    /// The server's state.
    pub state: AppState,
    /// The store.
    pub store: Store,
    /// The simulated tenant.
    pub sim: m365_sim::SimHandle,
    server: tokio::task::JoinHandle<()>,
    _db: crate::db::FreshDb,
}

impl Drop for SimSsoApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts the sim and the app on `db`.
pub async fn start_with_sim(db: crate::db::FreshDb) -> SimSsoApp {
    pbx365_web::server::install_crypto_provider();
    let user = |id: &str, upn: &str, name: &str| serde_json::json!({"id": id, "userPrincipalName": upn, "displayName": name, "password": SIM_PASSWORD});
    let sim = crate::tenant::start_sim(m365_sim::SimConfig {
        seed: Some(serde_json::json!({"users": [
            user(USER_OID, SIM_USER, "Anna Berg"),
            user(ADMIN_OID, SIM_ADMIN, "Boris Admin"),
        ], "groups": [
            {"id": SIM_GROUP_STAFF, "displayName": "All staff", "members": [SIM_GROUP_SALES]},
            {"id": SIM_GROUP_SALES, "displayName": "Sales", "members": [SIM_USER]},
            {"id": SIM_GROUP_ADMINS, "displayName": "Admins", "members": [SIM_ADMIN]},
        ]})),
        ..m365_sim::SimConfig::default()
    })
    .await;
    let ca_file = crate::tenant::write_ca(&sim, db.dir.path());
    let store = open_store(
        &db,
        &[
            synced_extension(USER_EXT, USER_OID),
            synced_extension(ADMIN_EXT, ADMIN_OID),
        ],
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let client_id = sim
        .control()
        .create_app(&m365_sim::identity::apps::NewApp {
            redirect_uris: vec![format!("{base}/oauth2office2")],
            ..crate::tenant::new_app("pbx365 sso test", &[], false)
        })
        .await
        .expect("app registered in the sim");
    let mut settings = sso_settings(&db, &base, sim.authority_url(), &sim.tenant_id, &client_id);
    let pem = pbx365_app::m365::certificate_for_upload(&settings.data_dir)
        .unwrap()
        .unwrap();
    sim.control()
        .add_certificate(&client_id, &pem)
        .await
        .expect("the sim takes the certificate");
    settings.m365.graph_url = sim.graph_url().to_string();
    settings.m365.ca_file = Some(ca_file);
    let (state, server) = serve(&store, settings, listener);
    SimSsoApp {
        base,
        state,
        store,
        sim,
        server,
        _db: db,
    }
}

impl SimSsoApp {
    /// A browser on this app.
    pub fn browser(&self) -> SsoBrowser {
        SsoBrowser::at(&self.base)
    }

    /// Gives pbx365's app registration in the sim `permissions`, consented (or takes every
    /// permission away with `&[]`).
    pub async fn grant(&self, permissions: &[&str]) {
        let client_id = self.state.settings().m365.client_id.clone().unwrap();
        self.sim
            .control()
            .set_permissions(&client_id, permissions, !permissions.is_empty())
            .await
            .expect("the sim takes the permissions");
    }

    /// Makes every Graph request whose path contains `path` answer `status` (with a
    /// `Retry-After` of 10 ms, so the client's retries end quickly).
    pub async fn fail_graph(&self, path: &str, status: u16) {
        self.sim
            .control()
            .add_fault(&m365_sim::faults::FaultSpec {
                path: path.into(),
                status: Some(status),
                retry_after: Some(0.01),
                ..Default::default()
            })
            .await
            .expect("the sim takes the fault");
    }

    /// A whole Microsoft sign-in of `login` on `surface` through the sim's sign-in page: the
    /// browser and pbx365's answer at the redirect URI.
    pub async fn sign_in(&self, surface: &str, login: &str) -> (SsoBrowser, Response) {
        let b = self.browser();
        let home = if surface == "console" {
            "/console"
        } else {
            "/"
        };
        let authorize = b.start_url(surface, home).await;
        let back = self.sign_in_at_sim(&authorize, login).await;
        let res = b.get_url(&back).await;
        (b, res)
    }

    /// Signs `login` in on the sim's sign-in page for the authorize URL `authorize` (as a
    /// person submitting the form) and returns where the sim sends the browser back.
    pub async fn sign_in_at_sim(&self, authorize: &str, login: &str) -> String {
        let http = Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.sim.ca_pem.as_deref().unwrap().as_bytes())
                    .unwrap(),
            )
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let page = http.get(authorize).send().await.unwrap();
        assert_eq!(
            page.status().as_u16(),
            200,
            "the sim shows its sign-in page"
        );
        let url = url::Url::parse(authorize).unwrap();
        let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        form.push(("login".into(), login.into()));
        form.push(("passwd".into(), SIM_PASSWORD.into()));
        let mut post_url = url.clone();
        post_url.set_query(None);
        let res = http.post(post_url).form(&form).send().await.unwrap();
        assert!(
            res.status().is_redirection(),
            "the sim redirects back: {}",
            res.status()
        );
        location(&res)
    }
}

impl SsoBrowser {
    /// Starts a sign-in and returns the authorize URL it leads to.
    pub async fn start_url(&self, surface: &str, back: &str) -> String {
        let back: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
        let res = self
            .get(&format!("/auth/microsoft?surface={surface}&return={back}"))
            .await;
        assert_eq!(res.status().as_u16(), 303, "the sign-in starts");
        location(&res)
    }

    /// GETs an absolute URL (the answer at the redirect URI).
    pub async fn get_url(&self, url: &str) -> Response {
        self.http.get(url).send().await.unwrap()
    }
}

/// A running app signing in against the certified `oidc-provider`.
pub struct InteropApp {
    /// `http://127.0.0.1:PORT` (also the public URL).
    pub base: String,
    /// The server's state.
    pub state: AppState,
    /// The provider.
    pub op: crate::oidc::CertifiedOp,
    server: tokio::task::JoinHandle<()>,
    _db: crate::db::FreshDb,
}

impl Drop for InteropApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts `oidc-provider` (from [`crate::oidc::certified_op_dir`]) with pbx365's client and
/// its certificate key, and the app connected to it with SSO on; `None` when the provider is
/// not installed.
pub async fn start_with_certified_op(db: crate::db::FreshDb) -> Option<InteropApp> {
    let dir = crate::oidc::certified_op_dir()?;
    pbx365_web::server::install_crypto_provider();
    let store = open_store(
        &db,
        &[
            synced_extension(USER_EXT, USER_OID),
            synced_extension(ADMIN_EXT, ADMIN_OID),
        ],
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // The key pair first: the provider registers the client with its public key.
    let mut settings = sso_settings(&db, &base, "http://127.0.0.1", TENANT, CLIENT_ID);
    let pem = pbx365_app::m365::certificate_for_upload(&settings.data_dir)
        .unwrap()
        .unwrap();
    let op = crate::oidc::CertifiedOp::start(
        &dir,
        &format!("{base}/oauth2office2"),
        &crate::oidc::certificate_jwk(&pem),
        USER_OID,
    )
    .await;
    settings.m365.authority_url = op.base.clone();
    let (state, server) = serve(&store, settings, listener);
    Some(InteropApp {
        base,
        state,
        op,
        server,
        _db: db,
    })
}

impl InteropApp {
    /// A browser on this app.
    pub fn browser(&self) -> SsoBrowser {
        SsoBrowser::at(&self.base)
    }
}
