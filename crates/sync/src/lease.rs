//! The cluster-wide lease every sync job holds while it works (SPEC §9): with several
//! `pbx365 serve` on one database, exactly one of them runs a job at a time, and when the holder
//! dies another takes over once the lease has expired.

use chrono::Duration;
use pbx365_store::Store;
use std::time::Duration as StdDuration;
use tokio::task::JoinHandle;

use crate::error::SyncResult;

/// The lease of the sync jobs (all kinds share it: one round at a time per cluster).
pub const SYNC_LEASE: &str = "sync";

/// A lease held by this instance, renewed in the background until released or dropped.
pub struct HeldLease {
    store: Store,
    name: String,
    holder: String,
    token: i64,
    renewal: JoinHandle<()>,
}

impl HeldLease {
    /// Takes the lease if no other instance holds it.
    pub async fn try_take(
        store: &Store,
        name: &str,
        holder: &str,
        ttl: StdDuration,
    ) -> SyncResult<Option<HeldLease>> {
        let ttl_chrono = Duration::from_std(ttl).unwrap_or(Duration::seconds(30));
        let Some(token) = store.try_acquire_lease(name, holder, ttl_chrono).await? else {
            return Ok(None);
        };
        let renewal = {
            let (store, name, holder) = (store.clone(), name.to_string(), holder.to_string());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(ttl / 3).await;
                    match store.renew_lease(&name, &holder, token, ttl_chrono).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::error!(lease = name, "the lease was lost to another instance");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, lease = name, "renewing the lease failed")
                        }
                    }
                }
            })
        };
        Ok(Some(HeldLease {
            store: store.clone(),
            name: name.to_string(),
            holder: holder.to_string(),
            token,
            renewal,
        }))
    }

    /// Takes the lease, waiting while another instance holds it; `on_wait` is told once.
    pub async fn take(
        store: &Store,
        name: &str,
        holder: &str,
        ttl: StdDuration,
        on_wait: impl FnOnce(&str),
    ) -> SyncResult<HeldLease> {
        let mut on_wait = Some(on_wait);
        let mut pause = StdDuration::from_millis(50);
        loop {
            if let Some(held) = Self::try_take(store, name, holder, ttl).await? {
                return Ok(held);
            }
            if let Some(tell) = on_wait.take() {
                let other = store.lease_holder(name).await?.unwrap_or_default();
                tell(&other);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(StdDuration::from_secs(1));
        }
    }

    /// The fencing token: it grows with every new holder.
    pub fn token(&self) -> i64 {
        self.token
    }

    /// Gives the lease up so another instance can take it at once.
    pub async fn release(self) {
        self.renewal.abort();
        if let Err(e) = self
            .store
            .release_lease(&self.name, &self.holder, self.token)
            .await
        {
            tracing::warn!(error = %e, lease = self.name, "releasing the lease failed; it expires by itself");
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// A name for this instance in lease rows: host, process and a random part.
pub fn instance_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "pbx365".into());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}
