//! What a delta round costs as the tenant grows (issue 10): a round with 10 changes (5 updates,
//! 3 new users, 2 deletions) in tenants of 10,000 and 100,000 users, at 0 ms sim latency, on
//! SQLite and on PostgreSQL (when `PBX365_TEST_POSTGRES_URL` names a server, as under
//! `scripts/with-postgres`). Targets: ≤ 50 ms at 100,000 users and within 1.5× of the
//! 10,000-user figure. Photos are off (the setup's full sync would otherwise download 100,000
//! photos); the rounds are timed end to end through the users kind, run record included.
//!
//! Then the notification path at 100,000 users: a change in the sim, Graph's notification to a
//! receiver wired like `pbx365 serve`'s (persist, wake the worker), the worker's delta round, and
//! the extension as `GET /api/v1/extensions/{number}` of the web app shows it: p50/p99, target
//! p99 ≤ 1 s.

use anyhow::bail;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use m365_sim::SimConfig;
use pbx365_domain::settings::SyncSettings;
use pbx365_domain::{NumberRules, SyncStatus};
use pbx365_graph::users;
use pbx365_store::Store;
use pbx365_sync::{receiver, RunOptions, SyncService, UserSync};
use pbx365_testkit::db::{
    create_postgres_database, drop_postgres_database, postgres_admin_url, FreshDb,
};
use pbx365_testkit::tenant::{world_with, World};
use pbx365_testkit::web::server::TestServer;
use serde_json::json;
use std::time::{Duration, Instant};

/// Delta rounds timed per tenant (the median is compared with the target).
const ROUNDS: usize = 5;
/// The most a 10-change round may take at 100,000 users.
const MAX_DELTA_MS: f64 = 50.0;
/// The most the 100,000-user round may cost relative to the 10,000-user one.
const MAX_GROWTH: f64 = 1.5;
/// Changes timed through the notification path.
const NOTIFY_SAMPLES: usize = 40;
/// The most the slowest change may take from the sim to the API.
const MAX_NOTIFY_P99_MS: f64 = 1_000.0;

/// One database to run on.
struct Db {
    name: &'static str,
    fresh: FreshDb,
    /// The PostgreSQL database to drop afterwards: (admin URL, name).
    drop: Option<(String, String)>,
}

impl Db {
    async fn sqlite() -> anyhow::Result<Db> {
        Ok(Db {
            name: "SQLite",
            fresh: pbx365_testkit::db::sqlite().await,
            drop: None,
        })
    }

    async fn postgres(admin: &str) -> anyhow::Result<Db> {
        let name = format!("pbx365_bench_{}", uuid::Uuid::new_v4().simple());
        let url = create_postgres_database(admin, &name).await?;
        Ok(Db {
            name: "PostgreSQL",
            fresh: FreshDb {
                url,
                dir: tempfile::tempdir()?,
            },
            drop: Some((admin.to_string(), name)),
        })
    }

    async fn finish(self) {
        if let Some((admin, name)) = &self.drop {
            let _ = drop_postgres_database(admin, name).await;
        }
    }
}

fn settings() -> SyncSettings {
    SyncSettings {
        photos: false,
        ..SyncSettings::default()
    }
}

fn engine(store: &Store, w: &World) -> UserSync {
    UserSync::new(
        store.clone(),
        w.graph.clone(),
        settings(),
        NumberRules::default(),
    )
}

/// Runs the delta-cost benchmark (and the notification path at the large size).
pub async fn run(
    small: usize,
    large: usize,
    notify: bool,
    missed: &mut Vec<String>,
) -> anyhow::Result<()> {
    let mut dbs: Vec<&'static str> = vec!["SQLite"];
    let admin = postgres_admin_url();
    if admin.is_some() {
        dbs.push("PostgreSQL");
    } else {
        println!("delta rounds: PBX365_TEST_POSTGRES_URL is not set, PostgreSQL is skipped (run under scripts/with-postgres)");
    }
    for which in dbs {
        let mut medians = Vec::new();
        for size in [small, large] {
            let db = match which {
                "SQLite" => Db::sqlite().await?,
                _ => Db::postgres(admin.as_deref().unwrap_or_default()).await?,
            };
            let result = one_tenant(&db, size, notify && size == large, missed).await;
            db.finish().await;
            medians.push(result?);
        }
        let (m_small, m_large) = (medians[0], medians[1]);
        let growth = m_large / m_small.max(0.001);
        println!(
            "  {which}: {m_large:.1} ms at {large} users is {growth:.2}x the {m_small:.1} ms at {small} users (target <= {MAX_DELTA_MS} ms and <= {MAX_GROWTH}x)"
        );
        if m_large > MAX_DELTA_MS {
            missed.push(format!(
                "{which}: delta round {m_large:.1} ms at {large} users > {MAX_DELTA_MS} ms"
            ));
        }
        if growth > MAX_GROWTH {
            missed.push(format!(
                "{which}: delta round at {large} users is {growth:.2}x the {small}-user round > {MAX_GROWTH}x"
            ));
        }
    }
    Ok(())
}

