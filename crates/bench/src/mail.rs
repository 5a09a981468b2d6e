//! Mail outbox benchmark (issue 16), against m365-sim through Graph `sendMail`:
//!
//! 1. **Overhead per message**: `--messages` mails queued and sent with the sim answering each
//!    `sendMail` after `--latency-ms` (20 ms); the figure is the time per message beyond that
//!    latency (store writes, pacing reads, the Graph call's own work).
//! 2. **Paced burst**: `--burst` mails (200) queued at once with `mail.max_per_minute` = 30 and
//!    the minute shortened to `--window-ms`; checks that no window held more than 30 sends, that
//!    the burst was reported as queued with expected send times, and that every mail reached the
//!    sim exactly once.
//!
//! A missed target exits non-zero.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use m365_sim::faults::FaultSpec;
use pbx365_app::mail::MailTuning;
use pbx365_app::App;
use pbx365_domain::settings::{MailTransport, Settings};
use pbx365_domain::{NewMail, OutboxStatus};
use pbx365_store::Store;
use pbx365_testkit::tenant::{world, World};

/// Options.
#[derive(clap::Args)]
pub struct Args {
    /// Messages of the overhead run.
    #[arg(long, default_value_t = 100)]
    messages: usize,
    /// Latency the sim adds to each sendMail, in milliseconds.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Required overhead per message beyond the sim latency, in milliseconds.
    #[arg(long, default_value_t = 50.0)]
    max_overhead_ms: f64,
    /// Messages of the paced burst.
    #[arg(long, default_value_t = 200)]
    burst: usize,
    /// Messages per window (Exchange Online: 30 per minute).
    #[arg(long, default_value_t = 30)]
    per_window: u32,
    /// The window standing in for a minute, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    window_ms: u64,
}

fn settings(w: &World, sender: &str) -> Settings {
    let mut s = Settings {
        data_dir: w.reader_keys_dir.clone(),
        ..Settings::default()
    };
    s.m365.graph_url = w.sim.graph_url().into();
    s.m365.authority_url = w.sim.authority_url().into();
    s.m365.tenant_id = Some(w.sim.tenant_id.clone());
    s.m365.client_id = Some(w.reader_client_id.clone());
    s.mail.transport = MailTransport::Microsoft365;
    s.mail.sender = Some(sender.into());
    s
}

fn tuning(window: Duration) -> MailTuning {
    MailTuning {
        idle: Duration::from_millis(50),
        backoff_base: chrono::Duration::milliseconds(100),
        backoff_max: chrono::Duration::seconds(1),
        message_window: chrono::Duration::from_std(window).unwrap_or_default(),
        alert_every: Duration::from_secs(3600),
        ..MailTuning::default()
    }
}

async fn queue(app: &App, n: usize, tag: &str) -> anyhow::Result<()> {
    for i in 0..n {
        app.queue_mail(NewMail {
            kind: "other".into(),
            to: vec!["ops@contoso.com".into()],
            subject: format!("{tag} {i:04}"),
            text: "benchmark".into(),
            ..NewMail::default()
        })
        .await?;
    }
    Ok(())
}

