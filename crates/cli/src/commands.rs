//! The commands: each opens the store with the effective settings and does one thing.

use anyhow::{anyhow, bail, Context};
use pbx365_app::extensions::ExtensionView;
use pbx365_app::{admins, credentials, password};
use pbx365_domain::settings::Settings;
use pbx365_store::Store;
use pbx365_web::{server, AppState};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

/// Creates the data directory (mode 0700: it holds the private key and the SQLite file).
pub(crate) fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| {
        anyhow!(
            "cannot create the data directory {}: {}",
            dir.display(),
            crate::config::io_reason(&e)
        )
    })
}

/// Opens the database and applies the settings stored by the console over file and environment.
pub(crate) async fn open(settings: Settings) -> anyhow::Result<(Store, Settings)> {
    ensure_data_dir(&settings.data_dir)?;
    let store = Store::connect(&settings.effective_database_url())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let effective = pbx365_app::settings::load(&store, &settings)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    Ok((store, effective))
}

/// `pbx365 serve`.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let (store, settings) = open(settings).await?;
    // A private key others can read is a leaked key: refuse to run with it (security checklist R5.2).
    pbx365_app::m365::check_key_file_modes(&settings.data_dir).map_err(|e| anyhow!("{e}"))?;
    first_admin(&store, &settings.data_dir).await?;
    let bound = bind(&settings).await?;
    let state = server_state(store, settings, &bound);
    serve_state(state, bound).await
}

/// Binds the listen address (and loads the TLS files) of `settings`.
pub(crate) async fn bind(settings: &Settings) -> anyhow::Result<server::Bound> {
    let tls = settings.tls.as_ref().map(|t| server::TlsFiles {
        cert_file: t.cert_file.clone(),
        key_file: t.key_file.clone(),
    });
    server::bind(&settings.listen, tls.as_ref())
        .await
        .map_err(|e| anyhow!("{e}"))
}

/// The application state for a server bound at `bound`.
pub(crate) fn server_state(
    store: Store,
    mut settings: Settings,
    bound: &server::Bound,
) -> AppState {
    // With port 0 the real port is known only now; the default public URL must carry it.
    settings.listen = bound.local_addr().to_string();
    AppState::new(store, settings)
}

/// Starts the user sync's background work (when Microsoft 365 is connected) and serves until
/// SIGINT/SIGTERM (`pbx365 serve` and `pbx365 demo`).
pub(crate) async fn serve_state(state: AppState, bound: server::Bound) -> anyhow::Result<()> {
    let addr = bound.local_addr();
    let public_url = state.settings().effective_public_url();
    state.app.enable_background_sync();
    state.app.refresh_sync().await;
    let watcher = state.app.watch_sync(std::time::Duration::from_secs(10));
    let expiry = state.app.watch_certificate_expiry();
    let mail = state.app.start_mail_worker();
    let calendar = state.app.start_calendar_worker();
    let pruning = start_pruning(&state);
    let kamailio = crate::sip_cmd::start(&state).await?;
    let ldap = start_ldap(&state).await?;
    let _ = pbx365_web::metrics::handle();
    let app = pbx365_web::router(state.clone());
    println!(
        "pbx365 is serving on {}://{addr} (public URL {public_url})",
        bound.scheme()
    );
    std::io::stdout().flush().ok();
    tracing::info!(%addr, %public_url, "serving");
    let served = server::serve(bound, app, shutdown_signal())
        .await
        .map_err(|e| anyhow!("{e}"));
    watcher.abort();
    expiry.abort();
    mail.stop();
    calendar.stop();
    pruning.abort();
    if let Some(l) = ldap {
        l.abort();
    }
    if let Some(k) = kamailio {
        k.stop().await;
    }
    state.app.stop_sync().await;
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Starts the read-only LDAP directory for desk phones when `[phonebook] ldap_listen` is set
/// (SPEC §5); a start-up problem (address taken, bad certificate) stops `serve` with its sentence.
async fn start_ldap(state: &AppState) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let settings = state.settings();
    let p = &settings.phonebook;
    let Some(addr) = p.ldap_listen.as_deref() else {
        return Ok(None);
    };
    let tls = p.ldap_tls_cert.as_deref().zip(p.ldap_tls_key.as_deref());
    let bound = pbx365_ldap::bind(addr, tls)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    if p.ldap_bind_password.is_none() && !p.ldap_anonymous {
        tracing::warn!(
            "the LDAP directory has no bind password and anonymous searches are off: \
             every search is refused (Settings › Phonebook)"
        );
    }
    println!(
        "pbx365 LDAP directory on {}://{} (base {})",
        bound.scheme(),
        bound.local_addr(),
        p.ldap_base_dn
    );
    let app = state.app.clone();
    Ok(Some(tokio::spawn(pbx365_ldap::serve(
        bound,
        app,
        std::future::pending(),
    ))))
}

