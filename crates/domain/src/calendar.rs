//! Calendar status (SPEC §6): an extension's timeline of Outlook entries -> the profile it
//! should have at any instant, the instants at which that can change, and what the calendar
//! writes given the profile an extension has now.
//!
//! Entries are instants in UTC: a recurring series arrives expanded (calendarView), and an
//! all-day entry is turned into instants in the mailbox's zone by [`all_day_bounds`] (Graph
//! returns all-day entries as floating midnights, graph-facts §7).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Profile, ProfileSource, ProfileState};

/// Outlook "Show As" (`freeBusyStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ShowAs {
    /// Free.
    Free,
    /// Tentative.
    Tentative,
    /// Busy.
    Busy,
    /// Out of office.
    Oof,
    /// Working elsewhere.
    WorkingElsewhere,
    /// Unknown (also anything Microsoft adds later).
    Unknown,
}

impl ShowAs {
    /// Every value, in Graph's order.
    pub const ALL: [ShowAs; 6] = [
        ShowAs::Free,
        ShowAs::Tentative,
        ShowAs::Busy,
        ShowAs::Oof,
        ShowAs::WorkingElsewhere,
        ShowAs::Unknown,
    ];

    /// Graph's text form.
    pub fn as_str(self) -> &'static str {
        match self {
            ShowAs::Free => "free",
            ShowAs::Tentative => "tentative",
            ShowAs::Busy => "busy",
            ShowAs::Oof => "oof",
            ShowAs::WorkingElsewhere => "workingElsewhere",
            ShowAs::Unknown => "unknown",
        }
    }

    /// Parses Graph's text case-insensitively (getSchedule examples vary in casing); anything
    /// else is `unknown`, which switches nothing by default.
    pub fn parse(s: &str) -> ShowAs {
        ShowAs::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .unwrap_or(ShowAs::Unknown)
    }

    /// Which wins when entries overlap: `oof` beats `busy`/`workingElsewhere` (SPEC §6).
    fn rank(self) -> u8 {
        match self {
            ShowAs::Oof => 3,
            ShowAs::Busy | ShowAs::WorkingElsewhere => 2,
            ShowAs::Tentative => 1,
            ShowAs::Free | ShowAs::Unknown => 0,
        }
    }
}

/// The Show As -> profile map (`[calendar] map`): SPEC §6 defaults, editable per value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowAsMap(BTreeMap<ShowAs, Profile>);

impl Default for ShowAsMap {
    fn default() -> Self {
        ShowAsMap(BTreeMap::from([
            (ShowAs::Busy, Profile::Dnd),
            (ShowAs::WorkingElsewhere, Profile::Dnd),
            (ShowAs::Oof, Profile::Away),
        ]))
    }
}

impl ShowAsMap {
    /// The defaults overridden by the settings' map (`busy = "away"`, `tentative = "dnd"`,
    /// `oof = "none"` to switch nothing). Refuses unknown keys and profiles with a sentence.
    pub fn from_settings(overrides: &BTreeMap<String, String>) -> Result<ShowAsMap, String> {
        let mut map = ShowAsMap::default();
        for (key, value) in overrides {
            let show_as = ShowAs::ALL
                .into_iter()
                .find(|v| v.as_str().eq_ignore_ascii_case(key.trim()))
                .ok_or_else(|| {
                    format!(
                        "'{key}' is not an Outlook Show As value: use free, tentative, busy, oof, workingElsewhere or unknown"
                    )
                })?;
            let value = value.trim();
            if value.eq_ignore_ascii_case("none") || value.is_empty() {
                map.0.remove(&show_as);
            } else {
                let profile: Profile = value.parse().map_err(|_| {
                    format!(
                        "'{value}' for {key} is not a profile: use available, away, dnd, lunch, business_trip or none"
                    )
                })?;
                map.0.insert(show_as, profile);
            }
        }
        Ok(map)
    }

    /// The profile an entry with this Show As asks for, if any.
    pub fn profile(&self, show_as: ShowAs) -> Option<Profile> {
        self.0.get(&show_as).copied()
    }

    /// The map as it is shown and stored (every Show As value; `none` where nothing switches).
    pub fn to_settings(&self) -> BTreeMap<String, String> {
        ShowAs::ALL
            .into_iter()
            .map(|s| {
                let p = self.profile(s).map_or("none", Profile::as_str);
                (s.as_str().to_string(), p.to_string())
            })
            .collect()
    }
}

