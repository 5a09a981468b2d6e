//! Reading calendars ahead: one calendarView delta read per followed mailbox, many per
//! `$batch`, folded into each extension's stored [`Timeline`].
//!
//! A delta link covers the window it was made for; once half of the look-ahead has passed, a
//! new round over now..+look-ahead replaces it (graph-facts §7: the window is fixed by the
//! first request). An expired link also starts a new round.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use pbx365_domain::calendar::{all_day_bounds, CalendarEntry, ShowAs, Timeline};
use pbx365_domain::Extension;
use pbx365_graph::calendar::{CalendarDelta, CalendarRead};
use pbx365_graph::{Event, GraphError};
use pbx365_store::{Store, StoredTimeline};

use crate::{App, AppError};

/// Entries that ended this long ago are dropped from a timeline.
const KEEP_ENDED: i64 = 1;

/// Reads the calendars of `followed` (all in few `$batch` requests) and returns their new
/// timelines; stores them through `store` when `save`. A mailbox Graph refuses is logged and
/// keeps its stored timeline.
pub async fn read_calendars(
    app: &App,
    store: &Store,
    followed: &[Extension],
    now: DateTime<Utc>,
    save: bool,
) -> Result<Vec<StoredTimeline>, AppError> {
    let graph = app.graph()?;
    let look_ahead = Duration::hours(i64::from(app.settings().calendar.look_ahead_hours));
    let mut stored: BTreeMap<String, StoredTimeline> = store
        .list_timelines()
        .await?
        .into_iter()
        .map(|t| (t.number.clone(), t))
        .collect();
    let window = |now: DateTime<Utc>| CalendarRead::Window {
        start: iso(now),
        end: iso(now + look_ahead),
    };
    let mut reads = Vec::new();
    for ext in followed {
        let Some(uid) = ext.m365_id.as_ref() else {
            continue;
        };
        let prev = stored.get(ext.number.as_str());
        let read = match prev {
            Some(p)
                if p.m365_id == uid.as_str()
                    && p.delta_link.is_some()
                    && p.window_end.is_some_and(|end| end - now > look_ahead / 2) =>
            {
                CalendarRead::Since(p.delta_link.clone().unwrap_or_default())
            }
            _ => window(now),
        };
        reads.push((ext.number.as_str().to_string(), uid.to_string(), read));
    }
    let mut answers = graph
        .calendar_deltas(reads.clone())
        .await
        .map_err(graph_err)?;
    // An expired link: a new round for those mailboxes.
    let expired: Vec<_> = answers
        .iter()
        .filter(|(_, r)| matches!(r, Err(GraphError::DeltaExpired { .. })))
        .map(|(k, _)| k.clone())
        .collect();
    if !expired.is_empty() {
        answers.retain(|(k, _)| !expired.contains(k));
        let again = reads
            .into_iter()
            .filter(|(k, _, _)| expired.contains(k))
            .map(|(k, uid, _)| (k, uid, window(now)))
            .collect();
        answers.extend(graph.calendar_deltas(again).await.map_err(graph_err)?);
    }
    let mut out = Vec::new();
    for (number, answer) in answers {
        let Some(ext) = followed.iter().find(|e| e.number.as_str() == number) else {
            continue;
        };
        let delta = match answer {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(extension = %number, error = %e, "reading a calendar failed; its stored timeline stays");
                if let Some(p) = stored.remove(&number) {
                    out.push(p);
                }
                continue;
            }
        };
        let prev = stored.remove(&number);
        let t = fold(ext, prev, delta, now, look_ahead);
        if save {
            store.put_timeline(&t).await?;
        }
        out.push(t);
    }
    Ok(out)
}

