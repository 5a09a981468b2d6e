//! The one calendar task of the cluster: it holds the `calendar` lease and a sorted schedule
//! (`BTreeSet` of (instant, slot)) with each followed extension's next instant, sleeps until the
//! earliest, and applies the rules there. No task per user: 10,000 users are 10,000 small
//! entries in one set.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use pbx365_domain::calendar::{decide, ShowAsMap};
use pbx365_domain::{Profile, ProfileSource};
use pbx365_store::{Store, StoredTimeline};
use pbx365_sync::lease::HeldLease;
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinHandle;

use super::CALENDAR_LEASE;
use crate::{App, AppError};

/// A profile switch the calendar made (what tests and the benchmark await).
#[derive(Debug, Clone, PartialEq)]
pub struct CalendarSwitch {
    /// Extension number.
    pub number: String,
    /// The profile written.
    pub profile: Profile,
    /// `calendar` while an entry holds it, `manual` when it was given back.
    pub source: ProfileSource,
    /// The instant it was due.
    pub due: DateTime<Utc>,
    /// When it was written.
    pub at: DateTime<Utc>,
}

/// The calendar state every clone of [`App`] shares: who asked for a re-read, the wake-up and
/// the switch feed.
#[derive(Clone)]
pub(crate) struct CalendarHandle {
    pub(crate) wake: Arc<Notify>,
    /// Microsoft 365 user ids whose calendar changed (notifications), or `*` for everyone.
    dirty: Arc<Mutex<HashSet<String>>>,
    switches: broadcast::Sender<CalendarSwitch>,
    /// The fallback read interval instead of `[calendar] poll_minutes` (tests, benchmark).
    poll: Arc<Mutex<Option<Duration>>>,
    /// The schedule's size after its last full read.
    stats: Arc<Mutex<CalendarStats>>,
}

/// The size of the schedule (benchmark: memory per scheduled switch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CalendarStats {
    /// Extensions in the schedule.
    pub followed: usize,
    /// Start and end instants ahead in their timelines (the switches the schedule will run).
    pub scheduled_switches: usize,
    /// Bytes the schedule holds: the sorted set, the slots with their timelines, the index.
    pub schedule_bytes: usize,
}

impl Default for CalendarHandle {
    fn default() -> Self {
        CalendarHandle {
            wake: Arc::default(),
            dirty: Arc::default(),
            switches: broadcast::channel(65_536).0,
            poll: Arc::default(),
            stats: Arc::default(),
        }
    }
}

/// The running calendar task; stops when dropped.
pub struct CalendarWorker {
    task: JoinHandle<()>,
}