/// One calendar entry (an occurrence of a series counts as one), in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarEntry {
    /// Graph's event id (occurrences have their own).
    pub id: String,
    /// Start (inclusive).
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
    /// Outlook "Show As".
    pub show_as: ShowAs,
    /// Subject (never shown when private).
    pub subject: String,
    /// Private (`sensitivity` private or confidential).
    pub private: bool,
    /// An all-day entry.
    pub all_day: bool,
    /// Cancelled: switches nothing.
    pub cancelled: bool,
}

/// The instants of an all-day entry running from `first_day` to `end_day` (exclusive), the
/// midnights taken in the mailbox's zone by `to_utc` (Graph returns them floating).
pub fn all_day_bounds(
    first_day: NaiveDate,
    end_day: NaiveDate,
    to_utc: impl Fn(NaiveDateTime) -> DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let midnight = |d: NaiveDate| to_utc(d.and_hms_opt(0, 0, 0).expect("midnight exists"));
    (midnight(first_day), midnight(end_day.max(first_day)))
}

/// What the calendar asks for at an instant, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The profile.
    pub profile: Profile,
    /// Until the next instant at which what the calendar asks for changes.
    pub until: DateTime<Utc>,
    /// The winning entry's subject (empty when private).
    pub subject: String,
    /// The winning entry is private.
    pub private: bool,
}

impl Wanted {
    /// The sentence the console shows: "Do Not Disturb — calendar: 'Board meeting' until
    /// 14:30", or "Busy (private)" in place of the subject of a private entry.
    pub fn explain(&self, until_local: &str) -> String {
        let what = if self.private {
            "Busy (private)".to_string()
        } else {
            format!("'{}'", self.subject)
        };
        format!(
            "{} — calendar: {what} until {until_local}",
            self.profile.label()
        )
    }
}

/// An extension's calendar entries: what the calendar asks for at any instant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// The entries as read (cancelled and non-switching ones included; they count for nothing).
    pub entries: Vec<CalendarEntry>,
}

impl Timeline {
    /// The entries that can switch: not cancelled, not empty, mapped to a profile.
    fn relevant<'a>(
        &'a self,
        map: &'a ShowAsMap,
    ) -> impl Iterator<Item = (&'a CalendarEntry, Profile)> + 'a {
        self.entries
            .iter()
            .filter(|e| !e.cancelled && e.start < e.end)
            .filter_map(|e| map.profile(e.show_as).map(|p| (e, p)))
    }

    /// The winning entry at `at`: highest Show As rank, then the one that started last (the
    /// newer commitment), then the id (so the answer never depends on the read order).
    fn winner<'a>(
        &'a self,
        map: &'a ShowAsMap,
        at: DateTime<Utc>,
    ) -> Option<(&'a CalendarEntry, Profile)> {
        self.relevant(map)
            .filter(|(e, _)| e.start <= at && at < e.end)
            .max_by(|(a, _), (b, _)| {
                (a.show_as.rank(), a.start, &a.id).cmp(&(b.show_as.rank(), b.start, &b.id))
            })
    }

    /// The instants after `after` (exclusive) and up to `until` (inclusive) at which an entry
    /// starts or ends, sorted: the scheduler wakes at each (an entry's start matters even when
    /// the profile stays, since it ends a manual override).
    pub fn switch_instants(
        &self,
        map: &ShowAsMap,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let mut out: Vec<_> = self
            .relevant(map)
            .flat_map(|(e, _)| [e.start, e.end])
            .filter(|t| *t > after && *t <= until)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The next instant after `after` at which an entry starts or ends.
    pub fn next_instant(&self, map: &ShowAsMap, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.relevant(map)
            .flat_map(|(e, _)| [e.start, e.end])
            .filter(|t| *t > after)
            .min()
    }

    /// What the calendar asks for at `at`, if anything.
    pub fn wanted_at(&self, map: &ShowAsMap, at: DateTime<Utc>) -> Option<Wanted> {
        let (entry, profile) = self.winner(map, at)?;
        // The profile holds until the first start or end at which the winner asks for
        // another profile or nothing; the winner's own end is such an instant at the latest.
        let mut until = entry.end;
        let mut t = at;
        while let Some(next) = self.next_instant(map, t) {
            if self.winner(map, next).map(|(_, p)| p) != Some(profile) {
                until = next;
                break;
            }
            t = next;
        }
        Some(Wanted {
            profile,
            until,
            subject: if entry.private {
                String::new()
            } else {
                entry.subject.clone()
            },
            private: entry.private,
        })
    }

    /// Whether a relevant entry active at `at` started after `handled` (the last instant the
    /// calendar already acted on): such a start takes over even from a manual profile.
    fn started_since(&self, map: &ShowAsMap, handled: DateTime<Utc>, at: DateTime<Utc>) -> bool {
        self.relevant(map)
            .any(|(e, _)| e.start > handled && e.start <= at && at < e.end)
    }
}