async fn wait_done(store: &Store, limit: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + limit;
    loop {
        let c = store.mail_counts().await?;
        if c.queued == 0 && c.sending == 0 {
            return Ok(());
        }
        if Instant::now() > until {
            bail!("the outbox did not drain in {limit:?}: {c:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Subject -> deliveries, from the sim's outbox.
async fn delivered(w: &World) -> anyhow::Result<BTreeMap<String, usize>> {
    let v = w.sim.control().get_json("/_sim/mail").await?;
    let mut out = BTreeMap::new();
    for m in v["value"].as_array().into_iter().flatten() {
        let s = m["message"]["subject"].as_str().unwrap_or_default();
        *out.entry(s.to_string()).or_default() += 1;
    }
    Ok(out)
}

/// Runs the benchmark.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let w = world(3).await;
    let sender = w
        .users()
        .await
        .into_iter()
        .find(|u| u.mail.is_some())
        .and_then(|u| u.user_principal_name)
        .context("a user with a mailbox")?;
    let mut failures = Vec::new();

    // 1. Overhead per message.
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite://{}/bench.db", dir.path().display())).await?;
    let mut s = settings(&w, &sender);
    s.mail.max_per_minute = 1_000_000;
    s.mail.max_recipients_per_day = 1_000_000;
    let app = App::new(store.clone(), s).with_mail_tuning(tuning(Duration::from_secs(60)));
    // Warm the token and connection up, so the figure is the outbox's, not sign-in's.
    queue(&app, 1, "warm-up").await?;
    let worker = app.start_mail_worker();
    wait_done(&store, Duration::from_secs(30)).await?;
    w.sim
        .control()
        .add_fault(&FaultSpec {
            path: "/sendMail".into(),
            latency_ms: Some(args.latency_ms),
            ..FaultSpec::default()
        })
        .await?;
    let started = Instant::now();
    queue(&app, args.messages, "overhead").await?;
    wait_done(&store, Duration::from_secs(600)).await?;
    let per_msg = started.elapsed().as_secs_f64() * 1000.0 / args.messages as f64;
    worker.stop();
    let overhead = per_msg - args.latency_ms as f64;
    println!(
        "mail overhead: {} messages, {per_msg:.1} ms per message with {} ms sim latency -> {overhead:.1} ms outbox overhead (store + send; target < {:.0} ms)",
        args.messages, args.latency_ms, args.max_overhead_ms
    );
    if overhead > args.max_overhead_ms {
        failures.push(format!(
            "overhead {overhead:.1} ms > {:.0} ms",
            args.max_overhead_ms
        ));
    }
    w.sim.control().clear_faults().await?;

    // 2. A paced burst.
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite://{}/bench.db", dir.path().display())).await?;
    let mut s = settings(&w, &sender);
    s.mail.max_per_minute = args.per_window;
    let window = Duration::from_millis(args.window_ms);
    let app = App::new(store.clone(), s).with_mail_tuning(tuning(window));
    let before = delivered(&w).await?;
    queue(&app, args.burst, "burst").await?;
    let outbox = app.outbox(10_000).await?;
    let last_expected = outbox
        .iter()
        .filter(|e| e.mail.status == OutboxStatus::Pending)
        .filter_map(|e| e.expected_at)
        .max()
        .context("the burst is reported as queued with expected send times")?;
    let first_created = outbox
        .iter()
        .map(|e| e.mail.created_at)
        .min()
        .unwrap_or_default();
    let expected_span = (last_expected - first_created).to_std().unwrap_or_default();
    let started = Instant::now();
    let worker = app.start_mail_worker();
    wait_done(
        &store,
        window * (args.burst as u32 / args.per_window.max(1) + 5) * 3,
    )
    .await?;
    let took = started.elapsed();
    worker.stop();
    let mails = store.list_mail(100_000).await?;
    let mut times: Vec<DateTime<Utc>> = mails.iter().filter_map(|m| m.sent_at).collect();
    times.sort();
    let win = chrono::Duration::from_std(window)?;
    let busiest = times
        .iter()
        .map(|t| times.iter().filter(|x| **x <= *t && **x > *t - win).count())
        .max()
        .unwrap_or(0);
    let after = delivered(&w).await?;
    let burst: Vec<(&String, &usize)> = after
        .iter()
        .filter(|(s, _)| s.starts_with("burst ") && !before.contains_key(*s))
        .collect();
    let twice = burst.iter().filter(|(_, n)| **n > 1).count();
    let sent = mails
        .iter()
        .filter(|m| m.status == OutboxStatus::Sent)
        .count();
    println!(
        "mail burst: {} messages at ≤ {} per {} ms: expected over {:.1} s, took {:.1} s; busiest window {busiest}; delivered {} (twice: {twice}), sent {sent}",
        args.burst,
        args.per_window,
        args.window_ms,
        expected_span.as_secs_f64(),
        took.as_secs_f64(),
        burst.len(),
    );
    if busiest > args.per_window as usize {
        failures.push(format!(
            "{busiest} sends in one window > {}",
            args.per_window
        ));
    }
    if burst.len() != args.burst || sent != args.burst {
        failures.push(format!(
            "{} of {} delivered, {sent} recorded sent",
            burst.len(),
            args.burst
        ));
    }
    if twice > 0 {
        failures.push(format!("{twice} mails delivered twice"));
    }
    let min_span = window * (args.burst as u32 - 1) / args.per_window.max(1);
    if took + window < min_span {
        failures.push(format!(
            "the burst took {took:?}: faster than pacing allows ({min_span:?})"
        ));
    }
    if !failures.is_empty() {
        bail!("mail benchmark missed its targets: {}", failures.join("; "));
    }
    Ok(())
}
