//! `pbx365 demo [--listen ADDR] [--users N] [--data-dir DIR]` (SPEC §8): an embedded m365-sim
//! tenant with a sample organisation, connected exactly as an admin connects a real tenant, a
//! first sync, and the console.
//!
//! The demo plays the admin. What Microsoft has no API for (the Entra admin center) goes through
//! the sim's `/_sim` control API: registering the app with pbx365's redirect URI and the five
//! application permissions, and uploading `public_key.pem`. Everything else is the product's
//! own path, over HTTP against the running server: console sign-in, the Configure page (client
//! ID, **Generate new key pair**, the `public_key.pem` download, **Sign in to Microsoft 365**),
//! the tenant's admin-consent page (accepted as the tenant's Global Administrator) and the
//! redirect back into pbx365's `/oauth2office2`, which records the tenant and the permissions.
//! The sync and the console then run through the settings `m365.authority_url`,
//! `m365.graph_url` and `m365.ca_file` — the same code as `pbx365 serve` with a real tenant.
//!
//! With a reused `--data-dir` the tenant is already connected; the fresh sim is told about the
//! existing app registration (same client id, same certificate, consent granted), as Microsoft
//! would remember it.

use anyhow::{anyhow, bail, Context};
use m365_sim::identity::apps::NewApp;
use m365_sim::{SimConfig, SimControl, SimHandle};
use pbx365_app::admins;
use pbx365_app::m365::{active_certificate, required_permissions};
use pbx365_app::sync::RunOptions;
use pbx365_domain::{SyncKind, SyncStatus};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The sample tenant's Global Administrator (signs the admin-consent page).
const TENANT_ADMIN: &str = "globaladmin";
/// The console pages the demo drives.
const M365: &str = "/console/settings/integrations/microsoft365";

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

/// A loopback port that is free now (UDP and TCP), for Kamailio.
fn free_port() -> anyhow::Result<u16> {
    for _ in 0..20 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port for Kamailio")
}

