//! Test helper of the test kit: runs one user sync against the Graph and database named by
//! environment variables, prints the run as JSON, and exits. The crash test kills it with SIGKILL
//! mid-run (found through `pbx365_testkit::process::sync_once_bin`).
//!
//! `SYNC_DB_URL`, `SYNC_GRAPH_URL` (also the authority), `SYNC_TENANT`, `SYNC_CLIENT_ID`,
//! `SYNC_DATA_DIR` (holds `m365/credential.pem`), optional `SYNC_CA_FILE`, `SYNC_FULL=1`.

use pbx365_domain::settings::SyncSettings;
use pbx365_domain::NumberRules;
use pbx365_graph::keys::KeyStore;
use pbx365_graph::{GraphClient, GraphConfig};
use pbx365_store::Store;
use pbx365_sync::{RunOptions, UserSync};
use std::sync::Arc;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("sync-once: {name} is not set");
        std::process::exit(2)
    })
}

#[tokio::main]
async fn main() {
    // reqwest is built without a default rustls provider: the binary picks aws-lc-rs.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let store = Store::connect(&var("SYNC_DB_URL"))
        .await
        .unwrap_or_else(|e| {
            eprintln!("sync-once: {e}");
            std::process::exit(1)
        });
    let graph_url = var("SYNC_GRAPH_URL");
    let config = GraphConfig {
        authority_url: graph_url.clone(),
        graph_url,
        tenant_id: Some(var("SYNC_TENANT")),
        client_id: Some(var("SYNC_CLIENT_ID")),
        extra_ca_pem: std::env::var("SYNC_CA_FILE")
            .ok()
            .and_then(|p| std::fs::read(p).ok()),
        ..GraphConfig::default()
    };
    let keys = KeyStore::new(std::path::Path::new(&var("SYNC_DATA_DIR")));
    let graph = Arc::new(GraphClient::new(config, keys).unwrap_or_else(|e| {
        eprintln!("sync-once: {e}");
        std::process::exit(1)
    }));
    let engine = UserSync::new(
        store,
        graph,
        SyncSettings::default(),
        NumberRules::default(),
    );
    let opts = RunOptions {
        full: std::env::var("SYNC_FULL").is_ok_and(|v| v == "1"),
        ..Default::default()
    };
    match engine.run(&opts).await {
        Ok(run) => println!("{}", serde_json::to_string(&run).unwrap_or_default()),
        Err(e) => {
            eprintln!("sync-once: {e}");
            std::process::exit(1)
        }
    }
}
