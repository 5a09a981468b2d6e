//! Login storm (issue 9): a real `pbx365 serve` (release binary) on a fresh SQLite data dir with
//! one admin takes 1,000 concurrent wrong console sign-ins with random user names, each with its
//! own pre-login cookie from the sign-in page, while `/healthz` is probed one request at a time.
//! By default every sign-in comes from its own loopback address (127.1.x.y), so the per-address
//! throttle does not help and the global cap on concurrent password hashing must hold the line.
//!
//! Printed: the server's RSS before and after and its peak (`VmRSS`/`VmHWM` of
//! `/proc/PID/status`), the answers the sign-ins got, and `/healthz` p50/p99 during the storm.
//! Targets: peak RSS growth ≤ 100 MB, `/healthz` p99 ≤ 100 ms.

use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::child::{self, mb, Served};

/// Options.
#[derive(clap::Args)]
pub struct Args {
    /// The `pbx365` binary (default: next to this benchmark, i.e. target/release/pbx365).
    #[arg(long, env = "PBX365_BIN")]
    pbx365_bin: Option<PathBuf>,
    /// Concurrent wrong sign-ins.
    #[arg(long, default_value_t = 1_000)]
    logins: usize,
    /// Distinct client addresses the sign-ins come from (1: all from 127.0.0.1, where the
    /// per-address throttle refuses most of them early).
    #[arg(long, default_value_t = 1_000)]
    addresses: usize,
    /// Pause between two `/healthz` probes (ms).
    #[arg(long, default_value_t = 10)]
    probe_every_ms: u64,
}

/// Most peak RSS growth of the server (MB).
const MAX_RSS_GROWTH_MB: f64 = 100.0;
/// Highest `/healthz` p99 during the storm (ms).
const MAX_HEALTHZ_P99_MS: f64 = 100.0;

/// The `q` quantile of sorted `v` (nearest rank).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// The address of the `i`th of `n` clients: 127.0.0.1 when there is one, else 127.1.x.y.
fn client_address(i: usize, n: usize) -> Option<IpAddr> {
    (n > 1).then(|| {
        let k = i % n;
        IpAddr::V4(Ipv4Addr::new(127, 1, (k / 250) as u8, (k % 250 + 1) as u8))
    })
}

/// One wrong sign-in the way a browser makes it: the sign-in page (which sets the pre-login
/// cookie and names the same token in the form), then the form with a random name and password.
/// Returns the status of the POST.
async fn wrong_login(http: &reqwest::Client, base: &str) -> anyhow::Result<u16> {
    let page = http.get(format!("{base}/console/login")).send().await?;
    let cookie = page
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let pair = v.split(';').next()?;
            let (name, value) = pair.split_once('=')?;
            name.ends_with("pbx365_login")
                .then(|| pair.to_string())
                .filter(|_| !value.is_empty())
        })
        .context("the sign-in page set no pre-login cookie")?;
    let body = page.text().await?;
    let csrf = body
        .split("name=\"login_csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("the sign-in page has no login_csrf field")?
        .to_string();
    let name = format!("storm-{}", uuid::Uuid::new_v4().simple());
    let password = uuid::Uuid::new_v4().to_string();
    let resp = http
        .post(format!("{base}/console/login"))
        .header(reqwest::header::COOKIE, cookie)
        .form(&[
            ("username", name.as_str()),
            ("password", password.as_str()),
            ("login_csrf", csrf.as_str()),
        ])
        .send()
        .await?;
    let status = resp.status().as_u16();
    let _ = resp.bytes().await;
    Ok(status)
}

