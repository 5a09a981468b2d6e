//! The `m365-sim` binary: a local Microsoft 365 tenant over HTTPS.
//!
//! Prints exactly one line when ready:
//! `m365-sim listening on https://127.0.0.1:PORT tenant=<GUID>`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Command line.
#[derive(Parser)]
#[command(
    name = "m365-sim",
    version,
    about = "A faithful local Microsoft 365 tenant: identity platform + Graph v1.0"
)]
struct Cli {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9443")]
    listen: SocketAddr,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    http: bool,
    /// Write the generated CA certificate (PEM) to this file so clients can trust it.
    #[arg(long)]
    ca_out: Option<PathBuf>,
    /// JSON file of Graph-shaped resources to load.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Generate a realistic organisation of this many users.
    #[arg(long, default_value_t = 0)]
    users: usize,
    /// Tenant GUID (default: the seed's, else a fixed one).
    #[arg(long)]
    tenant_id: Option<String>,
    /// Verified domain of the tenant.
    #[arg(long)]
    domain: Option<String>,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Seed of the deterministic organisation generator.
    #[arg(long, default_value_t = 365)]
    rng_seed: u64,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 3599)]
    token_lifetime_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("M365_SIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut config = m365_sim::SimConfig {
        listen: cli.listen,
        https: !cli.http,
        users: cli.users,
        tenant_id: cli.tenant_id,
        latency_ms: cli.latency_ms,
        rng_seed: cli.rng_seed,
        token_lifetime_secs: cli.token_lifetime_secs,
        ..Default::default()
    };
    if let Some(domain) = cli.domain {
        config.domain = domain;
    }
    if let Some(path) = &cli.seed {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the seed file {}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("the seed file {} is not valid JSON", path.display()))?;
        config.seed = Some(value);
    }
    let sim = m365_sim::start(config)
        .await
        .context("m365-sim cannot start")?;
    if let (Some(path), Some(pem)) = (&cli.ca_out, &sim.ca_pem) {
        std::fs::write(path, pem)
            .with_context(|| format!("cannot write the CA certificate to {}", path.display()))?;
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "m365-sim listening on {} tenant={}",
            sim.base_url, sim.tenant_id
        )?;
        out.flush()?;
    }
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
