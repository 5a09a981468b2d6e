//! Retention (SPEC §10 `retention_days`): once a day one instance of the cluster forgets expired
//! console sessions, notification dedup keys and sync runs older than the retention, keeping the
//! newest [`KEEP_RUNS`] runs and the newest held run (it may still wait for approval).
//!
//! It runs beside the sync service rather than in its loop: sessions expire whether or not
//! Microsoft 365 is connected, and the sync service only runs when it is.

use chrono::{DateTime, Duration, Utc};
use pbx365_store::Store;
use tokio::task::JoinHandle;

use crate::error::SyncResult;
use crate::lease::{instance_name, HeldLease};

/// The lease the pruning instance holds (not the sync lease: pruning never waits for a round).
pub const PRUNE_LEASE: &str = "prune";

/// When the cluster last pruned (kept in the store, so every instance agrees).
pub const LAST_PRUNE_KEY: &str = "sync:last:prune";

/// Sync runs always kept, however old.
pub const KEEP_RUNS: u32 = 100;

/// How often the cluster prunes.
pub fn prune_every() -> Duration {
    Duration::days(1)
}

/// How long the pruning lease lasts unless renewed.
const LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// What is kept and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `retention_days`: sync runs and notification keys older than this go.
    pub days: u32,
    /// Sessions idle this long have expired.
    pub session_idle: Duration,
    /// Sessions this old have expired, however active.
    pub session_absolute: Duration,
}

/// How many rows one pruning removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Expired console and web client sessions.
    pub sessions: u64,
    /// Notification dedup keys older than the retention.
    pub notification_keys: u64,
    /// Sync runs older than the retention.
    pub sync_runs: u64,
}

/// Prunes now, as of `now`, whether due or not (the caller decides who and when).
pub async fn prune(store: &Store, r: &Retention, now: DateTime<Utc>) -> SyncResult<Pruned> {
    let cutoff = now - Duration::days(i64::from(r.days));
    Ok(Pruned {
        sessions: store
            .prune_sessions(now - r.session_absolute, now - r.session_idle)
            .await?,
        notification_keys: store.prune_notification_keys(cutoff).await?,
        sync_runs: store.prune_sync_runs(cutoff, KEEP_RUNS).await?,
    })
}

/// Prunes when this instance gets the pruning lease and the last pruning of the cluster is a
/// day old (or there was none); `None` when another instance holds the lease or it is not due.
pub async fn prune_if_due(
    store: &Store,
    holder: &str,
    r: &Retention,
    now: DateTime<Utc>,
) -> SyncResult<Option<Pruned>> {
    let Some(lease) = HeldLease::try_take(store, PRUNE_LEASE, holder, LEASE_TTL).await? else {
        return Ok(None);
    };
    // Fenced: a pruning that outlived its lease deletes nothing more.
    let fenced = store.fenced(PRUNE_LEASE, lease.token());
    let done = prune_held(&fenced, r, now).await;
    lease.release().await;
    done
}

async fn prune_held(
    store: &Store,
    r: &Retention,
    now: DateTime<Utc>,
) -> SyncResult<Option<Pruned>> {
    let last = store
        .get_kv(LAST_PRUNE_KEY)
        .await?
        .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
        .map(|t| t.with_timezone(&Utc));
    if last.is_some_and(|last| now < last + prune_every()) {
        return Ok(None);
    }
    let pruned = prune(store, r, now).await?;
    store.set_kv(LAST_PRUNE_KEY, &now.to_rfc3339()).await?;
    Ok(Some(pruned))
}

/// Starts the pruning task: every `check` it prunes if due ([`prune_if_due`]), reading the
/// retention anew each time (a settings change applies at the next pruning). Abort the handle
/// to stop it.
pub fn start(
    store: Store,
    retention: impl Fn() -> Retention + Send + 'static,
    check: std::time::Duration,
) -> JoinHandle<()> {
    let holder = instance_name();
    tokio::spawn(async move {
        loop {
            match prune_if_due(&store, &holder, &retention(), Utc::now()).await {
                Ok(Some(p)) => tracing::info!(
                    sessions = p.sessions,
                    notification_keys = p.notification_keys,
                    sync_runs = p.sync_runs,
                    "pruned what is past its retention"
                ),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "pruning old records failed; it is tried again later")
                }
            }
            tokio::time::sleep(check).await;
        }
    })
}