/// Runs the benchmark.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin = child::pbx365_bin(args.pbx365_bin.as_deref())?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let config = child::write_config(dir.path(), &data, "")?;
    let mut create = child::command(&bin, &config);
    create.args(["admin", "create", "--name", "admin", "--password-stdin"]);
    child::run(create, "correct horse battery staple\n")
        .await
        .context("pbx365 admin create failed")?;
    let server = Served::start(&bin, &config).await?;
    let pid = server.pid()?;
    let base = server.base.clone();

    // One client per address, built before the storm (building one costs CPU).
    let addresses = args.addresses.clamp(1, args.logins.max(1));
    let mut clients = Vec::with_capacity(addresses);
    for i in 0..addresses {
        clients.push(
            reqwest::Client::builder()
                .local_address(client_address(i, addresses))
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(120))
                .build()?,
        );
    }
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let healthz = format!("{base}/healthz");
    for _ in 0..20 {
        probe.get(&healthz).send().await?.error_for_status()?;
    }
    let before = child::memory(pid)?;

    let go = Arc::new(tokio::sync::Barrier::new(args.logins + 1));
    let mut storm = Vec::with_capacity(args.logins);
    for i in 0..args.logins {
        let (http, base, go) = (clients[i % addresses].clone(), base.clone(), go.clone());
        storm.push(tokio::spawn(async move {
            go.wait().await;
            let started = Instant::now();
            let status = wrong_login(&http, &base).await;
            (status, started.elapsed())
        }));
    }
    let done = Arc::new(AtomicBool::new(false));
    let prober = {
        let (done, every) = (done.clone(), Duration::from_millis(args.probe_every_ms));
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut failed = 0u64;
            while !done.load(Ordering::Relaxed) {
                let started = Instant::now();
                match probe.get(&healthz).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        samples.push(started.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => failed += 1,
                }
                tokio::time::sleep(every).await;
            }
            (samples, failed)
        })
    };
    let started = Instant::now();
    go.wait().await;
    let mut answers: BTreeMap<String, u64> = BTreeMap::new();
    let mut login_ms = Vec::with_capacity(args.logins);
    for task in storm {
        let (status, took) = task.await?;
        let key = match status {
            Ok(s) => s.to_string(),
            Err(e) => format!("error ({e})"),
        };
        *answers.entry(key).or_default() += 1;
        login_ms.push(took.as_secs_f64() * 1000.0);
    }
    let storm_secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let (mut samples, probe_failed) = prober.await?;
    let after = child::memory(pid)?;
    drop(server);

    samples.sort_by(f64::total_cmp);
    login_ms.sort_by(f64::total_cmp);
    let (p50, p99, max) = (
        quantile(&samples, 0.50),
        quantile(&samples, 0.99),
        samples.last().copied().unwrap_or(0.0),
    );
    let growth = mb(after.hwm_kb.saturating_sub(before.rss_kb));
    println!(
        "login storm: {} concurrent wrong sign-ins with random names from {addresses} address(es), {storm_secs:.2} s",
        args.logins
    );
    let answered: Vec<String> = answers.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    println!("  answers: {}", answered.join(", "));
    println!(
        "  sign-in time p50 {:.0} ms, p99 {:.0} ms",
        quantile(&login_ms, 0.50),
        quantile(&login_ms, 0.99)
    );
    println!(
        "  server RSS: {:.1} MB before, {:.1} MB after, peak {:.1} MB: growth {growth:.1} MB (target <= {MAX_RSS_GROWTH_MB} MB)",
        mb(before.rss_kb),
        mb(after.rss_kb),
        mb(after.hwm_kb)
    );
    println!(
        "  /healthz during the storm: {} probes, p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms (target p99 <= {MAX_HEALTHZ_P99_MS} ms){}",
        samples.len(),
        if probe_failed > 0 {
            format!(", {probe_failed} failed")
        } else {
            String::new()
        }
    );

    let mut missed = Vec::new();
    let refused_as_expected = answers.keys().all(|k| k == "401" || k == "429");
    if !refused_as_expected {
        missed.push(format!(
            "sign-ins got answers other than 401 and 429: {}",
            answered.join(", ")
        ));
    }
    if growth > MAX_RSS_GROWTH_MB {
        missed.push(format!("RSS grew {growth:.1} MB > {MAX_RSS_GROWTH_MB} MB"));
    }
    if p99 > MAX_HEALTHZ_P99_MS {
        missed.push(format!(
            "/healthz p99 {p99:.1} ms > {MAX_HEALTHZ_P99_MS} ms"
        ));
    }
    if probe_failed > 0 || samples.is_empty() {
        missed.push(format!("{probe_failed} /healthz probes failed"));
    }
    if !missed.is_empty() {
        bail!("login storm missed its targets: {}", missed.join("; "));
    }
    println!("login storm targets met");
    Ok(())
}
