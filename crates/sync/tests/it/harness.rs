//! The test world: m365-sim in-process, pbx365's app registered with a real key pair, a store on
//! SQLite or PostgreSQL, and a writer app that changes the tenant through Graph's write API.

use m365_sim::identity::apps::NewApp;
use m365_sim::{SimConfig, SimHandle};
use pbx365_domain::settings::{AssertionAlg, SyncSettings};
use pbx365_domain::{DirectoryUser, Extension, NumberRules, SyncKind, SyncRun};
use pbx365_graph::keys::KeyStore;
use pbx365_graph::{GraphClient, GraphConfig, GraphRequest, RetryPolicy};
use pbx365_store::Store;
use pbx365_sync::{RunOptions, SyncService};
use sqlx::{Connection, Executor};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// What a test gets: the store and the URL it was opened with.
pub struct TestDb {
    pub store: Store,
    pub url: String,
}

/// Generates `mod <test> { fn sqlite(); fn postgres(); }` for each `async fn <test>(TestDb)`.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::harness::on_sqlite(super::$name).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::harness::on_postgres(super::$name).await
            }
        }
    )* };
}

/// Runs `test` on a store in a new SQLite file.
pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/data/pbx365.db", dir.path().display());
    let store = Store::connect(&url).await.expect("open SQLite store");
    test(TestDb { store, url }).await;
}

/// The admin URL of the test PostgreSQL server; `None` (with a notice) locally, a failure in CI.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("PBX365_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("PBX365_TEST_POSTGRES_URL is not set but CI is: the PostgreSQL tests must run in CI")
        }
        _ => {
            eprintln!(
                "notice: PBX365_TEST_POSTGRES_URL is not set, so the PostgreSQL variant is skipped"
            );
            None
        }
    }
}

/// Runs `test` on a store in a fresh PostgreSQL database.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    sqlx::any::install_default_drivers();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("connect to the test PostgreSQL server");
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    conn.close().await.ok();
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (admin.clone(), String::new()),
    };
    let base = base
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(base);
    let url = format!("{base}/{name}{query}");
    let store = Store::connect(&url).await.expect("open PostgreSQL store");
    test(TestDb { store, url }).await;
    if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await {
        let _ = conn
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await;
    }
}

/// A running sim plus pbx365's reader client and a writer client.
pub struct World {
    pub sim: SimHandle,
    pub graph: Arc<GraphClient>,
    pub writer: GraphClient,
    /// Keeps the key files alive.
    pub _dirs: Vec<tempfile::TempDir>,
    pub reader_client_id: String,
    pub reader_keys_dir: std::path::PathBuf,
}

/// The permissions pbx365 asks for.
pub const PERMISSIONS: [&str; 5] = [
    "Calendars.Read",
    "Contacts.Read",
    "Directory.Read.All",
    "Mail.Send",
    "User.Read.All",
];

async fn register(sim: &SimHandle, permissions: &[&str]) -> (tempfile::TempDir, KeyStore, String) {
    let dir = tempfile::tempdir().unwrap();
    let keys = KeyStore::new(dir.path());
    let generated = keys.generate("pbx.test").unwrap();
    let client_id = sim
        .control()
        .create_app(&NewApp {
            display_name: "pbx365".into(),
            certificate_pem: Some(generated.certificate.pem.clone()),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            consented: true,
            ..NewApp::default()
        })
        .await
        .unwrap();
    (dir, keys, client_id)
}

/// Graph settings pointing at the sim, with quick retries.
pub fn config(sim: &SimHandle, client_id: &str) -> GraphConfig {
    GraphConfig {
        authority_url: sim.authority_url().to_string(),
        graph_url: sim.graph_url().to_string(),
        tenant_id: Some(sim.tenant_id.clone()),
        client_id: Some(client_id.to_string()),
        assertion_alg: AssertionAlg::PS256,
        extra_ca_pem: sim.ca_pem.clone().map(String::into_bytes),
        retry: RetryPolicy {
            max_attempts: 6,
            min_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(2),
        },
        ..GraphConfig::default()
    }
}

/// pbx365's Graph client for a sim at `url`, from the app registration `world_with` made
/// (for a child process that works against its parent's sim).
pub fn reader(url: &str, tenant: &str, client_id: &str, keys_dir: &str) -> GraphClient {
    let config = GraphConfig {
        authority_url: url.to_string(),
        graph_url: url.to_string(),
        tenant_id: Some(tenant.to_string()),
        client_id: Some(client_id.to_string()),
        ..GraphConfig::default()
    };
    GraphClient::new(config, KeyStore::new(std::path::Path::new(keys_dir))).unwrap()
}

/// Starts a sim with `users` generated users (plain HTTP on loopback when `https` is false).
pub async fn world(users: usize) -> World {
    world_with(SimConfig {
        users,
        https: false,
        ..SimConfig::default()
    })
    .await
}

