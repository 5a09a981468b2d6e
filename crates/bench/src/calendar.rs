//! Calendar status benchmark (issue 13), against m365-sim in real time:
//!
//! 1. **Graph calendar reads in the steady state**: `--users` (10,000) followed users with
//!    `--per-day` (5) entries a day each. After the first read, one fallback read of every
//!    calendar and one re-read per changed calendar (what a change notification triggers) are
//!    counted at the sim (calendarView delta sub-requests of `$batch`); the steady state per
//!    user and hour is reads-per-fallback x fallbacks-per-hour + reads-per-change x changes per
//!    hour. Target: <= 0.5.
//! 2. **Switch latency**: `--same-minute` (2,000) of them have an entry starting within the
//!    same minute; each switch's delay after its instant is measured. Target: p99 <= 1 s.
//! 3. **Scheduler memory** per scheduled switch (the sorted set, the slots and the timelines
//!    they hold, heap included). Target: <= 1 KB.
//!
//! A missed target exits non-zero.

use std::collections::HashSet;
use std::time::{Duration as StdDuration, Instant};

use anyhow::bail;
use chrono::{DateTime, Duration, DurationRound, Utc};
use m365_sim::SimConfig;
use pbx365_app::App;
use pbx365_domain::settings::Settings;
use pbx365_domain::Profile;
use pbx365_store::Store;
use pbx365_testkit::data::{put_extensions, synced_extension};
use pbx365_testkit::tenant::{register, start_sim, PERMISSIONS};
use serde_json::{json, Value};

/// Options.
#[derive(clap::Args)]
pub struct Args {
    /// Followed users.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Calendar entries per user and day.
    #[arg(long, default_value_t = 5)]
    per_day: usize,
    /// Users with an entry starting in the same minute.
    #[arg(long, default_value_t = 2_000)]
    same_minute: usize,
    /// Seconds from the start until that minute begins (the first read must be done by then).
    #[arg(long, default_value_t = 240)]
    lead_secs: i64,
    /// Calendars changed for the per-change count.
    #[arg(long, default_value_t = 200)]
    changes: usize,
    /// Target: Graph calendar reads per user and hour.
    #[arg(long, default_value_t = 0.5)]
    max_reads_per_user_hour: f64,
    /// Target: p99 switch latency, milliseconds.
    #[arg(long, default_value_t = 1_000)]
    max_p99_ms: i64,
    /// Target: scheduler bytes per scheduled switch.
    #[arg(long, default_value_t = 1_024)]
    max_bytes_per_switch: usize,
}

const DELTA_ROUTE: &str = "GET /v1.0/users/{id}/calendarView/delta";

fn guid(i: usize) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", 0x5eed_0000u32, i)
}