/// A tenant of `size` users synced once, then [`ROUNDS`] timed 10-change delta rounds; returns
/// their median in ms.
async fn one_tenant(
    db: &Db,
    size: usize,
    notify: bool,
    missed: &mut Vec<String>,
) -> anyhow::Result<f64> {
    let w = world_with(SimConfig {
        users: size,
        https: false,
        latency_ms: 0,
        ..SimConfig::default()
    })
    .await;
    let store = Store::connect(&db.fresh.url).await?;
    let started = Instant::now();
    let first = engine(&store, &w).run(&RunOptions::default()).await?;
    if first.status != SyncStatus::Completed {
        bail!(
            "the setup's full sync did not complete: {:?}",
            first.report.errors
        );
    }
    println!(
        "delta rounds on {}, {size} users (full sync for the setup: {:.1} s)",
        db.name,
        started.elapsed().as_secs_f64()
    );
    let mut ids: Vec<String> = Vec::new();
    let mut times = Vec::new();
    for round in 0..ROUNDS {
        // Users this benchmark did not touch yet: the first synced ones, by number.
        if ids.len() < 7 {
            ids = pbx365_testkit::sync::synced(&store)
                .await
                .into_values()
                .filter(|e| e.enabled)
                .filter_map(|e| e.m365_id)
                .take(200)
                .collect();
        }
        let mut pick = ids.split_off(ids.len() - 7);
        for (i, id) in pick.drain(..5).enumerate() {
            let body = json!({ "jobTitle": format!("Delta bench {round}.{i}") });
            w.writer.send(users::update_request(&id, body)).await?;
        }
        for id in pick {
            w.writer.send(users::delete_request(&id)).await?;
        }
        for i in 0..3 {
            let nick = format!("delta{round}x{i}");
            w.writer
                .send(users::create_request(json!({
                    "accountEnabled": true, "displayName": format!("Delta {round} {i}"),
                    "givenName": "Delta", "surname": format!("{round} {i}"), "mailNickname": nick,
                    "userPrincipalName": format!("{nick}@{}", w.sim.domain),
                    "passwordProfile": {"password": "Secret-123456", "forceChangePasswordNextSignIn": false}
                })))
                .await?;
        }
        let started = Instant::now();
        let run = engine(&store, &w).run(&RunOptions::default()).await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let r = &run.report;
        let shape = (r.updated.len(), r.created.len(), r.disabled.len());
        if run.status != SyncStatus::Completed || shape != (5, 3, 2) {
            bail!(
                "round {round}: expected 5 updated, 3 created, 2 disabled; got {shape:?} ({:?}, {:?})",
                run.status,
                r.errors
            );
        }
        println!("  round {round}: {ms:.1} ms");
        times.push(ms);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "  {}: delta round with 10 changes in {size} users: median {median:.1} ms, max {:.1} ms",
        db.name,
        times[times.len() - 1]
    );
    if notify {
        notification_path(db, &w, &store, missed).await?;
    }
    store.close().await;
    w.sim.shutdown().await;
    Ok(median)
}

/// The receiver as `pbx365 serve` mounts it: persist, then wake the worker at once.
async fn serve_receiver(listener: tokio::net::TcpListener, store: Store, svc: SyncService) {
    async fn handler(
        State((store, svc)): State<(Store, SyncService)>,
        RawQuery(q): RawQuery,
        body: Bytes,
    ) -> Response {
        let reply = receiver::handle(&store, q.as_deref(), &body).await;
        if reply.persisted {
            svc.wake();
        }
        let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
        match reply.text {
            Some(t) => (status, t).into_response(),
            None => status.into_response(),
        }
    }
    let app = axum::Router::new()
        .route("/api/m365/notifications", axum::routing::post(handler))
        .with_state((store, svc));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
}

/// p50/p99 from a change in the sim to the changed extension in pbx365's REST API.
async fn notification_path(
    db: &Db,
    w: &World,
    store: &Store,
    missed: &mut Vec<String>,
) -> anyhow::Result<()> {
    // The web app on the same database (its own pool, as a second process would have).
    let api = TestServer::start(FreshDb {
        url: db.fresh.url.clone(),
        dir: tempfile::tempdir()?,
    })
    .await;
    // The receiver listens first: its URL is the service's public URL.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let svc = SyncService::new(
        store.clone(),
        w.graph.clone(),
        settings(),
        NumberRules::default(),
        &url,
    )
    .with_poll_interval(Duration::from_secs(3600));
    serve_receiver(listener, store.clone(), svc.clone()).await;
    let bg = svc.start();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !store
        .list_subscriptions()
        .await?
        .iter()
        .any(|s| s.resource == "users")
    {
        if Instant::now() > deadline {
            bail!("no users subscription was made");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let targets: Vec<(String, String)> = pbx365_testkit::sync::synced(store)
        .await
        .into_iter()
        .filter(|(_, e)| e.enabled)
        .map(|(id, e)| (id, e.number.to_string()))
        .skip(1_000)
        .take(NOTIFY_SAMPLES)
        .collect();
    let mut times = Vec::new();
    for (i, (id, number)) in targets.iter().enumerate() {
        let title = format!("Notified {i}");
        let started = Instant::now();
        w.writer
            .send(users::update_request(id, json!({ "jobTitle": title })))
            .await?;
        let path = format!("/api/v1/extensions/{number}");
        loop {
            let (status, ext) = api.get_json(&path).await;
            if status == 200 && ext["job_title"] == title {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the change of user {id} did not reach the API in 30 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    bg.stop().await;
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    let (p50, p99) = (pct(0.50), pct(0.99));
    println!(
        "  {}: notification path at {} synced users, {} changes: p50 {p50:.0} ms, p99 {p99:.0} ms (target p99 <= {MAX_NOTIFY_P99_MS} ms)",
        db.name,
        store.synced_counts().await?.synced,
        times.len()
    );
    if p99 > MAX_NOTIFY_P99_MS {
        missed.push(format!(
            "{}: notification path p99 {p99:.0} ms > {MAX_NOTIFY_P99_MS} ms",
            db.name
        ));
    }
    Ok(())
}
