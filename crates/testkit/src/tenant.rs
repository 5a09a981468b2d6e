//! A simulated Microsoft 365 tenant: m365-sim in-process, pbx365's app registered with a real key
//! pair (certificate, permissions, consent), the sim's CA, and ready Graph clients.

use m365_sim::identity::apps::NewApp;
use m365_sim::{SimConfig, SimControl, SimHandle};
use pbx365_domain::settings::{AssertionAlg, SyncSettings};
use pbx365_domain::{DirectoryUser, NumberRules};
use pbx365_graph::keys::{KeyStore, Slot};
use pbx365_graph::{GraphClient, GraphConfig, RetryPolicy};
use pbx365_store::Store;
use pbx365_sync::SyncService;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The five permissions pbx365 asks for.
pub const PERMISSIONS: [&str; 5] = [
    "Calendars.Read",
    "Contacts.Read",
    "Directory.Read.All",
    "Mail.Send",
    "User.Read.All",
];

/// The permissions of the writer app that changes the tenant through Graph's write API.
pub const WRITER_PERMISSIONS: [&str; 4] = [
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "Contacts.ReadWrite",
];

/// Retries that ride out the sim's injected faults (throttling with `Retry-After`, outages).
pub const PATIENT_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 10,
    min_delay: Duration::from_millis(100),
    max_delay: Duration::from_secs(2),
    max_retry_after: Duration::from_secs(5),
};

/// Quick retries, for tests that only meet the odd transient failure.
pub const QUICK_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 6,
    min_delay: Duration::from_millis(50),
    max_delay: Duration::from_millis(500),
    max_retry_after: Duration::from_secs(2),
};

/// A running sim over HTTPS with `users` generated users.
pub async fn sim(users: usize) -> SimHandle {
    start_sim(SimConfig {
        users,
        ..SimConfig::default()
    })
    .await
}

/// A running sim with this configuration.
pub async fn start_sim(config: SimConfig) -> SimHandle {
    m365_sim::start(config).await.expect("m365-sim starts")
}

/// Writes the sim's CA certificate to `dir/sim-ca.pem` (what `m365.ca_file` names) and returns
/// its path.
pub fn write_ca(sim: &SimHandle, dir: &Path) -> PathBuf {
    let path = dir.join("sim-ca.pem");
    std::fs::write(&path, sim.ca_pem.as_deref().expect("the sim serves HTTPS"))
        .expect("write the sim's CA");
    path
}

/// An app registration for `permissions` (no credential yet), admin consent granted or not.
pub fn new_app(display_name: &str, permissions: &[&str], consented: bool) -> NewApp {
    NewApp {
        display_name: display_name.into(),
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
        consented,
        ..NewApp::default()
    }
}

/// pbx365's side: a data dir with a key pair, and the app registered in the sim.
pub struct Pbx {
    /// Holds the key files.
    pub dir: tempfile::TempDir,
    /// The key store in `dir`.
    pub keys: KeyStore,
    /// The app's client id.
    pub client_id: String,
}

/// Generates a key pair and registers an app with its certificate and `permissions`.
pub async fn register(sim: &SimHandle, permissions: &[&str], consented: bool) -> Pbx {
    register_at(&sim.control(), "pbx365", permissions, consented).await
}

/// [`register`] through a control client (also one of a sim in another process).
pub async fn register_at(
    control: &SimControl,
    display_name: &str,
    permissions: &[&str],
    consented: bool,
) -> Pbx {
    let dir = tempfile::tempdir().expect("temp dir");
    let (keys, client_id) =
        register_in(control, dir.path(), display_name, permissions, consented).await;
    Pbx {
        dir,
        keys,
        client_id,
    }
}

/// Generates a key pair in `keys_dir` and registers an app with its certificate; returns the
/// key store and the app's client id.
pub async fn register_in(
    control: &SimControl,
    keys_dir: &Path,
    display_name: &str,
    permissions: &[&str],
    consented: bool,
) -> (KeyStore, String) {
    let keys = KeyStore::new(keys_dir);
    let generated = keys.generate("pbx.test").expect("generate a key pair");
    assert_eq!(generated.slot, Slot::Active);
    let client_id = control
        .create_app(&NewApp {
            certificate_pem: Some(generated.certificate.pem.clone()),
            ..new_app(display_name, permissions, consented)
        })
        .await
        .expect("app registered in the sim");
    (keys, client_id)
}

