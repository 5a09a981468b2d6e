//! Store write throughput: `count` synced extensions written through the sync's field-owned
//! write (`ExtensionOp::Sync` in one `Store::apply_extension_ops` batch) into a new SQLite file
//! and, when a server is given, a fresh PostgreSQL database.
//!
//! Two passes per database: inserting into an empty directory, then updating every row (what a
//! full re-sync does). Target (issue 2): at least 20,000 upserts/s on SQLite for both passes, so
//! storage never limits a sync.

use anyhow::Context;
use chrono::Utc;
use pbx365_domain::{Extension, ExtensionNumber, ExtensionSource, ProfileState, AZURE_AD_GROUP};
use pbx365_store::{ExtensionOp, Store};
use pbx365_testkit::db::{create_postgres_database, drop_postgres_database};
use std::time::Instant;

/// Upserts per second SQLite must reach.
const SQLITE_TARGET: f64 = 20_000.0;

/// Options.
#[derive(clap::Args)]
pub struct Args {
    /// Extensions to upsert.
    #[arg(long, default_value_t = 100_000)]
    count: u32,
    /// PostgreSQL admin URL (a fresh database is created in that server and dropped afterwards).
    #[arg(long, env = "PBX365_TEST_POSTGRES_URL")]
    postgres_url: Option<String>,
}

fn extension(i: u32, pass: u32) -> Extension {
    let number = 100_000 + i;
    Extension {
        number: ExtensionNumber::from_trusted(number.to_string()),
        first_name: format!("First{i}"),
        last_name: format!("Last{i}"),
        display_name: format!("First{i} Last{i} ({pass})"),
        email: Some(format!("user{i}@contoso.com")),
        mobile: Some(format!("+49 170 {i:07}")),
        outbound_caller_id: Some(format!("+49 30 {i:07}")),
        department: Some(format!("Department {}", i % 50)),
        job_title: Some("Engineer".into()),
        office: Some("Berlin".into()),
        enabled: true,
        source: ExtensionSource::M365,
        // The same person in both passes: the second pass updates the first pass's rows.
        m365_id: Some(format!("{i:08x}-0000-4000-8000-000000000000")),
        photo: None,
        is_admin: false,
        groups: vec![AZURE_AD_GROUP.to_string()],
        profile: ProfileState::default(),
        disabled_at: None,
        updated_at: Utc::now(),
    }
}

/// Runs both passes on `store`; returns upserts/s of (insert, replace).
async fn measure(store: &Store, count: u32) -> anyhow::Result<(f64, f64)> {
    let mut rates = [0.0; 2];
    for (pass, rate) in rates.iter_mut().enumerate() {
        let ops: Vec<ExtensionOp> = (0..count)
            .map(|i| ExtensionOp::Sync(extension(i, pass as u32)))
            .collect();
        let started = Instant::now();
        store
            .apply_extension_ops(&ops, None)
            .await
            .context("the sync write failed")?;
        let secs = started.elapsed().as_secs_f64();
        *rate = count as f64 / secs;
    }
    let stored = store.extension_numbers().await?.len();
    anyhow::ensure!(
        stored == count as usize,
        "expected {count} extensions, found {stored}"
    );
    Ok((rates[0], rates[1]))
}

fn report(db: &str, count: u32, (insert, replace): (f64, f64)) {
    println!("{db:<10} {count} extensions: insert {insert:>9.0} upserts/s, replace {replace:>9.0} upserts/s");
}

/// Runs the benchmark.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let count = args.count;
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    let store = Store::connect(&url).await?;
    let sqlite = measure(&store, count).await?;
    store.close().await;
    report("SQLite", count, sqlite);

    match &args.postgres_url {
        Some(admin) => {
            let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let url = create_postgres_database(admin, &name).await?;
            let store = Store::connect(&url).await?;
            let result = measure(&store, count).await;
            store.close().await;
            drop_postgres_database(admin, &name).await?;
            report("PostgreSQL", count, result?);
        }
        None => println!("PostgreSQL skipped: give --postgres-url or PBX365_TEST_POSTGRES_URL"),
    }

    let slowest = sqlite.0.min(sqlite.1);
    anyhow::ensure!(
        slowest >= SQLITE_TARGET,
        "SQLite reached {slowest:.0} upserts/s, below the target of {SQLITE_TARGET:.0}"
    );
    println!("target met: SQLite >= {SQLITE_TARGET:.0} upserts/s");
    Ok(())
}
