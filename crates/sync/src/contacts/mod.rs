//! Contact sync (SPEC §5, PRO): each synced, enabled extension's Outlook contacts (the default
//! Contacts folder and its child folders) -> that extension's personal phonebook; each configured
//! shared mailbox's default Contacts folder -> the company phonebook, tagged with the mailbox.
//! One way; only synced entries are written (local entries of the same phonebook stay).
//!
//! A kind of the sync framework with ONE scope (`contacts`): a round reads the mailboxes a
//! stretch at a time (one page of the round = [`MAILBOXES_PER_PAGE`] mailboxes, read through
//! `$batch`, see [`read`]); each folder keeps its own delta link in `contact_folders`, written
//! by the same transaction as the folder's changes. The round's own cursor says only how far
//! through the mailboxes it is (`full|{key}` / `delta|{key}`); between rounds it is `delta|`.
//!
//! - A **delta round** reads every known folder from its stored link (new mailboxes get their
//!   folder tree read first); the folder tree of a known mailbox is read again in full rounds.
//! - A **full round** (first sync, `--full`, nightly, settings changed) reads every folder tree
//!   and every folder from the start; entries a folder read from the start does not return are
//!   removed. An expired folder link (410) reads that folder from the start in any round.
//! - A **notified round** ([`ContactSync::only`], started by [`notify`]) is a delta round of
//!   only the mailboxes change notifications named, their folder trees read again.
//! - A mailbox answering 403/404 (access policy, no mailbox) is reported by name and skipped:
//!   nothing of it changes. Folders gone from Outlook, shared mailboxes taken off the list and
//!   (with personal sync off) personal folders are removed, through the mass-deletion guard.
//!
//! https://learn.microsoft.com/graph/api/contact-delta · https://learn.microsoft.com/graph/api/resources/contactfolder

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pbx365_domain::deletion_guard::{guard, Guard};
use pbx365_domain::settings::{ContactSettings, Edition};
use pbx365_domain::{PhonebookEntry, PhonebookOwner, ReportItem, SyncKind, SyncReport, SyncRun};
use pbx365_graph::{Contact, DeltaPage, GraphClient, NextOrDelta};
use pbx365_store::{ContactFolderRow, ContactWrite, Store};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::error::{SyncError, SyncResult};
use crate::kind::{Prepared, RoundKind, Step, SyncResource};
use crate::round::{self, RunOptions};
use crate::scheduler::SyncJob;

pub mod entry;
pub mod notify;
pub mod read;

pub use read::Mailbox;

/// The scope key of contact sync: its cursor is `cursor:contacts`.
pub const SCOPE: &str = "contacts";
/// When the last contact sync round ran (its own schedule).
pub const LAST_RUN_KEY: &str = "sync:last:contacts";
/// Mailboxes read per page of a round.
pub const MAILBOXES_PER_PAGE: usize = 200;
/// Report lines per list and planned step; the rest is counted in one line.
const REPORT_LINES: usize = 100;
/// Removals a round may plan without an admin's approval, unless they are a small share.
const MAX_REMOVALS: u32 = 1_000;
/// The share of synced entries a round may remove beyond [`MAX_REMOVALS`] without approval.
const MAX_REMOVAL_PERCENT: u32 = 50;
/// Polled delta rounds read each known mailbox's folder tree once in this many hours (a quarter
/// of the trees per hourly round; the nightly full round reads them all).
pub const TREES_EVERY: u32 = 4;
/// The sentence of a refusal on the standard edition (SPEC §1).
pub const NEEDS_PRO: &str = "contact sync needs the PRO edition";

/// One change read from Outlook, with the key the round keeps the latest change of.
#[derive(Debug, Clone)]
pub struct ContactItem {
    /// Unique in the round: the mailbox, the folder and what changed.
    pub id: String,
    /// The change.
    pub change: ContactChange,
}

impl ContactItem {
    /// The item of `change`.
    pub fn new(change: ContactChange) -> Self {
        let id = match &change {
            ContactChange::Contact {
                mailbox,
                folder,
                contact,
                ..
            } => format!("c|{mailbox}|{folder}|{}", contact.id),
            ContactChange::FolderEnd { row, .. } => format!("f|{}|{}", row.mailbox, row.folder),
            ContactChange::FolderGone { mailbox, folder } => format!("g|{mailbox}|{folder}"),
            ContactChange::MailboxFailed { mailbox, .. } => format!("x|{mailbox}"),
        };
        ContactItem { id, change }
    }
}

