//! `pbx365 demo [--listen ADDR] [--users N] [--data-dir DIR]` (SPEC §8): an embedded m365-sim
//! tenant with a sample organisation, connected exactly as an admin connects a real tenant, a
//! first sync, and the console.
//!
//! The only simulator-specific steps are the ones an admin does by hand in the Microsoft Entra
//! admin center, which Microsoft has no API for: registering the app (with pbx365's redirect URI
//! and the five application permissions), uploading `public_key.pem`, and granting admin consent
//! (through the sim's `/_sim/apps/{id}/permissions` with `consented: true`, the equivalent of the
//! "Grant admin consent" button; the browser round trip through `/oauth2office2` needs a person
//! at the consent page). Everything after that — tokens signed with the generated key, Graph
//! reads, the sync, the console — runs through the settings `m365.authority_url`,
//! `m365.graph_url` and `m365.ca_file`, the same code path as `pbx365 serve` with a real tenant.

use anyhow::{anyhow, Context};
use m365_sim::identity::apps::NewApp;
use m365_sim::SimConfig;
use pbx365_domain::{SyncKind, SyncStatus};
use pbx365_graph::keys::host_of;
use pbx365_graph::{required_permissions, KeyStore, Slot};
use pbx365_sync::RunOptions;
use pbx365_web::{auth, password};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

/// What `pbx365 demo` was asked for.
#[derive(Debug, Clone)]
pub struct DemoArgs {
    /// Address of the console (port 0 picks a free one).
    pub listen: String,
    /// Users in the sample organisation.
    pub users: usize,
    /// Where pbx365 keeps its data (a fresh temporary directory when absent).
    pub data_dir: Option<PathBuf>,
}

fn fresh_data_dir() -> PathBuf {
    use rand::Rng;
    let tag: u64 = rand::thread_rng().gen();
    std::env::temp_dir().join(format!("pbx365-demo-{}-{tag:016x}", std::process::id()))
}

