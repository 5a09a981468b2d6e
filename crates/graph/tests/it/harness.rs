//! Starting the sim and an app registration for pbx365.

use m365_sim::identity::apps::NewApp;
use m365_sim::{SimConfig, SimHandle};
use pbx365_domain::settings::AssertionAlg;
use pbx365_graph::keys::{KeyStore, Slot};
use pbx365_graph::{GraphClient, GraphConfig, RetryPolicy};
use std::time::Duration;

/// The five permissions pbx365 asks for.
pub const ALL_PERMISSIONS: [&str; 5] = [
    "Calendars.Read",
    "Contacts.Read",
    "Directory.Read.All",
    "Mail.Send",
    "User.Read.All",
];

/// A running sim with `users` generated users.
pub async fn sim(users: usize) -> SimHandle {
    m365_sim::start(SimConfig {
        users,
        ..SimConfig::default()
    })
    .await
    .expect("m365-sim starts")
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
    let dir = tempfile::tempdir().unwrap();
    let keys = KeyStore::new(dir.path());
    let generated = keys.generate("pbx.test").unwrap();
    assert_eq!(generated.slot, Slot::Active);
    let client_id = sim
        .control()
        .create_app(&NewApp {
            display_name: "pbx365".into(),
            certificate_pem: Some(generated.certificate.pem.clone()),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            consented,
            ..NewApp::default()
        })
        .await
        .unwrap();
    Pbx {
        dir,
        keys,
        client_id,
    }
}

/// Settings-equivalent configuration pointing at the sim, with quick retries.
pub fn config(sim: &SimHandle, client_id: &str, alg: AssertionAlg) -> GraphConfig {
    GraphConfig {
        authority_url: sim.authority_url().to_string(),
        graph_url: sim.graph_url().to_string(),
        tenant_id: Some(sim.tenant_id.clone()),
        client_id: Some(client_id.to_string()),
        assertion_alg: alg,
        extra_ca_pem: sim.ca_pem.clone().map(String::into_bytes),
        retry: RetryPolicy {
            max_attempts: 10,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(5),
        },
        ..GraphConfig::default()
    }
}

/// A client for `pbx` against `sim`.
pub fn client(sim: &SimHandle, pbx: &Pbx, alg: AssertionAlg) -> GraphClient {
    GraphClient::new(config(sim, &pbx.client_id, alg), pbx.keys.clone()).unwrap()
}

/// Requests to the token endpoint counted by the sim.
pub async fn token_requests(sim: &SimHandle) -> u64 {
    let stats = sim.control().stats().await.unwrap();
    stats
        .by_route
        .iter()
        .filter(|(k, _)| k.contains("oauth2/v2.0/token"))
        .map(|(_, v)| v)
        .sum()
}

/// Log output captured in memory (a `tracing_subscriber` writer).
#[derive(Clone, Default)]
pub struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Buffer {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
