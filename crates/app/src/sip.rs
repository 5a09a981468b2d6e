//! Phones (SPEC §8): SIP secrets of extensions and the routing state Kamailio holds.
//!
//! Every store write that alters how calls to an extension are routed (profile, display name,
//! mobile, enabled, deletion — by the API, the console, the sync, a CLI command or another
//! instance) adds a row to the store's feed of SIP changes in its own transaction. The process
//! that pushes to Kamailio (`serve`/`demo`, through [`App::set_sip_pusher`]) tails that feed: at
//! once when this process wrote (it wakes the tail), otherwise within [`POLL`]. It sends each
//! changed extension's current state, so a late or repeated push never sets an old state.

use crate::{App, AppError};
use chrono::Utc;
use pbx365_sip::pusher::Update;
pub use pbx365_sip::rpc::AttackCounts;
use pbx365_sip::{digest, SipPusher, SipStatus};
use pbx365_store::{sip_change_floor, SipChangeKind, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often the feed is read when this process wrote nothing (changes by other processes).
pub const POLL: Duration = Duration::from_millis(500);
/// How far back the periodic read looks again: a transaction that committed after a later one
/// (PostgreSQL) wrote feed ids below the cursor.
const LOOKBACK: Duration = Duration::from_secs(3);
/// Feed rows older than this are deleted (Kamailio reloads everything when it restarts).
const KEEP: Duration = Duration::from_secs(3600);
/// Feed rows read at once.
const BATCH: u32 = 5_000;

/// The pusher and the wake-up of the feed's tail.
#[derive(Debug, Clone)]
pub(crate) struct SipLink {
    pusher: SipPusher,
    wake: Arc<Notify>,
}

impl App {
    /// Sends routing changes to Kamailio through `pusher` from now on: starts tailing the feed
    /// of SIP changes (those before now are in the store Kamailio loads at its start).
    pub fn set_sip_pusher(&self, pusher: SipPusher) {
        let wake = Arc::new(Notify::new());
        tokio::spawn(tail_feed(self.store.clone(), pusher.clone(), wake.clone()));
        *self.sip.write().unwrap_or_else(|e| e.into_inner()) = Some(SipLink { pusher, wake });
    }

    /// The pusher's status (for the console), when this process pushes to Kamailio.
    pub fn sip_status(&self) -> Option<SipStatus> {
        self.sip
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|l| l.pusher.status())
    }

    /// Failed authentications and bans Kamailio counted (for the console), when this process
    /// pushes to a Kamailio that answers.
    pub async fn sip_attack_counts(&self) -> Option<AttackCounts> {
        self.sip_rpc()?.attack_counts().await.ok()
    }

    /// Kamailio's JSON-RPC, when this process pushes to a Kamailio.
    fn sip_rpc(&self) -> Option<pbx365_sip::RpcClient> {
        self.sip
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|l| l.pusher.rpc().clone())
    }

    /// Whether extension `number` is on a call now (Kamailio's dialogs); `None` when this
    /// process pushes to no Kamailio or it does not answer.
    pub async fn on_call(&self, number: &str) -> Option<bool> {
        Some(self.users_on_calls().await?.contains(number))
    }

    /// The extensions on a call now (Kamailio's dialogs), when Kamailio answers.
    pub async fn users_on_calls(&self) -> Option<BTreeSet<String>> {
        // Pages wait for this: a Kamailio that does not answer at once is left out.
        let rpc = self.sip_rpc()?;
        tokio::time::timeout(Duration::from_millis(500), rpc.users_on_calls())
            .await
            .ok()?
            .ok()
    }

    /// This process wrote a SIP change: the tail reads the feed now, not at its next poll.
    pub(crate) fn wake_sip(&self) {
        if let Some(l) = self.sip.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            l.wake.notify_one();
        }
    }

    /// A new SIP secret for an enabled extension: returned once, stored only as its digest
    /// hashes for the SIP domain; the old secret stops working and its registrations end.
    pub async fn rotate_sip_secret(&self, actor: &str, number: &str) -> Result<String, AppError> {
        let ext = self.extension(number).await?;
        if !ext.enabled {
            return Err(AppError::Conflict(format!(
                "Extension {} is disabled; a disabled extension cannot register, so it gets no SIP secret.",
                ext.number
            )));
        }
        let realm = self.settings().effective_sip_domain();
        let user = ext.number.as_str();
        let secret = digest::new_secret();
        self.store
            .set_sip_credentials(
                user,
                &realm,
                &digest::ha1(user, &realm, &secret),
                &digest::ha1b(user, &realm, &secret),
                self.now(),
            )
            .await?;
        self.audit(actor, "extension.sip_secret", user, &realm)
            .await;
        self.wake_sip();
        Ok(secret)
    }
}

/// The Unix second a feed id was written in (ids start with the time in hex nanoseconds).
fn change_secs(id: &str) -> i64 {
    let nanos = id
        .get(..16)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or(0);
    i64::try_from(nanos / 1_000_000_000).unwrap_or(i64::MAX)
}

