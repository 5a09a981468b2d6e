//! Calendar status (SPEC §6, PRO): Outlook "Show As" switches an extension's profile at the
//! instant an entry starts, and back when it ends.
//!
//! - [`read`]: each followed user's calendar is read ahead (calendarView delta over
//!   now..+`look_ahead_hours`, many mailboxes per `$batch`), turned into a
//!   [`Timeline`] and stored (`calendar_timelines`), with its delta link for the next read.
//! - [`schedule`]: ONE task holds the `calendar` lease and a sorted schedule of every followed
//!   extension's next instant; at each instant it applies `domain::calendar::decide` through
//!   the calendar's profile writer ([`App::write_calendar_profile`]: the profile fields only,
//!   compare-and-set, SIP push and audit like [`App::set_profile`]). After a restart it rebuilds
//!   the schedule from the stored timelines.
//! - Freshness: a periodic delta read of every calendar (`poll_minutes`), and
//!   [`App::replan_calendar`] for one user (change notifications).

pub mod read;
pub mod schedule;
pub mod subscriptions;

use crate::{App, AppError};
use chrono::{DateTime, Utc};
use pbx365_domain::calendar::{decide, ShowAsMap};
use pbx365_domain::{Extension, ExtensionSource, ProfileSource, ProfileState};
use pbx365_store::Store;

pub use schedule::{CalendarStats, CalendarSwitch, CalendarWorker};

/// The lease the calendar scheduler holds: exactly one instance switches profiles.
pub const CALENDAR_LEASE: &str = "calendar";

/// The audit action of a switch made by the calendar.
pub const AUDIT_ACTION: &str = "extension.profile.calendar";

/// One switch of a plan (`pbx365 sync calendar`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlannedSwitch {
    /// When.
    pub at: DateTime<Utc>,
    /// Extension number.
    pub number: String,
    /// The profile the extension gets.
    pub profile: pbx365_domain::Profile,
    /// Why (subject, or "Busy (private)"; empty when the calendar gives the profile back).
    pub why: String,
}

impl App {
    /// The Show As -> profile map of the current settings (validated when they were loaded).
    pub fn calendar_map(&self) -> ShowAsMap {
        ShowAsMap::from_settings(&self.settings().calendar.map).unwrap_or_default()
    }

    /// Whether calendar status runs: PRO, switched on, and Microsoft 365 connected.
    pub fn calendar_active(&self) -> bool {
        let s = self.settings();
        s.edition == pbx365_domain::settings::Edition::Pro
            && s.calendar.enabled
            && crate::sync::missing_connection(&s).is_none()
    }

    /// The extensions whose calendar is followed: enabled, synced from Microsoft 365, and
    /// chosen by `[calendar] extensions`.
    pub async fn calendar_followed(&self) -> Result<Vec<Extension>, AppError> {
        let s = self.settings();
        Ok(self
            .store
            .list_extensions()
            .await?
            .into_iter()
            .filter(|e| {
                e.enabled
                    && e.source == ExtensionSource::M365
                    && e.m365_id.is_some()
                    && s.calendar.covers(e.number.as_str())
            })
            .collect())
    }

    /// Reads every followed calendar once and returns who switches when over the look-ahead
    /// window, starting from each extension's current profile; stores the timelines unless
    /// `dry_run` (`pbx365 sync calendar [--dry-run]`). Nothing is switched either way.
    pub async fn calendar_plan(&self, dry_run: bool) -> Result<Vec<PlannedSwitch>, AppError> {
        let followed = self.calendar_followed().await?;
        let now = self.now();
        let timelines = read::read_calendars(self, &self.store, &followed, now, !dry_run).await?;
        let map = self.calendar_map();
        let horizon =
            now + chrono::Duration::hours(i64::from(self.settings().calendar.look_ahead_hours));
        let mut plan = Vec::new();
        for t in &timelines {
            let Some(ext) = followed.iter().find(|e| e.number.as_str() == t.number) else {
                continue;
            };
            let mut state = ext.profile.clone();
            let mut handled = t.handled_until;
            let mut instants = vec![now];
            instants.extend(t.timeline.switch_instants(&map, now, horizon));
            for at in instants {
                if let Some(next) = decide(&t.timeline, &map, &state, handled, at) {
                    let why = t
                        .timeline
                        .wanted_at(&map, at)
                        .filter(|_| next.source == ProfileSource::Calendar)
                        .map(|w| {
                            if w.private {
                                "Busy (private)".into()
                            } else {
                                w.subject
                            }
                        })
                        .unwrap_or_default();
                    plan.push(PlannedSwitch {
                        at,
                        number: t.number.clone(),
                        profile: next.profile,
                        why,
                    });
                    state = next;
                }
                handled = at;
            }
        }
        plan.sort_by(|a, b| (a.at, &a.number).cmp(&(b.at, &b.number)));
        Ok(plan)
    }

    /// The calendar's profile writer: each `(extension, new profile, why)` is written only if
    /// the extension still has the profile it was read with (a change made meanwhile wins),
    /// through `store` (fenced by the calendar lease) in one transaction with the `handled`
    /// marks and the audit entries of real switches; then Kamailio is told like after
    /// [`App::set_profile`]. Returns, per write, whether it was written.
    pub async fn write_calendar_profiles(
        &self,
        store: &Store,
        writes: &[(Extension, ProfileState, String)],
        handled: &[(String, chrono::DateTime<chrono::Utc>)],
    ) -> Result<Vec<bool>, AppError> {
        let now = self.now();
        let rows: Vec<_> = writes
            .iter()
            .map(|(ext, new, why)| {
                let audit = switched(&ext.profile, new).then(|| pbx365_domain::AuditEntry {
                    at: now,
                    actor: "calendar".into(),
                    action: AUDIT_ACTION.into(),
                    target: ext.number.as_str().to_string(),
                    detail: why.clone(),
                });
                (
                    ext.number.as_str().to_string(),
                    ext.profile.clone(),
                    new.clone(),
                    audit,
                )
            })
            .collect();
        let written = store.apply_calendar_pass(&rows, handled).await?;
        // The pass noted its switches in the SIP feed; the pusher reads them now.
        if written.iter().any(|done| *done) {
            self.wake_sip();
        }
        Ok(written)
    }

    /// Why the extension has its profile, when the calendar set it: "Do Not Disturb —
    /// calendar: 'Board meeting' until 14:30" (the time in the server's zone).
    pub async fn calendar_reason(&self, ext: &Extension) -> Option<String> {
        if ext.profile.source != ProfileSource::Calendar {
            return None;
        }
        let stored = self.store.get_timeline(ext.number.as_str()).await.ok()??;
        let w = stored
            .timeline
            .wanted_at(&self.calendar_map(), self.now())?;
        let until = ext.profile.until.unwrap_or(w.until);
        let local = until
            .with_timezone(&chrono::Local)
            .format("%H:%M")
            .to_string();
        Some(
            pbx365_domain::calendar::Wanted {
                profile: ext.profile.profile,
                ..w
            }
            .explain(&local),
        )
    }
}

/// Whether a write changes the profile or who holds it (not only `until`): a switch, routed
/// to Kamailio and audited.
pub(crate) fn switched(old: &ProfileState, new: &ProfileState) -> bool {
    old.profile != new.profile || old.source != new.source
}
