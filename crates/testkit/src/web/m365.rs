//! A pbx365 web app wired to an in-process m365-sim over HTTPS (its CA through `m365.ca_file`),
//! an app registration in the sim with the five permissions (not consented yet), and a console
//! admin driving the Configure page over real HTTP with a cookie jar.

use crate::tenant::{new_app, start_sim, write_ca};
use m365_sim::identity::apps::NewApp;
use m365_sim::{SimConfig, SimHandle};
use pbx365_domain::settings::Settings;
use pbx365_store::Store;
use pbx365_web::{password, AppState};
use reqwest::{Client, Response};

pub use super::{hidden, location, text, ADMIN, PASSWORD};
/// The tenant's Global Administrator in the sim.
pub const TENANT_ADMIN: &str = "globaladmin@contoso.example";
/// Their password.
pub const TENANT_ADMIN_PASSWORD: &str = "sim-admin-password";
/// The permissions pbx365 asks for.
pub use crate::tenant::PERMISSIONS as FIVE;
/// The Configure page.
pub const CONFIGURE: &str = "/console/settings/integrations/microsoft365/configure";
/// Where the forms post.
pub const BASE: &str = "/console/settings/integrations/microsoft365";

/// How to start.
#[derive(Default, Clone, Copy)]
pub struct Opts {
    /// Write the sim's tenant id into the file settings (for checks without a consent round).
    pub tenant_in_file: bool,
}

/// A running app + sim.
pub struct M365App {
    /// `http://127.0.0.1:PORT` (also the public URL).
    pub base: String,
    /// The server's state.
    pub state: AppState,
    /// The simulated tenant.
    pub sim: SimHandle,
    /// The app registered in the sim.
    pub client_id: String,
    /// The store.
    pub store: Store,
    server: tokio::task::JoinHandle<()>,
    _db: crate::db::FreshDb,
}

