//! Calendar rules on stored events: property normalisation (all-day rounding, showAs,
//! recurrence), and the expansion of series into instances in a time window (graph-facts §7).

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Weekday};
use serde_json::{json, Map, Value};

use super::{Event, User};
use crate::tz::{self, fmt_local, parse_local, Zone};

const SHOW_AS: &[&str] = &[
    "free",
    "tentative",
    "busy",
    "oof",
    "workingElsewhere",
    "unknown",
];

/// A refused event property: (JSON path, what is wrong).
pub type FieldError = (String, String);

fn fe(field: &str, msg: impl Into<String>) -> FieldError {
    (field.to_string(), msg.into())
}

/// Reads a `dateTimeTimeZone` property: local time, zone name and zone.
pub fn parse_dtz(
    props: &Map<String, Value>,
    field: &str,
) -> Result<(NaiveDateTime, String, Zone), FieldError> {
    let v = props
        .get(field)
        .ok_or_else(|| fe(field, "required dateTimeTimeZone object"))?;
    let dt = v
        .get("dateTime")
        .and_then(|d| d.as_str())
        .and_then(parse_local)
        .ok_or_else(|| {
            fe(
                &format!("{field}.dateTime"),
                "expected a date and time like 2025-03-15T12:00:00",
            )
        })?;
    let tz_name = v
        .get("timeZone")
        .and_then(|t| t.as_str())
        .unwrap_or("UTC")
        .to_string();
    let zone = tz::zone(&tz_name).ok_or_else(|| {
        fe(
            &format!("{field}.timeZone"),
            format!("unknown time zone '{tz_name}'"),
        )
    })?;
    Ok((dt, tz_name, zone))
}

/// Validates and fills defaults of an event's properties (start/end, all-day rounding,
/// showAs, recurrence); the error names the field.
pub fn normalize_event(props: &mut Map<String, Value>) -> Result<(), FieldError> {
    let (mut start, stz, _) = parse_dtz(props, "start")?;
    let (mut end, etz, _) = parse_dtz(props, "end")?;
    let all_day = match props.get("isAllDay") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(fe("isAllDay", "expected true or false")),
    };
    if all_day {
        // All-day events run midnight to midnight; a non-midnight start moves back and a
        // non-midnight end moves forward (graph-facts §7).
        start = start.date().and_hms_opt(0, 0, 0).expect("midnight");
        if end.time() != chrono::NaiveTime::MIN {
            end = (end.date() + Duration::days(1))
                .and_hms_opt(0, 0, 0)
                .expect("midnight");
        }
        if end <= start {
            end = start + Duration::days(1);
        }
    }
    if end < start {
        return Err(fe("end", "must not be before start"));
    }
    props.insert(
        "start".into(),
        json!({"dateTime": fmt_local(start), "timeZone": stz}),
    );
    props.insert(
        "end".into(),
        json!({"dateTime": fmt_local(end), "timeZone": etz}),
    );
    props.insert("isAllDay".into(), json!(all_day));
    match props.get("showAs") {
        None | Some(Value::Null) => {
            props.insert("showAs".into(), json!("busy"));
        }
        Some(Value::String(s)) => {
            let Some(canon) = SHOW_AS.iter().find(|x| x.eq_ignore_ascii_case(s)) else {
                return Err(fe(
                    "showAs",
                    "expected free, tentative, busy, oof, workingElsewhere or unknown",
                ));
            };
            props.insert("showAs".into(), json!(canon));
        }
        Some(_) => return Err(fe("showAs", "expected a string")),
    }
    for (k, d) in [
        ("subject", json!("")),
        ("isCancelled", json!(false)),
        ("sensitivity", json!("normal")),
    ] {
        if props.get(k).is_none_or(|v| v.is_null()) {
            props.insert(k.into(), d);
        }
    }
    match props.get("recurrence") {
        None | Some(Value::Null) => {
            props.insert("recurrence".into(), Value::Null);
            props.insert("type".into(), json!("singleInstance"));
        }
        Some(r) => {
            parse_recurrence(r, start.date())?;
            props.insert("type".into(), json!("seriesMaster"));
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct Recurrence {
    kind: String,
    interval: i64,
    days: Vec<Weekday>,
    first_day: Weekday,
    day_of_month: u32,
    month: u32,
    start: NaiveDate,
    end: Option<NaiveDate>,
    count: Option<usize>,
}

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s.to_ascii_lowercase().as_str() {
        "monday" => Weekday::Mon,
        "tuesday" => Weekday::Tue,
        "wednesday" => Weekday::Wed,
        "thursday" => Weekday::Thu,
        "friday" => Weekday::Fri,
        "saturday" => Weekday::Sat,
        "sunday" => Weekday::Sun,
        _ => return None,
    })
}