/// Settings-equivalent configuration pointing at the sim, with [`PATIENT_RETRY`].
pub fn config(sim: &SimHandle, client_id: &str, alg: AssertionAlg) -> GraphConfig {
    config_with(sim, client_id, alg, PATIENT_RETRY)
}

/// Configuration pointing at the sim (its CA trusted) with these retries.
pub fn config_with(
    sim: &SimHandle,
    client_id: &str,
    alg: AssertionAlg,
    retry: RetryPolicy,
) -> GraphConfig {
    GraphConfig {
        authority_url: sim.authority_url().to_string(),
        graph_url: sim.graph_url().to_string(),
        tenant_id: Some(sim.tenant_id.clone()),
        client_id: Some(client_id.to_string()),
        assertion_alg: alg,
        extra_ca_pem: sim.ca_pem.clone().map(String::into_bytes),
        retry,
        ..GraphConfig::default()
    }
}

/// A client for `pbx` against `sim`.
pub fn client(sim: &SimHandle, pbx: &Pbx, alg: AssertionAlg) -> GraphClient {
    GraphClient::new(config(sim, &pbx.client_id, alg), pbx.keys.clone()).expect("Graph client")
}

/// Requests to the token endpoint counted by the sim.
pub async fn token_requests(sim: &SimHandle) -> u64 {
    let stats = sim.control().stats().await.expect("sim stats");
    stats
        .by_route
        .iter()
        .filter(|(k, _)| k.contains("oauth2/v2.0/token"))
        .map(|(_, v)| v)
        .sum()
}

/// Graph HTTP requests the sim counted (token requests and batch sub-requests excluded: photo
/// routes are only ever reached as `$batch` sub-requests).
pub async fn graph_requests(sim: &SimHandle) -> u64 {
    let stats = sim.control().stats().await.expect("sim stats");
    stats
        .by_route
        .iter()
        .filter(|(route, _)| {
            pbx365_graph::client::is_api_path(route) && !pbx365_graph::photos::is_photo_path(route)
        })
        .map(|(_, n)| n)
        .sum()
}

/// A running sim plus pbx365's reader client and a writer client.
pub struct World {
    /// The simulated tenant.
    pub sim: SimHandle,
    /// pbx365's client (the five permissions).
    pub graph: Arc<GraphClient>,
    /// A client with [`WRITER_PERMISSIONS`], to change the tenant.
    pub writer: GraphClient,
    /// Keeps the key files alive.
    pub _dirs: Vec<tempfile::TempDir>,
    /// pbx365's app id.
    pub reader_client_id: String,
    /// The data dir holding pbx365's key (`m365/credential.pem`).
    pub reader_keys_dir: PathBuf,
}

/// Starts a sim with `users` generated users (plain HTTP on loopback).
pub async fn world(users: usize) -> World {
    world_with(SimConfig {
        users,
        https: false,
        ..SimConfig::default()
    })
    .await
}

/// Starts a sim with this configuration and registers pbx365's app and a writer app.
pub async fn world_with(cfg: SimConfig) -> World {
    let sim = start_sim(cfg).await;
    let reader = register(&sim, &PERMISSIONS, true).await;
    let writer = register(&sim, &WRITER_PERMISSIONS, true).await;
    let quick = |id: &str| config_with(&sim, id, AssertionAlg::PS256, QUICK_RETRY);
    let graph = Arc::new(GraphClient::new(quick(&reader.client_id), reader.keys).unwrap());
    let writer_client = GraphClient::new(quick(&writer.client_id), writer.keys).unwrap();
    World {
        reader_keys_dir: reader.dir.path().to_path_buf(),
        graph,
        writer: writer_client,
        _dirs: vec![reader.dir, writer.dir],
        reader_client_id: reader.client_id,
        sim,
    }
}

impl World {
    /// Every user as Graph lists it (the oracle the extensions are compared with).
    pub async fn users(&self) -> Vec<DirectoryUser> {
        self.graph.list_users().await.unwrap()
    }

    /// A sync service over `store` with `settings` (no subscriptions).
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
            .send(pbx365_graph::users::create_request(body))
            .await
            .unwrap();
        let v: serde_json::Value = r.json().unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    /// Changes a user through Graph.
    pub async fn patch_user(&self, id: &str, body: serde_json::Value) {
        self.writer
            .send(pbx365_graph::users::update_request(id, body))
            .await
            .unwrap();
    }