/// Starts a sim with this configuration.
pub async fn world_with(cfg: SimConfig) -> World {
    let sim = m365_sim::start(cfg).await.expect("m365-sim starts");
    let (d1, keys, reader_id) = register(&sim, &PERMISSIONS).await;
    let (d2, wkeys, writer_id) = register(
        &sim,
        &[
            "User.ReadWrite.All",
            "Directory.ReadWrite.All",
            "GroupMember.ReadWrite.All",
            "Contacts.ReadWrite",
        ],
    )
    .await;
    let graph = Arc::new(GraphClient::new(config(&sim, &reader_id), keys).unwrap());
    let writer = GraphClient::new(config(&sim, &writer_id), wkeys).unwrap();
    World {
        reader_keys_dir: d1.path().to_path_buf(),
        sim,
        graph,
        writer,
        _dirs: vec![d1, d2],
        reader_client_id: reader_id,
    }
}

impl World {
    /// Every user as Graph lists it (the oracle the extensions are compared with).
    pub async fn users(&self) -> Vec<DirectoryUser> {
        self.graph.list_users().await.unwrap()
    }

    /// A service over `store` with `settings`.
    pub fn service(&self, store: &Store, settings: SyncSettings) -> SyncService {
        SyncService::new(
            store.clone(),
            self.graph.clone(),
            settings,
            NumberRules::default(),
            "http://127.0.0.1:9",
        )
        .without_subscriptions()
    }

    /// Creates a user through Graph; returns its id.
    pub async fn create_user(&self, body: serde_json::Value) -> String {
        let r = self
            .writer
            .send(GraphRequest::with_json(
                reqwest::Method::POST,
                "/users",
                body,
            ))
            .await
            .unwrap();
        let v: serde_json::Value = r.json().unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    /// Changes a user through Graph.
    pub async fn patch_user(&self, id: &str, body: serde_json::Value) {
        self.writer
            .send(GraphRequest::with_json(
                reqwest::Method::PATCH,
                format!("/users/{id}"),
                body,
            ))
            .await
            .unwrap();
    }

    /// Adds a user to a group through Graph.
    pub async fn add_member(&self, group: &str, user: &str) {
        let body = serde_json::json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{user}")});
        self.writer
            .send(GraphRequest::with_json(
                reqwest::Method::POST,
                format!("/groups/{group}/members/$ref"),
                body,
            ))
            .await
            .unwrap();
    }

    /// Removes a member from a group through Graph.
    pub async fn remove_member(&self, group: &str, member: &str) {
        let mut req = GraphRequest::get(format!("/groups/{group}/members/{member}/$ref"));
        req.method = reqwest::Method::DELETE;
        self.writer.send(req).await.unwrap();
    }

    /// A generated group with exactly the users `ids` as its direct members (others removed).
    pub async fn group_with_members(&self, ids: &[String]) -> String {
        let groups = self.graph.list_groups().await.unwrap();
        let group = groups
            .first()
            .expect("the generated tenant has groups")
            .id
            .clone();
        let direct: Vec<pbx365_graph::DirectoryObject> = self
            .graph
            .get_all(GraphRequest::get(format!(
                "/groups/{group}/members?$top=999"
            )))
            .await
            .unwrap();
        let current: Vec<String> = direct.into_iter().map(|m| m.id).collect();
        for m in current.iter().filter(|m| !ids.contains(m)) {
            self.remove_member(&group, m).await;
        }
        for id in ids.iter().filter(|id| !current.contains(id)) {
            self.add_member(&group, id).await;
        }
        group
    }

    /// Deletes a contact of `mailbox` through Graph.
    pub async fn delete_contact(&self, mailbox: &str, id: &str) {
        let mut req = GraphRequest::get(format!("/users/{mailbox}/contacts/{id}"));
        req.method = reqwest::Method::DELETE;
        self.writer.send(req).await.unwrap();
    }

    /// Deletes a user through Graph.
    pub async fn delete_user(&self, id: &str) {
        let mut req = GraphRequest::get(format!("/users/{id}"));
        req.method = reqwest::Method::DELETE;
        self.writer.send(req).await.unwrap();
    }

    /// Graph HTTP requests the sim counted (token requests and batch sub-requests excluded).
    #[allow(dead_code)]
    pub async fn graph_requests(&self) -> u64 {
        let stats = self.sim.control().stats().await.unwrap();
        // Photo routes are only ever reached as `$batch` sub-requests.
        let sub: u64 = stats
            .by_route
            .iter()
            .filter(|(k, _)| k.contains("/photo"))
            .map(|(_, v)| v)
            .sum();
        stats
            .by_route
            .iter()
            .filter(|(k, _)| k.contains(" /v1.0/"))
            .map(|(_, v)| v)
            .sum::<u64>()
            - sub
    }
}

/// Runs a users sync now.
pub async fn run(svc: &SyncService, full: bool) -> SyncRun {
    svc.run_now(
        SyncKind::Users,
        RunOptions {
            full,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// The synced extensions by Microsoft id.
pub async fn synced(store: &Store) -> std::collections::BTreeMap<String, Extension> {
    store
        .list_extensions()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.m365_id.clone().map(|id| (id, e)))
        .collect()
}

/// Settings for tests: defaults, quick poll.
pub fn settings() -> SyncSettings {
    SyncSettings {
        max_deletions: 50,
        max_deletion_percent: 10,
        ..SyncSettings::default()
    }
}

/// Waits until `check` holds (polling), failing after `secs`.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