/// A TOML string literal.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Runs the demo until SIGINT/SIGTERM.
pub async fn run(base: pbx365_domain::settings::Settings, args: DemoArgs) -> anyhow::Result<()> {
    if args.users == 0 || args.users > 100_000 {
        bail!(
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
    let public_url = listen_settings
        .effective_public_url()
        .trim_end_matches('/')
        .to_string();

    eprintln!(
        "Starting the simulated Microsoft 365 tenant with {} users…",
        args.users
    );
    let admin_password = admins::random_password();
    let domain = SimConfig::default().domain;
    let admin_upn = format!("{TENANT_ADMIN}@{domain}");
    let seed = serde_json::json!({"users": [{
        "id": "6d1f0c2a-3b4e-4f5a-9c8d-7e6f5a4b3c2d",
        "userPrincipalName": admin_upn,
        "displayName": "Global Administrator",
        "mail": admin_upn,
        "password": admin_password,
    }]});
    let sim = m365_sim::start(SimConfig {
        users: args.users,
        seed: Some(seed),
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow!("the simulated Microsoft 365 tenant could not start: {e}"))?;
    let ca_file = data_dir.join("m365-sim-ca.pem");
    std::fs::write(&ca_file, sim.ca_pem.as_deref().unwrap_or_default())
        .with_context(|| format!("cannot write {}", ca_file.display()))?;

    // The settings an admin writes for a tenant behind these endpoints; the Configure page adds
    // the client id and the tenant (stored in the database, as the console does).
    let config_file = data_dir.join("pbx365.toml");
    let mut toml_text = format!(
        "# Written by `pbx365 demo`: pbx365 connected to a simulated Microsoft 365 tenant.\n\
         listen = {listen}\ndata_dir = {data}\n",
        listen = toml_str(&addr.to_string()),
        data = toml_str(&data_dir.display().to_string()),
    );
    if let Some(url) = &base.database_url {
        // A database chosen with --config or PBX365_DATABASE_URL (e.g. PostgreSQL) is kept.
        toml_text.push_str(&format!("database_url = {}\n", toml_str(url)));
    }
    toml_text.push_str(&format!(
        "\n[m365]\nauthority_url = {}\ngraph_url = {}\nca_file = {}\n",
        toml_str(sim.authority_url()),
        toml_str(sim.graph_url()),
        toml_str(&ca_file.display().to_string()),
    ));
    // Phones on loopback ports that are free now (a demo must not need port 5060).
    toml_text.push_str(&format!(
        "\n[sip]\nlisten = {}\nrpc_url = {}\n",
        toml_str(&format!("127.0.0.1:{}", free_port()?)),
        toml_str(&format!("http://127.0.0.1:{}/RPC", free_port()?)),
    ));
    std::fs::write(&config_file, toml_text)
        .with_context(|| format!("cannot write {}", config_file.display()))?;
    let settings = crate::config::load(Some(&config_file)).map_err(|e| anyhow!("{e}"))?;

    let (store, settings) = crate::commands::open(settings).await?;
    let console_password = if store.count_admins().await.map_err(|e| anyhow!("{e}"))? == 0 {
        let p = admins::random_password();
        admins::create_admin(&store, "admin", &p)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        Some(p)
    } else {
        None
    };
    let state = crate::commands::server_state(store, settings, &bound);
    let server = tokio::spawn(crate::commands::serve_state(state.clone(), bound));

    let control = sim.control();
    let permissions: Vec<String> = required_permissions()
        .iter()
        .map(|p| p.name.to_string())
        .collect();
    let redirect_uri = format!("{public_url}/oauth2office2");
    let current = state.settings();
    match (
        &current.m365.client_id,
        &current.m365.tenant_id,
        &console_password,
    ) {
        (Some(client_id), Some(_), _) => {
            remember_registration(&control, &state, client_id, &redirect_uri, &permissions).await?
        }
        (_, _, Some(pw)) => {
            eprintln!("Connecting Microsoft 365 through the Configure page, as an admin would…");
            connect_like_an_admin(
                &public_url,
                pw,
                &sim,
                &control,
                &redirect_uri,
                &permissions,
                &admin_upn,
                &admin_password,
            )
            .await?;
        }
        _ => bail!(
            "{} holds a console admin but no connected tenant; use a fresh --data-dir",
            data_dir.display()
        ),
    }
    let connected = state.settings();
    if connected.m365.tenant_id.as_deref() != Some(sim.tenant_id.as_str()) {
        bail!(
            "connecting the simulated tenant failed: pbx365 did not record tenant {}",
            sim.tenant_id
        );
    }

    eprintln!("Running the first user sync…");
    let svc = state.app.sync_service().await.map_err(|e| anyhow!("{e}"))?;
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
        bail!("the first sync failed: {why}");
    }
    // Ready means changes in the tenant arrive by change notification from now on, so the
    // subscriptions are made before the summary rather than at the worker's next step.
    if let Err(e) = svc.ensure_subscriptions(chrono::Utc::now()).await {
        tracing::warn!(error = %e, "change-notification subscriptions could not be set up; the delta poll keeps extensions current");
    }
    let samples = sample_sign_ins(&state, &admin_upn).await;

    let mut out = std::io::stdout().lock();
    writeln!(out, "pbx365 demo is ready.")?;
    writeln!(out, "  Console:        {public_url}/console")?;
    match &console_password {
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
        "  Microsoft 365 Global Administrator: {admin_upn} / {admin_password}"
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
        // Without the password the names are of no use; every generated user shares it.
        writeln!(
            out,
            "  Microsoft 365 sign-in names: {} (password {})",
            samples.join(", "),
            m365_sim::tenant::GENERATED_PASSWORD
        )?;
        writeln!(
            out,
            "                  for the web client and console once single sign-on is on (Settings › Integrations › Microsoft 365 › SSO)"
        )?;
    }
    for line in crate::sip_cmd::demo_lines(
        &state.settings(),
        crate::sip_cmd::runs_kamailio(&state.settings()),
    ) {
        writeln!(out, "{line}")?;
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

    let served = server
        .await
        .map_err(|e| anyhow!("the server task failed: {e}"))?;
    sim.shutdown().await;
    served
}

/// A reused data directory: the fresh sim learns the existing app registration (Microsoft keeps
/// registrations, certificates and consent).
async fn remember_registration(
    control: &SimControl,
    state: &pbx365_web::AppState,
    client_id: &str,
    redirect_uri: &str,
    permissions: &[String],
) -> anyhow::Result<()> {
    let cert = active_certificate(state.data_dir())
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| {
            anyhow!("the data directory holds a tenant but no key pair; use a fresh --data-dir")
        })?;
    control
        .create_app(&NewApp {
            display_name: "pbx365 demo".into(),
            redirect_uris: vec![redirect_uri.to_string()],
            certificate_pem: Some(cert.pem),
            permissions: permissions.to_vec(),
            consented: true,
            client_id: Some(client_id.to_string()),
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html.find(&marker)? + marker.len();
    Some(
        html[at..]
            .split('"')
            .next()?
            .replace("&#x2F;", "/")
            .replace("&amp;", "&"),
    )
}

fn location(res: &reqwest::Response) -> anyhow::Result<String> {
    res.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("expected a redirect, got HTTP {}", res.status()))
}

/// The admin's steps: register the app (Entra admin center), then pbx365's Configure page over
/// HTTP, the certificate upload, and the admin-consent round trip.
#[allow(clippy::too_many_arguments)]
async fn connect_like_an_admin(
    public_url: &str,
    console_password: &str,
    sim: &SimHandle,
    control: &SimControl,
    redirect_uri: &str,
    permissions: &[String],
    tenant_admin: &str,
    tenant_admin_password: &str,
) -> anyhow::Result<()> {
    let client_id = control
        .create_app(&NewApp {
            display_name: "pbx365 demo".into(),
            redirect_uris: vec![redirect_uri.to_string()],
            permissions: permissions.to_vec(),
            consented: false,
            ..Default::default()
        })
        .await
        .map_err(|e| anyhow!("{e}"))?;

    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("cannot build an HTTP client")?;
    let page = browser
        .get(format!("{public_url}/console/login"))
        .send()
        .await?
        .text()
        .await?;
    let login_csrf = hidden(&page, "login_csrf")
        .ok_or_else(|| anyhow!("the console sign-in page has no form"))?;
    let res = browser
        .post(format!("{public_url}/console/login"))
        .form(&[
            ("username", "admin"),
            ("password", console_password),
            ("login_csrf", &login_csrf),
            ("return_to", "/console"),
        ])
        .send()
        .await?;
    if res.status().as_u16() != 303 {
        bail!("signing in to the console failed (HTTP {})", res.status());
    }
    let configure = format!("{public_url}{M365}/configure");
    let csrf = {
        let page = browser.get(&configure).send().await?.text().await?;
        hidden(&page, "csrf").ok_or_else(|| anyhow!("the Configure page has no form"))?
    };
    let post = |action: &str, extra: Vec<(&'static str, String)>| {
        let mut form = vec![("csrf", csrf.clone())];
        form.extend(extra);
        browser
            .post(format!("{public_url}{M365}/{action}"))
            .form(&form)
            .send()
    };
    for (action, extra) in [
        ("client-id", vec![("client_id", client_id.clone())]),
        ("keygen", vec![]),
    ] {
        let res = post(action, extra).await?;
        if !res.status().is_redirection() {
            bail!(
                "the Configure page refused {action} (HTTP {})",
                res.status()
            );
        }
    }
    let pem = browser
        .get(format!("{public_url}{M365}/public_key.pem"))
        .send()
        .await?
        .text()
        .await?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        bail!("public_key.pem could not be downloaded from the Configure page");
    }
    control
        .add_certificate(&client_id, &pem)
        .await
        .map_err(|e| anyhow!("{e}"))?;

    // "Sign in to Microsoft 365": to the tenant's consent page, accept, and back.
    let consent_url = location(&post("signin", vec![]).await?)?;
    let sim_http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(
            sim.ca_pem.as_deref().unwrap_or_default().as_bytes(),
        )?)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = sim_http.get(&consent_url).send().await?;
    if page.status().as_u16() != 200 {
        bail!("the consent page answered HTTP {}", page.status());
    }
    let url = url::Url::parse(&consent_url)?;
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("login".into(), tenant_admin.into()));
    form.push(("passwd".into(), tenant_admin_password.into()));
    form.push(("action".into(), "accept".into()));
    let mut post_url = url.clone();
    post_url.set_query(None);
    let back = location(&sim_http.post(post_url).form(&form).send().await?)?;
    if !back.starts_with(redirect_uri) {
        bail!("the consent page did not send the browser back to pbx365 ({back})");
    }
    let res = browser.get(&back).send().await?;
    if !res.status().is_redirection() {
        bail!(
            "pbx365 did not accept the admin consent (HTTP {})",
            res.status()
        );
    }
    Ok(())
}

/// A few synced users' e-mail addresses (their Microsoft 365 sign-in names in the sample org).
async fn sample_sign_ins(state: &pbx365_web::AppState, skip: &str) -> Vec<String> {
    let Ok(exts) = state.store.list_extensions().await else {
        return Vec::new();
    };
    exts.iter()
        .filter(|e| e.m365_id.is_some() && e.enabled)
        .filter_map(|e| e.email.clone())
        .filter(|m| m != skip)
        .take(3)
        .collect()
}
