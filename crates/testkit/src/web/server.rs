//! The app on 127.0.0.1:0 with a fresh database and an API token, for the REST API tests.

use pbx365_domain::settings::Settings;
use pbx365_store::Store;
use pbx365_web::{auth, AppState};

/// A running server for one test.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A valid API token.
    pub token: String,
    /// The store behind the server (to arrange and check state directly).
    pub store: Store,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The application behind the server (to change settings as the console would).
    pub state: AppState,
    _db: crate::db::FreshDb,
}

impl TestServer {
    /// Starts the server on `db`.
    pub async fn start(db: crate::db::FreshDb) -> TestServer {
        pbx365_web::server::install_crypto_provider();
        let store = Store::connect(&db.url).await.expect("open store");
        let token = auth::new_token();
        store
            .create_api_token("tests", &auth::hash_token(&token))
            .await
            .expect("token");
        let settings = Settings {
            data_dir: db.dir.path().to_path_buf(),
            ..Settings::default()
        };
        let state = AppState::new(store.clone(), settings);
        let app = pbx365_web::router(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        TestServer {
            base,
            token,
            store,
            http: reqwest::Client::new(),
            state,
            _db: db,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the bearer token.
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    /// GET with the token, expecting JSON.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .req(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// A JSON request with the token.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = self
            .req(method, path)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }
}

/// Asserts the error envelope and returns its message.
pub fn error_message(body: &serde_json::Value) -> String {
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"));
    assert!(!code.is_empty());
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {body}"))
        .to_string()
}
