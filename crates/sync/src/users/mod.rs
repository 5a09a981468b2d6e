//! User sync (SPEC §3): Microsoft 365 members become extensions, over `/users/delta`, with photos.
//! A kind of the sync framework: this module reads pages and plans them; [`crate::round`] runs the
//! rounds, the cursor, the guard and the report.
//!
//! https://learn.microsoft.com/graph/api/user-delta

use async_trait::async_trait;
use chrono::Utc;
use pbx365_domain::deletion_guard::Guard;
use pbx365_domain::settings::{SyncScope, SyncSettings};
use pbx365_domain::user_rules::{PlanConfig, Scope};
use pbx365_domain::{DirectoryUser, NumberRules, ReportItem, SyncKind, SyncReport, SyncRun};
use pbx365_graph::{DeltaPage, GraphClient, UserChange};
use pbx365_store::{ExtensionOp, Store};
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::task::AbortOnDropHandle;

use crate::cursor::{Cursor, Keys, Phase};
use crate::error::{SyncError, SyncResult};
use crate::kind::{Prepared, RoundKind, SyncResource};
use crate::photos::{sync_photos, PhotoOutcome, PhotoTarget};
use crate::round::{self, RunOptions};

pub mod numbers;
pub mod plan;

use plan::{PlanStep, Planner};

/// The scope key of user sync: its cursor is `cursor:users`.
pub const SCOPE: &str = "users";
/// Synced extensions after the last completed run (fewer now = some were deleted locally).
pub const EXPECTED_KEY: &str = "sync:users:expected";
/// `{floor}:{mark}`: every number from `floor` (the first number synced users get) up to `mark`
/// was taken when the last round completed; below it, only a deletion frees a number.
pub const NUMBERS_KEY: &str = "sync:users:numbers";

/// The user sync kind for one tenant.
pub struct UserSync {
    store: Store,
    graph: Arc<GraphClient>,
    settings: SyncSettings,
    number_rules: NumberRules,
    photo_concurrency: usize,
}

/// The planning state of one user sync run.
pub struct UsersState {
    planner: Planner,
    scope: Scope,
    /// Enabled synced extensions before the round (an empty read against these is implausible).
    enabled_before: usize,
    /// Disables found on the pages of a full round, applied at its end unless a later page wants
    /// the user again.
    deferred: PlanStep,
    /// Photo work of applied pages still running, oldest first.
    photos: VecDeque<PagePhotos>,
    /// Permits for photo `$batch` calls, shared by every page's photo work.
    photo_limit: Arc<Semaphore>,
}

/// The photo work of one applied page, running while the next pages are applied (aborted if
/// the run is dropped).
struct PagePhotos {
    task: AbortOnDropHandle<SyncResult<PhotoOutcome>>,
    /// Ids the page created (their photo is part of "created", not an update line).
    created: HashSet<String>,
}

/// Pages whose photo work may still run while the next page is applied. Photo batches of one
/// page end in a ragged tail (the last wave of batches is not full); with the next page's
/// batches queued behind it the requests in flight stay at the limit during the whole apply.
const PHOTO_PAGES_AHEAD: usize = 1;

impl UserSync {
    /// An engine over `store` and `graph` with these settings.
    pub fn new(
        store: Store,
        graph: Arc<GraphClient>,
        settings: SyncSettings,
        number_rules: NumberRules,
    ) -> Self {
        UserSync {
            store,
            graph,
            settings,
            number_rules,
            photo_concurrency: 16,
        }
    }

    /// How many photo batches run at once (default 16).
    pub fn with_photo_concurrency(mut self, n: usize) -> Self {
        self.photo_concurrency = n.max(1);
        self
    }

    /// The settings in use.
    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    /// Runs once through the framework: a delta round when a delta link is stored and nothing
    /// forces a full round, else a full reconciliation. Records the run (unless dry) and returns it.
    pub async fn run(&self, opts: &RunOptions) -> SyncResult<SyncRun> {
        if !self.settings.enabled {
            return Err(SyncError::Disabled);
        }
        round::run(&self.store, self, opts).await
    }