impl Drop for M365App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts the sim and the app on `db`.
pub async fn start(db: crate::db::FreshDb, opts: Opts) -> M365App {
    let seed = serde_json::json!({
        "users": [{
            "id": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
            "userPrincipalName": TENANT_ADMIN,
            "displayName": "Global Admin",
            "password": TENANT_ADMIN_PASSWORD
        }]
    });
    let sim = start_sim(SimConfig {
        seed: Some(seed),
        ..SimConfig::default()
    })
    .await;
    let ca_file = write_ca(&sim, db.dir.path());

    let store = Store::connect(&db.url).await.expect("open store");
    store
        .create_admin(ADMIN, &password::hash_password(PASSWORD).unwrap())
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut settings = Settings {
        data_dir: db.dir.path().join("data"),
        public_url: Some(base.clone()),
        ..Settings::default()
    };
    std::fs::create_dir_all(&settings.data_dir).unwrap();
    settings.m365.authority_url = sim.authority_url().to_string();
    settings.m365.graph_url = sim.graph_url().to_string();
    settings.m365.ca_file = Some(ca_file);
    if opts.tenant_in_file {
        settings.m365.tenant_id = Some(sim.tenant_id.clone());
    }
    let state = AppState::new(store.clone(), settings);
    let app = pbx365_web::router(state.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let client_id = sim
        .control()
        .create_app(&NewApp {
            redirect_uris: vec![format!("{base}/oauth2office2")],
            ..new_app("pbx365 test", &FIVE, false)
        })
        .await
        .expect("app registered in the sim");
    M365App {
        base,
        state,
        sim,
        client_id,
        store,
        server,
        _db: db,
    }
}

impl M365App {
    /// The effective tenant id (None until consent recorded it).
    pub fn tenant_id(&self) -> Option<String> {
        self.state.settings().m365.tenant_id.clone()
    }

    /// A new API token (for `/api/v1` calls with `Authorization: Bearer`).
    pub async fn api_token(&self) -> String {
        let token = pbx365_web::auth::new_token();
        self.store
            .create_api_token("tests", &pbx365_web::auth::hash_token(&token))
            .await
            .expect("token");
        token
    }

    /// Runs the doctor's checks the CLI runs.
    pub async fn doctor(&self) -> Vec<pbx365_app::m365::Check> {
        pbx365_app::m365::run_checks(&self.state.settings(), self.state.data_dir(), None).await
    }
}

/// A console admin's browser: a cookie jar, redirects followed by hand.
pub struct Browser {
    /// The HTTP client with the jar.
    pub http: Client,
    /// App base URL.
    pub base: String,
}

impl Browser {
    /// A browser without a session.
    pub fn new(app: &M365App) -> Browser {
        let http = Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser {
            http,
            base: app.base.clone(),
        }
    }

    /// A browser signed in to the console.
    pub async fn signed_in(app: &M365App) -> Browser {
        let b = Browser::new(app);
        let page = b.get("/console/login").await.text().await.unwrap();
        let login_csrf = hidden(&page, "login_csrf");
        let res = b
            .http
            .post(format!("{}/console/login", b.base))
            .form(&[
                ("username", ADMIN),
                ("password", PASSWORD),
                ("return_to", CONFIGURE),
                ("login_csrf", &login_csrf),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 303, "sign-in succeeds");
        b
    }

    /// GET a path (or absolute URL).
    pub async fn get(&self, path: &str) -> Response {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        self.http.get(url).send().await.unwrap()
    }

    /// The Configure page's HTML (asserting it renders).
    pub async fn page(&self) -> String {
        let res = self.get(CONFIGURE).await;
        assert_eq!(res.status().as_u16(), 200, "Configure page renders");
        res.text().await.unwrap()
    }

    /// The Configure page as text.
    pub async fn page_text(&self) -> String {
        text(&self.page().await)
    }

    /// POSTs a Configure form with the page's CSRF token plus `fields`.
    pub async fn post(&self, action: &str, fields: &[(&str, &str)]) -> Response {
        let csrf = hidden(&self.page().await, "csrf");
        let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.http
            .post(format!("{}{BASE}/{action}", self.base))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Saves the Application (client) ID.
    pub async fn save_client_id(&self, id: &str) -> Response {
        self.post("client-id", &[("client_id", id)]).await
    }

    /// Generates a key pair.
    pub async fn keygen(&self) {
        let res = self.post("keygen", &[]).await;
        assert_eq!(res.status().as_u16(), 303);
    }

    /// Downloads `public_key.pem`.
    pub async fn download_pem(&self) -> String {
        let res = self.get(&format!("{BASE}/public_key.pem")).await;
        assert_eq!(res.status().as_u16(), 200, "public_key.pem downloads");
        res.text().await.unwrap()
    }

    /// Clicks "Sign in to Microsoft 365"; returns where the browser is sent.
    pub async fn start_consent(&self) -> String {
        let res = self.post("signin", &[]).await;
        assert_eq!(res.status().as_u16(), 303, "sign-in redirects");
        location(&res)
    }

    /// Follows the callback URL; returns the response (a redirect to the Configure page).
    pub async fn callback(&self, url: &str) -> Response {
        self.get(url).await
    }
}

/// Answers the sim's consent page (as the tenant's admin) and returns the redirect back to us.
pub async fn consent_at_sim(app: &M365App, consent_url: &str, accept: bool) -> String {
    let http = app.sim.http_client();
    let page = http.get(consent_url).send().await.unwrap();
    assert_eq!(
        page.status().as_u16(),
        200,
        "the sim shows its consent page"
    );
    let body = page.text().await.unwrap();
    assert!(body.contains("Permissions requested"), "{body}");
    let url = url::Url::parse(consent_url).unwrap();
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("login".into(), TENANT_ADMIN.into()));
    form.push(("passwd".into(), TENANT_ADMIN_PASSWORD.into()));
    form.push((
        "action".into(),
        if accept { "accept" } else { "cancel" }.into(),
    ));
    let mut post_url = url.clone();
    post_url.set_query(None);
    let no_redirects = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(app.sim.ca_pem.as_deref().unwrap().as_bytes()).unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirects
        .post(post_url)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_redirection(),
        "the sim redirects back: {}",
        res.status()
    );
    location(&res)
}

/// Enter the app id, generate keys, upload `public_key.pem` to the sim app.
pub async fn prepare(app: &M365App, b: &Browser) -> String {
    assert_eq!(
        b.save_client_id(&app.client_id).await.status().as_u16(),
        303
    );
    b.keygen().await;
    let pem = b.download_pem().await;
    app.sim
        .control()
        .add_certificate(&app.client_id, &pem)
        .await
        .expect("sim takes the certificate");
    pem
}

/// Sign in to Microsoft 365, answer the consent page, come back; returns the Configure page text.
pub async fn consent_round(app: &M365App, b: &Browser, accept: bool) -> String {
    let consent_url = b.start_consent().await;
    assert!(
        consent_url.starts_with(app.sim.authority_url()),
        "{consent_url}"
    );
    let back = consent_at_sim(app, &consent_url, accept).await;
    assert!(
        back.starts_with(&format!("{}/oauth2office2?", app.base)),
        "{back}"
    );
    let res = b.callback(&back).await;
    assert_eq!(
        res.status().as_u16(),
        303,
        "the callback redirects to a clean URL"
    );
    assert_eq!(location(&res), CONFIGURE);
    b.page_text().await
}