/// Queues every enabled extension's presence again: a Kamailio that (re)started keeps presence
/// in memory only, so it has none (its routing it loads from the store itself). A failed read
/// is tried again a second later: until then, watchers see nobody.
async fn republish_presence(store: &Store, pusher: &SipPusher) {
    loop {
        match store.sip_profiles().await {
            Ok(all) => {
                for (number, profile) in all {
                    pusher.push(&number, Update::Presence { profile });
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the profiles to publish as presence; retrying");
                if pusher.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Reads the feed of SIP changes and hands each changed extension's current state to `pusher`,
/// until the pusher's worker is gone.
async fn tail_feed(store: Store, pusher: SipPusher, wake: Arc<Notify>) {
    let lookback = chrono::Duration::from_std(LOOKBACK).unwrap_or_default();
    let keep = chrono::Duration::from_std(KEEP).unwrap_or_default();
    let mut cursor = sip_change_floor(Utc::now());
    // Ids read within the lookback, so a second read of them pushes nothing.
    let mut seen = BTreeSet::<String>::new();
    let mut pruned_at = tokio::time::Instant::now();
    let mut more = false;
    let mut starts = pusher.kamailio_starts();
    loop {
        let periodic = if more {
            false
        } else {
            tokio::select! {
                _ = wake.notified() => false,
                _ = tokio::time::sleep(POLL) => true,
                changed = starts.changed() => {
                    if changed.is_err() {
                        return; // the pusher's worker has ended
                    }
                    republish_presence(&store, &pusher).await;
                    continue;
                }
            }
        };
        if pusher.is_closed() {
            return;
        }
        let now = Utc::now();
        let floor = sip_change_floor(now - lookback);
        let after = if periodic {
            cursor.clone().min(floor.clone())
        } else {
            cursor.clone()
        };
        let rows = match store.sip_changes_after(&after, BATCH).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the SIP changes; retrying");
                more = false;
                continue;
            }
        };
        more = rows.len() == BATCH as usize;
        let before = cursor.clone();
        if let Some(last) = rows.last() {
            cursor = cursor.max(last.id.clone());
        }
        seen = seen.split_off(&floor);
        let mut routes = BTreeSet::new();
        let mut secrets = BTreeMap::new();
        let mut taken = Vec::new();
        for row in rows {
            if !seen.insert(row.id.clone()) {
                continue;
            }
            match row.kind {
                SipChangeKind::Route => {
                    routes.insert(row.number);
                }
                SipChangeKind::Secret => {
                    secrets.insert(row.number, row.id.clone());
                }
            }
            taken.push(row.id);
        }
        if !routes.is_empty() {
            let numbers: Vec<&str> = routes.iter().map(String::as_str).collect();
            match store.sip_routings(&numbers).await {
                Ok(found) => {
                    let mut found: BTreeMap<String, _> =
                        found.into_iter().map(|r| (r.number.clone(), r)).collect();
                    for number in &routes {
                        let update = match found.remove(number) {
                            Some(r) => Update::Route {
                                profile: r.profile,
                                display_name: r.display_name,
                                mobile: r.mobile,
                            },
                            None => Update::Remove,
                        };
                        pusher.push(number, update);
                    }
                }
                Err(e) => {
                    // These rows are read again at the next round.
                    tracing::warn!(error = %e, "cannot read the routing of changed extensions; retrying");
                    for id in &taken {
                        seen.remove(id);
                    }
                    cursor = before;
                    more = false;
                    continue;
                }
            }
        }
        for (number, id) in &secrets {
            pusher.push(
                number,
                Update::Unregister {
                    before: change_secs(id),
                },
            );
        }
        if pruned_at.elapsed() > Duration::from_secs(600) {
            pruned_at = tokio::time::Instant::now();
            if let Err(e) = store.prune_sip_changes(&sip_change_floor(now - keep)).await {
                tracing::warn!(error = %e, "cannot prune the SIP changes");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::test_app;
    use crate::AppError;
    use pbx365_domain::NewExtension;

    #[tokio::test]
    async fn a_secret_is_stored_only_as_hashes_and_disabled_extensions_get_none() {
        let (app, dir) = test_app().await;
        app.create_extension(
            "t",
            "101",
            NewExtension {
                display_name: "Ann".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let first = app.rotate_sip_secret("t", "101").await.unwrap();
        let second = app.rotate_sip_secret("t", "101").await.unwrap();
        assert_ne!(first, second);
        assert_eq!(
            app.store.sip_credentials_realm("101").await.unwrap(),
            Some("127.0.0.1".into())
        );
        drop(app);
        // The secret's text is nowhere in the data directory (security checklist R7.1).
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&second) && !text.contains(&first));
        }

        let (app, _dir) = test_app().await;
        let err = app.rotate_sip_secret("t", "999").await.unwrap_err();
        assert!(matches!(err, AppError::NotFound { .. }), "{err:?}");
    }
}
