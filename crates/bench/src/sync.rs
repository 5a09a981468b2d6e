//! User sync benchmark against m365-sim (20 ms latency per request):
//!
//! 1. first full sync of 10,000 users with photos: Graph requests per user (target ≤ 0.12,
//!    counted by the sim's `/_sim/stats`) and wall time (≤ 8 s);
//! 2. a delta round with 10 changes in a 100,000-user tenant: ≤ 3 Graph requests (+ changed photos);
//! 3. peak RSS (VmHWM) of a 100,000-user full sync, run in a child process so the in-process
//!    simulator's memory does not count: ≤ 200 MB;
//! 4. what a 10-change delta round costs at 10,000 and 100,000 users, and the notification path
//!    (see [`crate::delta`]).
//!
//! Batch sub-requests are not separate HTTP requests: they are excluded from the count (they are
//! recognisable because photo routes are only ever reached through `$batch`).

use anyhow::{bail, Context};
use m365_sim::faults::FaultSpec;
use m365_sim::{SimConfig, SimHandle};
use pbx365_domain::settings::SyncSettings;
use pbx365_domain::{NumberRules, SyncStatus};
use pbx365_graph::keys::KeyStore;
use pbx365_graph::{users, GraphClient, GraphConfig};
use pbx365_store::Store;
use pbx365_sync::{RunOptions, UserSync};
use pbx365_testkit::tenant::{graph_requests, register_at};
use std::sync::Arc;
use std::time::Instant;

/// Options.
#[derive(clap::Args)]
pub struct Args {
    /// Users of the first-sync tenant.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Users of the delta / memory tenant.
    #[arg(long, default_value_t = 100_000)]
    large_users: usize,
    /// Latency the sim adds to every request (ms).
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Photo batches (and Graph requests) in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Skip the 100,000-user parts.
    #[arg(long)]
    skip_large: bool,
    /// Skip the first-sync part.
    #[arg(long)]
    skip_first: bool,
    /// Skip the delta-round cost part (10 changes at `--users` and `--large-users`, 0 ms latency,
    /// SQLite and PostgreSQL).
    #[arg(long)]
    skip_delta_cost: bool,
    /// Skip the notification-path part (at `--large-users`).
    #[arg(long)]
    skip_notify: bool,
    /// Internal: run one full sync as the memory-measuring child (reads `BENCH_*` variables).
    #[arg(long, hide = true)]
    child: bool,
}

const MAX_REQUESTS_PER_USER: f64 = 0.12;
const MAX_WALL_SECS: f64 = 8.0;
const MAX_DELTA_REQUESTS: u64 = 3;
const MAX_RSS_MB: f64 = 200.0;

struct Tenant {
    sim: SimHandle,
    graph: Arc<GraphClient>,
    writer: GraphClient,
    client_id: String,
    keys_dir: tempfile::TempDir,
    _writer_dir: tempfile::TempDir,
}

fn graph_config(base: &str, tenant: &str, client_id: &str, concurrency: usize) -> GraphConfig {
    GraphConfig {
        authority_url: base.to_string(),
        graph_url: base.to_string(),
        tenant_id: Some(tenant.to_string()),
        client_id: Some(client_id.to_string()),
        max_concurrency: concurrency,
        ..GraphConfig::default()
    }
}

async fn tenant(users: usize, latency_ms: u64, concurrency: usize) -> anyhow::Result<Tenant> {
    let sim = m365_sim::start(SimConfig {
        users,
        latency_ms,
        https: false,
        ..SimConfig::default()
    })
    .await?;
    let control = sim.control();
    let reader = register_at(
        &control,
        "pbx365-bench",
        &["User.Read.All", "Directory.Read.All"],
        true,
    )
    .await;
    let writer = register_at(&control, "pbx365-bench", &["User.ReadWrite.All"], true).await;
    let (keys_dir, keys, client_id) = (reader.dir, reader.keys, reader.client_id);
    let (writer_dir, wkeys, writer_id) = (writer.dir, writer.keys, writer.client_id);
    let graph = Arc::new(GraphClient::new(
        graph_config(&sim.base_url, &sim.tenant_id, &client_id, concurrency),
        keys,
    )?);
    let writer = GraphClient::new(
        graph_config(&sim.base_url, &sim.tenant_id, &writer_id, 4),
        wkeys,
    )?;
    Ok(Tenant {
        sim,
        graph,
        writer,
        client_id,
        keys_dir,
        _writer_dir: writer_dir,
    })
}

fn engine(store: &Store, graph: &Arc<GraphClient>, concurrency: usize) -> UserSync {
    UserSync::new(
        store.clone(),
        graph.clone(),
        SyncSettings::default(),
        NumberRules::default(),
    )
    .with_photo_concurrency(concurrency)
}

/// Runs the benchmark.
pub async fn run(args: Args) -> anyhow::Result<()> {
    if args.child {
        return child().await;
    }
    let mut missed = Vec::new();

    // 1. First full sync with photos.
    if !args.skip_first {
        first_sync(&args, &mut missed).await?;
    }
    large(&args, &mut missed).await?;
    if !args.skip_delta_cost {
        crate::delta::run(args.users, args.large_users, !args.skip_notify, &mut missed).await?;
    }
    if missed.is_empty() {
        println!("all sync targets met");
        Ok(())
    } else {
        bail!("missed targets: {}", missed.join("; "))
    }
}

