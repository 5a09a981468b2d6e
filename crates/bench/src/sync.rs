//! User sync benchmark against m365-sim:
//!
//! 1. first full sync with photos of 5,000 users, the sim adding 20 ms to every request: wall
//!    time against the latency floor (≤ 2×) and HTTP round trips per user (≤ 0.06, counted by
//!    the sim's `/_sim/stats`);
//! 2. a delta round with 10 changes in a 100,000-user tenant: ≤ 3 Graph requests (+ changed photos).
//! 3. what a 10-change delta round costs at 10,000 and 100,000 users, and the notification path
//!    (see [`crate::delta`]).
//!
//! Batch sub-requests are not HTTP round trips of their own: they are excluded from the count
//! (they are recognisable because photo routes are only ever reached through `$batch`). They
//! still cost time: for a batch of Outlook requests (photos) Graph runs at most four
//! sub-requests at a time (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits-for-json-batching),
//! and the sim, like Graph, adds its latency to each. The latency floor therefore counts a
//! batch of n photos as 1 + ⌈n/4⌉ latency steps:
//!
//! floor = max(steps ÷ requests in flight, pages read one after another) × latency.
//!
//! The peak RSS of a 100,000-user full round is the `sync-rss` benchmark.

use anyhow::bail;
use m365_sim::faults::FaultSpec;
use m365_sim::{SimConfig, SimHandle};
use pbx365_domain::settings::SyncSettings;
use pbx365_domain::{NumberRules, SyncStatus};
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
    #[arg(long, default_value_t = 5_000)]
    users: usize,
    /// Users of the delta tenant.
    #[arg(long, default_value_t = 100_000)]
    large_users: usize,
    /// Latency the sim adds to every request (ms).
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Graph requests in flight (the client's limit; photo batches share it with page reads).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Skip the 100,000-user delta round.
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
}

/// Most HTTP round trips per user of a first full sync with photos.
const MAX_ROUND_TRIPS_PER_USER: f64 = 0.06;
/// Most wall time of a first full sync, in multiples of the latency floor.
const MAX_FLOOR_RATIO: f64 = 2.0;
const MAX_DELTA_REQUESTS: u64 = 3;
/// Outlook sub-requests of one batch Graph runs at the same time.
const OUTLOOK_IN_FLIGHT_PER_BATCH: u64 = 4;

struct Tenant {
    sim: SimHandle,
    graph: Arc<GraphClient>,
    writer: GraphClient,
    _keys_dir: tempfile::TempDir,
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
    let graph = Arc::new(GraphClient::new(
        graph_config(
            &sim.base_url,
            &sim.tenant_id,
            &reader.client_id,
            concurrency,
        ),
        reader.keys,
    )?);
    let writer_client = GraphClient::new(
        graph_config(&sim.base_url, &sim.tenant_id, &writer.client_id, 4),
        writer.keys,
    )?;
    Ok(Tenant {
        sim,
        graph,
        writer: writer_client,
        _keys_dir: reader.dir,
        _writer_dir: writer.dir,
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
    let mut missed = Vec::new();
    if !args.skip_first {
        first_sync(&args, &mut missed).await?;
    }
    if !args.skip_large {
        delta(&args, &mut missed).await?;
    }
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
    let stats = t.sim.control().stats().await?;
    let round_trips = graph_requests(&t.sim).await;
    let pages = stats
        .by_route
        .iter()
        .filter(|(route, _)| route.contains("/users/delta"))
        .map(|(_, n)| n)
        .sum::<u64>();
    let batches = stats.route("POST /v1.0/$batch");
    let sub_requests = stats
        .by_route
        .iter()
        .filter(|(route, _)| pbx365_graph::photos::is_photo_path(route))
        .map(|(_, n)| n)
        .sum::<u64>();
    let photos = store
        .list_extensions()
        .await?
        .iter()
        .filter(|e| e.photo.is_some())
        .count();
    let latency = args.latency_ms as f64 / 1000.0;
    let in_flight = args.concurrency.max(1) as f64;
    // A batch of n Outlook sub-requests is 1 + ⌈n/4⌉ steps; summed over the batches this is at
    // least batches + ⌈sub-requests/4⌉.
    let steps = round_trips + sub_requests.div_ceil(OUTLOOK_IN_FLIGHT_PER_BATCH);
    let floor = (steps as f64 / in_flight).max(pages as f64) * latency;
    let naive_floor = round_trips as f64 / in_flight * latency;
    let per_user = round_trips as f64 / args.users as f64;
    let ratio = if floor > 0.0 { wall / floor } else { 0.0 };
    println!(
        "first full sync with photos: {} users, {} extensions, {photos} photos, sim latency {} ms",
        args.users,
        run.report.created.len(),
        args.latency_ms
    );
    println!(
        "  HTTP round trips: {round_trips} ({pages} user pages, {batches} $batch with {sub_requests} photo sub-requests, {} other): {per_user:.4} per user (target <= {MAX_ROUND_TRIPS_PER_USER})",
        round_trips.saturating_sub(pages + batches)
    );
    println!(
        "  requests in flight: {}; latency steps {steps} (a batch of n photos is 1 + n/4)",
        args.concurrency
    );
    println!(
        "  latency floor: {floor:.2} s (round trips / in flight x latency alone: {naive_floor:.2} s)"
    );
    println!("  wall time: {wall:.2} s = {ratio:.2} x the floor (target <= {MAX_FLOOR_RATIO} x)");
    if per_user > MAX_ROUND_TRIPS_PER_USER {
        missed.push(format!(
            "round trips per user {per_user:.4} > {MAX_ROUND_TRIPS_PER_USER}"
        ));
    }
    if ratio > MAX_FLOOR_RATIO {
        missed.push(format!(
            "wall time {wall:.2} s is {ratio:.2} x the latency floor {floor:.2} s > {MAX_FLOOR_RATIO} x"
        ));
    }
    t.sim.shutdown().await;
    Ok(())
}

/// A delta round with 10 changes in a large tenant, after a full sync (in this process; its
/// memory is the `sync-rss` benchmark).
async fn delta(args: &Args, missed: &mut Vec<String>) -> anyhow::Result<()> {
    let t = tenant(args.large_users, 0, args.concurrency).await?;
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite://{}/large.db", dir.path().display())).await?;
    let started = Instant::now();
    let full = engine(&store, &t.graph, args.concurrency)
        .run(&RunOptions::default())
        .await?;
    if full.status != SyncStatus::Completed {
        bail!("the full sync did not complete: {:?}", full.report.errors);
    }
    println!(
        "full sync of {} users (no latency): {:.1} s",
        args.large_users,
        started.elapsed().as_secs_f64()
    );
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
    Ok(())
}
