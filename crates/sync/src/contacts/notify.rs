//! Contact sync on change notifications (issue 14, item 6): one `/users/{id}/contacts`
//! subscription per followed mailbox (synced enabled extensions with personal sync on, the
//! configured shared mailboxes), kept through [`crate::mailbox_subscriptions`] like calendar
//! status's; a notification marks its mailbox and the next step of the service's loop runs a
//! delta round of only the marked mailboxes, under the cluster lease. Subscriptions are checked
//! hourly, at once when the settings change or a lifecycle event asks; a mailbox whose
//! subscription cannot be made (e.g. Microsoft cannot validate our URL) is warned about once
//! and left to the hourly delta poll.
//!
//! https://learn.microsoft.com/graph/outlook-change-notifications-overview ·
//! https://learn.microsoft.com/graph/change-notifications-lifecycle-events

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Duration, Utc};
use pbx365_domain::{SyncKind, SyncStatus};
use pbx365_store::Store;

use super::{ContactSync, ContactsJob, SCOPE};
use crate::cursor::{Cursor, Keys, Phase};
use crate::error::SyncResult;
use crate::mailbox_subscriptions::{self, CONTACTS};
use crate::round::{self, RunOptions};
use crate::scheduler::TickContext;

/// When the contact subscriptions were last checked (once per cluster).
pub const LAST_CHECK_KEY: &str = "sync:last:contacts-subscriptions";

/// How often the subscriptions are checked (renewal has a margin of a day).
const CHECK_EVERY: Duration = Duration::hours(1);

/// What the job remembers between steps of the loop.
#[derive(Debug, Default)]
pub struct UpkeepMemory {
    /// The followed-mailbox settings the subscriptions were last checked against.
    fingerprint: Option<u64>,
    /// Mailboxes whose subscription could not be made, already warned about.
    failing: HashSet<String>,
}

impl ContactsJob {
    /// One step: the subscriptions when due, then a delta round of the notified mailboxes.
    pub(super) async fn step(&self, store: &Store, ctx: &TickContext) -> SyncResult<()> {
        let (edition, settings) = (self.config)();
        let active = Self::refusal(edition, &settings).is_none();
        if ctx.subscriptions {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (active, settings.personal, &settings.shared_mailboxes).hash(&mut h);
            let fingerprint = h.finish();
            let changed = self.memory().fingerprint != Some(fingerprint);
            let asked = CONTACTS.take_upkeep_request(store).await?;
            if changed || asked || self.check_due(store).await? {
                let kind = ContactSync::new(store.clone(), self.graph.clone(), settings.clone());
                let followed = if active {
                    kind.followed().await?
                } else {
                    HashSet::new()
                };
                self.upkeep(store, &ctx.public_url, &followed).await?;
                self.memory().fingerprint = Some(fingerprint);
                store
                    .set_kv(LAST_CHECK_KEY, &Utc::now().to_rfc3339())
                    .await?;
            }
        }
        if !active {
            return Ok(());
        }
        // Only between rounds: a round left unfinished or held is resumed or approved first,
        // and the marks wait for it.
        let cursor = store
            .get_kv(&Keys::new(SCOPE).cursor())
            .await?
            .and_then(|c| Cursor::decode(&c));
        if !cursor.is_some_and(|c| c.phase == Phase::Delta && c.plan.is_none()) {
            return Ok(());
        }
        if store.list_kv(CONTACTS.mark_prefix).await?.is_empty() {
            return Ok(());
        }
        // A held round waits for the admin: a round now would change what it was planned
        // against. The marks stay; approving runs a round anyway.
        let latest = store
            .latest_finished_sync_run(&[SyncKind::Contacts])
            .await?;
        if latest.is_some_and(|r| r.status == SyncStatus::Held) {
            return Ok(());
        }
        let marked = CONTACTS.take_marks(store).await?;
        if marked.is_empty() {
            return Ok(());
        }
        let kind =
            ContactSync::new(store.clone(), self.graph.clone(), settings).only(marked.clone());
        let run = round::run(store, &kind, &RunOptions::default()).await;
        let failed = match &run {
            Ok(r) => r.status == SyncStatus::Failed,
            Err(_) => true,
        };
        if failed {
            // Put the marks back: the next step (or the poll) reads those mailboxes again.
            for m in &marked {
                CONTACTS.mark(store, m).await?;
            }
        }
        let run = run?;
        tracing::info!(run = %run.id, mailboxes = marked.len(), status = run.status.as_str(), "contact sync read the mailboxes change notifications named");
        Ok(())
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, UpkeepMemory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn check_due(&self, store: &Store) -> SyncResult<bool> {
        let last = store
            .get_kv(LAST_CHECK_KEY)
            .await?
            .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
            .map(|t| t.with_timezone(&Utc));
        Ok(last.is_none_or(|l| Utc::now() >= l + CHECK_EVERY))
    }

    /// Brings the subscriptions in line with `followed`; warns once about mailboxes whose
    /// subscription cannot be made.
    async fn upkeep(
        &self,
        store: &Store,
        public_url: &str,
        followed: &HashSet<String>,
    ) -> SyncResult<()> {
        let done = mailbox_subscriptions::ensure(
            &self.graph,
            store,
            public_url,
            &CONTACTS,
            followed,
            Utc::now(),
        )
        .await?;
        let failing: HashSet<String> = done.failed.iter().cloned().collect();
        let mut memory = self.memory();
        let new: Vec<&String> = failing.difference(&memory.failing).collect();
        if let Some(first) = new.first() {
            tracing::warn!(
                count = new.len(),
                mailbox = %first,
                "contact change notifications could not be subscribed for some mailboxes (is the public URL reachable by Microsoft?); their contacts follow the hourly delta poll"
            );
        }
        if done.created + done.deleted > 0 {
            tracing::info!(
                created = done.created,
                deleted = done.deleted,
                renewed = done.renewed,
                "contact change-notification subscriptions updated"
            );
        }
        memory.failing = failing;
        Ok(())
    }
}
