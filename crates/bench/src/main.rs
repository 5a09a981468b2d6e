//! Benchmarks of pbx365 against m365-sim. Each prints its figures (time and Graph requests) and
//! checks them against the targets the issues set; a missed target exits non-zero.
//!
//! `cargo run --release -p pbx365-bench -- <benchmark> [options]`

use clap::{Parser, Subcommand};

mod calendar;
mod child;
mod contacts;
mod delta;
mod login_storm;
mod mail;
mod sim;
mod sip;
mod store;
mod sync;
mod sync_rss;

#[derive(Parser)]
#[command(
    name = "pbx365-bench",
    about = "pbx365 benchmarks (time and Graph request counts)"
)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Upsert extensions through the store (SQLite, and PostgreSQL when a URL is given).
    StoreUpsert(store::Args),
    /// Simple Graph GETs per second served by m365-sim, and its start-up time for a large tenant.
    Sim(sim::Args),
    /// User sync: first full sync with photos (round trips, wall time against the latency
    /// floor) and a delta round in a large tenant.
    Sync(sync::Args),
    /// Mail outbox: overhead per message at 20 ms sim latency, a 200-mail burst paced per sender.
    Mail(mail::Args),
    /// Peak RSS of `pbx365 sync users --full` (release binary) at 100,000 users.
    SyncRss(sync_rss::Args),
    /// 1,000 concurrent wrong console sign-ins against `pbx365 serve` (release binary): server
    /// RSS growth and `/healthz` latency during the storm.
    LoginStorm(login_storm::Args),
    /// Phones: Kamailio's start with 10,000 SIP accounts, profile change latency to Kamailio.
    Sip(sip::Args),
    /// Contact sync: Graph requests per user of a first sync and of a delta round without
    /// changes (2,000 users × 200 contacts, 20 ms sim latency).
    Contacts(contacts::Args),
    /// Calendar status: Graph calendar reads per user and hour in the steady state, switch
    /// latency of 2,000 switches in one minute, scheduler memory per scheduled switch.
    Calendar(calendar::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // reqwest's rustls build needs a process-wide crypto provider before the first client.
    m365_sim::tls::install_crypto_provider();
    // Logs only when asked for (`RUST_LOG=warn`): the figures are the output.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    match Cli::parse().bench {
        Bench::StoreUpsert(args) => store::run(args).await,
        Bench::Sim(args) => sim::run(args).await,
        Bench::Sync(args) => sync::run(args).await,
        Bench::Mail(args) => mail::run(args).await,
        Bench::SyncRss(args) => sync_rss::run(args).await,
        Bench::LoginStorm(args) => login_storm::run(args).await,
        Bench::Sip(args) => sip::run(args).await,
        Bench::Contacts(args) => contacts::run(args).await,
        Bench::Calendar(args) => calendar::run(args).await,
    }
}