    /// Waits for the oldest page's photo work and records what it changed.
    async fn photos_done(&self, state: &mut UsersState, report: &mut SyncReport) -> SyncResult<()> {
        let Some(page) = state.photos.pop_front() else {
            return Ok(());
        };
        let outcome = page
            .task
            .await
            .map_err(|e| SyncError::Other(format!("the photo work stopped: {e}")))??;
        report.errors.extend(outcome.errors);
        for change in outcome.changes {
            state.planner.set_photo(&change.m365_id, change.photo);
            if !page.created.contains(&change.m365_id) {
                report.updated.push(ReportItem {
                    extension: Some(change.number),
                    m365_id: Some(change.m365_id),
                    name: Some(change.name),
                    fields: vec!["photo".into()],
                    reason: None,
                });
            }
        }
        Ok(())
    }

    /// The users in scope: everyone, the listed users, or the transitive members of the groups.
    async fn resolve_scope(&self) -> SyncResult<Scope> {
        Ok(match self.settings.scope {
            SyncScope::All => Scope::All,
            SyncScope::Users => Scope::Ids(
                self.settings
                    .scope_ids
                    .iter()
                    .map(|s| s.trim().to_ascii_lowercase())
                    .collect(),
            ),
            SyncScope::Groups => {
                let mut ids = HashSet::new();
                for g in &self.settings.scope_ids {
                    for m in self.graph.group_transitive_members(g.trim()).await? {
                        if m.is_user() || m.odata_type.is_none() {
                            ids.insert(m.id.to_ascii_lowercase());
                        }
                    }
                }
                Scope::Ids(ids)
            }
        })
    }

    /// Reads the extensions of `ids` the planner does not know yet (indexed lookups by object id).
    async fn know<'a>(
        &self,
        planner: &mut Planner,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> SyncResult<()> {
        let unknown = planner.unknown_ids(ids);
        if unknown.is_empty() {
            return Ok(());
        }
        let found = self.store.extensions_by_m365_ids(&unknown).await?;
        planner.learn(&unknown, found);
        Ok(())
    }

    /// Makes sure the allocator knows `need` free numbers (or that the range is full): it starts
    /// at the allocation mark of the last completed round, lowered to the lowest number deleted
    /// since, and reads the taken numbers of the next stretch of the range from an index.
    async fn find_numbers(&self, planner: &mut Planner, need: usize) -> SyncResult<()> {
        if need == 0 {
            return Ok(());
        }
        let numbers = planner.numbers();
        if !numbers.is_positioned() {
            let floor = numbers.floor();
            let mark = self
                .store
                .get_kv(NUMBERS_KEY)
                .await?
                .and_then(|v| {
                    let (f, m) = v.split_once(':')?;
                    (f.parse::<u64>().ok()? == floor).then(|| m.parse::<u64>().ok())?
                })
                .unwrap_or(floor);
            let freed = self.store.lowest_freed_number(floor).await?;
            numbers.position(freed.map_or(mark, |f| f.min(mark)));
        }
        while let Some(part) = numbers.unknown(need) {
            let taken = self
                .store
                .numbers_taken_between(part.low, part.high)
                .await?;
            numbers.learn(part, taken);
        }
        Ok(())
    }

    /// What a full round depends on: when it changes, the next run is a full round.
    fn fingerprint(&self, scope: &Scope) -> String {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let s = &self.settings;
        (
            s.start_extension,
            s.end_extension,
            s.caller_id_from_office_phone,
            s.photos,
        )
            .hash(&mut h);
        (self.number_rules.min_len, self.number_rules.max_len).hash(&mut h);
        match scope {
            Scope::All => "all".hash(&mut h),
            Scope::Ids(ids) => {
                let mut v: Vec<&String> = ids.iter().collect();
                v.sort();
                v.hash(&mut h);
            }
        }
        format!("{:016x}", h.finish())
    }
}

#[async_trait]
impl SyncResource for UserSync {
    type Item = UserChange;
    type Op = ExtensionOp;
    type State = UsersState;

    fn kind(&self) -> SyncKind {
        SyncKind::Users
    }

    fn scope_key(&self) -> String {
        SCOPE.to_string()
    }

    fn item_id(item: &UserChange) -> &str {
        match item {
            UserChange::Changed(u) => &u.id,
            UserChange::Removed { id, .. } => id,
        }
    }

