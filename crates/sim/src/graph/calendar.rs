//! Calendar: `/users/{id}/events` CRUD, `/users/{id}/calendarView` (recurrences expanded,
//! all-day entries floating), `/users/{id}/calendarView/delta` and
//! `POST /users/{id}/calendar/getSchedule`.
//!
//! Docs: https://learn.microsoft.com/graph/api/user-list-calendarview ·
//! https://learn.microsoft.com/graph/api/event-delta · https://learn.microsoft.com/graph/api/calendar-getschedule
//! (graph-facts §7).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Weekday};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::contacts::mailbox_user;
use super::tz::{self, fmt_local, parse_local, Zone};
use super::{
    collection, decode_token, enc, encode_token, graph_error, item_not_found, json_object,
    json_response, prefer_values, sync_state_not_found, Query,
};
use crate::identity::access::AppPrincipal;
use crate::state::SimState;
use crate::tenant::{now_str, ChangeEvent, Event, ItemKind};

/// Calendar routes.
pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            "/v1.0/users/{id}/events",
            get(list_events).post(create_event),
        )
        .route(
            "/v1.0/users/{id}/calendar/events",
            get(list_events).post(create_event),
        )
        .route(
            "/v1.0/users/{id}/events/{eid}",
            get(get_event).patch(update_event).delete(delete_event),
        )
        .route("/v1.0/users/{id}/calendarView", get(calendar_view))
        .route("/v1.0/users/{id}/calendar/calendarView", get(calendar_view))
        .route(
            "/v1.0/users/{id}/calendarView/delta",
            get(calendar_view_delta),
        )
        .route("/v1.0/users/{id}/calendar/getSchedule", post(get_schedule))
}

const READ: &[&str] = &[
    "Calendars.Read",
    "Calendars.ReadBasic.All",
    "Calendars.ReadWrite",
];
const WRITE: &[&str] = &["Calendars.ReadWrite"];
const SHOW_AS: &[&str] = &[
    "free",
    "tentative",
    "busy",
    "oof",
    "workingElsewhere",
    "unknown",
];

type FieldError = (String, String);

fn fe(field: &str, msg: impl Into<String>) -> FieldError {
    (field.to_string(), msg.into())
}

fn parse_dtz(
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
    local_start: NaiveDateTime,
    local_end: NaiveDateTime,
    all_day: bool,
    occurrence: bool,
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

/// Event JSON as stored (series master or single instance).
pub fn event_json(ev: &Event) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), json!(ev.id));
    m.insert("createdDateTime".into(), json!(ev.created));
    m.insert("lastModifiedDateTime".into(), json!(ev.modified));
    m.insert("changeKey".into(), json!(ev.change_key));
    for (k, v) in &ev.props {
        m.insert(k.clone(), v.clone());
    }
    m
}

fn instance_json(ev: &Event, inst: &Instance, resp: Zone, resp_name: &str) -> Value {
    let mut m = event_json(ev);
    m.insert("id".into(), json!(inst.id));
    let (s, e) = if inst.all_day {
        (inst.local_start, inst.local_end)
    } else {
        (resp.from_utc(inst.start_utc), resp.from_utc(inst.end_utc))
    };
    m.insert(
        "start".into(),
        json!({"dateTime": fmt_local(s), "timeZone": resp_name}),
    );
    m.insert(
        "end".into(),
        json!({"dateTime": fmt_local(e), "timeZone": resp_name}),
    );
    if inst.occurrence {
        m.insert("type".into(), json!("occurrence"));
        m.insert("seriesMasterId".into(), json!(ev.id));
        m.insert("recurrence".into(), Value::Null);
    }
    Value::Object(m)
}

/// Applies `$select` (`id` always kept).
fn select_event(v: Value, select: &Option<Vec<String>>) -> Value {
    let Some(sel) = select else {
        return v;
    };
    let Value::Object(m) = v else {
        return v;
    };
    Value::Object(
        m.into_iter()
            .filter(|(k, _)| k == "id" || sel.iter().any(|s| s.eq_ignore_ascii_case(k)))
            .collect(),
    )
}