/// The profile the calendar writes at `at`, given the extension's `current` profile and the
/// last instant the calendar acted on for it (`handled`; instants up to it were applied), or
/// `None` when it leaves the extension alone. Rules (SPEC §6):
/// - `business_trip` set by hand: the calendar is ignored entirely;
/// - a relevant entry that started since `handled` takes over and remembers the profile to go
///   back to; while the calendar holds the profile it follows the winning entry;
/// - a manual change during a calendar period wins until the next entry starts;
/// - when no entry asks for anything any more, the remembered profile comes back.
pub fn decide(
    timeline: &Timeline,
    map: &ShowAsMap,
    current: &ProfileState,
    handled: DateTime<Utc>,
    at: DateTime<Utc>,
) -> Option<ProfileState> {
    if current.source == ProfileSource::Manual && current.profile == Profile::BusinessTrip {
        return None;
    }
    let wanted = timeline.wanted_at(map, at);
    let next = match (wanted, current.source) {
        (Some(w), ProfileSource::Calendar) => ProfileState {
            profile: w.profile,
            source: ProfileSource::Calendar,
            until: Some(w.until),
            return_to: current.return_to,
        },
        (Some(w), ProfileSource::Manual) if timeline.started_since(map, handled, at) => {
            ProfileState {
                profile: w.profile,
                source: ProfileSource::Calendar,
                until: Some(w.until),
                return_to: Some(current.profile),
            }
        }
        (None, ProfileSource::Calendar) => ProfileState {
            profile: current.return_to.unwrap_or_default(),
            source: ProfileSource::Manual,
            until: None,
            return_to: None,
        },
        _ => return None,
    };
    (next != *current).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Duration, NaiveTime, TimeZone, Weekday};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn entry(id: &str, start: &str, end: &str, show_as: ShowAs) -> CalendarEntry {
        CalendarEntry {
            id: id.into(),
            start: t(start),
            end: t(end),
            show_as,
            subject: format!("subject {id}"),
            private: false,
            all_day: false,
            cancelled: false,
        }
    }

    fn manual(p: Profile) -> ProfileState {
        ProfileState {
            profile: p,
            ..Default::default()
        }
    }

    /// Drives the rules like the scheduler does: at each instant, `decide` against the state
    /// it left, with a manual change applied at `manual_at`. Returns (instant, profile) writes.
    fn run(
        timeline: &Timeline,
        start: ProfileState,
        from: &str,
        to: &str,
        manual_at: Option<(&str, Profile)>,
    ) -> Vec<(DateTime<Utc>, Profile)> {
        let map = ShowAsMap::default();
        let mut state = start;
        let mut handled = t(from);
        let mut instants = timeline.switch_instants(&map, handled, t(to));
        if let Some((m, _)) = manual_at {
            instants.push(t(m));
            instants.sort();
        }
        let mut out = Vec::new();
        for at in instants {
            if let Some((m, p)) = manual_at {
                if t(m) == at {
                    state = manual(p);
                    out.push((at, p));
                    continue;
                }
            }
            if let Some(next) = decide(timeline, &map, &state, handled, at) {
                out.push((at, next.profile));
                state = next;
            }
            handled = at;
        }
        out
    }

    #[test]
    fn busy_switches_to_dnd_and_back_to_the_saved_profile() {
        let tl = Timeline {
            entries: vec![entry(
                "a",
                "2026-03-02T09:00:00Z",
                "2026-03-02T10:00:00Z",
                ShowAs::Busy,
            )],
        };
        let got = run(
            &tl,
            manual(Profile::Lunch),
            "2026-03-02T08:00:00Z",
            "2026-03-03T00:00:00Z",
            None,
        );
        assert_eq!(
            got,
            vec![
                (t("2026-03-02T09:00:00Z"), Profile::Dnd),
                (t("2026-03-02T10:00:00Z"), Profile::Lunch)
            ]
        );
    }

    #[test]
    fn show_as_values_map_per_spec() {
        let map = ShowAsMap::default();
        assert_eq!(map.profile(ShowAs::Busy), Some(Profile::Dnd));
        assert_eq!(map.profile(ShowAs::WorkingElsewhere), Some(Profile::Dnd));
        assert_eq!(map.profile(ShowAs::Oof), Some(Profile::Away));
        for s in [ShowAs::Free, ShowAs::Tentative, ShowAs::Unknown] {
            assert_eq!(map.profile(s), None, "{s:?}");
        }
        assert_eq!(ShowAs::parse("Busy"), ShowAs::Busy);
        assert_eq!(ShowAs::parse("WORKINGELSEWHERE"), ShowAs::WorkingElsewhere);
        assert_eq!(ShowAs::parse("somethingNew"), ShowAs::Unknown);
    }

    #[test]
    fn the_map_is_editable_and_refuses_unknown_names() {
        let over = BTreeMap::from([
            ("busy".to_string(), "away".to_string()),
            ("tentative".to_string(), "lunch".to_string()),
            ("oof".to_string(), "none".to_string()),
        ]);
        let map = ShowAsMap::from_settings(&over).unwrap();
        assert_eq!(map.profile(ShowAs::Busy), Some(Profile::Away));
        assert_eq!(map.profile(ShowAs::Tentative), Some(Profile::Lunch));
        assert_eq!(map.profile(ShowAs::Oof), None);
        assert_eq!(map.to_settings()["oof"], "none");
        let err = ShowAsMap::from_settings(&BTreeMap::from([("meeting".into(), "dnd".into())]))
            .unwrap_err();
        assert!(err.contains("not an Outlook Show As value"), "{err}");
        let err = ShowAsMap::from_settings(&BTreeMap::from([("busy".into(), "gone".into())]))
            .unwrap_err();
        assert!(err.contains("'gone' for busy is not a profile"), "{err}");
    }

    #[test]
    fn oof_switches_to_away_and_free_tentative_unknown_switch_nothing() {
        let tl = Timeline {
            entries: vec![
                entry(
                    "o",
                    "2026-03-02T09:00:00Z",
                    "2026-03-02T10:00:00Z",
                    ShowAs::Oof,
                ),
                entry(
                    "f",
                    "2026-03-02T11:00:00Z",
                    "2026-03-02T12:00:00Z",
                    ShowAs::Free,
                ),
                entry(
                    "t",
                    "2026-03-02T12:00:00Z",
                    "2026-03-02T13:00:00Z",
                    ShowAs::Tentative,
                ),
                entry(
                    "u",
                    "2026-03-02T13:00:00Z",
                    "2026-03-02T14:00:00Z",
                    ShowAs::Unknown,
                ),
            ],
        };
        let got = run(
            &tl,
            manual(Profile::Available),
            "2026-03-02T00:00:00Z",
            "2026-03-03T00:00:00Z",
            None,
        );
        assert_eq!(
            got,
            vec![
                (t("2026-03-02T09:00:00Z"), Profile::Away),
                (t("2026-03-02T10:00:00Z"), Profile::Available)
            ]
        );
    }

    #[test]
    fn overlapping_oof_beats_busy_then_busy_then_the_saved_profile() {
        let tl = Timeline {
            entries: vec![
                entry(
                    "b",
                    "2026-03-02T09:00:00Z",
                    "2026-03-02T12:00:00Z",
                    ShowAs::Busy,
                ),
                entry(
                    "o",
                    "2026-03-02T08:30:00Z",
                    "2026-03-02T10:00:00Z",
                    ShowAs::Oof,
                ),
            ],
        };
        let got = run(
            &tl,
            manual(Profile::Available),
            "2026-03-02T00:00:00Z",
            "2026-03-03T00:00:00Z",
            None,
        );
        assert_eq!(
            got,
            vec![
                (t("2026-03-02T08:30:00Z"), Profile::Away),
                (t("2026-03-02T10:00:00Z"), Profile::Dnd),
                (t("2026-03-02T12:00:00Z"), Profile::Available)
            ]
        );
        // `until` is the next change, and the end of the last overlapping entry at the end.
        let map = ShowAsMap::default();
        let w = tl.wanted_at(&map, t("2026-03-02T09:30:00Z")).unwrap();
        assert_eq!(
            (w.profile, w.until),
            (Profile::Away, t("2026-03-02T10:00:00Z"))
        );
        let w = tl.wanted_at(&map, t("2026-03-02T10:00:00Z")).unwrap();
        assert_eq!(
            (w.profile, w.until),
            (Profile::Dnd, t("2026-03-02T12:00:00Z"))
        );
    }

    #[test]
    fn back_to_back_entries_keep_the_profile_saved_before_the_first() {
        let tl = Timeline {
            entries: vec![
                entry(
                    "a",
                    "2026-03-02T09:00:00Z",
                    "2026-03-02T10:00:00Z",
                    ShowAs::Busy,
                ),
                entry(
                    "b",
                    "2026-03-02T10:00:00Z",
                    "2026-03-02T11:00:00Z",
                    ShowAs::WorkingElsewhere,
                ),
            ],
        };
        let map = ShowAsMap::default();
        let w = tl.wanted_at(&map, t("2026-03-02T09:00:00Z")).unwrap();
        assert_eq!(w.until, t("2026-03-02T11:00:00Z"), "one dnd period");
        let got = run(
            &tl,
            manual(Profile::Lunch),
            "2026-03-02T00:00:00Z",
            "2026-03-03T00:00:00Z",
            None,
        );
        assert_eq!(
            got,
            vec![
                (t("2026-03-02T09:00:00Z"), Profile::Dnd),
                (t("2026-03-02T11:00:00Z"), Profile::Lunch)
            ]
        );
    }

    #[test]
    fn cancelled_entries_switch_nothing() {
        let mut e = entry(
            "c",
            "2026-03-02T09:00:00Z",
            "2026-03-02T10:00:00Z",
            ShowAs::Busy,
        );
        e.cancelled = true;
        let tl = Timeline { entries: vec![e] };
        let got = run(
            &tl,
            manual(Profile::Available),
            "2026-03-02T00:00:00Z",
            "2026-03-03T00:00:00Z",
            None,
        );
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn business_trip_ignores_the_calendar() {
        let tl = Timeline {
            entries: vec![
                entry(
                    "b",
                    "2026-03-02T09:00:00Z",
                    "2026-03-02T10:00:00Z",
                    ShowAs::Busy,
                ),
                entry(
                    "o",
                    "2026-03-02T11:00:00Z",
                    "2026-03-02T12:00:00Z",
                    ShowAs::Oof,
                ),
            ],
        };
        let got = run(
            &tl,
            manual(Profile::BusinessTrip),
            "2026-03-02T00:00:00Z",
            "2026-03-03T00:00:00Z",
            None,
        );
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn a_manual_change_mid_entry_wins_until_the_next_entry_starts() {
        let tl = Timeline {
            entries: vec![
                entry(
                    "a",
                    "2026-03-02T09:00:00Z",
                    "2026-03-02T10:00:00Z",
                    ShowAs::Busy,
                ),
                entry(
                    "b",
                    "2026-03-02T13:00:00Z",
                    "2026-03-02T14:00:00Z",
                    ShowAs::Busy,
                ),
            ],
        };
        let got = run(
            &tl,
            manual(Profile::Available),
            "2026-03-02T00:00:00Z",
            "2026-03-03T00:00:00Z",
            Some(("2026-03-02T09:30:00Z", Profile::Lunch)),
        );
        assert_eq!(
            got,
            vec![
                (t("2026-03-02T09:00:00Z"), Profile::Dnd),
                (t("2026-03-02T09:30:00Z"), Profile::Lunch),
                // 10:00: the entry ends, lunch is kept.
                (t("2026-03-02T13:00:00Z"), Profile::Dnd),
                (t("2026-03-02T14:00:00Z"), Profile::Lunch),
            ]
        );
    }

    #[test]
    fn a_restart_mid_entry_takes_over_once_and_keeps_a_manual_override() {
        let tl = Timeline {
            entries: vec![entry(
                "a",
                "2026-03-02T09:00:00Z",
                "2026-03-02T10:00:00Z",
                ShowAs::Busy,
            )],
        };
        let map = ShowAsMap::default();
        let mid = t("2026-03-02T09:20:00Z");
        // Down at the start: the entry started after what was handled, so it takes over.
        let s = decide(
            &tl,
            &map,
            &manual(Profile::Available),
            t("2026-03-02T08:00:00Z"),
            mid,
        )
        .unwrap();
        assert_eq!(
            (s.profile, s.return_to),
            (Profile::Dnd, Some(Profile::Available))
        );
        // Already handled the start and a person changed it since: left alone.
        assert_eq!(
            decide(
                &tl,
                &map,
                &manual(Profile::Lunch),
                t("2026-03-02T09:00:00Z"),
                mid
            ),
            None
        );
        // Calendar-held state after a restart: nothing to write, then back at the end.
        assert_eq!(decide(&tl, &map, &s, t("2026-03-02T09:00:00Z"), mid), None);
        let end = decide(&tl, &map, &s, mid, t("2026-03-02T10:00:00Z")).unwrap();
        assert_eq!(end, manual(Profile::Available));
    }

    /// Europe/Berlin (EU rule: summer time from the last Sunday of March 01:00 UTC to the last
    /// Sunday of October 01:00 UTC), for tests: the zone of the mailbox.
    fn berlin_to_utc(local: NaiveDateTime) -> DateTime<Utc> {
        let last_sunday = |year: i32, month: u32| {
            let mut d = NaiveDate::from_ymd_opt(year, month + 1, 1).unwrap() - Duration::days(1);
            while d.weekday() != Weekday::Sun {
                d -= Duration::days(1);
            }
            d.and_hms_opt(1, 0, 0).unwrap()
        };
        let summer_start = last_sunday(local.year(), 3);
        let summer_end = last_sunday(local.year(), 10);
        let summer = local - Duration::hours(2);
        let offset = if summer >= summer_start && summer < summer_end {
            2
        } else {
            1
        };
        Utc.from_utc_datetime(&(local - Duration::hours(offset)))
    }

    #[test]
    fn a_weekly_entry_crossing_a_dst_change_switches_at_its_local_time() {
        // Mondays 09:00-10:00 Berlin time, expanded as calendarView does; 2026-03-29 is the
        // change to summer time.
        let map = ShowAsMap::default();
        let days = ["2026-03-23", "2026-03-30"];
        let tl = Timeline {
            entries: days
                .iter()
                .map(|d| {
                    let day: NaiveDate = d.parse().unwrap();
                    let at =
                        |h| berlin_to_utc(day.and_time(NaiveTime::from_hms_opt(h, 0, 0).unwrap()));
                    CalendarEntry {
                        id: format!("weekly-{d}"),
                        start: at(9),
                        end: at(10),
                        show_as: ShowAs::Busy,
                        subject: "Weekly".into(),
                        private: false,
                        all_day: false,
                        cancelled: false,
                    }
                })
                .collect(),
        };
        assert_eq!(
            tl.switch_instants(&map, t("2026-03-20T00:00:00Z"), t("2026-04-06T00:00:00Z")),
            vec![
                t("2026-03-23T08:00:00Z"),
                t("2026-03-23T09:00:00Z"),
                t("2026-03-30T07:00:00Z"),
                t("2026-03-30T08:00:00Z"),
            ]
        );
        let got = run(
            &tl,
            manual(Profile::Available),
            "2026-03-20T00:00:00Z",
            "2026-04-06T00:00:00Z",
            None,
        );
        assert_eq!(got.len(), 4);
        assert_eq!(got[2], (t("2026-03-30T07:00:00Z"), Profile::Dnd));
    }

    #[test]
    fn an_all_day_oof_entry_runs_from_local_midnight_to_local_midnight() {
        // The all-day entry on the day of the autumn change lasts 25 hours.
        let (start, end) = all_day_bounds(
            "2026-10-25".parse().unwrap(),
            "2026-10-26".parse().unwrap(),
            berlin_to_utc,
        );
        assert_eq!(start, t("2026-10-24T22:00:00Z"));
        assert_eq!(end, t("2026-10-25T23:00:00Z"));
        let tl = Timeline {
            entries: vec![CalendarEntry {
                id: "holiday".into(),
                start,
                end,
                show_as: ShowAs::Oof,
                subject: "Holiday".into(),
                private: false,
                all_day: true,
                cancelled: false,
            }],
        };
        let got = run(
            &tl,
            manual(Profile::Available),
            "2026-10-24T00:00:00Z",
            "2026-10-27T00:00:00Z",
            None,
        );
        assert_eq!(
            got,
            vec![
                (t("2026-10-24T22:00:00Z"), Profile::Away),
                (t("2026-10-25T23:00:00Z"), Profile::Available)
            ]
        );
    }

    #[test]
    fn the_explanation_hides_private_subjects() {
        let w = Wanted {
            profile: Profile::Dnd,
            until: t("2026-03-02T14:30:00Z"),
            subject: "Board meeting".into(),
            private: false,
        };
        assert_eq!(
            w.explain("14:30"),
            "Do Not Disturb — calendar: 'Board meeting' until 14:30"
        );
        let private = Wanted {
            private: true,
            subject: String::new(),
            ..w
        };
        assert_eq!(
            private.explain("14:30"),
            "Do Not Disturb — calendar: Busy (private) until 14:30"
        );
    }
}