    async fn prepare(&self) -> SyncResult<Prepared<UsersState>> {
        let scope = self.resolve_scope().await?;
        let fingerprint = self.fingerprint(&scope);
        // Counts kept by the store, not a read of the extension table: a round costs what changed.
        let counts = self.store.synced_counts().await?;
        let synced_now = counts.synced as usize;
        let expected: Option<usize> = self
            .store
            .get_kv(EXPECTED_KEY)
            .await?
            .and_then(|v| v.parse().ok());
        let force_full = expected.filter(|e| synced_now < *e).map(|e| {
            format!(
                "{} of {e} synced extensions were deleted locally; they come back",
                e - synced_now
            )
        });
        let cfg = PlanConfig::from_settings(&self.settings, self.number_rules);
        let mut planner = Planner::partial(cfg, Utc::now(), synced_now, counts.enabled as usize);
        // Those whose grace period is over are deleted at the end of any round (an index read).
        let expiring = self
            .store
            .synced_disabled_before(planner.expiry_limit())
            .await?;
        planner.learn(&[], expiring);
        // A round that will be full (or resumes one, possibly at its end, where it disables what
        // no page wanted) plans against everything; a delta round only against what it touches.
        let keys = Keys::new(SCOPE);
        let in_delta = self
            .store
            .get_kv(&keys.cursor())
            .await?
            .and_then(|v| Cursor::decode(&v))
            .is_some_and(|c| c.phase == Phase::Delta);
        let same_settings =
            self.store.get_kv(&keys.fingerprint()).await?.as_deref() == Some(fingerprint.as_str());
        if !in_delta || !same_settings || force_full.is_some() {
            planner.know_all(self.store.list_extensions().await?);
        }
        Ok(Prepared {
            state: UsersState {
                planner,
                scope,
                enabled_before: counts.enabled as usize,
                deferred: PlanStep::default(),
                photos: VecDeque::new(),
                photo_limit: Arc::new(Semaphore::new(self.photo_concurrency)),
            },
            fingerprint,
            force_full,
        })
    }

    fn first_link(&self) -> String {
        self.graph.users_delta_start()
    }

    async fn read_page(&self, link: &str) -> SyncResult<DeltaPage<UserChange>> {
        let max = pbx365_graph::users::DELTA_MAX_PAGE;
        Ok(self.graph.users_delta_page_of(link, max).await?)
    }

    async fn plan(
        &self,
        state: &mut UsersState,
        items: Vec<UserChange>,
        round: RoundKind,
    ) -> SyncResult<PlanStep> {
        let (users, removed) = split(items);
        if round == RoundKind::Full && !state.planner.is_complete() {
            // A full round disables at its end whoever no page wanted: it needs them all.
            state.planner.know_all(self.store.list_extensions().await?);
        }
        let ids: Vec<&str> = users
            .iter()
            .map(|u| u.id.as_str())
            .chain(removed.iter().map(String::as_str))
            .collect();
        self.know(&mut state.planner, ids).await?;
        let need = state.planner.new_users(&users);
        self.find_numbers(&mut state.planner, need).await?;
        let mut step = state.planner.plan_users(&users, &removed, &state.scope);
        if round == RoundKind::Full {
            // Disables wait for the end of the round (a later page may want the user again).
            state.deferred.destructive.append(&mut step.destructive);
            state
                .deferred
                .report
                .disabled
                .append(&mut step.report.disabled);
        }
        Ok(step)
    }

    fn plan_end(
        &self,
        state: &mut UsersState,
        wanted: &HashSet<String>,
        round: RoundKind,
    ) -> PlanStep {
        let mut end = PlanStep::default();
        if round == RoundKind::Full {
            // Everyone not wanted is disabled; long-disabled ones are deleted.
            let still_disabled: HashSet<String> = state
                .planner
                .synced()
                .filter(|e| !e.enabled)
                .map(|e| e.number.to_string())
                .collect();
            let deferred = std::mem::take(&mut state.deferred);
            for (op, line) in deferred
                .destructive
                .into_iter()
                .zip(deferred.report.disabled)
            {
                if let ExtensionOp::Disable { number, .. } = &op {
                    if still_disabled.contains(number) {
                        end.destructive.push(op);
                        end.report.disabled.push(line);
                    }
                }
            }
            end.extend(state.planner.plan_absent(wanted));
        }
        end.extend(state.planner.plan_expired(wanted));
        end
    }

    fn guard(&self, state: &UsersState, destructive: usize) -> Guard {
        state.planner.guard(destructive)
    }

