//! Phones: `count` extensions with SIP secrets in a SQLite store, a real Kamailio loading them
//! at start, then `changes` profile changes through the app's one profile writer, each timed
//! until Kamailio holds it (polled over JSON-RPC). Target (issue 12): p99 <= 100 ms. Then the
//! time until Kamailio's presence server holds every extension (published again after its
//! start, paced) and Kamailio's peak shared memory.

use anyhow::Context;
use pbx365_app::App;
use pbx365_domain::settings::Settings;
use pbx365_domain::{Extension, ExtensionNumber, ExtensionSource, Profile, ProfileState};
use pbx365_sip::supervisor::{find_kamailio, Supervisor};
use pbx365_sip::{digest, KamailioConfig, RpcClient, SipPusher};
use pbx365_store::Store;
use pbx365_testkit::sip::free_port;
use serde_json::json;
use std::time::{Duration, Instant};

/// The latency target for a profile change to reach Kamailio (p99).
const TARGET_P99: Duration = Duration::from_millis(100);

/// Options.
#[derive(clap::Args)]
pub struct Args {
    /// Extensions with SIP secrets.
    #[arg(long, default_value_t = 10_000)]
    count: u32,
    /// Profile changes timed.
    #[arg(long, default_value_t = 1_000)]
    changes: u32,
}

fn extension(i: u32) -> Extension {
    Extension {
        number: ExtensionNumber::from_trusted((100_000 + i).to_string()),
        first_name: format!("First{i}"),
        last_name: format!("Last{i}"),
        display_name: format!("First{i} Last{i}"),
        email: None,
        mobile: None,
        outbound_caller_id: None,
        department: None,
        job_title: None,
        office: None,
        enabled: true,
        source: ExtensionSource::M365,
        m365_id: Some(format!("{i:08x}-0000-4000-8000-000000000000")),
        photo: None,
        is_admin: false,
        groups: vec![],
        profile: ProfileState::default(),
        disabled_at: None,
        updated_at: chrono::Utc::now(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Runs the benchmark.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let binary = find_kamailio()
        .context("no `kamailio` binary: apt-get install kamailio kamailio-sqlite-modules kamailio-presence-modules")?;
    let dir = tempfile::tempdir()?;
    let mut settings = Settings {
        data_dir: dir.path().to_path_buf(),
        ..Settings::default()
    };
    settings.sip.listen = format!("127.0.0.1:{}", free_port());
    settings.sip.rpc_url = format!("http://127.0.0.1:{}/RPC", free_port());
    let store = Store::connect(&settings.effective_database_url()).await?;
    let exts: Vec<Extension> = (0..args.count).map(extension).collect();
    pbx365_testkit::data::put_extensions(&store, &exts).await?;
    let realm = settings.effective_sip_domain();
    let now = chrono::Utc::now();
    for e in &exts {
        let (user, secret) = (e.number.as_str(), digest::new_secret());
        store
            .set_sip_credentials(
                user,
                &realm,
                &digest::ha1(user, &realm, &secret),
                &digest::ha1b(user, &realm, &secret),
                now,
            )
            .await?;
    }

    let mut cfg = KamailioConfig::from_settings(&settings)?;
    cfg.log_stderr = true;
    cfg.children = 2;
    let rpc = RpcClient::new(&settings.sip.rpc_url);
    let started = Instant::now();
    let kamailio = Supervisor::start(
        &binary,
        &dir.path().join("kamailio"),
        &cfg.render(),
        rpc.clone(),
    )
    .await?;
    anyhow::ensure!(rpc.is_up().await, "Kamailio did not start");
    let load = started.elapsed();
    let last = exts
        .last()
        .map(|e| e.number.to_string())
        .unwrap_or_default();
    let held = rpc.call("htable.get", json!(["prof", last])).await?;
    anyhow::ensure!(
        held["item"]["value"] == "available",
        "Kamailio did not load the profiles: {held}"
    );
    println!(
        "Kamailio start with {} extensions loaded: {:.0} ms",
        args.count,
        load.as_secs_f64() * 1000.0
    );

    let app = App::new(store.clone(), settings);
    app.set_sip_pusher(SipPusher::start(rpc.clone(), &realm));
    let mut latencies = Vec::with_capacity(args.changes as usize);
    for i in 0..args.changes {
        let number = exts[(i % args.count) as usize].number.to_string();
        let profile = if i % 2 == 0 {
            Profile::Dnd
        } else {
            Profile::Available
        };
        let t0 = Instant::now();
        app.set_profile("bench", &number, profile, None).await?;
        loop {
            let held = rpc.call("htable.get", json!(["prof", number])).await?;
            if held["item"]["value"] == profile.as_str() {
                break;
            }
            anyhow::ensure!(
                t0.elapsed() < Duration::from_secs(5),
                "change {i} never reached Kamailio"
            );
        }
        latencies.push(t0.elapsed());
    }
    // Presence lives in Kamailio's memory only: after its start pbx365 publishes every
    // extension again, paced; how long until Kamailio has them all, and its peak shared memory.
    let presence_started = Instant::now();
    loop {
        let listed = rpc.call("presence.presentity_list", json!([])).await?;
        let held = listed.as_array().map_or(0, Vec::len);
        if held >= args.count as usize {
            break;
        }
        anyhow::ensure!(
            presence_started.elapsed() < Duration::from_secs(600),
            "Kamailio holds the presence of only {held} of {} extensions after 10 minutes",
            args.count
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let shm = rpc.call("core.shmmem", json!([])).await?;
    println!(
        "presence of all {} extensions in Kamailio {:.1} s after the changes (publications paced \
         at {}/s); Kamailio's shared memory: peak {:.1} MB of {:.0} MB",
        args.count,
        presence_started.elapsed().as_secs_f64(),
        pbx365_sip::pusher::PUBLISH_RATE,
        shm["max_used"].as_f64().unwrap_or(0.0) / 1e6,
        shm["total"].as_f64().unwrap_or(0.0) / 1e6,
    );
    kamailio.stop().await;
    store.close().await;
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));
    println!(
        "{} profile changes to Kamailio: p50 {:.1} ms, p99 {:.1} ms (target p99 <= {} ms)",
        args.changes,
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        TARGET_P99.as_millis()
    );
    anyhow::ensure!(
        p99 <= TARGET_P99,
        "p99 {p99:?} is above the target {TARGET_P99:?}"
    );
    println!("target met");
    Ok(())
}