/// The response zone from `Prefer: outlook.timezone` (UTC by default; unknown names fall back to UTC).
fn response_zone(headers: &HeaderMap) -> (Zone, String, bool) {
    for (k, v) in prefer_values(headers) {
        if k.eq_ignore_ascii_case("outlook.timezone") {
            if let Some(z) = tz::zone(&v) {
                return (z, v, true);
            }
        }
    }
    (tz::zone("UTC").expect("UTC"), "UTC".into(), false)
}

fn with_preference(mut r: Response, applied: bool, name: &str) -> Response {
    if applied {
        if let Ok(v) = HeaderValue::from_str(&format!("outlook.timezone=\"{name}\"")) {
            r.headers_mut().insert("preference-applied", v);
        }
    }
    r
}

fn window(q: &Query) -> Result<(NaiveDateTime, NaiveDateTime), Response> {
    let missing = || {
        graph_error(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        )
    };
    let s = q.get("startdatetime").ok_or_else(missing)?;
    let e = q.get("enddatetime").ok_or_else(missing)?;
    let s = tz::parse_query_instant(s).ok_or_else(missing)?;
    let e = tz::parse_query_instant(e).ok_or_else(missing)?;
    Ok((s, e))
}

#[derive(Serialize, Deserialize)]
struct Offset {
    o: usize,
}

fn page_size(q: &Query, headers: &HeaderMap) -> Result<usize, Response> {
    if q.get("top").is_some() {
        return q.top(10, 1000);
    }
    Ok(super::prefer_max_page_size(headers)
        .unwrap_or(10)
        .clamp(1, 1000))
}

