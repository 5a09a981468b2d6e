//! `pbx365 m365 keygen` and `pbx365 m365 doctor` (SPEC §8, issue 4 items 1 and 6).

use anyhow::{anyhow, bail};
use clap::Subcommand;
use pbx365_app::m365::{generate_key_pair, host_of, run_checks, Slot};
use pbx365_domain::settings::Settings;
use std::path::{Path, PathBuf};

/// `pbx365 m365 …`.
#[derive(Debug, Subcommand)]
pub enum M365Command {
    /// Generate the RSA key pair and self-signed certificate pbx365 signs in to Microsoft 365 with:
    /// the private key stays in data_dir (mode 0600), the certificate is written for upload.
    Keygen {
        /// Where to write the certificate (default: ./public_key.pem).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Check the Microsoft 365 connection end to end: one line per check, exit code 1 on failure.
    Doctor,
}

/// Runs an `m365` subcommand.
pub async fn run(settings: Settings, command: M365Command) -> anyhow::Result<()> {
    match command {
        M365Command::Keygen { out } => keygen(&settings, out.as_deref()),
        M365Command::Doctor => doctor(settings).await,
    }
}

fn keygen(settings: &Settings, out: Option<&Path>) -> anyhow::Result<()> {
    let public_url = settings.effective_public_url();
    let host = host_of(&public_url);
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("public_key.pem"));
    // Refuse before generating: a key without its written certificate is useless to the admin.
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            bail!(
                "cannot write the certificate to {}: the directory {} does not exist",
                out.display(),
                parent.display()
            );
        }
    }
    let generated =
        generate_key_pair(&settings.data_dir, &public_url).map_err(|e| anyhow!("{e}"))?;
    let cert = &generated.certificate;
    std::fs::write(&out, &cert.pem).map_err(|e| {
        anyhow!(
            "cannot write the certificate to {}: {}",
            out.display(),
            crate::config::io_reason(&e)
        )
    })?;
    println!("Generated an RSA 2048 key pair and a self-signed certificate for {host}.");
    println!(
        "  private key:  {} (mode 0600; never leaves this server)",
        generated.key_path.display()
    );
    println!("  certificate:  {}", out.display());
    println!(
        "  thumbprint:   {} (SHA-1, as the Azure portal shows it)",
        cert.thumbprint_hex
    );
    println!("  x5t#S256:     {}", cert.x5t_s256);
    println!("  valid until:  {}", cert.not_after.format("%Y-%m-%d"));
    match generated.slot {
        Slot::Active => println!(
            "Upload {} to the app registration (Certificates & secrets > Certificates), then run `pbx365 m365 doctor`.",
            out.display()
        ),
        Slot::Pending => println!(
            "Upload {} to the app registration; the current key keeps working until Microsoft accepts the new one.",
            out.display()
        ),
    }
    Ok(())
}

/// The settings with the console's stored values applied, when the database can be read.
async fn effective(settings: Settings) -> Settings {
    if !settings.data_dir.is_dir() && settings.database_url.is_none() {
        return settings;
    }
    let store = match pbx365_store::Store::connect(&settings.effective_database_url()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("note: the database cannot be read ({e}); checking the file settings only");
            return settings;
        }
    };
    match pbx365_app::settings::load(&store, &settings).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("note: the console settings cannot be applied ({e}); checking the file settings only");
            settings
        }
    }
}

async fn doctor(settings: Settings) -> anyhow::Result<()> {
    let settings = effective(settings).await;
    let checks = run_checks(
        &settings,
        &settings.data_dir,
        settings.public_url.as_deref(),
    )
    .await;
    let failed = checks.iter().filter(|c| !c.ok).count();
    for c in &checks {
        let mark = if c.ok { "ok  " } else { "FAIL" };
        match &c.fix {
            Some(fix) => println!("{mark} {}: {} — fix: {fix}", c.name, c.detail),
            None => println!("{mark} {}: {}", c.name, c.detail),
        }
    }
    if failed > 0 {
        bail!("{failed} of {} checks failed", checks.len());
    }
    println!("All {} checks passed.", checks.len());
    Ok(())
}