/// A TOML string literal.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Runs the demo until SIGINT/SIGTERM.
pub async fn run(base: pbx365_domain::settings::Settings, args: DemoArgs) -> anyhow::Result<()> {
    if args.users == 0 || args.users > 100_000 {
        anyhow::bail!(
            "--users must be between 1 and 100000 (you asked for {})",
            args.users
        );
    }
    let data_dir = args.data_dir.clone().unwrap_or_else(fresh_data_dir);
    crate::commands::ensure_data_dir(&data_dir)?;
    let data_dir = data_dir
        .canonicalize()
        .with_context(|| format!("cannot use the data directory {}", data_dir.display()))?;

    // pbx365's address first: the app registration needs the redirect URI.
    let mut listen_settings = pbx365_domain::settings::Settings {
        listen: args.listen.clone(),
        ..Default::default()
    };
    let bound = crate::commands::bind(&listen_settings).await?;
    let addr: SocketAddr = bound.local_addr();
    listen_settings.listen = addr.to_string();
    let public_url = listen_settings.effective_public_url();

    eprintln!(
        "Starting the simulated Microsoft 365 tenant with {} users…",
        args.users
    );
    let sim = m365_sim::start(SimConfig {
        users: args.users,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow!("the simulated Microsoft 365 tenant could not start: {e}"))?;
    let ca_file = data_dir.join("m365-sim-ca.pem");
    std::fs::write(&ca_file, sim.ca_pem.as_deref().unwrap_or_default())
        .with_context(|| format!("cannot write {}", ca_file.display()))?;

    // Step 3 of the Configure page: the key pair; public_key.pem is what the admin uploads.
    let keys = KeyStore::new(&data_dir);
    let certificate_pem = if keys.exists(Slot::Active) {
        let cred = keys
            .load(Slot::Active)
            .map_err(|e| anyhow!("{e}"))?
            .ok_or_else(|| anyhow!("the key pair in {} is unreadable", keys.dir().display()))?;
        cred.certificate().pem.clone()
    } else {
        keys.generate(&host_of(&public_url))
            .map_err(|e| anyhow!("{e}"))?
            .certificate
            .pem
    };
    let public_key_pem = data_dir.join("public_key.pem");
    std::fs::write(&public_key_pem, &certificate_pem)
        .with_context(|| format!("cannot write {}", public_key_pem.display()))?;

    // What the admin does in the Entra admin center: register, upload, grant consent.
    let control = sim.control();
    let permissions: Vec<String> = required_permissions()
        .iter()
        .map(|p| p.name.to_string())
        .collect();
    let redirect_uri = format!("{}/oauth2office2", public_url.trim_end_matches('/'));
    let client_id = control
        .create_app(&NewApp {
            display_name: "pbx365 demo".into(),
            redirect_uris: vec![redirect_uri],
            permissions: permissions.clone(),
            consented: false,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow!("{e}"))?;
    control
        .add_certificate(&client_id, &certificate_pem)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let refs: Vec<&str> = permissions.iter().map(String::as_str).collect();
    control
        .set_permissions(&client_id, &refs, true)
        .await
        .map_err(|e| anyhow!("{e}"))?;

    // The settings an admin writes for a tenant behind these endpoints.
    let config_file = data_dir.join("pbx365.toml");
    let toml_text = format!(
        "# Written by `pbx365 demo`: pbx365 connected to a simulated Microsoft 365 tenant.\n\
         listen = {listen}\ndata_dir = {data}\n\n[m365]\nclient_id = {client}\ntenant_id = {tenant}\n\
         authority_url = {authority}\ngraph_url = {graph}\nca_file = {ca}\n",
        listen = toml_str(&addr.to_string()),
        data = toml_str(&data_dir.display().to_string()),
        client = toml_str(&client_id),
        tenant = toml_str(&sim.tenant_id),
        authority = toml_str(sim.authority_url()),
        graph = toml_str(sim.graph_url()),
        ca = toml_str(&ca_file.display().to_string()),
    );
    let mut toml_text = toml_text;
    if let Some(url) = &base.database_url {
        // A database chosen with --config or PBX365_DATABASE_URL (e.g. PostgreSQL) is kept.
        toml_text = toml_text.replace(
            "\n\n[m365]",
            &format!("\ndatabase_url = {}\n\n[m365]", toml_str(url)),
        );
    }
    std::fs::write(&config_file, toml_text)
        .with_context(|| format!("cannot write {}", config_file.display()))?;
    let settings = crate::config::load(Some(&config_file)).map_err(|e| anyhow!("{e}"))?;

    let (store, settings) = crate::commands::open(settings).await?;
    let password = if store.count_admins().await.map_err(|e| anyhow!("{e}"))? == 0 {
        let p = auth::random_password();
        let hash = password::hash_password(&p).map_err(|e| anyhow!("{e}"))?;
        store
            .create_admin("admin", &hash)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        Some(p)
    } else {
        None
    };
    let state = crate::commands::server_state(store, settings, &bound);

    eprintln!("Running the first user sync…");
    let svc = state
        .sync
        .service(&state)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let run = svc
        .run_now(
            SyncKind::Users,
            RunOptions {
                full: true,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow!("the first sync could not run: {e}"))?;
    if run.status == SyncStatus::Failed {
        let why = run
            .report
            .errors
            .first()
            .and_then(|e| e.reason.clone())
            .unwrap_or_default();
        anyhow::bail!("the first sync failed: {why}");
    }
    let samples = sample_sign_ins(&state).await;

    let mut out = std::io::stdout().lock();
    writeln!(out, "pbx365 demo is ready.")?;
    writeln!(
        out,
        "  Console:        {}/console",
        public_url.trim_end_matches('/')
    )?;
    match &password {
        Some(p) => writeln!(out, "  Admin login:    admin / {p}   (shown once)")?,
        None => writeln!(
            out,
            "  Admin login:    admin (the password printed when {} was first used)",
            data_dir.display()
        )?,
    }
    writeln!(
        out,
        "  Simulated Microsoft 365: {} (tenant {}, CA {})",
        sim.base_url,
        sim.tenant_id,
        ca_file.display()
    )?;
    writeln!(
        out,
        "  First sync:     {} created, {} updated, {} skipped (run {})",
        run.report.created.len(),
        run.report.updated.len(),
        run.report.skipped.len(),
        run.id
    )?;
    if !samples.is_empty() {
        writeln!(out, "  Microsoft 365 sign-in names: {}", samples.join(", "))?;
    }
    writeln!(out, "  Data directory: {}", data_dir.display())?;
    writeln!(
        out,
        "  Other commands: pbx365 --config {} sync users | ext list",
        config_file.display()
    )?;
    writeln!(out, "Stop with Ctrl+C.")?;
    out.flush()?;
    drop(out);

    let served = crate::commands::serve_state(state, bound).await;
    sim.shutdown().await;
    served
}

/// A few synced users' e-mail addresses (their Microsoft 365 sign-in names in the sample org).
async fn sample_sign_ins(state: &pbx365_web::AppState) -> Vec<String> {
    let Ok(exts) = state.store.list_extensions().await else {
        return Vec::new();
    };
    exts.iter()
        .filter(|e| e.m365_id.is_some() && e.enabled)
        .filter_map(|e| e.email.clone())
        .take(3)
        .collect()
}