/// `GET /v1.0/users/{id}/calendarView?startDateTime&endDateTime` (app: Calendars.Read).
async fn calendar_view(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let q = Query::from_uri(&uri);
    let (from, to) = match window(&q) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let top = match page_size(&q, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let offset = q
        .get("skiptoken")
        .and_then(decode_token::<Offset>)
        .map(|o| o.o)
        .unwrap_or(0);
    let (resp, resp_name, applied) = response_zone(&headers);
    let tenant = state.tenant.read().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let _guard = match tenant.runtime.enter_mailbox(&app.app_id, &uid) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let mb = tenant.mailbox(&uid);
    let select = q.select();
    let mut all: Vec<(NaiveDateTime, Value)> = Vec::new();
    for ev in mb.events.values() {
        for inst in instances(ev, from, to, resp) {
            let v = instance_json(ev, &inst, resp, &resp_name);
            all.push((inst.start_utc, select_event(v, &select)));
        }
    }
    all.sort_by_key(|a| a.0);
    let total = all.len();
    let page: Vec<Value> = all
        .into_iter()
        .skip(offset)
        .take(top)
        .map(|(_, v)| v)
        .collect();
    let next = (offset + page.len() < total).then(|| {
        let mut params = vec![
            format!(
                "startDateTime={}",
                enc(q.get("startdatetime").unwrap_or(""))
            ),
            format!("endDateTime={}", enc(q.get("enddatetime").unwrap_or(""))),
        ];
        for k in ["top", "select"] {
            if let Some(t) = q.get(k) {
                params.push(format!("${k}={}", enc(t)));
            }
        }
        params.push(format!(
            "$skiptoken={}",
            encode_token(&Offset {
                o: offset + page.len()
            })
        ));
        format!(
            "{}/v1.0/users/{uid}/calendarView?{}",
            state.base_url,
            params.join("&")
        )
    });
    with_preference(
        collection(
            &state,
            &format!("users('{uid}')/calendarView"),
            page,
            next,
            None,
        ),
        applied,
        &resp_name,
    )
}

#[derive(Serialize, Deserialize, Clone)]
struct EventDeltaToken {
    i: String,
    e: u64,
    s: u64,
    u: String,
    ws: String,
    we: String,
    #[serde(default)]
    o: usize,
    #[serde(default)]
    from: Option<u64>,
    #[serde(default)]
    first: bool,
}

/// `GET /v1.0/users/{id}/calendarView/delta` (app: Calendars.Read): instances in the window,
/// then changes; removed or moved-out events come as `@removed` (graph-facts §7).
async fn calendar_view_delta(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let q = Query::from_uri(&uri);
    for bad in ["select", "expand", "filter", "orderby", "search"] {
        if q.get(bad).is_some() {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "ErrorInvalidUrlQuery",
                &format!("The query parameter '${bad}' is not supported with delta."),
            );
        }
    }
    let size = super::prefer_max_page_size(&headers)
        .unwrap_or(10)
        .clamp(1, 1000);
    let (resp, resp_name, applied) = response_zone(&headers);
    let tenant = state.tenant.read().await;
    let settings = tenant.runtime.settings();
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let _guard = match tenant.runtime.enter_mailbox(&app.app_id, &uid) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let epoch = state.delta_epoch();
    let token_str = q.get("deltatoken").or(q.get("skiptoken"));
    let tok = match token_str {
        Some(t) => match decode_token::<EventDeltaToken>(t) {
            Some(t) if t.i == tenant.instance && t.e >= epoch && t.u == uid => t,
            _ => return sync_state_not_found(false, &settings),
        },
        None => {
            let (from, to) = match window(&q) {
                Ok(w) => w,
                Err(r) => return r,
            };
            EventDeltaToken {
                i: tenant.instance.clone(),
                e: epoch,
                s: tenant.seq,
                u: uid.clone(),
                ws: fmt_local(from),
                we: fmt_local(to),
                o: 0,
                from: None,
                first: true,
            }
        }
    };
    let from = parse_local(&tok.ws).unwrap_or_default();
    let to = parse_local(&tok.we).unwrap_or_default();
    let mb = tenant.mailbox(&uid);
    let is_delta_call = q.get("deltatoken").is_some();
    let (items, upper): (Vec<Value>, u64) = if tok.first && !is_delta_call {
        let mut all: Vec<(NaiveDateTime, Value)> = Vec::new();
        for ev in mb.events.values() {
            for inst in instances(ev, from, to, resp) {
                all.push((inst.start_utc, instance_json(ev, &inst, resp, &resp_name)));
            }
        }
        all.sort_by_key(|a| a.0);
        (all.into_iter().map(|(_, v)| v).collect(), tok.s)
    } else {
        let (lower, upper) = match (is_delta_call, tok.from) {
            (false, Some(f)) => (f, tok.s),
            _ => (tok.s, tenant.seq),
        };
        let mut seen: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for c in mb
            .log
            .iter()
            .rev()
            .filter(|c| c.kind == ItemKind::Event && c.seq > lower && c.seq <= upper)
        {
            if seen.contains(&c.id) {
                continue;
            }
            seen.push(c.id.clone());
            match mb.events.get(&c.id) {
                Some(ev) => {
                    let insts = instances(ev, from, to, resp);
                    if insts.is_empty() {
                        out.push(json!({"id": ev.id, "@removed": {"reason": "deleted"}}));
                    }
                    for inst in insts {
                        out.push(instance_json(ev, &inst, resp, &resp_name));
                    }
                }
                None => {
                    out.push(json!({"id": c.id, "@removed": {"reason": "deleted"}}));
                    if let Some(old) = &c.removed_event {
                        for inst in instances(old, from, to, resp)
                            .into_iter()
                            .filter(|i| i.occurrence)
                        {
                            out.push(json!({"id": inst.id, "@removed": {"reason": "deleted"}}));
                        }
                    }
                }
            }
        }
        out.reverse();
        (out, upper)
    };
    let offset = if is_delta_call { 0 } else { tok.o };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    let base = format!("{}/v1.0/users/{uid}/calendarView/delta", state.base_url);
    let ctx = format!("users('{uid}')/calendarView");
    let r = if offset + page.len() < total {
        let lower = if tok.first && !is_delta_call {
            None
        } else if is_delta_call {
            Some(tok.s)
        } else {
            tok.from
        };
        let next = EventDeltaToken {
            s: upper,
            o: offset + page.len(),
            from: lower,
            first: tok.first && !is_delta_call,
            ..tok.clone()
        };
        collection(
            &state,
            &ctx,
            page,
            Some(format!("{base}?$skiptoken={}", encode_token(&next))),
            None,
        )
    } else {
        let done = EventDeltaToken {
            s: upper,
            o: 0,
            from: None,
            first: false,
            ..tok.clone()
        };
        collection(
            &state,
            &ctx,
            page,
            None,
            Some(format!("{base}?$deltatoken={}", encode_token(&done))),
        )
    };
    with_preference(r, applied, &resp_name)
}

