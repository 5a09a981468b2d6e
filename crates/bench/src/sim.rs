//! m365-sim benchmark: start-up time for a large generated tenant, and simple Graph GETs per
//! second (`GET /v1.0/users/{id}` with a valid app token, concurrent keep-alive clients over
//! loopback HTTPS). Targets (issue 3): ≥ 5,000 GETs/s and `--users 100000` ready in < 10 s.
//!
//! The load generator runs in the same process and shares the CPU with the sim, so the figure is
//! a lower bound of what the sim serves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use m365_sim::identity::apps::NewApp;
use m365_sim::SimConfig;
use pbx365_graph::assertion::token_endpoint;
use pbx365_graph::client::api_base;
use pbx365_graph::token::GRAPH_DEFAULT_SCOPE;
use pbx365_graph::users;
use pbx365_testkit::tenant::new_app;

/// Options.
#[derive(clap::Args)]
pub struct Args {
    /// Users in the generated tenant.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent keep-alive clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Required GETs per second.
    #[arg(long, default_value_t = 5_000.0)]
    min_rps: f64,
    /// Required start-up time limit in seconds.
    #[arg(long, default_value_t = 10.0)]
    max_startup_secs: f64,
}

/// Runs the benchmark.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let sim = m365_sim::start(SimConfig {
        users: args.users,
        ..Default::default()
    })
    .await
    .context("m365-sim did not start")?;
    let startup = started.elapsed().as_secs_f64();
    println!(
        "m365-sim start-up with {} users: {startup:.2} s (target < {:.0} s)",
        args.users, args.max_startup_secs
    );

    let control = sim.control();
    let client_id = control
        .create_app(&NewApp {
            client_secret: Some("bench-secret".into()),
            ..new_app("bench", &["User.Read.All"], true)
        })
        .await?;
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(
            sim.ca_pem.as_deref().unwrap_or_default().as_bytes(),
        )?)
        .http1_only()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let token: serde_json::Value = http
        .post(token_endpoint(sim.authority_url(), &sim.tenant_id))
        .form(&[
            ("client_id", client_id.as_str()),
            ("client_secret", "bench-secret"),
            ("scope", GRAPH_DEFAULT_SCOPE),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .context("no access_token")?
        .to_string();
    let base = api_base(sim.graph_url());
    let page: serde_json::Value = http
        .get(format!("{base}{}", users::list_request().url))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    // The URL of each user, built once so the load loop only sends.
    let urls: Arc<Vec<String>> = Arc::new(
        page["value"]
            .as_array()
            .context("no users")?
            .iter()
            .filter_map(|u| u["id"].as_str())
            .map(|id| format!("{base}{}", users::path(id)))
            .collect(),
    );
    if urls.is_empty() {
        bail!("the generated tenant has no users");
    }

    control.clear_stats().await?;
    let cpu_before = process_cpu_secs();
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let load_start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.concurrency {
        let (http, urls, ok, failed, token) = (
            http.clone(),
            urls.clone(),
            ok.clone(),
            failed.clone(),
            token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while Instant::now() < deadline {
                let url = &urls[i % urls.len()];
                i += args_stride();
                match http.get(url).bearer_auth(&token).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = load_start.elapsed().as_secs_f64();
    let cpu = process_cpu_secs().zip(cpu_before).map(|(a, b)| a - b);
    let ok = ok.load(Ordering::Relaxed);
    let failed = failed.load(Ordering::Relaxed);
    let rps = ok as f64 / elapsed;
    let stats = control.stats().await?;
    // The route the load went to, as the sim counted it (`GET /v1.0/users/{id}`).
    let route = stats
        .by_route
        .iter()
        .max_by_key(|(_, n)| **n)
        .map_or("GET user", |(route, _)| route.as_str());
    println!(
        "{route}: {ok} ok, {failed} failed in {elapsed:.2} s with {} clients = {rps:.0} req/s (target ≥ {:.0})",
        args.concurrency, args.min_rps
    );
    if let Some(cpu) = cpu.filter(|c| *c > 0.0) {
        // Sim and load generator share this process; on a busy machine the wall-clock figure
        // drops while this one stays put.
        println!(
            "process CPU time {cpu:.2} s for {ok} requests (sim + client): {:.0} requests per CPU-second",
            ok as f64 / cpu
        );
    }
    println!(
        "Graph requests counted by the sim: {} (client sent {})",
        stats.total,
        ok + failed
    );
    sim.shutdown().await;

    let mut missed = Vec::new();
    if startup >= args.max_startup_secs {
        missed.push(format!(
            "start-up {startup:.2} s ≥ {:.0} s",
            args.max_startup_secs
        ));
    }
    if rps < args.min_rps {
        missed.push(format!("{rps:.0} req/s < {:.0}", args.min_rps));
    }
    if failed > 0 {
        missed.push(format!("{failed} requests failed"));
    }
    if !missed.is_empty() {
        bail!(
            "m365-sim benchmark missed its targets: {}",
            missed.join("; ")
        );
    }
    Ok(())
}

/// User + system CPU seconds of this process (Linux `/proc/self/stat`), if available.
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Clock ticks are 100 per second on Linux.
    Some((utime + stime) / 100.0)
}

/// Each worker walks the user list with a prime stride so workers spread over users.
fn args_stride() -> usize {
    7919
}