/// What changed.
#[derive(Debug, Clone)]
pub enum ContactChange {
    /// A contact (or its removal) in a folder.
    Contact {
        /// The mailbox.
        mailbox: String,
        /// The folder (`""`: the default Contacts folder).
        folder: String,
        /// The phonebook.
        owner: PhonebookOwner,
        /// The contact.
        contact: Box<Contact>,
    },
    /// A folder read to its end (after its contacts).
    FolderEnd {
        /// Its row with the new delta link.
        row: ContactFolderRow,
        /// Read from the start: what it did not return is gone.
        scratch: bool,
    },
    /// A folder that is no longer in its mailbox's tree.
    FolderGone {
        /// The mailbox.
        mailbox: String,
        /// The folder.
        folder: String,
    },
    /// A mailbox that could not be read; nothing of it changes.
    MailboxFailed {
        /// The mailbox.
        mailbox: String,
        /// Its phonebook.
        owner: PhonebookOwner,
        /// Microsoft's answer as a sentence.
        reason: String,
    },
}

/// The contact sync kind with the current settings.
pub struct ContactSync {
    store: Store,
    graph: Arc<GraphClient>,
    settings: ContactSettings,
    /// A targeted delta round: only these mailboxes (lower case), the ones change
    /// notifications named.
    only: Option<HashSet<String>>,
    /// A polled delta round reads each known mailbox's folder tree once in this many hours.
    trees_every: u32,
}

/// The planning state of one round.
pub struct ContactsState {
    /// Synced entries at the start (the guard's base).
    at_start: u64,
    /// Entries the round plans to remove.
    removing: usize,
    /// Folders out of scope (shared mailbox off the list, personal sync off): removed at the end.
    drops: Vec<ContactFolderRow>,
    /// Contact ids each folder returned this round (a folder read from the start removes the rest).
    seen: HashMap<(String, String), HashSet<String>>,
}

fn owner_number(owner: &PhonebookOwner) -> Option<String> {
    match owner {
        PhonebookOwner::Company => None,
        PhonebookOwner::Personal(n) => Some(n.clone()),
    }
}

/// Report lines of one planned step, at most [`REPORT_LINES`] per list plus a count of the rest.
#[derive(Default)]
struct Lines {
    report: SyncReport,
    more: [usize; 3],
}

impl Lines {
    fn push(&mut self, list: usize, item: ReportItem) {
        let target = match list {
            0 => &mut self.report.created,
            1 => &mut self.report.updated,
            _ => &mut self.report.deleted,
        };
        if target.len() < REPORT_LINES {
            target.push(item);
        } else {
            self.more[list] += 1;
        }
    }

    fn finish(mut self) -> SyncReport {
        for (list, n) in self.more.into_iter().enumerate() {
            if n == 0 {
                continue;
            }
            let line = ReportItem {
                name: Some(format!("… and {n} more phonebook entries")),
                ..Default::default()
            };
            match list {
                0 => self.report.created.push(line),
                1 => self.report.updated.push(line),
                _ => self.report.deleted.push(line),
            }
        }
        self.report
    }
}

fn line(owner: &PhonebookOwner, m365_id: &str, name: &str, fields: Vec<String>) -> ReportItem {
    ReportItem {
        extension: owner_number(owner),
        m365_id: Some(m365_id.to_string()),
        name: Some(name.to_string()),
        fields,
        reason: None,
    }
}

/// The fields in which two entries differ.
fn changed_fields(old: &PhonebookEntry, new: &PhonebookEntry, moved: bool) -> Vec<String> {
    let mut f = Vec::new();
    let mut check = |differs: bool, name: &str| {
        if differs {
            f.push(name.to_string());
        }
    };
    check(old.display_name != new.display_name, "display_name");
    check(old.first_name != new.first_name, "first_name");
    check(old.last_name != new.last_name, "last_name");
    check(old.company != new.company, "company");
    check(old.job_title != new.job_title, "job_title");
    check(old.emails != new.emails, "emails");
    check(old.numbers != new.numbers, "numbers");
    check(moved, "folder");
    f
}

