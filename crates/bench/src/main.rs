//! Benchmarks of pbx365 against m365-sim. Each prints its figures (time and Graph requests) and
//! checks them against the targets the issues set; a missed target exits non-zero.
//!
//! `cargo run --release -p pbx365-bench -- <benchmark> [options]`

use clap::{Parser, Subcommand};

mod sim;
mod sip;
mod store;
mod sync;

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
    /// User sync: requests per user, wall time, delta cost, peak memory.
    Sync(sync::Args),
    /// Phones: Kamailio's start with 10,000 SIP accounts, profile change latency to Kamailio.
    Sip(sip::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::StoreUpsert(args) => store::run(args).await,
        Bench::Sim(args) => sim::run(args).await,
        Bench::Sync(args) => sync::run(args).await,
        Bench::Sip(args) => sip::run(args).await,
    }
}