fn parse_recurrence(r: &Value, event_start: NaiveDate) -> Result<Recurrence, FieldError> {
    let p = r
        .get("pattern")
        .ok_or_else(|| fe("recurrence.pattern", "required"))?;
    let kind = p
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("")
        .to_string();
    if ![
        "daily",
        "weekly",
        "absoluteMonthly",
        "relativeMonthly",
        "absoluteYearly",
        "relativeYearly",
    ]
    .contains(&kind.as_str())
    {
        return Err(fe("recurrence.pattern.type", "expected daily, weekly, absoluteMonthly, relativeMonthly, absoluteYearly or relativeYearly"));
    }
    let interval = p.get("interval").and_then(|i| i.as_i64()).unwrap_or(1);
    if interval < 1 {
        return Err(fe("recurrence.pattern.interval", "must be at least 1"));
    }
    let mut days = Vec::new();
    if let Some(a) = p.get("daysOfWeek").and_then(|d| d.as_array()) {
        for (i, d) in a.iter().enumerate() {
            days.push(d.as_str().and_then(weekday).ok_or_else(|| {
                fe(
                    &format!("recurrence.pattern.daysOfWeek[{i}]"),
                    "expected a day name such as monday",
                )
            })?);
        }
    }
    if kind == "weekly" && days.is_empty() {
        days.push(event_start.weekday());
    }
    let range = r
        .get("range")
        .ok_or_else(|| fe("recurrence.range", "required"))?;
    let start = range
        .get("startDate")
        .and_then(|d| d.as_str())
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or(event_start);
    let rtype = range
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("noEnd");
    let (end, count) = match rtype {
        "noEnd" => (None, None),
        "endDate" => (
            Some(
                range
                    .get("endDate")
                    .and_then(|d| d.as_str())
                    .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                    .ok_or_else(|| {
                        fe(
                            "recurrence.range.endDate",
                            "expected a date like 2025-12-31",
                        )
                    })?,
            ),
            None,
        ),
        "numbered" => (
            None,
            Some(
                range
                    .get("numberOfOccurrences")
                    .and_then(|n| n.as_u64())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        fe(
                            "recurrence.range.numberOfOccurrences",
                            "expected a positive number",
                        )
                    })? as usize,
            ),
        ),
        _ => {
            return Err(fe(
                "recurrence.range.type",
                "expected endDate, noEnd or numbered",
            ))
        }
    };
    Ok(Recurrence {
        kind,
        interval,
        days,
        first_day: p
            .get("firstDayOfWeek")
            .and_then(|d| d.as_str())
            .and_then(weekday)
            .unwrap_or(Weekday::Sun),
        day_of_month: p
            .get("dayOfMonth")
            .and_then(|d| d.as_u64())
            .map(|d| d as u32)
            .unwrap_or(event_start.day()),
        month: p
            .get("month")
            .and_then(|d| d.as_u64())
            .map(|d| d as u32)
            .unwrap_or(event_start.month()),
        start,
        end,
        count,
    })
}