/// The new timeline: a new round replaces the entries, a delta changes them by id.
fn fold(
    ext: &Extension,
    prev: Option<StoredTimeline>,
    delta: CalendarDelta,
    now: DateTime<Utc>,
    look_ahead: Duration,
) -> StoredTimeline {
    let uid = ext.m365_id.clone().unwrap_or_default();
    let same_user = prev.as_ref().is_some_and(|p| p.m365_id == uid);
    let mut entries: BTreeMap<String, CalendarEntry> = match (&prev, delta.full) {
        (Some(p), false) if same_user => p
            .timeline
            .entries
            .iter()
            .map(|e| (e.id.clone(), e.clone()))
            .collect(),
        _ => BTreeMap::new(),
    };
    for ev in delta.items {
        if ev.removed.is_some() {
            entries.remove(&ev.id);
            continue;
        }
        match entry(&ev) {
            Some(e) => {
                entries.insert(e.id.clone(), e);
            }
            None => {
                entries.remove(&ev.id);
            }
        }
    }
    let keep_after = now - Duration::hours(KEEP_ENDED);
    let mut list: Vec<CalendarEntry> = entries
        .into_values()
        .filter(|e| e.end > keep_after)
        .collect();
    list.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
    let window_end = if delta.full {
        Some(now + look_ahead)
    } else {
        prev.as_ref().and_then(|p| p.window_end)
    };
    StoredTimeline {
        number: ext.number.as_str().to_string(),
        m365_id: uid,
        timeline: Timeline { entries: list },
        delta_link: Some(delta.delta_link),
        window_end,
        // A new timeline has handled nothing of what lies ahead: an entry already running
        // when it is first read takes over once.
        handled_until: prev
            .filter(|_| same_user)
            .map_or(now - Duration::days(365), |p| p.handled_until),
        read_at: now,
    }
}

/// A Graph event as a timeline entry; `None` for what is not an instance (a series master).
pub fn entry(ev: &Event) -> Option<CalendarEntry> {
    if ev.event_type.as_deref() == Some("seriesMaster") {
        return None;
    }
    let start = parse_local(&ev.start.as_ref()?.date_time)?;
    let end = parse_local(&ev.end.as_ref()?.date_time)?;
    let all_day = ev.is_all_day.unwrap_or(false);
    let (start, end) = if all_day {
        // Floating midnights (graph-facts §7): midnight in the server's zone.
        all_day_bounds(start.date(), end.date(), local_midnight)
    } else {
        (Utc.from_utc_datetime(&start), Utc.from_utc_datetime(&end))
    };
    Some(CalendarEntry {
        id: ev.id.clone(),
        start,
        end,
        show_as: ShowAs::parse(ev.show_as.as_deref().unwrap_or("unknown")),
        subject: ev.subject.clone().unwrap_or_default(),
        private: matches!(
            ev.sensitivity
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("private" | "confidential")
        ),
        all_day,
        cancelled: ev.is_cancelled.unwrap_or(false),
    })
}

/// A local midnight of the server's zone in UTC (the earlier one if the clock went back; the
/// first existing instant after it if it was skipped).
fn local_midnight(local: NaiveDateTime) -> DateTime<Utc> {
    let mut t = local;
    for _ in 0..4 {
        if let Some(dt) = chrono::Local.from_local_datetime(&t).earliest() {
            return dt.with_timezone(&Utc);
        }
        t += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&local)
}

/// `2019-03-15T12:00:00.0000000` (times in UTC, as asked for with `Prefer`).
fn parse_local(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f").ok()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn graph_err(e: GraphError) -> AppError {
    AppError::Microsoft(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbx365_graph::DateTimeTimeZone;

    fn dt(s: &str) -> Option<DateTimeTimeZone> {
        Some(DateTimeTimeZone {
            date_time: s.into(),
            time_zone: Some("UTC".into()),
        })
    }

    #[test]
    fn graph_events_become_entries_in_utc() {
        let ev = Event {
            id: "e1".into(),
            subject: Some("Board meeting".into()),
            show_as: Some("busy".into()),
            start: dt("2026-03-02T09:00:00.0000000"),
            end: dt("2026-03-02T10:30:00.0000000"),
            sensitivity: Some("private".into()),
            ..Default::default()
        };
        let e = entry(&ev).unwrap();
        assert_eq!(e.start, Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap());
        assert_eq!(e.end, Utc.with_ymd_and_hms(2026, 3, 2, 10, 30, 0).unwrap());
        assert!(e.private && !e.all_day && !e.cancelled);
        assert_eq!(e.show_as, ShowAs::Busy);
        let master = Event {
            event_type: Some("seriesMaster".into()),
            ..ev
        };
        assert!(entry(&master).is_none());
    }
}