impl ContactSync {
    /// The kind over `store` and `graph` with these settings.
    pub fn new(store: Store, graph: Arc<GraphClient>, settings: ContactSettings) -> Self {
        ContactSync {
            store,
            graph,
            settings,
            only: None,
            trees_every: TREES_EVERY,
        }
    }

    /// Polled delta rounds read each known mailbox's folder tree once in `hours` hours (1:
    /// every round), to find child folders created since the last full round.
    pub fn trees_every(mut self, hours: u32) -> Self {
        self.trees_every = hours.max(1);
        self
    }

    /// A delta round of only these mailboxes (addresses or object ids, any case): what change
    /// notifications named. A full round (first sync, settings changed) still reads them all.
    pub fn only(mut self, mailboxes: HashSet<String>) -> Self {
        self.only = Some(
            mailboxes
                .into_iter()
                .map(|m| m.to_ascii_lowercase())
                .collect(),
        );
        self
    }

    /// The followed mailboxes among `wanted` (lower case): configured shared mailboxes, and
    /// with personal sync on, synced enabled extensions by object id (indexed lookups).
    async fn followed_among(&self, wanted: &HashSet<String>) -> SyncResult<Vec<Mailbox>> {
        let mut out: Vec<Mailbox> = self
            .shared()
            .into_iter()
            .filter(|a| wanted.contains(a))
            .map(|address| Mailbox {
                key: format!("s:{address}"),
                address,
                owner: PhonebookOwner::Company,
                default_only: true,
            })
            .collect();
        if self.settings.personal {
            let mut ids: Vec<String> = wanted
                .iter()
                .filter(|m| !m.contains('@'))
                .cloned()
                .collect();
            ids.sort();
            for ext in self.store.extensions_by_m365_ids(&ids).await? {
                let Some(id) = ext.m365_id.clone() else {
                    continue;
                };
                if ext.enabled && ext.source == pbx365_domain::ExtensionSource::M365 {
                    out.push(Mailbox {
                        key: format!("u:{id}"),
                        address: id,
                        owner: PhonebookOwner::Personal(ext.number.to_string()),
                        default_only: false,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Every followed mailbox, lower case: what contact subscriptions are kept for.
    pub async fn followed(&self) -> SyncResult<HashSet<String>> {
        let mut out: HashSet<String> = self.shared().into_iter().collect();
        if self.settings.personal {
            let mut after = String::new();
            loop {
                let page = self.store.contact_sync_extensions(&after, 1_000).await?;
                let Some((last, _)) = page.last() else {
                    break;
                };
                after = last.clone();
                out.extend(page.into_iter().map(|(id, _)| id.to_ascii_lowercase()));
            }
        }
        Ok(out)
    }

    /// The configured shared mailboxes, normalised and sorted.
    fn shared(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .settings
            .shared_mailboxes
            .iter()
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| !m.is_empty())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The next stretch of mailboxes after `after` (shared mailboxes first, then the personal
    /// ones by object id).
    async fn mailboxes_after(&self, after: &str) -> SyncResult<Vec<Mailbox>> {
        let mut out = Vec::new();
        if !after.starts_with("u:") {
            let from = after.strip_prefix("s:");
            for address in self.shared() {
                if from.is_some_and(|f| address.as_str() <= f) {
                    continue;
                }
                out.push(Mailbox {
                    key: format!("s:{address}"),
                    address,
                    owner: PhonebookOwner::Company,
                    default_only: true,
                });
                if out.len() == MAILBOXES_PER_PAGE {
                    return Ok(out);
                }
            }
        }
        if self.settings.personal {
            let from = after.strip_prefix("u:").unwrap_or("");
            let more = MAILBOXES_PER_PAGE - out.len();
            for (id, number) in self.store.contact_sync_extensions(from, more).await? {
                out.push(Mailbox {
                    key: format!("u:{id}"),
                    address: id,
                    owner: PhonebookOwner::Personal(number),
                    default_only: false,
                });
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl SyncResource for ContactSync {
    type Item = ContactItem;
    type Op = ContactWrite;
    type State = ContactsState;

    fn kind(&self) -> SyncKind {
        SyncKind::Contacts
    }

    fn scope_key(&self) -> String {
        SCOPE.to_string()
    }

    fn item_id(item: &ContactItem) -> &str {
        &item.id
    }

    async fn prepare(&self) -> SyncResult<Prepared<ContactsState>> {
        let shared: HashSet<String> = self.shared().into_iter().collect();
        let drops = self
            .store
            .contact_folders()
            .await?
            .into_iter()
            .filter(|r| match r.owner {
                PhonebookOwner::Company => !shared.contains(&r.mailbox),
                PhonebookOwner::Personal(_) => !self.settings.personal,
            })
            .collect();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            self.settings.personal,
            self.shared(),
            self.settings.default_country.to_ascii_uppercase(),
        )
            .hash(&mut h);
        Ok(Prepared {
            state: ContactsState {
                at_start: self.store.synced_contact_total().await?,
                removing: 0,
                drops,
                seen: HashMap::new(),
            },
            fingerprint: format!("{:016x}", h.finish()),
            force_full: None,
        })
    }

    fn first_link(&self) -> String {
        "full|".to_string()
    }

    async fn read_page(&self, link: &str) -> SyncResult<DeltaPage<ContactItem>> {
        let (mode, after) = link.split_once('|').unwrap_or(("delta", ""));
        let full = mode == "full";
        if let Some(only) = self.only.as_ref().filter(|_| !full) {
            // A targeted round: the notified mailboxes in one page, then between rounds again.
            let mailboxes = self.followed_among(only).await?;
            let items =
                read::read_mailboxes(&self.graph, &self.store, &mailboxes, false, |_| true).await?;
            return Ok(DeltaPage {
                items,
                next: NextOrDelta::Delta("delta|".to_string()),
            });
        }
        let mailboxes = self.mailboxes_after(after).await?;
        let Some(last) = mailboxes.last() else {
            return Ok(DeltaPage {
                items: Vec::new(),
                next: NextOrDelta::Delta("delta|".to_string()),
            });
        };
        let next = NextOrDelta::Next(format!("{mode}|{}", last.key));
        let slot = Utc::now().timestamp().div_euclid(3600);
        let every = self.trees_every;
        let items = read::read_mailboxes(&self.graph, &self.store, &mailboxes, full, |m| {
            read::tree_due(m, slot, every)
        })
        .await?;
        Ok(DeltaPage { items, next })
    }

    async fn plan(
        &self,
        state: &mut ContactsState,
        items: Vec<ContactItem>,
        _round: RoundKind,
    ) -> SyncResult<Step<ContactWrite>> {
        // What the store holds for the contacts of these items, by (mailbox, id).
        let mut ids: HashMap<String, Vec<String>> = HashMap::new();
        for item in &items {
            if let ContactChange::Contact {
                mailbox, contact, ..
            } = &item.change
            {
                ids.entry(mailbox.clone())
                    .or_default()
                    .push(contact.id.clone());
            }
        }
        let mut known: HashMap<(String, String), (String, PhonebookEntry)> = HashMap::new();
        for (mailbox, ids) in ids {
            for (folder, e) in self
                .store
                .synced_contact_entries(&mailbox, Some(&ids))
                .await?
            {
                let id = e.m365_id.clone().unwrap_or_default();
                known.insert((mailbox.clone(), id), (folder, e));
            }
        }
        let country = &self.settings.default_country;
        let mut step = Step::default();
        let mut lines = Lines::default();
        for item in items {
            match item.change {
                ContactChange::Contact {
                    mailbox,
                    folder,
                    owner,
                    contact,
                } => {
                    let key = (mailbox.clone(), contact.id.clone());
                    if contact.removed.is_some() {
                        // Gone from this folder (deleted, or moved: the other folder puts it back).
                        if let Some((f, old)) = known.get(&key).filter(|(f, _)| *f == folder) {
                            lines.push(2, line(&owner, &contact.id, &old.display_name, vec![]));
                            step.destructive.push(ContactWrite::Remove {
                                mailbox: mailbox.clone(),
                                folder: f.clone(),
                                m365_id: contact.id.clone(),
                            });
                            state.removing += 1;
                            known.remove(&key);
                        }
                        continue;
                    }
                    state
                        .seen
                        .entry((mailbox.clone(), folder.clone()))
                        .or_default()
                        .insert(contact.id.clone());
                    let mut new = entry::entry_of(&contact, &owner, &mailbox, country);
                    let is_known = match known.get(&key) {
                        Some((f, old)) => {
                            if *f == folder && entry::same(old, &new) {
                                continue;
                            }
                            new.id = old.id.clone();
                            let fields = changed_fields(old, &new, *f != folder);
                            lines.push(1, line(&owner, &contact.id, &new.display_name, fields));
                            true
                        }
                        None => {
                            new.id = uuid::Uuid::new_v4().to_string();
                            lines.push(0, line(&owner, &contact.id, &new.display_name, vec![]));
                            false
                        }
                    };
                    known.insert(key, (folder.clone(), new.clone()));
                    step.ops.push(ContactWrite::Put {
                        mailbox,
                        folder,
                        entry: new,
                        known: is_known,
                    });
                }
                ContactChange::FolderEnd { row, scratch } => {
                    let key = (row.mailbox.clone(), row.folder.clone());
                    let seen = state.seen.remove(&key).unwrap_or_default();
                    if scratch {
                        // Read from the start: what the store holds and the read did not return is gone.
                        for id in self
                            .store
                            .synced_contact_ids(&row.mailbox, &row.folder)
                            .await?
                        {
                            if seen.contains(&id) {
                                continue;
                            }
                            lines.push(2, line(&row.owner, &id, &id, vec![]));
                            step.destructive.push(ContactWrite::Remove {
                                mailbox: row.mailbox.clone(),
                                folder: row.folder.clone(),
                                m365_id: id,
                            });
                            state.removing += 1;
                        }
                    }
                    step.ops.push(ContactWrite::Folder(row));
                }
                ContactChange::FolderGone { mailbox, folder } => {
                    let held = self.store.synced_contact_ids(&mailbox, &folder).await?;
                    state.removing += held.len();
                    lines.push(
                        2,
                        ReportItem {
                            name: Some(format!(
                                "folder {folder} of {mailbox} ({} entries): gone from Outlook",
                                held.len()
                            )),
                            ..Default::default()
                        },
                    );
                    step.destructive
                        .push(ContactWrite::DropFolder { mailbox, folder });
                }
                ContactChange::MailboxFailed {
                    mailbox,
                    owner,
                    reason,
                } => {
                    tracing::warn!(%mailbox, %reason, "a mailbox's contacts could not be read; its phonebook entries stay as they were");
                    step.report.skipped.push(ReportItem {
                        extension: owner_number(&owner),
                        m365_id: None,
                        name: Some(mailbox.clone()),
                        fields: Vec::new(),
                        reason: Some(format!(
                            "the contacts of mailbox {mailbox} could not be read ({reason}); its phonebook entries are kept as they were"
                        )),
                    });
                }
            }
        }
        let report = lines.finish();
        step.report.append(report);
        Ok(step)
    }

    fn plan_end(
        &self,
        state: &mut ContactsState,
        _wanted: &HashSet<String>,
        _round: RoundKind,
    ) -> Step<ContactWrite> {
        let mut step = Step::default();
        for row in std::mem::take(&mut state.drops) {
            state.removing += row.entries as usize;
            step.report.deleted.push(ReportItem {
                extension: owner_number(&row.owner),
                name: Some(format!(
                    "{} of {} ({} entries): no longer synced",
                    row.name, row.mailbox, row.entries
                )),
                ..Default::default()
            });
            step.destructive.push(ContactWrite::DropFolder {
                mailbox: row.mailbox,
                folder: row.folder,
            });
        }
        step
    }

    fn guard(&self, state: &ContactsState, _destructive: usize) -> Guard {
        // Many removals AND a large share of the phonebooks: a failed read, not people tidying up.
        let (count, synced) = (state.removing, state.at_start as usize);
        let many = guard(count, synced, MAX_REMOVALS, 100) != Guard::Pass;
        let share = guard(count, synced, u32::MAX, MAX_REMOVAL_PERCENT) != Guard::Pass;
        if many && share {
            Guard::Exceeded { count, synced }
        } else {
            Guard::Pass
        }
    }

    fn held_reason(&self, guard: Guard) -> String {
        match guard {
            Guard::Exceeded { count, synced } => format!(
                "held: {count} of {synced} synced phonebook entries would be removed; approve the run in the console if this is intended"
            ),
            Guard::Pass => "held".to_string(),
        }
    }

    async fn apply(&self, ops: Vec<ContactWrite>, cursor: (&str, &str)) -> SyncResult<()> {
        Ok(self.store.apply_contact_writes(&ops, cursor).await?)
    }
}

/// What the contact sync job reads its settings from (the console changes them at run time).
pub type ContactConfig = Arc<dyn Fn() -> (Edition, ContactSettings) + Send + Sync>;

/// Contact sync as a job of the [`crate::SyncService`]: "sync now" (`pbx365 sync contacts`,
/// `POST /api/v1/sync/contacts`), the nightly round with user sync, its own delta schedule
/// (hourly by default) and change notifications ([`notify`]), all under the cluster's sync lease.
pub struct ContactsJob {
    store: Store,
    graph: Arc<GraphClient>,
    config: ContactConfig,
    every: chrono::Duration,
    trees_every: u32,
    memory: std::sync::Mutex<notify::UpkeepMemory>,
}

impl ContactsJob {
    /// A job over `store` and `graph`, reading its settings from `config`.
    pub fn new(store: Store, graph: Arc<GraphClient>, config: ContactConfig) -> Self {
        ContactsJob {
            store,
            graph,
            config,
            every: chrono::Duration::hours(1),
            trees_every: TREES_EVERY,
            memory: Default::default(),
        }
    }

    /// Runs its scheduled delta round at this interval (default hourly).
    pub fn every(mut self, every: std::time::Duration) -> Self {
        self.every = chrono::Duration::from_std(every).unwrap_or(self.every);
        self
    }

    /// Polled delta rounds read each known mailbox's folder tree once in `hours` hours
    /// (default [`TREES_EVERY`]; 1: every round).
    pub fn trees_every(mut self, hours: u32) -> Self {
        self.trees_every = hours.max(1);
        self
    }

    /// Why the job does not run with these settings, if it does not.
    pub fn refusal(edition: Edition, s: &ContactSettings) -> Option<String> {
        if edition == Edition::Standard {
            return Some(NEEDS_PRO.to_string());
        }
        if !s.personal && s.shared_mailboxes.iter().all(|m| m.trim().is_empty()) {
            return Some(
                "contact sync is off: switch personal contacts on or add a shared mailbox under \
                 Settings > Integrations > Microsoft 365 > Contacts"
                    .to_string(),
            );
        }
        None
    }
}

#[async_trait]
impl SyncJob for ContactsJob {
    fn kind(&self) -> SyncKind {
        SyncKind::Contacts
    }

    fn scope_key(&self) -> String {
        SCOPE.to_string()
    }

    async fn run(&self, opts: &RunOptions) -> SyncResult<SyncRun> {
        self.run_fenced(&self.store, opts).await
    }

    async fn run_fenced(&self, store: &Store, opts: &RunOptions) -> SyncResult<SyncRun> {
        let (edition, settings) = (self.config)();
        if let Some(why) = Self::refusal(edition, &settings) {
            // Nothing was configured to run: the framework removes what an earlier setting
            // synced only when something is configured; the standard edition runs nothing.
            if edition == Edition::Standard {
                return Err(SyncError::Other(why));
            }
            let has_synced = !store.contact_folders().await?.is_empty();
            if !has_synced {
                return Err(SyncError::Other(why));
            }
        }
        let kind = ContactSync::new(store.clone(), self.graph.clone(), settings)
            .trees_every(self.trees_every);
        let run = round::run(store, &kind, opts).await?;
        if !opts.dry_run {
            store.set_kv(LAST_RUN_KEY, &Utc::now().to_rfc3339()).await?;
        }
        Ok(run)
    }

    async fn tick(&self, store: &Store, ctx: &crate::scheduler::TickContext) -> SyncResult<()> {
        self.step(store, ctx).await
    }

    async fn due(&self, store: &Store) -> SyncResult<bool> {
        let (edition, settings) = (self.config)();
        if Self::refusal(edition, &settings).is_some() {
            return Ok(false);
        }
        let last = store
            .get_kv(LAST_RUN_KEY)
            .await?
            .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
            .map(|t| t.with_timezone(&Utc));
        Ok(last.is_none_or(|l| Utc::now() >= l + self.every))
    }
}