async fn first_sync(args: &Args, missed: &mut Vec<String>) -> anyhow::Result<()> {
    let t = tenant(args.users, args.latency_ms, args.concurrency).await?;
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite://{}/bench.db", dir.path().display())).await?;
    t.graph.token().await?; // the token is not a Graph request; fetch it before counting
    t.sim.control().clear_stats().await?;
    let started = Instant::now();
    let run = engine(&store, &t.graph, args.concurrency)
        .run(&RunOptions::default())
        .await?;
    let wall = started.elapsed().as_secs_f64();
    if run.status != SyncStatus::Completed {
        bail!("the first sync did not complete: {:?}", run.report.errors);
    }
    let requests = graph_requests(&t.sim).await;
    let photos = store
        .list_extensions()
        .await?
        .iter()
        .filter(|e| e.photo.is_some())
        .count();
    let per_user = requests as f64 / args.users as f64;
    println!(
        "first full sync: {} users, {} extensions, {photos} photos",
        args.users,
        run.report.created.len()
    );
    println!(
        "  Graph requests: {requests} ({per_user:.3} per user; target <= {MAX_REQUESTS_PER_USER})"
    );
    println!(
        "  wall time: {wall:.2} s (target <= {MAX_WALL_SECS} s, sim latency {} ms)",
        args.latency_ms
    );
    if per_user > MAX_REQUESTS_PER_USER {
        missed.push(format!(
            "requests per user {per_user:.3} > {MAX_REQUESTS_PER_USER}"
        ));
    }
    if wall > MAX_WALL_SECS {
        missed.push(format!("wall time {wall:.2} s > {MAX_WALL_SECS} s"));
    }
    t.sim.shutdown().await;
    Ok(())
}

async fn large(args: &Args, missed: &mut Vec<String>) -> anyhow::Result<()> {
    if !args.skip_large {
        // 2 + 3. A 100,000-user tenant: full sync in a child (peak RSS), then a 10-change delta round.
        let t = tenant(args.large_users, 0, args.concurrency).await?;
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}/large.db", dir.path().display());
        Store::connect(&url).await?; // migrations before the child starts
        let started = Instant::now();
        let out = tokio::process::Command::new(std::env::current_exe()?)
            .args([
                "sync",
                "--child",
                "--concurrency",
                &args.concurrency.to_string(),
            ])
            .env("BENCH_DB_URL", &url)
            .env("BENCH_GRAPH_URL", &t.sim.base_url)
            .env("BENCH_TENANT", &t.sim.tenant_id)
            .env("BENCH_CLIENT_ID", &t.client_id)
            .env("BENCH_DATA_DIR", t.keys_dir.path())
            .output()
            .await?;
        if !out.status.success() {
            bail!(
                "the 100,000-user sync child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let rss_kb: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("vmhwm_kb="))
            .and_then(|v| v.trim().parse().ok())
            .context("the child did not report its peak RSS")?;
        let rss_mb = rss_kb / 1024.0;
        println!(
            "full sync of {} users in a child process: {:.1} s, peak RSS {rss_mb:.1} MB (target <= {MAX_RSS_MB} MB)",
            args.large_users,
            started.elapsed().as_secs_f64()
        );
        if rss_mb > MAX_RSS_MB {
            missed.push(format!("peak RSS {rss_mb:.1} MB > {MAX_RSS_MB} MB"));
        }

        let store = Store::connect(&url).await?;
        let ids: Vec<String> = store
            .list_extensions()
            .await?
            .into_iter()
            .filter_map(|e| e.m365_id)
            .take(10)
            .collect();
        for (i, id) in ids.iter().enumerate() {
            let body = serde_json::json!({ "jobTitle": format!("Benchmark title {i}") });
            t.writer.send(users::update_request(id, body)).await?;
        }
        t.sim
            .control()
            .add_fault(&FaultSpec {
                path: "/".into(),
                latency_ms: Some(args.latency_ms),
                ..Default::default()
            })
            .await?;
        t.graph.token().await?;
        t.sim.control().clear_stats().await?;
        let started = Instant::now();
        let run = engine(&store, &t.graph, args.concurrency)
            .run(&RunOptions::default())
            .await?;
        let requests = graph_requests(&t.sim).await;
        println!(
            "delta round, 10 changes in {} users: {} updated, {requests} Graph requests (target <= {MAX_DELTA_REQUESTS} + changed photos), {:.2} s",
            args.large_users,
            run.report.updated.len(),
            started.elapsed().as_secs_f64()
        );
        if run.report.updated.len() != 10 {
            missed.push(format!(
                "delta round updated {} extensions, expected 10",
                run.report.updated.len()
            ));
        }
        if requests > MAX_DELTA_REQUESTS {
            missed.push(format!(
                "delta round used {requests} Graph requests > {MAX_DELTA_REQUESTS}"
            ));
        }
        t.sim.shutdown().await;
    }
    Ok(())
}

/// The child: one full sync, then its peak RSS.
async fn child() -> anyhow::Result<()> {
    m365_sim::tls::install_crypto_provider(); // the child talks to Graph without starting a sim
    let var = |n: &str| std::env::var(n).with_context(|| format!("{n} is not set"));
    let store = Store::connect(&var("BENCH_DB_URL")?).await?;
    let keys = KeyStore::new(std::path::Path::new(&var("BENCH_DATA_DIR")?));
    let concurrency = 32;
    let graph = Arc::new(GraphClient::new(
        graph_config(
            &var("BENCH_GRAPH_URL")?,
            &var("BENCH_TENANT")?,
            &var("BENCH_CLIENT_ID")?,
            concurrency,
        ),
        keys,
    )?);
    let run = engine(&store, &graph, concurrency)
        .run(&RunOptions::default())
        .await?;
    if run.status != SyncStatus::Completed {
        bail!("the sync did not complete: {:?}", run.report.errors);
    }
    let status = std::fs::read_to_string("/proc/self/status")?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("VmHWM not found in /proc/self/status")?;
    println!("created={}", run.report.created.len());
    println!("vmhwm_kb={hwm}");
    Ok(())
}