    /// Deletes a user through Graph.
    pub async fn delete_user(&self, id: &str) {
        delete_user(&self.writer, id).await;
    }

    /// Deletes a contact of `mailbox` through Graph.
    pub async fn delete_contact(&self, mailbox: &str, id: &str) {
        let req = pbx365_graph::contacts::delete_request(mailbox, id);
        self.writer.send(req).await.unwrap();
    }

    /// Creates a contact in `mailbox` (its default folder, or `folder`) through Graph; returns its id.
    pub async fn create_contact(
        &self,
        mailbox: &str,
        folder: Option<&str>,
        body: serde_json::Value,
    ) -> String {
        let req = pbx365_graph::contacts::create_request(mailbox, folder, body);
        let v: serde_json::Value = self.writer.send(req).await.unwrap().json().unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    /// Changes a contact of `mailbox` through Graph.
    pub async fn update_contact(&self, mailbox: &str, id: &str, body: serde_json::Value) {
        let req = pbx365_graph::contacts::update_request(mailbox, id, body);
        self.writer.send(req).await.unwrap();
    }

    /// Creates a contact folder under `mailbox`'s default one through Graph; returns its id.
    pub async fn create_contact_folder(&self, mailbox: &str, name: &str) -> String {
        let req = pbx365_graph::contacts::create_folder_request(mailbox, name);
        let v: serde_json::Value = self.writer.send(req).await.unwrap().json().unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    /// Adds a user to a group through Graph.
    pub async fn add_member(&self, group: &str, user: &str) {
        let req = pbx365_graph::groups::add_member_request(group, user);
        self.writer.send(req).await.unwrap();
    }

    /// Removes a member from a group through Graph.
    pub async fn remove_member(&self, group: &str, member: &str) {
        let req = pbx365_graph::groups::remove_member_request(group, member);
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
            .get_all(pbx365_graph::groups::members_request(&group))
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

    /// Graph HTTP requests the sim counted (token requests and batch sub-requests excluded).
    pub async fn graph_requests(&self) -> u64 {
        graph_requests(&self.sim).await
    }
}

/// Creates a shared mailbox (a disabled member account with mail) holding `contacts` in its
/// default Contacts folder, through Graph with a writer app registered for it.
pub async fn create_shared_mailbox(sim: &SimHandle, address: &str, contacts: &[serde_json::Value]) {
    let pbx = register(sim, &WRITER_PERMISSIONS, true).await;
    let writer = client(sim, &pbx, AssertionAlg::PS256);
    let nick = address.split('@').next().unwrap_or(address);
    let user = serde_json::json!({"displayName": nick, "userPrincipalName": address,
        "mail": address, "accountEnabled": false, "mailNickname": nick, "userType": "Member",
        "passwordProfile": {"password": "Unused-Pa55word!"}});
    writer
        .send(pbx365_graph::users::create_request(user))
        .await
        .unwrap();
    for body in contacts {
        let req = pbx365_graph::contacts::create_request(address, None, body.clone());
        writer.send(req).await.unwrap();
    }
}

/// Deletes these contacts of `mailbox` through Graph (as its owner would in Outlook).
pub async fn delete_contacts(sim: &SimHandle, mailbox: &str, ids: &[String]) {
    let pbx = register(sim, &WRITER_PERMISSIONS, true).await;
    let writer = client(sim, &pbx, AssertionAlg::PS256);
    for id in ids {
        let req = pbx365_graph::contacts::delete_request(mailbox, id);
        writer.send(req).await.unwrap();
    }
}

/// Deletes a user through Graph with `writer`.
pub async fn delete_user(writer: &GraphClient, id: &str) {
    writer
        .send(pbx365_graph::users::delete_request(id))
        .await
        .unwrap();
}

/// pbx365's Graph client for a sim at `url` over plain HTTP, from an app registration made by
/// [`world_with`] (for a child process working against its parent's sim).
pub fn client_at(url: &str, tenant: &str, client_id: &str, keys_dir: &Path) -> GraphClient {
    let config = GraphConfig {
        authority_url: url.to_string(),
        graph_url: url.to_string(),
        tenant_id: Some(tenant.to_string()),
        client_id: Some(client_id.to_string()),
        ..GraphConfig::default()
    };
    GraphClient::new(config, KeyStore::new(keys_dir)).expect("Graph client")
}
