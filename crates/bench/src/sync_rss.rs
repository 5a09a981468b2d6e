//! Full-round memory (issue 9): `pbx365 sync users --full` (the release binary, as an admin runs
//! it) against m365-sim with 100,000 users, photos included, on a fresh SQLite data dir. The
//! sim runs in this process, so only the child's memory counts: its peak RSS (`VmHWM`, sampled,
//! and the kernel's `ru_maxrss` once it is reaped). Target: ≤ 200 MB.

use anyhow::{bail, Context};
use m365_sim::SimConfig;
use pbx365_store::Store;
use pbx365_testkit::tenant::register_at;
use std::path::PathBuf;
use std::time::Instant;

use crate::child::{self, mb};

/// Options.
#[derive(clap::Args)]
pub struct Args {
    /// The `pbx365` binary (default: next to this benchmark, i.e. target/release/pbx365).
    #[arg(long, env = "PBX365_BIN")]
    pbx365_bin: Option<PathBuf>,
    /// Users in the tenant.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Latency the sim adds to every request (ms).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

/// Highest peak RSS of the sync (MB).
const MAX_RSS_MB: f64 = 200.0;

/// Runs `pbx365 sync users --full` against `sim` as the app `client_id` whose key is in
/// `data_dir` (which also holds the SQLite database); the config file goes to `config_dir`.
/// Returns the child's peak RSS in kB and the seconds it took.
pub async fn full_sync_child(
    bin: &std::path::Path,
    sim: &m365_sim::SimHandle,
    client_id: &str,
    data_dir: &std::path::Path,
    config_dir: &std::path::Path,
) -> anyhow::Result<(u64, f64)> {
    let extra = format!(
        "[m365]\ntenant_id = \"{}\"\nclient_id = \"{client_id}\"\nauthority_url = \"{}\"\ngraph_url = \"{}\"\n",
        sim.tenant_id, sim.base_url, sim.base_url
    );
    let config = child::write_config(config_dir, data_dir, &extra)?;
    let mut cmd = child::command(bin, &config);
    cmd.args(["sync", "users", "--full"])
        .env("RUST_LOG", "warn");
    let started = Instant::now();
    let (out, peak_kb) = child::run_measured(cmd)
        .await
        .context("pbx365 sync --full failed")?;
    let secs = started.elapsed().as_secs_f64();
    if !out.contains("User sync completed") {
        bail!(
            "the sync did not complete: {}",
            out.lines().take(5).collect::<Vec<_>>().join(" / ")
        );
    }
    Ok((peak_kb, secs))
}

/// Runs the benchmark.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin = child::pbx365_bin(args.pbx365_bin.as_deref())?;
    let started = Instant::now();
    let sim = m365_sim::start(SimConfig {
        users: args.users,
        latency_ms: args.latency_ms,
        https: false,
        ..SimConfig::default()
    })
    .await?;
    println!(
        "m365-sim with {} users ready in {:.1} s",
        args.users,
        started.elapsed().as_secs_f64()
    );
    let app = register_at(
        &sim.control(),
        "pbx365-bench",
        &["User.Read.All", "Directory.Read.All"],
        true,
    )
    .await;
    let config_dir = tempfile::tempdir()?;
    let (peak_kb, secs) = full_sync_child(
        &bin,
        &sim,
        &app.client_id,
        app.dir.path(),
        config_dir.path(),
    )
    .await?;
    let url = format!("sqlite://{}/pbx365.db", app.dir.path().display());
    let store = Store::connect(&url).await?;
    let extensions = store.list_extensions().await?;
    let synced = extensions.iter().filter(|e| e.m365_id.is_some()).count();
    let photos = extensions.iter().filter(|e| e.photo.is_some()).count();
    store.close().await;
    sim.shutdown().await;
    let peak = mb(peak_kb);
    println!(
        "pbx365 sync --full of {} users: {synced} synced extensions, {photos} photos, {secs:.1} s, peak RSS {peak:.1} MB (target <= {MAX_RSS_MB} MB)",
        args.users
    );
    if synced == 0 {
        bail!("the sync created no extensions");
    }
    if peak > MAX_RSS_MB {
        bail!("full-round peak RSS {peak:.1} MB > {MAX_RSS_MB} MB");
    }
    println!("sync-rss target met");
    Ok(())
}