impl CalendarWorker {
    /// Stops the task (the lease expires or is taken over).
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for CalendarWorker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl App {
    /// Starts this instance's calendar task (`pbx365 serve`): it switches only while it holds
    /// the `calendar` lease.
    pub fn start_calendar_worker(&self) -> CalendarWorker {
        let app = self.clone();
        CalendarWorker {
            task: tokio::spawn(run(app, pbx365_sync::lease::instance_name())),
        }
    }

    /// The same context reading every calendar each `poll` as the fallback (tests, benchmark).
    pub fn with_calendar_poll(self, poll: StdDuration) -> Self {
        *self.calendar.poll.lock().unwrap_or_else(|e| e.into_inner()) =
            Duration::from_std(poll).ok();
        self
    }

    /// The size of the schedule after its last full read.
    pub fn calendar_stats(&self) -> CalendarStats {
        *self
            .calendar
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Every switch the calendar makes from now on.
    pub fn calendar_switches(&self) -> broadcast::Receiver<CalendarSwitch> {
        self.calendar.switches.subscribe()
    }

    /// Re-reads one user's calendar at once and re-plans its switches (a change notification
    /// for its events); `*` re-reads everyone.
    pub fn replan_calendar(&self, m365_id: &str) {
        self.calendar
            .dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(m365_id.to_ascii_lowercase());
        self.calendar.wake.notify_one();
    }
}

/// One followed extension in the schedule.
struct Slot {
    timeline: StoredTimeline,
    next: Option<DateTime<Utc>>,
}

/// The sorted schedule: the earliest instant first.
#[derive(Default)]
struct Schedule {
    queue: BTreeSet<(DateTime<Utc>, u32)>,
    slots: Vec<Option<Slot>>,
    by_number: HashMap<String, u32>,
}

impl Schedule {
    fn put(&mut self, timeline: StoredTimeline) -> u32 {
        let id = match self.by_number.get(&timeline.number) {
            Some(id) => *id,
            None => {
                let id = self.slots.len() as u32;
                self.slots.push(None);
                self.by_number.insert(timeline.number.clone(), id);
                id
            }
        };
        self.unqueue(id);
        self.slots[id as usize] = Some(Slot {
            timeline,
            next: None,
        });
        id
    }

    fn unqueue(&mut self, id: u32) {
        if let Some(Some(slot)) = self.slots.get(id as usize) {
            if let Some(t) = slot.next {
                self.queue.remove(&(t, id));
            }
        }
    }

    fn set_next(&mut self, id: u32, next: Option<DateTime<Utc>>) {
        self.unqueue(id);
        if let Some(Some(slot)) = self.slots.get_mut(id as usize) {
            slot.next = next;
            if let Some(t) = next {
                self.queue.insert((t, id));
            }
        }
    }

    fn remove(&mut self, number: &str) {
        if let Some(id) = self.by_number.remove(number) {
            self.unqueue(id);
            self.slots[id as usize] = None;
        }
    }

    /// What the schedule holds and how much memory that takes (heap included).
    fn stats(&self, map: &ShowAsMap, now: DateTime<Utc>) -> CalendarStats {
        use std::mem::size_of;
        let s = |x: &String| x.capacity();
        let mut bytes = size_of::<Schedule>()
            // A B-tree keeps up to 11 keys per node; nodes are about two thirds full.
            + self.queue.len() * size_of::<(DateTime<Utc>, u32)>() * 3 / 2
            + self.slots.capacity() * size_of::<Option<Slot>>()
            + self.by_number.capacity() * (size_of::<(String, u32)>() + 1);
        let mut switches = 0;
        for slot in self.slots.iter().flatten() {
            let t = &slot.timeline;
            switches += t
                .timeline
                .switch_instants(map, now, DateTime::<Utc>::MAX_UTC)
                .len();
            bytes += s(&t.number) * 2 + s(&t.m365_id) + t.delta_link.as_ref().map_or(0, s);
            bytes +=
                t.timeline.entries.capacity() * size_of::<pbx365_domain::calendar::CalendarEntry>();
            bytes += t
                .timeline
                .entries
                .iter()
                .map(|e| s(&e.id) + s(&e.subject))
                .sum::<usize>();
        }
        CalendarStats {
            followed: self.by_number.len(),
            scheduled_switches: switches,
            schedule_bytes: bytes,
        }
    }

    fn first(&self) -> Option<(DateTime<Utc>, u32)> {
        self.queue.first().copied()
    }

    fn ids_of_users(&self, users: &HashSet<String>) -> Vec<String> {
        self.slots
            .iter()
            .flatten()
            .filter(|s| users.contains(&s.timeline.m365_id.to_ascii_lowercase()))
            .map(|s| s.timeline.number.clone())
            .collect()
    }
}

/// Runs until aborted: waits for the lease, then keeps the schedule while it holds it.
async fn run(app: App, holder: String) {
    loop {
        let ttl = StdDuration::from_secs(u64::from(app.settings().sync.lease_ttl_secs.max(3)));
        if !app.calendar_active() {
            let _ =
                tokio::time::timeout(StdDuration::from_secs(5), app.calendar.wake.notified()).await;
            continue;
        }
        let lease = match HeldLease::try_take(&app.store, CALENDAR_LEASE, &holder, ttl).await {
            Ok(Some(l)) => l,
            Ok(None) => {
                tokio::time::sleep(ttl / 3).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not take the calendar lease");
                tokio::time::sleep(ttl / 3).await;
                continue;
            }
        };
        tracing::info!("calendar status: this instance switches profiles");
        let store = app.store.fenced(CALENDAR_LEASE, lease.token());
        if let Err(e) = hold(&app, &store, &holder, ttl).await {
            tracing::warn!(error = %e, "calendar status stopped; it starts again");
            tokio::time::sleep(StdDuration::from_secs(1)).await;
        }
        lease.release().await;
    }
}

/// Keeps the schedule while the lease is held and calendar status is on.
async fn hold(app: &App, store: &Store, holder: &str, ttl: StdDuration) -> Result<(), AppError> {
    let mut sched = Schedule::default();
    // Rebuild from the stored timelines: the profile is right at once after a restart.
    let followed: HashSet<String> = app
        .calendar_followed()
        .await?
        .into_iter()
        .map(|e| e.number.as_str().to_string())
        .collect();
    let now = app.now();
    let mut next_poll = now;
    let poll = app
        .calendar
        .poll
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or_else(|| Duration::minutes(i64::from(app.settings().calendar.poll_minutes)));
    let stored = store.list_timelines().await?;
    let mut rebuilt = Vec::new();
    let mut read_all = followed.len() != stored.len();
    for t in stored {
        if !followed.contains(&t.number) {
            store.delete_timeline(&t.number).await?;
            continue;
        }
        next_poll = next_poll.max(t.read_at + poll);
        let id = sched.put(t);
        rebuilt.push((now, id));
    }
    apply(app, store, &mut sched, &rebuilt, now).await?;
    if read_all || followed.is_empty() {
        next_poll = now;
    }
    let mut lease_check = now + Duration::from_std(ttl / 3).unwrap_or(Duration::seconds(5));
    let mut upkeep: Option<JoinHandle<()>> = None;
    let mut next_upkeep = now;
    loop {
        let now = app.now();
        if now >= lease_check {
            if store.lease_holder(CALENDAR_LEASE).await?.as_deref() != Some(holder) {
                tracing::warn!("the calendar lease was lost to another instance");
                if let Some(t) = upkeep {
                    t.abort();
                }
                return Ok(());
            }
            if !app.calendar_active() {
                if let Some(t) = upkeep {
                    t.abort();
                }
                return Ok(());
            }
            lease_check = now + Duration::from_std(ttl / 3).unwrap_or(Duration::seconds(5));
        }
        // Upkeep when due, or at once when a lifecycle event asked for it (a subscription
        // removed or to be reauthorized, see `pbx365_sync::receiver`).
        let idle = upkeep.as_ref().is_none_or(|t| t.is_finished());
        if idle
            && (now >= next_upkeep
                || pbx365_sync::mailbox_subscriptions::EVENTS
                    .take_upkeep_request(store)
                    .await?)
        {
            upkeep = Some(start_upkeep(app, store).await?);
            next_upkeep = now + Duration::minutes(UPKEEP_MINUTES);
        }
        let mut dirty: HashSet<String> =
            std::mem::take(&mut *app.calendar.dirty.lock().unwrap_or_else(|e| e.into_inner()));
        dirty.extend(super::subscriptions::take_marks(store).await?);
        if dirty.contains("*") {
            read_all = true;
        }
        if read_all || now >= next_poll {
            let followed = app.calendar_followed().await?;
            let numbers: HashSet<&str> = followed.iter().map(|e| e.number.as_str()).collect();
            let gone: Vec<String> = sched
                .by_number
                .keys()
                .filter(|n| !numbers.contains(n.as_str()))
                .cloned()
                .collect();
            for n in gone {
                sched.remove(&n);
                store.delete_timeline(&n).await?;
            }
            reread(app, store, &mut sched, &followed, now).await?;
            next_poll = now + poll;
            read_all = false;
            *app.calendar.stats.lock().unwrap_or_else(|e| e.into_inner()) =
                sched.stats(&app.calendar_map(), app.now());
        } else if !dirty.is_empty() {
            let numbers = sched.ids_of_users(&dirty);
            let followed: Vec<_> = app
                .calendar_followed()
                .await?
                .into_iter()
                .filter(|e| {
                    numbers.iter().any(|n| n == e.number.as_str())
                        || e.m365_id
                            .as_ref()
                            .is_some_and(|id| dirty.contains(&id.to_ascii_lowercase()))
                })
                .collect();
            reread(app, store, &mut sched, &followed, now).await?;
        }
        // Everything due.
        let now = app.now();
        let due: Vec<_> = sched.queue.range(..=(now, u32::MAX)).copied().collect();
        if !due.is_empty() {
            apply(app, store, &mut sched, &due, now).await?;
        }
        let now = app.now();
        // Marks left by a receiver on another instance are looked at every few seconds.
        let mut wake_at = next_poll
            .min(lease_check)
            .min(now + Duration::seconds(MARKS_SECS));
        if let Some((due, _)) = sched.first() {
            wake_at = wake_at.min(due);
        }
        let wait = (wake_at - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = app.calendar.wake.notified() => {}
        }
    }
}

/// Minutes between subscription upkeep rounds (create missing, renew, drop unfollowed).
const UPKEEP_MINUTES: i64 = 15;

/// Seconds between looks at the receiver's marks when nothing wakes the task.
const MARKS_SECS: i64 = 2;

/// Starts one subscription upkeep round beside the schedule (creating thousands of
/// subscriptions must not delay a switch).
async fn start_upkeep(app: &App, store: &Store) -> Result<JoinHandle<()>, AppError> {
    let graph = app.graph()?;
    let users: HashSet<String> = app
        .calendar_followed()
        .await?
        .into_iter()
        .filter_map(|e| e.m365_id.map(|id| id.to_ascii_lowercase()))
        .collect();
    let (store, now) = (store.clone(), app.now());
    let public_url = app.settings().effective_public_url();
    Ok(tokio::spawn(async move {
        match super::subscriptions::ensure(&graph, &store, &public_url, &users, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(failed = n, "some calendar subscriptions could not be made"),
            Err(e) => tracing::warn!(error = %e, "calendar subscription upkeep failed"),
        }
    }))
}

/// Reads `followed` calendars, puts their timelines into the schedule and applies them now.
async fn reread(
    app: &App,
    store: &Store,
    sched: &mut Schedule,
    followed: &[pbx365_domain::Extension],
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if followed.is_empty() {
        return Ok(());
    }
    let timelines = super::read::read_calendars(app, store, followed, now, true).await?;
    let now = app.now();
    let ids: Vec<_> = timelines.into_iter().map(|t| (now, sched.put(t))).collect();
    apply(app, store, sched, &ids, now).await
}

/// Applies the rules at `now` to the extensions whose instants (`due`, slot) have come, writes
/// what they ask for in one transaction, and schedules each one's next instant.
async fn apply(
    app: &App,
    store: &Store,
    sched: &mut Schedule,
    batch: &[(DateTime<Utc>, u32)],
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let map: ShowAsMap = app.calendar_map();
    let mut writes = Vec::new();
    let mut dues = Vec::new();
    let mut handled = Vec::new();
    let mut ids = Vec::new();
    for &(due, id) in batch {
        let Some(Some(slot)) = sched.slots.get(id as usize) else {
            continue;
        };
        let number = slot.timeline.number.clone();
        let Some(ext) = store.get_extension(&number).await? else {
            sched.remove(&number);
            continue;
        };
        let timeline = &slot.timeline.timeline;
        if let Some(new) = decide(
            timeline,
            &map,
            &ext.profile,
            slot.timeline.handled_until,
            now,
        ) {
            let why = match timeline.wanted_at(&map, now) {
                Some(w) if new.source == ProfileSource::Calendar => {
                    let until = w.until.format("%H:%M UTC").to_string();
                    w.explain(&until)
                }
                _ => format!("{} — calendar entry ended", new.profile.label()),
            };
            writes.push((ext, new, why));
            dues.push(due);
        }
        handled.push((number, now));
        ids.push(id);
    }
    let written = app
        .write_calendar_profiles(store, &writes, &handled)
        .await?;
    for (((ext, new, _), due), done) in writes.iter().zip(dues).zip(written) {
        if done && super::switched(&ext.profile, new) {
            let _ = app.calendar.switches.send(CalendarSwitch {
                number: ext.number.as_str().to_string(),
                profile: new.profile,
                source: new.source,
                due,
                at: app.now(),
            });
        }
    }
    for id in ids {
        let next = match sched.slots.get_mut(id as usize) {
            Some(Some(slot)) => {
                slot.timeline.handled_until = now;
                slot.timeline.timeline.next_instant(&map, now)
            }
            _ => continue,
        };
        sched.set_next(id, next);
    }
    Ok(())
}