fn dtz(t: DateTime<Utc>) -> Value {
    json!({"dateTime": t.format("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": "UTC"})
}

fn ev(subject: &str, show_as: &str, start: DateTime<Utc>, minutes: i64) -> Value {
    json!({"subject": subject, "showAs": show_as, "start": dtz(start),
           "end": dtz(start + Duration::minutes(minutes))})
}

/// Users u0… with `per_day` entries a day over the next two days (spread over working hours
/// and minutes), the first `same_minute` of them with an entry starting within `minute`.
fn seed(args: &Args, minute: DateTime<Utc>) -> Value {
    let today = Utc::now().duration_trunc(Duration::days(1)).unwrap();
    let mut users = Vec::new();
    let mut events = serde_json::Map::new();
    for i in 0..args.users {
        let upn = format!("u{i}@bench.example");
        users.push(json!({"id": guid(i), "userPrincipalName": upn, "mail": upn,
                          "displayName": format!("User {i}"), "accountEnabled": true}));
        let mut list = Vec::new();
        for day in 0..2 {
            for k in 0..args.per_day {
                let start = today
                    + Duration::days(day)
                    + Duration::hours(8 + 2 * k as i64)
                    + Duration::minutes((i % 60) as i64);
                let show_as = if k % 2 == 0 { "busy" } else { "oof" };
                list.push(ev(&format!("Entry {k}"), show_as, start, 30));
            }
        }
        if i < args.same_minute {
            let at = minute + Duration::milliseconds((i * 60_000 / args.same_minute) as i64);
            let at = at.duration_trunc(Duration::seconds(1)).unwrap();
            list.push(ev("Same minute", "busy", at, 20));
        }
        events.insert(guid(i), Value::Array(list));
    }
    json!({"users": users, "events": events})
}

async fn wait_until(what: &str, secs: u64, mut check: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + StdDuration::from_secs(secs);
    while !check() {
        if Instant::now() > deadline {
            bail!("{what} did not happen within {secs} s");
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    Ok(())
}

async fn delta_reads(sim: &m365_sim::SimHandle) -> anyhow::Result<u64> {
    Ok(sim.control().stats().await?.route(DELTA_ROUTE))
}

/// Runs the benchmark.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let minute = (Utc::now() + Duration::seconds(args.lead_secs))
        .duration_trunc(Duration::minutes(1))
        .unwrap()
        + Duration::minutes(1);
    let started = Instant::now();
    let sim = start_sim(SimConfig {
        users: 0,
        seed: Some(seed(&args, minute)),
        https: false,
        ..SimConfig::default()
    })
    .await;
    let reader = register(&sim, &PERMISSIONS, true).await;
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite://{}/bench.db", dir.path().display())).await?;
    let exts: Vec<_> = (0..args.users)
        .map(|i| synced_extension(&(10_000 + i).to_string(), &guid(i)))
        .collect();
    put_extensions(&store, &exts).await?;
    let mut settings = Settings {
        data_dir: reader.dir.path().to_path_buf(),
        ..Settings::default()
    };
    settings.m365.graph_url = sim.graph_url().into();
    settings.m365.authority_url = sim.authority_url().into();
    settings.m365.tenant_id = Some(sim.tenant_id.clone());
    settings.m365.client_id = Some(reader.client_id.clone());
    settings.calendar.enabled = true;
    let poll_minutes = settings.calendar.poll_minutes;
    let app = App::new(store.clone(), settings);
    println!(
        "calendar: {} users x {} entries/day seeded in {:.1} s; {} start within {minute}",
        args.users,
        args.per_day,
        started.elapsed().as_secs_f64(),
        args.same_minute
    );

    // The first read of every calendar.
    if !app.calendar_active() {
        bail!("calendar status is not active with the benchmark's settings");
    }
    let mut rx = app.calendar_switches();
    let _worker = app.start_calendar_worker();
    let t = Instant::now();
    wait_until("the first read of every calendar", 300, || {
        app.calendar_stats().followed == args.users
    })
    .await?;
    let first = delta_reads(&sim).await?;
    println!(
        "first read: {:.1} s, {first} calendarView delta reads ({:.2} per user)",
        t.elapsed().as_secs_f64(),
        first as f64 / args.users as f64
    );
    let stats = app.calendar_stats();

    // Switch latency: the entries of the same minute.
    let mut delays = Vec::new();
    let until = minute + Duration::seconds(90);
    while delays.len() < args.same_minute && Utc::now() < until {
        let wait = (until - Utc::now()).to_std().unwrap_or_default();
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Ok(s)) if s.due >= minute && s.due < minute + Duration::minutes(1) => {
                if s.profile == Profile::Dnd {
                    delays.push((s.at - s.due).num_milliseconds());
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => {
                bail!("the benchmark lost {n} switch events")
            }
            Ok(Err(_)) | Err(_) => break,
        }
    }
    delays.sort_unstable();
    let pct = |p: f64| -> i64 {
        delays
            .get(((delays.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(i64::MAX)
    };
    let (p50, p99, max) = (
        pct(0.5),
        pct(0.99),
        delays.last().copied().unwrap_or(i64::MAX),
    );
    println!(
        "switch latency over {} switches in one minute: p50 {p50} ms, p99 {p99} ms, max {max} ms",
        delays.len()
    );

    // One fallback read of every calendar.
    let before = delta_reads(&sim).await?;
    let full_reads = app.calendar_stats();
    app.replan_calendar("*");
    let t = Instant::now();
    let mut done = false;
    while !done {
        if t.elapsed() > StdDuration::from_secs(600) {
            bail!("the fallback read did not finish within 600 s");
        }
        tokio::time::sleep(StdDuration::from_millis(200)).await;
        let s = app.calendar_stats();
        done = s != full_reads || delta_reads(&sim).await? >= before + args.users as u64;
    }
    let per_poll = (delta_reads(&sim).await? - before) as f64 / args.users as f64;
    println!(
        "fallback read of every calendar: {:.1} s, {per_poll:.2} reads per user",
        t.elapsed().as_secs_f64()
    );

    // Re-reads after changes (what a change notification does for its user).
    let before = delta_reads(&sim).await?;
    let changed: HashSet<String> = (0..args.changes.min(args.users)).map(guid).collect();
    for id in &changed {
        app.replan_calendar(id);
    }
    let t = Instant::now();
    loop {
        let n = delta_reads(&sim).await? - before;
        if n >= changed.len() as u64 || t.elapsed() > StdDuration::from_secs(60) {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let per_change = (delta_reads(&sim).await? - before) as f64 / changed.len() as f64;
    let reads_per_user_hour =
        per_poll * 60.0 / f64::from(poll_minutes) + per_change * args.per_day as f64 / 24.0;
    println!(
        "steady state: {per_poll:.2} reads per fallback every {poll_minutes} min + {per_change:.2} per change x {} changes a day = {reads_per_user_hour:.3} Graph calendar reads per user per hour",
        args.per_day
    );
    let per_switch = stats.schedule_bytes as f64 / stats.scheduled_switches.max(1) as f64;
    println!(
        "scheduler memory: {} bytes for {} scheduled switches of {} extensions = {per_switch:.0} bytes per switch",
        stats.schedule_bytes, stats.scheduled_switches, stats.followed
    );

    let mut missed = Vec::new();
    if reads_per_user_hour > args.max_reads_per_user_hour {
        missed.push(format!(
            "reads per user per hour {reads_per_user_hour:.3} > {}",
            args.max_reads_per_user_hour
        ));
    }
    if delays.len() < args.same_minute || p99 > args.max_p99_ms {
        missed.push(format!(
            "switch latency p99 {p99} ms over {} of {} switches (target <= {} ms)",
            delays.len(),
            args.same_minute,
            args.max_p99_ms
        ));
    }
    if per_switch > args.max_bytes_per_switch as f64 {
        missed.push(format!(
            "{per_switch:.0} bytes per scheduled switch > {}",
            args.max_bytes_per_switch
        ));
    }
    if !missed.is_empty() {
        bail!("calendar benchmark missed: {}", missed.join("; "));
    }
    println!("calendar: every target met");
    Ok(())
}