fn event_change(uid: &str, eid: &str, change_type: &'static str) -> ChangeEvent {
    ChangeEvent {
        collection: format!("users/{uid}/events"),
        id: eid.to_string(),
        change_type,
        resource: format!("Users/{uid}/Events/{eid}"),
        odata_type: "#Microsoft.Graph.Event",
    }
}

fn invalid_event(e: FieldError) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        "ErrorInvalidRequest",
        &format!("{}: {}", e.0, e.1),
    )
}

/// `GET /v1.0/users/{id}/events` (app: Calendars.Read): series masters and single instances.
async fn list_events(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let q = Query::from_uri(&uri);
    let top = match page_size(&q, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let offset = q
        .get("skiptoken")
        .and_then(decode_token::<Offset>)
        .map(|o| o.o)
        .unwrap_or(0);
    let tenant = state.tenant.read().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let _guard = match tenant.runtime.enter_mailbox(&app.app_id, &uid) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let mb = tenant.mailbox(&uid);
    let total = mb.events.len();
    let page: Vec<Value> = mb
        .events
        .values()
        .skip(offset)
        .take(top)
        .map(|e| Value::Object(event_json(e)))
        .collect();
    let next = (offset + page.len() < total).then(|| {
        format!(
            "{}/v1.0/users/{uid}/events?$top={top}&$skiptoken={}",
            state.base_url,
            encode_token(&Offset {
                o: offset + page.len()
            })
        )
    });
    collection(&state, &format!("users('{uid}')/events"), page, next, None)
}

/// `GET /v1.0/users/{id}/events/{eid}` (app: Calendars.Read).
async fn get_event(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path((id, eid)): Path<(String, String)>,
) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let tenant = state.tenant.read().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mb = tenant.mailbox(&uid);
    match mb.events.get(&eid) {
        Some(ev) => json_response(StatusCode::OK, Value::Object(event_json(ev))),
        None => item_not_found(),
    }
}