/// How often an instance asks whether the daily pruning is due (cheap: a lease and a key).
const PRUNE_CHECK: std::time::Duration = std::time::Duration::from_secs(600);

/// Starts the daily pruning of expired sessions, old notification keys and old sync runs
/// (`retention_days`); one instance of a cluster does it, under the `prune` lease.
fn start_pruning(state: &AppState) -> tokio::task::JoinHandle<()> {
    let policy = *state.sessions.policy();
    let settings = state.clone();
    pbx365_sync::retention::start(
        state.store.clone(),
        move || pbx365_sync::retention::Retention {
            days: settings.settings().retention_days,
            session_idle: policy.idle,
            session_absolute: policy.absolute,
        },
        PRUNE_CHECK,
    )
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// On the very first start there is no way into the console: create `admin` with a random
/// password written to a 0600 file in `data_dir`. Only the file's path is printed and logged:
/// stdout and the log end up in journald or container logs, which many people can read.
async fn first_admin(store: &Store, data_dir: &Path) -> anyhow::Result<()> {
    if let Some(path) = credentials::create_first_admin_with_file(store, data_dir)
        .await
        .map_err(|e| anyhow!("{e}"))?
    {
        // An absolute path: a relative data_dir says nothing in a service's log.
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        println!(
            "Created the console admin `admin`; its one-time password is in {} (readable by this user only).",
            path.display()
        );
        println!("Sign in at /console and change it under Settings > Password; the file is removed then.");
        tracing::info!(file = %path.display(), "created the first console admin `admin`; password written to the file");
    }
    Ok(())
}

/// `pbx365 ext list [--json]`.
pub async fn ext_list(settings: Settings, json: bool) -> anyhow::Result<()> {
    let (store, _) = open(settings).await?;
    let all = store.list_extensions().await.map_err(|e| anyhow!("{e}"))?;
    let views: Vec<ExtensionView> = all.iter().map(ExtensionView::from).collect();
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &views)?;
        writeln!(out)?;
        return Ok(());
    }
    let rows: Vec<[String; 7]> = views
        .iter()
        .map(|v| {
            [
                v.number.clone(),
                v.display_name.clone(),
                v.email.clone().unwrap_or_default(),
                v.source.as_str().to_string(),
                if v.enabled { "yes" } else { "no" }.to_string(),
                v.profile.as_str().to_string(),
                v.groups.join(", "),
            ]
        })
        .collect();
    let header = [
        "NUMBER", "NAME", "EMAIL", "SOURCE", "ENABLED", "PROFILE", "GROUPS",
    ];
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    writeln!(out, "{}", line(&header.map(String::from)))?;
    for row in &rows {
        writeln!(out, "{}", line(row))?;
    }
    if rows.is_empty() {
        writeln!(out, "(no extensions)")?;
    }
    Ok(())
}

/// `pbx365 admin create`.
pub async fn admin_create(
    settings: Settings,
    name: &str,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let name = name.trim();
    if name.is_empty()
        || name.len() > 64
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        bail!("the admin name must be 1 to 64 characters without spaces");
    }
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let first = prompt_password("Password: ")?;
        let second = prompt_password("Repeat the password: ")?;
        if first != second {
            bail!("the two passwords differ; nothing was created");
        }
        first
    };
    password::check_new_password(&password).map_err(|e| anyhow!("{e}"))?;
    let (store, _) = open(settings).await?;
    admins::create_admin(&store, name, &password)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    eprintln!("Created the console admin `{name}`.");
    Ok(())
}

/// Reads a password from the terminal without echoing it.
pub(crate) fn prompt_password(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("no terminal to ask for the password; use --password-stdin");
    }
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
    };
    let _ = stty("-echo");
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = stty("echo");
    eprintln!();
    read.context("cannot read the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `pbx365 admin token create [--expires-in-days D]`.
pub async fn token_create(
    settings: Settings,
    name: &str,
    expires_in_days: Option<u32>,
) -> anyhow::Result<()> {
    let name = credentials::check_token_name(name).map_err(|e| anyhow!("{e}"))?;
    let (store, _) = open(settings).await?;
    let token = credentials::create_api_token(&store, name, expires_in_days, chrono::Utc::now())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    // The token alone on stdout, so `TOKEN=$(pbx365 admin token create)` works.
    println!("{token}");
    Ok(())
}