    fn implausible(&self, state: &UsersState, wanted: &HashSet<String>) -> Option<String> {
        (wanted.is_empty() && state.enabled_before > 0).then(|| {
            format!(
                "Microsoft 365 returned no users for the sync while {} synced extensions exist; \
                 this is treated as a failed read, not as everyone leaving",
                state.enabled_before
            )
        })
    }

    fn held_reason(&self, guard: Guard) -> String {
        let Guard::Exceeded { count, synced } = guard else {
            return "held by the mass-deletion guard".into();
        };
        format!(
            "held: this run would disable or delete {count} of {synced} synced extensions, more than the limit \
             ({} extensions or {}%); nothing was disabled or deleted — approve these deletions in the console to apply them once",
            self.settings.max_deletions, self.settings.max_deletion_percent
        )
    }

    async fn apply(&self, ops: Vec<ExtensionOp>, cursor: (&str, &str)) -> SyncResult<()> {
        Ok(self.store.apply_extension_ops(&ops, Some(cursor)).await?)
    }

    async fn after_apply(
        &self,
        state: &mut UsersState,
        wanted: &[String],
        created: &HashSet<String>,
        report: &mut SyncReport,
    ) -> SyncResult<()> {
        if !self.settings.photos {
            return Ok(());
        }
        // A resumed round follows up its last pages before planning anything.
        self.know(&mut state.planner, wanted.iter().map(String::as_str))
            .await?;
        let planner = &state.planner;
        let targets: Vec<PhotoTarget> = wanted
            .iter()
            .filter_map(|id| planner.extension_of(id))
            .filter(|e| e.enabled)
            .map(|e| PhotoTarget {
                m365_id: e.m365_id.clone().unwrap_or_default(),
                number: e.number.to_string(),
                name: e.display_name.clone(),
                current: e.photo.clone(),
            })
            .collect();
        if !targets.is_empty() {
            let (graph, store) = (self.graph.clone(), self.store.clone());
            let (limit, ahead) = (state.photo_limit.clone(), self.photo_concurrency);
            let task =
                tokio::spawn(
                    async move { sync_photos(&graph, &store, targets, &limit, ahead).await },
                );
            state.photos.push_back(PagePhotos {
                task: AbortOnDropHandle::new(task),
                created: created.clone(),
            });
        }
        while state.photos.len() > PHOTO_PAGES_AHEAD {
            self.photos_done(state, report).await?;
        }
        Ok(())
    }

    fn follow_up_pages(&self) -> u32 {
        PHOTO_PAGES_AHEAD as u32 + 1
    }

    async fn follow_up_done(
        &self,
        state: &mut UsersState,
        report: &mut SyncReport,
    ) -> SyncResult<()> {
        while !state.photos.is_empty() {
            self.photos_done(state, report).await?;
        }
        Ok(())
    }

    async fn completed(&self, state: &UsersState) -> SyncResult<()> {
        let planner = &state.planner;
        if let Some(mark) = planner.numbers_mark() {
            // Everything below the allocator's position is taken now: the next round starts there.
            let value = format!("{}:{mark}", planner.numbers_floor());
            self.store.set_kv(NUMBERS_KEY, &value).await?;
        }
        if planner.is_complete() {
            // A full round read everything anyway: the maintained counts are checked against it.
            self.store.recount_synced().await?;
        }
        Ok(self
            .store
            .set_kv(EXPECTED_KEY, &planner.synced_count().to_string())
            .await?)
    }

    fn forget(&self, state: &mut UsersState, wanted: &[String]) {
        state.planner.evict(wanted);
    }

    fn replay(&self, state: &mut UsersState, ops: &[ExtensionOp]) {
        for op in ops {
            if let ExtensionOp::Sync(ext) = op {
                state.planner.reload(ext.clone());
            }
        }
    }
}

fn split(items: Vec<UserChange>) -> (Vec<DirectoryUser>, Vec<String>) {
    let mut users = Vec::new();
    let mut removed = Vec::new();
    for item in items {
        match item {
            UserChange::Changed(mut u) => {
                u.id = u.id.to_ascii_lowercase();
                users.push(u)
            }
            UserChange::Removed { id, .. } => removed.push(id.to_ascii_lowercase()),
        }
    }
    (users, removed)
}
