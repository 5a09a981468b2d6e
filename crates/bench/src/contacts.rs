//! Contact sync benchmark against m365-sim (issue 14): 2,000 users × 200 personal contacts (every
//! tenth user with 20 of them in a child folder), the sim adding 20 ms to every request.
//!
//! 1. a first sync (folder trees, then every folder's contacts): Graph requests per user ≤ 0.5;
//! 2. a delta round without changes: Graph requests per user ≤ 0.1.
//!
//! Requests are the HTTP requests pbx365's Graph client sends (a `$batch` of 20 sub-requests is
//! one; token requests are not Graph requests). The per-folder delta reads and the folder
//! listings go 20 to a `$batch`.

use anyhow::bail;
use m365_sim::SimConfig;
use pbx365_domain::settings::{ContactSettings, Edition, SyncSettings};
use pbx365_domain::{NumberRules, SyncStatus};
use pbx365_graph::{GraphClient, GraphConfig};
use pbx365_store::Store;
use pbx365_sync::{ContactsJob, RunOptions, SyncJob, UserSync};
use pbx365_testkit::tenant::register_at;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// Options.
#[derive(clap::Args)]
pub struct Args {
    /// Users, each with a mailbox.
    #[arg(long, default_value_t = 2_000)]
    users: usize,
    /// Personal contacts per user.
    #[arg(long, default_value_t = 200)]
    contacts: usize,
    /// Latency the sim adds to every request (ms).
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
}

/// Most Graph requests per user of a first contact sync.
const MAX_FIRST_PER_USER: f64 = 0.5;
/// Most Graph requests per user of a delta round without changes.
const MAX_DELTA_PER_USER: f64 = 0.1;

fn seed(users: usize, contacts: usize) -> serde_json::Value {
    let mut list = Vec::with_capacity(users);
    let mut books = serde_json::Map::new();
    for u in 0..users {
        let id = format!("00000000-0000-4000-8000-{u:012}");
        let upn = format!("user{u}@contoso.example");
        list.push(
            json!({"id": id, "displayName": format!("User {u}"), "userPrincipalName": upn,
            "mail": upn, "accountEnabled": true, "userType": "Member"}),
        );
        let book: Vec<serde_json::Value> = (0..contacts)
            .map(|c| {
                let mut v = json!({"displayName": format!("Contact {u}-{c}"),
                    "businessPhones": [format!("+1 425 555 {:04}", c % 10_000)]});
                if u % 10 == 0 && c < 20 {
                    v["parentFolder"] = json!("Friends");
                }
                v
            })
            .collect();
        books.insert(upn, json!(book));
    }
    json!({"users": list, "contacts": books})
}

/// Runs the benchmark.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let sim = m365_sim::start(SimConfig {
        users: 0,
        seed: Some(seed(args.users, args.contacts)),
        latency_ms: args.latency_ms,
        https: false,
        ..SimConfig::default()
    })
    .await?;
    println!(
        "tenant: {} users × {} contacts, sim latency {} ms (ready in {:.1} s)",
        args.users,
        args.contacts,
        args.latency_ms,
        started.elapsed().as_secs_f64()
    );
    let control = sim.control();
    let reader = register_at(
        &control,
        "pbx365-bench",
        &["User.Read.All", "Directory.Read.All", "Contacts.Read"],
        true,
    )
    .await;
    let graph = Arc::new(GraphClient::new(
        GraphConfig {
            authority_url: sim.base_url.clone(),
            graph_url: sim.base_url.clone(),
            tenant_id: Some(sim.tenant_id.clone()),
            client_id: Some(reader.client_id.clone()),
            ..GraphConfig::default()
        },
        reader.keys,
    )?);
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite://{}/bench.db", dir.path().display())).await?;
    let users = UserSync::new(
        store.clone(),
        graph.clone(),
        SyncSettings {
            photos: false,
            ..SyncSettings::default()
        },
        NumberRules::default(),
    )
    .run(&RunOptions::default())
    .await?;
    if users.status != SyncStatus::Completed {
        bail!("the user sync did not complete: {:?}", users.report.errors);
    }
    let settings = ContactSettings {
        personal: true,
        shared_mailboxes: Vec::new(),
        default_country: "US".into(),
    };
    let job = ContactsJob::new(
        store.clone(),
        graph.clone(),
        Arc::new(move || (Edition::Pro, settings.clone())),
    );
    let per_user = args.users.max(1) as f64;
    let mut missed = Vec::new();
    for (what, limit) in [
        ("first sync", MAX_FIRST_PER_USER),
        ("delta round without changes", MAX_DELTA_PER_USER),
    ] {
        let before = graph.stats().requests;
        let t = Instant::now();
        let run = job.run(&RunOptions::default()).await?;
        let wall = t.elapsed().as_secs_f64();
        if run.status != SyncStatus::Completed {
            bail!("the contact {what} did not complete: {:?}", run.report);
        }
        let requests = graph.stats().requests - before;
        let ratio = requests as f64 / per_user;
        let entries = store.synced_contact_total().await?;
        println!(
            "contacts {what}: {requests} Graph requests = {ratio:.3} per user (target ≤ {limit}), \
             {wall:.1} s, {entries} entries synced"
        );
        if ratio > limit {
            missed.push(format!("{what}: {ratio:.3} requests per user > {limit}"));
        }
    }
    let expected = (args.users * args.contacts) as u64;
    let entries = store.synced_contact_total().await?;
    if entries != expected {
        missed.push(format!("{entries} entries synced, {expected} expected"));
    }
    if missed.is_empty() {
        println!("all contact sync targets met");
        Ok(())
    } else {
        bail!("missed targets: {}", missed.join("; "))
    }
}