/// `POST /v1.0/users/{id}/events` (app: Calendars.ReadWrite) → 201 with the event.
async fn create_event(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = app.require(WRITE) {
        return r;
    }
    let mut props = match json_object(&body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    for k in [
        "id",
        "createdDateTime",
        "lastModifiedDateTime",
        "changeKey",
        "type",
        "seriesMasterId",
    ] {
        props.remove(k);
    }
    if let Err(e) = normalize_event(&mut props) {
        return invalid_event(e);
    }
    let mut tenant = state.tenant.write().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let _guard = match tenant.runtime.enter_mailbox(&app.app_id, &uid) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let eid = crate::tenant::derived_id(&uid, &crate::tenant::new_id());
    let now = now_str();
    let ev = Event {
        id: eid.clone(),
        props,
        created: now.clone(),
        modified: now,
        change_key: crate::tenant::new_id()[..8].to_string(),
    };
    let body = event_json(&ev);
    tenant.mailbox_mut(&uid).events.insert(eid.clone(), ev);
    tenant.log_mailbox(&uid, ItemKind::Event, &eid, "", None, false);
    super::subscriptions::publish(
        &state,
        &mut tenant,
        vec![event_change(&uid, &eid, "created")],
    );
    json_response(StatusCode::CREATED, Value::Object(body))
}

/// `PATCH /v1.0/users/{id}/events/{eid}` (app: Calendars.ReadWrite) → 200 with the event.
async fn update_event(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path((id, eid)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = app.require(WRITE) {
        return r;
    }
    let patch = match json_object(&body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let mut tenant = state.tenant.write().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let _guard = match tenant.runtime.enter_mailbox(&app.app_id, &uid) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let Some(mut ev) = tenant.mailbox_mut(&uid).events.get(&eid).cloned() else {
        return item_not_found();
    };
    for (k, v) in patch {
        if [
            "id",
            "createdDateTime",
            "lastModifiedDateTime",
            "changeKey",
            "type",
        ]
        .contains(&k.as_str())
        {
            continue;
        }
        ev.props.insert(k, v);
    }
    if let Err(e) = normalize_event(&mut ev.props) {
        return invalid_event(e);
    }
    ev.modified = now_str();
    ev.change_key = crate::tenant::new_id()[..8].to_string();
    let body = event_json(&ev);
    tenant.mailbox_mut(&uid).events.insert(eid.clone(), ev);
    tenant.log_mailbox(&uid, ItemKind::Event, &eid, "", None, false);
    super::subscriptions::publish(
        &state,
        &mut tenant,
        vec![event_change(&uid, &eid, "updated")],
    );
    json_response(StatusCode::OK, Value::Object(body))
}

/// `DELETE /v1.0/users/{id}/events/{eid}` (app: Calendars.ReadWrite) → 204.
async fn delete_event(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path((id, eid)): Path<(String, String)>,
) -> Response {
    if let Err(r) = app.require(WRITE) {
        return r;
    }
    let mut tenant = state.tenant.write().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let _guard = match tenant.runtime.enter_mailbox(&app.app_id, &uid) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let Some(old) = tenant.mailbox_mut(&uid).events.remove(&eid) else {
        return item_not_found();
    };
    tenant.log_mailbox(&uid, ItemKind::Event, &eid, "", Some(old), true);
    super::subscriptions::publish(
        &state,
        &mut tenant,
        vec![event_change(&uid, &eid, "deleted")],
    );
    StatusCode::NO_CONTENT.into_response()
}

fn status_digit(show_as: &str) -> u8 {
    match show_as {
        "tentative" => 1,
        "busy" => 2,
        "oof" => 3,
        "workingElsewhere" => 4,
        _ => 0,
    }
}

/// Which status wins when several items overlap one interval.
fn rank(d: u8) -> u8 {
    match d {
        3 => 5,
        2 => 4,
        1 => 3,
        4 => 2,
        _ => 0,
    }
}

/// `POST /v1.0/users/{id}/calendar/getSchedule` (app: Calendars.Read): free/busy of up to 20
/// mailboxes for a period under 42 days.
async fn get_schedule(
    State(state): State<Arc<SimState>>,
    app: AppPrincipal,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = app.require(READ) {
        return r;
    }
    let req = match json_object(&body) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let bad = |m: &str| graph_error(StatusCode::BAD_REQUEST, "ErrorInvalidParameter", m);
    let Some(schedules) = req.get("schedules").and_then(|s| s.as_array()) else {
        return bad("schedules is required.");
    };
    if schedules.is_empty() || schedules.len() > 20 {
        return bad("The number of schedules must be between 1 and 20.");
    }
    let parse = |field: &str| -> Result<NaiveDateTime, Response> {
        let (dt, _, zone) =
            parse_dtz(&req, field).map_err(|e| bad(&format!("{}: {}", e.0, e.1)))?;
        Ok(zone.to_utc(dt))
    };
    let (from, to) = match (parse("startTime"), parse("endTime")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if to <= from || to - from >= Duration::days(42) {
        return bad("The time period must be positive and shorter than 42 days.");
    }
    let interval = req
        .get("availabilityViewInterval")
        .and_then(|v| v.as_i64())
        .unwrap_or(30);
    if !(5..=1440).contains(&interval) {
        return bad("availabilityViewInterval must be between 5 and 1440.");
    }
    let (resp, resp_name, applied) = response_zone(&headers);
    let tenant = state.tenant.read().await;
    let uid = match mailbox_user(&tenant, &id) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let _guard = match tenant.runtime.enter_mailbox(&app.app_id, &uid) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let mut out = Vec::new();
    for s in schedules {
        let addr = s.as_str().unwrap_or_default();
        let user = tenant
            .users
            .values()
            .find(|u| {
                u.mail
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case(addr))
            })
            .or_else(|| tenant.find_user(addr));
        let Some(user) = user.filter(|u| u.mail.is_some() && u.user_type != "Guest") else {
            out.push(json!({
                "scheduleId": addr,
                "availabilityView": "",
                "scheduleItems": [],
                "error": {"message": format!("The recipient '{addr}' could not be resolved."), "responseCode": "ErrorMailRecipientNotFound"},
            }));
            continue;
        };
        let mb = tenant.mailbox(&user.id);
        let mut items = Vec::new();
        let mut spans: Vec<(NaiveDateTime, NaiveDateTime, u8)> = Vec::new();
        for ev in mb.events.values() {
            for inst in instances(ev, from, to, resp) {
                let show_as = ev
                    .props
                    .get("showAs")
                    .and_then(|v| v.as_str())
                    .unwrap_or("busy");
                if show_as == "free" {
                    continue;
                }
                spans.push((inst.start_utc, inst.end_utc, status_digit(show_as)));
                let (s, e) = if inst.all_day {
                    (inst.local_start, inst.local_end)
                } else {
                    (resp.from_utc(inst.start_utc), resp.from_utc(inst.end_utc))
                };
                items.push(json!({
                    "isPrivate": ev.props.get("sensitivity").and_then(|v| v.as_str()) == Some("private"),
                    "status": show_as,
                    "subject": ev.props.get("subject"),
                    "location": ev.props.get("location").and_then(|l| l.get("displayName")).cloned().unwrap_or(json!("")),
                    "start": {"dateTime": fmt_local(s), "timeZone": resp_name},
                    "end": {"dateTime": fmt_local(e), "timeZone": resp_name},
                }));
            }
        }
        let mut view = String::new();
        let mut t = from;
        while t < to {
            let t2 = t + Duration::minutes(interval);
            let d = spans
                .iter()
                .filter(|(s, e, _)| *s < t2 && *e > t)
                .map(|(_, _, d)| *d)
                .max_by_key(|d| rank(*d))
                .unwrap_or(0);
            view.push(char::from(b'0' + d));
            t = t2;
        }
        let office_tz = if user
            .office_location
            .as_deref()
            .is_some_and(|o| o.starts_with("Berlin"))
        {
            "W. Europe Standard Time"
        } else {
            "Pacific Standard Time"
        };
        out.push(json!({
            "scheduleId": addr,
            "availabilityView": view,
            "scheduleItems": items,
            "workingHours": {
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "startTime": "08:00:00.0000000",
                "endTime": "17:00:00.0000000",
                "timeZone": {"name": office_tz},
            },
        }));
    }
    let r = json_response(
        StatusCode::OK,
        json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)",
            "value": out,
        }),
    );
    with_preference(r, applied, &resp_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(props: Value) -> Event {
        let mut p = props.as_object().unwrap().clone();
        normalize_event(&mut p).unwrap();
        Event {
            id: "E".into(),
            props: p,
            created: String::new(),
            modified: String::new(),
            change_key: String::new(),
        }
    }

    #[test]
    fn weekly_series_expands_into_weekday_occurrences() {
        let e = ev(json!({
            "subject": "standup",
            "start": {"dateTime": "2025-06-02T09:00:00", "timeZone": "W. Europe Standard Time"},
            "end": {"dateTime": "2025-06-02T09:15:00", "timeZone": "W. Europe Standard Time"},
            "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
                           "range": {"type": "noEnd", "startDate": "2025-06-02"}}
        }));
        let utc = tz::zone("UTC").unwrap();
        let from = parse_local("2025-06-09T00:00:00").unwrap();
        let to = parse_local("2025-06-16T00:00:00").unwrap();
        let insts = instances(&e, from, to, utc);
        assert_eq!(insts.len(), 2);
        // 09:00 Berlin summer time is 07:00 UTC.
        assert_eq!(fmt_local(insts[0].start_utc), "2025-06-09T07:00:00.0000000");
    }

    #[test]
    fn all_day_entries_round_to_midnight_and_float() {
        let e = ev(json!({
            "isAllDay": true,
            "start": {"dateTime": "2025-08-06T10:00:00", "timeZone": "Pacific Standard Time"},
            "end": {"dateTime": "2025-08-06T12:00:00", "timeZone": "Pacific Standard Time"}
        }));
        assert_eq!(e.props["start"]["dateTime"], "2025-08-06T00:00:00.0000000");
        assert_eq!(e.props["end"]["dateTime"], "2025-08-07T00:00:00.0000000");
        let berlin = tz::zone("Europe/Berlin").unwrap();
        let insts = instances(
            &e,
            parse_local("2025-08-05T00:00:00").unwrap(),
            parse_local("2025-08-08T00:00:00").unwrap(),
            berlin,
        );
        assert_eq!(insts.len(), 1);
        let j = instance_json(&e, &insts[0], berlin, "Europe/Berlin");
        assert_eq!(j["start"]["dateTime"], "2025-08-06T00:00:00.0000000");
        assert_eq!(j["start"]["timeZone"], "Europe/Berlin");
    }
}