/// Dates of a recurrence from its start up to and including `until`.
fn recurrence_dates(r: &Recurrence, until: NaiveDate) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let last = r.end.map(|e| e.min(until)).unwrap_or(until);
    let mut d = r.start;
    let week0 = {
        let mut w = r.start;
        while w.weekday() != r.first_day {
            w -= Duration::days(1);
        }
        w
    };
    let max_iter = 366 * 30;
    let mut i = 0;
    while d <= last && i < max_iter {
        i += 1;
        let hit = match r.kind.as_str() {
            "daily" => (d - r.start).num_days() % r.interval == 0,
            "weekly" => {
                let week = (d - week0).num_days() / 7;
                week % r.interval == 0 && r.days.contains(&d.weekday())
            }
            "absoluteMonthly" | "relativeMonthly" => {
                let months = (d.year() - r.start.year()) as i64 * 12 + d.month() as i64
                    - r.start.month() as i64;
                months % r.interval == 0 && d.day() == r.day_of_month
            }
            _ => {
                let years = (d.year() - r.start.year()) as i64;
                years % r.interval == 0 && d.month() == r.month && d.day() == r.day_of_month
            }
        };
        if hit {
            out.push(d);
            if r.count.is_some_and(|c| out.len() >= c) {
                break;
            }
        }
        d += Duration::days(1);
    }
    out
}

/// One expanded instance of an event.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Instance id (the event id for single instances).
    pub id: String,
    /// Start in UTC (for all-day: midnight in the response zone).
    pub start_utc: NaiveDateTime,
    /// End in UTC.
    pub end_utc: NaiveDateTime,
    /// Local start in the event's zone (all-day: the floating date).
    pub local_start: NaiveDateTime,
    /// Local end in the event's zone.
    pub local_end: NaiveDateTime,
    /// An all-day entry (floats in the response zone).
    pub all_day: bool,
    /// An occurrence of a series (not a single instance).
    pub occurrence: bool,
}

/// Instances of `ev` overlapping `[from, to)` (UTC); all-day entries float in `resp`.
pub fn instances(ev: &Event, from: NaiveDateTime, to: NaiveDateTime, resp: Zone) -> Vec<Instance> {
    let Ok((start, _, zone)) = parse_dtz(&ev.props, "start") else {
        return vec![];
    };
    let Ok((end, _, end_zone)) = parse_dtz(&ev.props, "end") else {
        return vec![];
    };
    let all_day = ev
        .props
        .get("isAllDay")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let duration = if all_day {
        end - start
    } else {
        end_zone.to_utc(end) - zone.to_utc(start)
    };
    let make = |local_start: NaiveDateTime, occurrence: bool| {
        let (s_utc, e_utc, local_end) = if all_day {
            let le = local_start + duration;
            (resp.to_utc(local_start), resp.to_utc(le), le)
        } else {
            let su = zone.to_utc(local_start);
            let eu = su + duration;
            (su, eu, zone.from_utc(eu))
        };
        Instance {
            id: if occurrence {
                format!("{}_{}", ev.id, local_start.format("%Y%m%d"))
            } else {
                ev.id.clone()
            },
            start_utc: s_utc,
            end_utc: e_utc,
            local_start,
            local_end,
            all_day,
            occurrence,
        }
    };
    let overlaps = |i: &Instance| {
        i.start_utc < to && (i.end_utc > from || (i.end_utc == i.start_utc && i.start_utc >= from))
    };
    if ev.props.get("isCancelled").and_then(|v| v.as_bool()) == Some(true) {
        return vec![];
    }
    match ev.props.get("recurrence").filter(|r| !r.is_null()) {
        None => {
            let i = make(start, false);
            if overlaps(&i) {
                vec![i]
            } else {
                vec![]
            }
        }
        Some(r) => {
            let Ok(rec) = parse_recurrence(r, start.date()) else {
                return vec![];
            };
            let until = (to + Duration::days(2)).date();
            recurrence_dates(&rec, until)
                .into_iter()
                .map(|d| make(d.and_time(start.time()), true))
                .filter(overlaps)
                .collect()
        }
    }
}

/// Sets `organizer` to the mailbox owner when the event names none: an event created in a
/// mailbox is organised by its owner (https://learn.microsoft.com/graph/api/resources/event,
/// `organizer`; the response example of https://learn.microsoft.com/graph/api/user-post-events).
pub fn fill_organizer(props: &mut Map<String, Value>, owner: &User) {
    if props.get("organizer").is_none_or(Value::is_null) {
        let address = owner
            .mail
            .clone()
            .unwrap_or_else(|| owner.user_principal_name.clone());
        let name = owner
            .display_name
            .clone()
            .unwrap_or_else(|| address.clone());
        props.insert(
            "organizer".into(),
            json!({"emailAddress": {"name": name, "address": address}}),
        );
    }
}
